//! The real binary, stopped with SIGTERM and killed with SIGKILL, on one SQLite file.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::process::{Sig, Tablecast};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

/// The binary on `db`, `/readyz` answering 503 for 0.2 s after SIGTERM before it stops accepting.
fn start(db: &str) -> Tablecast {
    start_with_grace(db, "0.2")
}

/// `grace`: seconds `/readyz` answers 503 before the server stops accepting on SIGTERM.
fn start_with_grace(db: &str, grace: &str) -> Tablecast {
    Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", db],
        &[
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
            ("TABLECAST_DRAIN_GRACE_SECS", grace),
            // Stampedes from loopback are one client: no per-client limit here.
            ("TABLECAST_MAX_LIVE_HOLDS_PER_CLIENT", "0"),
            ("TABLECAST_HOLD_RATE", "off"),
            ("TABLECAST_MAX_CONNECTIONS_PER_CLIENT", "0"),
        ],
        Stdio::null(),
    )
}

/// How long a stopped server may take to exit.
const EXIT: Duration = Duration::from_secs(15);

async fn create(base: &str, body: Value) -> String {
    Api::new(base, ADMIN).create_restaurant(body).await.id
}

#[tokio::test]
async fn logs_sent_to_a_file_are_plain_text_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let log = dir.path().join("server.log");
    let mut server = Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", &db],
        &[
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
            ("TABLECAST_DRAIN_GRACE_SECS", "0.1"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    // Serving, so that the log has request-time lines as well as start-up ones.
    let ready = format!("{}/readyz", server.base);
    crate::kit::wait::eventually(EXIT, "the server to answer /readyz", || async {
        reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    server.proc.signal(Sig::TERM);
    assert!(server.proc.wait_exit(EXIT).success(), "SIGTERM exits 0");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("INFO") && text.contains("draining"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in a log file: {text:?}"
    );
}

#[tokio::test]
async fn sigterm_the_moment_the_address_is_printed_still_drains_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let log = dir.path().join("server.log");
    // With the demo restaurant, whose seeding runs after the address line: the signal lands
    // while the server is still setting up, before it starts serving.
    let mut server = Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", &db, "--demo"],
        &[
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
            ("TABLECAST_DRAIN_GRACE_SECS", "0.1"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    server.proc.signal(Sig::TERM);
    let status = server.proc.wait_exit(EXIT);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}: {text}");
    assert!(text.contains("draining"), "no drain in the log: {text}");
}

#[tokio::test]
async fn a_confirmed_reservation_survives_sigterm_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let client = reqwest::Client::new();
    let mut server = start(&db);
    let rid = create(
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

    server.proc.signal(Sig::TERM);
    assert!(server.proc.wait_exit(EXIT).success(), "SIGTERM exits 0");

    let server = start(&db);
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
    let mut server = start(&db);
    let rid = create(&server.base, restaurant_body(many_tables(40))).await;
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
            // Whether the request was cut off by the kill: sent, and no whole answer came. A
            // request that could not even connect (after the kill) was never in flight.
            let res = match res {
                Ok(res) => res,
                Err(e) => return !e.is_connect(),
            };
            if res.status() != StatusCode::CREATED {
                return false;
            }
            let Ok(v) = res.json::<Value>().await else {
                return true;
            };
            let _ = tx
                .send((
                    v["id"].as_str().unwrap().into(),
                    v["token"].as_str().unwrap().into(),
                ))
                .await;
            false
        }));
    }
    drop(tx);
    // Kill once some holds are acknowledged, while others are still in flight.
    let mut acked = Vec::new();
    while acked.len() < 40 {
        acked.push(rx.recv().await.expect("holds are acknowledged"));
    }
    server.proc.signal(Sig::KILL);
    server.proc.wait_exit(EXIT);
    let mut cut_off = 0;
    for t in tasks {
        cut_off += usize::from(t.await.unwrap());
    }
    while let Ok(a) = rx.try_recv() {
        acked.push(a);
    }
    assert!(
        cut_off > 0,
        "the kill must land mid-stampede: no request was cut off"
    );

    let server = start(&db);
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
    let mut server = start_with_grace(&db, "2");
    let rid = create(
        &server.base,
        restaurant_body(json!([{"id": "t1", "max_party": 4}])),
    )
    .await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let mut ws = crate::kit::ws::Ws::connect(&server.base).await;
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
    server.proc.signal(Sig::TERM);
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
    assert!(
        server.proc.wait_exit(EXIT).success(),
        "drained instance exits 0"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn without_an_admin_token_one_is_generated_and_printed_also_with_a_shared_bus() {
    // A bus nobody listens on: the instance starts, and its bus reconnects in the background.
    // Its password is never written to the log.
    let unused = crate::kit::process::free_port();
    let redis = format!("redis://:s3cret-pw@127.0.0.1:{unused}");
    for bus in ["local", redis.as_str()] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("d.db").display());
        let log = dir.path().join("server.log");
        let (server, token) = Tablecast::start_with_generated_token(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                &db,
                "--bus",
                bus,
            ],
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        assert!(token.len() >= 32, "{bus}: a generated token, got {token:?}");
        let body = restaurant_body(json!([{"id": "t1", "max_party": 4}]));
        let created = Api::new(&server.base, &token)
            .create_restaurant(body.clone())
            .await;
        assert!(
            !created.id.is_empty(),
            "{bus}: the printed token is the admin's"
        );
        let res = Api::new(&server.base, "not-the-token")
            .send(
                reqwest::Method::POST,
                "/v1/restaurants",
                Some("not-the-token"),
                Some(body),
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{bus}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text.contains("generated its own"),
            bus != "local",
            "{bus}: a warning with a shared bus only: {text}"
        );
        assert!(!text.contains("s3cret-pw"), "{bus}: {text}");
    }
}

/// An admin token read from a secret file often ends in a line break: it is not part of the
/// token (the token as typed was refused, 401, and nobody could act as admin).
#[tokio::test]
async fn an_admin_token_given_with_a_line_break_is_taken_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let server = Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", &db],
        &[("TABLECAST_ADMIN_TOKEN", "from-a-secret-file-0123456789\n")],
        Stdio::null(),
    );
    let created = Api::new(&server.base, "from-a-secret-file-0123456789")
        .create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 4}])))
        .await;
    assert!(!created.id.is_empty());
}

#[tokio::test]
async fn the_demo_flag_s_environment_twin_takes_1_and_yes() {
    for value in ["1", "yes"] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("d.db").display());
        let mut server = Tablecast::start(
            &["serve", "--listen", "127.0.0.1:0", "--store", &db],
            &[
                ("TABLECAST_ADMIN_TOKEN", ADMIN),
                ("TABLECAST_DRAIN_GRACE_SECS", "0.1"),
                ("TABLECAST_DEMO", value),
            ],
            Stdio::null(),
        );
        // The demo restaurant is seeded after the address line: wait for it.
        let url = server.url("/v1/restaurants");
        crate::kit::wait::until(Duration::from_secs(10), "the demo restaurant", || async {
            let list: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            (list["restaurants"].as_array()?.len() == 1).then_some(())
        })
        .await;
        server.proc.signal(Sig::TERM);
        assert!(
            server.proc.wait_exit(EXIT).success(),
            "TABLECAST_DEMO={value}"
        );
    }
}

#[test]
fn a_sqlite_store_in_a_missing_directory_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("nowhere/d.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
        .args(["migrate", "--store", &store])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot open the SQLite store {store}")),
        "{err}"
    );
}

#[test]
fn a_retention_shorter_than_the_replay_window_or_past_any_date_is_refused() {
    // 0 days would delete an idempotency record inside its 24-hour replay window (a retried
    // hold would then be taken twice); more than a century is past what a date can hold.
    for (days, env) in [
        ("0", false),
        ("0", true),
        ("36501", false),
        ("99999999999", false),
    ] {
        let (code, err) = serve_with("--retention-days", "TABLECAST_RETENTION_DAYS", days, env);
        assert_eq!(code, Some(2), "{days} (env {env}): {err}");
        assert!(err.contains("retention-days"), "{err}");
    }
}

#[test]
fn a_number_of_seconds_out_of_range_is_refused_at_start_with_its_flag() {
    // `inf` or `1e300` became a duration that panicked at start, `1e19` one that overflowed an
    // instant later (a live subscribe answered 503, the waitlist reconcile died); `nan` and
    // negative values were silently taken as 0; a grace over 5 s breaks the 15 s drain.
    for (flag, env, value) in [
        ("--drain-grace-secs", "TABLECAST_DRAIN_GRACE_SECS", "inf"),
        ("--drain-grace-secs", "TABLECAST_DRAIN_GRACE_SECS", "-5"),
        ("--drain-grace-secs", "TABLECAST_DRAIN_GRACE_SECS", "20"),
        ("--reconcile-secs", "TABLECAST_RECONCILE_SECS", "1e19"),
        ("--reconcile-secs", "TABLECAST_RECONCILE_SECS", "nan"),
        (
            "--waitlist-reconcile-secs",
            "TABLECAST_WAITLIST_RECONCILE_SECS",
            "1e300",
        ),
    ] {
        for by_env in [false, true] {
            let (code, err) = serve_with(flag, env, value, by_env);
            assert_eq!(code, Some(2), "{flag} {value}: {err}");
            assert!(err.contains(flag), "{flag} {value}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

/// `tablecast serve` on a closed port with `flag` set to `value`, on the command line or (with
/// `by_env`) through its environment twin `env`: its exit code and standard error.
fn serve_with(flag: &str, env: &str, value: &str, by_env: bool) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:1",
        "--store",
        "sqlite::memory:",
    ])
    .env("RUST_BACKTRACE", "0")
    .env_remove(env);
    if by_env {
        cmd.env(env, value);
    } else {
        cmd.arg(format!("{flag}={value}"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Work that never ends (an offer held back 30 s) does not hold up the drain: the process exits
/// within the grace plus 8 s of SIGTERM, as documented (it once took 1.5 s more than its bound:
/// the wait for such work took all of it, and the exit has a tail of its own).
#[tokio::test]
async fn an_offer_that_does_not_end_holds_the_exit_no_longer_than_the_drain_allows() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("slow.db").display());
    let mut server = Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", &db],
        &[
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
            ("TABLECAST_DRAIN_GRACE_SECS", "0"),
            ("TABLECAST_TEST_ONLY_OFFER_DELAY_SECS", "30"),
        ],
        Stdio::null(),
    );
    release_to_one_waiting(&server.base).await;
    server.proc.signal(Sig::TERM);
    assert!(
        server.proc.wait_exit(Duration::from_secs(10)).success(),
        "SIGTERM exits 0"
    );
}

/// On a fresh one-table restaurant: holds its 19:00, has one diner join the waitlist for it, and
/// releases the hold (the release's offer is then under way). The entry as its join answered it.
async fn release_to_one_waiting(base: &str) -> Value {
    let api = Api::new(base, ADMIN);
    let rid = create(base, restaurant_body(json!([{"id": "t1", "max_party": 2}]))).await;
    let date = date_in(4);
    let hold = api.held(&rid, &date, "19:00", 2).await;
    let res = api
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "18:30", "to": "21:00",
                        "guest": {"name": "Ada", "email": "ada@example.com"}}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let entry = res.json().await.unwrap();
    api.release_hold(&hold).await;
    entry
}

/// An offer still on its way when SIGTERM comes is made before the process exits: the drain
/// waits for the work a commit left running (here a release's offer, held back a second by the
/// hidden test-only delay), where it used to exit and leave the freed table unoffered until
/// another instance's waitlist reconcile.
#[tokio::test]
async fn an_offer_under_way_at_sigterm_is_made_before_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("o.db").display());
    let start = |delay: &str| {
        Tablecast::start(
            &["serve", "--listen", "127.0.0.1:0", "--store", &db],
            &[
                ("TABLECAST_ADMIN_TOKEN", ADMIN),
                ("TABLECAST_DRAIN_GRACE_SECS", "0"),
                ("TABLECAST_TEST_ONLY_OFFER_DELAY_SECS", delay),
                // No reconcile makes the offer in this test's time: only the release's own.
                ("TABLECAST_WAITLIST_RECONCILE_SECS", "3600"),
            ],
            Stdio::null(),
        )
    };
    let mut server = start("1");
    let entry = release_to_one_waiting(&server.base).await;

    server.proc.signal(Sig::TERM);
    assert!(server.proc.wait_exit(EXIT).success(), "SIGTERM exits 0");

    let server = start("0");
    let got = Api::new(&server.base, ADMIN)
        .waitlist_entry_of(&entry)
        .await;
    assert_eq!(got["status"], "offered", "{got}");
}

/// Several `migrate` runs (as several instances starting) at once on a fresh SQLite file all
/// succeed: they migrate one at a time. Two at once failed in most trials ("table restaurants
/// already exists").
#[tokio::test]
async fn migrations_started_together_on_a_fresh_file_all_succeed() {
    for trial in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("fresh.db").display());
        let runs: Vec<_> = (0..4)
            .map(|_| {
                std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
                    .args(["migrate", "--store", &db])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A SQLite store URL that names no file (an unset variable after `sqlite://`) is refused with
/// the reason; it ran on a private temporary database per connection, ready and failing. It
/// and any other store URL the server cannot use are bad settings: exit 2.
#[tokio::test]
async fn a_sqlite_store_url_without_a_file_is_refused() {
    for (url, reason) in [
        ("sqlite://", "names no file"),
        ("sqlite:", "names no file"),
        ("sqlite://?mode=rwc", "names no file"),
        ("postgres://db/x", "unsupported store URL"),
        ("dynamodb://x", "is not a DynamoDB table name"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args(["migrate", "--store", url])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {said}");
        assert!(said.contains(reason), "{url}: {said}");
    }
}

/// `tablecast serve --demo` on a fresh SQLite file in `dir`, with the admin token and `envs`,
/// its standard output piped to the test, its standard error to `stderr`.
fn demo_piped(dir: &std::path::Path, envs: &[(&str, &str)], stderr: Stdio) -> std::process::Child {
    let db = format!("sqlite://{}", dir.join("d.db").display());
    std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &db, "--demo"])
        .env("TABLECAST_ADMIN_TOKEN", ADMIN)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Standard output and standard error closed under the server (the pipes' reader went away: a
/// log collector restarting, `… 2>&1 | head -1`) stop nothing: the demo's lines and the logs
/// are lost, the server serves, and on SIGTERM it drains and exits 0. `println!` panicked on
/// the closed pipe (after the demo's lines, or on "tablecast stopped"), exit 101; a log line
/// panicked the task writing it, the drain's included, and SIGTERM no longer stopped it.
#[tokio::test]
async fn a_closed_standard_output_stops_nothing_and_the_drain_still_exits_0() {
    use crate::kit::process::{Proc, Stop};
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = demo_piped(
        dir.path(),
        &[("TABLECAST_DRAIN_GRACE_SECS", "0.1")],
        Stdio::piped(),
    );
    // No one reads the logs: their pipe is closed at once.
    drop(child.stderr.take());
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe is closed for the lines that follow.
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the listening line: {first:?}"))
        .to_owned();
    let mut server = Proc::new(child, Stop::Kill);
    let listed = format!("{base}/v1/restaurants");
    crate::kit::wait::eventually(Duration::from_secs(10), "the demo seeded", || async {
        let Ok(res) = reqwest::get(&listed).await else {
            return false;
        };
        let v: Value = res.json().await.unwrap_or_default();
        v["restaurants"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    server.signal(Sig::TERM);
    let exit = server.wait_exit(Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
}

/// The demo's links to open use the public URL when one is set (they used the listen address,
/// `http://0.0.0.0:…` on every interface).
#[tokio::test]
async fn the_demo_prints_links_on_the_public_url() {
    use crate::kit::process::{Proc, Stop};
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = demo_piped(
        dir.path(),
        &[("TABLECAST_PUBLIC_URL", "https://book.example.com")],
        Stdio::null(),
    );
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let _server = Proc::new(child, Stop::Kill);
    let diner = out
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("diner app:"))
        .expect("the demo's diner link");
    assert!(
        diner.starts_with("diner app: https://book.example.com/?restaurant="),
        "{diner}"
    );
}

/// A drain with the longest grace (5 s) and a request that never finishes (its body trickles
/// in) still exits within 15 s of SIGTERM: the request is cut off when what is left of the 15 s
/// runs out. The in-flight limit ran 10 s after the grace, and the exit came after 15 s.
#[tokio::test]
async fn a_drain_with_the_longest_grace_and_a_request_that_never_ends_exits_within_15_s() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let mut server = start_with_grace(&db, "5");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/restaurants HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        while slow.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = std::time::Instant::now();
    server.proc.signal(Sig::TERM);
    let exit = server.proc.wait_exit(Duration::from_secs(20));
    let took = started.elapsed();
    trickle.abort();
    assert!(exit.success(), "{exit:?}");
    assert!(
        took < Duration::from_secs(15),
        "exited {took:?} after SIGTERM"
    );
}

/// A setting the server cannot use stops it before it touches the store: exit 2 (as for a flag
/// the argument parser refuses; it was 1), one line naming the flag, no backtrace even with
/// `RUST_BACKTRACE=1`, and no database file made. A port in use is no bad setting: exit 1. The
/// store was opened (created, migrated) first, the listen address's error named no flag, and
/// every error printed its backtrace.
#[tokio::test]
async fn a_bad_setting_stops_the_server_before_the_store_with_one_line_naming_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap().to_string();
    for (flag, value, code) in [
        ("--listen", in_use.as_str(), 1),
        ("--listen", "19103", 2),
        ("--listen", "127.0.0.1:99999", 2),
        ("--bus", "foo", 2),
        ("--bus", "redis://cache:port", 2),
        ("--trusted-proxies", "garbage", 2),
        ("--allowed-origins", "book.example.com", 2),
        ("--smtp-url", "http://relay.example", 2),
        ("--smtp-url", "smtp://relay.example", 2),
        ("--smtp-url", "smtp://relay.example:port", 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.db");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args(["serve", "--store", &format!("sqlite://{}", file.display())])
            .args([flag, value])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{flag} {value}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "{flag} {value}: {said}");
        assert!(said.contains(flag), "{flag} {value}: {said}");
        assert!(!file.exists(), "{flag} {value}: the store was made");
    }
}

/// Another process that opens and closes the store's file while an instance serves (a second
/// instance stopping, `sqlite3` taking a backup; here this test) leaves the instance's
/// write-ahead log in place: the instance keeps reading, and a write it acknowledges afterwards
/// survives its kill -9. The migration lock was taken on the database file itself: closing
/// that handle dropped the instance's own SQLite locks, so the other process's last close
/// deleted the log the instance went on writing to (its reads then failed, 500).
#[tokio::test]
async fn another_process_closing_the_file_beside_a_running_instance_loses_none_of_its_writes() {
    use sqlx::Connection as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.db");
    let db = format!("sqlite://{}", file.display());
    let mut server = start(&db);
    let body = || restaurant_body(json!([{"id": "t1", "max_party": 4}]));
    create(&server.base, body()).await;
    let mut other = sqlx::SqliteConnection::connect(&db).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM restaurants")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(n, 1);
    other.close().await.unwrap();
    assert!(
        dir.path().join("d.db-wal").exists(),
        "the instance's write-ahead log is still there"
    );
    let later = create(&server.base, body()).await;
    let res = reqwest::get(format!("{}/v1/restaurants/{later}", server.base))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the instance still reads");
    server.proc.kill();
    let server = start(&db);
    let res = reqwest::get(format!("{}/v1/restaurants/{later}", server.base))
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the acknowledged write is kept"
    );
}

/// Ctrl-C pressed a second time during a drain stops at once (exit 130), as a kill would; the
/// first alone drains, `/readyz` answering 503 through the grace. Every interrupt used to wait
/// out the whole drain.
#[tokio::test]
async fn a_second_interrupt_during_the_drain_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    let mut server = start_with_grace(&db, "5");
    let api = Api::new(&server.base, ADMIN);
    server.proc.signal(Sig::INT);
    crate::kit::wait::eventually(Duration::from_secs(3), "the drain to start", || async {
        api.status("/readyz").await == 503
    })
    .await;
    server.proc.signal(Sig::INT);
    let exit = server.proc.wait_exit(Duration::from_secs(2));
    assert_eq!(exit.code(), Some(130), "{exit:?}");
}

/// Instances started together with `--demo` on one fresh store seed one demo restaurant
/// between them: the one that creates it prints its staff token, the others say the store
/// already has it. Each checked the store was empty and then created its own (on DynamoDB,
/// where the review found it, and on one SQLite file alike).
#[tokio::test]
async fn instances_started_together_with_demo_seed_one_restaurant_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("d.db").display());
    demo_seeded_once(&db).await;
}

#[tokio::test]
async fn instances_started_together_with_demo_seed_one_restaurant_on_dynamodb() {
    let Some(_) = Backend::dynamo("durability::instances_started_together_with_demo_on_dynamodb")
    else {
        return;
    };
    demo_seeded_once(&format!("dynamodb://{}", unique_table("demo"))).await;
}

/// Four `serve --demo` on `store` at once: one seeds, the others find it, and the store lists
/// one restaurant.
async fn demo_seeded_once(store: &str) {
    use crate::kit::process::{Proc, Stop};
    use std::io::BufRead as _;
    let (said, heard) = std::sync::mpsc::channel();
    let mut servers = Vec::new();
    // Each instance's standard error, to say why one said nothing.
    let logs = tempfile::tempdir().unwrap();
    for i in 0..4 {
        let log = std::fs::File::create(logs.path().join(format!("{i}.log"))).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tablecast"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--store",
                store,
                "--demo",
            ])
            .env("TABLECAST_ADMIN_TOKEN", ADMIN)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let said = said.clone();
        std::thread::spawn(move || {
            let mut base = None;
            for line in out.lines().map_while(Result::ok) {
                if base.is_none() {
                    base = line
                        .split_whitespace()
                        .find(|w| w.starts_with("http://"))
                        .map(str::to_owned);
                }
                if line.starts_with("demo") {
                    let _ = said.send((base.clone(), line));
                    return;
                }
            }
        });
        servers.push(Proc::new(child, Stop::Kill));
    }
    let mut lines = Vec::new();
    for _ in &servers {
        let (base, line) = heard
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| {
                let errors: Vec<String> = (0..4)
                    .map(|i| std::fs::read_to_string(logs.path().join(format!("{i}.log"))))
                    .map(|l| {
                        l.unwrap_or_default()
                            .lines()
                            .last()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                panic!("each instance says what the demo did ({e}): {lines:?}; stderr: {errors:?}")
            });
        lines.push((base.expect("the listening line comes first"), line));
    }
    let seeded = lines
        .iter()
        .filter(|(_, l)| l.starts_with("demo restaurant"))
        .count();
    assert_eq!(seeded, 1, "{lines:?}");
    let listed: Value = reqwest::get(format!("{}/v1/restaurants", lines[0].0))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["restaurants"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

/// `/readyz` says 503 within 3 s when the store hangs (a paused DynamoDB, a partition that
/// drops without closing): a load balancer's health check waits about 5 s, and a timeout there
/// says less than a refusal. The store's own timeouts and retries took about 25 s. (Two
/// workers: the proxy runs on the test's runtime while the test reads the server's first line.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_within_3_s_when_the_store_hangs() {
    use crate::kit::services::{require, Service};
    let Some(endpoint) = require(
        Service::DynamoDbLocal,
        "durability::readyz_answers_503_within_3_s_when_the_store_hangs",
    ) else {
        return;
    };
    let upstream: u16 = endpoint
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a port in {endpoint}"));
    let proxy = crate::kit::proxy::Proxy::start(upstream, Duration::ZERO).await;
    let store = format!("dynamodb://{}", unique_table("ready"));
    let endpoint = format!("http://127.0.0.1:{}", proxy.port);
    let server = Tablecast::start(
        &["serve", "--listen", "127.0.0.1:0", "--store", &store],
        &[
            ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint),
            ("TABLECAST_ADMIN_TOKEN", ADMIN),
        ],
        Stdio::null(),
    );
    let base = &server.base;
    let readyz = format!("{base}/readyz");
    let client = reqwest::Client::new();
    let status = || async {
        client
            .get(&readyz)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map(|r| r.status())
    };
    assert_eq!(status().await.unwrap(), StatusCode::OK);
    proxy.hang();
    let asked = std::time::Instant::now();
    assert_eq!(status().await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}
