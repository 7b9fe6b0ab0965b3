//! The bus carries committed changes between instances, with their after-images, so a remote
//! instance applies them exactly as the committing one does, without reading the store. Redis is
//! an accelerator, not the source of truth: a change it loses shows as a version gap at the next
//! change (the channel then reads the store), or is repaired by each channel's reconcile tick,
//! which compares the store's version with what its subscribers saw.
use crate::booking::{Change, Image, Step};
use crate::domain::{Cause, LocalDate};
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

/// How many changes may wait for Redis; past that they are dropped and reconcile repairs them.
const PUBLISH_QUEUE: usize = 4096;
const REDIS_TIMEOUT: Duration = Duration::from_millis(800);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the subscriber checks that its connection still answers (a connection a NAT or a
/// partition silenced gives no error; without this check it would be waited on for ever).
const ALIVE_EVERY: Duration = Duration::from_secs(2);
/// How long the subscriber waits for Redis to answer a SUBSCRIBE or UNSUBSCRIBE before it takes
/// the connection for lost: longer than a Redis pause (a fork, a slow fsync) usually lasts, so
/// such a pause does not make every instance reconnect and reload every channel at once.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// After a reconnect, at most this many more passes subscribe channels opened meanwhile before
/// the reconnect is announced.
const CATCH_UP_PASSES: u32 = 4;
/// A message larger than this goes without its image (a sweep expiring hundreds of holds, say):
/// the receiving channels read the store instead.
pub const MAX_IMAGE_BYTES: usize = 64 * 1024;

/// A channel: one restaurant/date.
pub type Key = (Uuid, LocalDate);

/// What a bus hands back to the hub.
#[derive(Debug, Clone, PartialEq)]
pub enum Remote {
    /// Another instance committed a change (without its image when it was too large).
    Change(Change),
    /// The bus was away and is back: what it missed must be reloaded.
    Reconnected,
}

/// The callback a bus hands remote changes to.
pub type OnRemote = Arc<dyn Fn(Remote) + Send + Sync>;

/// Carries committed changes between instances. A plug-in of the hub: told when a channel opens
/// (`watch`) or closes (`unwatch`), so it listens only for what this instance's clients watch.
/// None of its methods may block.
pub trait Bus: Send + Sync + 'static {
    fn publish(&self, change: &Change);
    fn watch(&self, key: Key);
    fn unwatch(&self, key: Key);
    /// Resolves once changes to `key` published from now on reach this instance (after
    /// `watch`, its subscription is in place), or as soon as they cannot (one process; a bus
    /// that is down, whose reconnect reloads every channel): a channel opening reads the store
    /// only then, so no change falls between its read and its subscription.
    fn watched(&self, _key: Key) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
    /// Resolves once every change published before it has left this instance (`true`), or as
    /// soon as it cannot (`false`: the bus is down and dropped them; reconcile repairs them). A
    /// draining instance waits for it, so the changes of its last requests are not lost with
    /// its queue.
    fn flush(&self) -> futures_util::future::BoxFuture<'static, bool> {
        Box::pin(std::future::ready(true))
    }
    /// `None` when healthy; otherwise what is degraded.
    fn degraded(&self) -> Option<String>;
}

/// One process: nothing to carry.
pub struct LocalBus;

impl Bus for LocalBus {
    fn publish(&self, _: &Change) {}
    fn watch(&self, _: Key) {}
    fn unwatch(&self, _: Key) {}
    fn degraded(&self) -> Option<String> {
        None
    }
}

/// The channels this instance watches, shared with the subscriber task.
#[derive(Default)]
struct Interest {
    keys: Mutex<HashSet<Key>>,
    changed: Notify,
    /// The names the subscriber's current connection is subscribed to (confirmed by Redis).
    subscribed: Mutex<HashSet<String>>,
    /// Told whenever `subscribed` grows or the connection goes.
    confirmed: Notify,
}

impl Interest {
    fn set_subscribed(&self, f: impl FnOnce(&mut HashSet<String>)) {
        f(&mut self.subscribed.lock().expect("interest lock"));
        self.confirmed.notify_waiters();
    }

    /// Takes `name` out of the confirmed set, and says so, unless a key watched now still needs
    /// it: decided under the `keys` lock, so a date that reopens either finds the name still
    /// wanted (no UNSUBSCRIBE goes out) or waits for the SUBSCRIBE that follows.
    fn release_if_unwanted(&self, name: &str) -> bool {
        let keys = self.keys.lock().expect("interest lock");
        if keys
            .iter()
            .any(|k| channel_name(k) == name || wide_name(k.0) == name)
        {
            return false;
        }
        self.subscribed.lock().expect("interest lock").remove(name);
        true
    }

    fn is_subscribed(&self, key: &Key) -> bool {
        let s = self.subscribed.lock().expect("interest lock");
        s.contains(&channel_name(key)) && s.contains(&wide_name(key.0))
    }

    fn names(&self) -> HashSet<String> {
        self.keys
            .lock()
            .expect("interest lock")
            .iter()
            .flat_map(|k| [channel_name(k), wide_name(k.0)])
            .collect()
    }
}

/// One message: a committed change, compact.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The publishing instance: it ignores its own messages.
    i: Uuid,
    r: Uuid,
    /// The dates it moved, with their versions.
    d: Vec<(LocalDate, u64)>,
    /// The restaurant-wide version, for a settings change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    w: Option<u64>,
    c: Cause,
    a: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    s: Vec<Step>,
    /// The after-image; absent: read the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<Arc<Image>>,
}

impl Wire {
    fn of(instance: Uuid, c: &Change) -> Wire {
        Wire {
            i: instance,
            r: c.restaurant_id,
            d: c.dates.clone(),
            w: c.wide_version,
            c: c.cause,
            a: c.at,
            s: c.steps.clone(),
            m: c.image.clone(),
        }
    }

    fn change(self) -> Change {
        Change {
            restaurant_id: self.r,
            cause: self.c,
            at: self.a,
            dates: self.d,
            wide_version: self.w,
            steps: self.s,
            image: self.m,
        }
    }

    /// The JSON to publish: with the image when it fits in `MAX_IMAGE_BYTES`, else without.
    fn payload(mut self) -> serde_json::Result<String> {
        let full = serde_json::to_string(&self)?;
        if full.len() <= MAX_IMAGE_BYTES || self.m.is_none() {
            return Ok(full);
        }
        self.m = None;
        serde_json::to_string(&self)
    }
}

fn channel_name(key: &Key) -> String {
    format!("tablecast:{}:{}", key.0, key.1)
}

fn wide_name(rid: Uuid) -> String {
    format!("tablecast:{rid}")
}

/// What the publisher is given, in order: a change to publish, or a flush to answer once every
/// change before it has been answered by Redis.
enum Outgoing {
    Change(Wire),
    /// Answered `true` when no change was dropped since the last flush.
    Flush(oneshot::Sender<bool>),
}

pub struct RedisBus {
    tx: mpsc::Sender<Outgoing>,
    instance: Uuid,
    publish_ok: Arc<AtomicBool>,
    /// Set when a change could not even be queued (the queue was full); the next flush says so.
    queue_dropped: Arc<AtomicBool>,
    subscribe_ok: Arc<AtomicBool>,
    interest: Arc<Interest>,
}

/// A bus URL as it may be logged or shown: its user and password, if any, as `***`
/// (`redis://:secret@host:6379` is `redis://***@host:6379`).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl RedisBus {
    /// Starts the publisher and subscriber tasks; they connect (and reconnect) with backoff.
    pub fn start(url: &str, on_remote: OnRemote) -> anyhow::Result<Self> {
        // rediss:// needs the process's crypto provider (both rustls backends are built in).
        // Installed once; a second install (another instance in this process) changes nothing.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("cannot use the bus {}: {e}", redacted(url)))?;
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let bus = RedisBus {
            tx,
            instance: Uuid::new_v4(),
            publish_ok: Arc::new(AtomicBool::new(false)),
            queue_dropped: Arc::new(AtomicBool::new(false)),
            subscribe_ok: Arc::new(AtomicBool::new(false)),
            interest: Arc::new(Interest::default()),
        };
        tokio::spawn(publisher(
            client.clone(),
            rx,
            bus.publish_ok.clone(),
            bus.queue_dropped.clone(),
        ));
        tokio::spawn(subscriber(
            client,
            on_remote,
            bus.interest.clone(),
            bus.instance,
            bus.subscribe_ok.clone(),
        ));
        Ok(bus)
    }

    fn interest_changed(&self, f: impl FnOnce(&mut HashSet<Key>)) {
        f(&mut self.interest.keys.lock().expect("interest lock"));
        self.interest.changed.notify_one();
    }
}

impl Bus for RedisBus {
    fn publish(&self, change: &Change) {
        let wire = Wire::of(self.instance, change);
        if self.tx.try_send(Outgoing::Change(wire)).is_err() {
            self.queue_dropped.store(true, Ordering::Relaxed);
            tracing::warn!("bus publish queue full: dropping a change (reconcile repairs it)");
        }
    }

    fn watch(&self, key: Key) {
        self.interest_changed(|keys| {
            keys.insert(key);
        });
    }

    fn unwatch(&self, key: Key) {
        self.interest_changed(|keys| {
            keys.remove(&key);
        });
    }

    fn watched(&self, key: Key) -> futures_util::future::BoxFuture<'static, ()> {
        let (interest, ok) = (self.interest.clone(), self.subscribe_ok.clone());
        Box::pin(async move {
            loop {
                let confirmed = interest.confirmed.notified();
                tokio::pin!(confirmed);
                confirmed.as_mut().enable();
                if !ok.load(Ordering::Relaxed) || interest.is_subscribed(&key) {
                    return;
                }
                confirmed.await;
            }
        })
    }

    fn flush(&self) -> futures_util::future::BoxFuture<'static, bool> {
        // Redis is down: the publisher drops what is queued, after its back-off pause.
        if !self.publish_ok.load(Ordering::Relaxed) {
            return Box::pin(std::future::ready(false));
        }
        let queue = self.tx.clone();
        Box::pin(async move {
            let (done, answered) = oneshot::channel();
            queue.send(Outgoing::Flush(done)).await.is_ok() && answered.await.unwrap_or(false)
        })
    }

    fn degraded(&self) -> Option<String> {
        let (p, s) = (
            self.publish_ok.load(Ordering::Relaxed),
            self.subscribe_ok.load(Ordering::Relaxed),
        );
        (!(p && s)).then(|| "redis unreachable".to_owned())
    }
}

/// Reconnect delays: exponential from 50 ms to `MAX_BACKOFF`, jittered, never giving up.
fn delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(MAX_BACKOFF)
        .without_max_times()
        .with_jitter()
        .build()
}

async fn connect(client: &redis::Client) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(REDIS_TIMEOUT)
        .set_response_timeout(REDIS_TIMEOUT);
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

async fn publisher(
    client: redis::Client,
    mut rx: mpsc::Receiver<Outgoing>,
    ok: Arc<AtomicBool>,
    queue_dropped: Arc<AtomicBool>,
) {
    let mut conn = None;
    let mut backoff = delays();
    // A publish that failed on a connection Redis had dropped (a restart the publisher had not
    // seen yet): sent once more on the next connection rather than left to reconcile.
    let mut again: Option<redis::Pipeline> = None;
    // Whether a change was dropped since the last flush (which then answers `false`).
    let mut dropped = false;
    loop {
        if conn.is_none() {
            match connect(&client).await {
                Ok(c) => {
                    conn = Some(c);
                    backoff = delays();
                    ok.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    ok.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %e, "redis publisher cannot connect; retrying");
                    // Changes queued meanwhile are dropped: reconcile repairs them. (So are
                    // flushes, which then answer that they could not.)
                    dropped |= again.take().is_some();
                    while let Ok(out) = rx.try_recv() {
                        dropped |= matches!(out, Outgoing::Change(_));
                    }
                    tokio::time::sleep(backoff.next().unwrap_or(MAX_BACKOFF)).await;
                    continue;
                }
            }
        }
        let (pipe, resent) = match again.take() {
            Some(pipe) => (pipe, true),
            None => {
                let w = match rx.recv().await {
                    None => return,
                    Some(Outgoing::Flush(done)) => {
                        let lost = std::mem::take(&mut dropped)
                            | queue_dropped.swap(false, Ordering::Relaxed);
                        let _ = done.send(!lost);
                        continue;
                    }
                    Some(Outgoing::Change(w)) => w,
                };
                let names: Vec<String> = if w.w.is_some() {
                    vec![wide_name(w.r)]
                } else {
                    w.d.iter().map(|(d, _)| channel_name(&(w.r, *d))).collect()
                };
                let Ok(payload) = w.payload() else {
                    dropped = true;
                    continue;
                };
                let mut pipe = redis::pipe();
                for n in &names {
                    pipe.cmd("PUBLISH").arg(n).arg(&payload).ignore();
                }
                (pipe, false)
            }
        };
        let c = conn.as_mut().expect("connected");
        if let Err(e) = pipe.query_async::<()>(c).await {
            tracing::warn!(error = %e, resent, "redis publish failed; reconnecting");
            ok.store(false, Ordering::Relaxed);
            conn = None;
            dropped |= resent;
            if !resent {
                again = Some(pipe);
            }
        }
    }
}

/// Whether Redis answered a SUBSCRIBE or UNSUBSCRIBE, without an error, within
/// `ANSWER_WITHIN` (the connection is taken for lost otherwise).
async fn answered(call: impl std::future::Future<Output = redis::RedisResult<()>>) -> bool {
    match tokio::time::timeout(ANSWER_WITHIN, call).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "redis subscription refused a command");
            false
        }
        Err(_) => {
            tracing::warn!("redis subscription gave no answer within {ANSWER_WITHIN:?}");
            false
        }
    }
}

/// Subscribes to the channels this instance's clients watch and hands each remote change to the
/// hub, which applies it as it applies its own.
async fn subscriber(
    client: redis::Client,
    on_remote: OnRemote,
    interest: Arc<Interest>,
    me: Uuid,
    ok: Arc<AtomicBool>,
) {
    let mut backoff = delays();
    loop {
        let pubsub = match tokio::time::timeout(REDIS_TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(p)) => p,
            other => {
                ok.store(false, Ordering::Relaxed);
                if let Ok(Err(e)) = other {
                    tracing::warn!(error = %e, "redis subscriber cannot connect; retrying");
                }
                tokio::time::sleep(backoff.next().unwrap_or(MAX_BACKOFF)).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut subscribed: HashSet<String> = HashSet::new();
        let mut announced = false;
        // Passes made for channels opened during the reconnect, before announcing it.
        let mut catch_up = 0;
        // Re-subscribing to a channel of its own is the check that the connection answers:
        // Redis confirms every SUBSCRIBE, and a pub/sub connection takes no PING here.
        let alive_name = format!("tablecast:alive:{me}");
        let mut alive =
            tokio::time::interval_at(tokio::time::Instant::now() + ALIVE_EVERY, ALIVE_EVERY);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'connected: loop {
            let wanted = interest.names();
            for n in wanted.difference(&subscribed.clone()) {
                if !answered(sink.subscribe(n)).await {
                    break 'connected;
                }
                subscribed.insert(n.clone());
                interest.set_subscribed(|s| {
                    s.insert(n.clone());
                });
            }
            for n in subscribed.clone().difference(&wanted) {
                // Out of the mirror first, and only if no channel wants it again by now (this
                // pass's `wanted` may be a few round trips old): a channel reopening meanwhile
                // keeps the subscription, or waits for the SUBSCRIBE that follows.
                if !interest.release_if_unwanted(n) {
                    continue;
                }
                if !answered(sink.unsubscribe(n)).await {
                    break 'connected;
                }
                subscribed.remove(n);
            }
            // Only once subscribed again: what the reload misses arrives on the channels. That
            // includes channels opened during this pass (they read the store at once while the
            // bus was down): their names go out first, or the reload could come before them.
            // (A few passes at most: channels that keep opening do not hold the announce back.)
            if !announced && catch_up < CATCH_UP_PASSES && !interest.names().is_subset(&subscribed)
            {
                catch_up += 1;
                continue;
            }
            if !announced {
                announced = true;
                backoff = delays();
                ok.store(true, Ordering::Relaxed);
                on_remote(Remote::Reconnected);
            }
            tokio::select! {
                _ = interest.changed.notified() => {}
                _ = alive.tick() => {
                    if !answered(sink.subscribe(&alive_name)).await {
                        break 'connected;
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break 'connected };
                    let Ok(w) = serde_json::from_slice::<Wire>(msg.get_payload_bytes()) else { continue };
                    if w.i != me {
                        on_remote(Remote::Change(w.change()));
                    }
                }
            }
        }
        ok.store(false, Ordering::Relaxed);
        interest.set_subscribed(HashSet::clear);
        tracing::warn!("redis subscription lost; reconnecting");
        // A Redis that takes connections and drops them (or refuses the subscriptions) is
        // tried again after a growing pause, not at once and over and over, each time with a
        // full reload of every channel.
        tokio::time::sleep(backoff.next().unwrap_or(MAX_BACKOFF)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::Guest;
    use crate::domain::waitlist::{WaitStatus, WaitlistEntry};
    use crate::domain::WallTime;

    #[test]
    fn a_bus_url_is_shown_without_its_credentials() {
        for (url, shown) in [
            ("redis://:secret@10.0.0.1:6379", "redis://***@10.0.0.1:6379"),
            (
                "rediss://user:p@ss@cache:6380/0",
                "rediss://***@cache:6380/0",
            ),
            (
                "redis://cache:6379/#insecure",
                "redis://cache:6379/#insecure",
            ),
            ("redis://cache:6379/0?x=a@b", "redis://cache:6379/0?x=a@b"),
            ("local", "local"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn a_name_leaves_the_confirmed_set_only_when_no_watched_key_needs_it() {
        let interest = Interest::default();
        let d = |s| LocalDate::parse(s).unwrap();
        let (rid, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (a, b) = ((rid, d("2026-12-05")), (rid, d("2026-12-06")));
        interest.keys.lock().unwrap().extend([a, b]);
        let names = interest.names();
        interest.set_subscribed(|s| s.extend(names));
        assert!(interest.is_subscribed(&a) && interest.is_subscribed(&b));
        // Wanted again by now (a date that reopened): kept, and no UNSUBSCRIBE.
        assert!(!interest.release_if_unwanted(&channel_name(&a)));
        assert!(interest.is_subscribed(&a));
        interest.keys.lock().unwrap().remove(&a);
        assert!(interest.release_if_unwanted(&channel_name(&a)));
        assert!(!interest.is_subscribed(&a));
        // The restaurant's wide name stays while one of its dates is watched.
        assert!(!interest.release_if_unwanted(&wide_name(rid)));
        assert!(interest.is_subscribed(&b));
        assert!(interest.release_if_unwanted(&wide_name(other)));
    }

    fn change(entries: usize) -> Change {
        let d = LocalDate::parse("2026-12-05").unwrap();
        let now = chrono::DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let entry = |_| WaitlistEntry {
            id: Uuid::new_v4(),
            restaurant_id: Uuid::nil(),
            date: d,
            party_size: 2,
            from: WallTime::parse("18:00").unwrap(),
            to: WallTime::parse("21:00").unwrap(),
            status: WaitStatus::Waiting,
            offer: None,
            guest: Guest {
                name: "Ada".into(),
                email: None,
                phone: None,
            },
            created_at: now,
            updated_at: now,
        };
        Change {
            restaurant_id: Uuid::nil(),
            cause: Cause::Waitlist,
            at: now,
            dates: vec![(d, 7)],
            wide_version: None,
            steps: vec![Step {
                date: d,
                part: String::new(),
                from: 6,
                to: 7,
            }],
            image: Some(Image::new(Vec::new(), (0..entries).map(entry).collect())),
        }
    }

    #[test]
    fn a_change_crosses_the_bus_with_its_image_unless_it_is_too_large() {
        let small = change(1);
        let text = Wire::of(Uuid::nil(), &small).payload().unwrap();
        let back: Wire = serde_json::from_str(&text).unwrap();
        assert_eq!(back.change(), small);
        let large = change(2_000);
        let text = Wire::of(Uuid::nil(), &large).payload().unwrap();
        assert!(text.len() <= MAX_IMAGE_BYTES, "{} bytes", text.len());
        let back = serde_json::from_str::<Wire>(&text).unwrap().change();
        assert_eq!(back.image, None, "a reload marker");
        assert_eq!((back.dates, back.steps), (large.dates, large.steps));
    }
}
