//! Waitlist items ⇄ structs: the entry, its pointer and token, and the waitlist day.
use super::items::{get_n, get_s, opt_n, opt_s};
use super::keys::*;
use crate::domain::reservation::Guest;
use crate::domain::time::WallTime;
use crate::domain::waitlist::{Offer, WaitStatus, WaitlistEntry};
use crate::domain::LocalDate;
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An entry as stored, with its write count (the condition of the next write) and the hash of
/// its token.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub entry: WaitlistEntry,
    pub writes: u64,
    pub token_hash: String,
    /// The address the entry's offer was mailed to: its lapse mails "lost" there.
    pub mail_to: Option<String>,
}

/// Finished entries (`lapsed`, `left`) carry the retention index, by their last change.
pub fn is_finished(s: WaitStatus) -> bool {
    matches!(s, WaitStatus::Lapsed | WaitStatus::Left)
}

fn instant(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::corrupt("instant", format!("{ms} ms is out of range")))
}

fn id(item: &Item, name: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(get_s(item, name)?).map_err(|e| StoreError::corrupt(name, e))
}

fn time(v: &str) -> StoreResult<WallTime> {
    WallTime::parse(v).map_err(|e| StoreError::corrupt("time", e))
}

fn date(item: &Item) -> StoreResult<LocalDate> {
    LocalDate::parse(get_s(item, "date")?).map_err(|e| StoreError::corrupt("date", e))
}

/// The retention shard and instant of a finished entry.
pub fn entry_gc(e: &WaitlistEntry) -> (String, i64) {
    (gc_pk(e.id.as_bytes()[14]), e.updated_at.timestamp_millis())
}

pub fn entry_item(x: &StoredEntry) -> StoreResult<Item> {
    let e = &x.entry;
    let (pk, sk) = entry_key(e.restaurant_id, e.date, e.id);
    let mut item = key(pk, sk);
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put("id", s(e.id.to_string()));
    put("rid", s(e.restaurant_id.to_string()));
    put("date", s(e.date.to_string()));
    put("party", n(e.party_size));
    put("from", s(e.from.to_string()));
    put("to", s(e.to.to_string()));
    put("status", s(e.status.as_str()));
    put(
        "guest",
        s(serde_json::to_string(&e.guest).map_err(|e| StoreError::internal("encode guest", e))?),
    );
    put("th", s(&x.token_hash));
    put("created_ms", n(e.created_at.timestamp_millis()));
    put("updated_ms", n(e.updated_at.timestamp_millis()));
    put("wc", n(x.writes));
    if let Some(to) = &x.mail_to {
        put("mail_to", s(to));
    }
    if let Some(o) = &e.offer {
        put("ores", s(o.reservation_id.to_string()));
        put("otime", s(o.time.to_string()));
        put("oexp", n(o.expires_at.timestamp_millis()));
    }
    if is_finished(e.status) {
        let (shard, at) = entry_gc(e);
        put(GC_PK, s(shard));
        put(GC_AT, n(at));
    }
    Ok(item)
}

pub fn entry_from(item: &Item) -> StoreResult<StoredEntry> {
    let status = get_s(item, "status")?;
    let offer = match opt_s(item, "ores")? {
        Some(r) => Some(Offer {
            reservation_id: Uuid::parse_str(r).map_err(|e| StoreError::corrupt("ores", e))?,
            time: time(get_s(item, "otime")?)?,
            expires_at: instant(get_n(item, "oexp")?)?,
        }),
        None => None,
    };
    Ok(StoredEntry {
        entry: WaitlistEntry {
            id: id(item, "id")?,
            restaurant_id: id(item, "rid")?,
            date: date(item)?,
            party_size: get_n(item, "party")?,
            from: time(get_s(item, "from")?)?,
            to: time(get_s(item, "to")?)?,
            status: WaitStatus::parse(status)
                .ok_or_else(|| StoreError::corrupt("waitlist status", status.to_owned()))?,
            offer,
            guest: serde_json::from_str::<Guest>(get_s(item, "guest")?)
                .map_err(|e| StoreError::corrupt("guest", e))?,
            created_at: instant(get_n(item, "created_ms")?)?,
            updated_at: instant(get_n(item, "updated_ms")?)?,
        },
        writes: get_n(item, "wc")?,
        token_hash: get_s(item, "th")?.to_owned(),
        mail_to: opt_s(item, "mail_to")?.map(str::to_owned),
    })
}

/// Where an entry lives, from its pointer or its token item.
pub fn entry_location(item: &Item) -> StoreResult<(Uuid, LocalDate, Uuid)> {
    Ok((id(item, "rid")?, date(item)?, id(item, "id")?))
}

/// The pointer (`WX#{id}`) or token (`WK#{hash}`) item of an entry: where it lives.
pub fn entry_locator(k: (String, String), e: &WaitlistEntry) -> Item {
    let mut item = key(k.0, k.1);
    item.insert("rid".into(), s(e.restaurant_id.to_string()));
    item.insert("date".into(), s(e.date.to_string()));
    item.insert("id".into(), s(e.id.to_string()));
    item
}

/// A waitlist day: its restaurant and date (from the sort key), and how many joins it had.
pub fn wait_day_from(item: &Item) -> StoreResult<(LocalDate, Uuid)> {
    let sk = get_s(item, SK)?;
    let bad = || StoreError::corrupt("waitlist day", format!("`{sk}` is not date#restaurant"));
    let (d, r) = sk.split_once('#').ok_or_else(bad)?;
    Ok((
        LocalDate::parse(d).map_err(|_| bad())?,
        Uuid::parse_str(r).map_err(|_| bad())?,
    ))
}

/// How many joins a waitlist day counted (`j`).
pub fn wait_day_joins(item: &Item) -> StoreResult<u64> {
    Ok(opt_n(item, "j")?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(status: WaitStatus) -> StoredEntry {
        let at = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        StoredEntry {
            entry: WaitlistEntry {
                id: Uuid::new_v4(),
                restaurant_id: Uuid::new_v4(),
                date: LocalDate::parse("2026-12-05").unwrap(),
                party_size: 4,
                from: WallTime::parse("18:30").unwrap(),
                to: WallTime::parse("21:00").unwrap(),
                status,
                offer: (status != WaitStatus::Waiting).then(|| Offer {
                    reservation_id: Uuid::new_v4(),
                    time: WallTime::parse("19:00").unwrap(),
                    expires_at: at + chrono::Duration::milliseconds(120_123),
                }),
                guest: Guest {
                    name: "Ada".into(),
                    email: Some("ada@example.com".into()),
                    phone: None,
                },
                created_at: at + chrono::Duration::milliseconds(7),
                updated_at: at + chrono::Duration::milliseconds(9),
            },
            writes: 3,
            token_hash: "h".into(),
            mail_to: (status != WaitStatus::Waiting).then(|| "ada@example.com".into()),
        }
    }

    #[test]
    fn an_entry_round_trips_and_only_a_finished_one_carries_the_retention_index() {
        for st in WaitStatus::ALL {
            let e = entry(st);
            let item = entry_item(&e).unwrap();
            assert_eq!(entry_from(&item).unwrap(), e);
            assert_eq!(item.contains_key(GC_PK), is_finished(st), "{st:?}");
            let (pk, sk) = entry_key(e.entry.restaurant_id, e.entry.date, e.entry.id);
            assert_eq!(get_s(&item, PK).unwrap(), pk);
            assert!(sk.starts_with(&entry_day_prefix(e.entry.date)));
        }
    }

    #[test]
    fn a_locator_names_the_entry_and_a_day_key_reads_back() {
        let e = entry(WaitStatus::Waiting).entry;
        let item = entry_locator(entry_pointer_key(e.id), &e);
        assert_eq!(
            entry_location(&item).unwrap(),
            (e.restaurant_id, e.date, e.id)
        );
        let (pk, sk) = wait_day_key(e.date, e.restaurant_id);
        let day = key(pk, sk);
        assert_eq!(wait_day_from(&day).unwrap(), (e.date, e.restaurant_id));
        assert_eq!(wait_day_joins(&day).unwrap(), 0);
    }
}
