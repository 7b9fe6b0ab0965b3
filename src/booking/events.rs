//! What the booking layer emits after each commit, and the port it emits it through.
pub use crate::domain::Cause;
use crate::domain::{LocalDate, Reservation, WaitlistEntry};
pub use crate::store::Step;
use crate::store::{as_stored, stored_instant as stored};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// One committed change: the dates it moved and their new versions (with the exact steps the
/// store knows), or the restaurant-wide version when settings or tables changed, and the
/// after-image of what it changed, so a live view can apply it without reading the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub restaurant_id: Uuid,
    pub cause: Cause,
    pub at: DateTime<Utc>,
    pub dates: Vec<(LocalDate, u64)>,
    pub wide_version: Option<u64>,
    /// How the commit moved each date's version, where the store knows it exactly. A date of
    /// `dates` with no step must be read.
    pub steps: Vec<Step>,
    /// What the commit wrote, as it left it; `None` when subscribers must read instead (a
    /// restaurant-wide change, or an image too large to carry).
    pub image: Option<Arc<Image>>,
}

/// The after-image of one commit: every reservation and waitlist entry it changed in a way a
/// live view shows, exactly as a read after the commit returns them. Changes a view derives
/// from the clock alone (a hold past its expiry marked expired, an offer past its expiry
/// marked lapsed, on the way of another write) need not be in it: a view already shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "r", default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<Reservation>,
    #[serde(rename = "w", default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<WaitlistEntry>,
}

impl Image {
    pub fn new(reservations: Vec<Reservation>, entries: Vec<WaitlistEntry>) -> Arc<Image> {
        let reservations = reservations.into_iter().map(as_stored).collect();
        let entries = entries
            .into_iter()
            .map(|mut e| {
                (e.created_at, e.updated_at) = (stored(e.created_at), stored(e.updated_at));
                if let Some(o) = e.offer.as_mut() {
                    o.expires_at = stored(o.expires_at);
                }
                e
            })
            .collect();
        Arc::new(Image {
            reservations,
            entries,
        })
    }
}

/// Receives every change after its commit. It must not block: implementations queue.
pub trait Publish: Send + Sync + 'static {
    fn publish(&self, change: Change);
}
