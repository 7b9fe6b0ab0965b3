//! A keyboard user keeps their place while the page changes under them: the staff panel's action,
//! the manage page's buttons and a diner's time keep (or hand on) the focus across live updates.
use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The focused element: its `data-testid` (or tag name), and its reservation id or time.
async fn focused(b: &Browser) -> Value {
    b.js(
        "const a = document.activeElement; \
         return [a.dataset.testid || a.tagName, a.dataset.reservationId || a.dataset.time || null];",
        vec![],
    )
    .await
}

/// Two tables for parties of up to two.
fn two_tables() -> Value {
    json!([{"id": "t1", "label": "T1", "max_party": 2}, {"id": "t2", "label": "T2", "max_party": 2}])
}

/// A booking of `table` at `time` on `date`, held and confirmed for Ada: its id.
async fn booked(server: &Server, rid: &str, date: &str, time: &str, table: &str) -> String {
    let held = server.hold(rid, date, time, 2, Some(table)).await;
    server.confirm(&held, "Ada").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Focuses `css` and keeps that element as `globalThis.before`.
async fn focus(b: &Browser, css: &str) {
    b.js(
        "globalThis.before = document.querySelector(arguments[0]); globalThis.before.focus();",
        vec![Value::from(css)],
    )
    .await;
}

/// Waits until the element focused by `focus` has been drawn again (left the page).
async fn redrawn(b: &Browser, what: &str) {
    until(SECS(5), what, || async {
        let gone = b.js("return !globalThis.before.isConnected;", vec![]).await;
        gone.as_bool().unwrap().then_some(())
    })
    .await;
}

#[tokio::test]
async fn staff_keep_the_focus_on_a_panel_action_across_a_live_update_and_escape_returns_to_the_block(
) {
    let Some(scene) = scene(
        "staff_keep_the_focus_on_a_panel_action",
        paris_restaurant("Le Clavier", two_tables()),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let staff_token = &scene.staff;
    let date = date_in(1);
    let id = &booked(server, rid, &date, "19:00", "t1").await;

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff.sign_in_staff(server, rid, &date, staff_token).await;
    let block = format!(r#"[data-testid=reservation][data-reservation-id="{id}"]"#);
    staff.click(&block).await;
    staff
        .wait_visible("[data-testid=action-seat]", SECS(5))
        .await;
    focus(&staff, "[data-testid=action-seat]").await;
    // Another diner's hold redraws the floor, the panel with it.
    server.hold(rid, &date, "20:00", 2, Some("t2")).await;
    redrawn(&staff, "the panel drawn again after the hold").await;
    assert_eq!(focused(&staff).await, json!(["action-seat", null]));
    // Escape closes the panel and goes back to the booking's block (drawn again meanwhile).
    staff
        .js(
            "document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));",
            vec![],
        )
        .await;
    assert_eq!(focused(&staff).await, json!(["reservation", id]));
    // Moving to the next day with the panel open keeps the focus on the day button.
    staff.click(&block).await;
    staff
        .wait_visible("[data-testid=action-seat]", SECS(5))
        .await;
    server.hold(rid, &date, "18:00", 2, Some("t2")).await;
    redrawn(&staff, "the panel drawn again after the second hold").await;
    staff
        .js(
            "const b = document.querySelector('#next-day'); b.focus(); b.click();",
            vec![],
        )
        .await;
    let day = staff.js("return document.activeElement.id;", vec![]).await;
    assert_eq!(day, json!("next-day"));
    staff.finish(&[]).await;
}

#[tokio::test]
async fn a_panel_action_taken_from_the_keyboard_hands_the_focus_to_the_next_action() {
    let Some(scene) = scene(
        "a_panel_action_taken_from_the_keyboard",
        paris_restaurant("La Touche", two_tables()),
    )
    .await
    else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let date = date_in(1);
    let id = booked(server, rid, &date, "19:00", "t1").await;
    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff.sign_in_staff(server, rid, &date, &scene.staff).await;
    staff
        .click(&format!(
            r#"[data-testid=reservation][data-reservation-id="{id}"]"#
        ))
        .await;
    staff
        .wait_visible("[data-testid=action-seat]", SECS(5))
        .await;
    // Seat, as Enter on the focused button does: while it is on its way the button keeps the
    // focus, and once the booking is seated the focus is on Complete, not on the page.
    staff
        .js(
            "const b = document.querySelector('[data-testid=action-seat]'); b.focus(); b.click();",
            vec![],
        )
        .await;
    until(SECS(5), "the focus on Complete once seated", || async {
        (focused(&staff).await == json!(["action-complete", null])).then_some(())
    })
    .await;
    staff.finish(&[]).await;
}

#[tokio::test]
async fn a_focused_time_that_someone_else_takes_hands_the_focus_to_its_notify_me() {
    let Some(scene) = scene(
        "a_focused_time_that_someone_else_takes",
        paris_restaurant(
            "La Touche",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(server, rid, &date).await;
    let slot = r#"[data-testid=slot][data-time="20:00"]"#;
    focus(&diner, slot).await;
    server.hold(rid, &date, "20:00", 2, None).await;
    diner.wait_attr(slot, "data-available", "0", SECS(5)).await;
    assert_eq!(focused(&diner).await, json!(["notify", "20:00"]));
    diner.finish(&[]).await;
}

#[tokio::test]
async fn the_manage_pages_calendar_button_keeps_the_focus_when_others_book_that_date() {
    let Some(scene) = scene(
        "the_manage_pages_calendar_button_keeps",
        paris_restaurant("Le Lien", two_tables()),
    )
    .await
    else {
        return;
    };
    let server = &scene.server;
    let rid = &scene.rid;
    let date = date_in(1);
    let held = server.hold(rid, &date, "19:00", 2, Some("t1")).await;
    let booked = server.confirm(&held, "Ada").await;

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!(
            "/reservation/{}#t={}",
            booked["id"].as_str().unwrap(),
            held["token"].as_str().unwrap()
        )))
        .await;
    diner
        .wait_visible("[data-testid=add-to-calendar]", SECS(10))
        .await;
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    focus(&diner, "[data-testid=add-to-calendar]").await;
    server.hold(rid, &date, "20:00", 2, Some("t2")).await;
    redrawn(&diner, "the page drawn again after the hold").await;
    assert_eq!(focused(&diner).await, json!(["add-to-calendar", null]));
    diner.finish(&[]).await;
}

#[tokio::test]
async fn an_action_on_its_way_blocks_only_its_own_booking() {
    let Some(scene) = scene(
        "an_action_on_its_way_blocks_only_its_own_booking",
        paris_restaurant("Le Guichet", two_tables()),
    )
    .await
    else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let date = date_in(1);
    let ids = [
        booked(server, rid, &date, "19:00", "t1").await,
        booked(server, rid, &date, "20:00", "t2").await,
    ];
    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff.before_each_page(DELAYABLE_FETCH).await;
    staff.sign_in_staff(server, rid, &date, &scene.staff).await;
    let block = |id: &str| format!(r#"[data-testid=reservation][data-reservation-id="{id}"]"#);
    // Seat the first while its request is held back; close its panel, seat the second.
    staff.js("globalThis.fetchDelayMs = 2000;", vec![]).await;
    staff.click(&block(&ids[0])).await;
    staff.click("[data-testid=action-seat]").await;
    staff
        .js(
            "document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));",
            vec![],
        )
        .await;
    staff.click(&block(&ids[1])).await;
    staff
        .wait_visible("[data-testid=action-seat]", SECS(5))
        .await;
    staff.click("[data-testid=action-seat]").await;
    until(SECS(10), "both bookings seated", || async {
        let list = reservations_of(server, rid, &scene.staff, &date).await;
        list.iter().all(|r| r["status"] == "seated").then_some(())
    })
    .await;
    staff.finish(&[]).await;
}
