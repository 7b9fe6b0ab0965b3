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
#[derive(Debug, Clone, PartialEq, Eq)]
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
