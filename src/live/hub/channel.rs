//! One channel's task: its subscribers grouped by view, the day it holds, and the loop that
//! applies each change (or reads the store on a gap), diffs and fans out, resyncs laggards and
//! reconciles with the store.
use super::apply::Parts;
use super::view::{self, State, View};
use super::{Conn, Hub, Key, Out};
use crate::booking::Change;
use crate::domain::{Cause, Reservation, Restaurant, WaitlistEntry};
use crate::metrics::Metrics;
use crate::wire::floor::waitlist_views;
use crate::wire::WaitlistEntryView;
use chrono::{DateTime, Utc};
use read::{Also, Why, GAP_WAIT};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// How long a subscriber may stay behind before its connection is closed with 4008.
const STALE_LIMIT: Duration = Duration::from_secs(5);
mod read;

const RESYNC_EVERY: Duration = Duration::from_millis(100);
/// How long a channel that opens waits for the bus to carry its changes before it reads the
/// store anyway (see `Bus::watched`).
const WATCH_WAIT: Duration = Duration::from_secs(2);
/// Under a burst of changes a channel fans out at most once per gap; the changes in between are
/// coalesced into one frame (versions may skip). A lone change goes out at once. The gap grows
/// with the audience, so that a burst costs each channel about `1 / FRAME_COST` frames a second
/// however many watch it: 10 ms up to 200 subscribers, 50 ms at 1,000, at most 100 ms.
pub(super) const MIN_FANOUT_GAP: Duration = Duration::from_millis(10);
pub(super) const MAX_FANOUT_GAP: Duration = Duration::from_millis(100);
const FRAME_COST: Duration = Duration::from_micros(50);

/// The least time between two fan-outs of a channel with `members` subscribers.
pub(super) fn fanout_gap(members: usize) -> Duration {
    let members = u32::try_from(members).unwrap_or(u32::MAX);
    FRAME_COST
        .saturating_mul(members)
        .clamp(MIN_FANOUT_GAP, MAX_FANOUT_GAP)
}
pub(super) enum Cmd {
    Subscribe {
        view: View,
        conn: Conn,
        sub: Arc<str>,
        /// Told whether the subscription was taken (its snapshot queued) or not (the channel
        /// could not load its restaurant/date); dropped unanswered, it was not taken either.
        done: tokio::sync::oneshot::Sender<bool>,
    },
    Unsubscribe {
        conn: u64,
        sub: Arc<str>,
    },
}

#[derive(Default)]
pub(super) struct Pending {
    /// Read the store (a bus outage): what it missed has no image.
    read: bool,
    wide: bool,
    cause: Option<Cause>,
    at: Option<DateTime<Utc>>,
    changes: Vec<Arc<Change>>,
}

/// What publishers share with the channel task: changes they queue without blocking.
pub(super) struct Shared {
    pub(super) pending: Mutex<Pending>,
    pub(super) notify: Notify,
}

impl Shared {
    /// Asks for a read of the store (everything when `wide`).
    pub(super) fn mark(&self, wide: bool, cause: Cause, at: DateTime<Utc>) {
        let mut p = self.pending.lock().expect("pending lock");
        p.read = true;
        p.wide |= wide;
        p.cause = Some(cause);
        p.at = Some(at);
        drop(p);
        self.notify.notify_one();
    }

    /// Queues a committed change.
    pub(super) fn queue(&self, change: Arc<Change>) {
        let mut p = self.pending.lock().expect("pending lock");
        p.wide |= change.wide_version.is_some();
        p.changes.push(change);
        drop(p);
        self.notify.notify_one();
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
    state: State,
    snapshot: Arc<str>,
    /// When `state` was computed: time alone may change it (see `view::valid_until`).
    computed_at: DateTime<Utc>,
}

pub(super) struct Channel {
    key: Key,
    hub: Hub,
    rx: mpsc::Receiver<Cmd>,
    shared: Arc<Shared>,
    restaurant: Option<Restaurant>,
    day: Vec<Reservation>,
    /// The date's waitlist, read only while a view shows it.
    waitlist: Vec<WaitlistEntry>,
    /// The date's cancelled reservations, read only while a floor shows them.
    cancelled: Vec<Reservation>,
    version: u64,
    /// The parts of `version` (see `apply`).
    parts: Parts,
    /// Changes ahead of the version, waiting for the ones before them, and since when.
    ahead: Vec<Arc<Change>>,
    ahead_since: Option<Instant>,
    groups: HashMap<View, Group>,
    last_fanout: Option<Instant>,
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

impl Channel {
    pub(super) fn new(key: Key, hub: Hub, rx: mpsc::Receiver<Cmd>, shared: Arc<Shared>) -> Self {
        Channel {
            key,
            hub,
            rx,
            shared,
            restaurant: None,
            day: Vec::new(),
            waitlist: Vec::new(),
            cancelled: Vec::new(),
            version: 0,
            parts: Parts::default(),
            ahead: Vec::new(),
            ahead_since: None,
            groups: HashMap::new(),
            last_fanout: None,
        }
    }

    /// The day with the cancelled reservations read for a floor (none without one), merged in
    /// the day's order (start, then table): what a floor lists, and what a reconcile compares.
    fn shown(&self) -> Vec<Reservation> {
        let order = |r: &Reservation| (r.start, r.table_id.clone());
        let mut all = Vec::with_capacity(self.day.len() + self.cancelled.len());
        let (mut day, mut cancelled) =
            (self.day.iter().peekable(), self.cancelled.iter().peekable());
        loop {
            let next = match (day.peek(), cancelled.peek()) {
                (Some(d), Some(c)) if order(c) < order(d) => cancelled.next(),
                (Some(_), _) => day.next(),
                (None, Some(_)) => cancelled.next(),
                (None, None) => return all,
            };
            all.extend(next.cloned());
        }
    }

    /// Drops the groups left without members, and the cancelled reservations when the last
    /// floor to list them goes. Only then: a floor joining reads them before its group exists,
    /// and the update that read sends the views already there passes through here.
    fn drop_empty_groups(&mut self) {
        let floor = self.keeps_cancelled();
        self.groups.retain(|_, g| !g.members.is_empty());
        if floor && !self.keeps_cancelled() {
            self.cancelled = Vec::new();
        }
    }

    fn metrics(&self) -> Metrics {
        self.hub.0.metrics.clone()
    }

    fn member_count(&self) -> usize {
        self.groups.values().map(|g| g.members.len()).sum()
    }

    /// The waitlist as shown at `now`, built once for every view of a change (not per view:
    /// a date with hundreds of entries has hundreds of entry views).
    fn waitlist_views(&self, now: DateTime<Utc>) -> Vec<WaitlistEntryView> {
        if self.groups.keys().any(|v| v.needs_waitlist()) {
            waitlist_views(&self.waitlist, now)
        } else {
            Vec::new()
        }
    }

    fn compute(
        &self,
        view: View,
        waitlist: &[WaitlistEntryView],
        now: DateTime<Utc>,
    ) -> (State, Arc<str>) {
        let r = self.restaurant.as_ref().expect("loaded");
        // The floor lists the date's cancelled reservations beside the day.
        let shown;
        let day = if view == View::Floor && !self.cancelled.is_empty() {
            shown = self.shown();
            &shown
        } else {
            &self.day
        };
        view::compute(r, self.key.1, self.version, day, waitlist, view, now)
    }

    async fn subscribe(
        &mut self,
        view: View,
        conn: Conn,
        sub: Arc<str>,
        done: tokio::sync::oneshot::Sender<bool>,
    ) {
        if self.restaurant.is_none() && !self.reload(true, Why::Subscribe).await {
            // The connection answers the subscribe with its error, `sub` and all.
            let _ = done.send(false);
            return;
        }
        // An entry's view never opens on `null` ("it no longer exists") for an entry the
        // connection has just found in the store: the change that brings it may still be
        // queued behind the fan-out gap (applied and fanned out now, first), or on its way over
        // the bus from another instance (then the store is read, as for a first view).
        let unknown =
            |c: &Self| matches!(view, View::Entry(id) if !c.waitlist.iter().any(|e| e.id == id));
        if self.keeps_waitlist() && unknown(self) {
            self.on_changes(false).await;
        }
        let first_floor = view == View::Floor && !self.keeps_cancelled();
        if first_floor || view.needs_waitlist() && (!self.keeps_waitlist() || unknown(self)) {
            // The first view of the waitlist on this channel (or an entry it does not know
            // yet), or the first floor (which lists the cancelled reservations too): read it
            // now with the day, so the snapshot's version covers it. The views already there
            // see any change it brings.
            let before = self.version;
            let also = Also {
                waitlist: true,
                cancelled: view == View::Floor || self.keeps_cancelled(),
            };
            self.read(false, also, Why::Subscribe).await;
            if self.version > before {
                self.fan_out(Cause::Changed, Utc::now(), false);
            }
        }
        let now = Utc::now();
        if self.groups.get(&view).is_some_and(|g| {
            view::valid_until(view, &g.state, &self.day, g.computed_at).is_some_and(|u| now >= u)
        }) {
            // Time alone changed the view since it was computed (a start passed, a hold ran
            // out): computed anew and sent to its members as a fresh snapshot, so the one
            // joining gets what `GET` answers now and the others the same.
            let waitlist = self.waitlist_views(now);
            self.fan_out_view(view, &waitlist, now, (Cause::Changed, now), true);
        }
        if !self.groups.contains_key(&view) {
            let waitlist = if view.needs_waitlist() {
                waitlist_views(&self.waitlist, now)
            } else {
                Vec::new()
            };
            let (state, snapshot) = self.compute(view, &waitlist, now);
            self.groups.insert(
                view,
                Group {
                    members: Vec::new(),
                    state,
                    snapshot,
                    computed_at: now,
                },
            );
        }
        let metrics = self.metrics();
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
        if offer(&metrics, &mut m, snap) {
            metrics.live_subscriptions().inc();
            g.members.push(m);
        }
        // A floor's cancelled reservations are kept only while a floor group exists.
        debug_assert!(self.keeps_cancelled() || self.cancelled.is_empty());
        // Taken, even when the queue was full: then the connection is being evicted.
        let _ = done.send(true);
    }

    /// Removes `first` and every unsubscribe queued right behind it, in one pass over the
    /// members (sockets that close together — a client's network drops, a proxy restarts —
    /// would otherwise cost a pass each). Returns the next command it took off the queue, if
    /// that was not an unsubscribe.
    fn unsubscribe(&mut self, first: (u64, Arc<str>)) -> Option<Cmd> {
        let mut gone: HashMap<u64, Vec<Arc<str>>> = HashMap::new();
        gone.entry(first.0).or_default().push(first.1);
        let mut next = None;
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Unsubscribe { conn, sub } => gone.entry(conn).or_default().push(sub),
                other => {
                    next = Some(other);
                    break;
                }
            }
        }
        let metrics = self.metrics();
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members.retain(|m| {
                !gone
                    .get(&m.conn.id)
                    .is_some_and(|subs| subs.contains(&m.sub))
            });
            metrics
                .live_subscriptions()
                .sub((before - g.members.len()) as i64);
        }
        self.drop_empty_groups();
        next
    }

    async fn command(&mut self, cmd: Cmd) {
        let mut next = Some(cmd);
        while let Some(cmd) = next.take() {
            match cmd {
                Cmd::Subscribe {
                    view,
                    conn,
                    sub,
                    done,
                } => self.subscribe(view, conn, sub, done).await,
                Cmd::Unsubscribe { conn, sub } => next = self.unsubscribe((conn, sub)),
            }
        }
    }

    /// Sends every group what changed since its last state, or a fresh snapshot when `fresh`.
    fn fan_out(&mut self, cause: Cause, at: DateTime<Utc>, fresh: bool) {
        self.last_fanout = Some(Instant::now());
        let now = Utc::now();
        let views: Vec<View> = self.groups.keys().copied().collect();
        let waitlist = self.waitlist_views(now);
        for v in views {
            self.fan_out_view(v, &waitlist, now, (cause, at), fresh);
        }
        self.drop_empty_groups();
    }

    /// One view of `fan_out`: computed at `now`, and sent to its members as the update from
    /// what they had (or, `fresh`, as a snapshot).
    fn fan_out_view(
        &mut self,
        v: View,
        waitlist: &[WaitlistEntryView],
        now: DateTime<Utc>,
        (cause, at): (Cause, DateTime<Utc>),
        fresh: bool,
    ) {
        let metrics = self.metrics();
        let (state, snapshot) = self.compute(v, waitlist, now);
        let g = self.groups.get_mut(&v).expect("present");
        let frame = if fresh {
            Some(snapshot.clone())
        } else {
            view::diff(v, &g.state, &state, self.version, cause, at)
        };
        g.state = state;
        g.snapshot = snapshot;
        g.computed_at = now;
        let Some(body) = frame else { return };
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
            offer(&metrics, m, out)
        });
        metrics
            .live_subscriptions()
            .sub((before - g.members.len()) as i64);
    }

    /// Gives stale subscribers a fresh snapshot in place of what they missed, or evicts them.
    fn resync(&mut self) {
        let metrics = self.metrics();
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
                        m.conn.tx.evict();
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            metrics
                .live_subscriptions()
                .sub((before - g.members.len()) as i64);
        }
        self.drop_empty_groups();
    }

    /// Repairs what a lost notification (bus outage, a crashed instance) left behind: when the
    /// store is ahead of what subscribers saw, they get the missed change as an update carrying
    /// the cause and commit time of the newest reservation change (or a fresh snapshot when the
    /// restaurant's settings changed).
    async fn reconcile(&mut self) {
        let (version, restaurant, day) = (self.version, self.restaurant.clone(), self.shown());
        if !self.reload(true, Why::Reconcile).await {
            return;
        }
        // What was queued meanwhile is in the read, or newer.
        self.settle();
        if self.restaurant != restaurant {
            self.hub.0.metrics.live_reconciled();
            self.fan_out(Cause::Changed, Utc::now(), true);
        } else if self.version > version {
            self.hub.0.metrics.live_reconciled();
            let (cause, at) = self
                .newest_change(&day, Why::Reconcile)
                .await
                .unwrap_or((Cause::Changed, Utc::now()));
            self.fan_out(cause, at, false);
        }
    }

    fn has_stale(&self) -> bool {
        self.groups
            .values()
            .any(|g| g.members.iter().any(|m| m.stale_since.is_some()))
    }

    /// Leaves the registry when nobody watches and nothing is queued.
    fn try_close(&mut self) -> bool {
        if self.member_count() > 0 || !self.rx.is_empty() {
            return false;
        }
        self.hub.forget(self.key, &self.shared);
        self.rx.close();
        true
    }

    pub(super) async fn run(mut self) {
        // No read of the store before changes to this key reach this instance (see
        // `Bus::watched`): one committed between the read and the subscription would reach
        // these subscribers only at the reconcile. A bus slower than `WATCH_WAIT` leaves it to
        // that.
        if let Some(bus) = self.hub.0.bus.get() {
            let _ = tokio::time::timeout(WATCH_WAIT, bus.watched(self.key)).await;
        }
        let mut tick = tokio::time::interval(RESYNC_EVERY);
        let every = self.hub.0.reconcile_every;
        let mut reconcile = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A fan-out held back by the gap, and when it is due: meanwhile the channel still takes
        // subscribes and unsubscribes, and what is published waits in `pending`.
        let mut due: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd).await,
                    None => return,
                },
                _ = self.shared.notify.notified() => {
                    if due.is_none() {
                        let wait = self.last_fanout.map_or(Duration::ZERO, |last| {
                            fanout_gap(self.member_count()).saturating_sub(last.elapsed())
                        });
                        if wait.is_zero() {
                            self.on_changes(false).await;
                        } else {
                            due = Some(tokio::time::Instant::now() + wait);
                        }
                    }
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    due = None;
                    self.on_changes(false).await;
                },
                _ = tokio::time::sleep(GAP_WAIT.saturating_sub(self.ahead_since.map_or(Duration::ZERO, |t| t.elapsed()))),
                    if self.ahead_since.is_some() => self.on_changes(true).await,
                _ = tick.tick(), if self.has_stale() => self.resync(),
                _ = reconcile.tick() => self.reconcile().await,
            }
            if self.member_count() == 0 && self.try_close() {
                // Drain what raced in after close: those subscribers retry on a new channel.
                while let Ok(cmd) = self.rx.try_recv() {
                    if let Cmd::Subscribe { .. } = cmd {
                        let hub = self.hub.clone();
                        let key = self.key;
                        tokio::spawn(async move { hub.deliver(key, cmd).await });
                    }
                }
                return;
            }
        }
    }
}
