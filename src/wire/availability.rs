//! Availability of one restaurant/date/party size, as `GET …/availability` and the live
//! `snapshot`/`update` frames carry it.
use crate::domain::availability::{Availability, SlotCount};
use crate::domain::time::fmt_slot_instant;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SlotBody {
    /// Local wall time `HH:MM`.
    #[schema(example = "19:00", pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub time: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    #[schema(example = "2026-12-05T18:00:00Z", format = DateTime)]
    pub start: String,
    #[schema(example = "2026-12-05T20:00:00Z", format = DateTime)]
    pub end: String,
    /// Free seating options (tables and combinations) that fit the party; `0` when pacing
    /// refuses the party at this time.
    #[schema(minimum = 0)]
    pub available_tables: u32,
    /// Covers still free in this time's pacing window; `null` without a covers limit.
    #[schema(minimum = 0, required = true)]
    pub covers_left: Option<u32>,
}

impl From<&SlotCount> for SlotBody {
    fn from(s: &SlotCount) -> Self {
        SlotBody {
            time: s.slot.time.to_string(),
            start: fmt_slot_instant(s.slot.start),
            end: fmt_slot_instant(s.slot.end),
            available_tables: s.available_tables,
            covers_left: s.covers_left,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AvailabilityBody {
    pub restaurant_id: Uuid,
    #[schema(example = "2026-12-05", format = Date)]
    pub date: String,
    #[schema(minimum = 1, maximum = 100)]
    pub party_size: u32,
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    pub version: u64,
    pub slots: Vec<SlotBody>,
}

impl From<&Availability> for AvailabilityBody {
    fn from(a: &Availability) -> Self {
        AvailabilityBody {
            restaurant_id: a.restaurant.id,
            date: a.date.to_string(),
            party_size: a.party_size.get(),
            timezone: a.restaurant.timezone.name().to_owned(),
            version: a.version,
            slots: a.slots.iter().map(SlotBody::from).collect(),
        }
    }
}
