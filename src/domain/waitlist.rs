//! The waitlist: diners queued for a full date, offered freed capacity one at a time.
use super::reservation::Guest;
use super::time::{LocalDate, WallTime};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an entry stands. `waiting` → `offered` → `booked` | `lapsed`; `waiting` | `offered` →
/// `left`. Only `waiting` entries have a queue position; only a `waiting` entry gets an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    Waiting,
    Offered,
    Booked,
    Lapsed,
    Left,
}

impl WaitStatus {
    pub const ALL: [WaitStatus; 5] = [
        WaitStatus::Waiting,
        WaitStatus::Offered,
        WaitStatus::Booked,
        WaitStatus::Lapsed,
        WaitStatus::Left,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WaitStatus::Waiting => "waiting",
            WaitStatus::Offered => "offered",
            WaitStatus::Booked => "booked",
            WaitStatus::Lapsed => "lapsed",
            WaitStatus::Left => "left",
        }
    }

    pub fn parse(s: &str) -> Option<WaitStatus> {
        WaitStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The held reservation made for an entry. Kept on the entry once made (booked, lapsed or left
/// after it), so the entry's token can still read that reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub reservation_id: Uuid,
    pub time: WallTime,
    pub expires_at: DateTime<Utc>,
}

/// One diner in a restaurant/date's queue. Its place is `created_at` (ties: `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    pub date: LocalDate,
    pub party_size: u32,
    /// First and last local start the diner accepts (grid times, `from ≤ to`).
    pub from: WallTime,
    pub to: WallTime,
    pub status: WaitStatus,
    pub offer: Option<Offer>,
    pub guest: Guest,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WaitlistEntry {
    /// Whether a start at local `time` for a party of `party` is one this entry waits for.
    pub fn wants(&self, time: WallTime, party: u32) -> bool {
        self.party_size == party && self.from <= time && time <= self.to
    }

    /// Queue order: `created_at`, then `id`.
    pub fn queue_key(&self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id)
    }
}

/// 1-based positions among the `waiting` entries of one date, in queue order (`None` for the
/// others). `entries` must be in queue order.
pub fn positions(entries: &[WaitlistEntry]) -> Vec<Option<u32>> {
    let mut n = 0u32;
    entries
        .iter()
        .map(|e| {
            (e.status == WaitStatus::Waiting).then(|| {
                n += 1;
                n
            })
        })
        .collect()
}

impl WaitlistEntry {
    /// The status at `now`: an offer past its `expires_at` has lapsed, swept or not.
    pub fn status_at(&self, now: DateTime<Utc>) -> WaitStatus {
        match (&self.status, &self.offer) {
            (WaitStatus::Offered, Some(o)) if o.expires_at <= now => WaitStatus::Lapsed,
            (s, _) => *s,
        }
    }
}

/// Capacity a change just freed: tables, over `[start, end)`, committed at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Freed {
    pub restaurant_id: Uuid,
    pub tables: Vec<super::TableId>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// When the freeing change committed: only entries that joined before it are offered it
    /// (capacity public when an entry joined is not offered to it).
    pub at: DateTime<Utc>,
    /// Freed by a settings or table change: the settings before it and the date's day as read
    /// just after it. Only a start where the change itself raised the party's free options (as
    /// availability counts them, pacing included) is offered: what was public already stays
    /// public.
    pub before: Option<std::sync::Arc<Before>>,
    /// Freed by a reservation that stopped counting (released, expired, cancelled): it as it
    /// stood before, occupying its tables and counting in its pacing window. With pacing, a
    /// start of its window may open on another table (the window was full): measured as the
    /// rise of availability's counts without it, where no freed table is free, that is freed
    /// capacity too. Each free is measured against the day as it is, every other free already
    /// applied: two reservations that filled a window between them and stop counting together
    /// each show the rise, so the room they opened only together is offered.
    pub was: Option<std::sync::Arc<super::Reservation>>,
}

/// What a settings change is measured against (see `Freed::before`).
#[derive(Debug, PartialEq)]
pub struct Before {
    pub restaurant: super::Restaurant,
    /// The date's reservations as read after the change (it moves no reservation).
    pub day: Vec<super::Reservation>,
}

impl Freed {
    /// The local dates (in `tz`) its time lies on, in order: one, or two past midnight. An
    /// end at midnight frees nothing of the next date.
    pub fn dates(&self, tz: chrono_tz::Tz) -> Vec<LocalDate> {
        let first = super::time::local_date_of(tz, self.start);
        let last = super::time::local_date_of(
            tz,
            (self.end - chrono::Duration::milliseconds(1)).max(self.start),
        );
        if last == first {
            vec![first]
        } else {
            vec![first, last]
        }
    }

    /// What a reservation ended early (completed, no-show) frees: the rest of its booked time,
    /// from its new end `r.end` to `booked_end`, as of its change. It still counts in its
    /// pacing window.
    pub fn rest_of(r: &super::Reservation, booked_end: DateTime<Utc>) -> Self {
        Freed {
            restaurant_id: r.restaurant_id,
            tables: r.table_ids.clone(),
            start: r.end,
            end: booked_end,
            at: r.updated_at,
            before: None,
            was: None,
        }
    }

    /// What a reservation frees when it stops occupying its tables (release, expiry, cancel).
    /// A hold is free from its `expires_at` on, whenever it is swept.
    pub fn of(r: &super::Reservation) -> Self {
        let at = match (r.status_at(r.updated_at), r.expires_at) {
            (super::Status::Expired | super::Status::Held, Some(x)) => x.min(r.updated_at),
            _ => r.updated_at,
        };
        let was = counting(r);
        Freed {
            restaurant_id: r.restaurant_id,
            tables: r.table_ids.clone(),
            start: r.start,
            end: r.end,
            at,
            before: None,
            was: Some(std::sync::Arc::new(was)),
        }
    }
}

/// `r` as it stood before it stopped counting: occupying its tables, counted by pacing.
fn counting(r: &super::Reservation) -> super::Reservation {
    super::Reservation {
        status: super::Status::Confirmed,
        expires_at: None,
        ..r.clone()
    }
}

/// The first entry of `queue` (in its order) that `freed` fits, with its nearest start and that
/// start's seating options (see [`offer_starts`]). What availability counts is measured once per
/// date and party size, not once per entry.
pub fn first_fit<'a>(
    r: &super::Restaurant,
    queue: impl IntoIterator<Item = &'a WaitlistEntry>,
    freed: &Freed,
    day: &[super::Reservation],
    now: DateTime<Utc>,
) -> Option<(&'a WaitlistEntry, (super::grid::Slot, Vec<super::Seating>))> {
    let mut measured = Measured::default();
    queue.into_iter().find_map(|e| {
        let start = starts_measured(r, e, freed, day, now, &mut measured)
            .into_iter()
            .next();
        start.map(|s| (e, s))
    })
}

/// What availability's counts say about one free for one date and party size: the counts as
/// they are, and the starts a settings change raised or the freed reservation opened (see
/// [`offer_starts`]). The same for every entry of that date and size. Starts are named by
/// their local time on the date (unique on it, ambiguous times taken at their first
/// occurrence): an entry asks for local times, and a change of time zone moves every start's
/// instant, not what a diner at 19:00 could book.
#[derive(Default)]
struct Measure {
    current: Option<std::collections::HashMap<WallTime, u32>>,
    raised: Option<std::collections::HashSet<WallTime>>,
    opened: Option<std::collections::HashSet<WallTime>>,
}

/// Measures already taken, by date and party size, within one free's pass over a queue.
#[derive(Default)]
struct Measured(std::collections::HashMap<(LocalDate, u32), std::rc::Rc<Measure>>);

impl Measure {
    fn of(
        r: &super::Restaurant,
        date: LocalDate,
        p: super::PartySize,
        freed: &Freed,
        window: bool,
        day: &[super::Reservation],
        now: DateTime<Utc>,
    ) -> Self {
        use std::collections::{HashMap, HashSet};
        let count = |r: &super::Restaurant, day: &[super::Reservation]| {
            super::availability::availability(r, date, p, now, day)
                .into_iter()
                .map(|c| (c.slot.time, c.available_tables))
                .collect::<HashMap<WallTime, u32>>()
        };
        // The counts as they are, when anything is measured against them: with pacing (a start
        // pacing refuses the party is no offer), or after a settings change.
        let current = (r.pacing.is_some() || freed.before.is_some()).then(|| count(r, day));
        let rose = |was: &HashMap<WallTime, u32>| -> HashSet<WallTime> {
            current
                .iter()
                .flatten()
                .filter(|(start, n)| **n > was.get(*start).copied().unwrap_or(0))
                .map(|(start, _)| *start)
                .collect()
        };
        // After a settings change, the starts where it raised this party's free options and
        // some of that rise is left: the count on the day now, against the old settings' count
        // on the day as it was at the change (without what was made since it, as a read that
        // came a little late may hold). An offer made since takes one place from the rise
        // whichever table it got; a reservation freed since adds its own place, which its own
        // offer pass offers.
        let raised = freed.before.as_ref().map(|before| {
            let then: Vec<super::Reservation> = before
                .day
                .iter()
                .filter(|x| x.created_at < freed.at)
                .cloned()
                .collect();
            rose(&count(&before.restaurant, &then))
        });
        // With pacing, the starts whose count rose without the freed reservation: the day as
        // it is, against the same day with it still counting.
        let opened = freed.was.as_ref().filter(|_| window).map(|was| {
            let mut then: Vec<super::Reservation> =
                day.iter().filter(|x| x.id != was.id).cloned().collect();
            then.push(was.as_ref().clone());
            rose(&count(r, &then))
        });
        Measure {
            current,
            raised,
            opened,
        }
    }
}

/// The starts an entry may be offered from freed capacity, nearest to the freed start first:
/// bookable starts in `[from, to]` whose time overlaps the freed time, each with the seating
/// options (best fit first) that use a freed table and are free over the whole start in `day`
/// at `now`. With pacing, also a start of the window the freed reservation counted in (`was`)
/// where no freed table is free but the party's free options rose without it (the window was
/// full): there, every fitting option that is free. And with pacing, only starts where pacing
/// takes the party now. Empty: the entry does not fit this capacity.
pub fn offer_starts(
    r: &super::Restaurant,
    e: &WaitlistEntry,
    freed: &Freed,
    day: &[super::Reservation],
    now: DateTime<Utc>,
) -> Vec<(super::grid::Slot, Vec<super::Seating>)> {
    starts_measured(r, e, freed, day, now, &mut Measured::default())
}

/// [`offer_starts`], reusing (and filing) the measures of `measured`.
fn starts_measured(
    r: &super::Restaurant,
    e: &WaitlistEntry,
    freed: &Freed,
    day: &[super::Reservation],
    now: DateTime<Utc>,
    measured: &mut Measured,
) -> Vec<(super::grid::Slot, Vec<super::Seating>)> {
    let Ok(p) = super::PartySize::new(i64::from(e.party_size)) else {
        return Vec::new();
    };
    let fitting = r.fitting_options(p);
    let own: Vec<&super::Seating> = fitting
        .iter()
        .filter(|s| s.tables.iter().any(|t| freed.tables.contains(t)))
        .collect();
    // The pacing window of the date that the freed reservation counted in.
    let window: Option<super::pacing::Window> = match (&r.pacing, &freed.was) {
        (Some(pacing), Some(was)) if freed.before.is_none() && was.date == e.date => {
            Some(pacing.window_of(was.time))
        }
        _ => None,
    };
    if own.is_empty() && window.is_none() {
        return Vec::new();
    }
    let starts: Vec<super::grid::Slot> = super::grid::bookable_starts(r, e.date, p, now)
        .into_iter()
        .filter(|s| e.from <= s.time && s.time <= e.to)
        .collect();
    if starts.is_empty() {
        return Vec::new();
    }
    let free = |s: &super::Seating, start, end| {
        s.tables.iter().all(|t| {
            !day.iter()
                .any(|x| x.occupies_at(now) && x.uses(t) && x.overlaps(start, end))
        })
    };
    let m = measured
        .0
        .entry((e.date, p.get()))
        .or_insert_with(|| {
            std::rc::Rc::new(Measure::of(r, e.date, p, freed, window.is_some(), day, now))
        })
        .clone();
    let (current, raised, opened) = (&m.current, &m.raised, &m.opened);
    let mut out: Vec<_> = starts
        .into_iter()
        .filter(|s| {
            raised
                .as_ref()
                .is_none_or(|raised| raised.contains(&s.time))
        })
        .filter(|s| {
            r.pacing.is_none()
                || current
                    .as_ref()
                    .is_some_and(|c| c.get(&s.time).is_some_and(|n| *n > 0))
        })
        .filter_map(|s| {
            // The freed tables first: what was freed is offered where it was.
            let overlaps = s.start < freed.end && freed.start < s.end;
            let on_own: Vec<super::Seating> = own
                .iter()
                .filter(|o| overlaps && free(o, s.start, s.end))
                .map(|o| (*o).clone())
                .collect();
            if !on_own.is_empty() {
                return Some((s, on_own));
            }
            // A start its window's pacing opened: any fitting option that is free.
            let paced_open = window.as_ref().is_some_and(|w| w.contains(s.time))
                && opened.as_ref().is_some_and(|o| o.contains(&s.time));
            let any: Vec<super::Seating> = fitting
                .iter()
                .filter(|o| paced_open && free(o, s.start, s.end))
                .cloned()
                .collect();
            (!any.is_empty()).then_some((s, any))
        })
        .collect();
    out.sort_by_key(|(s, _)| ((s.start - freed.start).num_seconds().abs(), s.start));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::Status;
    use crate::domain::restaurant::tests::paris;
    use crate::domain::{LocalDate, PartySize, Reservation, TableId, WallTime};
    use chrono::TimeZone;
    use std::sync::Arc;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    fn date() -> LocalDate {
        LocalDate::parse("2026-12-05").unwrap()
    }

    fn confirmed(r: &super::super::Restaurant, table: &str, time: &str) -> Reservation {
        let p = PartySize::new(2).unwrap();
        let slot =
            crate::domain::grid::check_start(r, date(), WallTime::parse(time).unwrap(), p, now())
                .unwrap();
        let t = TableId::parse(table).unwrap();
        Reservation {
            id: Uuid::new_v4(),
            restaurant_id: r.id,
            table_id: t.clone(),
            table_ids: vec![t],
            combination_id: None,
            date: date(),
            time: slot.time,
            start: slot.start,
            end: slot.end,
            party_size: 2,
            status: Status::Confirmed,
            expires_at: None,
            guest: None,
            notes: String::new(),
            // Made before the change (`by_change` commits at `now`).
            created_at: now() - chrono::Duration::hours(1),
            updated_at: now() - chrono::Duration::hours(1),
        }
    }

    fn waiting(from: &str, to: &str) -> WaitlistEntry {
        WaitlistEntry {
            id: Uuid::new_v4(),
            restaurant_id: paris().id,
            date: date(),
            party_size: 2,
            from: WallTime::parse(from).unwrap(),
            to: WallTime::parse(to).unwrap(),
            status: WaitStatus::Waiting,
            offer: None,
            guest: Guest {
                name: "Grace".into(),
                email: None,
                phone: None,
            },
            created_at: now(),
            updated_at: now(),
        }
    }

    /// Freed by a change of `before`'s settings, over the whole date, `day` read after it.
    fn by_change(
        before: &super::super::Restaurant,
        after: &super::super::Restaurant,
        day: &[Reservation],
    ) -> Freed {
        Freed {
            restaurant_id: after.id,
            tables: after.tables.iter().map(|t| t.id.clone()).collect(),
            start: now(),
            end: now() + chrono::Duration::days(30),
            at: now(),
            before: Some(Arc::new(Before {
                restaurant: before.clone(),
                day: day.to_vec(),
            })),
            was: None,
        }
    }

    /// Paris paced at one party per 30 minutes; 19:30 on t1 (which filled its window,
    /// 19:30–20:00) released, and 21:00 on t1 kept (it keeps t1 from a 19:45 turn): the
    /// restaurant, the kept reservation, what the release freed and the day after it.
    fn paced_release() -> (
        super::super::Restaurant,
        Reservation,
        Freed,
        Vec<Reservation>,
    ) {
        let mut r = paris();
        r.pacing = Some(crate::domain::Pacing {
            window_minutes: 30,
            max_covers: None,
            max_parties: Some(1),
        });
        r.validate().unwrap();
        let later = confirmed(&r, "t1", "21:00");
        let released = Reservation {
            status: Status::Released,
            updated_at: now(),
            ..confirmed(&r, "t1", "19:30")
        };
        let freed = Freed::of(&released);
        let day = vec![released, later.clone()];
        (r, later, freed, day)
    }

    #[test]
    fn first_fit_measures_once_per_party_size_and_picks_as_each_entry_alone_would() {
        let (r, _, freed, day) = paced_release();
        // A queue of mixed sizes and ranges: the first ones fit nothing, one fits.
        let sized = |n: u32, from: &str, to: &str| WaitlistEntry {
            party_size: n,
            ..waiting(from, to)
        };
        let queue = vec![
            sized(2, "12:00", "12:30"),
            sized(99, "19:00", "21:00"),
            sized(2, "16:00", "16:15"),
            sized(2, "19:45", "19:45"),
            sized(2, "19:30", "19:30"),
        ];
        let alone = queue
            .iter()
            .find(|e| !offer_starts(&r, e, &freed, &day, now()).is_empty())
            .unwrap();
        let (picked, (slot, options)) = first_fit(&r, &queue, &freed, &day, now()).unwrap();
        assert_eq!(picked.id, alone.id);
        assert_eq!(picked.id, queue[3].id);
        assert_eq!(slot.time.to_string(), "19:45");
        let expected = offer_starts(&r, alone, &freed, &day, now());
        assert_eq!((slot, options), expected[0].clone());
    }

    #[test]
    fn the_measures_of_one_free_are_taken_once_per_date_and_party_size_and_reused() {
        let (r, _, freed, day) = paced_release();
        let sized = |n: u32, from: &str, to: &str| WaitlistEntry {
            party_size: n,
            ..waiting(from, to)
        };
        // Each reaches the measures: bookable starts, and the freed window to look at.
        let (early, late, four) = (
            sized(2, "18:00", "18:15"),
            sized(2, "19:45", "19:45"),
            sized(4, "19:45", "19:45"),
        );
        let mut measured = Measured::default();
        for (e, taken) in [(&early, 1), (&late, 1), (&four, 2), (&late, 2)] {
            let got = starts_measured(&r, e, &freed, &day, now(), &mut measured);
            assert_eq!(got, offer_starts(&r, e, &freed, &day, now()), "{}", e.from);
            assert_eq!(
                measured.0.len(),
                taken,
                "measures after {} ({})",
                e.from,
                e.party_size
            );
        }
        assert!(!offer_starts(&r, &late, &freed, &day, now()).is_empty());
    }

    #[test]
    fn with_pacing_a_release_offers_the_starts_its_window_opened_on_any_table() {
        let (r, later, freed, day) = paced_release();
        let t = |id: &str| vec![TableId::parse(id).unwrap()];
        let e = waiting("19:45", "19:45");
        // Released: the window has room again, so 19:45 opens on t2, which was free all along.
        let got = offer_starts(&r, &e, &freed, &day, now());
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.time.to_string(), "19:45");
        assert_eq!(got[0].1[0].tables, t("t2"));
        // Without pacing, 19:45 on t2 was public before the release: nothing rose there.
        let mut unpaced = r.clone();
        unpaced.pacing = None;
        assert!(offer_starts(&unpaced, &e, &freed, &day, now()).is_empty());
        // With room for two parties, the window was not full: nothing rose at 19:45 either.
        let mut roomy = r.clone();
        roomy.pacing.as_mut().unwrap().max_parties = Some(2);
        assert!(offer_starts(&roomy, &e, &freed, &day, now()).is_empty());
        // The release's own time is offered on its own table only, as without pacing: t2 is
        // free at 19:30 too, but that was public already (and must stay so).
        let at_1930 = offer_starts(
            &r,
            &waiting("19:30", "19:30"),
            &freed,
            std::slice::from_ref(&later),
            now(),
        );
        assert_eq!(at_1930.len(), 1);
        assert_eq!(at_1930[0].1.len(), 1);
        assert_eq!(at_1930[0].1[0].tables, t("t1"));
        // So with a pacing limit that never binds: the freed table, never a public one.
        let mut loose = r.clone();
        loose.pacing = Some(crate::domain::Pacing {
            window_minutes: 15,
            max_covers: Some(1000),
            max_parties: None,
        });
        loose.validate().unwrap();
        let got = offer_starts(
            &loose,
            &waiting("19:30", "19:30"),
            &freed,
            std::slice::from_ref(&later),
            now(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), 1);
        assert_eq!(got[0].1[0].tables, t("t1"));
    }

    #[test]
    fn a_settings_change_offers_only_the_starts_it_opened_for_the_party() {
        let mut before = paris();
        before.validate().unwrap();
        // t1 is taken at 19:00; t2 is free: 19:00 was public for two when the entry joined.
        let day = vec![confirmed(&before, "t1", "19:00")];
        let e = waiting("19:00", "21:00");
        let mut renamed = before.clone();
        renamed.name = "Renamed".into();
        assert!(
            offer_starts(
                &renamed,
                &e,
                &by_change(&before, &renamed, &day),
                &day,
                now()
            )
            .is_empty(),
            "a change that frees nothing offers nothing"
        );
        // A new time zone moves every start's instant, not the local times a diner could book:
        // 19:00 in New York is past closing in Paris, yet it was as public before as after.
        let mut moved = before.clone();
        moved.timezone = chrono_tz::America::New_York;
        assert!(
            offer_starts(&moved, &e, &by_change(&before, &moved, &[]), &[], now()).is_empty(),
            "a change of time zone offers what was public already"
        );
        // Later closing opens the starts past 21:30 (a 90-minute turn for two); the earlier
        // ones of the window had t2 free before and stay public, not offered.
        let mut later = before.clone();
        later.hours[0].close = WallTime::parse("24:00").unwrap();
        later.validate().unwrap();
        let e = waiting("19:00", "23:00");
        let times = |r: &super::super::Restaurant, freed: &Freed, day: &[Reservation]| {
            let mut t: Vec<String> = offer_starts(r, &e, freed, day, now())
                .into_iter()
                .map(|(s, _)| s.time.to_string())
                .collect();
            t.sort();
            t
        };
        assert_eq!(
            times(&later, &by_change(&before, &later, &day), &day),
            ["21:45", "22:00", "22:15", "22:30"]
        );
        // A new table for two raises the free options at every start: 19:00, where both tables
        // were taken, is offered.
        let full = vec![
            confirmed(&before, "t1", "19:00"),
            confirmed(&before, "t2", "19:00"),
        ];
        let mut bigger = before.clone();
        bigger.tables.push(crate::domain::Table {
            id: TableId::parse("t3").unwrap(),
            label: "T3".into(),
            min_party: 1,
            max_party: 2,
            area: None,
        });
        bigger.validate().unwrap();
        let got = times(&bigger, &by_change(&before, &bigger, &full), &full);
        assert!(got.contains(&"19:00".to_owned()), "{got:?}");
        // One place opened at 21:00 where t2 was already public: the change's first offer took
        // t2 (best fit), so t3 is what is public now, and a second entry gets nothing there.
        let e21 = waiting("21:00", "21:00");
        let mut first_offer = confirmed(&before, "t2", "21:00");
        first_offer.status = Status::Held;
        first_offer.expires_at = Some(now() + chrono::Duration::minutes(2));
        first_offer.created_at = now() + chrono::Duration::seconds(1);
        let day = vec![confirmed(&before, "t1", "21:00")];
        let change = by_change(&before, &bigger, &day);
        assert_eq!(offer_starts(&bigger, &e21, &change, &day, now()).len(), 1);
        let after = vec![confirmed(&before, "t1", "21:00"), first_offer];
        assert!(
            offer_starts(&bigger, &e21, &change, &after, now()).is_empty(),
            "one place opened, one offer"
        );
        // Both tables taken at 19:00 when t3 is added; before the change's pass reaches the
        // date, t1's booking is cancelled and its own offer gives t1 to a first entry. The
        // change still opened t3: a second entry is offered it.
        let change = by_change(&before, &bigger, &full);
        let mut t1_offer = confirmed(&before, "t1", "19:00");
        t1_offer.status = Status::Held;
        t1_offer.expires_at = Some(now() + chrono::Duration::minutes(2));
        t1_offer.created_at = now() + chrono::Duration::seconds(1);
        let now_day = vec![confirmed(&before, "t2", "19:00"), t1_offer];
        let e19 = waiting("19:00", "19:00");
        let got = offer_starts(&bigger, &e19, &change, &now_day, now());
        assert_eq!(got.len(), 1, "t3 is offered");
        assert_eq!(got[0].1[0].tables, [TableId::parse("t3").unwrap()]);
        // Without the settings before, a reservation's freeing offers any free start.
        let plain = Freed {
            before: None,
            ..by_change(&before, &renamed, &day)
        };
        assert!(!offer_starts(
            &renamed,
            &e,
            &plain,
            &[confirmed(&before, "t1", "19:00")],
            now()
        )
        .is_empty());
    }

    /// Two reservations that filled a paced window between them and stop counting together
    /// (say two holds swept at once): each free is measured against the day as it is, with the
    /// other already gone, so the room they opened only together is offered.
    #[test]
    fn room_two_frees_of_one_window_opened_only_together_is_offered() {
        let mut r = paris();
        r.pacing = Some(crate::domain::Pacing {
            window_minutes: 30,
            max_covers: Some(4),
            max_parties: None,
        });
        r.validate().unwrap();
        let gone = |table: &str| Reservation {
            status: Status::Expired,
            updated_at: now(),
            ..confirmed(&r, table, "19:30")
        };
        // 2 + 2 covers filled 19:30–20:00; a party of 4 needs both gone.
        let (a, b) = (gone("t1"), gone("t2"));
        let day = vec![a.clone(), b.clone()];
        let four = WaitlistEntry {
            party_size: 4,
            ..waiting("19:45", "19:45")
        };
        for freed in [Freed::of(&a), Freed::of(&b)] {
            let got = offer_starts(&r, &four, &freed, &day, now());
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].0.time.to_string(), "19:45");
            assert_eq!(got[0].1[0].tables, vec![TableId::parse("t2").unwrap()]);
        }
        // Either one alone leaves room for 2 covers: nothing for the party of 4.
        let only_a = vec![
            a.clone(),
            Reservation {
                ..confirmed(&r, "t2", "19:30")
            },
        ];
        assert!(offer_starts(&r, &four, &Freed::of(&a), &only_a, now()).is_empty());
    }
}
