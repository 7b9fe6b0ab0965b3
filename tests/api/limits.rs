//! Per-client limits and input that must never crash a worker.
use crate::kit::api::{date_in, many_tables, restaurant_body};
use crate::kit::app::{Backend, TestApp};
use crate::kit::wait::eventually;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tablecast::config::ServeArgs;

fn limits(max_live: u32, rate: &str) -> impl FnOnce(&mut ServeArgs) {
    let rate = rate.parse().expect("rate");
    move |a: &mut ServeArgs| {
        a.max_live_holds_per_client = max_live;
        a.hold_rate = rate;
    }
}

/// The text of `GET /metrics`.
async fn metrics_text(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn hold_at(
    app: &TestApp,
    rid: &str,
    date: &str,
    table: impl AsRef<str>,
    xff: Option<&str>,
) -> (u16, Value) {
    let table = table.as_ref();
    let mut r = app
        .req(Method::POST, &format!("/v1/restaurants/{rid}/holds"), None)
        .json(&json!({"date": date, "time": "19:00", "party_size": 2, "table_id": table}));
    if let Some(x) = xff {
        r = r.header("X-Forwarded-For", x);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn twenty_concurrent_holds_from_one_client_win_at_most_the_cap(backend: Backend) {
    let app = TestApp::spawn_on_with(backend, limits(4, "off")).await;
    let r = app
        .create_restaurant(restaurant_body(many_tables(20)))
        .await;
    let date = date_in(3);
    let answers =
        join_all((0..20).map(|i| hold_at(&app, &r.id, &date, format!("t{i:02}"), None))).await;
    let won = answers.iter().filter(|(s, _)| *s == 201).count();
    let capped: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(won, 4, "{answers:?}");
    assert_eq!(capped.len(), 16, "{answers:?}");
    for p in capped {
        assert_eq!(p["type"], "/problems/rate-limited");
        assert_eq!(p["limit"], "live-holds");
    }
    // Letting one go frees a place under the cap.
    let (_, first) = answers.iter().find(|(s, _)| *s == 201).unwrap();
    let gone = app
        .delete_reservation(
            first["id"].as_str().unwrap(),
            first["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let taken: Vec<&str> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b["table_id"].as_str().unwrap())
        .collect();
    let spare = (0..20)
        .map(|i| format!("t{i:02}"))
        .find(|t| !taken.contains(&t.as_str()))
        .unwrap();
    assert_eq!(hold_at(&app, &r.id, &date, &spare, None).await.0, 201);
}

#[tokio::test]
async fn twenty_concurrent_holds_from_one_client_win_at_most_four() {
    twenty_concurrent_holds_from_one_client_win_at_most_the_cap(Backend::Sqlite).await;
}

#[tokio::test]
async fn twenty_concurrent_holds_from_one_client_win_at_most_four_on_dynamodb() {
    let Some(b) = Backend::dynamo(
        "limits::twenty_concurrent_holds_from_one_client_win_at_most_four_on_dynamodb",
    ) else {
        return;
    };
    twenty_concurrent_holds_from_one_client_win_at_most_the_cap(b).await;
}

/// Two instances on one store, the second given the first's store.
async fn two_on_one_store(backend: Backend, rate: &str) -> (TestApp, TestApp) {
    let a = TestApp::spawn_on_with(backend, limits(0, rate)).await;
    let url = a.db_url.clone();
    let also = limits(0, rate);
    let b = TestApp::spawn_on_with(backend, move |args| {
        also(args);
        args.store.store = url;
    })
    .await;
    (a, b)
}

/// Twenty concurrent holds from one client, ten to each of two instances sharing the store,
/// with a rate of 6 a minute: 6 win in all, the other 14 are refused as `hold-rate`. (Another
/// client's own bucket, and `Retry-After`, are covered elsewhere in this file.)
async fn the_hold_rate_is_one_bucket_on_every_instance(backend: Backend) {
    let (a, b) = two_on_one_store(backend, "6/min").await;
    let r = a.create_restaurant(restaurant_body(many_tables(24))).await;
    let date = date_in(3);
    let answers = join_all((0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        hold_at(app, &r.id, &date, format!("t{i:02}"), None)
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        14,
        "{statuses:?}"
    );
    for (_, p) in answers.iter().filter(|(s, _)| *s == 429) {
        assert_eq!(p["limit"], "hold-rate", "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hold_rate_is_one_bucket_on_every_instance_sharing_a_sqlite_file() {
    the_hold_rate_is_one_bucket_on_every_instance(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_hold_rate_is_one_bucket_on_every_instance_on_dynamodb() {
    let Some(b) =
        Backend::dynamo("limits::the_hold_rate_is_one_bucket_on_every_instance_on_dynamodb")
    else {
        return;
    };
    the_hold_rate_is_one_bucket_on_every_instance(b).await;
}

#[tokio::test]
async fn a_hold_rate_bucket_the_store_cannot_read_lets_the_hold_through() {
    use sqlx::Connection as _;
    let app = TestApp::spawn_with(limits(0, "1/h")).await;
    let r = app
        .create_restaurant(restaurant_body(many_tables(18)))
        .await;
    let date = date_in(3);
    assert_eq!(hold_at(&app, &r.id, &date, "t00", None).await.0, 201);
    assert_eq!(hold_at(&app, &r.id, &date, "t01", None).await.0, 429);
    // Another process locks the buckets' file: the bucket cannot be read, and a hold is not
    // refused for it (nor kept waiting long).
    let file = format!("{}.limits", app.db_url);
    let mut lock = sqlx::SqliteConnection::connect(&file).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    // Sixteen at once: none waits its turn behind the others' timeouts (the buckets' one
    // connection gives up after 250 ms: in turn, sixteen would take 4 s or more).
    let started = std::time::Instant::now();
    let through =
        join_all((2..18).map(|i| hold_at(&app, &r.id, &date, format!("t{i:02}"), None))).await;
    let statuses: Vec<u16> = through.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [201; 16]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // Each was counted as let through unchecked.
    let metrics = metrics_text(&app).await;
    assert!(
        metrics.contains("tablecast_hold_rate_unchecked_total 16"),
        "{metrics}"
    );
    // Readable again, the bucket refuses as before.
    assert_eq!(hold_at(&app, &r.id, &date, "t00", None).await.0, 429);
}

#[tokio::test]
async fn the_hold_rate_refuses_with_retry_after_and_a_replay_takes_no_token() {
    let app = TestApp::spawn_with(limits(0, "3/min")).await;
    let r = app.create_restaurant(restaurant_body(many_tables(6))).await;
    let date = date_in(3);
    let keyed = || {
        app.req(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            None,
        )
        .header("Idempotency-Key", "k-1")
        .json(&json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t05"}))
    };
    assert_eq!(keyed().send().await.unwrap().status(), StatusCode::CREATED);
    // Replays answer from the record and take no token.
    for _ in 0..3 {
        let res = keyed().send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["Idempotent-Replayed"], "true");
    }
    assert_eq!(hold_at(&app, &r.id, &date, "t00", None).await.0, 201);
    assert_eq!(hold_at(&app, &r.id, &date, "t01", None).await.0, 201);
    let res = app
        .req(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            None,
        )
        .json(&json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["Retry-After"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["limit"], "hold-rate");
    // The refused hold changed nothing.
    let avail = app.availability(&r.id, &date, 2).await;
    assert_eq!(crate::kit::api::free_at(&avail, "19:00"), 3);
    // Staff on their own restaurant are exempt.
    let staff = app
        .req(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            Some(&r.staff),
        )
        .json(&json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t02"}))
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_hold_or_join_refused_for_its_body_still_takes_a_rate_token() {
    let app = TestApp::spawn_with(limits(0, "4/min")).await;
    let r = app.create_restaurant(restaurant_body(many_tables(4))).await;
    let date = date_in(3);
    let post = |path: String, body: Value| {
        let app = &app;
        async move {
            let res = app.send(Method::POST, &path, None, Some(body)).await;
            res.status().as_u16()
        }
    };
    let holds = format!("/v1/restaurants/{}/holds", r.id);
    let joins = format!("/v1/restaurants/{}/waitlist", r.id);
    // A party of 0 (422), a member of the wrong type (400), a join with a bad window (400).
    let mut got = vec![
        post(
            holds.clone(),
            json!({"date": date, "time": "19:00", "party_size": 0}),
        )
        .await,
        post(
            holds.clone(),
            json!({"date": date, "time": "19:00", "party_size": "two"}),
        )
        .await,
        post(
            joins.clone(),
            json!({"date": date, "party_size": 2, "from": "25:00",
                                   "to": "19:00", "guest": {"name": "Ada"}}),
        )
        .await,
    ];
    // The fourth request is the last of the bucket; the fifth, well formed, is over it.
    got.push(
        post(
            holds.clone(),
            json!({"date": date, "time": "19:00", "party_size": 2}),
        )
        .await,
    );
    got.push(
        post(
            holds,
            json!({"date": date, "time": "19:30", "party_size": 2}),
        )
        .await,
    );
    assert_eq!(got, [422, 400, 400, 201, 429]);
}

#[tokio::test]
async fn a_hold_or_join_that_cannot_be_read_or_misuses_its_key_still_takes_a_rate_token() {
    let app = TestApp::spawn_with(limits(0, "8/min")).await;
    let r = app.create_restaurant(restaurant_body(many_tables(6))).await;
    let date = date_in(3);
    let holds = format!("/v1/restaurants/{}/holds", r.id);
    let joins = format!("/v1/restaurants/{}/waitlist", r.id);
    let raw = |path: &str, body: &str, content_type: &str, key: Option<&str>| {
        let mut req = app
            .req(Method::POST, path, None)
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let good = |table: &str| {
        json!({"date": date, "time": "19:00", "party_size": 2, "table_id": table}).to_string()
    };
    let json = "application/json";
    let got = vec![
        // Not JSON (400), not said to be JSON (415), an empty key (400), a join not JSON (400).
        raw(&holds, "{not json", json, None).await,
        raw(&holds, &good("t00"), "text/plain", None).await,
        raw(&holds, &good("t00"), json, Some("")).await,
        raw(&joins, "{not json", json, None).await,
        // A keyed hold (201), its key with another body (422), then its replay (free).
        raw(&holds, &good("t01"), json, Some("k-9")).await,
        raw(&holds, &good("t02"), json, Some("k-9")).await,
        raw(&holds, &good("t01"), json, Some("k-9")).await,
        // A hold and a join whose restaurant is not an id (400).
        raw("/v1/restaurants/not-a-uuid/holds", &good("t03"), json, None).await,
        raw("/v1/restaurants/not-a-uuid/waitlist", "{}", json, None).await,
        // Eight tokens went: a well-formed hold is over the rate.
        raw(&holds, &good("t03"), json, None).await,
    ];
    assert_eq!(got, [400, 415, 400, 400, 201, 422, 201, 400, 400, 429]);
}

/// On the socket too: a `hold` op whose restaurant is not an id is answered `400` and still
/// takes a rate token.
#[tokio::test]
async fn a_socket_hold_for_no_restaurant_still_takes_a_rate_token() {
    let app = TestApp::spawn_with(limits(0, "2/min")).await;
    let r = app.create_restaurant(restaurant_body(many_tables(2))).await;
    let date = date_in(3);
    let mut ws = crate::kit::ws::Ws::connect(&app.base).await;
    for i in 0..2 {
        ws.send(
            json!({"op": "hold", "req": format!("r{i}"), "restaurant_id": "nope",
                        "date": date, "time": "19:00", "party_size": 2}),
        )
        .await;
        let f = ws.frame().await;
        assert_eq!(
            (f["type"].as_str(), f["status"].as_u64()),
            (Some("hold_result"), Some(400)),
            "{f}"
        );
    }
    let res = app.hold(&r.id, &date, "19:00", 2).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let app = TestApp::spawn_with(limits(0, "2/min")).await;
    let r = app.create_restaurant(restaurant_body(many_tables(6))).await;
    let date = date_in(3);
    assert_eq!(
        hold_at(&app, &r.id, &date, "t00", Some("198.51.100.1"))
            .await
            .0,
        201
    );
    assert_eq!(
        hold_at(&app, &r.id, &date, "t01", Some("198.51.100.2"))
            .await
            .0,
        201
    );
    let (status, p) = hold_at(&app, &r.id, &date, "t02", Some("198.51.100.3")).await;
    assert_eq!(status, 429, "{p}");
    assert_eq!(p["limit"], "hold-rate");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = TestApp::spawn_with(|a| {
        limits(0, "1/min")(a);
        a.trusted_proxies = "127.0.0.0/8".into();
    })
    .await;
    let r = app.create_restaurant(restaurant_body(many_tables(6))).await;
    let date = date_in(3);
    assert_eq!(
        hold_at(&app, &r.id, &date, "t00", Some("203.0.113.7"))
            .await
            .0,
        201
    );
    // The right-most untrusted hop is the client: a forged left part does not help.
    let (status, p) = hold_at(&app, &r.id, &date, "t01", Some("198.51.100.1, 203.0.113.7")).await;
    assert_eq!((status, &p["limit"]), (429, &json!("hold-rate")));
    assert_eq!(
        hold_at(&app, &r.id, &date, "t02", Some("203.0.113.8"))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn an_upgrade_in_another_websocket_version_is_told_the_version_spoken() {
    let app = TestApp::spawn().await;
    let res = app
        .req(Method::GET, "/v1/live", None)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "8")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["sec-websocket-version"], "13");
    let p: Value = res.json().await.unwrap();
    assert_eq!(
        p["type"].as_str().map(|t| t.ends_with("bad-request")),
        Some(true),
        "{p}"
    );
    // Other refusals name no version.
    let res = app
        .req(Method::GET, "/v1/live", None)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("sec-websocket-version").is_none());
}

async fn upgrade(app: &TestApp, origin: Option<&[u8]>) -> (u16, Value) {
    let mut r = app
        .req(Method::GET, "/v1/live", None)
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    if let Some(o) = origin {
        r = r.header(
            "Origin",
            reqwest::header::HeaderValue::from_bytes(o).unwrap(),
        );
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let body = if status == 101 {
        Value::Null
    } else {
        res.json().await.unwrap_or(Value::Null)
    };
    (status, body)
}

#[tokio::test]
async fn a_client_over_its_connection_cap_is_refused_with_429() {
    let app = TestApp::spawn_with(|a| a.max_connections_per_client = 2).await;
    let a = crate::kit::ws::Ws::connect(&app.base).await;
    let b = crate::kit::ws::Ws::connect(&app.base).await;
    let (status, p) = upgrade(&app, None).await;
    assert_eq!(status, 429, "{p}");
    assert_eq!(p["type"], "/problems/rate-limited");
    assert_eq!(p["limit"], "connections");
    drop((a, b));
    // Closing frees the places (the server notices the close asynchronously).
    eventually(
        Duration::from_secs(5),
        "a place under the cap again",
        || async { upgrade(&app, None).await.0 == 101 },
    )
    .await;
}

#[tokio::test]
async fn only_listed_origins_may_open_a_socket_and_non_browsers_may() {
    let app =
        TestApp::spawn_with(|a| a.allowed_origins = Some("https://book.example".into())).await;
    let (status, p) = upgrade(&app, Some(b"https://evil.example")).await;
    assert_eq!(status, 403, "{p}");
    assert_eq!(p["type"], "/problems/forbidden");
    assert_eq!(upgrade(&app, Some(b"https://book.example")).await.0, 101);
    assert_eq!(upgrade(&app, None).await.0, 101);
    // An `Origin` that is not text is no listed origin either.
    let (status, p) = upgrade(&app, Some(b"https://evil.\xffexample")).await;
    assert_eq!(status, 403, "{p}");
}

#[tokio::test]
async fn a_slot_of_65536_minutes_is_422_and_the_server_stays_up() {
    let app = TestApp::spawn().await;
    let r = app.standard_restaurant().await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/restaurants/{}", r.id),
            Some(&r.staff),
            Some(json!({"slot_minutes": 65536,
                        "hours": [{"days": ["mon"], "open": "18:00", "close": "23:00"}]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = res.json().await.unwrap();
    assert!(
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "slot_minutes"),
        "{p}"
    );
    assert_eq!(app.status("/healthz").await, 200);
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    let lines = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    let before = lines(&metrics_text(&app).await);
    for i in 0..200 {
        let m = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        let _ = app
            .http
            .request(m, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let text = metrics_text(&app).await;
    assert!(!text.contains("M17"), "a made-up method became a label");
    // One new label set (OTHER) plus the /metrics reads themselves: a handful of lines.
    assert!(
        lines(&text) < before + 40,
        "{} lines after, {before} before",
        lines(&text)
    );
}

#[tokio::test]
async fn a_pinger_that_never_reads_is_closed_in_time() {
    use tokio::io::AsyncWriteExt;
    // A small server send buffer, so that pongs nobody reads back up quickly.
    let app = TestApp::spawn_with(|a| a.socket_send_buffer = Some(4096)).await;
    let metrics = |app: &TestApp| {
        let (http, url) = (app.http.clone(), app.url("/metrics"));
        async move {
            let t = http.get(url).send().await.unwrap().text().await.unwrap();
            t.lines()
                .find(|l| l.starts_with("tablecast_ws_connections "))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(-1.0)
        }
    };
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let req = format!(
        "GET /v1/live HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    eventually(Duration::from_secs(5), "the socket is open", || async {
        metrics(&app).await == 1.0
    })
    .await;
    // Masked pings with 125-byte payloads, never reading a pong back.
    let mut ping = vec![0x89u8, 0x80 | 125, 1, 2, 3, 4];
    ping.extend((0..125u8).map(|i| i ^ [1, 2, 3, 4][usize::from(i % 4)]));
    // Ping until the server stops reading: it is then stuck writing pongs nobody reads.
    let pinger = tokio::spawn(async move {
        for _ in 0..400_000 {
            if tokio::time::timeout(Duration::from_secs(1), s.write_all(&ping))
                .await
                .is_err()
            {
                return (true, s);
            }
        }
        (false, s)
    });
    // The server stops reading a client whose answers it cannot send, and the kernel ends the
    // connection once what it sent has waited 30 s unread (TCP_USER_TIMEOUT): it is not
    // pinned. The idle close cannot do it, as the connection cannot be written.
    eventually(
        Duration::from_secs(60),
        "the pinger's session closes",
        || async { metrics(&app).await == 0.0 },
    )
    .await;
    let (stalled, _socket) = tokio::time::timeout(Duration::from_secs(10), pinger)
        .await
        .expect("the pinger stops")
        .unwrap();
    assert!(
        stalled,
        "the server never stopped reading: no pong ever had to wait"
    );
}
