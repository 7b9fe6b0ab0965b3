//! The server restarts under an open page: it reconnects, resubscribes and shows what is true now.
use crate::harness::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

async fn page_slots(b: &Browser) -> BTreeMap<String, u64> {
    let v = b
        .js(
            "return [...document.querySelectorAll('[data-testid=slot]')].map(e => [e.dataset.time, Number(e.dataset.available)]);",
            vec![],
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap()))
        .collect()
}

fn server_slots(avail: &Value) -> BTreeMap<String, u64> {
    let now = chrono::Utc::now();
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["start"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                > now
        })
        .map(|s| {
            (
                s["time"].as_str().unwrap().to_owned(),
                s["available_tables"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_page_reconnects_after_a_server_restart_and_shows_the_state_of_the_store() {
    if require(
        Service::Chromium,
        "the_page_reconnects_after_a_server_restart",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("restart.db");
    let mut first = Server::start(&db, 0);
    let port = first.port;
    let (rid, _) = first
        .restaurant(paris_restaurant(
            "Le Phénix",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 4}]),
        ))
        .await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&first.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="20:00"]"#,
            "data-available",
            "2",
            SECS(15),
        )
        .await;

    first.kill();
    diner
        .wait_attr(
            "[data-testid=live-status]",
            "data-state",
            "reconnecting",
            SECS(15),
        )
        .await;

    // While the page is away, the store changes: both tables go at 20:00.
    {
        let elsewhere = Server::start(&db, 0);
        let a = elsewhere.hold(&rid, &date, "20:00", 2, None).await;
        elsewhere.confirm(&a, "Ines").await;
        elsewhere.hold(&rid, &date, "20:00", 2, None).await;
    }

    let again = Server::start(&db, port);
    assert_eq!(again.port, port);
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(20))
        .await;
    let truth = server_slots(&again.availability(&rid, &date, 2).await);
    assert_eq!(truth.get("20:00"), Some(&0));
    until(
        SECS(2),
        "the page to show the store's availability",
        || async {
            let shown = page_slots(&diner).await;
            (shown == truth).then_some(())
        },
    )
    .await;
    assert!(diner
        .attr(r#"[data-testid=slot][data-time="20:00"]"#, "disabled")
        .await
        .is_some());
    let stale = diner
        .js(
            "return document.querySelector('#slots').classList.contains('stale');",
            vec![],
        )
        .await;
    assert_eq!(stale, json!(false));

    // Still live: a change after the restart arrives as an update.
    again.hold(&rid, &date, "21:30", 2, Some("t1")).await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="21:30"]"#,
            "data-available",
            "1",
            SECS(2),
        )
        .await;

    // The server was down for a moment: the page's reconnect attempts meanwhile were refused.
    diner.finish(&["/v1/live"]).await;
}
