//! Each loadgen scenario, small, against the app on port 0; the report's numbers are checked
//! against what really happened, read back independently.
use crate::kit::api::*;
use crate::kit::app::*;
use clap::Parser;
use reqwest::Method;
use serde_json::Value;
use tablecast::config::{Cli, Command};
use tablecast::loadgen::Report;

pub(crate) async fn loadgen(app: &TestApp, args: &[&str]) -> Report {
    let mut argv = vec!["tablecast", "loadgen"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&[
        "--url",
        &app.base,
        "--admin-token",
        ADMIN,
        "--quiet",
        "--timeout-secs",
        "120",
    ]);
    let Command::Loadgen(a) = Cli::try_parse_from(argv).expect("valid arguments").command else {
        unreachable!()
    };
    tablecast::loadgen::run(a).await.expect("the run succeeds")
}

fn fact(r: &Report, name: &str) -> u64 {
    r.facts[name]
        .as_u64()
        .unwrap_or_else(|| panic!("fact {name}"))
}

/// The restaurant loadgen created, and its reservations on the run's date (read as admin).
async fn read_back(app: &TestApp) -> Vec<Value> {
    let list: Value = app
        .send(Method::GET, "/v1/restaurants", None, None)
        .await
        .json()
        .await
        .unwrap();
    let rid = list["restaurants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "loadgen")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let date = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let v: Value = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{rid}/reservations?date={date}"),
            Some(ADMIN),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    v["reservations"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stampede_reports_the_winners_and_losers_that_really_happened() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "stampede",
            "--diners",
            "120",
            "--tables",
            "3",
            "--watchers",
            "5",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    assert_eq!(fact(&r, "winners"), 3);
    assert_eq!(fact(&r, "losers"), 117);
    assert_eq!(
        r.row_named("hold: losers (409)").unwrap().summary.count,
        117
    );
    let held: Vec<Value> = read_back(&app)
        .await
        .into_iter()
        .filter(|x| x["status"] == "held")
        .collect();
    assert_eq!(held.len(), 3);
    assert_no_overlap(&held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stampede_on_a_combination_seats_the_combination_or_its_tables_never_both() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "stampede",
            "--diners",
            "90",
            "--tables",
            "3",
            "--combination",
            "c3",
            "--watchers",
            "3",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    let (combo, single) = (
        fact(&r, "winners: combination"),
        fact(&r, "winners: member tables"),
    );
    assert!(
        (combo, single) == (1, 0) || (combo, single) == (0, 3),
        "{}",
        r.table()
    );
    assert_eq!(fact(&r, "winners") + fact(&r, "losers"), 90);
    assert_eq!(fact(&r, "losers: reason table"), fact(&r, "losers"));
    let held: Vec<Value> = read_back(&app)
        .await
        .into_iter()
        .filter(|x| x["status"] == "held")
        .collect();
    assert_eq!(held.len() as u64, combo + single);
    // Read back independently: every table held exactly once, through table_ids.
    let mut tables: Vec<&str> = held
        .iter()
        .flat_map(|x| x["table_ids"].as_array().unwrap().iter())
        .map(|t| t.as_str().unwrap())
        .collect();
    tables.sort_unstable();
    assert_eq!(tables, ["t0000", "t0001", "t0002"]);
    if combo == 1 {
        assert_eq!(held[0]["combination_id"], "c3");
    }
    assert!(tablecast::loadgen::double_bookings(&held).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stampede_into_a_paced_window_lets_pacing_decide() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "stampede",
            "--diners",
            "100",
            "--tables",
            "30",
            "--paced",
            "--max-covers",
            "10",
            "--watchers",
            "3",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    assert_eq!(fact(&r, "winners"), 5);
    assert_eq!(fact(&r, "losers"), 95);
    assert_eq!(fact(&r, "losers: reason pacing"), 95);
    let back = read_back(&app).await;
    let held: Vec<&Value> = back.iter().filter(|x| x["status"] == "held").collect();
    assert_eq!(held.len(), 5);
    let covers: u64 = held.iter().map(|x| x["party_size"].as_u64().unwrap()).sum();
    assert_eq!(covers, 10, "the window holds exactly its limit");
    let mut tables: Vec<&str> = held
        .iter()
        .map(|x| x["table_id"].as_str().unwrap())
        .collect();
    tables.sort_unstable();
    tables.dedup();
    assert_eq!(tables.len(), 5, "five distinct tables");
}

#[test]
fn the_invariant_check_finds_a_table_shared_with_a_combination_and_a_window_over_its_limit() {
    use serde_json::json;
    let list = vec![
        json!({"id": "a", "table_id": "t1", "table_ids": ["t1", "t2"], "combination_id": "c",
               "time": "19:00", "start": "2026-12-05T18:00:00Z", "end": "2026-12-05T19:00:00Z",
               "status": "confirmed", "party_size": 6}),
        json!({"id": "b", "table_id": "t2", "table_ids": ["t2"], "combination_id": null,
               "time": "19:30", "start": "2026-12-05T18:30:00Z", "end": "2026-12-05T19:30:00Z",
               "status": "held", "party_size": 2}),
    ];
    assert_eq!(tablecast::loadgen::double_bookings(&list).len(), 1);
    let pacing = json!({"window_minutes": 60, "max_covers": 7, "max_parties": null});
    let over = tablecast::loadgen::pacing_overruns(&list, &pacing);
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].1.covers, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fanout_counts_every_delivery_and_the_server_sent_them() {
    let app = TestApp::spawn().await;
    let before = sent(&app).await;
    let r = loadgen(
        &app,
        &[
            "fanout",
            "--subscribers",
            "40",
            "--changes",
            "4",
            "--gap-ms",
            "30",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    assert_eq!(
        r.row_named("tablecast /v1/live").unwrap().summary.count,
        160
    );
    assert_eq!(fact(&r, "tablecast /v1/live: lost deliveries"), 0);
    // The server queued at least a snapshot and 4 updates for each of the 40 subscribers.
    assert!(sent(&app).await - before >= 40 * 5);
    assert_eq!(read_back(&app).await.len(), 4, "one hold per change");
}

async fn sent(app: &TestApp) -> u64 {
    let text = crate::kit::metrics::scrape(&app.base).await;
    crate::kit::metrics::sum(&text, "tablecast_live_messages_sent_total", &[]) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_reports_as_many_successes_as_reservations_written() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "holds",
            "--holds",
            "150",
            "--watchers",
            "10",
            "--concurrency",
            "8",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    assert_eq!(fact(&r, "successful holds"), 150, "{}", r.table());
    let back = read_back(&app).await;
    assert_eq!(back.iter().filter(|x| x["status"] == "held").count(), 150);
    assert_no_overlap(&back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waitlist_offers_each_freed_table_once_in_queue_order_and_measures_free_to_offer() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "waitlist",
            "--entries",
            "12",
            "--frees",
            "6",
            "--clients",
            "3",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    for c in [
        "exactly one offer per freed capacity",
        "no entry offered twice",
        "queue order (FIFO)",
        "no double booking",
    ] {
        assert!(
            r.checks.iter().any(|x| x.name == c && x.ok),
            "check {c}: {}",
            r.table()
        );
    }
    let (frees, offers) = (fact(&r, "frees incl. passes"), fact(&r, "offers"));
    assert_eq!(fact(&r, "frees"), 6);
    assert_eq!(offers, frees.min(12), "{}", r.table());
    assert_eq!(fact(&r, "confirmed") + fact(&r, "passed"), offers);
    let lat = r.row_named("free sent → offer frame").unwrap().summary;
    assert_eq!(lat.count as u64, offers, "one latency per offer");
    assert!(lat.p50_ms > 0.0 && lat.p99_ms >= lat.p50_ms, "{lat:?}");
    // Read back independently: the queue shows as many booked and lapsed entries as the run
    // confirmed and passed, and the rest still waiting.
    let rid = read_back(&app).await[0]["restaurant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let date = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let q: Value = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{rid}/waitlist?date={date}"),
            Some(ADMIN),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let count = |s: &str| {
        q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == s)
            .count() as u64
    };
    assert_eq!(count("booked"), fact(&r, "confirmed"));
    assert_eq!(count("lapsed"), fact(&r, "passed"));
    assert_eq!(count("waiting"), 12 - offers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_ends_with_the_invariant_check_and_counts_its_holds() {
    let app = TestApp::spawn().await;
    let r = loadgen(
        &app,
        &[
            "mixed",
            "--diners",
            "12",
            "--tables",
            "6",
            "--duration-secs",
            "3",
        ],
    )
    .await;
    assert!(r.invariants_hold(), "{}", r.table());
    let back = read_back(&app).await;
    assert_eq!(fact(&r, "holds won") as usize, back.len());
    assert_eq!(fact(&r, "reservations written") as usize, back.len());
    assert!(back.len() > 5, "the evening booked tables");
    assert!(r.row_named("search").unwrap().summary.count > 0);
    assert_no_overlap(&back);
}

#[tokio::test]
async fn loadgen_refuses_a_remote_target() {
    let cli = Cli::try_parse_from([
        "tablecast",
        "loadgen",
        "stampede",
        "--url",
        "http://192.0.2.1:80",
        "--quiet",
    ])
    .unwrap();
    let Command::Loadgen(a) = cli.command else {
        unreachable!()
    };
    let err = tablecast::loadgen::run(a).await.unwrap_err();
    assert!(err.to_string().contains("non-loopback"), "{err}");
}
