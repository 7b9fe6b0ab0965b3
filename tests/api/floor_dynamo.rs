//! Combinations and pacing over HTTP on the DynamoDB store (DynamoDB Local): the races the
//! store contract decides, seen through the API as clients see them.
use crate::kit::api::*;
use crate::kit::app::*;
use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Status and body of one hold.
async fn hold(app: &TestApp, rid: &str, body: Value) -> (StatusCode, Value) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(body),
        )
        .await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_holds_into_one_window_win_exactly_the_covers_limit_on_dynamodb() {
    let Some(b) = Backend::dynamo("floor_dynamo::hundred_holds_one_window") else {
        return;
    };
    let app = TestApp::spawn_on(b).await;
    let mut body = restaurant_body(many_tables(30));
    body["pacing"] = json!({"window_minutes": 15, "max_covers": 10, "max_parties": null});
    let f = app.create_restaurant(body).await;
    let date = date_in(6);
    // One 15-minute window, one start on the grid; 30 free tables.
    let attempts = (0..100).map(|_| {
        let body = json!({"date": date, "time": "19:00", "party_size": 2});
        hold(&app, &f.id, body)
    });
    let outcomes = join_all(attempts).await;
    let won = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let paced = outcomes
        .iter()
        .filter(|(s, p)| *s == StatusCode::CONFLICT && p["reason"] == "pacing")
        .count();
    let answers: Vec<(u16, &Value)> = outcomes
        .iter()
        .map(|(s, p)| (s.as_u16(), &p["reason"]))
        .collect();
    assert_eq!((won, paced), (5, 95), "{answers:?}");
    let list = app.staff_list(&f.id, &f.staff, &date).await;
    let covers: u64 = list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["party_size"].as_u64().unwrap())
        .sum();
    assert_eq!(covers, 10);
    // The window is full; the next one is not.
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(free_at(&a, "19:00"), 0);
    assert!(free_at(&a, "19:15") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_table_and_its_combination_never_both_win_over_http_on_dynamodb() {
    let Some(b) = Backend::dynamo("floor_dynamo::member_vs_combination") else {
        return;
    };
    let app = TestApp::spawn_on(b).await;
    let mut body = restaurant_body(json!([
        {"id": "t1", "max_party": 2},
        {"id": "t3", "min_party": 2, "max_party": 6},
        {"id": "t4", "min_party": 2, "max_party": 6},
    ]));
    body["combinations"] =
        json!([{"id": "c34", "tables": ["t3", "t4"], "min_party": 5, "max_party": 10}]);
    let f = app.create_restaurant(body).await;
    for round in 0..10 {
        let date = date_in(10 + round);
        let single = json!({"date": date, "time": "19:30", "party_size": 2, "table_id": "t4"});
        let joined =
            json!({"date": date, "time": "19:00", "party_size": 6, "combination_id": "c34"});
        let ((a, pa), (c, pc)) = tokio::join!(hold(&app, &f.id, single), hold(&app, &f.id, joined));
        let mut statuses = [a, c];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "round {round}: {pa} / {pc}"
        );
        let loser = if a == StatusCode::CONFLICT { &pa } else { &pc };
        assert_eq!(loser["reason"], "table", "round {round}");
        let list = app.staff_list(&f.id, &f.staff, &date).await;
        let reservations = list["reservations"].as_array().unwrap();
        assert_eq!(reservations.len(), 1);
        assert_no_overlap(reservations);
        if c == StatusCode::CREATED {
            assert_eq!(pc["table_ids"], json!(["t3", "t4"]));
            assert_eq!(pc["combination_id"], "c34");
        }
    }
}

/// A party of 8 at 19:00 is held on the combination of all six tables.
async fn held_on_all_six(app: &TestApp, rid: &str, date: &str) {
    let (status, held) = hold(
        app,
        rid,
        json!({"date": date, "time": "19:00", "party_size": 8}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    assert_eq!(held["combination_id"], "c6");
}

/// Six 2-seat tables and a combination of all six for 7 to 12, whose parties take `turn`
/// minutes.
fn six_joined(turn: u32) -> Value {
    let tables: Vec<Value> = (1..=6)
        .map(|i| json!({"id": format!("t{i}"), "max_party": 2}))
        .collect();
    let mut body = restaurant_body(json!(tables));
    body["combinations"] = json!([{"id": "c6", "tables": ["t1","t2","t3","t4","t5","t6"],
                                   "min_party": 7, "max_party": 12}]);
    body["turn_minutes"] = json!([{"max_party": 2, "minutes": 90},
                                  {"max_party": null, "minutes": turn}]);
    body
}

#[tokio::test]
async fn on_dynamodb_a_combination_too_long_for_one_transaction_is_refused_and_what_is_kept_is_holdable(
) {
    let Some(b) = Backend::dynamo("floor_dynamo::combination_items") else {
        return;
    };
    let app = TestApp::spawn_on(b).await;
    // Six tables for 240 minutes need more than one transaction's 100 items.
    let res = app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(&app.admin),
            Some(six_joined(240)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "combinations[0]", "{p}");
    // 195 minutes fit from any start: created, listed, and held.
    let f = app.create_restaurant(six_joined(195)).await;
    let date = date_in(5);
    let avail = app.availability(&f.id, &date, 8).await;
    assert_eq!(free_at(&avail, "19:00"), 1);
    held_on_all_six(&app, &f.id, &date).await;
    // A change back to 240 is refused too, and changes nothing.
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/restaurants/{}", f.id),
            Some(&f.staff),
            Some(json!({"turn_minutes": [{"max_party": 2, "minutes": 90},
                                         {"max_party": null, "minutes": 240}]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let now = app.restaurant(&f.id).await;
    assert_eq!(now["turn_minutes"][1]["minutes"], 195, "{now}");
}

#[tokio::test]
async fn on_sqlite_a_combination_of_six_tables_for_four_hours_is_created_and_held() {
    let app = TestApp::spawn().await;
    let f = app.create_restaurant(six_joined(240)).await;
    let date = date_in(5);
    held_on_all_six(&app, &f.id, &date).await;
}
