//! Each loadgen scenario, small, against the app on port 0; the report's numbers are checked
//! against what really happened, read back independently.
use crate::kit::api::*;
use crate::kit::app::*;
use clap::Parser;
use reqwest::Method;
use serde_json::Value;
use tablecast::config::{Cli, Command};
use tablecast::loadgen::Report;

async fn loadgen(app: &TestApp, args: &[&str]) -> Report {
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
    let m = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    m.lines()
        .find(|l| l.starts_with("tablecast_live_messages_sent_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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
    assert_eq!(fact(&r, "successful holds"), 150);
    let back = read_back(&app).await;
    assert_eq!(back.iter().filter(|x| x["status"] == "held").count(), 150);
    assert_no_overlap(&back);
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
