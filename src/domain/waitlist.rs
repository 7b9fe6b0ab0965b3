//! The waitlist: diners queued for a full date, offered freed capacity one at a time.
use super::reservation::Guest;
use super::time::{LocalDate, WallTime};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Seconds an offer is held for its entry unless the restaurant says otherwise.
pub const DEFAULT_OFFER_SECONDS: u32 = 120;
/// Bounds of a restaurant's `offer_seconds`.
pub const OFFER_SECONDS: std::ops::RangeInclusive<u32> = 15..=3600;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freed {
    pub restaurant_id: Uuid,
    pub tables: Vec<super::TableId>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// When the freeing change committed: only entries that joined before it are offered it
    /// (capacity public when an entry joined is not offered to it).
    pub at: DateTime<Utc>,
}

impl Freed {
    /// What a reservation frees when it stops occupying its tables (release, expiry, cancel).
    /// A hold is free from its `expires_at` on, whenever it is swept.
    pub fn of(r: &super::Reservation) -> Self {
        let at = match (r.status_at(r.updated_at), r.expires_at) {
            (super::Status::Expired | super::Status::Held, Some(x)) => x.min(r.updated_at),
            _ => r.updated_at,
        };
        Freed {
            restaurant_id: r.restaurant_id,
            tables: r.table_ids.clone(),
            start: r.start,
            end: r.end,
            at,
        }
    }
}

/// The starts an entry may be offered from freed capacity, nearest to the freed start first:
/// bookable starts in `[from, to]` whose time overlaps the freed time, each with the seating
/// options (best fit first) that use a freed table and are free over the whole start in `day`
/// at `now`. Empty: the entry does not fit this capacity.
pub fn offer_starts(
    r: &super::Restaurant,
    e: &WaitlistEntry,
    freed: &Freed,
    day: &[super::Reservation],
    now: DateTime<Utc>,
) -> Vec<(super::grid::Slot, Vec<super::Seating>)> {
    let Ok(p) = super::PartySize::new(i64::from(e.party_size)) else {
        return Vec::new();
    };
    let options: Vec<super::Seating> = r
        .fitting_options(p)
        .into_iter()
        .filter(|s| s.tables.iter().any(|t| freed.tables.contains(t)))
        .collect();
    if options.is_empty() {
        return Vec::new();
    }
    let free = |s: &super::Seating, start, end| {
        s.tables.iter().all(|t| {
            !day.iter()
                .any(|x| x.occupies_at(now) && x.uses(t) && x.overlaps(start, end))
        })
    };
    let mut out: Vec<_> = super::grid::bookable_starts(r, e.date, p, now)
        .into_iter()
        .filter(|s| e.from <= s.time && s.time <= e.to)
        .filter(|s| s.start < freed.end && freed.start < s.end)
        .filter_map(|s| {
            let opts: Vec<_> = options
                .iter()
                .filter(|o| free(o, s.start, s.end))
                .cloned()
                .collect();
            (!opts.is_empty()).then_some((s, opts))
        })
        .collect();
    out.sort_by_key(|(s, _)| ((s.start - freed.start).num_seconds().abs(), s.start));
    out
}
