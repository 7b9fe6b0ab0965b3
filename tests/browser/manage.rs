//! The manage link: a diner books, closes the page, opens the link from the confirmation in a
//! fresh browser and cancels there; the staff dashboard shows the cancellation live.
use crate::harness::*;
use serde_json::json;
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

#[tokio::test]
async fn a_diner_cancels_from_the_manage_link_in_a_fresh_browser_and_staff_see_it_live() {
    if require(Service::Chromium, "a_diner_cancels_from_the_manage_link").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("manage.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "Chez Rust",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ))
        .await;
    let date = date_in(3);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;

    // Book, and take the link the confirmation shows.
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner
        .hold_and_confirm("19:00", "Ada Lovelace", Some("ada@example.com"))
        .await;
    diner
        .wait_visible("[data-testid=manage-link]", SECS(15))
        .await;
    assert!(diner.visible("[data-testid=add-to-calendar]").await);
    let link = diner
        .js(
            "return document.querySelector('[data-testid=manage-link]').value;",
            vec![],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = server.url("/reservation/");
    assert!(
        link.starts_with(&prefix) && link.contains("#t=tc_"),
        "{link}"
    );
    let id = link[prefix.len()..].split('#').next().unwrap().to_owned();
    // The reference the page shows: the random end of the id, by the rule the mail test checks
    // in the mail.
    let reference = id.replace('-', "")[24..].to_uppercase();
    let ticket = diner.text("#ticket").await.unwrap();
    assert!(ticket.contains(&reference), "{reference} not in {ticket}");
    let block = format!(r#"[data-testid=reservation][data-reservation-id="{id}"]"#);
    staff
        .wait_attr(&block, "data-status", "confirmed", SECS(2))
        .await;
    diner.finish(&[]).await;

    // A fresh browser (its own profile: no session storage, no cookies) opens the link.
    let later = driver.browser(1100, 900).await;
    later.goto(&link).await;
    later
        .wait_attr("[data-testid=manage]", "data-status", "confirmed", SECS(15))
        .await;
    let ticket = later.text("[data-testid=ticket]").await.unwrap();
    assert!(
        ticket.contains("19:00") && ticket.contains("Ada Lovelace") && ticket.contains("Chez Rust"),
        "{ticket}"
    );
    // The calendar file the "Add to calendar" button saves, as the page fetches it.
    let ics = later
        .c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const t = new URLSearchParams(location.hash.slice(1)).get('t');
             const id = location.pathname.split('/')[2];
             fetch(`/v1/reservations/${id}/calendar`, {headers: {authorization: `Bearer ${t}`}})
               .then(r => r.text()).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .expect("the calendar fetch runs");
    let ics = ics.as_str().unwrap_or_default();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR") && ics.contains(&format!("UID:{id}@tablecast")),
        "{ics}"
    );
    later.click("[data-testid=cancel]").await;
    later.click("[data-testid=cancel]").await; // the second press confirms
    later
        .wait_attr("[data-testid=manage]", "data-status", "cancelled", SECS(3))
        .await;
    staff
        .wait_attr(&block, "data-status", "cancelled", SECS(2))
        .await;
    assert!(!later.visible("[data-testid=cancel]").await);

    later.finish(&[]).await;
    staff.finish(&[]).await;
}

/// A booking that is over is the restaurant's to record (seated, a no-show), not the diner's to
/// cancel: neither the manage page nor the diner's page offers Cancel for it, while a booking
/// still ahead keeps it on both. The time passes by moving one booking five days back in the
/// store's file.
#[tokio::test]
async fn a_booking_that_is_over_offers_no_cancel_on_the_diners_pages() {
    let tables = json!([{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 2}]);
    let Some(scene) = scene(
        "a_booking_that_is_over_offers_no_cancel",
        paris_restaurant("Passé", tables),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let date = date_in(3);
    let mut booked = Vec::new();
    for table in ["t1", "t2"] {
        let held = server.hold(rid, &date, "19:00", 2, Some(table)).await;
        server.confirm(&held, "Ada Lovelace").await;
        booked.push(held);
    }
    let over = booked[0]["id"].as_str().unwrap();
    server.move_back(over, 5).await;

    let mut driver = Driver::start().await;
    for held in &booked {
        let id = held["id"].as_str().unwrap();
        let token = held["token"].as_str().unwrap();
        let ended = id == over;
        let manage = driver.browser(1100, 900).await;
        manage
            .goto(&server.url(&format!("/reservation/{id}#t={token}")))
            .await;
        manage
            .wait_attr("[data-testid=manage]", "data-status", "confirmed", SECS(15))
            .await;
        assert_eq!(
            manage.visible("[data-testid=cancel]").await,
            !ended,
            "the manage page offers Cancel only for a booking ahead (over: {ended})"
        );
        manage.finish(&[]).await;

        let diner = open_confirmation(&mut driver, server, rid, &date, (id, token), "").await;
        assert_eq!(
            diner.visible("[data-testid=cancel]").await,
            !ended,
            "the diner's page offers Cancel only for a booking ahead (over: {ended})"
        );
        diner.finish(&[]).await;
    }
}

/// A booking whose end comes while the diner's confirmation is open loses its Cancel there at
/// the page's next read of it (it stayed, and cancelled a finished booking). The end comes by
/// moving the booking five days back in the store's file.
#[tokio::test]
async fn a_booking_that_ends_while_its_confirmation_is_open_loses_its_cancel() {
    let Some(scene) = scene(
        "a_booking_that_ends_while_its_confirmation_is_open",
        paris_restaurant("Fini", json!([{"id": "t1", "max_party": 2}])),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let date = date_in(3);
    let held = server.hold(rid, &date, "19:00", 2, None).await;
    server.confirm(&held, "Ada Lovelace").await;
    let id = held["id"].as_str().unwrap();
    let token = held["token"].as_str().unwrap();

    let mut driver = Driver::start().await;
    // The booking is read again every second here (15 s in production).
    let first = "globalThis.tablecastBookingRecheckMs = 1000;";
    let diner = open_confirmation(&mut driver, server, rid, &date, (id, token), first).await;
    assert!(diner.visible("[data-testid=cancel]").await, "ahead: Cancel");
    server.move_back(id, 5).await;
    until(SECS(5), "Cancel to go once the booking is over", || async {
        (!diner.visible("[data-testid=cancel]").await).then_some(())
    })
    .await;
    diner.finish(&[]).await;
}

/// The diner's page of `rid` on `date` in a new browser, with the booking `(id, token)` in its
/// session as after confirming it (`first`: a script run before the page's own), once it shows
/// the confirmation.
async fn open_confirmation(
    driver: &mut Driver,
    server: &Server,
    rid: &str,
    date: &str,
    (id, token): (&str, &str),
    first: &str,
) -> Browser {
    let diner = driver.browser(1100, 900).await;
    let saved = json!({"id": id, "token": token, "rid": rid}).to_string();
    diner
        .before_each_page(&format!(
            "{first} sessionStorage.setItem('tablecast.booking', {});",
            serde_json::to_string(&saved).unwrap()
        ))
        .await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    diner
        .wait_attr(
            "[data-testid=confirmation]",
            "data-status",
            "confirmed",
            SECS(15),
        )
        .await;
    diner
}
