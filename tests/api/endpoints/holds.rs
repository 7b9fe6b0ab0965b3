//! Availability and holds: slots in order, best fit, alternatives when a hold loses.
use super::*;

#[tokio::test]
async fn availability_lists_every_bookable_start_in_order_with_its_version() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(7);
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(a["restaurant_id"], f.id.as_str());
    assert_eq!(a["date"], date.as_str());
    assert_eq!(a["party_size"], 2);
    assert_eq!(a["timezone"], "Europe/Paris");
    assert!(a["version"].is_u64());

    let expected: Vec<String> = (0..15)
        .map(|i| format!("{:02}:{:02}", 18 + i * 15 / 60, i * 15 % 60))
        .collect();
    assert_eq!(
        times(&a),
        expected,
        "18:00 to 21:30: a 90-minute turn ends by 23:00"
    );
    for s in a["slots"].as_array().unwrap() {
        let time = s["time"].as_str().unwrap();
        assert_eq!(s["start"], paris(&date, time));
        assert_eq!(
            instant(&s["end"]) - instant(&s["start"]),
            Duration::minutes(90)
        );
        assert_eq!(
            s["end"].as_str().unwrap().len(),
            "YYYY-MM-DDTHH:MM:SSZ".len()
        );
        assert_eq!(s["available_tables"], 3, "t1, t2 and t3 all fit two");
    }
    let four = app.availability(&f.id, &date, 4).await;
    assert_eq!(times(&four).last().unwrap(), "21:00", "a 120-minute turn");
    assert_eq!(free_at(&four, "19:00"), 2);
}

#[tokio::test]
async fn availability_keeps_slots_with_no_free_table_and_raises_its_version_on_a_hold() {
    let app = TestApp::spawn().await;
    let f = one_table_restaurant(&app, None).await;
    let date = date_in(3);
    let before = app.availability(&f.id, &date, 2).await;
    held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;

    let a = app.availability(&f.id, &date, 2).await;
    assert!(a["version"].as_u64().unwrap() > before["version"].as_u64().unwrap());
    assert_eq!(times(&a), times(&before), "taken starts are still listed");
    for s in a["slots"].as_array().unwrap() {
        let t = s["time"].as_str().unwrap();
        let overlaps = ("18:00".."20:30").contains(&t);
        assert_eq!(s["available_tables"], u64::from(!overlaps), "{t}");
    }
}

#[tokio::test]
async fn a_hold_without_table_id_takes_the_best_fitting_table() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});
    let mut tables = Vec::new();
    for _ in 0..3 {
        tables.push(held(&app, &f.id, body.clone()).await.0["table_id"].clone());
    }
    assert_eq!(
        tables,
        [json!("t1"), json!("t2"), json!("t3")],
        "smallest max_party first"
    );
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", f.id),
            None,
            Some(body),
        )
        .await;
    assert_problem(res, 409, "slot-unavailable", "fourth hold").await;
}

#[tokio::test]
async fn best_fit_ties_break_by_the_smallest_table_id_in_byte_order() {
    let app = TestApp::spawn().await;
    let f = app
        .create_restaurant(restaurant_body(json!([
            {"id": "a", "max_party": 4}, {"id": "B", "max_party": 4}, {"id": "c", "max_party": 6},
        ])))
        .await;
    let body = json!({"date": date_in(3), "time": "20:00", "party_size": 3});
    let first = held(&app, &f.id, body.clone()).await.0;
    let second = held(&app, &f.id, body.clone()).await.0;
    let third = held(&app, &f.id, body).await.0;
    assert_eq!(
        [&first["table_id"], &second["table_id"], &third["table_id"]],
        [&json!("B"), &json!("a"), &json!("c")]
    );
}

#[tokio::test]
async fn a_hold_with_table_id_takes_that_table_and_returns_a_token() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let before = Utc::now();
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t3"}),
    )
    .await;
    assert!(!token.is_empty());
    assert!(uuid::Uuid::parse_str(r["id"].as_str().unwrap()).is_ok());
    assert_eq!(r["restaurant_id"], f.id.as_str());
    assert_eq!(r["table_id"], "t3");
    assert_eq!(r["date"], date.as_str());
    assert_eq!(r["time"], "19:00");
    assert_eq!(r["party_size"], 2);
    assert_eq!(r["status"], "held");
    assert_eq!(r["start"], paris(&date, "19:00"));
    assert_eq!(r["end"], paris(&date, "20:30"));
    let expires = instant(&r["expires_at"]);
    assert!(r["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        expires >= before + Duration::seconds(299)
            && expires <= Utc::now() + Duration::seconds(301)
    );
    let a = app.availability(&f.id, &date, 6).await;
    assert_eq!(free_at(&a, "19:00"), 0, "t3 is the only table for six");
}

#[tokio::test]
async fn hold_on_taken_slot_returns_409_with_the_nearest_alternatives_earlier_first_on_ties() {
    let app = TestApp::spawn().await;
    let f = one_table_restaurant(&app, Some(json!([{"max_party": null, "minutes": 15}]))).await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});
    held(&app, &f.id, body.clone()).await;
    let version = app.availability(&f.id, &date, 2).await["version"].clone();

    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", f.id),
            None,
            Some(body),
        )
        .await;
    let p = assert_problem(res, 409, "slot-unavailable", "taken slot").await;
    assert_eq!(
        p["alternatives"],
        json!([
            {"time": "18:45", "start": paris(&date, "18:45"), "available_tables": 1},
            {"time": "19:15", "start": paris(&date, "19:15"), "available_tables": 1},
            {"time": "18:30", "start": paris(&date, "18:30"), "available_tables": 1},
        ])
    );
    assert_eq!(
        app.availability(&f.id, &date, 2).await["version"],
        version,
        "a lost hold changes nothing"
    );
}

#[tokio::test]
async fn alternatives_list_fewer_than_three_when_fewer_starts_are_free() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["turn_minutes"] = json!([{"max_party": null, "minutes": 15}]);
    body["hours"] = json!([{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "18:45"}]);
    let f = app.create_restaurant(body).await;
    let date = date_in(3);
    for t in ["18:00", "18:15"] {
        held(
            &app,
            &f.id,
            json!({"date": date, "time": t, "party_size": 1}),
        )
        .await;
    }
    let res = app.hold(&f.id, &date, "18:00", 1).await;
    let p = assert_problem(res, 409, "slot-unavailable", "taken slot").await;
    assert_eq!(
        p["alternatives"],
        json!([{"time": "18:30", "start": paris(&date, "18:30"), "available_tables": 1}])
    );
}

#[tokio::test]
async fn unknown_json_members_are_ignored() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (r, _) = held(
        &app,
        &f.id,
        json!({"date": date_in(3), "time": "19:00", "party_size": 2, "table_id": "t2", "vip": true, "seat": {"near": "window"}}),
    )
    .await;
    assert_eq!(r["table_id"], "t2");
    assert!(r.get("vip").is_none());
}

/// A hold never outlives its start: when `hold_seconds` would run past it, `expires_at` is the
/// start (a time that has come cannot be confirmed); otherwise it is `hold_seconds` after the
/// hold was taken.
#[tokio::test]
async fn a_hold_expires_at_its_start_when_that_comes_before_hold_seconds_run_out() {
    use chrono::{DateTime, Duration, Timelike, Utc};
    let app = TestApp::spawn().await;
    let (tz, local) = zone_at_noon();
    let mut body = open_all_day_in(restaurant_body(json!([{"id": "t1", "max_party": 2}])), &tz);
    body["hold_seconds"] = json!(3600);
    let f = app.create_restaurant(body).await;
    let date = local.format("%Y-%m-%d").to_string();
    // 15 to 30 minutes ahead on the grid, and two hours after that.
    let grid = local - Duration::minutes(i64::from(local.minute() % 15));
    let at = |minutes: i64| {
        (grid + Duration::minutes(minutes))
            .format("%H:%M")
            .to_string()
    };
    let instant = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let soon = app.held(&f.id, &date, &at(30), 2).await;
    assert_eq!(
        instant(&soon["expires_at"]),
        instant(&soon["start"]),
        "{soon}"
    );
    let later = app.held(&f.id, &date, &at(150), 2).await;
    assert_eq!(
        instant(&later["expires_at"]) - instant(&later["created_at"]),
        Duration::seconds(3600),
        "{later}"
    );
}
