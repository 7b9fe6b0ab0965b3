//! A diner books end to end while the staff dashboard shows it live; staff seat and complete it.
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn a_booking_appears_held_then_confirmed_on_the_dashboard_and_staff_seat_and_complete_it() {
    if require(
        Service::Chromium,
        "a_booking_appears_held_then_confirmed_on_the_dashboard",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("booking.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "Chez Rust",
            json!([
                {"id": "t1", "label": "T1", "min_party": 1, "max_party": 2, "area": "window"},
                {"id": "t2", "label": "T2", "min_party": 2, "max_party": 4, "area": "main"},
                {"id": "t3", "label": "T3", "min_party": 4, "max_party": 8, "area": "terrace"},
            ]),
        ))
        .await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;
    until(SECS(15), "one timeline row per table", || async {
        let n = staff
            .js(
                "return document.querySelectorAll('[data-testid=table]').length;",
                vec![],
            )
            .await;
        (n == 3).then_some(())
    })
    .await;
    let url = staff.c.current_url().await.unwrap().to_string();
    assert!(
        !url.contains(&staff_token),
        "the token stays out of the URL: {url}"
    );
    assert!(url.contains(&rid) && url.contains(&date), "{url}");
    let kept = staff
        .js("return sessionStorage.getItem('tablecast.staff');", vec![])
        .await;
    assert_eq!(kept.as_str(), Some(staff_token.as_str()));

    let diner = driver.browser(1100, 900).await;
    diner.open_diner(&server, &rid, &date).await;
    diner
        .click(r#"[data-testid=slot][data-time="19:30"]"#)
        .await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;

    let block = r#"[data-table-id="t1"] [data-testid=reservation]"#;
    staff.wait_attr(block, "data-status", "held", SECS(2)).await;
    let id = staff.attr(block, "data-reservation-id").await.unwrap();
    let block = format!(r#"[data-testid=reservation][data-reservation-id="{id}"]"#);

    diner
        .type_into("[data-testid=guest-name]", "Ada Lovelace")
        .await;
    diner
        .type_into("[data-testid=guest-email]", "ada@example.com")
        .await;
    diner.click("[data-testid=confirm]").await;
    diner
        .wait_visible("[data-testid=confirmation]", SECS(15))
        .await;
    let ticket = diner.text("[data-testid=confirmation]").await.unwrap();
    assert!(
        ticket.contains("19:30") && ticket.contains("Ada Lovelace"),
        "{ticket}"
    );
    staff
        .wait_attr(&block, "data-status", "confirmed", SECS(2))
        .await;
    let label = staff.attr(&block, "aria-label").await.unwrap();
    assert!(label.contains("Ada Lovelace"), "{label}");

    staff.click(&block).await;
    staff.click("[data-testid=action-seat]").await;
    staff
        .wait_attr(&block, "data-status", "seated", SECS(2))
        .await;
    until(SECS(2), "the seat result", || async {
        staff
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("seated"))
    })
    .await;
    staff.click("[data-testid=action-complete]").await;
    staff
        .wait_attr(&block, "data-status", "completed", SECS(2))
        .await;
    until(SECS(3), "the diner's page to follow the server", || async {
        diner
            .text(r#"[data-testid=confirmation] dd[data-field="status"]"#)
            .await
            .filter(|t| t == "Completed")
    })
    .await;

    // A walk-in seats now; a second on the same table fails and shows the problem's title.
    for expect in ["Walk-in seated at T3", "Slot unavailable"] {
        staff
            .click(r#"[data-testid=walk-in][data-table-id="t3"]"#)
            .await;
        staff.click("[data-testid=walk-in-submit]").await;
        until(SECS(3), expect, || async {
            staff
                .text("[data-testid=status]")
                .await
                .filter(|t| t.contains(expect))
        })
        .await;
    }

    diner.finish(&[]).await;
    staff.finish(&["409"]).await;
}

#[tokio::test]
async fn a_diner_cancels_from_the_confirmation_and_the_dashboard_shows_it_at_once() {
    if require(Service::Chromium, "a_diner_cancels_from_the_confirmation").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("cancel.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "Chez Rust",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(2);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff.goto(&server.url("/staff")).await;
    staff
        .type_into("[data-testid=staff-token]", "not-a-token")
        .await;
    staff.click("[data-testid=staff-login]").await;
    until(
        SECS(3),
        "a failed sign-in to show the problem's title",
        || async {
            staff
                .text("#login-error")
                .await
                .filter(|t| t.contains("Unauthorized"))
        },
    )
    .await;
    staff
        .type_into("[data-testid=staff-token]", &staff_token)
        .await;
    staff.click("[data-testid=staff-login]").await;
    staff
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    // Without a date in the URL the dashboard opens today; two days on is two taps.
    staff.wait_visible("[data-testid=table]", SECS(15)).await;
    let today = date_in(0);
    assert_eq!(
        staff
            .js("return document.querySelector('#date').value;", vec![])
            .await,
        json!(today)
    );
    staff.click("#next-day").await;
    staff.click("#next-day").await;
    staff
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(15))
        .await;
    assert_eq!(
        staff
            .js("return document.querySelector('#date').value;", vec![])
            .await,
        json!(date)
    );

    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner.hold_and_confirm("20:00", "Grace Hopper", None).await;
    until(
        SECS(2),
        "the form to ask for an email or a phone",
        || async {
            diner
                .text("#guest-email-error")
                .await
                .filter(|t| t.contains("email or a phone"))
        },
    )
    .await;
    diner
        .type_into("[data-testid=guest-phone]", "+33 1 23 45 67 89")
        .await;
    diner.click("[data-testid=confirm]").await;
    diner
        .wait_visible("[data-testid=confirmation]", SECS(15))
        .await;
    let block = r#"[data-table-id="t1"] [data-testid=reservation]"#;
    staff
        .wait_attr(block, "data-status", "confirmed", SECS(2))
        .await;

    diner.click("[data-testid=cancel]").await;
    diner.click("[data-testid=cancel]").await; // the second press confirms
    until(
        SECS(3),
        "the diner's page to say it is cancelled",
        || async {
            diner
                .text(r#"[data-testid=confirmation] dd[data-field="status"]"#)
                .await
                .filter(|t| t == "Cancelled")
        },
    )
    .await;
    staff
        .wait_attr(block, "data-status", "cancelled", SECS(2))
        .await;
    diner.click("[data-testid=book-again]").await;
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="20:00"]"#,
            "data-available",
            "1",
            SECS(2),
        )
        .await;

    diner.finish(&[]).await;
    staff.finish(&["401"]).await;
}

#[tokio::test]
async fn a_table_added_while_the_page_is_open_offers_its_party_sizes_at_once() {
    if require(Service::Chromium, "a_table_added_while_the_page_is_open").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("grows.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "La Croissance",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(2);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(&server, &rid, &date).await;
    let sizes = || async {
        diner
            .js(
                "return document.getElementById('party').options.length;",
                vec![],
            )
            .await
            .as_u64()
    };
    // The restaurant's party sizes (the pill may read live before the page has them).
    until(SECS(10), "the party sizes of the one table", || async {
        (sizes().await == Some(2)).then_some(())
    })
    .await;

    // Staff add a table for six: the page's party sizes follow, without a reload.
    let (status, _) = server
        .send(
            reqwest::Method::PUT,
            &format!("/v1/restaurants/{rid}/tables/t6"),
            Some(&staff_token),
            Some(json!({"max_party": 6, "label": "T6"})),
        )
        .await;
    assert_eq!(status, 201, "a new table");
    until(SECS(5), "the party sizes of the new table", || async {
        (sizes().await == Some(6)).then_some(())
    })
    .await;
    assert_eq!(
        diner
            .js("return document.getElementById('party').value;", vec![])
            .await,
        json!("2"),
        "the party chosen stays"
    );
    diner.finish(&[]).await;
}

/// The confirmed booking on screen is read again now and then; while it is unchanged the page
/// stays as it is: the focus stays where the diner put it and an armed Cancel stays armed.
#[tokio::test]
async fn reading_an_unchanged_booking_again_leaves_the_page_as_the_diner_left_it() {
    if require(
        Service::Chromium,
        "reading_an_unchanged_booking_again_leaves_the_page_as_the_diner_left_it",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("recheck.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Calme",
            json!([{"id": "t1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    // The booking is read again every 300 ms here (15 s in production); the reads are counted.
    diner
        .before_each_page(
            r#"globalThis.tablecastBookingRecheckMs = 300;
               globalThis.bookingReads = 0;
               const real = window.fetch;
               window.fetch = (url, init) => {
                 if (/\/v1\/reservations\/[^/?]+$/.test(String(url)) && init?.method === "GET") {
                   globalThis.bookingReads += 1;
                 }
                 return real(url, init);
               };"#,
        )
        .await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner
        .hold_and_confirm("19:30", "Ada Lovelace", Some("ada@example.com"))
        .await;
    diner
        .wait_visible("[data-testid=confirmation]", SECS(15))
        .await;
    diner.click("[data-testid=cancel]").await;
    assert_eq!(
        diner.text("[data-testid=cancel]").await.as_deref(),
        Some("Yes, cancel it")
    );
    let reads = |v: serde_json::Value| v.as_u64().unwrap_or(0);
    let before = reads(diner.js("return globalThis.bookingReads;", vec![]).await);
    until(SECS(10), "three more reads of the booking", || async {
        (reads(diner.js("return globalThis.bookingReads;", vec![]).await) >= before + 3)
            .then_some(())
    })
    .await;
    assert_eq!(
        diner.text("[data-testid=cancel]").await.as_deref(),
        Some("Yes, cancel it"),
        "still armed"
    );
    assert_eq!(
        diner
            .js(
                "return document.activeElement?.dataset?.testid || null;",
                vec![]
            )
            .await,
        json!("cancel"),
        "the focus stayed on Cancel"
    );
    diner.finish(&[]).await;
}

/// A date in the link that does not exist (30 February) opens today, as any date the page cannot
/// use does; it used to be read as 2 March, with an empty date field and an error.
#[tokio::test]
async fn a_link_to_a_date_that_does_not_exist_opens_today() {
    let Some(scene) = scene(
        "a_link_to_a_date_that_does_not_exist",
        paris_restaurant("Le Calendrier", json!([{"id": "t1", "max_party": 2}])),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let year = &date_in(400)[..4];
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={year}-02-30&party=2")))
        .await;
    let today = date_in_zone("Europe/Paris", 0);
    until(SECS(10), "the date field to show today", || async {
        let shown = diner
            .js("return document.querySelector('#date').value;", vec![])
            .await;
        (shown.as_str() == Some(today.as_str())).then_some(())
    })
    .await;
    diner.finish(&[]).await;
}
