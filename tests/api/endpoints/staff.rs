//! Staff work: the day's list, status changes and walk-ins.
use super::*;

#[tokio::test]
async fn staff_list_shows_every_status_with_guests_ordered_by_start_then_table() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let hold = |time: &str, table: &str| json!({"date": date, "time": time, "party_size": 2, "table_id": table});
    let (late, _) = held(&app, &f.id, hold("20:00", "t1")).await;
    let (on_t3, _) = held(&app, &f.id, hold("19:00", "t3")).await;
    let (released, released_token) = held(&app, &f.id, hold("18:00", "t1")).await;
    let released_id = released["id"].as_str().unwrap();
    app.delete_reservation(released_id, &released_token).await;
    let (on_t2, _) = confirmed(&app, &f.id, &date, "19:00", "t2").await;
    let (cancelled, cancelled_token) = confirmed(&app, &f.id, &date, "21:00", "t2").await;
    app.delete_reservation(&cancelled, &cancelled_token).await;
    let (seated, _) = confirmed(&app, &f.id, &date, "21:30", "t3").await;
    assert_eq!(
        app.set_status(&seated, &f.staff, "seated").await.status(),
        StatusCode::OK
    );
    held(
        &app,
        &f.id,
        json!({"date": date_in(4), "time": "19:00", "party_size": 2}),
    )
    .await;

    let list = app.staff_list(&f.id, &f.staff, &date).await;
    let rows = list["reservations"].as_array().unwrap();
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["time"].as_str().unwrap(),
                r["table_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("18:00", "t1", "released"),
            ("19:00", "t2", "confirmed"),
            ("19:00", "t3", "held"),
            ("20:00", "t1", "held"),
            ("21:00", "t2", "cancelled"),
            ("21:30", "t3", "seated"),
        ]
    );
    assert_eq!(rows[1]["id"], on_t2.as_str());
    assert_eq!(rows[2]["id"], on_t3["id"]);
    assert_eq!(rows[3]["id"], late["id"]);
    for i in [1, 4, 5] {
        assert_eq!(rows[i]["guest"]["name"], "Ada", "guests are shown to staff");
    }
    assert_eq!(
        app.staff_list(&f.id, ADMIN, &date).await,
        list,
        "admin sees the same list"
    );
}

#[tokio::test]
async fn staff_seat_and_complete_a_walk_in_and_completing_shortens_its_end() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/walk-ins", f.id),
            Some(&f.staff),
            Some(json!({"party_size": 2})),
        )
        .await;
    let w = json_body(res, StatusCode::CREATED, "walk-in").await;
    let (start, end) = (instant(&w["start"]), instant(&w["end"]));
    let id = w["id"].as_str().unwrap();

    let done = json_body(
        app.set_status(id, &f.staff, "completed").await,
        StatusCode::OK,
        "complete",
    )
    .await;
    assert_eq!(done["status"], "completed");
    let new_end = instant(&done["end"]);
    assert!(new_end < end, "completing frees the rest of the turn");
    assert!(new_end >= start && new_end <= Utc::now() + Duration::minutes(15));
    assert_eq!(
        new_end.timestamp() % (15 * 60),
        0,
        "rounded up onto the 15-minute grid"
    );
    let list = app
        .staff_list(&f.id, &f.staff, w["date"].as_str().unwrap())
        .await;
    let row = list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(row["end"], done["end"]);
}

#[tokio::test]
async fn staff_move_a_confirmed_reservation_to_seated_then_completed() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let (id, _) = confirmed(&app, &f.id, &date, "19:00", "t1").await;
    let seated = json_body(
        app.set_status(&id, &f.staff, "seated").await,
        StatusCode::OK,
        "seat",
    )
    .await;
    assert_eq!(seated["status"], "seated");
    assert_eq!(
        seated["end"],
        paris(&date, "20:30"),
        "seating keeps the turn"
    );

    let done = json_body(
        app.set_status(&id, &f.staff, "completed").await,
        StatusCode::OK,
        "complete",
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["end"], done["start"],
        "the end is the later of start and now rounded up"
    );
    let a = app.availability(&f.id, &date, 2).await;
    for s in a["slots"].as_array().unwrap() {
        assert_eq!(
            s["available_tables"], 3,
            "t1 is free all evening again: {s}"
        );
    }
}

#[tokio::test]
async fn staff_mark_a_confirmed_reservation_no_show_which_frees_its_table() {
    let app = TestApp::spawn().await;
    let f = one_table_restaurant(&app, None).await;
    let date = date_in(3);
    let (id, token) = confirmed(&app, &f.id, &date, "19:00", "t1").await;
    let v = json_body(
        app.set_status(&id, &f.staff, "no_show").await,
        StatusCode::OK,
        "no_show",
    )
    .await;
    assert_eq!(v["status"], "no_show");
    assert_eq!(
        v["end"], v["start"],
        "the end is the later of start and now rounded up"
    );
    let a = app.availability(&f.id, &date, 2).await;
    for s in a["slots"].as_array().unwrap() {
        assert_eq!(
            s["available_tables"], 1,
            "an empty [start, start) occupies nothing: {s}"
        );
    }
    assert_eq!(
        json_body(
            app.get_reservation(&id, &token).await,
            StatusCode::OK,
            "get"
        )
        .await["status"],
        "no_show"
    );
}

#[tokio::test]
async fn a_walk_in_is_seated_now_without_a_token() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let before = Utc::now();
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/walk-ins", f.id),
            Some(&f.staff),
            Some(json!({"party_size": 3, "guest": {"name": "Grace"}})),
        )
        .await;
    let w = json_body(res, StatusCode::CREATED, "walk-in").await;
    assert!(w.get("token").is_none());
    assert_eq!(w["status"], "seated");
    assert_eq!(w["table_id"], "t2", "best fit for three");
    assert_eq!(w["guest"], json!({"name": "Grace"}));
    assert!(w.get("expires_at").is_none());
    let start = instant(&w["start"]);
    assert_eq!(start.timestamp() % 60, 0, "truncated to the minute");
    assert!(start > before - Duration::minutes(1) && start <= Utc::now());
    assert_eq!(instant(&w["end"]) - start, Duration::minutes(120));
    let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let local = start.with_timezone(&tz);
    assert_eq!(w["time"], local.format("%H:%M").to_string());
    assert_eq!(w["date"], local.format("%Y-%m-%d").to_string());

    let list = app
        .staff_list(&f.id, &f.staff, w["date"].as_str().unwrap())
        .await;
    assert!(list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == w["id"]));
}

#[tokio::test]
async fn a_walk_in_on_a_taken_table_is_409_slot_unavailable() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let path = format!("/v1/restaurants/{}/walk-ins", f.id);
    let body = json!({"party_size": 2, "table_id": "t1"});
    let first = app
        .send(Method::POST, &path, Some(&f.staff), Some(body.clone()))
        .await;
    let first = json_body(first, StatusCode::CREATED, "first walk-in").await;
    let res = app
        .send(Method::POST, &path, Some(&f.staff), Some(body))
        .await;
    assert_problem(res, 409, "slot-unavailable", "second walk-in on t1").await;
    let list = app
        .staff_list(&f.id, &f.staff, first["date"].as_str().unwrap())
        .await;
    assert_eq!(list["reservations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn status_changes_outside_the_machine_are_409_invalid_transition() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let (hold, _) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;
    let (id, _) = confirmed(&app, &f.id, &date, "20:00", "t2").await;
    let hold = hold["id"].as_str().unwrap();
    for (who, to) in [
        (hold, "seated"),
        (hold, "no_show"),
        (hold, "completed"),
        (id.as_str(), "completed"),
    ] {
        let res = app.set_status(who, &f.staff, to).await;
        assert_problem(res, 409, "invalid-transition", to).await;
    }
    assert_eq!(
        app.set_status(&id, &f.staff, "seated").await.status(),
        StatusCode::OK
    );
    for to in ["seated", "no_show"] {
        assert_problem(
            app.set_status(&id, &f.staff, to).await,
            409,
            "invalid-transition",
            to,
        )
        .await;
    }
    let list = app.staff_list(&f.id, &f.staff, &date).await;
    let statuses: Vec<_> = list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("held"), json!("seated")]);
}

#[tokio::test]
async fn walk_ins_ignore_hours_and_closed_dates() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["closed_dates"] = json!([date_in(-1), date_in(0), date_in(1)]);
    body["hours"] = json!([]);
    let f = app.create_restaurant(body).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/walk-ins", f.id),
            Some(&f.staff),
            Some(json!({"party_size": 1})),
        )
        .await;
    let w = json_body(res, StatusCode::CREATED, "walk-in on a closed day").await;
    assert_eq!(w["status"], "seated");
}
