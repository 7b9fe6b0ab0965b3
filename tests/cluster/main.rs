//! Several real instances behind real nginx, with real Redis, on one shared store.
mod bus_faults;
mod floor;
mod harness;
#[path = "../kit/mod.rs"]
mod kit;
mod reads;
mod tls_bus;
mod waitlist;
mod waitlist_crash;
mod waitlist_live;
mod waitlist_push;

use futures_util::future::join_all;
use harness::*;
use kit::api::{date_in, free_at, many_tables, restaurant_body, Api};
use kit::ws::{Got, LiveState, Ws};
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A subscriber that reconnects (through `base`) whenever its connection closes.
struct Watcher {
    ws: Ws,
    st: LiveState,
    base: String,
    rid: String,
    date: String,
    party: u32,
    closes: Vec<Option<u16>>,
}

impl Watcher {
    async fn start(base: &str, rid: &str, date: &str, party: u32) -> Watcher {
        let mut ws = Ws::connect(base).await;
        let mut st = LiveState::default();
        st.apply(&ws.subscribe("w", rid, date, party).await);
        Watcher {
            ws,
            st,
            base: base.into(),
            rid: rid.into(),
            date: date.into(),
            party,
            closes: Vec::new(),
        }
    }

    /// Reads (reconnecting as needed) until the state equals `expected` or the deadline passes.
    async fn converge(&mut self, expected: &Value, within: Duration) -> Result<(), String> {
        let end = Instant::now() + within;
        while !self.st.matches(expected) {
            match self
                .ws
                .next(end.saturating_duration_since(Instant::now()))
                .await
            {
                Got::Frame(f) => self.st.apply(&f),
                Got::Closed(code) => {
                    self.closes.push(code);
                    self.reconnect().await;
                }
                Got::Timeout => {
                    return Err(format!(
                        "did not converge: {:?} vs {}",
                        self.st.slots, expected["slots"]
                    ))
                }
            }
        }
        Ok(())
    }

    /// Reads whatever is already pending (reconnecting on a close) until the line is quiet.
    async fn settle(&mut self, quiet: Duration) {
        loop {
            match self.ws.next(quiet).await {
                Got::Frame(f) => self.st.apply(&f),
                Got::Closed(code) => {
                    self.closes.push(code);
                    self.reconnect().await;
                }
                Got::Timeout => return,
            }
        }
    }

    async fn reconnect(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        let mut backoff = Duration::from_millis(50);
        loop {
            let url = format!("{}/v1/live", self.base.replace("http://", "ws://"));
            if let Ok((inner, _)) = tokio_tungstenite::connect_async(url).await {
                self.ws = Ws { inner };
                self.ws
                    .send(json!({"op": "subscribe", "sub": "w", "restaurant_id": self.rid, "date": self.date, "party_size": self.party}))
                    .await;
                if let Got::Frame(f) = self.ws.next(Duration::from_secs(3)).await {
                    if f["type"] == "snapshot" {
                        self.st.apply(&f);
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < end,
                "could not reconnect through {}",
                self.base
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(800));
        }
    }
}

/// Versions a subscriber saw never go back. (`LiveState::apply` already asserts that every
/// update is strictly above the frame before it; a fresh snapshot after a reconnect may repeat.)
fn never_go_back(v: &[u64]) -> bool {
    v.windows(2).all(|w| w[0] <= w[1])
}

/// One cluster at a time: each test runs three instances, nginx and Redis against one DynamoDB
/// Local, and four clusters at once on two cores make timings meaningless.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn big_restaurant(tables: usize) -> Value {
    restaurant_body(many_tables(tables))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_on_one_instance_reaches_a_subscriber_on_another_within_a_second() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "a_hold_on_one_instance_reaches_a_subscriber_on_another_within_a_second",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(3)).await.id;
    let date = date_in(3);
    let mut b = Watcher::start(&c.instances[1].base, &rid, &date, 2).await;
    let started = Instant::now();
    let res = api
        .at(&c.instances[0].base)
        .hold(&rid, &date, "19:00", 2)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let expected = api
        .at(&c.instances[2].base)
        .availability(&rid, &date, 2)
        .await;
    assert_eq!(free_at(&expected, "19:00"), 2);
    b.converge(&expected, Duration::from_secs(1)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(b.closes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_holds_of_one_client_across_two_instances_win_at_most_its_cap() {
    let _serial = SERIAL.lock().await;
    let limits = Limits {
        max_live_holds: 4,
        hold_rate: "off",
    };
    let Some(c) = Cluster::start_with(
        "twenty_holds_of_one_client_across_two_instances_win_at_most_its_cap",
        2,
        limits,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(20)).await.id;
    let date = date_in(3);
    // Half straight to each instance, so both decide at once for the same client.
    let answers = join_all((0..20).map(|i| {
        let api = api.at(&c.instances[i % 2].base);
        let (rid, date) = (rid.clone(), date.clone());
        async move {
            let res = api
                .send(
                    reqwest::Method::POST,
                    &format!("/v1/restaurants/{rid}/holds"),
                    None,
                    Some(json!({"date": date, "time": "19:00", "party_size": 2,
                                "table_id": format!("t{i:02}")})),
                )
                .await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    }))
    .await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(won, 4, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|(s, _)| *s != 201)
        .all(|(s, p)| *s == 429 && p["limit"] == "live-holds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_holds_split_across_instances_have_one_winner_and_every_instance_converges() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "two_hundred_holds_split_across_instances_have_one_winner_and_every_instance_converges",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api
        .create_restaurant(restaurant_body(
            json!([{"id": "only", "min_party": 5, "max_party": 6}]),
        ))
        .await
        .id;
    let date = date_in(4);
    let mut watchers = Vec::new();
    for i in 0..9 {
        watchers.push(Watcher::start(&c.instances[i % 3].base, &rid, &date, 5).await);
    }
    let at: Vec<Api> = c.instances.iter().map(|i| api.at(&i.base)).collect();
    let holds = (0..200).map(|i| at[i % 3].hold(&rid, &date, "19:00", 5));
    let statuses: Vec<u16> = join_all(holds)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 199);
    let expected = api.at(&c.front).availability(&rid, &date, 5).await;
    assert_eq!(free_at(&expected, "19:00"), 0);
    for w in watchers.iter_mut() {
        w.converge(&expected, Duration::from_secs(1)).await.unwrap();
        assert!(never_go_back(&w.st.versions_seen));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_traffic_through_nginx_and_each_instance_converges_for_thirty_watchers() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start(
        "random_traffic_through_nginx_and_each_instance_converges_for_thirty_watchers",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(6)).await.id;
    let date = date_in(6);
    let mut watchers = Vec::new();
    for i in 0..30u32 {
        watchers.push(Watcher::start(&c.front, &rid, &date, i % 4 + 1).await);
    }
    let mut bases = vec![c.front.clone()];
    bases.extend(c.instances.iter().map(|i| i.base.clone()));
    let times = ["18:00", "18:30", "19:00", "19:30", "20:00"];
    let clients = (0..12u64).map(|seed| {
        let (api, bases, rid, date) = (&api, bases.clone(), rid.clone(), date.clone());
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut mine: Vec<(String, String)> = Vec::new();
            for _ in 0..12 {
                let base = &bases[rng.gen_range(0..bases.len())];
                match rng.gen_range(0..5) {
                    0..=2 => {
                        let res = api
                            .at(base)
                            .hold(
                                &rid,
                                &date,
                                times[rng.gen_range(0..times.len())],
                                rng.gen_range(1..=4),
                            )
                            .await;
                        if res.status() == StatusCode::CREATED {
                            let v: Value = res.json().await.unwrap();
                            mine.push((
                                v["id"].as_str().unwrap().into(),
                                v["token"].as_str().unwrap().into(),
                            ));
                        }
                    }
                    3 if !mine.is_empty() => {
                        let (id, tok) = &mine[rng.gen_range(0..mine.len())];
                        let res = api
                            .http
                            .post(format!("{base}/v1/reservations/{id}/confirm"))
                            .bearer_auth(tok)
                            .json(&json!({"guest": {"name": "Ada"}}))
                            .send()
                            .await
                            .unwrap();
                        assert!(matches!(res.status().as_u16(), 200 | 410));
                    }
                    _ if !mine.is_empty() => {
                        let (id, tok) = mine.swap_remove(rng.gen_range(0..mine.len()));
                        let res = api
                            .http
                            .delete(format!("{base}/v1/reservations/{id}"))
                            .bearer_auth(&tok)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(res.status(), StatusCode::NO_CONTENT);
                    }
                    _ => {}
                }
            }
        }
    });
    join_all(clients).await;
    for w in watchers.iter_mut() {
        let expected = api.at(&c.front).availability(&rid, &date, w.party).await;
        w.converge(&expected, Duration::from_secs(1)).await.unwrap();
        assert!(
            never_go_back(&w.st.versions_seen),
            "{:?}",
            w.st.versions_seen
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_hold_is_broadcast_once_on_every_instance() {
    let _serial = SERIAL.lock().await;
    let Some(c) = Cluster::start("an_expired_hold_is_broadcast_once_on_every_instance", 3) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let mut body = big_restaurant(1);
    body["hold_seconds"] = json!(1);
    let rid = api.create_restaurant(body).await.id;
    let date = date_in(2);
    let mut watchers = Vec::new();
    for i in 0..3 {
        watchers.push(Watcher::start(&c.instances[i].base, &rid, &date, 2).await);
    }
    let held: Value = api
        .at(&c.instances[0].base)
        .hold(&rid, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        held["expires_at"].as_str().unwrap().parse().unwrap();
    // Read every frame until well past the sweeper's 2 s promise, counting expiry updates.
    let listen_until = Instant::now() + Duration::from_secs(4);
    let counts = join_all(watchers.iter_mut().map(|w| async move {
        let mut expired = Vec::new();
        loop {
            match w
                .ws
                .next(listen_until.saturating_duration_since(Instant::now()))
                .await
            {
                Got::Frame(f) => {
                    if f["cause"] == "expired" {
                        expired.push(chrono::Utc::now());
                    }
                    w.st.apply(&f);
                }
                Got::Timeout => return expired,
                Got::Closed(c) => panic!("closed {c:?}"),
            }
        }
    }))
    .await;
    for (i, seen) in counts.iter().enumerate() {
        assert_eq!(
            seen.len(),
            1,
            "instance {i} saw the expiry {} times",
            seen.len()
        );
        assert!(
            seen[0] - expires < chrono::Duration::seconds(2),
            "late by {}",
            seen[0] - expires
        );
        assert_eq!(watchers[i].st.slots["19:00"], 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_down_holds_still_succeed_reconcile_repairs_and_the_bus_recovers() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(
        "with_redis_down_holds_still_succeed_reconcile_repairs_and_the_bus_recovers",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(4)).await.id;
    let date = date_in(5);
    let mut far = Watcher::start(&c.instances[2].base, &rid, &date, 2).await;
    c.kill_redis();
    // Every instance notices and says what is degraded.
    every_readyz(&c, &api, 503, Duration::from_secs(5)).await;
    let res = api
        .http
        .get(format!("{}/readyz", c.instances[0].base))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("bus"), "{p}");
    let res = api
        .at(&c.instances[0].base)
        .hold(&rid, &date, "19:00", 2)
        .await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "holds keep working without redis"
    );
    let expected = api
        .at(&c.instances[0].base)
        .availability(&rid, &date, 2)
        .await;
    far.converge(&expected, RECONCILE + Duration::from_millis(1500))
        .await
        .unwrap();

    c.restart_redis();
    every_readyz(&c, &api, 200, Duration::from_secs(10)).await;
    // The bus carries changes again: the publisher saw the outage and connected anew.
    held_and_seen_within_a_second(&c, &api, &mut far, &rid, &date, "20:00").await;

    // A restart no publish saw: instance 0's publisher still holds its old connection. The
    // first change after it must still travel on the bus, not wait for reconcile.
    c.kill_redis();
    every_readyz(&c, &api, 503, Duration::from_secs(5)).await;
    c.restart_redis();
    every_readyz(&c, &api, 200, Duration::from_secs(10)).await;
    held_and_seen_within_a_second(&c, &api, &mut far, &rid, &date, "21:00").await;
}

/// Waits until every instance answers `/readyz` with `status`.
async fn every_readyz(c: &Cluster, api: &Api, status: u16, within: Duration) {
    for i in &c.instances {
        kit::wait::eventually(within, &format!("readyz {status} everywhere"), || async {
            api.at(&i.base).status("/readyz").await == status
        })
        .await;
    }
}

/// A hold at `time` on instance 0 reaches `far` (on another instance) within a second: by the
/// bus, not by reconcile.
async fn held_and_seen_within_a_second(
    c: &Cluster,
    api: &Api,
    far: &mut Watcher,
    rid: &str,
    date: &str,
    time: &str,
) {
    let started = Instant::now();
    let first = api.at(&c.instances[0].base);
    assert_eq!(
        first.hold(rid, date, time, 2).await.status(),
        StatusCode::CREATED
    );
    let expected = first.availability(rid, date, 2).await;
    far.converge(&expected, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{time}: the change is carried by the bus"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_an_instance_mid_stampede_loses_no_acknowledged_hold_and_its_clients_converge() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(
        "kill_9_of_an_instance_mid_stampede_loses_no_acknowledged_hold_and_its_clients_converge",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(40)).await.id;
    let date = date_in(7);
    let mut watchers = Vec::new();
    for _ in 0..9 {
        watchers.push(Watcher::start(&c.front, &rid, &date, 2).await);
    }
    let victim = c.instances[0].base.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(1000);
    let mut tasks = Vec::new();
    let times = ["18:00", "19:00", "20:00", "21:00"];
    for i in 0..300usize {
        let base = if i % 2 == 0 {
            victim.clone()
        } else {
            c.front.clone()
        };
        let (http, rid, date, tx) = (api.http.clone(), rid.clone(), date.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(format!("{base}/v1/restaurants/{rid}/holds"))
                .json(&json!({"date": date, "time": times[i % 4], "party_size": 2}))
                .send()
                .await;
            if let Ok(res) = res {
                if res.status() == StatusCode::CREATED {
                    if let Ok(v) = res.json::<Value>().await {
                        let _ = tx
                            .send((
                                v["id"].as_str().unwrap().into(),
                                v["token"].as_str().unwrap().into(),
                            ))
                            .await;
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut acked = Vec::new();
    while acked.len() < 30 {
        acked.push(rx.recv().await.expect("holds are acknowledged"));
    }
    c.instances[0].proc.signal(kit::process::Sig::KILL);
    c.instances[0].proc.wait_exit(Duration::from_secs(5));
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(a) = rx.try_recv() {
        acked.push(a);
    }
    for (id, token) in &acked {
        let res = api
            .http
            .get(format!("{}/v1/reservations/{id}", c.front))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "acknowledged hold {id} was lost"
        );
    }
    let expected = api.at(&c.front).availability(&rid, &date, 2).await;
    let mut reconnected = 0;
    for w in watchers.iter_mut() {
        w.converge(&expected, RECONCILE + Duration::from_secs(3))
            .await
            .unwrap();
        reconnected += usize::from(!w.closes.is_empty());
        assert!(never_go_back(&w.st.versions_seen));
    }
    assert!(
        reconnected > 0,
        "some watchers were on the killed instance and came back through nginx"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_of_an_instance_sends_1001_and_its_clients_reconnect_through_nginx_and_converge() {
    let _serial = SERIAL.lock().await;
    let Some(mut c) = Cluster::start(
        "sigterm_of_an_instance_sends_1001_and_its_clients_reconnect_through_nginx_and_converge",
        3,
    ) else {
        return;
    };
    let api = Api::new(&c.front, ADMIN);
    let rid = api.create_restaurant(big_restaurant(8)).await.id;
    let date = date_in(8);
    let mut watchers = Vec::new();
    for _ in 0..12 {
        watchers.push(Watcher::start(&c.front, &rid, &date, 2).await);
    }
    c.instances[1].proc.signal(kit::process::Sig::TERM);
    // Keep booking through nginx while the instance drains.
    for t in ["18:00", "19:00", "20:00"] {
        let res = api.at(&c.front).hold(&rid, &date, t, 2).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert!(
        c.instances[1]
            .proc
            .wait_exit(Duration::from_secs(15))
            .success(),
        "drained instance exits 0"
    );
    let expected = api.at(&c.front).availability(&rid, &date, 2).await;
    let mut moved = 0;
    for w in watchers.iter_mut() {
        w.settle(Duration::from_millis(200)).await;
        w.converge(&expected, Duration::from_secs(3)).await.unwrap();
        // The drained instance's clients got 1001 and came back through nginx.
        assert!(w.closes.iter().all(|c| *c == Some(1001)), "{:?}", w.closes);
        moved += usize::from(!w.closes.is_empty());
        assert!(never_go_back(&w.st.versions_seen));
    }
    assert!(
        moved > 0,
        "watchers on the drained instance were closed with 1001 and moved"
    );
}
