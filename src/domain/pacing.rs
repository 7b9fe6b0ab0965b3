//! Pacing: how many covers and parties may start in one window of the day.
use super::time::{LocalDate, WallTime};
use super::{FieldError, Reservation};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The restaurant's pacing rule; either limit may be absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pacing {
    /// Divides 60 and is a multiple of `slot_minutes`; windows start at local midnight.
    pub window_minutes: u32,
    pub max_covers: Option<u32>,
    pub max_parties: Option<u32>,
}

/// The largest limit accepted: far above any dining room, small enough that sums never overflow.
pub const MAX_LIMIT: u32 = 100_000;

/// One pacing window of a local date: `[start, end)` in local wall minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    pub start: WallTime,
    /// Exclusive; `24:00` for the last window of the day.
    pub end: WallTime,
}

impl Window {
    pub fn contains(&self, t: WallTime) -> bool {
        self.start <= t && t < self.end
    }
}

/// What counts in one window: the number of reservations and their covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaceCount {
    pub covers: u32,
    pub parties: u32,
}

impl PaceCount {
    pub fn add(&mut self, party: u32) {
        self.covers = self.covers.saturating_add(party);
        self.parties = self.parties.saturating_add(1);
    }
}

impl Pacing {
    /// The window holding a local time.
    pub fn window_of(&self, t: WallTime) -> Window {
        let w = self.window_minutes.clamp(1, 60) as u16;
        let start = t.minutes() / w * w;
        Window {
            start: WallTime::from_minutes(start),
            end: WallTime::from_minutes((start + w).min(1440)),
        }
    }

    /// Whether one more party of `party` would take the window past a limit.
    pub fn refuses(&self, count: PaceCount, party: u32) -> bool {
        self.max_covers
            .is_some_and(|m| count.covers.saturating_add(party) > m)
            || self
                .max_parties
                .is_some_and(|m| count.parties.saturating_add(1) > m)
    }

    /// Covers still free in a window; `None` without a covers limit.
    pub fn covers_left(&self, count: PaceCount) -> Option<u32> {
        self.max_covers.map(|m| m.saturating_sub(count.covers))
    }

    pub fn validate(&self, slot_minutes: u32, errs: &mut Vec<FieldError>) {
        let w = self.window_minutes;
        if !(1..=60).contains(&w) || 60 % w != 0 {
            errs.push(FieldError::new("pacing.window_minutes", "must divide 60"));
        } else if slot_minutes > 0 && !w.is_multiple_of(slot_minutes) {
            errs.push(FieldError::new(
                "pacing.window_minutes",
                "must be a multiple of slot_minutes",
            ));
        }
        for (name, v) in [
            ("pacing.max_covers", self.max_covers),
            ("pacing.max_parties", self.max_parties),
        ] {
            if v.is_some_and(|v| !(1..=MAX_LIMIT).contains(&v)) {
                errs.push(FieldError::new(
                    name,
                    format!("must be null or between 1 and {MAX_LIMIT}"),
                ));
            }
        }
    }
}

/// Whether a reservation counts in its window at `now`: `held` (not past `expires_at`),
/// `confirmed`, `seated`, `completed` or `no_show` — the statuses that occupy a table.
pub fn counts_at(x: &Reservation, now: DateTime<Utc>) -> bool {
    x.occupies_at(now)
}

/// Every window of `date` with a count, by window start. Reservations of other dates are
/// ignored: a reservation counts on the date and in the window of its local `time`.
pub fn window_counts(
    p: &Pacing,
    date: LocalDate,
    reservations: &[Reservation],
    now: DateTime<Utc>,
) -> BTreeMap<Window, PaceCount> {
    let mut m: BTreeMap<Window, PaceCount> = BTreeMap::new();
    for x in reservations
        .iter()
        .filter(|x| x.date == date && counts_at(x, now))
    {
        m.entry(p.window_of(x.time)).or_default().add(x.party_size);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(w: u32, covers: Option<u32>, parties: Option<u32>) -> Pacing {
        Pacing {
            window_minutes: w,
            max_covers: covers,
            max_parties: parties,
        }
    }

    #[test]
    fn windows_are_anchored_at_local_midnight() {
        let p = pacing(30, None, None);
        let w = p.window_of(WallTime::parse("19:45").unwrap());
        assert_eq!(w.start.to_string(), "19:30");
        assert_eq!(w.end.to_string(), "20:00");
        let last = p.window_of(WallTime::parse("23:59").unwrap());
        assert_eq!(last.end.minutes(), 1440);
        assert!(w.contains(WallTime::parse("19:30").unwrap()));
        assert!(!w.contains(WallTime::parse("20:00").unwrap()));
    }

    #[test]
    fn a_party_is_refused_when_it_would_pass_either_limit() {
        let p = pacing(15, Some(10), Some(3));
        let c = |covers, parties| PaceCount { covers, parties };
        assert!(!p.refuses(c(8, 2), 2));
        assert!(p.refuses(c(9, 2), 2));
        assert!(p.refuses(c(2, 3), 1));
        assert_eq!(p.covers_left(c(9, 2)), Some(1));
        assert_eq!(p.covers_left(c(12, 2)), Some(0));
        assert_eq!(pacing(15, None, None).covers_left(c(9, 2)), None);
        assert!(!pacing(15, None, None).refuses(c(1000, 1000), 100));
    }

    #[test]
    fn the_window_must_divide_the_hour_and_be_a_multiple_of_the_slot() {
        let errs = |p: Pacing, slot| {
            let mut e = Vec::new();
            p.validate(slot, &mut e);
            e.into_iter().map(|e| e.field).collect::<Vec<_>>()
        };
        assert!(errs(pacing(30, Some(10), None), 15).is_empty());
        assert_eq!(errs(pacing(25, None, None), 5), ["pacing.window_minutes"]);
        assert_eq!(errs(pacing(10, None, None), 15), ["pacing.window_minutes"]);
        assert_eq!(errs(pacing(0, None, None), 15), ["pacing.window_minutes"]);
        assert_eq!(errs(pacing(15, Some(0), None), 15), ["pacing.max_covers"]);
        assert_eq!(
            errs(pacing(15, None, Some(MAX_LIMIT + 1)), 15),
            ["pacing.max_parties"]
        );
    }
}
