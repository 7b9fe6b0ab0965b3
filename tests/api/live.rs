//! `/v1/live` with real WebSocket clients against the app on port 0.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::ws::*;
use futures_util::future::join_all;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_snapshot_equals_get_availability_and_a_hold_pushes_exactly_the_changed_slots() {
    snapshot_then_exact_update(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_snapshot_equals_get_availability_and_a_hold_pushes_exactly_the_changed_slots_on_dynamodb(
) {
    if let Some(b) = Backend::dynamo("snapshot_and_exact_update_on_dynamodb") {
        snapshot_then_exact_update(b).await;
    }
}

async fn snapshot_then_exact_update(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    let snap = ws.subscribe("a", &r.id, &date, 5).await;
    assert_eq!(snap["data"], app.availability(&r.id, &date, 5).await);

    let res = app.hold(&r.id, &date, "19:00", 5).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let up = ws.frame().await;
    assert_eq!(up["type"], "update");
    assert_eq!(up["sub"], "a");
    assert_eq!(up["cause"], "held");
    assert!(up["version"].as_u64() > snap["version"].as_u64());
    assert!(up["at"].as_str().unwrap().ends_with('Z'));
    // A party of 5 fits only t3 (150 min turn): every start whose turn overlaps 19:00–21:30 moved.
    let before = slots_of(&snap["data"]["slots"]);
    let after = slots_of(&app.availability(&r.id, &date, 5).await["slots"]);
    let changed: Vec<&String> = after.keys().filter(|t| before[*t] != after[*t]).collect();
    let sent: Vec<String> = up["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent.iter().collect::<Vec<_>>(), changed);
    assert!(sent.contains(&"19:00".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_for_the_last_table_has_one_winner_and_every_watcher_sees_it_within_a_second() {
    race_seen_by_every_watcher(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_race_for_the_last_table_has_one_winner_and_every_watcher_sees_it_within_a_second_on_dynamodb(
) {
    if let Some(b) = Backend::dynamo("race_seen_by_every_watcher_on_dynamodb") {
        race_seen_by_every_watcher(b).await;
    }
}

async fn race_seen_by_every_watcher(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let r = app.standard_restaurant().await;
    let date = date_in(4);
    let mut watchers = Vec::new();
    for i in 0..50 {
        let mut ws = Ws::connect(&app.base).await;
        let snap = ws.subscribe(&format!("w{i}"), &r.id, &date, 5).await;
        let mut st = LiveState::default();
        st.apply(&snap);
        assert_eq!(st.slots["19:00"], 1);
        watchers.push((ws, st));
    }
    // The watchers read while the race runs, each noting when its frame came; the winner's
    // answer says when the deciding commit was done at the latest.
    let watching = join_all(watchers.into_iter().map(|(mut ws, mut st)| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while st.slots["19:00"] != 0 {
            match ws
                .next(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                Got::Frame(f) => st.apply(&f),
                other => panic!("watcher did not see the slot go: {other:?}"),
            }
        }
        Instant::now()
    }));
    let racing = join_all((0..200).map(|_| async {
        let status = app.hold(&r.id, &date, "19:00", 5).await.status();
        (status, Instant::now())
    }));
    let (seen, results) = tokio::join!(watching, racing);
    let count = |s: StatusCode| results.iter().filter(|(x, _)| *x == s).count();
    assert_eq!(
        (count(StatusCode::CREATED), count(StatusCode::CONFLICT)),
        (1, 199)
    );
    let won_at = results
        .iter()
        .find(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, t)| *t)
        .unwrap();
    for t in seen {
        let late = t.saturating_duration_since(won_at);
        assert!(
            late < Duration::from_secs(1),
            "a watcher saw it {late:?} after the win"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_of_every_party_size_converge_on_availability_after_random_traffic() {
    watchers_converge(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_of_every_party_size_converge_on_availability_after_random_traffic_on_dynamodb() {
    if let Some(b) = Backend::dynamo("watchers_converge_on_dynamodb") {
        watchers_converge(b).await;
    }
}

async fn watchers_converge(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let r = app.standard_restaurant().await;
    let date = date_in(8);
    let mut watchers = Vec::new();
    for i in 0..50u32 {
        let party = i % 6 + 1;
        let mut ws = Ws::connect(&app.base).await;
        let snap = ws.subscribe("s", &r.id, &date, party).await;
        let mut st = LiveState::default();
        st.apply(&snap);
        watchers.push((ws, st, party));
    }
    let times = ["18:00", "18:30", "19:00", "19:15", "20:00", "20:30"];
    let clients = (0..16u64).map(|seed| {
        let (app, rid, date) = (&app, r.id.clone(), date.clone());
        async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
            let mut mine: Vec<(String, String)> = Vec::new();
            for _ in 0..15 {
                match rng.gen_range(0..6) {
                    0..=2 => {
                        let res = app
                            .hold(
                                &rid,
                                &date,
                                times[rng.gen_range(0..times.len())],
                                rng.gen_range(1..=6),
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
                        app.confirm(id, tok).await;
                    }
                    4..=5 if !mine.is_empty() => {
                        let (id, tok) = mine.swap_remove(rng.gen_range(0..mine.len()));
                        app.delete_reservation(&id, &tok).await;
                    }
                    _ => {}
                }
            }
        }
    });
    join_all(clients).await;
    let mut expected = std::collections::HashMap::new();
    for p in 1..=6 {
        expected.insert(p, app.availability(&r.id, &date, p).await);
    }
    // One deadline for all: each must have converged within a second of the last commit.
    let deadline = Instant::now() + Duration::from_secs(1);
    for (mut ws, mut st, party) in watchers {
        while !st.matches(&expected[&party]) {
            let left = deadline.saturating_duration_since(Instant::now());
            match ws.next(left).await {
                Got::Frame(f) => st.apply(&f),
                other => panic!("party {party} watcher did not converge: {other:?}\n{st:?}"),
            }
        }
        assert!(
            st.versions_seen.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            st.versions_seen
        );
    }
}

#[tokio::test]
async fn an_expired_hold_is_pushed_within_two_seconds_of_expires_at() {
    expiry_pushed_in_time(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_expired_hold_is_pushed_within_two_seconds_of_expires_at_on_dynamodb() {
    if let Some(b) = Backend::dynamo("expiry_pushed_on_dynamodb") {
        expiry_pushed_in_time(b).await;
    }
}

async fn expiry_pushed_in_time(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 4}]));
    body["hold_seconds"] = json!(1);
    let r = app.create_restaurant(body).await;
    let date = date_in(2);
    let mut ws = Ws::connect(&app.base).await;
    let mut st = LiveState::default();
    st.apply(&ws.subscribe("a", &r.id, &date, 2).await);
    let held: Value = app
        .hold(&r.id, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    // `expires_at` is `created_at` + `hold_seconds`; read from `created_at`, since a slow answer
    // may already show the 1-second hold expired (and so without `expires_at`).
    let created: chrono::DateTime<chrono::Utc> =
        held["created_at"].as_str().unwrap().parse().unwrap();
    let expires = created + chrono::Duration::seconds(1);
    let up = ws.frame().await;
    assert_eq!(up["cause"], "held");
    st.apply(&up);
    assert_eq!(st.slots["19:00"], 0);
    let up = ws.frame().await;
    assert_eq!(up["cause"], "expired");
    // `at` is the commit time of the change: the sweep's, at or after the expiry.
    let at: chrono::DateTime<chrono::Utc> = up["at"].as_str().unwrap().parse().unwrap();
    assert!(
        at >= expires && at <= chrono::Utc::now(),
        "{at} vs {expires}"
    );
    st.apply(&up);
    let lag = chrono::Utc::now() - expires;
    assert_eq!(st.slots["19:00"], 1);
    assert!(
        lag < chrono::Duration::seconds(2),
        "expiry pushed {lag} after expires_at"
    );
}

#[tokio::test]
async fn the_hold_op_answers_like_http() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    let hold = |req: &str, time: &str| json!({"op": "hold", "req": req, "restaurant_id": r.id, "date": date, "time": time, "party_size": 5});
    ws.send(hold("r1", "19:00")).await;
    let a = ws.frame().await;
    assert_eq!(
        (a["type"].as_str(), a["req"].as_str(), a["status"].as_u64()),
        (Some("hold_result"), Some("r1"), Some(201))
    );
    assert_eq!(a["body"]["status"], "held");
    let token = a["body"]["token"].as_str().unwrap();
    let id = a["body"]["id"].as_str().unwrap();
    assert_eq!(
        app.get_reservation(id, token).await.status(),
        StatusCode::OK
    );

    ws.send(hold("r2", "19:00")).await;
    let b = ws.frame().await;
    assert_eq!(b["status"], 409);
    assert_eq!(b["body"]["type"], "/problems/slot-unavailable");
    let http: Value = app
        .hold(&r.id, &date, "19:00", 5)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["body"]["alternatives"], http["alternatives"]);

    ws.send(hold("r3", "25:00")).await;
    let c = ws.frame().await;
    assert_eq!(
        (c["req"].as_str(), c["status"].as_u64()),
        (Some("r3"), Some(400))
    );
    ws.send(hold("r4", "19:07")).await;
    assert_eq!(ws.frame().await["status"], 422);
    // Every member HTTP reads from the body or the path, of the wrong type or form: the hold's
    // own 400, as a `hold_result` (never a bare `error`), as HTTP answers it.
    let bad = [
        json!({"restaurant_id": r.id, "date": "2026-02-30", "time": "19:00", "party_size": 2}),
        json!({"restaurant_id": r.id, "date": date, "time": "19:00", "party_size": "2"}),
        json!({"restaurant_id": r.id, "date": date, "time": "19:00", "party_size": 2, "table_id": "bad id!"}),
        json!({"restaurant_id": r.id, "date": date, "time": "19:00", "party_size": 2, "table_id": 7}),
        json!({"restaurant_id": r.id, "time": "19:00", "party_size": 2}),
        json!({"restaurant_id": "nope", "date": date, "time": "19:00", "party_size": 2}),
        json!({"date": date, "time": "19:00", "party_size": 2}),
    ];
    for (i, body) in bad.into_iter().enumerate() {
        let mut op = body.clone();
        op["op"] = json!("hold");
        op["req"] = json!(format!("bad{i}"));
        ws.send(op).await;
        let f = ws.frame().await;
        assert_eq!(
            (f["type"].as_str(), f["req"].as_str(), f["status"].as_u64()),
            (
                Some("hold_result"),
                Some(format!("bad{i}").as_str()),
                Some(400)
            ),
            "{body}: {f}"
        );
        assert_eq!(f["body"]["type"], "/problems/bad-request", "{f}");
        if let Some(rid) = body["restaurant_id"].as_str().filter(|id| *id == r.id) {
            let http = app
                .send(
                    Method::POST,
                    &format!("/v1/restaurants/{rid}/holds"),
                    None,
                    Some(body.clone()),
                )
                .await;
            assert_eq!(http.status(), StatusCode::BAD_REQUEST, "{body}");
        }
    }
}

#[tokio::test]
async fn an_error_frame_repeats_both_sub_and_req_when_the_message_carried_both() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let mut ws = Ws::connect(&app.base).await;
    let cases = [
        (json!({"op": "unsubscribe", "sub": "zz", "req": "q1"}), 404),
        (
            json!({"op": "subscribe", "sub": "p", "req": "q2", "restaurant_id": r.id, "date": "2020-01-01", "party_size": 2}),
            422,
        ),
        (
            json!({"op": "subscribe", "sub": "f", "req": "q3", "restaurant_id": r.id, "date": date_in(3), "view": "floor"}),
            401,
        ),
        (json!({"op": "dance", "sub": "d", "req": "q4"}), 400),
    ];
    for (msg, status) in cases {
        ws.send(msg.clone()).await;
        let f = ws.frame().await;
        assert_eq!(
            (
                f["type"].as_str(),
                f["status"].as_u64(),
                f["sub"].as_str(),
                f["req"].as_str()
            ),
            (
                Some("error"),
                Some(status),
                msg["sub"].as_str(),
                msg["req"].as_str()
            ),
            "{msg}: {f}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_does_not_delay_others_and_is_resynced_or_closed() {
    let app = TestApp::spawn_with(|a| a.socket_send_buffer = Some(8192)).await;
    let tables: Vec<Value> = (0..60)
        .map(|i| json!({"id": format!("t{i:02}"), "max_party": 4}))
        .collect();
    let r = app.create_restaurant(restaurant_body(json!(tables))).await;
    let date = date_in(5);
    let mut slow = Ws::connect_small_buffer(&app.base).await;
    slow.subscribe("slow", &r.id, &date, 2).await;
    // 31 more subscriptions on the same channel multiply what the slow client is sent per change.
    for i in 0..31 {
        slow.subscribe(&format!("x{i}"), &r.id, &date, 1 + i % 4)
            .await;
    }
    let mut fast = Vec::new();
    for i in 0..10 {
        let mut ws = Ws::connect(&app.base).await;
        let mut st = LiveState::default();
        st.apply(&ws.subscribe(&format!("f{i}"), &r.id, &date, 2).await);
        fast.push((ws, st));
    }
    // The slow client reads nothing while 300 holds and their releases each move several slots.
    let times = [
        "18:00", "18:15", "18:30", "18:45", "19:00", "19:15", "19:30", "19:45", "20:00", "20:15",
    ];
    for round in 0..30 {
        let holds = times.iter().map(|t| app.hold(&r.id, &date, t, 2));
        let mut taken = Vec::new();
        for res in join_all(holds).await {
            assert_eq!(res.status(), StatusCode::CREATED);
            let v: Value = res.json().await.unwrap();
            taken.push((
                v["id"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            ));
        }
        if round < 29 {
            join_all(
                taken
                    .iter()
                    .map(|(id, tok)| app.delete_reservation(id, tok)),
            )
            .await;
        }
        // Fast watchers keep up: each sees this round's state within a second.
        let expected = app.availability(&r.id, &date, 2).await;
        let deadline = Instant::now() + Duration::from_secs(1);
        for (ws, st) in fast.iter_mut() {
            while !st.matches(&expected) {
                match ws
                    .next(deadline.saturating_duration_since(Instant::now()))
                    .await
                {
                    Got::Frame(f) => st.apply(&f),
                    other => panic!("round {round}: a fast watcher was held up: {other:?}"),
                }
            }
        }
    }
    // Reading again, the slow client is either resynced with a snapshot equal to GET, or closed 4008.
    let expected = app.availability(&r.id, &date, 2).await;
    let mut st = LiveState::default();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match slow
            .next(end.saturating_duration_since(Instant::now()))
            .await
        {
            Got::Frame(f) if f["sub"] != "slow" => {}
            Got::Frame(f) => {
                if f["type"] == "snapshot" {
                    st = LiveState::default();
                }
                st.apply(&f);
                if st.matches(&expected) && st.snapshots >= 1 {
                    break;
                }
            }
            Got::Closed(code) => {
                assert_eq!(code, Some(4008));
                break;
            }
            Got::Timeout => panic!("the slow client was neither resynced nor closed"),
        }
    }
    let m = crate::kit::metrics::scrape(&app.base).await;
    let resynced_or_closed =
        crate::kit::metrics::sum(&m, "tablecast_live_slow_consumer_resyncs_total", &[])
            + crate::kit::metrics::sum(&m, "tablecast_live_slow_consumer_closes_total", &[]);
    assert!(resynced_or_closed > 0.0, "{m}");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_usable() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    let cases: Vec<(Message, u64, Option<&str>)> = vec![
        (Message::Text("not json".into()), 400, None),
        (Message::Text(json!({"op": "dance", "sub": "x"}).to_string()), 400, Some("x")),
        (Message::Text(json!([1, 2]).to_string()), 400, None),
        (Message::Binary(vec![1, 2, 3]), 400, None),
        (Message::Text(json!({"op": "subscribe", "sub": "b", "restaurant_id": "nope", "date": date, "party_size": 2}).to_string()), 400, Some("b")),
        (Message::Text(json!({"op": "subscribe", "sub": "c", "restaurant_id": r.id, "date": "2026-13-01", "party_size": 2}).to_string()), 400, Some("c")),
        (Message::Text(json!({"op": "subscribe", "sub": "d", "restaurant_id": r.id, "date": date, "party_size": 0}).to_string()), 422, Some("d")),
        (Message::Text(json!({"op": "subscribe", "sub": "e", "restaurant_id": r.id, "date": "2020-01-01", "party_size": 2}).to_string()), 422, Some("e")),
        (Message::Text(json!({"op": "subscribe", "sub": "f", "restaurant_id": uuid::Uuid::new_v4(), "date": date, "party_size": 2}).to_string()), 404, Some("f")),
        (Message::Text(json!({"op": "subscribe", "sub": "g", "restaurant_id": r.id, "date": date, "view": "floor"}).to_string()), 401, Some("g")),
        (Message::Text(json!({"op": "subscribe", "sub": "h", "restaurant_id": r.id, "date": date, "view": "floor", "token": "wrong"}).to_string()), 401, Some("h")),
        (Message::Text(json!({"op": "unsubscribe", "sub": "zz"}).to_string()), 404, Some("zz")),
    ];
    for (msg, status, sub) in cases {
        let shown = format!("{msg:?}");
        ws.send_raw(msg).await;
        let f = ws.frame().await;
        assert_eq!(f["type"], "error", "{shown}");
        assert_eq!(f["status"], status, "{shown}: {f}");
        assert_eq!(f["sub"].as_str(), sub, "{shown}");
        assert!(f["title"].is_string() && f["detail"].is_string());
    }
    // Another restaurant's staff token is 403 for the floor.
    let other = app.standard_restaurant().await;
    ws.send(json!({"op": "subscribe", "sub": "i", "restaurant_id": r.id, "date": date, "view": "floor", "token": other.staff})).await;
    assert_eq!(ws.frame().await["status"], 403);
    // A sub in use is 409; the 33rd subscription is 429.
    ws.subscribe("s0", &r.id, &date, 1).await;
    ws.send(json!({"op": "subscribe", "sub": "s0", "restaurant_id": r.id, "date": date, "party_size": 2})).await;
    assert_eq!(ws.frame().await["status"], 409);
    for i in 1..32 {
        ws.subscribe(&format!("s{i}"), &r.id, &date, 2).await;
    }
    ws.send(json!({"op": "subscribe", "sub": "s32", "restaurant_id": r.id, "date": date, "party_size": 2})).await;
    let f = ws.frame().await;
    assert_eq!(
        (f["status"].as_u64(), f["sub"].as_str()),
        (Some(429), Some("s32"))
    );
    // Still usable; unsubscribe frees a place.
    ws.send(json!({"op": "ping"})).await;
    assert_eq!(ws.frame().await, json!({"type": "pong"}));
    ws.send(json!({"op": "unsubscribe", "sub": "s5"})).await;
    ws.subscribe("s32", &r.id, &date, 3).await;
}

#[tokio::test]
async fn a_message_over_64_kib_closes_with_1009() {
    let app = TestApp::spawn().await;
    let mut ws = Ws::connect(&app.base).await;
    ws.send(json!({"op": "ping", "pad": "x".repeat(70 * 1024)}))
        .await;
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(1009));
}

/// A text message that is not UTF-8 closes with 1007 (RFC 6455 7.4.1), in one frame or in two;
/// a frame with reserved bits set with 1002.
#[tokio::test]
async fn a_text_message_that_is_not_utf8_closes_with_1007() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let app = TestApp::spawn().await;
    let bad = b"{\"op\": \"ping\", \"x\": \"\xff\xfe\"}".to_vec();
    let mut ws = Ws::connect(&app.base).await;
    let frame = Frame::message(bad.clone(), OpCode::Data(Data::Text), true);
    ws.inner.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(1007));
    let mut ws = Ws::connect(&app.base).await;
    let (a, b) = bad.split_at(4);
    for f in [
        Frame::message(a.to_vec(), OpCode::Data(Data::Text), false),
        Frame::message(b.to_vec(), OpCode::Data(Data::Continue), true),
    ] {
        ws.inner.send(Message::Frame(f)).await.unwrap();
    }
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(1007));
    // Reserved bits set are broken framing, whatever the reader's error looks like: 1002.
    let mut ws = SilentWs::connect(&app.base).await;
    ws.write(&[0x80 | 0x20 | 0x9, 0x80, 1, 2, 3, 4]).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1002));
}

/// The close comes at the frame's header: a client that declared a huge frame used to have the
/// server keep everything it sent until the whole frame had come (or the idle close, 60 s on);
/// one that sent endless empty fragments, an entry for each.
#[tokio::test]
async fn a_frame_declared_over_64_kib_closes_with_1009_before_its_payload_comes() {
    let app = TestApp::spawn().await;
    for declared in [64 * 1024 + 1, 1u64 << 62] {
        let mut ws = SilentWs::connect(&app.base).await;
        // A masked text frame's header with a 64-bit length, and a little of its payload.
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&declared.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        frame.extend_from_slice(&[b'x'; 1000]);
        ws.write(&frame).await;
        assert_eq!(
            ws.close_code(Duration::from_secs(5)).await,
            Some(1009),
            "{declared} bytes declared"
        );
    }
    // A message in endless empty fragments: each one used to cost the server memory, without
    // counting against the message's size.
    let mut ws = SilentWs::connect(&app.base).await;
    let mut frames = vec![0x01, 0x81, 1, 2, 3, 4, b'{' ^ 1];
    for _ in 0..100 {
        frames.extend_from_slice(&[0x00, 0x80, 1, 2, 3, 4]);
    }
    ws.write(&frames).await;
    assert_eq!(
        ws.close_code(Duration::from_secs(5)).await,
        Some(1009),
        "a hundred fragments"
    );
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "the server is still up");
}

#[tokio::test]
async fn a_message_over_64_kib_in_fragments_closes_with_1009_and_one_of_64_kib_is_read() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let app = TestApp::spawn().await;
    // `{"op":"ping","pad":"…"}` of `total` bytes, sent as two fragments.
    let fragmented = |total: usize| {
        let text = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(total - 22));
        assert_eq!(text.len(), total);
        let (a, b) = text.as_bytes().split_at(total / 2);
        [
            Frame::message(a.to_vec(), OpCode::Data(Data::Text), false),
            Frame::message(b.to_vec(), OpCode::Data(Data::Continue), true),
        ]
    };
    let mut ws = Ws::connect(&app.base).await;
    for f in fragmented(64 * 1024) {
        ws.inner.send(Message::Frame(f)).await.unwrap();
    }
    assert_eq!(
        ws.frame().await,
        json!({"type": "pong"}),
        "64 KiB is within the limit"
    );
    for f in fragmented(64 * 1024 + 1) {
        ws.inner.send(Message::Frame(f)).await.unwrap();
    }
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(1009));
}

#[tokio::test]
async fn a_silent_client_is_closed_with_4000_and_a_pinged_one_is_kept() {
    let app = TestApp::spawn_with(|a| {
        a.ws_ping_secs = 0.2;
        a.ws_idle_secs = 1.0;
    })
    .await;
    let mut silent = SilentWs::connect(&app.base).await;
    let mut alive = Ws::connect(&app.base).await;
    // The live client reads (and so answers pings) for 2 s; the silent one reads nothing.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if let Got::Closed(c) = alive.next(Duration::from_millis(100)).await {
            panic!("a client answering pings was closed: {c:?}");
        }
    }
    assert_eq!(silent.close_code(Duration::from_secs(3)).await, Some(4000));
    alive.send(json!({"op": "ping"})).await;
    assert_eq!(alive.frame().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn staff_see_a_booking_appear_held_and_turn_confirmed_on_the_floor() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    ws.send(json!({"op": "subscribe", "sub": "f", "restaurant_id": r.id, "date": date, "view": "floor", "token": r.staff})).await;
    let snap = ws.frame().await;
    let ids: Vec<&str> = snap["data"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3"]);
    let held: Value = app
        .hold(&r.id, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let up = ws.frame().await;
    assert_eq!(up["cause"], "held");
    let tables = up["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0]["id"], "t1");
    assert_eq!(tables[0]["reservations"][0]["status"], "held");
    app.confirm(
        held["id"].as_str().unwrap(),
        held["token"].as_str().unwrap(),
    )
    .await;
    let up = ws.frame().await;
    assert_eq!(up["cause"], "confirmed");
    assert_eq!(up["tables"][0]["reservations"][0]["status"], "confirmed");
    assert_eq!(up["tables"][0]["reservations"][0]["guest"]["name"], "Ada");
}

/// The loopback TCP socket from `local` to `remote` port, as the kernel lists it: its state,
/// the bytes it has not had acknowledged, those not yet read, and its inode (`/proc/net/tcp`);
/// `None` once it is gone.
fn tcp_socket(local: u16, remote: u16) -> Option<(u8, u64, u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
        if port(f[1])? != local || port(f[2])? != remote {
            return None;
        }
        let (tx, rx) = f[4].split_once(':')?;
        Some((
            u8::from_str_radix(f[3], 16).ok()?,
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
            f[9].parse().ok()?,
        ))
    })
}

/// Waits for `what` to hold, failing the test with `why` after `within`.
async fn wait_for(within: Duration, why: &str, mut what: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !what() {
        assert!(Instant::now() < end, "{why}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A watcher of 19:00 for parties of 5 (one table fits them) on a fresh app that never
/// reconciles within a test: only a hold's own change can reach the watcher.
struct Watched {
    app: TestApp,
    rid: String,
    date: String,
    watcher: Ws,
    st: LiveState,
    before: u64,
}

async fn watched() -> Watched {
    let app = TestApp::spawn_with(|a| a.reconcile_secs = 300.0).await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut watcher = Ws::connect(&app.base).await;
    let mut st = LiveState::default();
    st.apply(&watcher.subscribe("w", &r.id, &date, 5).await);
    let before = st.slots["19:00"];
    assert!(before > 0);
    Watched {
        app,
        rid: r.id.clone(),
        date,
        watcher,
        st,
        before,
    }
}

impl Watched {
    /// A hold of that table, as a client frame.
    fn hold(&self) -> Value {
        json!({"op": "hold", "req": "h", "restaurant_id": self.rid, "date": self.date,
               "time": "19:00", "party_size": 5})
    }

    /// Follows the watcher until the hold is taken and it agrees with GET, for 3 s at most:
    /// whether the hold was taken, and whether the watcher agrees with GET.
    async fn settle(&mut self) -> (bool, bool) {
        let end = Instant::now() + Duration::from_secs(3);
        loop {
            if let Got::Frame(f) = self.watcher.next(Duration::from_millis(100)).await {
                self.st.apply(&f);
            }
            let avail = self.app.availability(&self.rid, &self.date, 5).await;
            let taken = slots_of(&avail["slots"])["19:00"] == self.before - 1;
            let agrees = self.st.matches(&avail);
            if (taken && agrees) || Instant::now() >= end {
                return (taken, agrees);
            }
        }
    }
}

/// The path the test below leaves to chance, forced: the server reads the hold, its client
/// leaves and the server lets go of the connection, and only then is the hold decided. It is
/// taken, and the watcher hears of it.
#[tokio::test]
async fn a_hold_decided_after_its_client_left_is_announced() {
    use sqlx::Connection;
    let mut w = watched().await;
    let (app_port, db_url) = (w.app.port, w.app.db_url.clone());
    let mut leaver = Ws::connect(&w.app.base).await;
    let port = leaver.local_port();
    // Another writer holds the database's write lock: the server can read the hold, not decide
    // it (the store waits up to 5 s for the lock).
    let mut lock = sqlx::SqliteConnection::connect(&db_url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    leaver.send(w.hold()).await;
    // Both waits together stay under the store's 5 s wait for the lock.
    wait_for(
        Duration::from_secs(2),
        "the server never read the hold",
        || {
            let client = tcp_socket(port, app_port);
            let server = tcp_socket(app_port, port);
            matches!((client, server), (Some((_, 0, _, _)), Some((_, _, 0, _))))
        },
    )
    .await;
    // The server's end of the connection, by its socket's inode: a file of this process.
    let inode = tcp_socket(app_port, port).expect("the server's socket").3;
    let open = move || {
        std::fs::read_dir("/proc/self/fd").unwrap().any(|e| {
            std::fs::read_link(e.unwrap().path())
                .is_ok_and(|l| l.to_string_lossy() == format!("socket:[{inode}]"))
        })
    };
    assert!(open(), "the server's socket is a file of this process");
    leaver.abort();
    wait_for(
        Duration::from_secs(2),
        "the server kept the connection of a client that left",
        || !open(),
    )
    .await;
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let (taken, agrees) = w.settle().await;
    assert!(
        taken && agrees,
        "taken: {taken}; the watcher agrees with GET: {agrees}"
    );
}

#[tokio::test]
async fn a_hold_from_a_client_that_left_is_never_taken_unannounced() {
    let mut w = watched().await;
    let mut leaver = Ws::connect(&w.app.base).await;
    leaver.send(w.hold()).await;
    // Gone before the answer. Either the server never read the frame (the connection was
    // dropped first: no hold) or it decided it, and then the frame ran to its end and the
    // watcher hears of it, as GET shows it: never a hold taken and left unannounced.
    drop(leaver);
    let (taken, agrees) = w.settle().await;
    assert!(agrees, "taken: {taken}, and the watcher disagrees with GET");
}

#[tokio::test]
async fn a_get_of_the_live_path_that_is_no_websocket_upgrade_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let url = format!("{}/v1/live", app.base);
    // No upgrade at all, then an upgrade without its version and key.
    let plain = app.http.get(&url).send().await.unwrap();
    crate::problem::assert_problem(plain, 400, "bad-request", "plain GET").await;
    let half = app
        .http
        .get(&url)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .send()
        .await
        .unwrap();
    crate::problem::assert_problem(half, 400, "bad-request", "no version").await;
}

#[tokio::test]
async fn a_frame_coalescing_a_hold_with_waitlist_joins_says_held() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe("a", &r.id, &date, 2).await;
    let path = format!("/v1/restaurants/{}/waitlist", r.id);
    let body = json!({"date": date, "party_size": 2, "from": "20:00", "to": "21:00",
                      "guest": {"name": "Grace"}});
    let join = || app.send(reqwest::Method::POST, &path, None, Some(body.clone()));
    // Back to back: the hold usually shares its frame with the joins around it.
    assert_eq!(join().await.status(), StatusCode::CREATED);
    app.held(&r.id, &date, "19:00", 2).await;
    assert_eq!(join().await.status(), StatusCode::CREATED);
    // The joins move no slot: every frame this subscription gets carries the hold.
    let up = ws.frame().await;
    assert_eq!(up["type"], "update", "{up}");
    assert!(!up["slots"].as_array().unwrap().is_empty(), "{up}");
    assert_eq!(up["cause"], "held", "{up}");
}

/// A client's Close is answered with its status code (RFC 6455 5.5.1: the reply typically
/// echoes it), so a browser's `ws.close(1000)` sees 1000, not 1005 "no status received"; a
/// Close without a code gets one without. The reply carried no code.
#[tokio::test]
async fn a_clients_close_is_answered_with_its_code() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let app = TestApp::spawn().await;
    for code in [1000u16, 1001, 4321] {
        let mut ws = Ws::connect(&app.base).await;
        ws.send_raw(Message::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        })))
        .await;
        assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(code));
    }
    // A code in the range no endpoint may send (1016–2999) is broken framing (RFC 6455 7.4.1):
    // 1002, not repeated. An absent code is not made up.
    let mut ws = Ws::connect(&app.base).await;
    ws.send_raw(Message::Close(Some(CloseFrame {
        code: CloseCode::from(2000),
        reason: "".into(),
    })))
    .await;
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, Some(1002));
    let mut ws = Ws::connect(&app.base).await;
    ws.send_raw(Message::Close(None)).await;
    assert_eq!(ws.expect_close(Duration::from_secs(5)).await, None);
}

/// A change the channel learns of only by its reconcile (made by another instance whose
/// publish never reached this one) carries its own cause and commit time. Here a hold at 20:00
/// and then the release of the 19:00 hold, both by another instance: the update says
/// `released`, at the release's commit time. A day read leaves a released hold out, so the
/// repair named the hold (`held`, and its time), or, alone, the release at the time of the read.
#[tokio::test]
async fn a_change_learnt_by_reconcile_carries_its_own_cause_and_commit_time() {
    let app = TestApp::spawn_with(|a| a.reconcile_secs = 0.2).await;
    let other_api = app.another_on_the_same_store().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    ws.subscribe("a", &f.id, &date, 2).await;
    let first = app.held(&f.id, &date, "19:00", 2).await;
    assert_eq!(ws.frame_of("a").await["cause"], "held");
    other_api.held(&f.id, &date, "20:00", 2).await;
    let (id, token) = (
        first["id"].as_str().unwrap(),
        first["token"].as_str().unwrap(),
    );
    let res = other_api.delete_reservation(id, token).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let released: Value = app.get_reservation(id, token).await.json().await.unwrap();
    let update = loop {
        let f = ws.frame_of("a").await;
        if f["cause"] == "released" {
            break f;
        }
    };
    assert_eq!(update["at"], released["updated_at"], "{update}");
}
