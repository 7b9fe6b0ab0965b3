//! The store decides every race. One trait, one contract, two backends.
pub mod dynamo;
mod error;
pub mod outbox;
pub mod rate;
pub mod sqlite;
mod waitlist;

pub use error::{BoxError, Cause, StoreError, StoreResult};
pub use outbox::{MailIntent, MailKind, Outbox, OutboxRecord, Settle};

use crate::domain::pacing::Window;
use crate::domain::reservation::{Guest, Reservation, Status};
use crate::domain::waitlist::WaitlistEntry;
use crate::domain::{LocalDate, Restaurant, Seating, TableId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

/// A restaurant with the revision that guards read-modify-write of its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRestaurant {
    pub restaurant: Restaurant,
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestaurantSummary {
    pub id: Uuid,
    pub name: String,
    pub timezone: String,
}

/// A consistent read of one restaurant/date: its version and every live reservation that can
/// overlap it (those of the date and of the day before): held (even past its expiry, until the
/// sweeper marks it), confirmed, seated, completed and no-show. Released, expired and cancelled
/// reservations occupy nothing and are never read here, so the read's cost is the live data
/// of the two dates, not their history (the floor lists the date's cancelled ones: it reads
/// them apart, [`Store::cancelled_on`]).
#[derive(Debug, Clone)]
pub struct DayView {
    pub version: u64,
    pub reservations: Vec<Reservation>,
    /// The parts `version` is the sum of, by name (see [`Step`]): one part on SQLite, the
    /// restaurant-wide floor and each change counter on DynamoDB.
    pub parts: Vec<(String, u64)>,
}

/// Exactly what one commit did to one part of a date's version: the part was `from` before the
/// commit and `to` after it (`from == to` names a part the commit was made against without
/// raising it). A live view holding the date at the same parts can apply the commit's
/// after-image and be exactly where a fresh read would put it; one that is behind must read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    #[serde(rename = "d")]
    pub date: LocalDate,
    #[serde(rename = "p")]
    pub part: String,
    #[serde(rename = "f")]
    pub from: u64,
    #[serde(rename = "t")]
    pub to: u64,
}

pub use waitlist::{JoinOutcome, LeaveOutcome, NewEntry, NewOffer, OfferOutcome, WaitingDay};

/// An instant as both stores keep it (milliseconds): what a read returns.
pub fn stored_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A reservation as a read returns it once written: its instants to the millisecond.
pub fn as_stored(mut r: Reservation) -> Reservation {
    (r.start, r.end) = (stored_instant(r.start), stored_instant(r.end));
    (r.created_at, r.updated_at) = (stored_instant(r.created_at), stored_instant(r.updated_at));
    r.expires_at = r.expires_at.map(stored_instant);
    r
}

/// Whether a reservation in `status` is in a day read ([`DayView`]).
pub fn in_day(status: Status) -> bool {
    !matches!(
        status,
        Status::Released | Status::Expired | Status::Cancelled
    )
}

/// Puts `r`, as a commit left it, into `day` (a date's reservations ordered by start and table,
/// as a day read returns them): in place of the version it had, at its place in the order,
/// after those with the same start and table; or out of it when it is released, expired or
/// cancelled, which no day read returns.
///
/// A reservation's start and table are set when it is decided and never change, so the version
/// it had sits among those with its start and table: two binary searches find them, with no
/// pass over the whole day (on a busy date the hub and the day cache do this for every change).
pub fn place_in_day(day: &mut Vec<Reservation>, r: &Reservation) {
    let order =
        |a: &Reservation, b: &Reservation| (a.start, &a.table_id).cmp(&(b.start, &b.table_id));
    debug_assert!(day.is_sorted_by(|a, b| order(a, b).is_le()));
    let from = day.partition_point(|x| order(x, r).is_lt());
    let mut to = day.partition_point(|x| order(x, r).is_le());
    if let Some(i) = day[from..to].iter().position(|x| x.id == r.id) {
        day.remove(from + i);
        to -= 1;
    }
    if in_day(r.status) {
        day.insert(to, r.clone());
    }
}

/// A new reservation to write, decided in ONE atomic write (SQLite: one transaction;
/// DynamoDB: one `TransactWriteItems`), in this order:
///
/// 1. `restaurant_revision` still current, else [`InsertOutcome::Stale`];
/// 2. the client's `cap`, else [`InsertOutcome::OverCap`];
/// 3. the first of `candidates` (best fit first) whose EVERY member table is free over
///    `[start, end)` is claimed — all its members or none. A table is free when no reservation
///    that occupies it (`table_ids` contains it) overlaps in an occupying status; a `held` one
///    past `expires_at` at `now` is free. None free: [`InsertOutcome::Lost`] (reason `table`,
///    whatever pacing says). So a hold on `t3` and one on a combination `t3+t4` at overlapping
///    times can never both win;
/// 4. with `pacing` enforced, the count of its window (see [`PacingCheck`]) plus this party must
///    stay within the limits, else [`InsertOutcome::Paced`]. The count is part of the same
///    decision: of concurrent holds into one window, only as many as fit can win.
///
/// On a win the store fills `table_id`, `table_ids` and `combination_id` from the claimed
/// option ([`Reservation::seat`]).
#[derive(Debug, Clone)]
pub struct NewReservation {
    /// Its `table_id`, `table_ids` and `combination_id` are ignored; the store fills them with
    /// the seating option it claims.
    pub reservation: Reservation,
    /// Seating options in best-fit order: single tables, then combinations.
    pub candidates: Vec<Seating>,
    /// The restaurant's pacing, when it has one: counted (and, if `enforce`, checked) in this
    /// same write.
    pub pacing: Option<PacingCheck>,
    pub restaurant_revision: u64,
    pub token_hash: Option<String>,
    pub now: DateTime<Utc>,
    /// The client's cap on live holds, decided in this same write.
    pub cap: Option<HoldCap>,
    /// The idempotent answer, recorded in this same write when it wins.
    pub idem: Option<IdemRecord>,
}

/// The pacing of a new reservation's window. The window's count is over the reservations of
/// the new one's `date` whose local `time` lies in `window` and that count at `now`: `held`
/// and not past `expires_at` (an expired hold never counts, swept or not), `confirmed`,
/// `seated`, `completed`, `no_show`. Covers are the sum of their `party_size`, parties their
/// number. Release, cancel and expiry take a reservation out of the count at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacingCheck {
    pub window: Window,
    pub max_covers: Option<u32>,
    pub max_parties: Option<u32>,
    /// `false` for staff walk-ins: they count, but pacing never refuses them.
    pub enforce: bool,
}

impl PacingCheck {
    /// Whether a window with `covers` and `parties` refuses one more party of `party`.
    pub fn refuses(&self, covers: u32, parties: u32, party: u32) -> bool {
        self.enforce
            && (self
                .max_covers
                .is_some_and(|m| covers.saturating_add(party) > m)
                || self
                    .max_parties
                    .is_some_and(|m| parties.saturating_add(1) > m))
    }
}

/// A client's live-hold cap: a hold wins only if the client then has at most `max` live
/// (`held`, unexpired) holds, over all restaurants. Decided in the hold's own atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldCap {
    /// A stable, non-reversible key of the client (a hash of its address).
    pub client: String,
    pub max: u32,
}

/// Renders the final answer (status and stored body) from the decided reservation.
pub type RenderAnswer = std::sync::Arc<dyn Fn(&Reservation) -> (u16, String) + Send + Sync>;

/// An idempotent answer written in the same atomic decision as its effect, replacing the
/// request's in-flight marker (`idem_begin`), so no retry can ever take the effect twice.
#[derive(Clone)]
pub struct IdemRecord {
    /// The hashed scope key given to `idem_begin`.
    pub key: String,
    /// Any bearer token in the body is already encrypted by the caller.
    pub render: RenderAnswer,
}

impl std::fmt::Debug for IdemRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdemRecord")
            .field("key", &self.key)
            .finish()
    }
}

/// The new versions written by one commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versions {
    pub dates: Vec<(LocalDate, u64)>,
    /// Set when the change raised the version of every date of the restaurant.
    pub wide: Option<u64>,
    /// Exactly how the commit moved each date's version, where the store knows it. A date of
    /// `dates` with no step here moved in a way only a read can tell.
    pub steps: Vec<Step>,
}

/// The date's version of the snapshot a refusal was decided in, when the store read it in the
/// same statement (the SQLite writer's hold script); `None` when it did not. A caller may reuse a
/// day view it read at this version or later instead of reading the day again.
pub type Seen = Option<u64>;

// Returned once per write; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    Won {
        reservation: Reservation,
        versions: Versions,
    },
    /// Every candidate seating option is taken over the requested time (reason `table`).
    Lost { seen: Seen },
    /// A seating option was free but the party would take its pacing window past a limit
    /// (reason `pacing`). Never for a check that is not enforced.
    Paced { seen: Seen },
    /// The client already has its cap of live holds.
    OverCap,
    /// The restaurant changed since it was read: read it again and retry.
    Stale,
}

/// A status change, conditional on the current status (and for a hold, on it not being expired).
#[derive(Debug, Clone)]
pub struct Transition {
    pub id: Uuid,
    pub from: Status,
    pub to: Status,
    pub guest: Option<Guest>,
    pub notes: Option<String>,
    pub end: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
    /// The idempotent answer, recorded in this same write when it is done.
    pub idem: Option<IdemRecord>,
    /// A mail about the change, put in the outbox in this same write when it is done.
    pub mail: Option<MailIntent>,
    /// With [`Store::transition_offering`] on SQLite: written only together with its planned
    /// offer. Should the offer not be made, nothing is written and the answer is
    /// `Conflict(None)`, for the caller to plan the offer again.
    pub offer_or_nothing: bool,
}

impl Transition {
    /// `from` → `to` at `now` and nothing more (no details, end, answer or mail).
    pub fn new(id: Uuid, from: Status, to: Status, now: DateTime<Utc>) -> Self {
        Transition {
            id,
            from,
            to,
            guest: None,
            notes: None,
            end: None,
            now,
            idem: None,
            mail: None,
            offer_or_nothing: false,
        }
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum TransitionOutcome {
    Done {
        reservation: Reservation,
        versions: Versions,
        /// The waitlist entry that followed its offered hold in the same write (booked on a
        /// confirm, lapsed on a release), as the write left it.
        entry: Option<WaitlistEntry>,
        /// Whether, as of this write, any `waiting` entry of the restaurant is on a date the
        /// reservation spans (`None`: the store did not look, or the change frees nothing).
        /// With none, what it freed has nobody to be offered to.
        waiting: Option<bool>,
    },
    /// The reservation is no longer in `from` (or the hold expired): here is what it is now.
    Conflict(Option<Reservation>),
}

/// A check made atomically with a settings change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    None,
    /// No occupying reservation ends after `now` (on one table, or on any). A reservation on a
    /// combination is on each of its member tables. On one table, an empty one (a no-show ended
    /// at its start) takes nothing, here and in `PartiesWithin`; on any (a change of time zone),
    /// it counts: it keeps its local date and time.
    NoLiveFuture {
        table: Option<TableId>,
        now: DateTime<Utc>,
    },
    /// Every occupying reservation on `table` alone (not on a combination it belongs to)
    /// ending after `now` has a party in `min..=max`.
    PartiesWithin {
        table: TableId,
        min: u32,
        max: u32,
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
pub enum ReplaceOutcome {
    Done(Versions),
    Stale,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    Staff {
        restaurant_id: Uuid,
    },
    Reservation {
        restaurant_id: Uuid,
        reservation_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdemBegin {
    Fresh,
    Replay { status: u16, body: String },
    Mismatch,
    InFlight,
}

#[async_trait]
pub trait Store: Outbox + Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;

    /// Takes one token of `client`'s hold-and-join bucket, shared by every instance on this
    /// store (see [`rate`]). `None`: taken; `Some(µs)`: none left for that long.
    async fn take_rate_token(
        &self,
        client: &str,
        bucket: rate::Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>>;

    /// Forgets the buckets full again by `now` (a bucket not kept is full): at most `limit`.
    async fn forget_full_buckets(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        let _ = (now, limit);
        Ok(0)
    }

    /// The longest time, in minutes, one seating option of `tables` tables can be claimed for
    /// in one atomic write, wherever it starts; `None`: no limit short of the 12-hour turn.
    /// Settings whose turns would need more are refused, not left unbookable.
    fn longest_claim_minutes(&self, tables: usize) -> Option<u32> {
        let _ = tables;
        None
    }

    async fn create_restaurant(
        &self,
        r: &Restaurant,
        staff_token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn list_restaurants(&self) -> StoreResult<Vec<RestaurantSummary>>;
    async fn restaurant(&self, id: Uuid) -> StoreResult<Option<StoredRestaurant>>;
    /// The restaurant for a hold or walk-in, which may be as this instance last read it rather
    /// than as last committed: only for a decision whose write checks `restaurant_revision`
    /// (and answers `Stale`, after which the caller reads it with `restaurant`). Default: the
    /// last committed one.
    async fn restaurant_for_insert(
        &self,
        id: Uuid,
    ) -> StoreResult<Option<std::sync::Arc<StoredRestaurant>>> {
        Ok(self.restaurant(id).await?.map(std::sync::Arc::new))
    }
    /// Replaces settings and tables if the revision still matches and the guard holds.
    async fn replace_restaurant(
        &self,
        r: &Restaurant,
        expected_revision: u64,
        guard: Guard,
        now: DateTime<Utc>,
    ) -> StoreResult<ReplaceOutcome>;

    /// A date's view, shared: an unchanged date's view may be the one the store kept from its
    /// last read (SQLite), handed out without a copy.
    async fn day(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<Arc<DayView>>;
    /// The version `day` would read, without reading a reservation (what a date with no
    /// bookable start answers with).
    async fn day_version(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<u64>;
    /// The cancelled reservations of one date (the floor lists them beside its day), ordered
    /// by start then table id. A cancelled reservation never changes again.
    async fn cancelled_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>>;
    /// Reservations of one date, every status, ordered by start then table id.
    async fn reservations_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>>;
    async fn reservation(&self, id: Uuid) -> StoreResult<Option<Reservation>>;

    async fn insert_reservation(&self, new: NewReservation) -> StoreResult<InsertOutcome>;
    async fn transition(&self, t: Transition) -> StoreResult<TransitionOutcome>;
    /// Marks held reservations past `expires_at` as expired, each by a conditional write.
    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>>;

    async fn token_owner(&self, hash: &str) -> StoreResult<Option<TokenOwner>>;

    async fn idem_begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin>;
    async fn idem_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()>;
    async fn idem_abort(&self, key: &str) -> StoreResult<()>;

    /// Retention: deletes, oldest first and at most `limit` at a time, released and expired
    /// holds last changed before `before` (with their tokens), `lapsed` and `left` waitlist
    /// entries last changed before it and every entry but a booked one of a date before its UTC
    /// date (with their tokens), and idempotency records created before it. Business records
    /// (confirmed and later, and booked entries) are kept. Returns how many went.
    async fn purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize>;

    // ---- Waitlist (see `waitlist.rs` for the exact semantics of each shape) ----

    /// Adds an entry (status `waiting`, no offer) and its token hash, and raises the version of
    /// its date, in one atomic write. Fails only as `Stale` when the restaurant is gone.
    async fn join_waitlist(&self, new: NewEntry) -> StoreResult<JoinOutcome>;
    /// One entry, any status.
    async fn waitlist_entry(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>>;
    /// The entry whose token hashes to `hash`, any status.
    async fn waitlist_entry_by_token(&self, hash: &str) -> StoreResult<Option<WaitlistEntry>>;
    /// Every entry of one restaurant/date, every status, in queue order (`created_at`, `id`).
    async fn waitlist_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>>;
    /// The restaurant/dates on or after `from` that have at least one `waiting` entry, with the
    /// oldest waiting entry's `created_at`: what the reconcile loop visits. At most `limit`.
    async fn waiting_days(&self, from: LocalDate, limit: u32) -> StoreResult<Vec<WaitingDay>>;
    /// Makes an offer: see [`NewOffer`] for the one atomic decision.
    async fn offer(&self, o: NewOffer) -> StoreResult<OfferOutcome>;
    /// A transition that frees capacity and the offer of that capacity to a waiting entry,
    /// planned before it: the offer is decided only if the transition is done, right after it,
    /// and (SQLite) in the same transaction, so no other hold can take the freed capacity in
    /// between. `None`: no offer was made (not tried, or it failed), and the caller offers
    /// what was freed the usual way. By default, one write after the other.
    async fn transition_offering(
        &self,
        t: Transition,
        o: NewOffer,
    ) -> StoreResult<(TransitionOutcome, Option<OfferOutcome>)> {
        let out = self.transition(t).await?;
        let offered = match out {
            TransitionOutcome::Done { .. } => planned_offer(self.offer(o).await),
            TransitionOutcome::Conflict(_) => None,
        };
        Ok((out, offered))
    }
    /// The entry leaves: see [`LeaveOutcome`] for the one atomic decision.
    async fn leave_waitlist(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<LeaveOutcome>;
    /// A leave that declines an offer, and the offer of the declined capacity to the next
    /// waiting entry, planned before it: as [`Store::transition_offering`], decided only if the
    /// leave released the offer, right after it and (SQLite) in the same transaction. By
    /// default, one write after the other.
    async fn leave_waitlist_offering(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        o: NewOffer,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        let out = self.leave_waitlist(id, now).await?;
        let offered = match &out {
            LeaveOutcome::Left {
                released: Some(_), ..
            } => planned_offer(self.offer(o).await),
            _ => None,
        };
        Ok((out, offered))
    }
}

/// A planned offer's answer, or `None` when it failed (logged): the caller then offers the
/// freed capacity the usual way, after the change.
pub(crate) fn planned_offer(answer: StoreResult<OfferOutcome>) -> Option<OfferOutcome> {
    answer
        .map_err(|e| {
            tracing::warn!(
                error = format!("{e:#}"),
                "the planned offer failed; offered after the change instead"
            )
        })
        .ok()
}

pub type DynStore = Arc<dyn Store>;

/// Opens the store named by a `TABLECAST_STORE` URL and brings its schema up to date.
pub async fn open(url: &str) -> anyhow::Result<DynStore> {
    open_keeping(url, 30).await
}

/// [`open`], with dead holds kept `retention_days` (DynamoDB's TTL waits for them; SQLite has
/// only the retention job).
pub async fn open_keeping(url: &str, retention_days: u32) -> anyhow::Result<DynStore> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        // `sqlite://` with nothing after it (an unset variable, say) gave each connection a
        // private temporary database: ready, and every read failing, every write lost.
        let path = rest.trim_start_matches("//");
        if path.split('?').next().unwrap_or_default().is_empty() {
            return Err(crate::setting::bad(format!(
                "the store URL `{url}` names no file: give sqlite://PATH (relative or absolute) \
                 or sqlite::memory:"
            )));
        }
        let store = sqlite::SqliteStore::open(url).await.map_err(|e| {
            // SQLite's own words for a path it cannot create say nothing of the path.
            let said = format!("{e:#}");
            let hint = if said.contains("unable to open database file")
                || said.contains("No such file or directory")
            {
                " (does its directory exist, and may this process write there?)"
            } else {
                ""
            };
            e.context(format!("cannot open the SQLite store {url}{hint}"))
        })?;
        Ok(Arc::new(store))
    } else if let Some(table) = url.strip_prefix("dynamodb://") {
        Ok(Arc::new(
            dynamo::DynamoStore::connect(table)
                .await?
                .keep_dead_for(retention_days),
        ))
    } else {
        Err(crate::setting::bad(format!(
            "unsupported store URL `{url}` (expected sqlite://PATH, sqlite::memory: or dynamodb://TABLE)"
        )))
    }
}
