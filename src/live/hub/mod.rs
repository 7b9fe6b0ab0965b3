//! The hub: one task per watched restaurant/date ("channel"), found through a registry, with a
//! cloneable handle (as actix's chat-actorless hub). Publishers only queue a change on a channel
//! (never block); the channel applies each change's after-image to the day it holds when the
//! change is exactly the next version (see `apply`), and reads the store only on a gap, on a
//! change without an image, on a restaurant-wide change, at subscribe and at reconcile. It then
//! computes each view once, encodes each frame once and offers the same bytes to every
//! subscriber's bounded queue. The bus is a plug-in: told when a channel opens or closes, it
//! hands remote changes (with their images) back to `on_remote`.
mod apply;
mod channel;
mod queue;
#[cfg(test)]
mod tests;
pub mod view;

pub use super::bus::Key;
use super::bus::{Bus, Remote};
use crate::booking::{Change, Publish};
use crate::domain::{Cause, LocalDate};
use crate::metrics::Metrics;
use crate::store::DynStore;
use channel::{Channel, Cmd, Pending, Shared};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

pub use queue::Queue;
pub use view::View;

/// One item of a connection's outgoing queue.
#[derive(Debug, Clone)]
pub enum Out {
    /// A frame shared by every subscriber of a channel, closed with this subscription's `sub`
    /// (`frames::shared_parts`): its bytes are copied once, into the socket's write buffer.
    Shared {
        body: Arc<str>,
        sub: Arc<str>,
        at: Option<DateTime<Utc>>,
    },
    /// A frame for this connection alone.
    Own(String),
    /// A WebSocket ping (empty).
    Ping,
    /// A WebSocket pong echoing the client's ping.
    Pong(Vec<u8>),
    /// The closing frame (code and reason; none when the client left first).
    Close(Option<(u16, String)>),
}

/// A connection as the hub sees it: its bounded queue, which also carries the eviction.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    pub tx: Queue,
}

#[derive(Clone)]
struct ChannelRef {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
}

struct HubInner {
    channels: Mutex<HashMap<Key, ChannelRef>>,
    store: DynStore,
    metrics: Metrics,
    next_conn: AtomicU64,
    bus: OnceLock<Arc<dyn Bus>>,
    reconcile_every: Duration,
}

#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

impl Hub {
    pub fn new(store: DynStore, metrics: Metrics, reconcile_every: Duration) -> Self {
        Hub(Arc::new(HubInner {
            channels: Mutex::new(HashMap::new()),
            store,
            metrics,
            next_conn: AtomicU64::new(1),
            bus: OnceLock::new(),
            reconcile_every,
        }))
    }

    /// Plugs the bus in: from now on it is told of every channel that opens or closes.
    pub fn plug(&self, bus: Arc<dyn Bus>) {
        for key in self.keys() {
            bus.watch(key);
        }
        let _ = self.0.bus.set(bus);
    }

    /// The callback a bus hands remote changes to. Holds the hub weakly.
    pub fn remote_handler(&self) -> Arc<dyn Fn(Remote) + Send + Sync> {
        let weak: Weak<HubInner> = Arc::downgrade(&self.0);
        Arc::new(move |remote| {
            if let Some(inner) = weak.upgrade() {
                Hub(inner).on_remote(remote);
            }
        })
    }

    fn on_remote(&self, remote: Remote) {
        match remote {
            Remote::Change(change) => self.queue(Arc::new(change)),
            // Anything published while the bus was away is repaired: reload every channel.
            Remote::Reconnected => self.mark_all(Cause::Changed),
        }
    }

    fn keys(&self) -> Vec<Key> {
        self.0
            .channels
            .lock()
            .expect("registry lock")
            .keys()
            .copied()
            .collect()
    }

    /// Marks every channel dirty (after a bus outage, say).
    pub fn mark_all(&self, cause: Cause) {
        let ids: HashSet<Uuid> = self.keys().iter().map(|k| k.0).collect();
        for id in ids {
            self.mark(id, None, cause, Utc::now());
        }
    }

    pub fn next_conn_id(&self) -> u64 {
        self.0.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn channel(&self, key: Key) -> ChannelRef {
        let mut map = self.0.channels.lock().expect("registry lock");
        if let Some(c) = map.get(&key) {
            if !c.tx.is_closed() {
                return c.clone();
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            notify: Notify::new(),
        });
        let c = ChannelRef {
            tx,
            shared: shared.clone(),
        };
        map.insert(key, c.clone());
        if let Some(bus) = self.0.bus.get() {
            bus.watch(key);
        }
        tokio::spawn(Channel::new(key, self.clone(), rx, shared).run());
        c
    }

    /// Removes a closing channel from the registry, if it is still the registered one.
    fn forget(&self, key: Key, shared: &Arc<Shared>) {
        let mut map = self.0.channels.lock().expect("registry lock");
        if map
            .get(&key)
            .is_some_and(|c| Arc::ptr_eq(&c.shared, shared))
        {
            map.remove(&key);
            if let Some(bus) = self.0.bus.get() {
                bus.unwatch(key);
            }
        }
    }

    /// Adds a subscription; its snapshot and updates arrive on the connection's queue.
    /// Subscribes `sub` of `conn` to `view` of the restaurant/date `key`: its snapshot is queued
    /// when this returns true. False when the channel could not load the restaurant/date.
    pub async fn subscribe(&self, key: Key, view: View, conn: Conn, sub: Arc<str>) -> bool {
        let (done, taken) = tokio::sync::oneshot::channel();
        let cmd = Cmd::Subscribe {
            view,
            conn,
            sub,
            done,
        };
        self.deliver(key, cmd).await;
        taken.await.unwrap_or(false)
    }

    /// Hands `cmd` to the channel of `key`.
    async fn deliver(&self, key: Key, mut cmd: Cmd) {
        // A channel may be closing as we reach it: then the send fails and a new one is made.
        for _ in 0..3 {
            match self.channel(key).tx.send(cmd).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(c)) => cmd = c,
            }
        }
        tracing::error!(?key, "could not reach a live channel");
    }

    pub async fn unsubscribe(&self, key: Key, conn: u64, sub: Arc<str>) {
        let c = self
            .0
            .channels
            .lock()
            .expect("registry lock")
            .get(&key)
            .cloned();
        if let Some(c) = c {
            let _ = c.tx.send(Cmd::Unsubscribe { conn, sub }).await;
        }
    }

    /// Queues a committed change on every channel of a date it moved (of the restaurant, when
    /// it is restaurant-wide).
    fn queue(&self, change: Arc<Change>) {
        let map = self.0.channels.lock().expect("registry lock");
        for (key, c) in map.iter() {
            let wide = change.wide_version.is_some();
            if key.0 != change.restaurant_id
                || !(wide || change.dates.iter().any(|(d, _)| *d == key.1))
            {
                continue;
            }
            c.shared.queue(change.clone());
        }
    }

    /// Marks channels dirty so they read the store (after a bus outage).
    pub fn mark(
        &self,
        restaurant_id: Uuid,
        dates: Option<&[LocalDate]>,
        cause: Cause,
        at: DateTime<Utc>,
    ) {
        let map = self.0.channels.lock().expect("registry lock");
        for (key, c) in map.iter() {
            if key.0 != restaurant_id || dates.is_some_and(|d| !d.contains(&key.1)) {
                continue;
            }
            c.shared.mark(dates.is_none(), cause, at);
        }
    }
}

impl Publish for Hub {
    fn publish(&self, change: Change) {
        self.0.metrics.change_committed(change.cause.as_str());
        // The store names every date a change moved (the next one too, for a reservation
        // running past midnight).
        self.queue(Arc::new(change));
    }
}
