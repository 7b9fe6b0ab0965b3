//! Counting free tables over bookable starts.
use super::grid::{bookable_starts, Slot};
use super::pacing::window_counts;
use super::reservation::Status;
use super::time::LocalDate;
use super::{PartySize, Reservation, Restaurant, TableId};
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

/// One table's occupied intervals, sorted by start, with the latest end of each prefix: the
/// intervals that start before `end` are a prefix, and one of them overlaps `[start, end)`
/// exactly when the latest end among them is after `start`. A check is one binary search,
/// whatever the table's day holds.
struct Busy {
    starts: Vec<DateTime<Utc>>,
    latest_end: Vec<DateTime<Utc>>,
}

impl Busy {
    fn new(mut intervals: Vec<Interval>) -> Self {
        intervals.sort_unstable();
        let starts = intervals.iter().map(|(s, _)| *s).collect();
        let latest_end = intervals
            .iter()
            .scan(DateTime::<Utc>::MIN_UTC, |latest, (_, e)| {
                *latest = (*latest).max(*e);
                Some(*latest)
            })
            .collect();
        Busy { starts, latest_end }
    }

    fn overlaps(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> bool {
        let before_end = self.starts.partition_point(|s| *s < end);
        before_end > 0 && self.latest_end[before_end - 1] > start
    }
}

type Interval = (DateTime<Utc>, DateTime<Utc>);

/// The occupied intervals of each table, from the reservations that occupy it at `now`.
fn occupancy(reservations: &[Reservation], now: DateTime<Utc>) -> HashMap<&TableId, Busy> {
    let mut m: HashMap<&TableId, Vec<Interval>> = HashMap::new();
    for x in reservations
        .iter()
        .filter(|x| x.occupies_at(now) && x.start < x.end)
    {
        for t in &x.table_ids {
            m.entry(t).or_default().push((x.start, x.end));
        }
    }
    m.into_iter().map(|(t, v)| (t, Busy::new(v))).collect()
}

/// Availability for a party on a date given every reservation that could overlap it.
pub fn availability(
    r: &Restaurant,
    date: LocalDate,
    p: PartySize,
    now: DateTime<Utc>,
    reservations: &[Reservation],
) -> Vec<SlotCount> {
    let busy = occupancy(reservations, now);
    // Each option as the busy tables it needs free (a table with nothing on it needs no check),
    // looked up once, not once per slot.
    let options: Vec<Vec<&Busy>> = r
        .fitting_options(p)
        .iter()
        .map(|s| s.tables.iter().filter_map(|t| busy.get(t)).collect())
        .collect();
    let counts = r
        .pacing
        .map(|pc| (pc, window_counts(&pc, date, reservations, now)));
    bookable_starts(r, date, p, now)
        .into_iter()
        .map(|slot| {
            let free = options
                .iter()
                .filter(|tables| !tables.iter().any(|b| b.overlaps(slot.start, slot.end)))
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

/// Until when `availability` keeps giving `slots`, computed at `now` from `reservations`, as
/// time passes and nothing is written: it depends on `now` only through the listed starts
/// (each stops being bookable once `now` reaches it) and through the holds that occupy at
/// `now` (each stops once `now` reaches its expiry). `None` for an empty listing, which can
/// also end when the date enters the booking horizon.
pub fn valid_until(
    slots: &[SlotCount],
    reservations: &[Reservation],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let first_start = slots.iter().map(|s| s.slot.start).min()?;
    Some(first_expiry_after(reservations, now).map_or(first_start, |e| e.min(first_start)))
}

/// The first expiry after `now` of a hold among `reservations`: when one of them stops
/// occupying its table with no write at all.
pub fn first_expiry_after(
    reservations: &[Reservation],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    reservations
        .iter()
        .filter(|x| x.status == Status::Held)
        .filter_map(|x| x.expires_at)
        .filter(|e| *e > now)
        .min()
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
    use crate::domain::Seating;
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

    /// Paris with `c12`, the combination of its two tables, for parties of 1 to 6.
    fn paris_with_c12() -> Restaurant {
        let mut r = paris();
        r.combinations = vec![crate::domain::Combination {
            id: TableId::parse("c12").unwrap(),
            tables: vec![TableId::parse("t1").unwrap(), TableId::parse("t2").unwrap()],
            min_party: 1,
            max_party: 6,
        }];
        r
    }

    /// `paris_with_c12`, validated, with at most `covers` covers a half hour.
    fn paced_paris_with_c12(covers: u32) -> Restaurant {
        let mut r = paris_with_c12();
        r.pacing = Some(crate::domain::Pacing {
            window_minutes: 30,
            max_covers: Some(covers),
            max_parties: None,
        });
        r.validate().unwrap();
        r
    }

    #[test]
    fn a_combination_counts_only_while_every_member_is_free_and_pacing_can_zero_a_slot() {
        let r = paced_paris_with_c12(4);
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

    /// Free options of a slot by a scan of every reservation: what `availability` counts.
    fn free_by_scan(
        options: &[Seating],
        res: &[Reservation],
        now: DateTime<Utc>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> u32 {
        options
            .iter()
            .filter(|o| {
                !res.iter().any(|x| {
                    // An empty interval (start = end) overlaps nothing.
                    x.occupies_at(now)
                        && x.start < x.end
                        && x.start < end
                        && start < x.end
                        && x.table_ids.iter().any(|t| o.tables.contains(t))
                })
            })
            .count() as u32
    }

    proptest::proptest! {
        /// Any reservations (overlapping ones too, of every status, on tables and on the
        /// combination, some of zero length): each slot's count is the scan's.
        #[test]
        fn the_count_of_each_slot_is_what_a_scan_of_every_reservation_finds(
            res in proptest::collection::vec(
                (0usize..3, 0i64..40, 0i64..16, 0usize..5, proptest::option::of(-120i64..120)),
                0..40,
            ),
        ) {
            let mut r = paris_with_c12();
            r.validate().unwrap();
            let date = LocalDate::parse("2026-12-05").unwrap();
            let open = booking(&r, "t1", "18:00", Status::Confirmed, None).start;
            let statuses = [Status::Held, Status::Confirmed, Status::Seated, Status::Released,
                            Status::Cancelled];
            let res: Vec<Reservation> = res
                .into_iter()
                .map(|(on, from, len, st, exp)| {
                    let mut x = booking(&r, "t1", "18:00", statuses[st], exp);
                    x.table_ids = match on {
                        0 => vec![TableId::parse("t1").unwrap()],
                        1 => vec![TableId::parse("t2").unwrap()],
                        _ => vec![TableId::parse("t1").unwrap(), TableId::parse("t2").unwrap()],
                    };
                    x.start = open + chrono::Duration::minutes(from * 15 - 120);
                    x.end = x.start + chrono::Duration::minutes(len * 15);
                    x
                })
                .collect();
            for party in 1..=4 {
                let p = PartySize::new(party).unwrap();
                let options = r.fitting_options(p);
                let v = availability(&r, date, p, now(), &res);
                proptest::prop_assert!(!v.is_empty());
                for s in &v {
                    let want = free_by_scan(&options, &res, now(), s.slot.start, s.slot.end);
                    proptest::prop_assert_eq!(s.available_tables, want, "{}", s.slot.time);
                }
            }
        }
    }

    proptest::proptest! {
        /// As time passes short of `valid_until`, the answer stays what it was at `now`: on a
        /// paced restaurant with a combination, holds expiring around `now` and `now` late
        /// enough in the evening that starts go by.
        #[test]
        fn an_answer_holds_until_its_first_start_or_expiry(
            res in proptest::collection::vec(
                (0usize..3, 0i64..20, 1i64..10, 0usize..2, -90i64..400),
                0..16,
            ),
            at in 0i64..1740,
            later in 0.0f64..1.0,
        ) {
            let r = paced_paris_with_c12(6);
            let date = LocalDate::parse("2026-12-05").unwrap();
            let open = booking(&r, "t1", "18:00", Status::Confirmed, None).start;
            let res: Vec<Reservation> = res
                .into_iter()
                .map(|(on, from, len, st, exp)| {
                    let st = [Status::Held, Status::Confirmed][st];
                    let mut x = booking(&r, ["t1", "t2", "t1"][on], "18:00", st, None);
                    if on == 2 {
                        x.table_ids.push(TableId::parse("t2").unwrap());
                        x.combination_id = Some(TableId::parse("c12").unwrap());
                    }
                    x.start = open + chrono::Duration::minutes(from * 15);
                    x.end = x.start + chrono::Duration::minutes(len * 15);
                    x.time = crate::domain::WallTime::from_minutes((18 * 60 + from * 15) as u16);
                    x.expires_at = (st == Status::Held)
                        .then(|| open + chrono::Duration::minutes(exp));
                    x
                })
                .collect();
            // From the day before to three hours after the opening.
            let now = open + chrono::Duration::minutes(at - 1560);
            for party in 1..=4 {
                let p = PartySize::new(party).unwrap();
                let slots = availability(&r, date, p, now, &res);
                let Some(until) = valid_until(&slots, &res, now) else {
                    proptest::prop_assert!(slots.is_empty());
                    continue;
                };
                proptest::prop_assert!(until > now);
                let span = (until - now).num_milliseconds() as f64;
                let mid = now + chrono::Duration::milliseconds((span * later) as i64);
                let end = until - chrono::Duration::milliseconds(1);
                for t in [mid, end] {
                    proptest::prop_assert_eq!(&availability(&r, date, p, t, &res), &slots, "{}", t);
                }
            }
        }
    }
}
