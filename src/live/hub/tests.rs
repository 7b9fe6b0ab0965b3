//! The hub against a real (in-memory SQLite) store: changes applied from their images, a gap
//! read from the store, duplicates and old changes ignored, and the store reads counted.
use super::channel::{fanout_gap, MAX_FANOUT_GAP, MIN_FANOUT_GAP};
use super::*;
use crate::booking::{Booking, HoldRequest};
use crate::domain::{PartySize, Restaurant};
use serde_json::Value;
use std::time::Instant;

/// Holds every change back until the test hands it to the hub.
#[derive(Default)]
struct Gate(Mutex<Vec<Change>>);

impl Publish for Gate {
    fn publish(&self, change: Change) {
        self.0.lock().unwrap().push(change);
    }
}

impl Gate {
    fn take(&self) -> Change {
        let mut v = self.0.lock().unwrap();
        assert_eq!(v.len(), 1, "one change per commit");
        v.remove(0)
    }
}

fn restaurant() -> Restaurant {
    Restaurant {
        id: Uuid::new_v4(),
        ..super::view::tests::restaurant_with(&[("t1", 4), ("t2", 4), ("t3", 4)])
    }
}

struct Fixture {
    hub: Hub,
    booking: Booking,
    gate: Arc<Gate>,
    metrics: Metrics,
    rx: Queue,
    /// Frames taken from the queue, not yet looked at.
    taken: std::collections::VecDeque<Out>,
    rid: Uuid,
    date: LocalDate,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(restaurant()).await
    }

    async fn with(restaurant: Restaurant) -> Fixture {
        let store: DynStore = Arc::new(
            crate::store::sqlite::SqliteStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let metrics = Metrics::new();
        let hub = Hub::new(store.clone(), metrics.clone(), Duration::from_secs(3600));
        let gate = Arc::new(Gate::default());
        let booking = Booking::new(store, gate.clone(), metrics.clone());
        let (r, _) = booking.create_restaurant(restaurant).await.unwrap();
        let date = LocalDate::from_naive(Utc::now().date_naive() + chrono::Days::new(3));
        let rx = Queue::new(64);
        let conn = Conn {
            id: hub.next_conn_id(),
            tx: rx.clone(),
        };
        let view = View::Party(PartySize::new(2).unwrap());
        assert!(
            hub.subscribe((r.id, date), view, conn, Arc::from("\"s\""))
                .await
        );
        let mut f = Fixture {
            hub,
            booking,
            gate,
            metrics,
            rx,
            taken: Default::default(),
            rid: r.id,
            date,
        };
        assert_eq!(f.frame().await["type"], "snapshot");
        f
    }

    async fn hold(&self, table: &str) -> Change {
        self.booking
            .hold(HoldRequest::two_at_seven(self.rid, self.date, table))
            .await
            .unwrap();
        self.gate.take()
    }

    async fn frame(&mut self) -> Value {
        let out = tokio::time::timeout(Duration::from_secs(2), self.recv())
            .await
            .expect("a frame within 2 s");
        decoded(out)
    }

    /// The next frame the hub queued, as the socket's writer would take it.
    async fn recv(&mut self) -> Out {
        if self.taken.is_empty() {
            let (rx, taken) = (&self.rx, &mut self.taken);
            std::future::poll_fn(|cx| rx.poll_take(cx, |items| taken.extend(items.drain(..))))
                .await;
        }
        self.taken.pop_front().expect("a frame")
    }

    async fn quiet(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(300), self.recv())
            .await
            .is_err()
    }

    fn reads(&self, reason: &str) -> u64 {
        self.metrics
            .render()
            .lines()
            .filter(|l| l.starts_with("tablecast_hub_store_reads_total{"))
            .filter(|l| l.contains("kind=\"day\"") && l.contains(&format!("reason=\"{reason}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// A queued frame as the client reads it.
fn decoded(out: Out) -> Value {
    let text = match out {
        Out::Shared { body, sub, .. } => crate::wire::frames::close_shared(&body, &sub),
        Out::Own(s) => s,
        other => panic!("not a data frame: {other:?}"),
    };
    serde_json::from_str(&text).unwrap()
}

/// A new connection's subscription to `view` of the fixture's date, and the first frame it
/// gets.
async fn joined(f: &Fixture, view: View, sub: &str) -> Value {
    let q = Queue::new(64);
    let conn = Conn {
        id: f.hub.next_conn_id(),
        tx: q.clone(),
    };
    assert!(
        f.hub
            .subscribe((f.rid, f.date), view, conn, Arc::from(sub))
            .await
    );
    let mut taken = Vec::new();
    let take = std::future::poll_fn(|cx| q.poll_take(cx, |items| taken.extend(items.drain(..))));
    tokio::time::timeout(Duration::from_secs(2), take)
        .await
        .expect("a frame within 2 s");
    decoded(taken.remove(0))
}

fn free_at_19(frame: &Value) -> u64 {
    frame["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == "19:00")
        .expect("19:00 changed")["available_tables"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn the_next_change_applies_without_a_read_a_gap_reads_and_old_ones_are_ignored() {
    let mut f = Fixture::new().await;
    assert_eq!(f.reads("subscribe"), 1);
    let first = f.hold("t1").await;
    let v1 = first.dates[0].1;
    f.hub.publish(first.clone());
    let frame = f.frame().await;
    assert_eq!(
        (frame["version"].as_u64(), free_at_19(&frame)),
        (Some(v1), 2)
    );
    assert_eq!(f.reads("change"), 0, "applied from its image");

    // The second change is lost; the third arrives: a gap. After a short wait the channel
    // reads the store and shows both.
    let second = f.hold("t2").await;
    let third = f.hold("t3").await;
    f.hub.publish(third.clone());
    let frame = f.frame().await;
    assert_eq!(frame["version"].as_u64(), Some(third.dates[0].1));
    assert_eq!(free_at_19(&frame), 0, "the lost change is in the read");
    assert_eq!(f.reads("change"), 1);
    // The frame says what the change that waited was, and when it committed: not `changed`
    // at the time of the read.
    assert_eq!(frame["cause"], "held", "{frame}");
    let at: chrono::DateTime<Utc> = frame["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        at.timestamp_millis(),
        third.at.timestamp_millis(),
        "{frame}"
    );

    // The lost one arriving late, and the third again, are already in: nothing is sent.
    f.hub.publish(second);
    f.hub.publish(third);
    f.hub.publish(first);
    assert!(f.quiet().await, "old and duplicate changes send nothing");
    assert_eq!(f.reads("change"), 1, "and read nothing");
}

#[tokio::test]
async fn changes_out_of_order_within_the_wait_apply_in_version_order_without_a_read() {
    let mut f = Fixture::new().await;
    let (a, b) = (f.hold("t1").await, f.hold("t2").await);
    f.hub.publish(b.clone());
    f.hub.publish(a);
    // One frame or two (coalesced or not), ending at b's version with both tables taken.
    let mut frame = f.frame().await;
    while frame["version"].as_u64() != Some(b.dates[0].1) {
        frame = f.frame().await;
    }
    assert_eq!(free_at_19(&frame), 1);
    assert_eq!(f.reads("change"), 0);
}

#[tokio::test]
async fn a_subscription_the_channel_cannot_load_is_refused_and_queues_nothing() {
    let mut f = Fixture::new().await;
    let q = Queue::new(64);
    let conn = Conn {
        id: f.hub.next_conn_id(),
        tx: q.clone(),
    };
    // No such restaurant: the channel cannot load it, and says so to the subscriber.
    let view = View::Party(PartySize::new(2).unwrap());
    let nowhere = (Uuid::new_v4(), f.date);
    assert!(
        !f.hub
            .subscribe(nowhere, view, conn, Arc::from("\"x\""))
            .await
    );
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut queued = 0;
    let _ = q.poll_take(&mut cx, |items| queued = items.len());
    assert_eq!(queued, 0, "no frame for a refused subscription");
    // The fixture's own subscription still gets changes.
    let change = f.hold("t1").await;
    f.hub.publish(change);
    assert_eq!(f.frame().await["type"], "update");
}

#[tokio::test]
async fn unsubscribes_queued_together_remove_exactly_theirs_and_the_rest_still_get_changes() {
    let mut f = Fixture::new().await;
    let key = (f.rid, f.date);
    let view = View::Party(PartySize::new(2).unwrap());
    // 40 more connections; the first 10 also watch under a second subscription id.
    let mut conns = Vec::new();
    for i in 0..40 {
        let q = Queue::new(64);
        let id = f.hub.next_conn_id();
        let conn = || Conn { id, tx: q.clone() };
        f.hub.subscribe(key, view, conn(), Arc::from("\"a\"")).await;
        if i < 10 {
            f.hub.subscribe(key, view, conn(), Arc::from("\"b\"")).await;
        }
        conns.push((id, q));
    }
    let metrics = f.metrics.clone();
    let gauge = || metrics.live_subscriptions().get();
    let deadline = Instant::now() + Duration::from_secs(2);
    while gauge() != 51 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gauge(), 51, "the fixture's, 40, and 10 second ones");
    // Back to back, so they queue together: "a" of connections 0..20, "b" of 0..5.
    for (i, (id, _)) in conns.iter().enumerate().take(20) {
        f.hub.unsubscribe(key, *id, Arc::from("\"a\"")).await;
        if i < 5 {
            f.hub.unsubscribe(key, *id, Arc::from("\"b\"")).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while gauge() != 51 - 25 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(gauge(), 51 - 25);
    let change = f.hold("t1").await;
    f.hub.publish(change);
    assert_eq!(f.frame().await["type"], "update");
    // Each connection's queue: its snapshot(s), then an update per subscription it kept.
    for (i, (_, q)) in conns.iter().enumerate() {
        let want_updates = usize::from(i >= 20) + usize::from((5..10).contains(&i));
        let snapshots = 1 + usize::from(i < 10);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = Vec::new();
        while got.len() < snapshots + want_updates && Instant::now() < deadline {
            let _ = tokio::time::timeout(
                Duration::from_millis(50),
                std::future::poll_fn(|cx| q.poll_take(cx, |items| got.extend(items.drain(..)))),
            )
            .await;
        }
        // Nothing more arrives for the removed ones.
        let _ = tokio::time::timeout(
            Duration::from_millis(20),
            std::future::poll_fn(|cx| q.poll_take(cx, |items| got.extend(items.drain(..)))),
        )
        .await;
        assert_eq!(got.len(), snapshots + want_updates, "connection {i}");
    }
}

#[test]
fn the_fan_out_gap_grows_with_the_audience_between_its_bounds() {
    assert_eq!(fanout_gap(0), MIN_FANOUT_GAP);
    assert_eq!(fanout_gap(200), Duration::from_millis(10));
    assert_eq!(fanout_gap(1_000), Duration::from_millis(50));
    assert_eq!(fanout_gap(10_000), MAX_FANOUT_GAP);
    assert_eq!(fanout_gap(usize::MAX), MAX_FANOUT_GAP);
    // A burst's frames per second stay about 1 / FRAME_COST between the bounds.
    for n in [300usize, 800, 1_500] {
        let per_second = n as f64 / fanout_gap(n).as_secs_f64();
        assert!((per_second - 20_000.0).abs() < 1.0, "{n}: {per_second}");
    }
}

/// A subscriber joining a view that time alone changed since it was computed (here a hold ran
/// out, not yet swept: no sweeper runs in this test) gets it as it is now, as `GET` answers it,
/// and the subscriber already there gets the same fresh snapshot. The snapshot computed before
/// was handed out as it was, showing a start that had passed (or a table still held) for as
/// long as nothing was written on the date.
#[tokio::test]
async fn a_subscriber_joining_once_time_changed_the_view_gets_it_as_it_is_now_and_so_do_the_others()
{
    let mut f = Fixture::with(Restaurant {
        hold_seconds: 1,
        ..restaurant()
    })
    .await;
    let (held, _) = f
        .booking
        .hold(HoldRequest::two_at_seven(f.rid, f.date, "t1"))
        .await
        .unwrap();
    let change = f.gate.take();
    f.hub.publish(change);
    assert_eq!(free_at_19(&f.frame().await), 2);
    let expires = held.expires_at.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while Utc::now() <= expires {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the hold's expiry passes");

    let view = View::Party(PartySize::new(2).unwrap());
    let joined = joined(&f, view, "\"b\"").await;
    assert_eq!(joined["type"], "snapshot");
    assert_eq!(free_at_19(&joined["data"]), 3, "{joined}");
    let other = f.frame().await;
    assert_eq!(
        (other["type"].as_str(), free_at_19(&other["data"])),
        (Some("snapshot"), 3),
        "{other}"
    );
}

/// A floor that joins while a cancellation is still on its way to the hub (held back here, as
/// behind the fan-out gap) reads the date's cancelled bookings with the day, and lists them:
/// the update that read sends the views already there does not drop them before the floor's
/// snapshot is computed.
#[tokio::test]
async fn a_floor_joining_before_a_cancellation_reaches_the_hub_lists_it() {
    let f = Fixture::new().await;
    let (held, _) = f
        .booking
        .hold(HoldRequest::two_at_seven(f.rid, f.date, "t1"))
        .await
        .unwrap();
    let guest = crate::domain::reservation::Guest {
        name: "Ada".into(),
        email: None,
        phone: None,
    };
    f.booking.confirm(held.id, guest, None, None).await.unwrap();
    f.booking.release(held.id).await.unwrap();
    // None of the three changes reached the hub: the floor's read brings them.
    let floor = joined(&f, View::Floor, "\"f\"").await;
    assert_eq!(floor["type"], "snapshot", "{floor}");
    let listed: Vec<(&str, &str)> = floor["data"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["reservations"].as_array().unwrap())
        .map(|x| (x["id"].as_str().unwrap(), x["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [(held.id.to_string().as_str(), "cancelled")],
        "{floor}"
    );
}
