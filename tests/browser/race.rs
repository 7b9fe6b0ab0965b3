//! Two diners, one last table: the loser's button goes at once, and a forced click is told so.
use crate::harness::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn the_loser_of_the_last_table_sees_it_go_live_and_is_told_it_was_just_taken() {
    if require(
        Service::Chromium,
        "the_loser_of_the_last_table_sees_it_go_live",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("race.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Dernier",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    // Someone else already holds one of the two tables at 19:00.
    server.hold(&rid, &date, "19:00", 2, Some("t2")).await;

    let mut driver = Driver::start().await;
    let ada = driver.browser(1100, 900).await;
    let bob = driver.browser(1100, 900).await;
    let url = server.url(&format!("/?restaurant={rid}&date={date}&party=2"));
    let slot = r#"[data-testid=slot][data-time="19:00"]"#;
    for diner in [&ada, &bob] {
        diner.goto(&url).await;
        diner
            .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
            .await;
        diner.wait_attr(slot, "data-available", "1", SECS(15)).await;
    }

    // The console check below is real: an error logged by the page is collected.
    ada.js("console.error('tablecast console probe');", vec![])
        .await;
    let probe = ada.console_errors(&[]).await;
    assert!(
        probe.iter().any(|e| e.contains("tablecast console probe")),
        "{probe:?}"
    );

    ada.click(slot).await;
    ada.wait_visible("[data-testid=hold]", SECS(15)).await;
    let committed = Instant::now();
    until(
        SECS(1),
        "Bob's 19:00 to turn unavailable without a reload",
        || async {
            let gone = bob.attr(slot, "data-available").await.as_deref() == Some("0")
                && bob.attr(slot, "disabled").await.is_some();
            gone.then_some(())
        },
    )
    .await;
    println!(
        "Bob saw 19:00 go {:?} after Ada's hold",
        committed.elapsed()
    );
    let left = ada.text("[data-testid=hold-countdown]").await.unwrap();
    assert!(
        left.starts_with("5:00") || left.starts_with("4:5"),
        "Ada's countdown starts near 5:00 (hold_seconds 300), got {left}"
    );

    // Bob clicks the time anyway (as if his tap beat the update): told at once, with alternatives.
    bob.js(
        "document.querySelector(arguments[0]).disabled = false;",
        vec![json!(slot)],
    )
    .await;
    let clicked = Instant::now();
    bob.click(slot).await;
    let said = until(SECS(2), "Bob to be told 19:00 was just taken", || async {
        bob.text("[data-testid=status]")
            .await
            .filter(|t| t.contains("19:00 was just taken"))
    })
    .await;
    assert!(
        clicked.elapsed() < SECS(1),
        "told after {:?}",
        clicked.elapsed()
    );
    assert_eq!(
        bob.attr("[data-testid=status]", "aria-live")
            .await
            .as_deref(),
        Some("polite")
    );
    let alternatives: Vec<String> = bob
        .js(
            "return [...document.querySelectorAll('[data-testid=alternative]')].map(e => e.dataset.time);",
            vec![],
        )
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(!alternatives.is_empty(), "alternatives offered: {said}");
    assert!(alternatives.len() <= 3 && !alternatives.contains(&"19:00".to_owned()));
    let free = server.availability(&rid, &date, 2).await;
    for t in &alternatives {
        let slot = free["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["time"] == t.as_str())
            .unwrap_or_else(|| panic!("alternative {t} is a bookable start"));
        assert!(
            slot["available_tables"].as_u64().unwrap() > 0,
            "{t} is free"
        );
    }

    bob.screenshot("diner-just-taken.png").await;

    // An alternative someone else fills meanwhile says so and cannot be tapped.
    assert!(alternatives.len() >= 2, "{alternatives:?}");
    let filled = alternatives.last().unwrap();
    let left = free["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == filled.as_str())
        .unwrap()["available_tables"]
        .as_u64()
        .unwrap();
    let mut fillers = Vec::new();
    for _ in 0..left {
        fillers.push(server.hold(&rid, &date, filled, 2, None).await);
    }
    let button = format!(r#"[data-testid=alternative][data-time="{filled}"]"#);
    until(SECS(3), "the filled alternative shown taken", || async {
        let taken = bob.attr(&button, "disabled").await.is_some()
            && bob.text(&button).await?.contains("Taken");
        taken.then_some(())
    })
    .await;
    // Released again (they may have filled the other alternatives too), they are free again.
    for h in &fillers {
        server.api.release_hold(h).await;
    }
    let first = format!(
        r#"[data-testid=alternative][data-time="{}"]"#,
        alternatives[0]
    );
    until(SECS(3), "the first alternative free again", || async {
        bob.attr(&first, "disabled").await.is_none().then_some(())
    })
    .await;

    // Each alternative is one tap away.
    bob.click(&format!(
        r#"[data-testid=alternative][data-time="{}"]"#,
        alternatives[0]
    ))
    .await;
    bob.wait_visible("[data-testid=hold]", SECS(15)).await;
    let title = bob.text("#hold-title").await.unwrap();
    assert!(title.contains(&alternatives[0]), "{title}");
    let _: Value = bob.js("return 1;", vec![]).await;

    ada.finish(&[]).await;
    bob.finish(&["409"]).await;
}

/// The answer to a hold is lost on the way back (the request reached the server): tapping the
/// time again gets that same hold, not a second one that would sit orphaned on another table.
#[tokio::test]
async fn a_hold_whose_answer_was_lost_is_asked_again_and_gets_the_same_hold() {
    if require(
        Service::Chromium,
        "a_hold_whose_answer_was_lost_is_asked_again_and_gets_the_same_hold",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("lost_answer.db"), 0);
    let (rid, staff) = server
        .restaurant(paris_restaurant(
            "La Réponse",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}, {"id": "t3", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    let slot = SLOT_AT_20;
    lose_the_answer_to_a_hold(&diner, &server, &rid, &date, 3).await;
    // The server made the hold all the same.
    diner.wait_attr(slot, "data-available", "2", SECS(5)).await;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(10)).await;
    // The second tap was answered with the first hold: still one table held.
    let avail = server.availability(&rid, &date, 2).await;
    let at = avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == "20:00")
        .unwrap();
    assert_eq!(at["available_tables"], 2, "{avail}");
    assert_eq!(diner.js("return globalThis.lostAnswers;", vec![]).await, 1);
    // And the page holds the very reservation the first request made.
    let held = reservations_of(&server, &rid, &staff, &date).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["id"], shown_booking(&diner).await);
    diner.finish(&[]).await;
}

/// The answer to a hold is lost, and the hold expires before the diner taps the time again:
/// the retry is answered with that same hold, now over (a replay), and the page says so
/// instead of showing a hold with time left.
#[tokio::test]
async fn a_lost_hold_replayed_after_it_expired_is_told_as_expired() {
    if require(
        Service::Chromium,
        "a_lost_hold_replayed_after_it_expired_is_told_as_expired",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("lost_expired.db"), 0);
    let mut body = paris_restaurant(
        "La Réponse Tardive",
        json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}]),
    );
    body["hold_seconds"] = json!(2);
    let (rid, staff) = server.restaurant(body).await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    let slot = SLOT_AT_20;
    lose_the_answer_to_a_hold(&diner, &server, &rid, &date, 2).await;
    // The hold the lost request made runs out (2 s) and is swept: the time is free again.
    diner.wait_attr(slot, "data-available", "1", SECS(5)).await;
    diner.wait_attr(slot, "data-available", "2", SECS(10)).await;
    // And it is over by the page's own clock too (an estimate of the server's, within about
    // half a second), with a margin.
    let day = reservations_of(&server, &rid, &staff, &date).await;
    // Swept as expired, its `updated_at` is its end.
    assert_eq!(day[0]["status"], "expired", "{day:?}");
    let expired_at = day[0]["updated_at"]
        .as_str()
        .map(|x| {
            chrono::DateTime::parse_from_rfc3339(x)
                .unwrap()
                .timestamp_millis()
        })
        .unwrap_or_else(|| panic!("the lost request's hold: {day:?}"));
    until(SECS(10), "the page's clock past the hold's end", || async {
        let now = diner
            .js(
                "return import('/assets/api.js').then((m) => m.clock.now());",
                vec![],
            )
            .await
            .as_f64()
            .unwrap_or(0.0);
        (now > (expired_at + 1500) as f64).then_some(())
    })
    .await;
    diner.click(slot).await;
    let said = until(SECS(10), "the page to answer the second tap", || async {
        diner
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("20:00") && !t.starts_with("Holding"))
    })
    .await;
    assert!(said.contains("expired before it reached you"), "{said}");
    assert!(!diner.visible("[data-testid=hold]").await);
    diner.finish(&[]).await;
}

/// The answer to a hold is lost, and the diner taps the time again only after the window in
/// which a tap repeats the same request (30 s; 1 s here): the second tap is a new hold, with a
/// new `Idempotency-Key`, and the page shows that one, not a replay of the first.
#[tokio::test]
async fn a_hold_asked_again_after_the_retry_window_is_a_new_hold() {
    if require(
        Service::Chromium,
        "a_hold_asked_again_after_the_retry_window_is_a_new_hold",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("lost_late.db"), 0);
    let (rid, staff) = server
        .restaurant(paris_restaurant(
            "La Réponse Perdue",
            json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}, {"id": "t3", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .before_each_page("globalThis.tablecastHoldRetryMs = 1000;")
        .await;
    let slot = SLOT_AT_20;
    lose_the_answer_to_a_hold(&diner, &server, &rid, &date, 3).await;
    diner.wait_attr(slot, "data-available", "2", SECS(5)).await;
    // Past the window by the page's own clock.
    let failed_at = diner
        .js("return Date.now();", vec![])
        .await
        .as_f64()
        .unwrap();
    until(SECS(10), "the retry window to pass", || async {
        let now = diner.js("return Date.now();", vec![]).await.as_f64()?;
        (now > failed_at + 1500.0).then_some(())
    })
    .await;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(10)).await;
    diner.wait_attr(slot, "data-available", "1", SECS(5)).await;
    let held = reservations_of(&server, &rid, &staff, &date).await;
    assert_eq!(
        held.len(),
        2,
        "a second hold, not the first replayed: {held:?}"
    );
    let newer = held
        .iter()
        .max_by_key(|r| r["created_at"].as_str().unwrap_or_default().to_owned())
        .unwrap();
    assert_eq!(
        newer["id"],
        shown_booking(&diner).await,
        "the page shows the new hold"
    );
    diner.finish(&[]).await;
}

/// The id of the booking the diner page keeps.
async fn shown_booking(diner: &Browser) -> Value {
    diner
        .js(
            "return JSON.parse(sessionStorage.getItem('tablecast.booking')).id;",
            vec![],
        )
        .await
}

const SLOT_AT_20: &str = r#"[data-testid=slot][data-time="20:00"]"#;

/// Opens the diner page at 20:00 (`free` tables there) and taps it; the hold request reaches
/// the server, but its answer never reaches the page, which says the hold failed.
async fn lose_the_answer_to_a_hold(
    diner: &Browser,
    server: &Server,
    rid: &str,
    date: &str,
    free: u32,
) {
    diner
        .before_each_page(
            r#"globalThis.lostAnswers = 0;
               const real = window.fetch;
               window.fetch = (url, init) => {
                 const p = real(url, init);
                 if (String(url).endsWith("/holds") && globalThis.lostAnswers === 0) {
                   globalThis.lostAnswers = 1;
                   return p.then(() => { throw new TypeError("Failed to fetch"); });
                 }
                 return p;
               };"#,
        )
        .await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    let slot = SLOT_AT_20;
    diner
        .wait_attr(slot, "data-available", &free.to_string(), SECS(10))
        .await;
    diner.click(slot).await;
    until(SECS(10), "the page to say the hold failed", || async {
        diner
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("Could not hold"))
    })
    .await;
}
