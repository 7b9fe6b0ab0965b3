//! Frees committed on different instances and by the sweepers' expiries, at about the same
//! time: each is offered exactly once, to the first entry of its queue, and the offer reaches
//! that entry's subscriber, on whichever instance it is connected to, within a second of its
//! decision, and of the freeing commit (two on DynamoDB Local: see `PUSH`).
use crate::harness::*;
use crate::kit::api::{date_in, free_at, many_tables, restaurant_body, Api};
use crate::waitlist_live::*;
use crate::SERIAL;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The short hold lifetime of the restaurant whose holds expire (its `hold_seconds`).
const EXPIRY_SECS: i64 = 4;
/// The restaurants' `offer_seconds` (the default, set explicitly).
const OFFER_SECS: i64 = 120;
/// The promise: an offer reaches the entry within a second of the freeing commit. The offer's
/// way from its decision to the entry's socket (its commit and tablecast's live path, across
/// instances) is held to it on every store; the whole, from the freeing commit, too on a shared
/// SQLite file, and to `PUSH_EMULATED` on DynamoDB Local: the release and the offer are a dozen
/// calls to a JVM emulator that shares the two cores with three instances, nginx and Redis,
/// and in a fresh-clone run the offer was decided 840 ms after the release's answer (pushed
/// 316 ms later). The single-instance test and the waitlist bench hold the second end to end.
const PUSH: Duration = Duration::from_secs(1);
const PUSH_EMULATED: Duration = Duration::from_secs(2);

/// One date of a one-table restaurant: its 19:00 held, then two entries in its queue.
struct Queue {
    rid: String,
    date: String,
    hold_id: String,
    hold_token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// Where the hold is released (`None`: it expires).
    release_on: Option<usize>,
    first: EntrySub,
    second: EntrySub,
}

/// Holds the table through instance `j % 3`, joins two entries through nginx, and subscribes
/// the first on instance `j % 3`, the second on `(j + 2) % 3`; a release goes to `(j + 1) % 3`,
/// so each release's offer crosses instances.
async fn queue_of(
    c: &Cluster,
    api: &Api,
    rid: &str,
    date: String,
    j: usize,
    release: bool,
) -> Queue {
    let at = |i: usize| api.at(&c.instances[i % 3].base);
    let (hold_id, hold_token, held) = hold(&at(j), rid, &date).await;
    let expires_at: chrono::DateTime<chrono::Utc> =
        held["expires_at"].as_str().unwrap().parse().unwrap();
    let front = api.at(&c.front);
    let (e1, t1) = join(&front, rid, &date, &format!("First {j}")).await;
    let (e2, t2) = join(&front, rid, &date, &format!("Second {j}")).await;
    let first = EntrySub::start(&c.instances[j % 3].base, j % 3, &e1, &t1).await;
    let second = EntrySub::start(&c.instances[(j + 2) % 3].base, (j + 2) % 3, &e2, &t2).await;
    // The entries joined, and listen, before their capacity is freed.
    assert!(
        chrono::Utc::now() < expires_at,
        "setup of date {j} outlived the {EXPIRY_SECS} s hold"
    );
    assert_eq!(
        first.snapshot["data"]["status"], "waiting",
        "{}",
        first.snapshot
    );
    assert_eq!(first.snapshot["data"]["position"], 1);
    assert_eq!(second.snapshot["data"]["position"], 2);
    Queue {
        rid: rid.to_owned(),
        date,
        hold_id,
        hold_token,
        expires_at,
        release_on: release.then_some((j + 1) % 3),
        first,
        second,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_on_other_instances_and_expiries_are_each_offered_once_and_pushed_within_a_second()
{
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "releases_on_other_instances_and_expiries_are_each_offered_once_and_pushed_within_a_second",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let mut body = restaurant_body(many_tables(1));
    body["offer_seconds"] = json!(OFFER_SECS);
    let released = api.create_restaurant(body.clone()).await.id;
    body["hold_seconds"] = json!(EXPIRY_SECS);
    let expiring = api.create_restaurant(body).await.id;
    // Six dates whose hold is released, then three whose hold expires (set up last, as they
    // run out of time).
    let mut queues = Vec::new();
    for j in 0..6 {
        queues.push(queue_of(&c, &api, &released, date_in(10 + j as i64), j, true).await);
    }
    for j in 6..9 {
        queues.push(queue_of(&c, &api, &expiring, date_in(10 + j as i64), j, false).await);
    }
    // Released all at once, timed to land while the sweepers expire the others (the
    // assertions hold either way).
    let first_expiry = queues[6..].iter().map(|q| q.expires_at).min().unwrap();
    if let Ok(wait) = (first_expiry - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait.saturating_sub(Duration::from_millis(200))).await;
    }
    let answers = join_all(queues.iter().filter_map(|q| {
        let on = q.release_on?;
        let api = api.at(&c.instances[on].base);
        Some(async move {
            let res = api.delete_reservation(&q.hold_id, &q.hold_token).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
            Instant::now()
        })
    }))
    .await;

    let mut release_ms = Vec::new();
    let mut expiry_ms = Vec::new();
    for (j, q) in queues.iter_mut().enumerate() {
        let seen = q
            .first
            .offered(Duration::from_secs(EXPIRY_SECS as u64 + 3))
            .await;
        let latency = match q.release_on {
            Some(on) => {
                assert_ne!(on, q.first.instance, "released on another instance");
                seen.at.saturating_duration_since(answers[j])
            }
            None => {
                // The sweeper's commit: the hold's change to `expired`, on whichever instance.
                let h = reservation(&api, &q.hold_id).await;
                assert_eq!(h["status"], "expired", "{h}");
                let at: chrono::DateTime<chrono::Utc> =
                    h["updated_at"].as_str().unwrap().parse().unwrap();
                (seen.utc - at).to_std().unwrap_or_default()
            }
        };
        // Where the time went: the offer's own commit is `expires_at` less `offer_seconds`.
        let offer_expires: chrono::DateTime<chrono::Utc> = seen.frame["data"]["offer"]
            ["expires_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let decided = offer_expires - chrono::Duration::seconds(OFFER_SECS);
        let pushed = (seen.utc - decided).to_std().unwrap_or_default();
        assert!(
            pushed < PUSH,
            "date {j}: offer reached its entry {pushed:?} after it was decided"
        );
        let bound = match c.store {
            SharedStore::Dynamo(_) => PUSH_EMULATED,
            SharedStore::Sqlite(_) => PUSH,
        };
        assert!(
            latency < bound,
            "date {j}: offer pushed {latency:?} after the freeing commit (offer decided {} ms \
             before it arrived; load average {})",
            pushed.as_millis(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        let ms = latency.as_millis();
        if q.release_on.is_some() {
            release_ms.push(ms);
        } else {
            expiry_ms.push(ms);
        }
    }
    eprintln!("offer pushed after the freeing commit (ms): releases {release_ms:?}, expiries {expiry_ms:?}");

    // Every waitlist reconcile of every instance runs at least once more: none repeats an
    // offer, which the sockets and the store would show.
    let all: Vec<Api> = c.instances.iter().map(|i| api.at(&i.base)).collect();
    let mut passes = Vec::new();
    for a in &all {
        passes.push(reconcile_passes(a).await);
    }
    two_more_reconciles(
        &all,
        &passes,
        WAITLIST_RECONCILE * 4 + Duration::from_secs(1),
    )
    .await;
    for q in queues.iter_mut() {
        let offer = q.first.offered(Duration::ZERO).await.frame["data"]["offer"].clone();
        let offer_id = offer["reservation_id"].as_str().unwrap();
        // FIFO: the first entry offered, the second still waiting, now first in line.
        let entries = queue(&api, &q.rid, &q.date).await;
        let got: Vec<(&str, &str, &Value)> = entries
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap(),
                    e["status"].as_str().unwrap(),
                    &e["position"],
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (q.first.id.as_str(), "offered", &Value::Null),
                (q.second.id.as_str(), "waiting", &json!(1)),
            ]
        );
        assert_eq!(entries[0]["offer"], offer);
        // The freed table offered once: the old hold and the one offer, nothing else.
        let rs = reservations(&api, &q.rid, &q.date).await;
        let mut got: Vec<(&str, &str, &str, &str)> = rs
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap(),
                    r["status"].as_str().unwrap(),
                    r["table_id"].as_str().unwrap(),
                    r["time"].as_str().unwrap(),
                )
            })
            .collect();
        got.sort();
        let freed = if q.release_on.is_some() {
            "released"
        } else {
            "expired"
        };
        let mut want = vec![
            (q.hold_id.as_str(), freed, "t00", "19:00"),
            (offer_id, "held", "t00", "19:00"),
        ];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            free_at(&api.availability(&q.rid, &q.date, 2).await, "19:00"),
            0
        );
        // One offer frame, to the first entry only.
        q.first.drain();
        q.second.drain();
        assert_eq!(q.first.offers(), 1);
        assert_eq!(q.second.offers(), 0);
        assert!(q
            .second
            .seen
            .iter()
            .all(|s| s.frame["data"]["status"] == "waiting"));
    }
}
