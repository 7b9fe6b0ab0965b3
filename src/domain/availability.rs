//! Counting free tables over bookable starts.
use super::grid::{bookable_starts, Slot};
use super::pacing::window_counts;
use super::time::LocalDate;
use super::{PartySize, Reservation, Restaurant, Seating, TableId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Availability of one restaurant/date for one party size at one version.
#[derive(Debug, Clone)]
pub struct Availability {
    pub restaurant: Restaurant,
    pub date: LocalDate,
    pub party_size: PartySize,
    pub version: u64,
    pub slots: Vec<SlotCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCount {
    pub slot: Slot,
    /// Free seating options that fit the party; 0 when pacing refuses it.
    pub available_tables: u32,
    /// Covers still free in the slot's pacing window; `None` without a covers limit.
    pub covers_left: Option<u32>,
}

/// Why a hold or walk-in lost: no seating option was free, or pacing refused the party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    Table,
    Pacing,
}

impl LostReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LostReason::Table => "table",
            LostReason::Pacing => "pacing",
        }
    }
}

/// Occupied intervals grouped by table, so a count costs tables × their own reservations.
struct Occupancy<'a>(HashMap<&'a TableId, Vec<Interval>>);

type Interval = (DateTime<Utc>, DateTime<Utc>);

impl<'a> Occupancy<'a> {
    fn new(reservations: &'a [Reservation], now: DateTime<Utc>) -> Self {
        let mut m: HashMap<&TableId, Vec<_>> = HashMap::new();
        for x in reservations
            .iter()
            .filter(|x| x.occupies_at(now) && x.start < x.end)
        {
            for t in &x.table_ids {
                m.entry(t).or_default().push((x.start, x.end));
            }
        }
        Occupancy(m)
    }

    fn is_option_free(&self, s: &Seating, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        s.tables.iter().all(|t| self.is_free(t, start, end))
    }

    fn is_free(&self, table: &TableId, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        self.0
            .get(table)
            .is_none_or(|v| !v.iter().any(|(s, e)| *s < end && start < *e))
    }
}

/// Availability for a party on a date given every reservation that could overlap it.
pub fn availability(
    r: &Restaurant,
    date: LocalDate,
    p: PartySize,
    now: DateTime<Utc>,
    reservations: &[Reservation],
) -> Vec<SlotCount> {
    let busy = Occupancy::new(reservations, now);
    let options = r.fitting_options(p);
    let counts = r
        .pacing
        .map(|pc| (pc, window_counts(&pc, date, reservations, now)));
    bookable_starts(r, date, p, now)
        .into_iter()
        .map(|slot| {
            let free = options
                .iter()
                .filter(|s| busy.is_option_free(s, slot.start, slot.end))
                .count() as u32;
            let (refused, covers_left) = match &counts {
                Some((pc, m)) => {
                    let c = m.get(&pc.window_of(slot.time)).copied().unwrap_or_default();
                    (pc.refuses(c, p.get()), pc.covers_left(c))
                }
                None => (false, None),
            };
            SlotCount {
                slot,
                available_tables: if refused { 0 } else { free },
                covers_left,
            }
        })
        .collect()
}

/// Up to 3 free starts nearest the requested one (ties: the earlier), the requested one excluded.
pub fn alternatives(slots: &[SlotCount], requested: DateTime<Utc>) -> Vec<SlotCount> {
    let mut free: Vec<SlotCount> = slots
        .iter()
        .filter(|s| s.available_tables > 0 && s.slot.start != requested)
        .copied()
        .collect();
    free.sort_by_key(|s| ((s.slot.start - requested).num_seconds().abs(), s.slot.start));
    free.truncate(3);
    free
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::Status;
    use crate::domain::restaurant::tests::paris;
    use crate::domain::{TableId, WallTime};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn booking(
        r: &Restaurant,
        table: &str,
        time: &str,
        status: Status,
        exp: Option<i64>,
    ) -> Reservation {
        let date = LocalDate::parse("2026-12-05").unwrap();
        let p = PartySize::new(2).unwrap();
        let slot =
            crate::domain::grid::check_start(r, date, WallTime::parse(time).unwrap(), p, now())
                .unwrap();
        Reservation {
            id: uuid::Uuid::new_v4(),
            restaurant_id: r.id,
            table_id: TableId::parse(table).unwrap(),
            table_ids: vec![TableId::parse(table).unwrap()],
            combination_id: None,
            date,
            time: slot.time,
            start: slot.start,
            end: slot.end,
            party_size: 2,
            status,
            expires_at: exp.map(|s| now() + chrono::Duration::seconds(s)),
            guest: None,
            notes: String::new(),
            created_at: now(),
            updated_at: now(),
        }
    }

    #[test]
    fn a_booking_blocks_its_table_over_overlapping_starts_only() {
        let mut r = paris();
        r.validate().unwrap();
        let date = LocalDate::parse("2026-12-05").unwrap();
        let res = vec![booking(&r, "t1", "20:00", Status::Confirmed, None)];
        let v = availability(&r, date, PartySize::new(2).unwrap(), now(), &res);
        let at = |t: &str| {
            v.iter()
                .find(|s| s.slot.time.to_string() == t)
                .unwrap()
                .available_tables
        };
        assert_eq!(at("18:30"), 2); // 18:30–20:00 ends as the booking starts
        assert_eq!(at("18:45"), 1); // 18:45–20:15 overlaps 20:00–21:30
        assert_eq!(at("20:00"), 1);
        assert_eq!(at("21:15"), 1);
        assert_eq!(at("21:30"), 2);
    }

    #[test]
    fn released_cancelled_and_expired_holds_free_their_table() {
        let mut r = paris();
        r.validate().unwrap();
        let date = LocalDate::parse("2026-12-05").unwrap();
        let res = vec![
            booking(&r, "t1", "19:00", Status::Released, None),
            booking(&r, "t2", "19:00", Status::Held, Some(-1)),
            booking(&r, "t2", "19:00", Status::Cancelled, None),
        ];
        let v = availability(&r, date, PartySize::new(2).unwrap(), now(), &res);
        assert!(v.iter().all(|s| s.available_tables == 2));
        let live = vec![booking(&r, "t2", "19:00", Status::Held, Some(60))];
        let v = availability(&r, date, PartySize::new(2).unwrap(), now(), &live);
        assert_eq!(
            v.iter()
                .find(|s| s.slot.time.to_string() == "19:00")
                .unwrap()
                .available_tables,
            1
        );
    }

    #[test]
    fn alternatives_are_the_nearest_free_starts_earlier_first_on_ties() {
        let mut r = paris();
        r.validate().unwrap();
        let date = LocalDate::parse("2026-12-05").unwrap();
        let p = PartySize::new(2).unwrap();
        let mut v = availability(&r, date, p, now(), &[]);
        let req = v
            .iter()
            .find(|s| s.slot.time.to_string() == "19:00")
            .unwrap()
            .slot
            .start;
        for s in v.iter_mut() {
            if s.slot.time.to_string() == "19:15" {
                s.available_tables = 0;
            }
        }
        let alt: Vec<String> = alternatives(&v, req)
            .iter()
            .map(|s| s.slot.time.to_string())
            .collect();
        assert_eq!(alt, ["18:45", "18:30", "19:30"]);
    }

    #[test]
    fn a_combination_counts_only_while_every_member_is_free_and_pacing_can_zero_a_slot() {
        let mut r = paris();
        r.combinations = vec![crate::domain::Combination {
            id: TableId::parse("c12").unwrap(),
            tables: vec![TableId::parse("t1").unwrap(), TableId::parse("t2").unwrap()],
            min_party: 1,
            max_party: 6,
        }];
        r.pacing = Some(crate::domain::Pacing {
            window_minutes: 30,
            max_covers: Some(4),
            max_parties: None,
        });
        r.validate().unwrap();
        let date = LocalDate::parse("2026-12-05").unwrap();
        let count = |res: &[Reservation], party: i64, t: &str| {
            let v = availability(&r, date, PartySize::new(party).unwrap(), now(), res);
            let s = v.iter().find(|s| s.slot.time.to_string() == t).unwrap();
            (s.available_tables, s.covers_left)
        };
        // A party of 2: t1, t2 and c12.
        assert_eq!(count(&[], 2, "19:00"), (3, Some(4)));
        let res = vec![booking(&r, "t1", "20:30", Status::Confirmed, None)];
        // 19:00 for 2 (90 min) ends as t1's booking starts: all free; 19:15 loses t1 and c12.
        assert_eq!(count(&res, 2, "19:00"), (3, Some(4)));
        assert_eq!(count(&res, 2, "19:15"), (1, Some(4)));
        // The 20:30 window now has 2 covers left: t2 is free for a party of 3 at 20:45, but
        // pacing refuses it; a party of 2 still fits.
        assert_eq!(count(&res, 3, "20:45"), (0, Some(2)));
        assert_eq!(count(&res, 2, "20:45"), (1, Some(2)));
        assert_eq!(count(&res, 3, "21:00"), (1, Some(4)));
    }
}
