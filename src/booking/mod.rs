//! Use cases: each turns a domain command into one store decision, then publishes the change.
mod answers;
mod days;
pub mod events;
mod expiry;
mod offers;
mod reservations;
mod restaurants;
mod transitions;
mod waitlist;

pub use crate::domain::availability::Availability;
use crate::domain::availability::{self, LostReason, SlotCount};
use crate::domain::{FieldError, LocalDate, PartySize, Reservation, Restaurant};
use crate::metrics::Metrics;
use crate::store::{DynStore, MailIntent, MailKind, StoreError, StoredRestaurant, Versions};
use chrono::{DateTime, Utc};
pub use events::{Cause, Change, Image, Publish, Step};
use std::sync::Arc;
use uuid::Uuid;

pub use reservations::{HoldRequest, Idem, Render, WalkInRequest};
pub use restaurants::RestaurantPatch;
pub use waitlist::{placed, JoinRequest, Placed};

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// `reason`: no seating option was free (`Table`), or pacing refused the party.
    #[error("the slot was just taken")]
    SlotUnavailable {
        alternatives: Vec<SlotCount>,
        reason: LostReason,
    },
    #[error("{0}")]
    InvalidTransition(String),
    #[error("the hold expired")]
    HoldExpired,
    /// The client already holds its cap of live holds.
    #[error("too many live holds from this client; confirm or release one first")]
    LiveHoldCap,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for BookingError {
    fn from(e: FieldError) -> Self {
        BookingError::Validation(vec![e])
    }
}

pub type BookingResult<T> = Result<T, BookingError>;

/// How many times a use case re-reads a restaurant whose settings changed under it.
const STALE_RETRIES: usize = 8;

/// How long an expiry's publish waits for the offer of the time it freed (see
/// `Booking::offer_then_publish_expiry`): the contract broadcasts an expiry within 2 s.
const OFFER_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone)]
pub struct Booking {
    store: DynStore,
    publisher: Arc<dyn Publish>,
    metrics: Metrics,
    /// Whether decisions put mail in the outbox (a relay, or the log, will deliver it).
    mail: bool,
    /// Wakes the mail sender after a commit that wrote mail.
    mail_ready: Arc<tokio::sync::Notify>,
    /// Wakes the sweeper at once (a read saw a hold past its expiry that is not swept yet).
    sweep_now: Arc<tokio::sync::Notify>,
    /// When the holds this instance wrote run out: the sweeper runs then (see `expiry.rs`).
    expiries: Arc<expiry::Plan>,
    /// TEST ONLY (zero unless a crash test sets it): how long a background offer after a
    /// freeing commit waits before it runs; see `ServeArgs::test_only_offer_delay_secs`.
    test_only_offer_delay: std::time::Duration,
    /// One offer pass at a time per restaurant on this instance: frees that arrive meanwhile
    /// wait and are planned together in the next pass (see `offers.rs`).
    offer_queues: offers::OfferQueues,
    /// The day views refused holds compute their alternatives from (see `days.rs`).
    loser_days: days::LoserDays,
    /// The work a commit leaves running after its answer (an offer of what it freed, the
    /// publish of an expiry): a drain waits for it (`settle`) instead of dropping it.
    background: tokio_util::task::TaskTracker,
    /// Where that work runs: the runtime `Booking` was made on (the process's own), not an
    /// HTTP worker's, whose tasks are dropped when the server stops.
    runtime: Option<tokio::runtime::Handle>,
    /// Availability answers while they stay true (see `answers.rs`).
    answers: Arc<answers::Answers>,
}

impl Booking {
    pub fn new(store: DynStore, publisher: Arc<dyn Publish>, metrics: Metrics) -> Self {
        Self {
            store,
            publisher,
            metrics,
            mail: false,
            mail_ready: Arc::new(tokio::sync::Notify::new()),
            sweep_now: Arc::new(tokio::sync::Notify::new()),
            expiries: Arc::default(),
            test_only_offer_delay: std::time::Duration::ZERO,
            offer_queues: offers::OfferQueues::default(),
            loser_days: days::LoserDays::default(),
            answers: Default::default(),
            background: tokio_util::task::TaskTracker::new(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Decisions write mail to the outbox from now on (only when something will deliver it).
    pub fn with_mail(mut self) -> Self {
        self.mail = true;
        self
    }

    /// Notified after each commit that put mail in the outbox.
    pub fn mail_ready(&self) -> Arc<tokio::sync::Notify> {
        self.mail_ready.clone()
    }

    /// The mail a decision writes: only when mail is on and the guest gave an address.
    fn mail_to(&self, kind: MailKind, email: Option<&str>) -> Option<MailIntent> {
        email
            .filter(|_| self.mail)
            .map(|to| MailIntent::new(kind, to))
    }

    /// TEST ONLY: delays every background offer that follows a freeing commit by `delay`, so a
    /// crash test can kill the instance between the commit and its offer. Zero = no delay.
    pub fn with_test_only_offer_delay(mut self, delay: std::time::Duration) -> Self {
        self.test_only_offer_delay = delay;
        self
    }

    /// Runs `work` after an answer, where a drain waits for it (see `settle`).
    fn in_background<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => self.background.spawn_on(work, runtime),
            None => self.background.spawn(work),
        }
    }

    /// On shutdown, once no request runs: waits up to `within` for the work commits left
    /// running (offers of what they freed, the publish of expiries). True when all of it ended.
    pub async fn settle(&self, within: std::time::Duration) -> bool {
        self.background.close();
        tokio::time::timeout(within, self.background.wait())
            .await
            .is_ok()
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    async fn load(&self, id: Uuid) -> BookingResult<StoredRestaurant> {
        self.store
            .restaurant(id)
            .await?
            .ok_or(BookingError::NotFound("restaurant"))
    }

    pub async fn restaurant(&self, id: Uuid) -> BookingResult<Restaurant> {
        Ok(self.load(id).await?.restaurant)
    }

    /// Publishes a commit with its after-image (`None`: subscribers read the store instead).
    fn publish(
        &self,
        restaurant_id: Uuid,
        cause: Cause,
        at: DateTime<Utc>,
        v: Versions,
        image: Option<Arc<events::Image>>,
    ) {
        // Every reservation this instance writes passes here with its after-image: a hold's
        // expiry is planned, and forgotten once it is confirmed, released or expired.
        for r in image.iter().flat_map(|i| &i.reservations) {
            match (r.status, r.expires_at) {
                (crate::domain::Status::Held, Some(at)) => self.expiries.add(r.id, at),
                _ => self.expiries.forget(r.id),
            }
        }
        self.publisher.publish(Change {
            restaurant_id,
            cause,
            at,
            dates: v.dates,
            wide_version: v.wide,
            steps: v.steps,
            image,
        });
    }

    pub async fn availability(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
        party_size: PartySize,
    ) -> BookingResult<Availability> {
        let StoredRestaurant {
            restaurant,
            revision,
        } = self.load(restaurant_id).await?;
        let now = Self::now();
        if !crate::domain::grid::may_have_starts(&restaurant, date, party_size, now) {
            // No start to count (a past or closed date, one past the horizon, a party nothing
            // seats): the date's reservations are not read, only its version.
            let version = self.store.day_version(restaurant_id, date).await?;
            return Ok(Availability {
                restaurant,
                date,
                party_size,
                version,
                slots: Vec::new(),
            });
        }
        let day = self.store.day(restaurant_id, date).await?;
        self.kick_if_unswept(&day.reservations, now);
        let key = (restaurant_id, date, party_size.get());
        let slots = match self.answers.get(key, revision, &day, now) {
            Some(slots) => slots,
            None => {
                let slots = Arc::new(availability::availability(
                    &restaurant,
                    date,
                    party_size,
                    now,
                    &day.reservations,
                ));
                if let Some(until) = availability::valid_until(&slots, &day.reservations, now) {
                    self.answers
                        .put(key, revision, &day, (now, until), Arc::clone(&slots));
                }
                slots
            }
        };
        Ok(Availability {
            restaurant,
            date,
            party_size,
            version: day.version,
            slots: Vec::clone(&slots),
        })
    }

    /// Retention: deletes dead holds, their tokens and idempotency records last changed before
    /// `before`, in batches of `batch` until none is left. Returns how many went.
    #[tracing::instrument(name = "booking.retain", skip(self), level = "debug")]
    pub async fn retain(&self, before: DateTime<Utc>, batch: u32) -> BookingResult<usize> {
        let mut total = 0;
        loop {
            let n = self.store.outbox_purge(before, batch).await?;
            total += n;
            if n < batch as usize {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let n = self.store.purge(before, batch).await?;
            total += n;
            if n < batch as usize {
                return Ok(total);
            }
            // Small batches, with room for live traffic between them.
            tokio::task::yield_now().await;
        }
    }

    /// Wakes the sweeper when a read sees a hold past its expiry that is not swept yet: its
    /// time is free to every read and write at once, and the sweep offers it to the waitlist.
    pub(crate) fn kick_if_unswept(&self, reservations: &[Reservation], now: DateTime<Utc>) {
        if reservations
            .iter()
            .any(|r| r.status == crate::domain::Status::Held && r.status_at(now) != r.status)
        {
            self.sweep_now.notify_one();
        }
    }

    /// Resolves when a read asked for a sweep before the next tick.
    pub async fn sweep_requested(&self) {
        self.sweep_now.notified().await;
    }

    /// The earliest instant a hold this instance wrote runs out, if one is planned.
    pub fn next_planned_expiry(&self) -> Option<DateTime<Utc>> {
        self.expiries.next()
    }

    /// Resolves when a hold was written that runs out before every one planned so far.
    pub async fn expiry_planned(&self) {
        self.expiries.changed().await;
    }

    /// Forgets the planned expiries up to `now`: the sweep about to run covers them.
    pub fn take_due_expiries(&self, now: DateTime<Utc>) {
        self.expiries.take_due(now);
    }

    /// Marks due holds expired; then, for each, offers what it freed to the waitlist and only
    /// then publishes its expiry, as a release does: its update reaches subscribers with the
    /// time already offered (a lapsed offer cascades the same way). Each runs in a task of its
    /// own, which the sweep does not wait for: a slow offer (a contended DynamoDB write) holds up
    /// neither the next sweep nor any other expiry. Returns how many expired.
    ///
    /// The sweep itself runs as background work too: a sweeper stopped at shutdown cannot drop
    /// expiries already committed before their offers and publishes are under way.
    pub async fn sweep(&self) -> BookingResult<usize> {
        let me = self.clone();
        self.in_background(async move { me.sweep_due().await })
            .await
            .map_err(|e| StoreError::internal("the sweep's task ended early", e))?
    }

    #[tracing::instrument(name = "booking.sweep", skip_all, level = "debug")]
    async fn sweep_due(&self) -> BookingResult<usize> {
        let now = Self::now();
        let expired = self.store.expire_due(now, 500).await?;
        let n = expired.len();
        for (r, v) in expired {
            let me = self.clone();
            self.in_background(async move { me.offer_then_publish_expiry(r, v, now).await });
        }
        Ok(n)
    }

    /// The offer of what the expired hold `r` freed, then the publish of its expiry, as a
    /// release does (`offer_then`), the publish waiting for the offer at most
    /// `OFFER_BEFORE_EXPIRY`: an expiry is broadcast within the contract's 2 s however long its
    /// offer takes.
    async fn offer_then_publish_expiry(&self, r: Reservation, v: Versions, swept: DateTime<Utc>) {
        let freed = crate::domain::waitlist::Freed::of(&r);
        let me = self.clone();
        let publish = move || {
            // The change's commit time is the sweep's; the hold records its expiry as the
            // time it changed (retention counts from then).
            let (rid, at) = (r.restaurant_id, swept);
            let image = events::Image::new(vec![r], Vec::new());
            me.publish(rid, Cause::Expired, at, v, Some(image));
        };
        self.offer_then(freed, publish, Some(OFFER_BEFORE_EXPIRY))
            .await;
    }
}
