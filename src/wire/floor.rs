//! The staff floor: every table with its reservations of one date.
use super::reservation::ReservationView;
use crate::domain::pacing::window_counts;
use crate::domain::{LocalDate, Reservation, Restaurant, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FloorTable {
    pub id: String,
    pub label: String,
    pub min_party: u32,
    pub max_party: u32,
    /// Every reservation of the date on this table but `released` and `expired`; one on a
    /// combination is listed under each of its member tables.
    pub reservations: Vec<ReservationView>,
}

/// One pacing window with a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PacingWindow {
    /// The window's local start, `HH:MM`.
    #[schema(example = "19:00")]
    pub window: String,
    #[schema(minimum = 0, example = 8)]
    pub covers: u32,
    #[schema(example = 12, required = true)]
    pub max_covers: Option<u32>,
    #[schema(minimum = 0, example = 3)]
    pub parties: u32,
    #[schema(example = 4, required = true)]
    pub max_parties: Option<u32>,
}

/// Every pacing window of the date with a count, in order; empty without pacing.
pub fn pacing_windows(
    r: &Restaurant,
    date: LocalDate,
    day: &[Reservation],
    now: DateTime<Utc>,
) -> Vec<PacingWindow> {
    let Some(p) = r.pacing else {
        return Vec::new();
    };
    window_counts(&p, date, day, now)
        .into_iter()
        .map(|(w, c)| PacingWindow {
            window: w.start.to_string(),
            covers: c.covers,
            max_covers: p.max_covers,
            parties: c.parties,
            max_parties: p.max_parties,
        })
        .collect()
}

/// The floor: tables ordered as the restaurant lists them, each with its reservations, whole.
pub fn floor_tables(
    r: &Restaurant,
    date: LocalDate,
    day: &[Reservation],
    now: DateTime<Utc>,
) -> Vec<FloorTable> {
    r.tables
        .iter()
        .map(|t| FloorTable {
            id: t.id.to_string(),
            label: t.label.clone(),
            min_party: t.min_party,
            max_party: t.max_party,
            reservations: day
                .iter()
                .filter(|x| x.uses(&t.id) && x.date == date)
                .filter(|x| !matches!(x.status_at(now), Status::Released | Status::Expired))
                .map(|x| ReservationView::of(x, now, true))
                .collect(),
        })
        .collect()
}

/// The floor snapshot's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FloorBody {
    pub tables: Vec<FloorTable>,
    /// Every pacing window of the date with a count.
    pub pacing: Vec<PacingWindow>,
    /// Every waitlist entry of the date, in queue order, with guests.
    pub waitlist: Vec<super::waitlist::WaitlistEntryView>,
}

/// Every waitlist entry of a date (in queue order) as staff see it, read at `now`.
pub fn waitlist_views(
    entries: &[crate::domain::WaitlistEntry],
    now: DateTime<Utc>,
) -> Vec<super::waitlist::WaitlistEntryView> {
    let mut read: Vec<crate::domain::WaitlistEntry> = entries.to_vec();
    for e in &mut read {
        e.status = e.status_at(now);
    }
    let pos = crate::domain::waitlist::positions(&read);
    read.iter()
        .zip(pos)
        .map(|(e, p)| super::waitlist::WaitlistEntryView::of(e, p, now, true))
        .collect()
}
