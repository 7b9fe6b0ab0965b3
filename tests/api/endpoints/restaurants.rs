//! Restaurants and their tables: create, list, read, patch, put and delete tables.
use super::*;

#[tokio::test]
async fn creating_a_restaurant_answers_201_with_defaults_and_a_staff_token() {
    let app = TestApp::spawn().await;
    let res = app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(ADMIN),
            Some(json!({"name": "Chez Rust", "timezone": "Europe/Paris", "tables": [{"max_party": 4}]})),
        )
        .await;
    let v = json_body(res, StatusCode::CREATED, "create").await;
    assert!(v["staff_token"].as_str().is_some_and(|t| !t.is_empty()));
    let r = &v["restaurant"];
    assert!(uuid::Uuid::parse_str(r["id"].as_str().unwrap()).is_ok());
    assert_eq!(r["name"], "Chez Rust");
    assert_eq!(r["timezone"], "Europe/Paris");
    assert_eq!(r["slot_minutes"], 15);
    assert_eq!(r["hold_seconds"], 300);
    assert_eq!(r["booking_horizon_days"], 60);
    assert_eq!(
        r["turn_minutes"],
        json!([{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120}, {"max_party": null, "minutes": 150}])
    );
    assert_eq!(r["closed_dates"], json!([]));
    let table = &r["tables"][0];
    assert_eq!(table["min_party"], 1);
    assert_eq!(table["max_party"], 4);
    assert_eq!(table["label"], table["id"], "label defaults to the id");
    assert!(r.get("staff_token").is_none());
}

#[tokio::test]
async fn restaurants_are_listed_with_id_name_and_timezone() {
    let app = TestApp::spawn().await;
    let a = app.standard_restaurant().await;
    let mut other = restaurant_body(json!([{"id": "x", "max_party": 2}]));
    other["name"] = json!("Second");
    other["timezone"] = json!("America/New_York");
    let b = app.create_restaurant(other).await;

    let v = json_body(
        app.send(Method::GET, "/v1/restaurants", None, None).await,
        StatusCode::OK,
        "list",
    )
    .await;
    let list = v["restaurants"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.contains(&json!({"id": a.id, "name": "Chez Test", "timezone": "Europe/Paris"})));
    assert!(list.contains(&json!({"id": b.id, "name": "Second", "timezone": "America/New_York"})));
}

#[tokio::test]
async fn a_restaurant_reads_back_as_created_without_secrets() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let res = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{}", f.id),
            None,
            None,
        )
        .await;
    let text = res.text().await.unwrap();
    assert!(!text.contains(&f.staff), "the staff token leaked");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v, f.body);
    assert!(v.get("staff_token").is_none());
    let ids: Vec<_> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    assert_eq!(ids, [json!("t1"), json!("t2"), json!("t3")]);
}

#[tokio::test]
async fn patch_replaces_only_the_named_members_and_raises_the_availability_version() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let before = app.availability(&f.id, &date, 2).await;

    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/restaurants/{}", f.id),
            Some(&f.staff),
            Some(json!({
                "name": "Renamed", "hold_seconds": 120,
                "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "19:00", "close": "22:00"}],
            })),
        )
        .await;
    let v = json_body(res, StatusCode::OK, "patch").await;
    assert_eq!(v["name"], "Renamed");
    assert_eq!(v["hold_seconds"], 120);
    assert_eq!(v["hours"][0]["open"], "19:00");
    for kept in [
        "id",
        "timezone",
        "slot_minutes",
        "booking_horizon_days",
        "turn_minutes",
        "closed_dates",
        "tables",
    ] {
        assert_eq!(v[kept], f.body[kept], "{kept} must not change");
    }
    let read = app
        .send(
            Method::GET,
            &format!("/v1/restaurants/{}", f.id),
            None,
            None,
        )
        .await;
    assert_eq!(json_body(read, StatusCode::OK, "get").await, v);

    let after = app.availability(&f.id, &date, 2).await;
    assert!(after["version"].as_u64().unwrap() > before["version"].as_u64().unwrap());
    let t = times(&after);
    assert_eq!(t.first().unwrap(), "19:00");
    assert_eq!(t.last().unwrap(), "20:30");
}

#[tokio::test]
async fn patching_closed_dates_empties_that_date_and_raises_every_dates_version() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (closed, open) = (date_in(5), date_in(6));
    let v_closed = app.availability(&f.id, &closed, 2).await["version"]
        .as_u64()
        .unwrap();
    let v_open = app.availability(&f.id, &open, 2).await["version"]
        .as_u64()
        .unwrap();

    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/restaurants/{}", f.id),
            Some(&f.staff),
            Some(json!({"closed_dates": [closed]})),
        )
        .await;
    assert_eq!(
        json_body(res, StatusCode::OK, "patch").await["closed_dates"],
        json!([closed])
    );

    let a = app.availability(&f.id, &closed, 2).await;
    assert_eq!(a["slots"], json!([]));
    assert!(a["version"].as_u64().unwrap() > v_closed);
    let b = app.availability(&f.id, &open, 2).await;
    assert_eq!(b["slots"].as_array().unwrap().len(), 15);
    assert!(b["version"].as_u64().unwrap() > v_open);
}

#[tokio::test]
async fn put_table_creates_with_201_and_replaces_with_200() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(4);
    assert_eq!(app.availability(&f.id, &date, 8).await["slots"], json!([]));
    let path = format!("/v1/restaurants/{}/tables/t9", f.id);

    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&f.staff),
            Some(json!({"label": "Big", "max_party": 8, "area": "terrace"})),
        )
        .await;
    let created = json_body(res, StatusCode::CREATED, "put new").await;
    assert_eq!(
        created,
        json!({"id": "t9", "label": "Big", "min_party": 1, "max_party": 8, "area": "terrace"})
    );
    let a = app.availability(&f.id, &date, 8).await;
    assert_eq!(free_at(&a, "19:00"), 1);

    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&f.staff),
            Some(json!({"min_party": 6, "max_party": 10})),
        )
        .await;
    let replaced = json_body(res, StatusCode::OK, "put again").await;
    assert_eq!(
        replaced,
        json!({"id": "t9", "label": "t9", "min_party": 6, "max_party": 10})
    );
    let r = json_body(
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
    let tables = r["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 4);
    assert!(tables.contains(&replaced));
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 10).await, "19:00"),
        1
    );
}

#[tokio::test]
async fn delete_table_answers_204_and_the_table_is_gone() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let res = app
        .send(
            Method::DELETE,
            &format!("/v1/restaurants/{}/tables/t3", f.id),
            Some(&f.staff),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let r = json_body(
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
    assert!(r["tables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["id"] != "t3"));
    assert_eq!(
        app.availability(&f.id, &date_in(2), 6).await["slots"],
        json!([])
    );
}

#[tokio::test]
async fn delete_table_with_a_live_future_reservation_is_409_conflict() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(2);
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t3"}),
    )
    .await;
    let path = format!("/v1/restaurants/{}/tables/t3", f.id);

    let res = app.send(Method::DELETE, &path, Some(&f.staff), None).await;
    assert_problem(res, 409, "conflict", "delete a booked table").await;
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 6).await, "19:00"),
        0,
        "t3 is still there"
    );

    assert_eq!(
        app.delete_reservation(r["id"].as_str().unwrap(), &token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let res = app.send(Method::DELETE, &path, Some(&f.staff), None).await;
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "a released hold does not block"
    );
}

#[tokio::test]
async fn turn_rules_are_sorted_by_the_server() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 8}]));
    body["turn_minutes"] = json!([
        {"max_party": null, "minutes": 180}, {"max_party": 6, "minutes": 150}, {"max_party": 2, "minutes": 60},
    ]);
    let f = app.create_restaurant(body).await;
    assert_eq!(
        f.body["turn_minutes"],
        json!([{"max_party": 2, "minutes": 60}, {"max_party": 6, "minutes": 150}, {"max_party": null, "minutes": 180}])
    );
    let a = app.availability(&f.id, &date_in(3), 7).await;
    assert_eq!(
        times(&a).last().unwrap(),
        "20:00",
        "the catch-all turn of 180 minutes"
    );
}

#[tokio::test]
async fn a_service_may_close_at_24_00() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["hours"] = json!([{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "20:00", "close": "24:00"}]);
    let f = app.create_restaurant(body).await;
    assert_eq!(f.body["hours"][0]["close"], "24:00");
    let date = date_in(3);
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(times(&a).last().unwrap(), "22:30");
    let last = a["slots"].as_array().unwrap().last().unwrap().clone();
    let next_day =
        (NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap() + Duration::days(1)).to_string();
    assert_eq!(
        last["end"],
        paris(&next_day, "00:00"),
        "ends at the midnight that ends the date"
    );
}

#[tokio::test]
async fn shrinking_a_table_below_a_live_future_reservation_is_409_conflict() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    held(
        &app,
        &f.id,
        json!({"date": date_in(2), "time": "19:00", "party_size": 2, "table_id": "t3"}),
    )
    .await;
    let path = format!("/v1/restaurants/{}/tables/t3", f.id);
    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&f.staff),
            Some(json!({"min_party": 3, "max_party": 6})),
        )
        .await;
    assert_problem(res, 409, "conflict", "shrink t3 below a party of 2").await;
    let r = json_body(
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
    assert_eq!(r, f.body, "t3 is unchanged");

    let res = app
        .send(
            Method::PUT,
            &path,
            Some(&f.staff),
            Some(json!({"min_party": 2, "max_party": 8})),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "growing it still fits the party"
    );
}

#[tokio::test]
async fn changing_the_timezone_with_live_future_reservations_is_409_conflict() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (r, token) = held(
        &app,
        &f.id,
        json!({"date": date_in(2), "time": "19:00", "party_size": 2}),
    )
    .await;
    let path = format!("/v1/restaurants/{}", f.id);
    let move_it = json!({"timezone": "America/New_York"});
    let res = app
        .send(Method::PATCH, &path, Some(&f.staff), Some(move_it.clone()))
        .await;
    assert_problem(res, 409, "conflict", "timezone change").await;

    app.delete_reservation(r["id"].as_str().unwrap(), &token)
        .await;
    let res = app
        .send(Method::PATCH, &path, Some(&f.staff), Some(move_it))
        .await;
    assert_eq!(
        json_body(res, StatusCode::OK, "timezone change").await["timezone"],
        "America/New_York"
    );
}

/// A hold at `time` for `party` (with `extra` members in its body), as `key`'s idempotent request.
async fn hold_keyed(
    app: &Api,
    rid: &str,
    date: &str,
    time: &str,
    party: u32,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"date": date, "time": time, "party_size": party});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let res = app
        .req(Method::POST, &format!("/v1/restaurants/{rid}/holds"), None)
        .header("Idempotency-Key", format!("{rid}-{time}-{party}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_hold_right_after_a_settings_change_is_decided_on_the_new_settings_on_every_instance() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    // Holds read the settings first: this instance keeps a copy of them from here on.
    app.held(&f.id, &date, "19:00", 2).await;
    let patch = |hours: Value| {
        let path = format!("/v1/restaurants/{}", f.id);
        let staff = f.staff.clone();
        let api = app.api.clone();
        async move {
            api.send(
                Method::PATCH,
                &path,
                Some(&staff),
                Some(json!({"hours": hours})),
            )
            .await
        }
    };
    let every_day = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    let res = patch(json!([{"days": every_day, "open": "18:00", "close": "24:00"}])).await;
    json_body(res, StatusCode::OK, "later close").await;
    // 22:00 opened with the change; the answer is recorded under its key, so a stale refusal
    // would be replayed for a day.
    let (status, body) = hold_keyed(&app, &f.id, &date, "22:00", 2, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let res = app
        .send(
            Method::PUT,
            &format!("/v1/restaurants/{}/tables/t9", f.id),
            Some(&f.staff),
            Some(json!({"min_party": 1, "max_party": 8})),
        )
        .await;
    json_body(res, StatusCode::CREATED, "new table").await;
    let (status, body) =
        hold_keyed(&app, &f.id, &date, "19:00", 8, json!({"table_id": "t9"})).await;
    assert_eq!(status, StatusCode::CREATED, "the new table: {body}");

    // A second instance on the same file holds (and so keeps a copy of the settings); the
    // first changes them; the second decides its next hold on the change.
    let args = tablecast::config::ServeArgs::for_tests(&app.db_url, ADMIN);
    let other = tablecast::startup::Application::build(args).await.unwrap();
    let other_api = Api::new(&format!("http://127.0.0.1:{}", other.port()), ADMIN);
    tokio::spawn(other.run_until_stopped());
    other_api.held(&f.id, &date, "20:00", 2).await;
    let res = patch(json!([{"days": every_day, "open": "17:00", "close": "24:00"}])).await;
    json_body(res, StatusCode::OK, "earlier open").await;
    let (status, body) = hold_keyed(&other_api, &f.id, &date, "17:00", 2, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "on the other instance: {body}");
}
