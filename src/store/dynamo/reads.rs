//! The day view, the staff list and reservation lookups.
use super::errors::Contention;
use super::io::{parts_of, version_of};
use super::items::{counter_from, pointer_from, reservation_from, Counter, StoredReservation};
use super::keys::*;
use super::DynamoStore;
use crate::domain::{LocalDate, Reservation, Status};
use crate::store::{DayView, StoreError, StoreResult};
use chrono::Utc;
use std::collections::HashMap;
use uuid::Uuid;

/// How many moves of one reservation a read follows (a hold moves once, when it expires or is
/// released) before it answers the store unavailable.
const MOVES_FOLLOWED: usize = 3;

/// Reservations and counters read by one `Query`.
#[derive(Debug, Default)]
pub struct DayItems {
    pub reservations: Vec<StoredReservation>,
    pub counters: Vec<Counter>,
}

pub fn split(items: &[Item]) -> StoreResult<DayItems> {
    let mut out = DayItems::default();
    for item in items {
        let sk = super::items::get_s(item, SK)?;
        if sk.contains("#R#") {
            out.reservations.push(reservation_from(item)?);
        } else if sk.contains("#C#") {
            out.counters.push(counter_from(item)?);
        }
    }
    Ok(out)
}

/// Whether a read saw a counter's change but not that change's reservation write: DynamoDB
/// applies a transaction's items one by one, and a `Query` may pass between them.
pub fn torn(d: &DayItems, now_s: i64) -> bool {
    let writes: HashMap<Uuid, u64> = d
        .reservations
        .iter()
        .map(|r| (r.reservation.id, r.writes))
        .collect();
    d.counters.iter().any(|c| match writes.get(&c.last) {
        Some(w) => *w < c.last_writes,
        // Absent: fine if it left the day's range, or if TTL may have removed it.
        None => !c.last_gone && c.last_ttl.is_none_or(|t| t > now_s),
    })
}

pub fn ordered(mut v: Vec<Reservation>) -> Vec<Reservation> {
    v.sort_by(|a, b| (a.start, &a.table_id).cmp(&(b.start, &b.table_id)));
    v
}

impl DynamoStore {
    /// The items of `[lo, hi]` in a restaurant's partition, read again while torn.
    pub(super) async fn untorn(&self, rid: Uuid, lo: &str, hi: &str) -> StoreResult<DayItems> {
        // A transaction's items land within moments; only a write storm keeps a read torn.
        let mut contention = Contention::default();
        loop {
            let items = split(&self.query_range(&restaurant_pk(rid), lo, hi).await?)?;
            if !torn(&items, Utc::now().timestamp()) {
                return Ok(items);
            }
            if !contention.pause().await {
                return Err(StoreError::Unavailable(
                    "the day keeps changing under its read".into(),
                ));
            }
        }
    }

    pub(super) async fn day_(&self, rid: Uuid, date: LocalDate) -> StoreResult<DayView> {
        let (lo, hi) = (date_prefix(date.pred()), format!("{}~", date_prefix(date)));
        let (items, restaurant) =
            tokio::try_join!(self.untorn(rid, &lo, &hi), self.restaurant_item(rid))?;
        let wide = restaurant.map_or(0, |r| r.wide);
        let version = version_of(wide, date, &items.counters);
        Ok(DayView {
            version,
            parts: parts_of(wide, date, &items.counters),
            // A reservation cancelled before cancelled ones left the day's range is still in
            // it: read, but not part of the day.
            reservations: ordered(
                items
                    .reservations
                    .into_iter()
                    .map(|r| r.reservation)
                    .filter(|r| crate::store::in_day(r.status))
                    .collect(),
            ),
        })
    }

    /// The date's version from its change counters and the day before's (their `nx`) and the
    /// restaurant-wide part, without its reservations. Each part only grows, so parts read a
    /// moment apart never add up to less than a day read before them.
    pub(super) async fn day_version_(&self, rid: Uuid, date: LocalDate) -> StoreResult<u64> {
        let pk = restaurant_pk(rid);
        let (own, pred) = (
            format!("{}C#", date_prefix(date)),
            format!("{}C#", date_prefix(date.pred())),
        );
        let (own, pred, restaurant) = tokio::try_join!(
            self.query_prefix(&pk, &own),
            self.query_prefix(&pk, &pred),
            self.restaurant_item(rid)
        )?;
        let counters = own
            .iter()
            .chain(pred.iter())
            .map(counter_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(version_of(
            restaurant.map_or(0, |r| r.wide),
            date,
            &counters,
        ))
    }

    pub(super) async fn cancelled_on_(
        &self,
        rid: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let pk = restaurant_pk(rid);
        // A reservation cancelled before cancelled ones left the day's range is still under
        // `D#` (the day's read drops it): the floor, which lists them, reads that range too.
        let (moved, before) = (cancelled_prefix(date), format!("{}R#", date_prefix(date)));
        let (moved, before) = tokio::try_join!(
            self.query_prefix(&pk, &moved),
            self.query_prefix(&pk, &before)
        )?;
        let mut all = Vec::new();
        for i in moved.iter().chain(before.iter()) {
            let r = reservation_from(i)?.reservation;
            if r.status == Status::Cancelled && !all.iter().any(|x: &Reservation| x.id == r.id) {
                all.push(r);
            }
        }
        Ok(ordered(all))
    }

    pub(super) async fn reservations_on_(
        &self,
        rid: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        // The staff list shows every status: the date's live records, its cancelled ones and
        // the dead holds kept beside them (only this listing, the floor and retention read
        // those).
        let (prefix, dead, cancelled, pk) = (
            format!("{}R#", date_prefix(date)),
            dead_prefix(date),
            cancelled_prefix(date),
            restaurant_pk(rid),
        );
        // One after the other, the live first: a hold that expires or is released meanwhile
        // moves from the live records to the dead, and a cancelled reservation to the
        // cancelled, only that way, so it is in its new range if it left the live before their
        // read, and in both if it left after (read in parallel it could be in neither). The
        // record in the new range, the later, is the one kept.
        let live = self.query_prefix(&pk, &prefix).await?;
        let (dead, cancelled) = tokio::try_join!(
            self.query_prefix(&pk, &dead),
            self.query_prefix(&pk, &cancelled)
        )?;
        let mut all: Vec<Reservation> = dead
            .iter()
            .chain(cancelled.iter())
            .chain(live.iter())
            .map(|i| reservation_from(i).map(|r| r.reservation))
            .collect::<StoreResult<_>>()?;
        let mut seen = std::collections::HashSet::new();
        all.retain(|r| seen.insert(r.id));
        // As on SQLite: by start and table, then by when each was made (ties of one table and
        // start: dead holds and the reservation that followed them).
        all.sort_by(|a, b| {
            (a.start, &a.table_id, a.created_at, a.id).cmp(&(
                b.start,
                &b.table_id,
                b.created_at,
                b.id,
            ))
        });
        Ok(all)
    }

    pub(super) async fn stored_reservation(
        &self,
        id: Uuid,
    ) -> StoreResult<Option<StoredReservation>> {
        // The pointer, then the record it points to: a hold that expires or is released between
        // the two reads has moved to a new key (the pointer with it, in one transaction), so a
        // record gone from where the pointer said is looked for where it says now.
        let mut target = None;
        for _ in 0..MOVES_FOLLOWED {
            let Some(p) = self.get(pointer_key(id)).await? else {
                return Ok(None);
            };
            let key = pointer_from(id, &p)?.target();
            if target.as_ref() == Some(&key) {
                // It points where it pointed: the record is gone (a purge), not moved.
                return Ok(None);
            }
            if let Some(item) = self.get(key.clone()).await? {
                return reservation_from(&item).map(Some);
            }
            target = Some(key);
        }
        Err(StoreError::Unavailable(
            "the reservation keeps moving under its read".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::Status;
    use crate::domain::time::WallTime;
    use crate::domain::TableId;

    fn stored(id: Uuid, writes: u64) -> StoredReservation {
        let t = Utc::now();
        StoredReservation {
            reservation: Reservation {
                id,
                restaurant_id: Uuid::nil(),
                table_id: TableId::parse("t1").unwrap(),
                table_ids: vec![TableId::parse("t1").unwrap()],
                combination_id: None,
                date: LocalDate::parse("2026-12-05").unwrap(),
                time: WallTime::parse("19:00").unwrap(),
                start: t,
                end: t,
                party_size: 2,
                status: Status::Confirmed,
                expires_at: None,
                guest: None,
                notes: String::new(),
                created_at: t,
                updated_at: t,
            },
            writes,
            stamp: "s".into(),
            token_hash: None,
            ttl: None,
            slot: None,
            window: None,
            entry: None,
        }
    }

    fn counter(last: Uuid, last_writes: u64, last_ttl: Option<i64>) -> Counter {
        Counter {
            date: LocalDate::parse("2026-12-05").unwrap(),
            table: "t1".into(),
            changes: 5,
            next_changes: 0,
            last,
            last_writes,
            last_ttl,
            last_gone: false,
        }
    }

    #[test]
    fn a_read_is_torn_when_a_counter_is_ahead_of_its_reservation() {
        let id = Uuid::new_v4();
        let d = |w, c| DayItems {
            reservations: vec![stored(id, w)],
            counters: vec![c],
        };
        assert!(!torn(&d(2, counter(id, 2, None)), 0));
        assert!(!torn(&d(3, counter(id, 2, None)), 0), "item newer: fine");
        assert!(torn(&d(1, counter(id, 2, None)), 0));
    }

    #[test]
    fn a_missing_reservation_is_torn_unless_ttl_may_have_removed_it() {
        let d = |c| DayItems {
            reservations: vec![],
            counters: vec![c],
        };
        assert!(torn(&d(counter(Uuid::new_v4(), 1, None)), 100));
        assert!(torn(&d(counter(Uuid::new_v4(), 1, Some(101))), 100));
        assert!(!torn(&d(counter(Uuid::new_v4(), 1, Some(100))), 100));
        let gone = Counter {
            last_gone: true,
            ..counter(Uuid::new_v4(), 1, None)
        };
        assert!(!torn(&d(gone), 100), "it left the day's range");
    }
}
