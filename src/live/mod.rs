//! Live updates: committed changes flow to the hub, which pushes them to subscribers; the bus
//! carries them between instances.
pub mod bus;
pub mod hub;

use crate::booking::{Change, Publish};

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
