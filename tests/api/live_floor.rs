//! Live views of combinations and pacing: a window's count moves every party size it affects,
//! and the floor shows combined reservations under each member with the pacing of the day.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::ws::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// t1 (1–2), t2 (1–4), t3 (2–6), t4 (2–6); c34 = t3+t4 for 5–10; 6 covers per 30 minutes.
async fn restaurant(app: &TestApp) -> Fixture {
    app.create_restaurant(restaurant_doc()).await
}

/// The restaurant of these tests, in a zone where it is now about noon (so that no local
/// midnight falls inside a test), open all day, and its local date today.
async fn restaurant_at_noon(app: &TestApp) -> (Fixture, String) {
    let (tz, local) = zone_at_noon();
    let today = local.format("%Y-%m-%d").to_string();
    let body = open_all_day_in(restaurant_doc(), &tz);
    (app.create_restaurant(body).await, today)
}

fn restaurant_doc() -> Value {
    let mut body = restaurant_body(json!([
        {"id": "t1", "max_party": 2},
        {"id": "t2", "max_party": 4},
        {"id": "t3", "min_party": 2, "max_party": 6},
        {"id": "t4", "min_party": 2, "max_party": 6},
    ]));
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 10}]);
    body["pacing"] = json!({"window_minutes": 30, "max_covers": 6});
    body
}

/// `time` → the whole slot, from an update's or a snapshot's slots.
fn by_time(slots: &Value) -> BTreeMap<String, Value> {
    slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["time"].as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

#[tokio::test]
async fn a_change_in_one_window_updates_every_party_size_it_affects_with_covers_left() {
    let app = TestApp::spawn().await;
    let r = restaurant(&app).await;
    let date = date_in(3);
    let mut two = Ws::connect(&app.base).await;
    let mut six = Ws::connect(&app.base).await;
    let snap2 = two.subscribe("two", &r.id, &date, 2).await;
    let snap6 = six.subscribe("six", &r.id, &date, 6).await;
    assert_eq!(snap6["data"], app.availability(&r.id, &date, 6).await);
    assert_eq!(by_time(&snap6["data"]["slots"])["19:00"]["covers_left"], 6);

    // A party of 4 on t2 at 19:15: no table a party of 6 could use is touched, but the
    // 19:00–19:30 window now has 2 covers left.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            None,
            Some(json!({"date": date, "time": "19:15", "party_size": 4, "table_id": "t2"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let up6 = six.frame().await;
    assert_eq!(up6["type"], "update");
    assert_eq!(up6["cause"], "held");
    let slots6 = by_time(&up6["slots"]);
    assert_eq!(
        slots6.keys().collect::<Vec<_>>(),
        ["19:00", "19:15"],
        "exactly the window's slots: {up6}"
    );
    for s in slots6.values() {
        assert_eq!(
            (&s["available_tables"], &s["covers_left"]),
            (&json!(0), &json!(2))
        );
    }
    assert_eq!(
        app.availability(&r.id, &date, 6).await["slots"],
        apply(&snap6["data"]["slots"], &up6["slots"])
    );

    // Party 2 sees the covers of the window and the taken table, each slot that moved.
    let up2 = two.frame().await;
    let slots2 = by_time(&up2["slots"]);
    assert_eq!(slots2["19:00"]["covers_left"], 2);
    assert_eq!(slots2["19:15"]["covers_left"], 2);
    assert_eq!(
        app.availability(&r.id, &date, 2).await["slots"],
        apply(&snap2["data"]["slots"], &up2["slots"])
    );
}

/// A snapshot's slots with an update's slots applied.
fn apply(snapshot: &Value, update: &Value) -> Value {
    let mut m = by_time(snapshot);
    m.extend(by_time(update));
    Value::Array(m.into_values().collect())
}

#[tokio::test]
async fn the_floor_shows_a_combined_reservation_under_each_member_and_the_pacing_of_the_day() {
    let app = TestApp::spawn().await;
    let r = restaurant(&app).await;
    let date = date_in(3);
    let mut ws = Ws::connect(&app.base).await;
    ws.send(
        json!({"op": "subscribe", "sub": "f", "restaurant_id": r.id, "date": date,
                   "view": "floor", "token": r.staff}),
    )
    .await;
    let snap = ws.frame().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["data"]["pacing"], json!([]));

    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", r.id),
            None,
            Some(json!({"date": date, "time": "19:15", "party_size": 5, "combination_id": "c34"})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let up = ws.frame().await;
    assert_eq!(up["cause"], "held");
    let tables = up["tables"].as_array().unwrap();
    let ids: Vec<&str> = tables.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t3", "t4"]);
    for t in tables {
        let x = &t["reservations"][0];
        assert_eq!(x["combination_id"], "c34");
        assert_eq!(x["table_ids"], json!(["t3", "t4"]));
    }
    assert_eq!(
        up["pacing"],
        json!([{"window": "19:00", "covers": 5, "max_covers": 6, "parties": 1, "max_parties": null}])
    );
}

#[tokio::test]
async fn a_walk_in_counts_in_the_pacing_of_its_window_on_the_floor() {
    let app = TestApp::spawn().await;
    let (r, today) = restaurant_at_noon(&app).await;
    let mut ws = Ws::connect(&app.base).await;
    ws.send(
        json!({"op": "subscribe", "sub": "f", "restaurant_id": r.id, "date": today,
                   "view": "floor", "token": r.staff}),
    )
    .await;
    assert_eq!(ws.frame().await["type"], "snapshot");
    // Over the covers limit by itself: a walk-in is counted, never refused.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/walk-ins", r.id),
            Some(&r.staff),
            Some(json!({"party_size": 7})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let w: Value = res.json().await.unwrap();
    assert_eq!(w["combination_id"], "c34");
    let time = w["time"].as_str().unwrap();
    let minutes: u32 = time[..2].parse::<u32>().unwrap() * 60 + time[3..].parse::<u32>().unwrap();
    let window = format!(
        "{:02}:{:02}",
        minutes / 30 * 30 / 60,
        minutes / 30 * 30 % 60
    );
    assert_eq!(w["date"], today.as_str(), "a walk-in is on today's floor");
    let up = ws.frame().await;
    assert_eq!(up["cause"], "walk_in");
    assert_eq!(
        up["pacing"],
        json!([{"window": window, "covers": 7, "max_covers": 6, "parties": 1, "max_parties": null}])
    );
}

/// The floor lists a cancelled booking, though the day read behind availability no longer
/// holds cancelled reservations: a floor opened on a date its channel already serves to
/// diners reads them, one opened next to it has them too, and a cancellation made while it
/// watches stays on it.
#[tokio::test]
async fn the_floor_lists_cancelled_bookings_whichever_way_it_learns_of_them() {
    let app = TestApp::spawn().await;
    let r = restaurant(&app).await;
    let date = date_in(3);
    let booked_and_cancelled = |time: &'static str| {
        let (app, rid, date) = (&app, r.id.clone(), date.clone());
        async move {
            let h = app.held(&rid, &date, time, 2).await;
            let (id, token) = (h["id"].as_str().unwrap(), h["token"].as_str().unwrap());
            assert_eq!(app.confirm(id, token).await.status(), StatusCode::OK);
            let res = app.delete_reservation(id, token).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT);
            id.to_owned()
        }
    };
    // The channel serves a diner first: its day has no cancelled reservation.
    let mut diner = Ws::connect(&app.base).await;
    diner.subscribe("two", &r.id, &date, 2).await;
    let first = booked_and_cancelled("19:00").await;
    let cancelled_on = |floor: &Value| -> Vec<String> {
        floor["tables"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["reservations"].as_array().unwrap().iter())
            .filter(|x| x["status"] == "cancelled")
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let floor_sub = |sub: &str| {
        json!({"op": "subscribe", "sub": sub, "restaurant_id": r.id, "date": date,
               "view": "floor", "token": r.staff})
    };
    let mut floor = Ws::connect(&app.base).await;
    floor.send(floor_sub("f")).await;
    let snap = floor.frame().await;
    assert_eq!(snap["type"], "snapshot", "{snap}");
    assert_eq!(cancelled_on(&snap["data"]), vec![first.clone()], "{snap}");

    // Cancelled while the floor watches: the update's table keeps it, as cancelled.
    let second = booked_and_cancelled("20:00").await;
    let up = loop {
        let f = floor.frame().await;
        if f["cause"] == "cancelled" {
            break f;
        }
    };
    assert_eq!(cancelled_on(&up), [first.clone(), second.clone()], "{up}");

    // A second floor, opened on the channel as it is.
    let mut other = Ws::connect(&app.base).await;
    other.send(floor_sub("g")).await;
    let snap = other.frame().await;
    assert_eq!(cancelled_on(&snap["data"]), [first, second], "{snap}");
}
