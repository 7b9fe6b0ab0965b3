//! Table combinations: set on the restaurant, held whole, counted in availability.
use super::*;
use crate::problem::error_fields;

/// t1 (1–2), t2 (1–4), t3 (2–6), t4 (2–6); c34 = t3+t4 for 5–10.
fn combined_body() -> Value {
    let mut body = restaurant_body(json!([
        {"id": "t1", "max_party": 2},
        {"id": "t2", "max_party": 4},
        {"id": "t3", "min_party": 2, "max_party": 6},
        {"id": "t4", "min_party": 2, "max_party": 6},
    ]));
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t4", "t3"], "min_party": 5, "max_party": 10}]);
    body
}

async fn patch(app: &TestApp, f: &Fixture, body: Value) -> Response {
    app.send(
        Method::PATCH,
        &format!("/v1/restaurants/{}", f.id),
        Some(&f.staff),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn combinations_are_set_at_creation_replaced_whole_by_patch_and_shown_sorted() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    assert_eq!(
        f.body["combinations"],
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 10}])
    );
    assert_eq!(f.body["pacing"], Value::Null);
    let res = patch(
        &app,
        &f,
        json!({"combinations": [
            {"id": "c23", "tables": ["t3", "t2"], "max_party": 8},
            {"id": "c12", "tables": ["t1", "t2"], "min_party": 3, "max_party": 6},
        ]}),
    )
    .await;
    let doc = json_body(res, StatusCode::OK, "patch combinations").await;
    assert_eq!(
        doc["combinations"],
        json!([{"id": "c12", "tables": ["t1", "t2"], "min_party": 3, "max_party": 6},
               {"id": "c23", "tables": ["t2", "t3"], "min_party": 1, "max_party": 8}])
    );
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
    assert_eq!(got, doc);
    // Another member left alone keeps them; an empty list removes them all.
    let doc = json_body(
        patch(&app, &f, json!({"name": "Renamed"})).await,
        StatusCode::OK,
        "rename",
    )
    .await;
    assert_eq!(doc["combinations"].as_array().unwrap().len(), 2);
    let doc = json_body(
        patch(&app, &f, json!({"combinations": []})).await,
        StatusCode::OK,
        "clear",
    )
    .await;
    assert_eq!(doc["combinations"], json!([]));
}

#[tokio::test]
async fn bad_combinations_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let cases = [
        (
            json!([{"id": "cx", "tables": ["t3", "t9"], "max_party": 8}]),
            "combinations[0].tables",
        ),
        (
            json!([{"id": "cx", "tables": ["t3"], "max_party": 8}]),
            "combinations[0].tables",
        ),
        (
            json!([{"id": "cx", "tables": ["t3", "t3"], "max_party": 8}]),
            "combinations[0].tables",
        ),
        (
            json!([{"id": "cx", "tables": ["t3", "t4"], "min_party": 9, "max_party": 8}]),
            "combinations[0].min_party",
        ),
        (
            json!([{"id": "cx", "tables": ["t3", "t4"], "max_party": 101}]),
            "combinations[0].max_party",
        ),
        (
            json!([{"id": "cx", "tables": ["t3", "t4"], "max_party": 0}]),
            "combinations[0].max_party",
        ),
        (
            json!([{"id": "cx", "tables": ["t1", "t2", "t3", "t4", "t1", "t2", "t3"], "max_party": 8}]),
            "combinations[0].tables",
        ),
        (
            json!([{"id": "cx", "tables": ["t1", "t2"], "max_party": 4},
                {"id": "cx", "tables": ["t3", "t4"], "max_party": 8}]),
            "combinations",
        ),
    ];
    for (combos, field) in cases {
        let p = assert_problem(
            patch(&app, &f, json!({"combinations": combos.clone()})).await,
            422,
            "validation",
            &format!("patch {combos}"),
        )
        .await;
        assert!(
            error_fields(&p).contains(&field.to_owned()),
            "{combos}: {p}"
        );
        let mut body = combined_body();
        body["combinations"] = combos.clone();
        let res = app
            .send(
                Method::POST,
                "/v1/restaurants",
                Some(&app.admin),
                Some(body),
            )
            .await;
        assert_problem(res, 422, "validation", &format!("create {combos}")).await;
    }
    // A combination id that is not a table id is a syntax error.
    let res = patch(
        &app,
        &f,
        json!({"combinations": [{"id": "c 1", "tables": ["t3", "t4"], "max_party": 8}]}),
    )
    .await;
    assert_problem(res, 400, "bad-request", "bad combination id").await;
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
    assert_eq!(got["combinations"], f.body["combinations"]);
}

#[tokio::test]
async fn a_table_a_combination_names_cannot_be_deleted_until_none_does() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let path = |t: &str| format!("/v1/restaurants/{}/tables/{t}", f.id);
    let (p3, p2) = (path("t4"), path("t2"));
    let delete = |path: &'static str| {
        let path = match path {
            "t4" => &p3,
            _ => &p2,
        };
        app.send(Method::DELETE, path, Some(&f.staff), None)
    };
    let p = assert_problem(delete("t4").await, 409, "conflict", "delete t4").await;
    assert!(p["detail"].as_str().unwrap().contains("c34"), "{p}");
    assert_eq!(delete("t2").await.status(), StatusCode::NO_CONTENT);
    patch(&app, &f, json!({"combinations": []})).await;
    assert_eq!(delete("t4").await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_hold_names_a_table_or_a_combination_and_a_combination_holds_every_member() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let date = date_in(5);
    let path = format!("/v1/restaurants/{}/holds", f.id);
    let hold = |body: Value| app.send(Method::POST, &path, None, Some(body));
    let both = json!({"date": date, "time": "19:00", "party_size": 6, "table_id": "t3", "combination_id": "c34"});
    let p = assert_problem(hold(both).await, 422, "validation", "both").await;
    assert_eq!(error_fields(&p), ["combination_id"]);
    let unknown = json!({"date": date, "time": "19:00", "party_size": 6, "combination_id": "c99"});
    assert_problem(hold(unknown).await, 404, "not-found", "unknown combination").await;
    let small = json!({"date": date, "time": "19:00", "party_size": 2, "combination_id": "c34"});
    let p = assert_problem(hold(small).await, 422, "validation", "too small a party").await;
    assert_eq!(error_fields(&p), ["combination_id"]);

    let (c, _) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 6, "combination_id": "c34"}),
    )
    .await;
    assert_eq!(c["table_id"], "t3");
    assert_eq!(c["table_ids"], json!(["t3", "t4"]));
    assert_eq!(c["combination_id"], "c34");
    // A single table carries one member and no combination.
    let (single, _) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "t1"}),
    )
    .await;
    assert_eq!(single["table_ids"], json!(["t1"]));
    assert_eq!(single["combination_id"], Value::Null);
    // Either member, at an overlapping time, is taken.
    let member = json!({"date": date, "time": "20:00", "party_size": 2, "table_id": "t4"});
    let p = assert_problem(hold(member).await, 409, "slot-unavailable", "member").await;
    assert_eq!(p["reason"], "table");
    let list = app.staff_list(&f.id, &f.staff, &date).await;
    assert_no_overlap(list["reservations"].as_array().unwrap());
}

#[tokio::test]
async fn availability_counts_free_seating_options_and_best_fit_takes_single_tables_first() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let date = date_in(6);
    // A party of 6: t3, t4 and c34; of 8: c34 alone.
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 6).await, "19:00"),
        3
    );
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 8).await, "19:00"),
        1
    );
    // Best fit for 6 without a choice: a single table first (t3, then t4).
    let (a, _) = held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 6}),
    )
    .await;
    assert_eq!(
        (a["table_ids"].clone(), a["combination_id"].clone()),
        (json!(["t3"]), Value::Null)
    );
    // One member taken: the combination is no longer free either.
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 6).await, "19:00"),
        1
    );
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 8).await, "19:00"),
        0
    );
    // Another day, a party of 8 takes the combination by best fit, and then neither member
    // is free for a party of 6.
    let other = date_in(8);
    let (b, _) = held(
        &app,
        &f.id,
        json!({"date": other, "time": "19:00", "party_size": 8}),
    )
    .await;
    assert_eq!(b["combination_id"], "c34");
    assert_eq!(
        free_at(&app.availability(&f.id, &other, 6).await, "19:00"),
        0
    );
    let res = app.hold(&f.id, &other, "19:00", 6).await;
    let p = assert_problem(res, 409, "slot-unavailable", "no option for 6").await;
    assert_eq!(p["reason"], "table");
    assert!(p["alternatives"].as_array().is_some());
}

#[tokio::test]
async fn staff_seat_a_walk_in_on_a_combination_but_not_on_a_table_and_a_combination() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let path = format!("/v1/restaurants/{}/walk-ins", f.id);
    let walk_in = |body: Value| app.send(Method::POST, &path, Some(&f.staff), Some(body));
    let both = json!({"party_size": 7, "table_id": "t3", "combination_id": "c34"});
    let p = assert_problem(walk_in(both).await, 422, "validation", "both").await;
    assert_eq!(error_fields(&p), ["combination_id"]);
    let w = json_body(
        walk_in(json!({"party_size": 7, "combination_id": "c34"})).await,
        StatusCode::CREATED,
        "walk-in on c34",
    )
    .await;
    assert_eq!(w["status"], "seated");
    assert_eq!(w["table_ids"], json!(["t3", "t4"]));
    assert_eq!(w["combination_id"], "c34");
    let again = walk_in(json!({"party_size": 3, "table_id": "t4"})).await;
    let p = assert_problem(
        again,
        409,
        "slot-unavailable",
        "member of a seated combination",
    )
    .await;
    assert_eq!(p["reason"], "table");
}

#[tokio::test]
async fn a_live_reservation_on_a_removed_combination_still_guards_each_member_table() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(combined_body()).await;
    let date = date_in(5);
    held(
        &app,
        &f.id,
        json!({"date": date, "time": "19:00", "party_size": 8, "combination_id": "c34"}),
    )
    .await;
    // The combination goes; the reservation keeps both its tables.
    let res = patch(&app, &f, json!({"combinations": []})).await;
    json_body(res, StatusCode::OK, "remove the combination").await;
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        2
    );
    let path = format!("/v1/restaurants/{}/tables/t4", f.id);
    // Shrinking a member is not about the combination's party; deleting it is refused.
    let shrink = app
        .send(
            Method::PUT,
            &path,
            Some(&f.staff),
            Some(json!({"min_party": 2, "max_party": 4})),
        )
        .await;
    json_body(shrink, StatusCode::OK, "shrink t4").await;
    let delete = app.send(Method::DELETE, &path, Some(&f.staff), None).await;
    assert_problem(
        delete,
        409,
        "conflict",
        "delete a member with a live reservation",
    )
    .await;
}
