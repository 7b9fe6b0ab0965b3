//! Item ⇄ struct conversions, one pair per item kind, each with its unit test.
use super::keys::*;
use crate::domain::reservation::{Guest, Reservation, Status};
use crate::domain::time::WallTime;
use crate::domain::{LocalDate, Restaurant, TableId};
use crate::store::{RestaurantSummary, StoreError, StoreResult, StoredRestaurant, TokenOwner};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A restaurant-wide change raises the version of every date by this much: a date's version is
/// `wide × WIDE_STEP + Σ counters of the date`, and no date sees a billion changes.
pub const WIDE_STEP: u64 = 1_000_000_000;
/// Holds, their pointers and tokens stay readable this long after they expire, then TTL removes
/// them: a day longer than the default retention (30 days), so the retention job, which counts
/// from a hold's last change, goes first. `DynamoStore::keep_dead_for` sets it from
/// `--retention-days`.
pub const HOLD_TTL_AFTER_S: i64 = 31 * 86_400;

/// An attribute that is missing or of the wrong type.
fn corrupt(what: &str) -> StoreError {
    StoreError::corrupt(
        what,
        format!("attribute `{what}` is missing or of the wrong type"),
    )
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(name)),
    }
}

pub fn opt_s<'a>(item: &'a Item, name: &str) -> StoreResult<Option<&'a str>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        _ => Err(corrupt(name)),
    }
}

pub fn opt_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<Option<T>> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| StoreError::corrupt(name, format!("`{v}` is not a number of this type"))),
        _ => Err(corrupt(name)),
    }
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> StoreResult<T> {
    opt_n(item, name)?.ok_or_else(|| corrupt(name))
}

fn instant(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::corrupt("instant", format!("{ms} ms is out of range")))
}

fn status(v: &str) -> StoreResult<Status> {
    Status::parse(v).ok_or_else(|| StoreError::corrupt("status", format!("unknown status `{v}`")))
}

fn uuid(item: &Item, name: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(get_s(item, name)?).map_err(|e| StoreError::corrupt(name, e))
}

/// A reservation as stored, with what the store keeps beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReservation {
    pub reservation: Reservation,
    /// How many writes the item has had: the condition of the next one.
    pub writes: u64,
    /// The stamp of the transaction that wrote it last (read back after an unknown outcome).
    pub stamp: String,
    pub token_hash: Option<String>,
    /// When TTL may delete it: set on a hold, kept when it is released or expires.
    pub ttl: Option<i64>,
    /// The live-hold slot a capped hold claimed (kept after, so retention can clear it).
    pub slot: Option<Slot>,
    /// The sort key of the pacing window item it was counted in (`pw`), when the restaurant
    /// was paced as it was written: a release or cancel takes it out of that item.
    pub window: Option<String>,
    /// The waitlist entry this hold was offered to (`wl`): its confirm books the entry, its
    /// release or expiry lapses it, in the same transaction.
    pub entry: Option<Uuid>,
}

/// One slot of a client's live-hold cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub client: String,
    pub index: u32,
}

/// Released and expired holds leave the day's key range (see [`super::keys`]).
pub fn is_dead(status: Status) -> bool {
    matches!(status, Status::Released | Status::Expired)
}

/// The sort key a reservation lives at, given its status.
pub fn reservation_sk_of(r: &Reservation) -> String {
    if is_dead(r.status) {
        dead_sk(r.date, r.id)
    } else if r.status == Status::Cancelled {
        cancelled_sk(r.date, r.id)
    } else {
        reservation_sk(r.date, r.id)
    }
}

/// When TTL may remove a hold's items: `after_s` past its expiry.
pub fn hold_ttl(r: &Reservation, after_s: i64) -> Option<i64> {
    (r.status == Status::Held)
        .then(|| r.expires_at.map(|e| e.timestamp() + after_s))
        .flatten()
}

pub fn reservation_item(r: &StoredReservation) -> StoreResult<Item> {
    let x = &r.reservation;
    let mut item = key(restaurant_pk(x.restaurant_id), reservation_sk_of(x));
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put("id", s(x.id.to_string()));
    put("rid", s(x.restaurant_id.to_string()));
    put("table", s(x.table_id.as_str()));
    if x.table_ids.len() > 1 || x.table_ids.first() != Some(&x.table_id) {
        put(
            "tables",
            AttributeValue::L(x.table_ids.iter().map(|t| s(t.as_str())).collect()),
        );
    }
    if let Some(c) = &x.combination_id {
        put("combo", s(c.as_str()));
    }
    put("date", s(x.date.to_string()));
    put("time", s(x.time.to_string()));
    put("start_ms", n(x.start.timestamp_millis()));
    put("end_ms", n(x.end.timestamp_millis()));
    put("party", n(x.party_size));
    put("status", s(x.status.as_str()));
    put("notes", s(&x.notes));
    put("created_ms", n(x.created_at.timestamp_millis()));
    put("updated_ms", n(x.updated_at.timestamp_millis()));
    put("wc", n(r.writes));
    put("tx", s(&r.stamp));
    if let Some(e) = x.expires_at {
        put("exp_ms", n(e.timestamp_millis()));
    }
    if let Some(g) = &x.guest {
        put(
            "guest",
            s(serde_json::to_string(g).map_err(|e| StoreError::internal("encode guest", e))?),
        );
    }
    if let Some(h) = &r.token_hash {
        put("th", s(h));
    }
    if let Some(t) = r.ttl {
        put(TTL, n(t));
    }
    if x.status == Status::Held {
        if let Some(e) = x.expires_at {
            put(DUE_PK, s(due_pk(x.id)));
            put(DUE_AT, n(e.timestamp_millis()));
        }
    }
    if is_dead(x.status) {
        put(GC_PK, s(gc_pk(x.id.as_bytes()[14])));
        put(GC_AT, n(x.updated_at.timestamp_millis()));
    }
    if let Some(slot) = &r.slot {
        put("cl", s(&slot.client));
        put("slot", n(slot.index));
    }
    if let Some(w) = &r.window {
        put("pw", s(w));
    }
    if let Some(e) = r.entry {
        put("wl", s(e.to_string()));
    }
    Ok(item)
}

fn table_id(v: &str) -> StoreResult<TableId> {
    TableId::parse(v).map_err(|e| StoreError::corrupt("table", e))
}

/// Every table a reservation occupies: `tables` when it was seated on a combination, else its
/// one `table`.
fn tables_of(item: &Item) -> StoreResult<Vec<TableId>> {
    match item.get("tables") {
        None => Ok(vec![table_id(get_s(item, "table")?)?]),
        Some(AttributeValue::L(v)) if !v.is_empty() => v
            .iter()
            .map(|t| match t {
                AttributeValue::S(t) => table_id(t),
                _ => Err(corrupt("tables")),
            })
            .collect(),
        Some(_) => Err(corrupt("tables")),
    }
}

pub fn reservation_from(item: &Item) -> StoreResult<StoredReservation> {
    let guest = opt_s(item, "guest")?
        .map(|g| serde_json::from_str::<Guest>(g).map_err(|e| StoreError::corrupt("guest", e)))
        .transpose()?;
    Ok(StoredReservation {
        reservation: Reservation {
            id: uuid(item, "id")?,
            restaurant_id: uuid(item, "rid")?,
            table_id: table_id(get_s(item, "table")?)?,
            table_ids: tables_of(item)?,
            combination_id: opt_s(item, "combo")?.map(table_id).transpose()?,
            date: LocalDate::parse(get_s(item, "date")?)
                .map_err(|e| StoreError::corrupt("date", e))?,
            time: WallTime::parse(get_s(item, "time")?)
                .map_err(|e| StoreError::corrupt("time", e))?,
            start: instant(get_n(item, "start_ms")?)?,
            end: instant(get_n(item, "end_ms")?)?,
            party_size: get_n(item, "party")?,
            status: status(get_s(item, "status")?)?,
            expires_at: opt_n(item, "exp_ms")?.map(instant).transpose()?,
            guest,
            notes: get_s(item, "notes")?.to_owned(),
            created_at: instant(get_n(item, "created_ms")?)?,
            updated_at: instant(get_n(item, "updated_ms")?)?,
        },
        writes: get_n(item, "wc")?,
        stamp: get_s(item, "tx")?.to_owned(),
        token_hash: opt_s(item, "th")?.map(str::to_owned),
        ttl: opt_n(item, TTL)?,
        slot: match opt_s(item, "cl")? {
            Some(client) => Some(Slot {
                client: client.to_owned(),
                index: get_n(item, "slot")?,
            }),
            None => None,
        },
        window: opt_s(item, "pw")?.map(str::to_owned),
        entry: opt_s(item, "wl")?
            .map(|e| Uuid::parse_str(e).map_err(|e| StoreError::corrupt("wl", e)))
            .transpose()?,
    })
}

/// The restaurant item: settings as one JSON document, the revision guarding them, the
/// restaurant-wide version, and the fence a guarded settings change holds while it checks.
#[derive(Debug, Clone, PartialEq)]
pub struct RestaurantItem {
    pub stored: StoredRestaurant,
    pub wide: u64,
    pub created_ms: i64,
    pub fence_until_ms: Option<i64>,
}

pub fn restaurant_item(r: &RestaurantItem) -> StoreResult<Item> {
    let x = &r.stored.restaurant;
    let mut item = key(restaurant_pk(x.id), META_SK);
    let doc = serde_json::to_string(x)
        .map_err(|e| StoreError::internal("encode restaurant settings", e))?;
    item.insert("doc".into(), s(doc));
    item.insert("name".into(), s(&x.name));
    item.insert("rev".into(), n(r.stored.revision));
    item.insert("wide".into(), n(r.wide));
    item.insert("created_ms".into(), n(r.created_ms));
    if let Some(f) = r.fence_until_ms {
        item.insert("fence_until".into(), n(f));
    }
    Ok(item)
}

pub fn restaurant_from(item: &Item) -> StoreResult<RestaurantItem> {
    let restaurant: Restaurant = serde_json::from_str(get_s(item, "doc")?)
        .map_err(|e| StoreError::corrupt("restaurant", e))?;
    Ok(RestaurantItem {
        stored: StoredRestaurant {
            restaurant,
            revision: get_n(item, "rev")?,
        },
        wide: get_n(item, "wide")?,
        created_ms: get_n(item, "created_ms")?,
        fence_until_ms: opt_n(item, "fence_until")?,
    })
}

pub fn directory_item(r: &Restaurant, created_ms: i64) -> Item {
    let mut item = key(DIRECTORY_PK, directory_sk(created_ms, r.id));
    item.insert("id".into(), s(r.id.to_string()));
    item.insert("name".into(), s(&r.name));
    item.insert("tz".into(), s(r.timezone.name()));
    item
}

pub fn directory_from(item: &Item) -> StoreResult<RestaurantSummary> {
    Ok(RestaurantSummary {
        id: uuid(item, "id")?,
        name: get_s(item, "name")?.to_owned(),
        timezone: get_s(item, "tz")?.to_owned(),
    })
}

/// Where a reservation lives, found from its id alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    pub date: LocalDate,
    pub ttl: Option<i64>,
    /// Whether the reservation is a dead hold (it lives at [`dead_sk`]).
    pub dead: bool,
    /// Whether it is cancelled (it lives at [`cancelled_sk`]; one cancelled before that layout
    /// was pointed to without this and stays at its day key).
    pub cancelled: bool,
}

impl Pointer {
    /// The pointer of `r` as it is now.
    pub fn of(r: &Reservation, ttl: Option<i64>) -> Pointer {
        Pointer {
            id: r.id,
            restaurant_id: r.restaurant_id,
            date: r.date,
            ttl,
            dead: is_dead(r.status),
            cancelled: r.status == Status::Cancelled,
        }
    }

    /// The key of the reservation item it points to.
    pub fn target(&self) -> (String, String) {
        let sk = if self.dead {
            dead_sk(self.date, self.id)
        } else if self.cancelled {
            cancelled_sk(self.date, self.id)
        } else {
            reservation_sk(self.date, self.id)
        };
        (restaurant_pk(self.restaurant_id), sk)
    }
}

pub fn pointer_item(p: &Pointer) -> Item {
    let (pk, sk) = pointer_key(p.id);
    let mut item = key(pk, sk);
    item.insert("rid".into(), s(p.restaurant_id.to_string()));
    item.insert("date".into(), s(p.date.to_string()));
    if p.dead {
        item.insert("dead".into(), AttributeValue::Bool(true));
    }
    if p.cancelled {
        item.insert("cx".into(), AttributeValue::Bool(true));
    }
    if let Some(t) = p.ttl {
        item.insert(TTL.into(), n(t));
    }
    item
}

pub fn pointer_from(id: Uuid, item: &Item) -> StoreResult<Pointer> {
    Ok(Pointer {
        id,
        restaurant_id: uuid(item, "rid")?,
        date: LocalDate::parse(get_s(item, "date")?).map_err(|e| StoreError::corrupt("date", e))?,
        ttl: opt_n(item, TTL)?,
        dead: matches!(item.get("dead"), Some(AttributeValue::Bool(true))),
        cancelled: matches!(item.get("cx"), Some(AttributeValue::Bool(true))),
    })
}

pub fn token_item(hash: &str, owner: &TokenOwner, ttl: Option<i64>) -> Item {
    let (pk, sk) = token_key(hash);
    let mut item = key(pk, sk);
    match owner {
        TokenOwner::Staff { restaurant_id } => {
            item.insert("rid".into(), s(restaurant_id.to_string()));
        }
        TokenOwner::Reservation {
            restaurant_id,
            reservation_id,
        } => {
            item.insert("rid".into(), s(restaurant_id.to_string()));
            item.insert("res".into(), s(reservation_id.to_string()));
        }
    }
    if let Some(t) = ttl {
        item.insert(TTL.into(), n(t));
    }
    item
}

pub fn token_from(item: &Item) -> StoreResult<TokenOwner> {
    let restaurant_id = uuid(item, "rid")?;
    Ok(match opt_s(item, "res")? {
        None => TokenOwner::Staff { restaurant_id },
        Some(r) => TokenOwner::Reservation {
            restaurant_id,
            reservation_id: Uuid::parse_str(r).map_err(|e| StoreError::corrupt("token", e))?,
        },
    })
}

/// One table's change counter on one date. The date's version is the sum of its counters, so
/// writes to different tables never contend on a shared version item. `last`/`last_writes`
/// name the reservation the latest change wrote, to detect a read torn across a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub date: LocalDate,
    /// What the counter counts: a table's id, or `~wl` for the date's waitlist.
    pub table: String,
    /// `n`: changes of the table's reservations of `date`, counted in `date`'s version.
    pub changes: u64,
    /// `nx`: those of the changes whose reservation may run past midnight, counted again in
    /// the next date's version (every read of that date covers this item and its reservations).
    pub next_changes: u64,
    pub last: Uuid,
    pub last_writes: u64,
    /// When TTL may remove `last` (a hold): its absence is then no sign of a torn read.
    pub last_ttl: Option<i64>,
    /// `last` left the day's key range with this change (a hold released or expired, or a
    /// purged one): its absence is no sign of a torn read either.
    pub last_gone: bool,
}

pub fn counter_from(item: &Item) -> StoreResult<Counter> {
    let sk = get_s(item, SK)?;
    let date = sk
        .strip_prefix("D#")
        .and_then(|r| r.split('#').next())
        .and_then(|d| LocalDate::parse(d).ok())
        .ok_or_else(|| StoreError::corrupt("counter key", format!("`{sk}` names no date")))?;
    let table = sk.split("#C#").nth(1).unwrap_or_default().to_owned();
    Ok(Counter {
        date,
        table,
        changes: get_n(item, "n")?,
        next_changes: opt_n(item, "nx")?.unwrap_or(0),
        last: uuid(item, "lr")?,
        last_writes: get_n(item, "lw")?,
        last_ttl: opt_n(item, "lt")?,
        last_gone: matches!(item.get("lg"), Some(AttributeValue::Bool(true))),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemRecord {
    pub fingerprint: String,
    /// `None` while in flight; then the first final answer.
    pub answer: Option<(u16, String)>,
    pub created_ms: i64,
}

pub const IDEM_TTL_S: i64 = 24 * 3600;

pub fn idem_item(key_: &str, r: &IdemRecord) -> Item {
    let (pk, sk) = idem_key(key_);
    let mut item = key(pk, sk);
    item.insert("fp".into(), s(&r.fingerprint));
    item.insert("created_ms".into(), n(r.created_ms));
    item.insert(TTL.into(), n(r.created_ms / 1000 + IDEM_TTL_S));
    item.insert(GC_PK.into(), s(gc_pk(idem_spread(key_))));
    item.insert(GC_AT.into(), n(r.created_ms));
    match &r.answer {
        None => item.insert("state".into(), s("in_flight")),
        Some((status, body)) => {
            item.insert("status".into(), n(status));
            item.insert("body".into(), s(body));
            item.insert("state".into(), s("done"))
        }
    };
    item
}

/// A byte of the scope key that spreads records over the retention shards.
fn idem_spread(key_: &str) -> u8 {
    key_.bytes()
        .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b))
}

pub fn idem_from(item: &Item) -> StoreResult<IdemRecord> {
    let answer = match get_s(item, "state")? {
        "in_flight" => None,
        "done" => Some((get_n(item, "status")?, get_s(item, "body")?.to_owned())),
        other => {
            return Err(StoreError::corrupt(
                "idempotency state",
                format!("unknown state `{other}`"),
            ))
        }
    };
    Ok(IdemRecord {
        fingerprint: get_s(item, "fp")?.to_owned(),
        answer,
        created_ms: get_n(item, "created_ms")?,
    })
}

#[cfg(test)]
#[path = "items_tests.rs"]
mod tests;
