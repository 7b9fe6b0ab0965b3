//! The waitlist in the browser: two diners wait for a full time, staff free the table, the first
//! sees the offer live (counting down on the server's clock) and confirms it with one tap, the
//! second keeps waiting, and the dashboard's queue follows every step.
use crate::harness::*;
use serde_json::{json, Value};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

fn seconds(countdown: &str) -> u64 {
    let (m, s) = countdown.split_once(':').expect("m:ss");
    m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap()
}

/// Opens the diner app, taps "Notify me" on `time` and joins with the default window.
async fn join(
    diner: &Browser,
    url: &str,
    time: &str,
    (name, email): (&str, &str),
    shot: Option<&str>,
) -> String {
    diner.goto(url).await;
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    let slot = format!(r#"[data-testid=slot][data-time="{time}"]"#);
    diner
        .wait_attr(&slot, "data-available", "0", SECS(15))
        .await;
    assert!(
        diner.attr(&slot, "disabled").await.is_some(),
        "a full time cannot be held"
    );
    if let Some(shot) = shot {
        diner.screenshot(shot).await;
    }
    diner
        .click(&format!(r#"[data-testid=notify][data-time="{time}"]"#))
        .await;
    diner.wait_visible("[data-testid=join]", SECS(3)).await;
    diner.type_into("[data-testid=wait-name]", name).await;
    diner.type_into("[data-testid=wait-email]", email).await;
    diner.click("[data-testid=wait-join]").await;
    diner.wait_visible("[data-testid=waitlist]", SECS(15)).await;
    let saved = diner
        .js(
            "return JSON.parse(sessionStorage.getItem('tablecast.waitlist')).id;",
            vec![],
        )
        .await;
    saved
        .as_str()
        .expect("the entry is kept in the tab")
        .to_owned()
}

async fn wait_title(diner: &Browser, wanted: &str) {
    wait_title_within(diner, wanted, SECS(3)).await;
}

async fn wait_title_within(diner: &Browser, wanted: &str, within: Duration) {
    until(within, &format!("the diner to read {wanted:?}"), || async {
        diner
            .text("[data-testid=wait-title]")
            .await
            .filter(|t| t.contains(wanted))
    })
    .await;
}

fn entry_row(id: &str) -> String {
    format!(r#"[data-testid=queue-entry][data-entry-id="{id}"]"#)
}

#[tokio::test]
async fn two_diners_wait_for_a_full_time_and_the_first_confirms_the_offer_live() {
    if require(Service::Chromium, "two_diners_wait_for_a_full_time").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("waitlist.db"), 0);
    let (rid, staff_token) = server
        .restaurant(paris_restaurant(
            "Le Comptoir",
            json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    // The one table is booked at 19:00 (90 minutes): every start from 18:00 to 20:15 is full.
    let grace = server.hold(&rid, &date, "19:00", 2, None).await;
    server.confirm(&grace, "Grace Hopper").await;
    let grace_id = grace["id"].as_str().unwrap().to_owned();

    let mut driver = Driver::start().await;
    let staff = driver.browser(1400, 1000).await;
    staff
        .sign_in_staff(&server, &rid, &date, &staff_token)
        .await;
    until(SECS(3), "an empty waitlist", || async {
        staff
            .text("[data-testid=queue-summary]")
            .await
            .filter(|t| t.contains("Nobody is waiting"))
    })
    .await;

    let url = server.url(&format!("/?restaurant={rid}&date={date}&party=2"));
    // Ada's clock runs ten minutes fast: her countdown must still follow the server's.
    let ada = driver.browser(1100, 1000).await;
    ada.before_each_page(
        "const realNow = Date.now.bind(Date); Date.now = () => realNow() + 600000;",
    )
    .await;
    let ada_entry = join(
        &ada,
        &url,
        "19:00",
        ("Ada Lovelace", "ada@example.com"),
        Some("diner-notify-me.png"),
    )
    .await;
    // The window defaults to half an hour either side of the full time.
    let window = ada
        .text("[data-testid=wait-meta]")
        .await
        .unwrap_or_default();
    assert!(window.contains("18:30–19:30"), "{window}");
    wait_title(&ada, "1st in line").await;

    let bob = driver.browser(1100, 1000).await;
    let bob_entry = join(&bob, &url, "19:00", ("Bob Noyce", "bob@example.com"), None).await;
    wait_title(&bob, "2nd in line").await;
    bob.screenshot("diner-waitlist.png").await;

    // The dashboard shows both, in queue order.
    staff
        .wait_attr(&entry_row(&bob_entry), "data-status", "waiting", SECS(3))
        .await;
    let order = staff
        .js(
            "return [...document.querySelectorAll('[data-testid=queue-entry]')].map(r => [r.dataset.entryId, r.querySelector('[data-field=position]').textContent, r.querySelector('[data-field=window]').textContent]);",
            vec![],
        )
        .await;
    assert_eq!(
        order,
        json!([
            [ada_entry, "#1", "18:30–19:30"],
            [bob_entry, "#2", "18:30–19:30"]
        ])
    );

    // Staff cancel Grace's booking: the table frees and goes to Ada first.
    staff
        .click(&format!(
            r#"[data-testid=reservation][data-reservation-id="{grace_id}"]"#
        ))
        .await;
    staff.click("[data-testid=action-cancel]").await;
    ada.wait_visible("[data-testid=offer]", SECS(3)).await;
    let title = ada.text("#offer-title").await.unwrap();
    assert!(title.contains("19:00"), "{title}");
    let left = seconds(&ada.text("[data-testid=offer-countdown]").await.unwrap());
    assert!(
        (100..=120).contains(&left),
        "counts down from the server's expires_at despite the skewed clock: {left}s left"
    );
    // Bob still waits, now first in line.
    wait_title(&bob, "1st in line").await;
    assert!(!bob.visible("[data-testid=offer]").await);
    staff
        .wait_attr(&entry_row(&ada_entry), "data-status", "offered", SECS(3))
        .await;
    let offer = staff
        .text(&format!(
            "{} [data-testid=queue-offer]",
            entry_row(&ada_entry)
        ))
        .await
        .unwrap();
    assert!(offer.contains("19:00") && offer.contains("T1"), "{offer}");
    assert!(
        staff
            .visible(&format!("{} .queue-countdown", entry_row(&ada_entry)))
            .await
    );
    ada.screenshot("diner-offer.png").await;
    // The held block says whom it is offered to.
    let block = staff
        .text(r#"[data-testid=reservation][data-status=held] .block-name"#)
        .await;
    assert_eq!(block.as_deref(), Some("Offer: Ada Lovelace"));
    staff.click("#panel-close").await;
    staff.screenshot("staff-waitlist.png").await;
    let bob_pos = staff
        .text(&format!("{} [data-field=position]", entry_row(&bob_entry)))
        .await;
    assert_eq!(bob_pos.as_deref(), Some("#1"));

    // The offer survives a reload of Ada's page.
    ada.c.refresh().await.expect("reload");
    ada.wait_visible("[data-testid=offer]", SECS(15)).await;

    // One tap books it: the confirmation with its manage link, as for any booking.
    ada.click("[data-testid=offer-confirm]").await;
    ada.wait_visible("[data-testid=confirmation]", SECS(15))
        .await;
    let ticket = ada.text("[data-testid=confirmation]").await.unwrap();
    assert!(
        ticket.contains("19:00") && ticket.contains("Ada Lovelace") && ticket.contains("T1"),
        "{ticket}"
    );
    let link = ada
        .js(
            "return document.querySelector('[data-testid=manage-link]').value;",
            vec![],
        )
        .await;
    assert!(
        link.as_str().unwrap_or_default().contains("/reservation/"),
        "{link}"
    );
    staff
        .wait_attr(&entry_row(&ada_entry), "data-status", "booked", SECS(3))
        .await;
    let booked: Value = staff
        .js(
            "return document.querySelector('[data-testid=reservation][data-status=confirmed]')?.getAttribute('aria-label');",
            vec![],
        )
        .await;
    assert!(
        booked.as_str().unwrap_or_default().contains("Ada Lovelace"),
        "{booked}"
    );
    assert_eq!(
        staff
            .attr(&entry_row(&bob_entry), "data-status")
            .await
            .as_deref(),
        Some("waiting")
    );
    wait_title(&bob, "1st in line").await;

    // Bob leaves; the dashboard shows it.
    bob.click("[data-testid=wait-leave]").await;
    until(SECS(3), "Bob to be told he left", || async {
        bob.text("[data-testid=status]")
            .await
            .filter(|t| t.contains("You left the waitlist"))
    })
    .await;
    assert!(bob.visible("[data-testid=slot]").await);
    staff
        .wait_attr(&entry_row(&bob_entry), "data-status", "left", SECS(3))
        .await;

    ada.finish(&[]).await;
    bob.finish(&[]).await;
    staff.finish(&[]).await;
}

#[tokio::test]
async fn a_diner_passes_on_an_offer_and_the_next_in_line_confirms_it_from_the_manage_link() {
    if require(Service::Chromium, "a_diner_passes_on_an_offer").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("waitlist-pass.db"), 0);
    let (rid, _) = server
        .restaurant(paris_restaurant(
            "Le Comptoir",
            json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
        ))
        .await;
    let date = date_in(1);
    // Someone holds the one table at 20:00.
    let hold = server.hold(&rid, &date, "20:00", 2, None).await;

    let mut driver = Driver::start().await;
    let cleo = driver.browser(1100, 1000).await;
    cleo.before_each_page(DELAYABLE_FETCH).await;
    let url = server.url(&format!("/?restaurant={rid}&date={date}&party=2"));
    let cleo_entry = join(
        &cleo,
        &url,
        "20:00",
        ("Cleo Smith", "cleo@example.com"),
        None,
    )
    .await;
    wait_title(&cleo, "1st in line").await;
    // Dan joins over the API (as the email-only diner would).
    let (code, dan) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/waitlist"),
            None,
            Some(
                json!({"date": date, "party_size": 2, "from": "19:45", "to": "20:15",
                        "guest": {"name": "Dan Brown", "email": "dan@example.com"}}),
            ),
        )
        .await;
    assert_eq!(code, 201, "{dan}");
    let dan_token = dan["token"].as_str().unwrap().to_owned();
    let dan_id = dan["id"].as_str().unwrap().to_owned();

    // The hold is let go: Cleo is offered 20:00, and passes.
    let (code, _) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/reservations/{}", hold["id"].as_str().unwrap()),
            hold["token"].as_str(),
            None,
        )
        .await;
    assert_eq!(code, 204);
    cleo.wait_visible("[data-testid=offer]", SECS(3)).await;
    // While the pass is on its way, the offer cannot also be confirmed.
    cleo.js("globalThis.fetchDelayMs = 1000;", vec![]).await;
    cleo.click("[data-testid=offer-pass]").await;
    assert!(cleo.disabled("[data-testid=offer-confirm]").await);
    wait_title(&cleo, "You passed on 20:00").await;
    cleo.js("globalThis.fetchDelayMs = 0;", vec![]).await;
    assert!(!cleo.visible("[data-testid=offer]").await);
    assert!(cleo.visible("[data-testid=wait-rejoin]").await);
    assert_eq!(
        cleo.attr("[data-testid=waitlist]", "data-status")
            .await
            .as_deref(),
        Some("lapsed"),
        "entry {cleo_entry}"
    );

    // Dan is offered the same table; his manage link (the entry's token) opens and confirms it.
    let offered = until(SECS(3), "Dan's offer", || async {
        let (_, e) = server
            .send(
                reqwest::Method::GET,
                &format!("/v1/waitlist/{dan_id}"),
                Some(&dan_token),
                None,
            )
            .await;
        (e["status"] == "offered").then_some(e)
    })
    .await;
    let reservation = offered["offer"]["reservation_id"].as_str().unwrap();
    let dan_page = driver.browser(1000, 900).await;
    dan_page
        .goto(&server.url(&format!("/reservation/{reservation}#t={dan_token}")))
        .await;
    dan_page
        .wait_visible("[data-testid=confirm]", SECS(15))
        .await;
    let left = dan_page
        .text(r#"dd[data-field="left to confirm"]"#)
        .await
        .expect("the offer's countdown");
    assert!(left.starts_with("1:") || left.starts_with("2:"), "{left}");
    dan_page
        .type_into("[data-testid=guest-name]", "Dan Brown")
        .await;
    dan_page.click("[data-testid=confirm]").await;
    until(SECS(3), "the booking confirmed", || async {
        dan_page
            .text("#manage-title")
            .await
            .filter(|t| t == "You're booked")
    })
    .await;
    let (_, e) = server
        .send(
            reqwest::Method::GET,
            &format!("/v1/waitlist/{dan_id}"),
            Some(&dan_token),
            None,
        )
        .await;
    assert_eq!(e["status"], "booked", "{e}");

    cleo.finish(&[]).await;
    dan_page.finish(&[]).await;
}

#[tokio::test]
async fn an_offer_left_unanswered_lapses_on_the_page_and_the_diner_can_join_again() {
    if require(Service::Chromium, "an_offer_left_unanswered_lapses").is_none() {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("waitlist-lapse.db"), 0);
    let mut body = paris_restaurant(
        "Le Comptoir",
        json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
    );
    body["offer_seconds"] = json!(15);
    let (rid, _) = server.restaurant(body).await;
    let date = date_in(1);
    let hold = server.hold(&rid, &date, "19:00", 2, None).await;

    let mut driver = Driver::start().await;
    let eve = driver.browser(1100, 1000).await;
    let url = server.url(&format!("/?restaurant={rid}&date={date}&party=2"));
    join(&eve, &url, "19:00", ("Eve Curie", "eve@example.com"), None).await;
    let (code, _) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/reservations/{}", hold["id"].as_str().unwrap()),
            hold["token"].as_str(),
            None,
        )
        .await;
    assert_eq!(code, 204);
    eve.wait_visible("[data-testid=offer]", SECS(3)).await;
    let left = seconds(&eve.text("[data-testid=offer-countdown]").await.unwrap());
    assert!((10..=15).contains(&left), "{left}s left of 15");
    // Nobody answers: the page says the offer lapsed once the server reads it so.
    wait_title_within(&eve, "lapsed", SECS(25)).await;
    assert!(!eve.visible("[data-testid=offer]").await);
    let said = eve.text("[data-testid=status]").await.unwrap_or_default();
    assert!(said.contains("ran out"), "{said}");
    assert!(!eve.visible("[data-testid=wait-leave]").await);
    // Join again: the form opens with the same window.
    eve.click("[data-testid=wait-rejoin]").await;
    eve.wait_visible("[data-testid=join]", SECS(3)).await;
    let window = eve
        .js(
            "return [document.querySelector('#wait-from').value, document.querySelector('#wait-to').value];",
            vec![],
        )
        .await;
    assert_eq!(window, json!(["18:30", "19:30"]));

    eve.finish(&[]).await;
}

/// Sets the join form's latest time to the last one offered (a window reaching past the full
/// time's turn, where tables are free).
async fn widen_to_the_last_time(diner: &Browser) {
    diner
        .js(
            "const s = document.querySelector('[data-testid=wait-to]'); \
             s.value = s.options[s.options.length - 1].value; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
}

#[tokio::test]
async fn a_free_time_in_the_window_is_said_while_joining_and_while_waiting_and_booked_in_one_tap() {
    let Some(scene) = scene(
        "a_free_time_in_the_window_is_said",
        paris_restaurant(
            "La Place",
            json!([{"id": "t1", "label": "T1", "max_party": 2}]),
        ),
    )
    .await
    else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let date = date_in(1);
    let held = server.hold(rid, &date, "19:00", 2, Some("t1")).await;
    let mut driver = Driver::start().await;

    // Joining: 19:00 frees up while the form is open; one tap books it.
    let joiner = driver.browser(1100, 900).await;
    joiner.open_diner(server, rid, &date).await;
    joiner
        .click(r#"[data-testid=notify][data-time="19:00"]"#)
        .await;
    joiner.wait_visible("[data-testid=join]", SECS(3)).await;
    assert!(!joiner.visible("[data-testid=join-free]").await);
    server.api.release_hold(&held).await;
    let text = until(SECS(5), "the joiner told of a free time", || async {
        joiner
            .text("[data-testid=join-free]")
            .await
            .filter(|t| t.contains("is free now"))
    })
    .await;
    assert!(
        text.starts_with("19:00 is free now"),
        "the time asked for: {text}"
    );
    joiner.click("[data-testid=join-free-book]").await;
    joiner.wait_visible("[data-testid=hold]", SECS(15)).await;
    let hold_text = joiner.text("[data-testid=hold]").await.unwrap();
    assert!(hold_text.contains("19:00"), "{hold_text}");

    // Waiting (19:00 now the joiner's): the window reaches times that are public now, which no
    // offer will be made for.
    let waiter = driver.browser(1100, 900).await;
    waiter.open_diner(server, rid, &date).await;
    waiter
        .wait_attr(
            r#"[data-testid=slot][data-time="19:00"]"#,
            "data-available",
            "0",
            SECS(15),
        )
        .await;
    waiter
        .click(r#"[data-testid=notify][data-time="19:00"]"#)
        .await;
    waiter.wait_visible("[data-testid=join]", SECS(3)).await;
    assert!(
        !waiter.visible("[data-testid=join-free]").await,
        "every start around 19:00 is taken"
    );
    widen_to_the_last_time(&waiter).await;
    waiter
        .wait_visible("[data-testid=join-free]", SECS(3))
        .await;
    waiter.type_into("[data-testid=wait-name]", "Ada").await;
    waiter
        .type_into("[data-testid=wait-email]", "ada@example.com")
        .await;
    waiter.click("[data-testid=wait-join]").await;
    waiter
        .wait_visible("[data-testid=waitlist]", SECS(15))
        .await;
    let said = until(SECS(3), "the free times said while waiting", || async {
        waiter
            .text("[data-testid=wait-free]")
            .await
            .filter(|t| t.contains("free right now"))
    })
    .await;
    assert!(!said.contains("19:00"), "19:00 is still taken: {said}");

    waiter.finish(&[]).await;
    joiner.finish(&[]).await;
}

/// The free-now notice speaks for the party the form was opened for. A settings change that
/// leaves nothing seating four moves the page to a party of two while the form stays open;
/// 19:00 is free for two then, but not for the four the diner asked for, so nothing is said.
#[tokio::test]
async fn the_free_now_notice_is_only_for_the_party_the_form_was_opened_for() {
    let mut body = paris_restaurant(
        "Duo",
        json!([{"id": "t1", "label": "T1", "max_party": 2}, {"id": "t2", "label": "T2", "max_party": 2}]),
    );
    body["combinations"] = json!([{"id": "c12", "tables": ["t1", "t2"], "max_party": 4}]);
    let Some(scene) = scene("the_free_now_notice_is_only_for_the_party", body).await else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let date = date_in(1);
    // t1 taken at 19:00: the combination, the only seating for four, is taken around it.
    server.hold(rid, &date, "19:00", 2, Some("t1")).await;
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={date}&party=4")))
        .await;
    diner.wait_live().await;
    diner
        .wait_attr("#slots", "aria-busy", "false", SECS(10))
        .await;
    diner
        .click(r#"[data-testid=notify][data-time="19:00"]"#)
        .await;
    diner.wait_visible("[data-testid=join]", SECS(3)).await;
    assert!(
        !diner.visible("[data-testid=join-free]").await,
        "nothing seats four around 19:00"
    );

    let (code, v) = server
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/restaurants/{rid}"),
            Some(&scene.staff),
            Some(json!({"combinations": []})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    until(SECS(10), "the page to move to a party of two", || async {
        let party = diner
            .js("return document.querySelector('#party').value;", vec![])
            .await;
        (party == json!("2")).then_some(())
    })
    .await;
    // The party of two's times have come: 19:00 is free for two (t2).
    diner
        .wait_attr(
            r#"[data-testid=slot][data-time="19:00"]"#,
            "data-available",
            "1",
            SECS(10),
        )
        .await;
    assert!(
        diner.visible("[data-testid=join]").await,
        "the form stays open"
    );
    assert!(
        !diner.visible("[data-testid=join-free]").await,
        "19:00 is free for two, not for the four the form is for: {:?}",
        diner.text("[data-testid=join-free]").await
    );
    diner.finish(&[]).await;
}

/// A free time that passes while the join form is open drops out of the free-now notice on the
/// page's next tick (the notice names the next free time), though no frame comes: only a
/// change of availability used to redraw it. The page's clock is moved forward to pass it.
#[tokio::test]
async fn a_free_time_that_passes_drops_out_of_the_free_now_notice() {
    let (tz, local_now) = zone_at_noon();
    let body = open_all_day_in(
        paris_restaurant("Midi", json!([{"id": "t1", "label": "T1", "max_party": 2}])),
        &tz,
    );
    let Some(scene) = scene("a_free_time_that_passes_drops_out", body).await else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let today = local_now.date_naive().format("%Y-%m-%d").to_string();
    // It is 12:xx there. t1 is taken 14:00–15:30: 15:30 is the first free start after it.
    server.hold(rid, &today, "14:00", 2, Some("t1")).await;
    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 900).await;
    diner.open_diner(server, rid, &today).await;
    diner
        .click(r#"[data-testid=notify][data-time="14:00"]"#)
        .await;
    diner.wait_visible("[data-testid=join]", SECS(3)).await;
    widen_to_the_last_time(&diner).await;
    let said = until(SECS(5), "the first free time said", || async {
        diner
            .text("[data-testid=join-free]")
            .await
            .filter(|t| t.contains("is free now"))
    })
    .await;
    assert!(said.starts_with("15:30 is free now"), "{said}");

    // The page's clock moves to a minute past 15:30 there.
    let past = local_now
        .date_naive()
        .and_hms_opt(15, 31, 0)
        .unwrap()
        .and_utc()
        .signed_duration_since(local_now)
        .num_milliseconds();
    diner
        .js(
            "const real = Date.now.bind(Date); const ahead = arguments[0]; Date.now = () => real() + ahead;",
            vec![json!(past)],
        )
        .await;
    let next = until(SECS(15), "15:30 to drop out of the notice", || async {
        diner
            .text("[data-testid=join-free]")
            .await
            .filter(|t| t.contains("is free now") && !t.starts_with("15:30"))
    })
    .await;
    assert!(next.starts_with("15:45 is free now"), "{next}");
    diner.finish(&[]).await;
}

/// An offer's bar measures the time left against the offer's own length, read from its held
/// reservation, not against `offer_seconds` as the page read it at the join: the restaurant
/// cut it from 10 minutes to 2 while the diner waited, and the bar began a fifth full.
#[tokio::test]
async fn an_offer_counts_down_from_a_full_bar_after_the_restaurant_changed_its_length() {
    let mut body = paris_restaurant(
        "Court",
        json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
    );
    body["offer_seconds"] = json!(600);
    let Some(scene) = scene("an_offer_counts_down_from_a_full_bar", body).await else {
        return;
    };
    let (server, rid, staff) = (&scene.server, &scene.rid, &scene.staff);
    let date = date_in(1);
    let grace = server.hold(rid, &date, "19:00", 2, None).await;
    server.confirm(&grace, "Grace Hopper").await;

    let mut driver = Driver::start().await;
    let ada = driver.browser(1100, 1000).await;
    let url = server.url(&format!("/?restaurant={rid}&date={date}&party=2"));
    join(
        &ada,
        &url,
        "19:00",
        ("Ada Lovelace", "ada@example.com"),
        None,
    )
    .await;
    wait_title(&ada, "1st in line").await;
    let (code, v) = server
        .send(
            reqwest::Method::PATCH,
            &format!("/v1/restaurants/{rid}"),
            Some(staff),
            Some(json!({"offer_seconds": 120})),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/reservations/{}", grace["id"].as_str().unwrap()),
            Some(staff),
            None,
        )
        .await;
    assert_eq!(code, 204, "{v}");
    wait_title_within(&ada, "A table freed up", SECS(10)).await;
    let left = seconds(&ada.text("[data-testid=offer-countdown]").await.unwrap());
    assert!((100..=120).contains(&left), "a 2-minute offer: {left}s");
    let width = until(SECS(5), "the offer's bar to start full", || async {
        ada.js(
            "return parseFloat(document.getElementById('offer-progress').style.width);",
            vec![],
        )
        .await
        .as_f64()
        .filter(|w| *w >= 95.0)
    })
    .await;
    assert!(width <= 100.0, "{width}%");
    ada.finish(&[]).await;
}

/// The join form says how long an offer is held as it is, never rounded up: 150 seconds read
/// "3 minutes".
#[tokio::test]
async fn the_join_form_says_the_offers_length_without_rounding_it_up() {
    let mut body = paris_restaurant(
        "Deux et demie",
        json!([{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2}]),
    );
    body["offer_seconds"] = json!(150);
    let Some(scene) = scene("the_join_form_says_the_offers_length", body).await else {
        return;
    };
    let (server, rid) = (&scene.server, &scene.rid);
    let date = date_in(1);
    let grace = server.hold(rid, &date, "19:00", 2, None).await;
    server.confirm(&grace, "Grace Hopper").await;

    let mut driver = Driver::start().await;
    let diner = driver.browser(1100, 1000).await;
    diner.open_diner(server, rid, &date).await;
    diner
        .click(r#"[data-testid=notify][data-time="19:00"]"#)
        .await;
    diner.wait_visible("[data-testid=join]", SECS(3)).await;
    let hint = until(SECS(3), "the join form's hint", || async {
        diner.text("#join-hint").await.filter(|t| !t.is_empty())
    })
    .await;
    assert!(
        hint.contains("held for you alone for 2 minutes 30 seconds"),
        "{hint}"
    );
    diner.finish(&[]).await;
}
