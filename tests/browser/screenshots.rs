//! Screenshots of both pages (and phone-sized ones) on a busy day, saved by the run.
use crate::harness::*;
use chrono::{Timelike, Utc};
use serde_json::{json, Value};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A fixed-offset zone where it is now early afternoon, so today has a past and a future.
fn midday_zone() -> (String, i64) {
    let utc = i64::from(Utc::now().hour());
    let offset = 13 - utc; // -10 ..= 13
    let zone = match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    (zone, offset)
}

fn local_hhmm(offset_hours: i64, plus_minutes: i64) -> String {
    let local = Utc::now() + chrono::Duration::hours(offset_hours);
    let minutes = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let start = (minutes / 15 + 1) * 15 + plus_minutes;
    format!("{:02}:{:02}", start / 60, start % 60)
}

#[tokio::test]
async fn screenshots_of_the_diner_app_and_the_dashboard_on_desktop_and_phone() {
    if require(
        Service::Chromium,
        "screenshots_of_the_diner_app_and_the_dashboard",
    )
    .is_none()
    {
        return;
    }
    let _one = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("shots.db"), 0);
    let (zone, offset) = midday_zone();
    let (rid, staff_token) = server
        .restaurant(json!({
            "name": "Chez Rust", "timezone": zone, "booking_horizon_days": 30,
            "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "11:00", "close": "23:00"}],
            "tables": [
                {"id": "t1", "label": "T1", "min_party": 1, "max_party": 2, "area": "window"},
                {"id": "t2", "label": "T2", "min_party": 1, "max_party": 2, "area": "window"},
                {"id": "t3", "label": "T3", "min_party": 2, "max_party": 4, "area": "main"},
                {"id": "t4", "label": "T4", "min_party": 2, "max_party": 4, "area": "main"},
                {"id": "t5", "label": "T5", "min_party": 4, "max_party": 8, "area": "terrace"},
                {"id": "bar", "label": "Bar", "min_party": 1, "max_party": 2, "area": "bar"},
            ],
            "combinations": [{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 8}],
            "pacing": {"window_minutes": 15, "max_covers": 12, "max_parties": 4},
        }))
        .await;
    let today = date_in_zone(&zone, 0);

    // A busy day: walk-ins seated and done, bookings later on, one hold, one cancellation.
    let walk_in = |table: &str, party: u32, name: &str| json!({"party_size": party, "table_id": table, "guest": {"name": name}});
    let (code, seated) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/walk-ins"),
            Some(&staff_token),
            Some(walk_in("t3", 3, "Grace H.")),
        )
        .await;
    assert_eq!(code, 201, "{seated}");
    let (code, done) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/walk-ins"),
            Some(&staff_token),
            Some(walk_in("t1", 2, "Alan T.")),
        )
        .await;
    assert_eq!(code, 201, "{done}");
    server
        .set_status(done["id"].as_str().unwrap(), &staff_token, "completed")
        .await;
    let plan: [(&str, i64, u32, &str); 6] = [
        ("t2", 15, 2, "Marie Curie"),
        ("t1", 120, 2, "Katherine J."),
        ("t4", 90, 4, "Ines & friends"),
        ("t5", 180, 6, "Okafor birthday"),
        ("bar", 45, 2, ""),
        ("t3", 405, 2, "Linus"),
    ];
    let mut booked: Vec<Value> = Vec::new();
    for (table, plus, party, name) in plan {
        let held = server
            .hold(&rid, &today, &local_hhmm(offset, plus), party, Some(table))
            .await;
        if !name.is_empty() {
            server.confirm(&held, name).await;
        }
        booked.push(held);
    }
    // A party of 7 on T3 and T4 joined: one block across both rows.
    let (code, combined) = server
        .send(
            reqwest::Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(json!({"date": today, "time": local_hhmm(offset, 225), "party_size": 7, "combination_id": "c34"})),
        )
        .await;
    assert_eq!(code, 201, "{combined}");
    server.confirm(&combined, "Lovelace party").await;
    let last = booked.last().unwrap();
    let (code, _) = server
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/reservations/{}", last["id"].as_str().unwrap()),
            Some(&staff_token),
            None,
        )
        .await;
    assert_eq!(code, 204);

    let mut driver = Driver::start().await;
    let dir = screenshot_dir();
    println!("screenshots in {}", dir.display());

    // The dashboard, desktop.
    let staff = driver.browser(1440, 900).await;
    staff
        .goto(&server.url(&format!("/staff?restaurant={rid}&date={today}")))
        .await;
    staff.screenshot("staff-sign-in.png").await;
    staff
        .type_into("[data-testid=staff-token]", &staff_token)
        .await;
    staff.click("[data-testid=staff-login]").await;
    staff
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    until(
        SECS(15),
        "ten blocks on the timeline (the combined one on two rows)",
        || async {
            let n = staff
                .js(
                    "return document.querySelectorAll('[data-testid=reservation]').length;",
                    vec![],
                )
                .await;
            (n == 10).then_some(())
        },
    )
    .await;
    staff.screenshot("staff-desktop.png").await;
    let held = booked[4]["id"].as_str().unwrap();
    staff
        .click(&format!(r#"[data-reservation-id="{held}"]"#))
        .await;
    staff
        .wait_visible("[data-testid=action-cancel]", SECS(2))
        .await;
    staff.screenshot("staff-panel.png").await;

    // The diner app, desktop: live times, then a hold with its countdown.
    let diner = driver.browser(1280, 1000).await;
    diner
        .goto(&server.url(&format!("/?restaurant={rid}&date={today}&party=2")))
        .await;
    diner
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    diner.wait_visible("[data-testid=slot]", SECS(15)).await;
    diner.screenshot("diner-desktop.png").await;
    diner.click("[data-testid=slot]:not([disabled])").await;
    diner.wait_visible("[data-testid=hold]", SECS(15)).await;
    diner
        .type_into("[data-testid=guest-name]", "Ada Lovelace")
        .await;
    diner.screenshot("diner-hold.png").await;
    diner
        .type_into("[data-testid=guest-email]", "ada@example.com")
        .await;
    diner.click("[data-testid=confirm]").await;
    diner
        .wait_visible("[data-testid=confirmation]", SECS(15))
        .await;
    diner.screenshot("diner-confirmation.png").await;

    // Phone-sized.
    let phone = driver.phone().await;
    phone
        .goto(&server.url(&format!("/?restaurant={rid}&date={today}&party=4")))
        .await;
    phone
        .wait_attr("[data-testid=live-status]", "data-state", "live", SECS(10))
        .await;
    phone.wait_visible("[data-testid=slot]", SECS(15)).await;
    phone.screenshot("diner-phone.png").await;
    let phone_staff = driver.phone().await;
    phone_staff
        .sign_in_staff(&server, &rid, &today, &staff_token)
        .await;
    phone_staff
        .wait_visible("[data-testid=reservation]", SECS(15))
        .await;
    phone_staff.screenshot("staff-phone.png").await;

    for b in [staff, diner, phone, phone_staff] {
        b.finish(&[]).await;
    }
}
