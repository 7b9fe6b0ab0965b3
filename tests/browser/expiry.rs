//! Holds run on the server's clock: a browser whose clock is wrong still counts down right, and
//! is told when the hold expires; a hold the restaurant releases is told as released.
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn seconds(countdown: &str) -> u64 {
    let (m, s) = countdown.split_once(':').expect("m:ss");
    m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap()
}

#[tokio::test]
async fn a_hold_counts_down_by_the_servers_clock_and_says_so_when_it_expires() {
    if require(Service::Chromium, "a_hold_counts_down_by_the_servers_clock").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("expiry.db"), 0);
    let mut body = paris_restaurant("Vite", json!([{"id": "t1", "max_party": 2}]));
    body["hold_seconds"] = json!(4);
    let (rid, _) = server.restaurant(body).await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    // This browser's clock runs ten minutes fast.
    diner
        .before_each_page(
            "const realNow = Date.now.bind(Date); Date.now = () => realNow() + 600000;",
        )
        .await;
    diner.open_diner(&server, &rid, &date).await;
    let skewed = diner
        .js("return Date.now() - new Date().getTime();", vec![])
        .await;
    assert!(
        skewed.as_i64().unwrap() > 500_000,
        "the page's clock is skewed: {skewed}"
    );
    let slot = r#"[data-testid=slot][data-time="19:00"]"#;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
    let left = seconds(&diner.text("[data-testid=hold-countdown]").await.unwrap());
    assert!(
        (1..=4).contains(&left),
        "counts down from the server's expires_at: {left}s left"
    );

    until(SECS(8), "the diner to be told the hold expired", || async {
        diner
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("hold on 19:00 expired"))
    })
    .await;
    assert!(!diner.visible("[data-testid=hold]").await);
    // The sweeper gives the table back; the page shows it free again.
    diner.wait_attr(slot, "data-available", "1", SECS(4)).await;

    diner.finish(&[]).await;
}

/// This device's clock jumps a minute ahead while a hold runs (a correction, say): the page's
/// next read of its booking shows the server's clock again, and the countdown goes on from
/// there. It used to keep its first reading for good, counted down a minute short, and told the
/// diner the hold had expired while the server still held it.
#[tokio::test]
async fn a_device_clock_that_jumps_during_a_hold_is_caught_up_and_the_hold_kept() {
    let mut body = paris_restaurant("Saut", json!([{"id": "t1", "max_party": 2}]));
    body["hold_seconds"] = json!(90);
    let Some(scene) = scene("a_device_clock_that_jumps_during_a_hold", body).await else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    // The booking is not read again on a timer here (every 15 s in production), but when the
    // test says so, as when the page comes back into view; the clock moves when the test says
    // so too.
    diner
        .before_each_page(
            "globalThis.tablecastBookingRecheckMs = 3600000; globalThis.clockJump = 0; \
             const realNow = Date.now.bind(Date); Date.now = () => realNow() + globalThis.clockJump;",
        )
        .await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    let slot = r#"[data-testid=slot][data-time="19:00"]"#;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
    let countdown =
        || async { seconds(&diner.text("[data-testid=hold-countdown]").await.unwrap()) };
    assert!(countdown().await >= 80, "a fresh 90 s hold");
    diner.js("globalThis.clockJump = 60000;", vec![]).await;
    until(SECS(3), "the countdown a minute short", || async {
        (countdown().await < 40).then_some(())
    })
    .await;
    diner
        .js(
            "document.dispatchEvent(new Event('visibilitychange'));",
            vec![],
        )
        .await;
    until(
        SECS(10),
        "the countdown back on the server's clock",
        || async {
            let left = countdown().await;
            (left >= 60).then_some(left)
        },
    )
    .await;
    assert!(diner.visible("[data-testid=hold]").await, "still held");
    diner.finish(&[]).await;
}

#[tokio::test]
async fn a_diner_is_told_when_the_restaurant_releases_the_hold() {
    released_by_staff("a_diner_is_told_when_the_restaurant_releases", false).await;
}

/// A release whose freed table goes straight to a waitlist offer moves no count, so no
/// availability frame tells the page: it learns it by reading its booking again.
#[tokio::test]
async fn a_diner_is_told_of_a_release_whose_table_went_to_the_waitlist() {
    released_by_staff(
        "a_diner_is_told_of_a_release_whose_table_went_to_the_waitlist",
        true,
    )
    .await;
}

/// A diner holds 20:00 at the only table; staff release the hold (the dashboard's "Release"),
/// with someone waiting for 20:00 when `waiting` (the table then goes to their offer). The page
/// says the restaurant released it, not that it expired.
async fn released_by_staff(name: &str, waiting: bool) {
    if require(Service::Chromium, name).is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("released.db"), 0);
    let (rid, staff) = server
        .restaurant(paris_restaurant(
            "Lâcher",
            json!([{"id": "t1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    // The booking is read again every second here (15 s in production).
    diner
        .before_each_page("globalThis.tablecastBookingRecheckMs = 1000;")
        .await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    let slot = r#"[data-testid=slot][data-time="20:00"]"#;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
    let id = diner
        .js(
            "return JSON.parse(sessionStorage.getItem('tablecast.booking')).id;",
            vec![],
        )
        .await;
    let id = id.as_str().expect("the hold's id in session storage");
    let entry = if waiting {
        let (code, entry) = server
            .send(
                reqwest::Method::POST,
                &format!("/v1/restaurants/{rid}/waitlist"),
                None,
                Some(
                    json!({"date": date, "party_size": 2, "from": "20:00", "to": "20:00",
                            "guest": {"name": "Grace"}}),
                ),
            )
            .await;
        assert_eq!(code, 201, "{entry}");
        Some(entry)
    } else {
        None
    };

    let (code, v) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/reservations/{id}"),
            Some(&staff),
            None,
        )
        .await;
    assert!((200..300).contains(&code), "release: {code} {v}");
    if let Some(entry) = &entry {
        let (_, e) = server
            .send(
                reqwest::Method::GET,
                &format!("/v1/waitlist/{}", entry["id"].as_str().unwrap()),
                entry["token"].as_str(),
                None,
            )
            .await;
        assert_eq!(
            e["status"], "offered",
            "the freed table went to the waitlist: {e}"
        );
    }
    // Without a waitlist the page hears it over the socket at once; with one, no frame
    // comes and it reads its booking again at its next recheck.
    let within = if waiting { SECS(10) } else { SECS(5) };
    let told = until(within, "the diner to be told of the release", || async {
        diner
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("released") || t.contains("expired"))
    })
    .await;
    assert!(
        told.contains("restaurant released your hold on 20:00"),
        "{told}"
    );
    assert!(!told.contains("expired"), "{told}");
    assert!(!diner.visible("[data-testid=hold]").await);
    if !waiting {
        diner.wait_attr(slot, "data-available", "1", SECS(4)).await;
    }
    diner.finish(&[]).await;
}

/// A hold whose start comes before `hold_seconds` run out lasts until its start: the countdown
/// runs to the start and the bar starts full. It measured the time left against `hold_seconds`
/// and began a quarter to a half full here.
#[tokio::test]
async fn a_hold_cut_short_by_its_start_counts_down_to_it_from_a_full_bar() {
    use chrono::{Duration as Span, Timelike};
    let (tz, local) = zone_at_noon();
    let mut body = open_all_day_in(
        paris_restaurant("Bientôt", json!([{"id": "t1", "max_party": 2}])),
        &tz,
    );
    body["hold_seconds"] = json!(3600);
    let Some(scene) = scene("a_hold_cut_short_by_its_start", body).await else {
        return;
    };
    let date = local.format("%Y-%m-%d").to_string();
    // 15 to 30 minutes ahead on the grid.
    let time = (local - Span::minutes(i64::from(local.minute() % 15)) + Span::minutes(30))
        .format("%H:%M")
        .to_string();

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(&scene.server, &scene.rid, &date).await;
    diner.take_hold(&time).await;
    let left = seconds(&diner.text("[data-testid=hold-countdown]").await.unwrap());
    assert!(
        (14 * 60..=30 * 60).contains(&left),
        "counts down to the start at {time}, not an hour: {left}s left"
    );
    let width = diner
        .js(
            "return parseFloat(document.getElementById('hold-progress').style.width);",
            vec![],
        )
        .await;
    assert!(
        width.as_f64().expect("a width in %") >= 95.0,
        "the bar starts full: {width}%"
    );
    diner.finish(&[]).await;
}
