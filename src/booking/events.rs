//! What the booking layer emits after each commit, and the port it emits it through.
pub use crate::domain::Cause;
use crate::domain::LocalDate;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One committed change: the dates it moved and their new versions, or the restaurant-wide
/// version when settings or tables changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub restaurant_id: Uuid,
    pub cause: Cause,
    pub at: DateTime<Utc>,
    pub dates: Vec<(LocalDate, u64)>,
    pub wide_version: Option<u64>,
}

/// Receives every change after its commit. It must not block: implementations queue.
pub trait Publish: Send + Sync + 'static {
    fn publish(&self, change: Change);
}
