//! Live updates: committed changes flow to the hub, which pushes them over WebSockets.
pub mod bus;
pub mod frames;
pub mod hub;
pub mod session;

use crate::domain::LocalDate;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Held,
    Released,
    Expired,
    Confirmed,
    Cancelled,
    Seated,
    Completed,
    NoShow,
    WalkIn,
    Changed,
}

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

/// Receives every change after its commit. It must not block: the live hub queues it.
pub trait Publish: Send + Sync + 'static {
    fn publish(&self, change: Change);
}

/// Every commit goes to this instance's hub and, through the bus, to every other instance.
pub struct Fanout {
    pub hub: hub::Hub,
    pub bus: std::sync::Arc<dyn bus::Bus>,
}

impl Publish for Fanout {
    fn publish(&self, change: Change) {
        self.bus.publish(&change);
        self.hub.publish(change);
    }
}
