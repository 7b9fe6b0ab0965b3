//! Pacing: covers and parties per window, refused with `reason: pacing`, shown as `covers_left`.
use super::*;
use crate::problem::error_fields;

/// Six tables of 1–4; pacing of 30-minute windows with `max_covers` and `max_parties`.
async fn paced(app: &TestApp, max_covers: Value, max_parties: Value) -> Fixture {
    let mut body = restaurant_body(many_tables(6));
    body["pacing"] =
        json!({"window_minutes": 30, "max_covers": max_covers, "max_parties": max_parties});
    app.create_restaurant(body).await
}

fn slot<'a>(avail: &'a Value, time: &str) -> &'a Value {
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == time)
        .unwrap_or_else(|| panic!("no slot {time}"))
}

#[tokio::test]
async fn pacing_is_set_at_creation_replaced_by_patch_and_turned_off_by_null() {
    let app = TestApp::spawn().await;
    let f = paced(&app, json!(12), Value::Null).await;
    assert_eq!(
        f.body["pacing"],
        json!({"window_minutes": 30, "max_covers": 12, "max_parties": null})
    );
    let path = format!("/v1/restaurants/{}", f.id);
    let patch = |body: Value| app.send(Method::PATCH, &path, Some(&f.staff), Some(body));
    let doc = json_body(
        patch(json!({"pacing": {"window_minutes": 15, "max_parties": 3}})).await,
        StatusCode::OK,
        "replace",
    )
    .await;
    assert_eq!(
        doc["pacing"],
        json!({"window_minutes": 15, "max_covers": null, "max_parties": 3})
    );
    let doc = json_body(
        patch(json!({"hold_seconds": 60})).await,
        StatusCode::OK,
        "other",
    )
    .await;
    assert_eq!(doc["pacing"]["max_parties"], 3, "untouched when not named");
    let doc = json_body(patch(json!({"pacing": null})).await, StatusCode::OK, "off").await;
    assert_eq!(doc["pacing"], Value::Null);
    // Without pacing, slots say so.
    let a = app.availability(&f.id, &date_in(3), 2).await;
    assert_eq!(slot(&a, "19:00")["covers_left"], Value::Null);
}

#[tokio::test]
async fn bad_pacing_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let f = paced(&app, json!(12), json!(4)).await;
    let path = format!("/v1/restaurants/{}", f.id);
    let patch = |body: Value| app.send(Method::PATCH, &path, Some(&f.staff), Some(body));
    let cases = [
        (
            json!({"pacing": {"window_minutes": 25}}),
            "pacing.window_minutes",
        ),
        (
            json!({"pacing": {"window_minutes": 0}}),
            "pacing.window_minutes",
        ),
        (
            json!({"pacing": {"window_minutes": 90}}),
            "pacing.window_minutes",
        ),
        // 10 divides 60 but is not a multiple of the 15-minute slot.
        (
            json!({"pacing": {"window_minutes": 10}}),
            "pacing.window_minutes",
        ),
        (
            json!({"pacing": {"window_minutes": 15, "max_covers": 0}}),
            "pacing.max_covers",
        ),
        (
            json!({"pacing": {"window_minutes": 15, "max_parties": -1}}),
            "pacing.max_parties",
        ),
        // A slot the window is no longer a multiple of.
        (json!({"slot_minutes": 20}), "pacing.window_minutes"),
    ];
    for (body, field) in cases {
        let p = assert_problem(
            patch(body.clone()).await,
            422,
            "validation",
            &body.to_string(),
        )
        .await;
        assert!(error_fields(&p).contains(&field.to_owned()), "{body}: {p}");
    }
    let mut create = restaurant_body(many_tables(2));
    create["pacing"] = json!({"window_minutes": 45});
    let res = app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(&app.admin),
            Some(create),
        )
        .await;
    assert_problem(res, 422, "validation", "create with a 45-minute window").await;
    let got = json_body(
        app.send(
            Method::GET,
            &format!("/v1/restaurants/{}", f.id),
            None,
            None,
        )
        .await,
        StatusCode::OK,
        "get",
    )
    .await;
    assert_eq!(got, f.body);
}

#[tokio::test]
async fn a_full_window_refuses_with_reason_pacing_and_availability_shows_covers_left() {
    let app = TestApp::spawn().await;
    let f = paced(&app, json!(5), Value::Null).await;
    let date = date_in(4);
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(slot(&a, "19:00")["covers_left"], 5);
    assert_eq!(slot(&a, "19:00")["available_tables"], 6);

    let (first, first_token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:15", "party_size": 3}),
    )
    .await;
    // 19:00 and 19:15 share the 19:00–19:30 window: 2 covers left there, 5 elsewhere.
    let a = app.availability(&f.id, &date, 2).await;
    for t in ["19:00", "19:15"] {
        assert_eq!(slot(&a, t)["covers_left"], 2, "{t}");
        assert!(slot(&a, t)["available_tables"].as_u64().unwrap() > 0, "{t}");
    }
    assert_eq!(slot(&a, "19:30")["covers_left"], 5);
    assert_eq!(slot(&a, "18:45")["covers_left"], 5);
    // A party of 3 no longer fits the window: no option counts, whatever the tables.
    let three = app.availability(&f.id, &date, 3).await;
    assert_eq!(slot(&three, "19:00")["available_tables"], 0);
    assert_eq!(slot(&three, "19:00")["covers_left"], 2);
    assert!(slot(&three, "19:30")["available_tables"].as_u64().unwrap() > 0);

    let p = assert_problem(
        app.hold(&f.id, &date, "19:00", 3).await,
        409,
        "slot-unavailable",
        "over the covers",
    )
    .await;
    assert_eq!(p["reason"], "pacing");
    let alternatives: Vec<&str> = p["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["time"].as_str().unwrap())
        .collect();
    // Nearest first, the earlier on ties; the full window is left out.
    assert_eq!(alternatives, ["18:45", "18:30", "19:30"]);

    // Releasing the first hold frees its covers at once.
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.delete_reservation(id, &first_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.hold(&f.id, &date, "19:00", 3).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn max_parties_limits_reservations_per_window() {
    let app = TestApp::spawn().await;
    let f = paced(&app, Value::Null, json!(2)).await;
    let date = date_in(4);
    for time in ["19:00", "19:15"] {
        assert_eq!(
            app.hold(&f.id, &date, time, 1).await.status(),
            StatusCode::CREATED
        );
    }
    let p = assert_problem(
        app.hold(&f.id, &date, "19:15", 1).await,
        409,
        "slot-unavailable",
        "third party",
    )
    .await;
    assert_eq!(p["reason"], "pacing");
    let a = app.availability(&f.id, &date, 1).await;
    assert_eq!(slot(&a, "19:00")["available_tables"], 0);
    assert_eq!(slot(&a, "19:00")["covers_left"], Value::Null);
    assert_eq!(
        app.hold(&f.id, &date, "19:30", 1).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_taken_table_is_the_reason_even_when_pacing_would_refuse_too() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 4}]));
    body["pacing"] = json!({"window_minutes": 30, "max_covers": 2});
    let f = app.create_restaurant(body).await;
    let date = date_in(4);
    assert_eq!(
        app.hold(&f.id, &date, "19:00", 2).await.status(),
        StatusCode::CREATED
    );
    let p = assert_problem(
        app.hold(&f.id, &date, "19:15", 2).await,
        409,
        "slot-unavailable",
        "no table and no covers",
    )
    .await;
    assert_eq!(p["reason"], "table");
}

#[tokio::test]
async fn walk_ins_are_never_refused_by_pacing() {
    let app = TestApp::spawn().await;
    let f = paced(&app, json!(1), json!(1)).await;
    for _ in 0..2 {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/restaurants/{}/walk-ins", f.id),
                Some(&f.staff),
                Some(json!({"party_size": 4})),
            )
            .await;
        json_body(res, StatusCode::CREATED, "walk-in over the pacing limits").await;
    }
}
