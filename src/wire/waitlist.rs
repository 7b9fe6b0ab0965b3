//! A waitlist entry as the API and the live socket show it.
use super::reservation::GuestBody;
use crate::domain::time::fmt_instant;
use crate::domain::waitlist::{WaitStatus, WaitlistEntry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The held reservation made for an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfferBody {
    pub reservation_id: Uuid,
    /// Its local start, `HH:MM`.
    #[schema(example = "19:00")]
    pub time: String,
    /// When the offer lapses unless confirmed.
    #[schema(example = "2026-12-05T17:02:00Z", format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitlistEntryView {
    pub id: Uuid,
    pub restaurant_id: Uuid,
    #[schema(example = "2026-12-05", format = Date)]
    pub date: String,
    #[schema(minimum = 1, maximum = 100)]
    pub party_size: u32,
    /// First local start the diner accepts, `HH:MM`.
    #[schema(example = "18:30")]
    pub from: String,
    /// Last local start the diner accepts, `HH:MM`.
    #[schema(example = "21:00")]
    pub to: String,
    pub status: WaitStatus,
    /// 1-based place among the `waiting` entries of the date; `null` unless `waiting`.
    #[schema(minimum = 1, required = true)]
    pub position: Option<u32>,
    /// The offered reservation: set once an offer was made (and kept once booked, lapsed or
    /// left); `null` before.
    #[schema(required = true)]
    pub offer: Option<OfferBody>,
    /// Shown only to the entry's token holder and to staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestBody>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl WaitlistEntryView {
    /// The entry as read at `now` (an offer past its expiry reads as `lapsed`).
    pub fn of(
        e: &WaitlistEntry,
        position: Option<u32>,
        now: DateTime<Utc>,
        with_guest: bool,
    ) -> Self {
        let status = e.status_at(now);
        WaitlistEntryView {
            id: e.id,
            restaurant_id: e.restaurant_id,
            date: e.date.to_string(),
            party_size: e.party_size,
            from: e.from.to_string(),
            to: e.to.to_string(),
            status,
            position: if status == WaitStatus::Waiting {
                position
            } else {
                None
            },
            offer: e.offer.as_ref().map(|o| OfferBody {
                reservation_id: o.reservation_id,
                time: o.time.to_string(),
                expires_at: fmt_instant(o.expires_at),
            }),
            guest: with_guest.then(|| GuestBody::from(&e.guest)),
            created_at: fmt_instant(e.created_at),
        }
    }
}

/// A new entry and, shown only now, the token that owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JoinedEntry {
    #[serde(flatten)]
    pub entry: WaitlistEntryView,
    pub token: String,
}

/// `GET /v1/restaurants/{rid}/waitlist`: every entry of the date in queue order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitlistList {
    pub entries: Vec<WaitlistEntryView>,
}
