//! The staff floor: every table with its reservations of one date.
use super::reservation::ReservationView;
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
    /// Every reservation of the date on this table but `released` and `expired`.
    pub reservations: Vec<ReservationView>,
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
                .filter(|x| x.table_id == t.id && x.date == date)
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
}
