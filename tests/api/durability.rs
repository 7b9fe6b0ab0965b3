//! The real binary, stopped with SIGTERM and killed with SIGKILL, on one SQLite file.
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &str) -> Server {
        Self::start_with_grace(db, "0.2")
    }

    /// `grace`: seconds `/readyz` answers 503 before the server stops accepting on SIGTERM.
    fn start_with_grace(db: &str, grace: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args(["serve", "--listen", "127.0.0.1:0", "--store", db])
            .env("TABLECAST_ADMIN_TOKEN", ADMIN)
            .env("TABLECAST_DRAIN_GRACE_SECS", grace)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("server printed its address").unwrap();
            if let Some(rest) = line.strip_prefix("tablecast listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let end = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < end,
                "server did not exit within 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn create(client: &reqwest::Client, base: &str, body: Value) -> String {
    let res = client
        .post(format!("{base}/v1/restaurants"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["restaurant"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_confirmed_reservation_survives_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let client = reqwest::Client::new();
    let mut server = Server::start(&db);
    let rid = create(
        &client,
        &server.base,
        restaurant_body(json!([{"id": "t1", "max_party": 4}])),
    )
    .await;
    let date = date_in(5);
    let held: Value = client
        .post(format!("{}/v1/restaurants/{rid}/holds", server.base))
        .json(&json!({"date": date, "time": "19:00", "party_size": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        held["id"].as_str().unwrap(),
        held["token"].as_str().unwrap(),
    );
    let res = client
        .post(format!("{}/v1/reservations/{id}/confirm", server.base))
        .bearer_auth(token)
        .json(&json!({"guest": {"name": "Ada"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    server.signal("-TERM");
    assert!(server.wait().success(), "SIGTERM exits 0");

    let server = Server::start(&db);
    let got: Value = client
        .get(format!("{}/v1/reservations/{id}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "confirmed");
    assert_eq!(got["guest"]["name"], "Ada");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_stampede_loses_no_acknowledged_hold() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("k.db").display());
    let client = reqwest::Client::new();
    let mut server = Server::start(&db);
    let tables: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("t{i:02}"), "max_party": 4}))
        .collect();
    let rid = create(&client, &server.base, restaurant_body(json!(tables))).await;
    let date = date_in(6);
    let times = ["18:00", "19:00", "20:00", "21:00"];
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String)>(1000);
    let mut tasks = Vec::new();
    for i in 0..400usize {
        let (client, base, rid, date, tx) = (
            client.clone(),
            server.base.clone(),
            rid.clone(),
            date.clone(),
            tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
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
    // Kill once some holds are acknowledged, while others are still in flight.
    let mut acked = Vec::new();
    while acked.len() < 40 {
        acked.push(rx.recv().await.expect("holds are acknowledged"));
    }
    server.signal("-KILL");
    server.wait();
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(a) = rx.try_recv() {
        acked.push(a);
    }

    let server = Server::start(&db);
    for (id, token) in &acked {
        let res = client
            .get(format!("{}/v1/reservations/{id}", server.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "acknowledged hold {id} was lost"
        );
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "held");
    }
    assert!(acked.len() >= 40);
}

#[tokio::test]
async fn sigterm_turns_readyz_503_closes_websockets_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let client = reqwest::Client::new();
    let mut server = Server::start_with_grace(&db, "2");
    let rid = create(
        &client,
        &server.base,
        restaurant_body(json!([{"id": "t1", "max_party": 4}])),
    )
    .await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let mut ws = crate::ws::Ws::connect(&server.base).await;
        ws.subscribe(&format!("s{i}"), &rid, &date_in(2), 2).await;
        sockets.push(ws);
    }
    let ready = client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    server.signal("-TERM");
    // As soon as the signal lands (well within the grace period) the instance still serves but
    // answers /readyz with 503.
    let ready = loop {
        let r = client
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "/readyz still ready {:?} after SIGTERM",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(
        ready.json::<Value>().await.unwrap()["type"],
        "/problems/unavailable"
    );
    let codes = futures_util::future::join_all(
        sockets
            .iter_mut()
            .map(|ws| ws.expect_close(Duration::from_secs(12))),
    )
    .await;
    assert!(codes.iter().all(|c| *c == Some(1001)), "{codes:?}");
    assert!(server.wait().success(), "drained instance exits 0");
    assert!(started.elapsed() < Duration::from_secs(15));
}
