//! Pure booking rules: no I/O, no async.
pub mod availability;
pub mod cause;
pub mod grid;
pub mod ids;
pub mod pacing;
pub mod party;
pub mod reservation;
pub mod restaurant;
#[cfg(test)]
mod robustness;
pub mod seating;
pub mod table;
pub mod text;
pub mod time;
pub mod waitlist;

pub use cause::Cause;
pub use ids::{EntryId, ReservationId, RestaurantId};
pub use pacing::Pacing;
pub use party::PartySize;
pub use reservation::{Reservation, Status};
pub use restaurant::Restaurant;
pub use seating::{Combination, Seating};
pub use table::{Table, TableId};
pub use time::{LocalDate, WallTime};
pub use waitlist::{WaitStatus, WaitlistEntry};

/// A rule broken by a value that parsed: becomes `422 validation`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
