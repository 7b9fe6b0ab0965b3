//! Combinations and pacing on the staff floor: a combined booking shows as one block on each of
//! its tables' rows, the pacing meter fills live as a diner books, a pacing refusal reads as a
//! full kitchen, and staff edit combinations and pacing with the server's errors shown.
use crate::harness::*;
use chrono::Datelike;
use serde_json::{json, Value};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The pacing meter's cell of `window` on the staff page: (covers, parties).
async fn meter(staff: &Browser, window: &str) -> Option<(String, String)> {
    let css = format!(r#"[data-testid=pacing-window][data-window="{window}"]"#);
    Some((
        staff.attr(&css, "data-covers").await?,
        staff.attr(&css, "data-parties").await?,
    ))
}

async fn wait_meter(staff: &Browser, window: &str, covers: &str, parties: &str) {
    until(
        SECS(3),
        &format!("the {window} pacing cell to read {covers} covers, {parties} parties"),
        || async {
            (meter(staff, window).await == Some((covers.into(), parties.into()))).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn staff_see_a_combined_booking_on_both_tables_and_the_pacing_meter_fill_as_a_diner_books() {
    if require(
        Service::Chromium,
        "staff_see_a_combined_booking_on_both_tables",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("floor.db"), 0);
    let mut body = paris_restaurant(
        "Les Tables Jointes",
        json!([
            {"id": "t1", "label": "T1", "max_party": 2},
            {"id": "t3", "label": "T3", "max_party": 4},
            {"id": "t4", "label": "T4", "max_party": 4},
            {"id": "t5", "label": "T5", "max_party": 4},
        ]),
    );
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 8}]);
    body["pacing"] = json!({"window_minutes": 15, "max_covers": 8, "max_parties": null});
    let (rid, staff_token) = server.restaurant(body).await;
    let date = date_in(1);

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;
    // Pacing is set: the meter shows the evening's windows, empty.
    staff.wait_visible("[data-testid=pacing]", SECS(15)).await;
    wait_meter(&staff, "19:00", "0", "0").await;
    let summary = staff.text("[data-testid=pacing-summary]").await.unwrap();
    assert!(
        summary.contains("8 covers") && summary.contains("15 min"),
        "{summary}"
    );

    // A party of 6 on the combination: one booking, drawn on T3's row and on T4's.
    let held = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(json!({"date": date, "time": "19:00", "party_size": 6, "combination_id": "c34"})),
        )
        .await;
    assert_eq!(held.0, 201, "{}", held.1);
    assert_eq!(held.1["table_ids"], json!(["t3", "t4"]));
    let id = held.1["id"].as_str().unwrap().to_owned();
    let on = |table: &str| {
        format!(
            r#"[data-testid=table][data-table-id="{table}"] [data-testid=reservation][data-reservation-id="{id}"]"#
        )
    };
    staff
        .wait_attr(&on("t3"), "data-status", "held", SECS(2))
        .await;
    staff
        .wait_attr(&on("t4"), "data-status", "held", SECS(2))
        .await;
    assert_eq!(
        staff
            .attr(&on("t3"), "data-combination-id")
            .await
            .as_deref(),
        Some("c34")
    );
    assert_eq!(
        staff
            .attr(&on("t4"), "data-combination-id")
            .await
            .as_deref(),
        Some("c34")
    );
    for t in ["t3", "t4"] {
        let marker = staff
            .text(&format!("{} [data-testid=combined-marker]", on(t)))
            .await
            .unwrap_or_default();
        assert!(marker.contains("T3 + T4"), "{t}: {marker}");
    }
    // Rows t3 and t4 are neighbours: the two copies join into one block across them.
    let class3 = staff.attr(&on("t3"), "class").await.unwrap();
    let class4 = staff.attr(&on("t4"), "class").await.unwrap();
    assert!(
        class3.contains("join-down") && class4.contains("join-up"),
        "{class3} / {class4}"
    );
    // Read out and counted once: T4's copy is hidden from assistive tech, the summary says 1 held.
    assert_eq!(
        staff.attr(&on("t4"), "aria-hidden").await.as_deref(),
        Some("true")
    );
    assert_eq!(staff.attr(&on("t3"), "aria-hidden").await, None);
    assert_eq!(staff.attr(&on("t3"), "data-copy").await, None);
    assert_eq!(
        staff.attr(&on("t4"), "data-copy").await.as_deref(),
        Some("true")
    );
    let label = staff.attr(&on("t3"), "aria-label").await.unwrap();
    assert!(label.contains("T3 + T4 combined"), "{label}");
    let held_count = staff.text(".stat-held .stat-value").await.unwrap();
    assert_eq!(held_count, "1");
    assert!(staff
        .js("return document.querySelectorAll('[data-table-id=t1] [data-testid=reservation], [data-table-id=t5] [data-testid=reservation]').length;", vec![])
        .await
        == json!(0));
    // The 19:00 window counts the party of 6.
    wait_meter(&staff, "19:00", "6", "1").await;

    // Clicking T4's copy opens the one booking, with both tables named.
    staff.click(&on("t4")).await;
    until(SECS(2), "the panel to name both tables", || async {
        staff
            .text("#panel-title")
            .await
            .filter(|t| t.starts_with("T3 + T4"))
    })
    .await;
    staff.click("#panel-close").await;

    // A diner can pick a party up to the combination's 8.
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(&server, &rid, &date).await;
    // The party sizes fill in once the restaurant is read, which may be after the socket is live.
    let top = until(SECS(15), "the party sizes to fill in", || async {
        let top = diner
            .js("const o = document.querySelectorAll('#party option'); return o.length ? Number(o[o.length - 1].value) : null;", vec![])
            .await;
        (!top.is_null()).then_some(top)
    })
    .await;
    assert_eq!(top, json!(8));

    // 19:00 has 2 covers left: a party of 2 books it in the browser, and the meter fills live.
    let slot = r#"[data-testid=slot][data-time="19:00"]"#;
    diner.wait_attr(slot, "data-available", "2", SECS(15)).await;
    diner.click(slot).await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
    wait_meter(&staff, "19:00", "8", "2").await;
    // The diner's table is a single one: no combination marker on it.
    let single = r#"[data-testid=table][data-table-id="t1"] [data-testid=reservation]"#;
    staff
        .wait_attr(single, "data-status", "held", SECS(2))
        .await;
    assert_eq!(staff.attr(single, "data-combination-id").await, None);
    assert!(
        !staff
            .visible(&format!("{single} [data-testid=combined-marker]"))
            .await
    );
    let full = staff
        .attr(
            r#"[data-testid=pacing-window][data-window="19:00"]"#,
            "class",
        )
        .await
        .unwrap();
    assert!(full.contains("pace-full"), "{full}");
    let cell_label = staff
        .attr(
            r#"[data-testid=pacing-window][data-window="19:00"]"#,
            "aria-label",
        )
        .await
        .unwrap();
    assert!(
        cell_label.contains("8 of 8 covers") && cell_label.contains("full"),
        "{cell_label}"
    );

    staff.screenshot("staff-combined-and-pacing.png").await;

    // The window is full: T1 and T5 are free at 19:00, yet a party of 2 is refused by pacing.
    let avail: Value = server.availability(&rid, &date, 2).await;
    let at19 = avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == "19:00")
        .unwrap()
        .clone();
    assert_eq!(at19["available_tables"], 0, "{at19}");
    assert_eq!(at19["covers_left"], 0, "{at19}");

    // A second diner whose page still offers 19:00 taps it (as if the tap beat the update).
    let late = driver.browser(1100, 900).await;
    late.goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=2")))
        .await;
    late.wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    late.wait_attr(slot, "data-available", "0", SECS(15)).await;
    assert!(
        late.attr(slot, "disabled").await.is_some(),
        "a full window reads as unavailable"
    );
    late.js(
        "document.querySelector(arguments[0]).disabled = false;",
        vec![json!(slot)],
    )
    .await;
    late.click(slot).await;
    until(
        SECS(3),
        "the diner to be told the kitchen is full",
        || async {
            late.text("[data-testid=status]")
                .await
                .filter(|t| t.contains("kitchen is full at 19:00"))
        },
    )
    .await;

    diner.finish(&[]).await;
    late.finish(&["409"]).await;
    staff.finish(&[]).await;
}

#[tokio::test]
async fn staff_edit_combinations_and_pacing_and_see_the_servers_errors() {
    if require(Service::Chromium, "staff_edit_combinations_and_pacing").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("settings.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "Le Réglage",
            json!([
                {"id": "t1", "label": "T1", "max_party": 4},
                {"id": "t2", "label": "T2", "max_party": 4},
                {"id": "t3", "label": "T3", "max_party": 2},
            ]),
        ))
        .await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;
    assert!(
        !staff.visible("[data-testid=pacing]").await,
        "no pacing, no meter"
    );

    // A combination of one table is refused; the server's error shows in the form.
    staff.click("[data-testid=settings]").await;
    staff.click("[data-testid=combo-add]").await;
    staff.type_into("[data-testid=combo-id]", "c12").await;
    staff
        .click(r#"[data-testid=combo-row] [data-testid=combo-table][value="t1"]"#)
        .await;
    staff.type_into("[data-testid=combo-min]", "5").await;
    staff.type_into("[data-testid=combo-max]", "8").await;
    staff.click("[data-testid=settings-save]").await;
    until(SECS(3), "the validation error in the form", || async {
        let shown = staff.visible("[data-testid=settings-errors]").await;
        let text = staff.text("[data-testid=settings-errors]").await?;
        (shown && text.contains("Combination 1")).then_some(text)
    })
    .await;
    let status = staff.text("[data-testid=status]").await.unwrap();
    assert!(status.contains("Settings not saved"), "{status}");
    staff.screenshot("staff-settings-error.png").await;
    let doc = server.restaurant_doc(&rid).await;
    assert_eq!(doc["combinations"], json!([]), "nothing changed: {doc}");

    // Join T2 too and pace 10 covers a quarter-hour: saved, and the meter appears. A slip of
    // the finger first (`10e`, which the browser cannot read and reports as empty) is an
    // error, not "no limit".
    staff
        .click(r#"[data-testid=combo-row] [data-testid=combo-table][value="t2"]"#)
        .await;
    staff.click("[data-testid=pacing-on]").await;
    staff
        .type_into("[data-testid=pacing-max-covers]", "10e")
        .await;
    staff.click("[data-testid=settings-save]").await;
    until(
        SECS(3),
        "the unreadable number refused in the form",
        || async {
            let text = staff.text("[data-testid=settings-errors]").await?;
            text.contains("Pacing, max covers: must be a whole number")
                .then_some(text)
        },
    )
    .await;
    let doc = server.restaurant_doc(&rid).await;
    assert_eq!(doc["pacing"], Value::Null, "nothing saved: {doc}");
    staff
        .type_into("[data-testid=pacing-max-covers]", "10")
        .await;
    let doc = save_settings(&staff, &server, &rid).await;
    assert_eq!(
        doc["combinations"],
        json!([{"id": "c12", "tables": ["t1", "t2"], "min_party": 5, "max_party": 8}])
    );
    assert_eq!(doc["pacing"]["max_covers"], 10);
    assert_eq!(doc["pacing"]["window_minutes"], 15);
    staff.wait_visible("[data-testid=pacing]", SECS(3)).await;
    let summary = staff.text("[data-testid=pacing-summary]").await.unwrap();
    assert!(summary.contains("10 covers"), "{summary}");
    staff.finish(&["422"]).await;
}

#[tokio::test]
async fn the_pacing_form_offers_the_windows_of_a_12_minute_grid_and_keeps_the_stored_one() {
    if require(Service::Chromium, "the_pacing_form_offers_the_windows").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("windows.db"), 0);
    let mut body = paris_restaurant(
        "Douze",
        json!([{"id": "t1", "label": "T1", "max_party": 4}]),
    );
    body["slot_minutes"] = json!(12);
    body["pacing"] = json!({"window_minutes": 12, "max_covers": 6, "max_parties": null});
    let (rid, staff_token) = server.restaurant(body).await;
    let date = date_in(1);
    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;

    // The divisors of 60 that are multiples of 12, the stored one selected.
    staff.click("[data-testid=settings]").await;
    staff
        .wait_visible("[data-testid=pacing-window-minutes]", SECS(3))
        .await;
    let offered = staff
        .js(
            "const s = document.querySelector('[data-testid=pacing-window-minutes]');
             return { options: [...s.options].map(o => o.value), selected: s.value };",
            vec![],
        )
        .await;
    assert_eq!(
        offered,
        json!({"options": ["12", "60"], "selected": "12"}),
        "the window select"
    );

    // Saved unchanged: the window stays 12 minutes.
    let doc = save_settings(&staff, &server, &rid).await;
    assert_eq!(doc["pacing"]["window_minutes"], 12, "{doc}");
    assert_eq!(doc["pacing"]["max_covers"], 6, "{doc}");
    staff.finish(&[]).await;
}

/// Presses Save in the settings form, waits for "Settings saved", and reads the restaurant back.
async fn save_settings(staff: &Browser, server: &Server, rid: &str) -> Value {
    staff.click("[data-testid=settings-save]").await;
    until(SECS(3), "the settings to save", || async {
        staff
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("Settings saved"))
    })
    .await;
    server.restaurant_doc(rid).await
}

/// On Paris's spring-forward night a 90-minute hold at 01:00 ends at 03:30 on the wall clock
/// (02:00 is skipped): the dashboard says so, where it used to add 90 wall minutes (02:30).
#[tokio::test]
async fn a_turn_across_the_spring_forward_hour_ends_at_its_wall_clock_end_on_the_floor() {
    if require(
        Service::Chromium,
        "a_turn_across_the_spring_forward_hour_ends_at_its_wall_clock_end_on_the_floor",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("dst.db"), 0);
    let mut body = paris_restaurant(
        "Nuit Blanche",
        json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
    );
    body["booking_horizon_days"] = json!(730);
    body["hours"] = json!([{"days": ["sun"], "open": "00:00", "close": "05:00"}]);
    body["turn_minutes"] = json!([{"max_party": null, "minutes": 90}]);
    let (rid, token) = server.restaurant(body).await;
    // The last Sunday of March in a year ahead: Paris skips 02:00–03:00.
    let date = (1..=2)
        .map(|y| chrono::Utc::now().date_naive().year() + y)
        .map(|y| {
            let last = chrono::NaiveDate::from_ymd_opt(y, 3, 31).unwrap();
            last - chrono::Duration::days(i64::from(last.weekday().num_days_from_sunday()))
        })
        .find(|d| *d > chrono::Utc::now().date_naive() + chrono::Duration::days(1))
        .unwrap()
        .to_string();
    let held = server.hold(&rid, &date, "01:00", 2, Some("t1")).await;
    assert!(
        held["end"].as_str().unwrap().ends_with("01:30:00Z"),
        "{held}"
    );

    let mut driver = Driver::start().await;
    let staff = driver.browser(1200, 800).await;
    staff.sign_in_staff(&server, &rid, &date, &token).await;
    let block = r#"[data-table-id="t1"] [data-testid=reservation]"#;
    staff
        .wait_attr(block, "data-status", "held", SECS(10))
        .await;
    let label = staff.attr(block, "aria-label").await.unwrap();
    assert!(label.contains("01:00 to 03:30"), "{label}");
    staff.finish(&[]).await;
}

/// A walk-in of a party that needs a combination takes the next one that fits when the
/// smallest is busy now.
#[tokio::test]
async fn a_walk_in_takes_the_next_combination_when_the_smallest_is_busy() {
    if require(
        Service::Chromium,
        "a_walk_in_takes_the_next_combination_when_the_smallest_is_busy",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("walk_in_combo.db"), 0);
    let mut body = paris_restaurant(
        "Les Tables Jointes",
        json!([
            {"id": "t1", "label": "T1", "max_party": 4},
            {"id": "t2", "label": "T2", "max_party": 4},
            {"id": "t3", "label": "T3", "max_party": 4},
        ]),
    );
    body["combinations"] = json!([
        {"id": "c12", "tables": ["t1", "t2"], "min_party": 5, "max_party": 8},
        {"id": "c13", "tables": ["t1", "t3"], "min_party": 5, "max_party": 8},
    ]);
    let (rid, staff_token) = server.restaurant(body).await;
    // T2 is taken now: c12, the first that fits a party of 6, is busy.
    let (code, v) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/walk-ins"),
            Some(&staff_token),
            Some(json!({"party_size": 2, "table_id": "t2"})),
        )
        .await;
    assert_eq!(code, 201, "{v}");
    let today = v["date"].as_str().unwrap().to_owned();

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(&server, &rid, &today, &staff_token)
        .await;
    staff
        .click(r#"[data-testid=walk-in][data-table-id="t1"]"#)
        .await;
    staff
        .js(
            "const s = document.querySelector('#walk-in-party'); s.value = '6'; return s.value;",
            vec![],
        )
        .await;
    staff.click("[data-testid=walk-in-submit]").await;
    let said = until(SECS(5), "the walk-in to be answered", || async {
        staff
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("Walk-in"))
    })
    .await;
    assert!(said.contains("Walk-in seated at T1 + T3"), "{said}");
    // The busy combination was asked first and refused.
    staff.finish(&["status of 409"]).await;
}

/// A past day is shown from the staff list, not live. An action on one of its bookings shows
/// at once all the same (the list is read again; the booking kept its old status and buttons,
/// and a second click was refused), and the day draws no pacing meter or waitlist, which it
/// cannot count (both were drawn empty). The booking moves to yesterday in the store's file.
#[tokio::test]
async fn a_past_day_shows_an_action_on_it_and_no_pacing_or_waitlist_it_cannot_count() {
    let mut body = paris_restaurant("Hier", json!([{"id": "t1", "max_party": 2}]));
    body["pacing"] = json!({"window_minutes": 15, "max_covers": 8, "max_parties": null});
    let Some(scene) = scene("a_past_day_shows_an_action_on_it", body).await else {
        return;
    };
    let server = &scene.server;
    let held = server.hold(&scene.rid, &date_in(2), "19:00", 2, None).await;
    server.confirm(&held, "Ada Lovelace").await;
    let id = held["id"].as_str().unwrap();
    server.move_back(id, 3).await;

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    staff
        .sign_in_staff(server, &scene.rid, &date_in(-1), &scene.staff)
        .await;
    let block = format!(r#"[data-testid=reservation][data-reservation-id="{id}"]"#);
    staff
        .wait_attr(&block, "data-status", "confirmed", SECS(15))
        .await;
    assert!(!staff.visible("[data-testid=pacing]").await, "no meter");
    assert!(!staff.visible("[data-testid=queue]").await, "no waitlist");
    staff.click(&block).await;
    staff.click("[data-testid=action-seat]").await;
    staff
        .wait_attr(&block, "data-status", "seated", SECS(5))
        .await;
    let listed = reservations_of(server, &scene.rid, &scene.staff, &date_in(-1)).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "seated", "{listed:?}");
    staff.finish(&[]).await;
}

/// Staff press Seat now again after the walk-in's answer was lost on the way (the server had
/// seated the party): the same `Idempotency-Key` goes again, the first answer comes back, and
/// one walk-in is seated. With a new key the table it had just taken was busy (409).
#[tokio::test]
async fn a_walk_in_sent_again_after_its_answer_was_lost_seats_the_party_once() {
    let body = paris_restaurant(
        "Encore",
        json!([{"id": "t1", "label": "T1", "max_party": 4}]),
    );
    let Some(scene) = scene("a_walk_in_sent_again_after_its_answer_was_lost", body).await else {
        return;
    };
    let server = &scene.server;
    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 900).await;
    // The first walk-in's answer is lost after the server answered it.
    staff
        .before_each_page(
            "const realFetch = window.fetch.bind(window); let lost = false; \
             window.fetch = async (url, init) => { const res = await realFetch(url, init); \
               if (!lost && String(url).endsWith('/walk-ins')) { lost = true; throw new TypeError('lost'); } \
               return res; };",
        )
        .await;
    let today = date_in(0);
    staff
        .sign_in_staff(server, &scene.rid, &today, &scene.staff)
        .await;
    staff
        .click(r#"[data-testid=walk-in][data-table-id="t1"]"#)
        .await;
    staff.click("[data-testid=walk-in-submit]").await;
    let said = until(SECS(5), "the lost answer to be reported", || async {
        staff
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("Walk-in at T1"))
    })
    .await;
    assert!(said.contains("Network error"), "{said}");
    staff.click("[data-testid=walk-in-submit]").await;
    let said = until(SECS(5), "the walk-in to be answered again", || async {
        staff
            .text("[data-testid=status]")
            .await
            .filter(|t| t.contains("Walk-in seated"))
    })
    .await;
    assert!(said.contains("Walk-in seated at T1"), "{said}");
    let mut seated = Vec::new();
    for date in [date_in(0), date_in(1)] {
        seated.extend(reservations_of(server, &scene.rid, &scene.staff, &date).await);
    }
    assert_eq!(seated.len(), 1, "one walk-in: {seated:?}");
    staff.finish(&[]).await;
}
