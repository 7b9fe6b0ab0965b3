//! The hub: one task per watched restaurant/date ("channel"), found through a registry.
//! Publishers only mark a channel dirty (never block); the channel reloads the day from the store
//! once, computes each party size's slots and the floor once, encodes each frame once and
//! offers the same bytes to every subscriber's bounded queue.
use super::frames::{self, Out};
use super::{Cause, Change, Publish};
use crate::domain::availability;
use crate::domain::{LocalDate, PartySize, Reservation, Restaurant, Status};
use crate::http::dto::{AvailabilityBody, SlotBody};
use crate::metrics::Metrics;
use crate::store::DynStore;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

pub type Key = (Uuid, LocalDate);

/// What a subscription watches on its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Party(PartySize),
    Floor,
}

/// A connection as the hub sees it: its bounded queue and the signal that evicts it.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    pub tx: mpsc::Sender<Out>,
    pub evict: Arc<Notify>,
}

/// How long a subscriber may stay behind before its connection is closed with 4008.
const STALE_LIMIT: Duration = Duration::from_secs(5);
const RESYNC_EVERY: Duration = Duration::from_millis(100);
/// Under a burst of changes a channel fans out at most this often; the changes in between are
/// coalesced into one frame (versions may skip). A lone change goes out at once.
const MIN_FANOUT_GAP: Duration = Duration::from_millis(10);

enum Cmd {
    Subscribe {
        view: View,
        conn: Conn,
        sub: Arc<str>,
    },
    Unsubscribe {
        conn: u64,
        sub: Arc<str>,
    },
}

#[derive(Default)]
struct Pending {
    dirty: bool,
    wide: bool,
    cause: Option<Cause>,
    at: Option<DateTime<Utc>>,
}

struct Shared {
    pending: Mutex<Pending>,
    notify: Notify,
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
    /// Notified whenever the set of watched channels changes (the bus follows it).
    interest: Arc<Notify>,
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
            interest: Arc::new(Notify::new()),
            reconcile_every,
        }))
    }

    /// The restaurant/dates someone on this instance watches.
    pub fn keys(&self) -> Vec<Key> {
        self.0
            .channels
            .lock()
            .expect("registry lock")
            .keys()
            .copied()
            .collect()
    }

    pub fn interest(&self) -> Arc<Notify> {
        self.0.interest.clone()
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
        self.0.interest.notify_one();
        let task = Channel {
            key,
            hub: self.clone(),
            rx,
            shared,
            restaurant: None,
            day: Vec::new(),
            version: 0,
            groups: HashMap::new(),
            last_fanout: None,
        };
        tokio::spawn(task.run());
        c
    }

    /// Adds a subscription; its snapshot and updates arrive on the connection's queue.
    pub async fn subscribe(&self, key: Key, view: View, conn: Conn, sub: Arc<str>) {
        let mut cmd = Cmd::Subscribe { view, conn, sub };
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

    /// Marks channels dirty so they reload from the store (used by publishers and reconcile).
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
            let mut p = c.shared.pending.lock().expect("pending lock");
            p.dirty = true;
            p.wide |= dates.is_none();
            p.cause = Some(cause);
            p.at = Some(at);
            drop(p);
            c.shared.notify.notify_one();
        }
    }
}

impl Publish for Hub {
    fn publish(&self, change: Change) {
        self.0.metrics.change_committed(cause_name(change.cause));
        if change.wide_version.is_some() {
            self.mark(change.restaurant_id, None, change.cause, change.at);
        } else {
            let dates: Vec<LocalDate> = change.dates.iter().map(|(d, _)| *d).collect();
            // A change on date d can also move d+1 (a walk-in running past midnight).
            let mut all = dates.clone();
            all.extend(dates.iter().map(|d| d.succ()));
            self.mark(change.restaurant_id, Some(&all), change.cause, change.at);
        }
    }
}

pub fn cause_name(c: Cause) -> &'static str {
    match c {
        Cause::Held => "held",
        Cause::Released => "released",
        Cause::Expired => "expired",
        Cause::Confirmed => "confirmed",
        Cause::Cancelled => "cancelled",
        Cause::Seated => "seated",
        Cause::Completed => "completed",
        Cause::NoShow => "no_show",
        Cause::WalkIn => "walk_in",
        Cause::Changed => "changed",
    }
}

struct Member {
    conn: Conn,
    sub: Arc<str>,
    stale_since: Option<Instant>,
}

/// The subscribers of one view and the state they were last sent.
struct Group {
    members: Vec<Member>,
    slots: Vec<SlotBody>,
    tables: Vec<Value>,
    snapshot: Arc<str>,
}

struct Channel {
    key: Key,
    hub: Hub,
    rx: mpsc::Receiver<Cmd>,
    shared: Arc<Shared>,
    restaurant: Option<Restaurant>,
    day: Vec<Reservation>,
    version: u64,
    groups: HashMap<View, Group>,
    last_fanout: Option<Instant>,
}

/// The newest reservation change between two reads of a day, as a cause and its commit time.
fn latest_change(old: &[Reservation], new: &[Reservation]) -> Option<(Cause, DateTime<Utc>)> {
    new.iter()
        .filter(|r| !old.iter().any(|o| o == *r))
        .max_by_key(|r| r.updated_at)
        .map(|r| {
            let cause = match r.status {
                Status::Held => Cause::Held,
                Status::Confirmed => Cause::Confirmed,
                Status::Released => Cause::Released,
                Status::Expired => Cause::Expired,
                Status::Cancelled => Cause::Cancelled,
                Status::Seated if r.created_at == r.updated_at => Cause::WalkIn,
                Status::Seated => Cause::Seated,
                Status::Completed => Cause::Completed,
                Status::NoShow => Cause::NoShow,
            };
            (cause, r.updated_at)
        })
}

/// The floor view: every table of the restaurant with its reservations of the date, whole.
fn floor_tables(
    r: &Restaurant,
    date: LocalDate,
    day: &[Reservation],
    now: DateTime<Utc>,
) -> Vec<Value> {
    r.tables
        .iter()
        .map(|t| {
            let list: Vec<Value> = day
                .iter()
                .filter(|x| x.table_id == t.id && x.date == date)
                .filter(|x| !matches!(x.status_at(now), Status::Released | Status::Expired))
                .map(|x| serde_json::to_value(x.view(now, true)).unwrap_or(Value::Null))
                .collect();
            json!({"id": t.id, "label": t.label, "min_party": t.min_party,
                   "max_party": t.max_party, "reservations": list})
        })
        .collect()
}

impl Channel {
    fn member_count(&self) -> usize {
        self.groups.values().map(|g| g.members.len()).sum()
    }

    async fn reload(&mut self, with_restaurant: bool) -> bool {
        let store = &self.hub.0.store;
        if with_restaurant || self.restaurant.is_none() {
            match store.restaurant(self.key.0).await {
                Ok(Some(r)) => self.restaurant = Some(r.restaurant),
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "live channel cannot load its restaurant");
                    return false;
                }
            }
        }
        match store.day(self.key.0, self.key.1).await {
            Ok(day) => {
                let newer = day.version > self.version;
                if newer || with_restaurant {
                    self.version = self.version.max(day.version);
                    self.day = day.reservations;
                }
                newer || with_restaurant
            }
            Err(e) => {
                tracing::warn!(error = %e, "live channel cannot load its day");
                false
            }
        }
    }

    /// The view's current state and its snapshot frame.
    fn compute(&self, view: View, now: DateTime<Utc>) -> (Vec<SlotBody>, Vec<Value>, Arc<str>) {
        let r = self.restaurant.as_ref().expect("loaded");
        match view {
            View::Party(p) => {
                let slots = availability::availability(r, self.key.1, p, now, &self.day);
                let body = AvailabilityBody::from(&crate::booking::Availability {
                    restaurant: r.clone(),
                    date: self.key.1,
                    party_size: p,
                    version: self.version,
                    slots,
                });
                let snap = frames::snapshot(
                    self.version,
                    &serde_json::to_value(&body).unwrap_or_default(),
                );
                (body.slots, Vec::new(), snap)
            }
            View::Floor => {
                let tables = floor_tables(r, self.key.1, &self.day, now);
                let snap = frames::snapshot(self.version, &json!({ "tables": tables }));
                (Vec::new(), tables, snap)
            }
        }
    }

    fn offer(metrics: &Metrics, m: &mut Member, out: Out) -> bool {
        match m.conn.tx.try_send(out) {
            Ok(()) => {
                metrics.live_sent();
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                m.stale_since.get_or_insert_with(Instant::now);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    async fn subscribe(&mut self, view: View, conn: Conn, sub: Arc<str>) {
        if self.restaurant.is_none() && !self.reload(true).await {
            let _ = conn.tx.try_send(Out::Own(frames::error(
                None,
                None,
                503,
                "Service unavailable",
                "cannot load this restaurant/date",
            )));
            return;
        }
        let now = Utc::now();
        if !self.groups.contains_key(&view) {
            let (slots, tables, snapshot) = self.compute(view, now);
            self.groups.insert(
                view,
                Group {
                    members: Vec::new(),
                    slots,
                    tables,
                    snapshot,
                },
            );
        }
        let metrics = self.hub.0.metrics.clone();
        let g = self.groups.get_mut(&view).expect("inserted");
        let mut m = Member {
            conn,
            sub,
            stale_since: None,
        };
        let snap = Out::Shared {
            body: g.snapshot.clone(),
            sub: m.sub.clone(),
            at: None,
        };
        if Self::offer(&metrics, &mut m, snap) {
            metrics.live_subscriptions().inc();
            g.members.push(m);
        }
    }

    fn unsubscribe(&mut self, conn: u64, sub: &str) {
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members.retain(|m| !(m.conn.id == conn && &*m.sub == sub));
            self.hub
                .0
                .metrics
                .live_subscriptions()
                .sub((before - g.members.len()) as i64);
        }
        self.groups.retain(|_, g| !g.members.is_empty());
    }

    /// Sends every group what changed since its last state, or a fresh snapshot when `fresh`.
    fn fan_out(&mut self, cause: Cause, at: DateTime<Utc>, fresh: bool) {
        self.last_fanout = Some(Instant::now());
        let now = Utc::now();
        let metrics = self.hub.0.metrics.clone();
        let views: Vec<View> = self.groups.keys().copied().collect();
        for view in views {
            let (slots, tables, snapshot) = self.compute(view, now);
            let g = self.groups.get_mut(&view).expect("present");
            let frame = if fresh {
                Some(snapshot.clone())
            } else {
                match view {
                    View::Party(_) => {
                        let changed: Vec<SlotBody> = slots
                            .iter()
                            .filter(|s| {
                                !g.slots.iter().any(|o| {
                                    o.time == s.time && o.available_tables == s.available_tables
                                })
                            })
                            .cloned()
                            .collect();
                        (!changed.is_empty()).then(|| {
                            frames::slots_update(self.version, cause_name(cause), at, &changed)
                        })
                    }
                    View::Floor => {
                        let changed: Vec<Value> = tables
                            .iter()
                            .filter(|t| !g.tables.contains(t))
                            .cloned()
                            .collect();
                        (!changed.is_empty()).then(|| {
                            frames::tables_update(self.version, cause_name(cause), at, &changed)
                        })
                    }
                }
            };
            g.slots = slots;
            g.tables = tables;
            g.snapshot = snapshot;
            let Some(body) = frame else { continue };
            let before = g.members.len();
            g.members.retain_mut(|m| {
                if m.stale_since.is_some() {
                    return true; // gets a snapshot instead, on the resync tick
                }
                let out = Out::Shared {
                    body: body.clone(),
                    sub: m.sub.clone(),
                    at: Some(at),
                };
                Self::offer(&metrics, m, out)
            });
            metrics
                .live_subscriptions()
                .sub((before - g.members.len()) as i64);
        }
        self.groups.retain(|_, g| !g.members.is_empty());
    }

    /// Gives stale subscribers a fresh snapshot in place of what they missed, or evicts them.
    fn resync(&mut self) {
        let metrics = self.hub.0.metrics.clone();
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members.retain_mut(|m| {
                let Some(since) = m.stale_since else {
                    return true;
                };
                let out = Out::Shared {
                    body: g.snapshot.clone(),
                    sub: m.sub.clone(),
                    at: None,
                };
                match m.conn.tx.try_send(out) {
                    Ok(()) => {
                        m.stale_since = None;
                        metrics.live_resync();
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) if since.elapsed() < STALE_LIMIT => {
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        m.conn.evict.notify_one();
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            metrics
                .live_subscriptions()
                .sub((before - g.members.len()) as i64);
        }
        self.groups.retain(|_, g| !g.members.is_empty());
    }

    /// Repairs what a lost notification (bus outage, a crashed instance) left behind: when the
    /// store is ahead of what subscribers saw, they get the missed change as an update carrying
    /// the cause and commit time of the newest reservation change (or a fresh snapshot when the
    /// restaurant's settings changed).
    async fn reconcile(&mut self) {
        let (version, restaurant, day) = (self.version, self.restaurant.clone(), self.day.clone());
        if !self.reload(true).await {
            return;
        }
        if self.restaurant != restaurant {
            self.hub.0.metrics.live_reconciled();
            self.fan_out(Cause::Changed, Utc::now(), true);
        } else if self.version > version {
            self.hub.0.metrics.live_reconciled();
            let (cause, at) =
                latest_change(&day, &self.day).unwrap_or((Cause::Changed, Utc::now()));
            self.fan_out(cause, at, false);
        }
    }

    fn has_stale(&self) -> bool {
        self.groups
            .values()
            .any(|g| g.members.iter().any(|m| m.stale_since.is_some()))
    }

    /// Leaves the registry when nobody watches and nothing is queued, under the registry lock.
    fn try_close(&mut self) -> bool {
        let mut map = self.hub.0.channels.lock().expect("registry lock");
        if self.member_count() > 0 || !self.rx.is_empty() {
            return false;
        }
        if map
            .get(&self.key)
            .is_some_and(|c| Arc::ptr_eq(&c.shared, &self.shared))
        {
            map.remove(&self.key);
        }
        self.rx.close();
        true
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(RESYNC_EVERY);
        let every = self.hub.0.reconcile_every;
        let mut reconcile = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(Cmd::Subscribe { view, conn, sub }) => self.subscribe(view, conn, sub).await,
                    Some(Cmd::Unsubscribe { conn, sub }) => self.unsubscribe(conn, &sub),
                    None => return,
                },
                _ = self.shared.notify.notified() => {
                    if let Some(last) = self.last_fanout {
                        tokio::time::sleep(MIN_FANOUT_GAP.saturating_sub(last.elapsed())).await;
                    }
                    let p = std::mem::take(&mut *self.shared.pending.lock().expect("pending lock"));
                    if p.dirty && self.reload(p.wide).await {
                        self.fan_out(p.cause.unwrap_or(Cause::Changed), p.at.unwrap_or_else(Utc::now), p.wide);
                    }
                },
                _ = tick.tick(), if self.has_stale() => self.resync(),
                // Repairs what a lost notification (bus outage, a crashed instance) left behind:
                // when the store is ahead of what subscribers saw, they get a fresh snapshot.
                _ = reconcile.tick() => self.reconcile().await,
            }
            if self.member_count() == 0 && self.try_close() {
                // Drain what raced in after close: those subscribers retry on a new channel.
                while let Ok(cmd) = self.rx.try_recv() {
                    if let Cmd::Subscribe { view, conn, sub } = cmd {
                        let hub = self.hub.clone();
                        let key = self.key;
                        tokio::spawn(async move { hub.subscribe(key, view, conn, sub).await });
                    }
                }
                return;
            }
        }
    }
}
