//! `Idempotency-Key`: the same key and body replay the first answer and never act twice.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::problem::assert_problem;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

async fn answer(res: Response) -> Answer {
    let status = res.status();
    let replayed = match res.headers().get("Idempotent-Replayed") {
        None => false,
        Some(v) => {
            assert_eq!(v, "true");
            true
        }
    };
    Answer {
        status,
        replayed,
        body: res.json().await.unwrap(),
    }
}

async fn post_json(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    key: &str,
    body: &Value,
) -> Answer {
    // From bytes: a key may be UTF-8 beyond ASCII.
    let key = reqwest::header::HeaderValue::from_bytes(key.as_bytes()).expect("a header value");
    let res = app
        .req(Method::POST, path, token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    answer(res).await
}

async fn post_raw(app: &TestApp, path: &str, key: &str, body: &str) -> Answer {
    let res = app
        .req(Method::POST, path, None)
        .header("Idempotency-Key", key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    answer(res).await
}

fn holds(rid: &str) -> String {
    format!("/v1/restaurants/{rid}/holds")
}

async fn reservations_on(app: &TestApp, f: &Fixture, date: &str) -> Vec<Value> {
    app.staff_list(&f.id, &f.staff, date).await["reservations"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer_and_never_take_a_second_hold() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});

    let first = post_json(&app, &holds(&f.id), None, "k-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(!first.replayed);
    let version = app.availability(&f.id, &date, 2).await["version"].clone();

    // The same body, and the same JSON value written otherwise: members in another order, a
    // number as `2.0`.
    let respelled = json!({"party_size": 2.0, "time": "19:00", "date": date});
    for body in [&body, &respelled, &body] {
        let again = post_json(&app, &holds(&f.id), None, "k-1", body).await;
        assert_eq!(again.status, StatusCode::CREATED, "{body}");
        assert!(again.replayed, "Idempotent-Replayed: true");
        assert_eq!(again.body, first.body, "the same reservation and token");
    }
    let a = app.availability(&f.id, &date, 2).await;
    assert_eq!(free_at(&a, "19:00"), 2, "one table held, not four");
    assert_eq!(a["version"], version, "a replay changes nothing");
    assert_eq!(reservations_on(&app, &f, &date).await.len(), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_422_idempotency_conflict() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let first = post_json(
        &app,
        &holds(&f.id),
        None,
        "k-2",
        &json!({"date": date, "time": "19:00", "party_size": 2}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);

    let res = app
        .req(Method::POST, &holds(&f.id), None)
        .header("Idempotency-Key", "k-2")
        .json(&json!({"date": date, "time": "20:00", "party_size": 2}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "idempotency-conflict", "different body").await;
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "20:00"),
        2,
        "19:00 still overlaps one table"
    );
    assert_eq!(reservations_on(&app, &f, &date).await.len(), 1);
}

#[tokio::test]
async fn a_replayed_409_stays_a_409_after_the_slot_frees_up() {
    let app = TestApp::spawn().await;
    let f = app
        .create_restaurant(restaurant_body(json!([{"id": "t1", "max_party": 2}])))
        .await;
    let date = date_in(3);
    let winner: Value = app
        .hold(&f.id, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let body = json!({"date": date, "time": "19:00", "party_size": 2});

    let lost = post_json(&app, &holds(&f.id), None, "k-3", &body).await;
    assert_eq!(lost.status, StatusCode::CONFLICT);
    assert_eq!(lost.body["type"], "/problems/slot-unavailable");

    let released = app
        .delete_reservation(
            winner["id"].as_str().unwrap(),
            winner["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(released.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        1
    );

    let replay = post_json(&app, &holds(&f.id), None, "k-3", &body).await;
    assert_eq!(replay.status, StatusCode::CONFLICT);
    assert!(replay.replayed);
    assert_eq!(replay.body, lost.body);
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        1,
        "the replay took nothing"
    );

    let fresh = post_json(&app, &holds(&f.id), None, "k-4", &body).await;
    assert_eq!(
        fresh.status,
        StatusCode::CREATED,
        "a new key is a new attempt"
    );
}

#[tokio::test]
async fn a_replayed_422_stays_a_422() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let body = json!({"date": date_in(3), "time": "19:07", "party_size": 2});
    let first = post_json(&app, &holds(&f.id), None, "k-5", &body).await;
    assert_eq!(first.status, StatusCode::UNPROCESSABLE_ENTITY);
    let again = post_json(&app, &holds(&f.id), None, "k-5", &body).await;
    assert_eq!(
        (again.status, again.replayed),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    assert_eq!(again.body, first.body);
}

#[tokio::test]
async fn a_body_refused_for_its_shape_or_range_is_a_final_answer_replayed_and_binding_the_key() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let hold = app.held(&f.id, &date, "18:00", 2).await;
    let confirm = format!("/v1/reservations/{}/confirm", hold["id"].as_str().unwrap());
    let token = hold["token"].as_str().unwrap();
    let walk_ins = format!("/v1/restaurants/{}/walk-ins", f.id);
    for (path, who, bad, good, status) in [
        // A party size out of range (422), and a member of the wrong type (400).
        (
            holds(&f.id),
            None,
            json!({"date": date, "time": "19:00", "party_size": 0}),
            json!({"date": date, "time": "19:00", "party_size": 2}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            holds(&f.id),
            None,
            json!({"date": date, "time": "19:00", "party_size": "two"}),
            json!({"date": date, "time": "19:30", "party_size": 2}),
            StatusCode::BAD_REQUEST,
        ),
        (
            confirm,
            Some(token),
            json!({"guest": {"name": 7}}),
            json!({"guest": {"name": "Ada"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            walk_ins,
            Some(f.staff.as_str()),
            json!({"party_size": 101}),
            json!({"party_size": 2}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let key = format!("bad-{path}-{status}");
        let first = post_json(&app, &path, who, &key, &bad).await;
        assert_eq!(first.status, status, "{path}: {bad}");
        let again = post_json(&app, &path, who, &key, &bad).await;
        assert_eq!(
            (again.status, again.replayed),
            (status, true),
            "{path}: replayed"
        );
        assert_eq!(again.body, first.body);
        // The key is bound to that body: another one under it is a conflict, not a new effect.
        let other = post_json(&app, &path, who, &key, &good).await;
        assert_eq!(
            other.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {good}"
        );
        assert_eq!(
            other.body["type"], "/problems/idempotency-conflict",
            "{path}"
        );
    }
    // Nothing was taken under those keys: only the first hold is on the date.
    assert_eq!(reservations_on(&app, &f, &date).await.len(), 1);
}

#[tokio::test]
async fn keys_are_scoped_by_the_callers_token() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});
    let anonymous = post_json(&app, &holds(&f.id), None, "shared", &body).await;
    let as_staff = post_json(&app, &holds(&f.id), Some(&f.staff), "shared", &body).await;
    let as_admin = post_json(&app, &holds(&f.id), Some(ADMIN), "shared", &body).await;
    for a in [&anonymous, &as_staff, &as_admin] {
        assert_eq!(a.status, StatusCode::CREATED);
        assert!(!a.replayed);
    }
    let ids: Vec<_> = [&anonymous, &as_staff, &as_admin]
        .iter()
        .map(|a| a.body["id"].clone())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        0
    );

    let replay = post_json(&app, &holds(&f.id), Some(&f.staff), "shared", &body).await;
    assert!(replay.replayed);
    assert_eq!(replay.body, as_staff.body);
}

#[tokio::test]
async fn keys_are_scoped_by_path() {
    let app = TestApp::spawn().await;
    let a = app.standard_restaurant().await;
    let b = app.standard_restaurant().await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});
    let on_a = post_json(&app, &holds(&a.id), None, "same-key", &body).await;
    let on_b = post_json(&app, &holds(&b.id), None, "same-key", &body).await;
    assert_eq!(
        (on_a.status, on_b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert!(!on_b.replayed);
    assert_eq!(on_a.body["restaurant_id"], a.id.as_str());
    assert_eq!(on_b.body["restaurant_id"], b.id.as_str());
    assert_eq!(
        free_at(&app.availability(&b.id, &date, 2).await, "19:00"),
        2
    );

    let id = on_a.body["id"].as_str().unwrap();
    let token = on_a.body["token"].as_str().unwrap();
    let confirm = post_json(
        &app,
        &format!("/v1/reservations/{id}/confirm"),
        Some(token),
        "same-key",
        &json!({"guest": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(!confirm.replayed);
}

#[tokio::test]
async fn an_id_in_the_path_in_upper_case_or_percent_encoded_is_the_same_path() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let body = json!({"date": date, "time": "19:00", "party_size": 2});
    let first = post_json(&app, &holds(&f.id), None, "k-case", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    // In upper case the route reads the same restaurant, so the key's scope is the same path
    // and the hold is replayed, not taken twice.
    let again = post_json(&app, &holds(&f.id.to_uppercase()), None, "k-case", &body).await;
    assert_eq!((again.status, again.replayed), (StatusCode::CREATED, true));
    assert_eq!(again.body, first.body);
    assert_eq!(reservations_on(&app, &f, &date).await.len(), 1);

    let id = first.body["id"].as_str().unwrap();
    let token = first.body["token"].as_str().unwrap();
    let guest = json!({"guest": {"name": "Ada"}});
    let confirmed = post_json(
        &app,
        &format!("/v1/reservations/{id}/confirm"),
        Some(token),
        "c-case",
        &guest,
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK);
    let upper = format!("/v1/reservations/{}/confirm", id.to_uppercase());
    let again = post_json(&app, &upper, Some(token), "c-case", &guest).await;
    assert_eq!((again.status, again.replayed), (StatusCode::OK, true));
    // Percent-encoded, the id is the one the route reads too.
    let encoded = format!(
        "/v1/reservations/%{:02X}{}/confirm",
        id.as_bytes()[0],
        &id[1..]
    );
    let again = post_json(&app, &encoded, Some(token), "c-case", &guest).await;
    assert_eq!((again.status, again.replayed), (StatusCode::OK, true));
}

#[tokio::test]
async fn two_idempotency_key_headers_are_400_and_take_nothing() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let res = app
        .req(Method::POST, &holds(&f.id), None)
        .header("Idempotency-Key", "k-a")
        .header("Idempotency-Key", "k-b")
        .json(&json!({"date": date, "time": "19:00", "party_size": 2}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "bad-request", "two keys").await;
    assert!(reservations_on(&app, &f, &date).await.is_empty());
}

#[tokio::test]
async fn bodies_compare_as_json_values_so_order_and_whitespace_do_not_matter() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let compact = format!(r#"{{"date":"{date}","time":"19:00","party_size":2}}"#);
    let reordered =
        format!("{{\n  \"party_size\" : 2,\n  \"time\": \"19:00\",\t\"date\": \"{date}\"\n}}\n");

    let first = post_raw(&app, &holds(&f.id), "k-6", &compact).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = post_raw(&app, &holds(&f.id), "k-6", &reordered).await;
    assert_eq!((again.status, again.replayed), (StatusCode::CREATED, true));
    assert_eq!(again.body, first.body);
    assert_eq!(reservations_on(&app, &f, &date).await.len(), 1);
}

#[tokio::test]
async fn confirm_and_walk_ins_replay_their_first_answer_too() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let hold: Value = app
        .hold(&f.id, &date_in(3), "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let (id, token) = (
        hold["id"].as_str().unwrap(),
        hold["token"].as_str().unwrap(),
    );
    let path = format!("/v1/reservations/{id}/confirm");
    let guest = json!({"guest": {"name": "Ada"}, "notes": "birthday"});
    let first = post_json(&app, &path, Some(token), "c-1", &guest).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = post_json(&app, &path, Some(token), "c-1", &guest).await;
    assert_eq!((again.status, again.replayed), (StatusCode::OK, true));
    assert_eq!(again.body, first.body);

    let walk_ins = format!("/v1/restaurants/{}/walk-ins", f.id);
    let party = json!({"party_size": 2});
    let seated = post_json(&app, &walk_ins, Some(&f.staff), "w-1", &party).await;
    assert_eq!(seated.status, StatusCode::CREATED);
    let again = post_json(&app, &walk_ins, Some(&f.staff), "w-1", &party).await;
    assert_eq!((again.status, again.replayed), (StatusCode::CREATED, true));
    assert_eq!(again.body, seated.body);
    let today = seated.body["date"].as_str().unwrap();
    let walk_ins_today = reservations_on(&app, &f, today)
        .await
        .into_iter()
        .filter(|r| r["status"] == "seated")
        .count();
    assert_eq!(walk_ins_today, 1, "one party seated, not two");
}

#[tokio::test]
async fn a_key_of_1_to_255_characters_is_accepted_ascii_or_not() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    // 255 characters of two bytes each, and one character: counted in characters, not bytes.
    for (key, time) in [
        ("k".repeat(255), "19:00"),
        ("é".repeat(255), "19:30"),
        ("é".into(), "20:00"),
    ] {
        let body = json!({"date": date_in(3), "time": time, "party_size": 2});
        let first = post_json(&app, &holds(&f.id), None, &key, &body).await;
        assert_eq!(first.status, StatusCode::CREATED, "{key}");
        let again = post_json(&app, &holds(&f.id), None, &key, &body).await;
        assert!(again.replayed, "{key}");
        assert_eq!(again.body, first.body);
    }
    // 256 characters, or a control character, is not a key.
    for key in ["é".repeat(256), "a\tb".into()] {
        let body = json!({"date": date_in(3), "time": "21:00", "party_size": 2});
        let res = post_json(&app, &holds(&f.id), None, &key, &body).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{key:?}");
    }
}

/// Every byte the store has on disk: the database file and its write-ahead log.
fn store_bytes(app: &TestApp) -> Vec<u8> {
    let path = app.db_url.trim_start_matches("sqlite://");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_token_lies_in_the_sqlite_file_after_keyed_holds_and_confirms() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let mut tokens = vec![f.staff.clone()];
    for (i, time) in ["19:00", "20:00", "21:00"].into_iter().enumerate() {
        let body = json!({"date": date, "time": time, "party_size": 2});
        let path = format!("/v1/restaurants/{}/holds", f.id);
        let held = post_json(&app, &path, None, &format!("hold-{i}"), &body).await;
        assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
        let (id, token) = (
            held.body["id"].as_str().unwrap().to_owned(),
            held.body["token"].as_str().unwrap().to_owned(),
        );
        // The replay still returns the first answer with its token.
        let again = post_json(&app, &path, None, &format!("hold-{i}"), &body).await;
        assert!(again.replayed);
        assert_eq!(again.body["token"], token.as_str());
        let guest = json!({"guest": {"name": "Ada", "email": format!("ada{i}@example.com")}});
        let confirm_path = format!("/v1/reservations/{id}/confirm");
        let confirmed = post_json(&app, &confirm_path, Some(&token), "confirm", &guest).await;
        assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
        let again = post_json(&app, &confirm_path, Some(&token), "confirm", &guest).await;
        assert!(again.replayed);
        assert_eq!(again.body["status"], "confirmed");
        tokens.push(token);
    }
    let bytes = store_bytes(&app);
    assert!(bytes.len() > 4096, "the store file was read");
    for t in &tokens {
        assert!(
            !contains(&bytes, t),
            "a bearer token lies in the SQLite file in clear"
        );
    }
}

/// A refusal that would repeat a huge rejected value (a 64 KB body of U+0085, which JSON
/// escapes to six bytes each) is answered with a short detail, recorded and replayed like any
/// final answer, on both stores. The detail repeated the whole value (224 KB); on DynamoDB the
/// recorded answer outgrew an item, the hold answered 500, and the key stayed in flight (409)
/// and then failed again for good.
#[tokio::test]
async fn a_refusal_of_a_huge_value_is_short_recorded_and_replayed_on_sqlite() {
    a_refusal_of_a_huge_value_is_short_recorded_and_replayed(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_refusal_of_a_huge_value_is_short_recorded_and_replayed_on_dynamodb() {
    if let Some(b) = Backend::dynamo("idempotency::a_refusal_of_a_huge_value_on_dynamodb") {
        a_refusal_of_a_huge_value_is_short_recorded_and_replayed(b).await;
    }
}

async fn a_refusal_of_a_huge_value_is_short_recorded_and_replayed(backend: Backend) {
    let app = TestApp::spawn_on(backend).await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let huge = "\u{85}".repeat(32_000);
    let body = json!({"date": date, "time": "19:00", "party_size": huge}).to_string();
    let first = post_raw(&app, &holds(&f.id), "huge", &body).await;
    assert_eq!(first.status, StatusCode::BAD_REQUEST, "{}", first.body);
    let detail = first.body["detail"].as_str().unwrap();
    assert!(detail.chars().count() <= 500, "{} chars", detail.len());
    assert!(detail.contains("expected"), "{detail}");
    let again = post_raw(&app, &holds(&f.id), "huge", &body).await;
    assert_eq!(
        (again.status, again.replayed),
        (StatusCode::BAD_REQUEST, true)
    );
    assert_eq!(again.body, first.body);
}
