//! Bearer auth: 401 (no or unknown token), then 404 (no such resource), then 403 (no rights).
use crate::kit::api::*;
use crate::kit::app::*;
use crate::problem::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const UNKNOWN: &str = "0b6a1d2e-8f8c-4a57-9a43-3c1f5a0e9d11";

/// Two restaurants, two holds on the first, one on the second.
struct World {
    app: TestApp,
    a: Fixture,
    b: Fixture,
    date: String,
    hold_a: (String, String),
    other_hold_a: (String, String),
    hold_b: (String, String),
}

async fn take_hold(app: &TestApp, rid: &str, date: &str, time: &str) -> (String, String) {
    let v = app.held(rid, date, time, 2).await;
    (
        v["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let a = app.standard_restaurant().await;
    let b = app.standard_restaurant().await;
    let date = date_in(3);
    let hold_a = take_hold(&app, &a.id, &date, "19:00").await;
    let other_hold_a = take_hold(&app, &a.id, &date, "20:00").await;
    let hold_b = take_hold(&app, &b.id, &date, "19:00").await;
    World {
        app,
        a,
        b,
        date,
        hold_a,
        other_hold_a,
        hold_b,
    }
}

impl World {
    /// Everything a refused request could have touched.
    async fn snapshot(&self) -> Value {
        let mut out = json!({});
        for f in [&self.a, &self.b] {
            let r: Value = self.app.restaurant(&f.id).await;
            out[&f.id] = json!({
                "restaurant": r,
                "availability": self.app.availability(&f.id, &self.date, 2).await,
                "reservations": self.app.staff_list(&f.id, ADMIN, &self.date).await,
            });
        }
        out["restaurants"] = self
            .app
            .send(Method::GET, "/v1/restaurants", None, None)
            .await
            .json()
            .await
            .unwrap();
        out
    }

    /// Every endpoint that needs a token, aimed at restaurant A and its first hold.
    fn guarded(&self) -> Vec<(Method, String, Option<Value>)> {
        let (rid, id) = (&self.a.id, &self.hold_a.0);
        vec![
            (
                Method::POST,
                "/v1/restaurants".into(),
                Some(restaurant_body(json!([{"max_party": 2}]))),
            ),
            (
                Method::PATCH,
                format!("/v1/restaurants/{rid}"),
                Some(json!({"name": "Taken over"})),
            ),
            (
                Method::PUT,
                format!("/v1/restaurants/{rid}/tables/t9"),
                Some(json!({"max_party": 4})),
            ),
            (
                Method::DELETE,
                format!("/v1/restaurants/{rid}/tables/t2"),
                None,
            ),
            (
                Method::GET,
                format!("/v1/restaurants/{rid}/reservations?date={}", self.date),
                None,
            ),
            (
                Method::POST,
                format!("/v1/restaurants/{rid}/walk-ins"),
                Some(json!({"party_size": 2})),
            ),
            (
                Method::POST,
                format!("/v1/reservations/{id}/confirm"),
                Some(json!({"guest": {"name": "Mallory"}})),
            ),
            (Method::GET, format!("/v1/reservations/{id}"), None),
            (Method::DELETE, format!("/v1/reservations/{id}"), None),
            (
                Method::PATCH,
                format!("/v1/reservations/{id}"),
                Some(json!({"status": "seated"})),
            ),
        ]
    }
}

#[tokio::test]
async fn every_guarded_endpoint_is_401_without_a_token_or_with_an_unknown_one() {
    let w = world().await;
    let before = w.snapshot().await;
    let bad_headers = [
        None,
        Some("Bearer nope"),
        Some("Bearer "),
        Some(ADMIN),
        Some("Basic dGVzdA=="),
    ];
    for (method, path, body) in w.guarded() {
        for header in bad_headers {
            let mut req = w.app.req(method.clone(), &path, None);
            if let Some(h) = header {
                req = req.header(reqwest::header::AUTHORIZATION, h);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let context = format!("{method} {path} with {header:?}");
            assert_problem(req.send().await.unwrap(), 401, "unauthorized", &context).await;
        }
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_staff_token_of_another_restaurant_is_403() {
    let w = world().await;
    let before = w.snapshot().await;
    for (method, path, body) in w.guarded().into_iter().skip(1) {
        let res = w
            .app
            .send(method.clone(), &path, Some(&w.b.staff), body)
            .await;
        assert_problem(res, 403, "forbidden", &format!("{method} {path}")).await;
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_reservation_token_of_another_reservation_is_403() {
    let w = world().await;
    let before = w.snapshot().await;
    let id = &w.hold_a.0;
    for token in [&w.other_hold_a.1, &w.hold_b.1] {
        for (method, path, body) in [
            (Method::GET, format!("/v1/reservations/{id}"), None),
            (
                Method::POST,
                format!("/v1/reservations/{id}/confirm"),
                Some(json!({"guest": {"name": "Mallory"}})),
            ),
            (Method::DELETE, format!("/v1/reservations/{id}"), None),
        ] {
            let res = w.app.send(method.clone(), &path, Some(token), body).await;
            assert_problem(res, 403, "forbidden", &format!("{method} {path}")).await;
        }
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn a_reservation_token_cannot_do_staff_work_not_even_on_its_own_reservation() {
    let w = world().await;
    let before = w.snapshot().await;
    for (method, path, body) in w.guarded() {
        let a_holders_right = path.starts_with("/v1/reservations/") && method != Method::PATCH;
        if a_holders_right {
            continue;
        }
        let res = w
            .app
            .send(method.clone(), &path, Some(&w.hold_a.1), body)
            .await;
        assert_problem(res, 403, "forbidden", &format!("{method} {path}")).await;
    }
    let res = w
        .app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(&w.a.staff),
            Some(restaurant_body(json!([]))),
        )
        .await;
    assert_problem(res, 403, "forbidden", "staff creating a restaurant").await;
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn an_unknown_resource_is_404_before_403_and_an_unknown_token_401_before_404() {
    let w = world().await;
    let before = w.snapshot().await;
    let cases = [
        (Method::GET, format!("/v1/reservations/{UNKNOWN}"), None),
        (Method::DELETE, format!("/v1/reservations/{UNKNOWN}"), None),
        (
            Method::POST,
            format!("/v1/reservations/{UNKNOWN}/confirm"),
            Some(json!({"guest": {"name": "Ada"}})),
        ),
        (
            Method::PATCH,
            format!("/v1/reservations/{UNKNOWN}"),
            Some(json!({"status": "seated"})),
        ),
        (
            Method::PATCH,
            format!("/v1/restaurants/{UNKNOWN}"),
            Some(json!({"name": "X"})),
        ),
        (
            Method::PUT,
            format!("/v1/restaurants/{UNKNOWN}/tables/t1"),
            Some(json!({"max_party": 2})),
        ),
        (
            Method::DELETE,
            format!("/v1/restaurants/{UNKNOWN}/tables/t1"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/restaurants/{UNKNOWN}/reservations?date={}", w.date),
            None,
        ),
        (
            Method::POST,
            format!("/v1/restaurants/{UNKNOWN}/walk-ins"),
            Some(json!({"party_size": 2})),
        ),
        (
            Method::DELETE,
            format!("/v1/restaurants/{}/tables/zz", w.a.id),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let context = format!("{method} {path}");
        for token in [&w.b.staff, &w.hold_b.1] {
            let res = w
                .app
                .send(method.clone(), &path, Some(token), body.clone())
                .await;
            assert_problem(res, 404, "not-found", &context).await;
        }
        let res = w
            .app
            .send(method.clone(), &path, Some("nope"), body.clone())
            .await;
        assert_problem(res, 401, "unauthorized", &context).await;
    }
    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn the_admin_token_may_do_everything() {
    let w = world().await;
    let (app, rid) = (&w.app, &w.a.id);
    let created = app
        .send(
            Method::POST,
            "/v1/restaurants",
            Some(ADMIN),
            Some(restaurant_body(json!([{"max_party": 2}]))),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let steps = [
        (
            Method::PATCH,
            format!("/v1/restaurants/{rid}"),
            Some(json!({"name": "Admin's"})),
            StatusCode::OK,
        ),
        (
            Method::PUT,
            format!("/v1/restaurants/{rid}/tables/t9"),
            Some(json!({"max_party": 8})),
            StatusCode::CREATED,
        ),
        (
            Method::DELETE,
            format!("/v1/restaurants/{rid}/tables/t9"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("/v1/reservations/{}/confirm", w.hold_a.0),
            Some(json!({"guest": {"name": "Ada"}})),
            StatusCode::OK,
        ),
        (
            Method::GET,
            format!("/v1/reservations/{}", w.hold_a.0),
            None,
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            format!("/v1/reservations/{}", w.hold_a.0),
            Some(json!({"status": "seated"})),
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            format!("/v1/reservations/{}", w.other_hold_a.0),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::GET,
            format!("/v1/reservations/{}", w.hold_b.0),
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/v1/restaurants/{rid}/walk-ins"),
            Some(json!({"party_size": 2})),
            StatusCode::CREATED,
        ),
    ];
    for (method, path, body, status) in steps {
        let res = app.send(method.clone(), &path, Some(ADMIN), body).await;
        assert_eq!(
            res.status(),
            status,
            "{method} {path}: {}",
            res.text().await.unwrap()
        );
    }
    let list = app.staff_list(rid, ADMIN, &w.date).await;
    let statuses: Vec<_> = list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("seated"), json!("released")]);
    assert_eq!(list["reservations"][0]["guest"]["name"], "Ada");
}

#[tokio::test]
async fn staff_may_do_what_a_reservation_token_may_and_the_token_still_reads_it() {
    let w = world().await;
    let (app, staff) = (&w.app, &w.a.staff);
    let (id, token) = &w.hold_a;

    let res = app
        .send(
            Method::POST,
            &format!("/v1/reservations/{id}/confirm"),
            Some(staff),
            Some(json!({"guest": {"name": "Ada", "phone": "+33 1 23 45 67 89"}})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = app.get_reservation(id, staff).await.json().await.unwrap();
    assert_eq!(v["status"], "confirmed");
    assert_eq!(v["guest"]["phone"], "+33 1 23 45 67 89");

    assert_eq!(
        app.delete_reservation(id, staff).await.status(),
        StatusCode::NO_CONTENT
    );
    let res = app.get_reservation(id, token).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a reservation's token keeps working for GET"
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["guest"]["name"], "Ada", "the token holder sees the guest");
}

#[tokio::test]
async fn a_reservation_token_reads_confirms_and_releases_its_own_reservation() {
    let w = world().await;
    let (id, token) = &w.hold_b;
    let v: Value = w.app.get_reservation(id, token).await.json().await.unwrap();
    assert_eq!(v["status"], "held");
    assert_eq!(w.app.confirm(id, token).await.status(), StatusCode::OK);
    assert_eq!(
        w.app.delete_reservation(id, token).await.status(),
        StatusCode::NO_CONTENT
    );
    let v: Value = w.app.get_reservation(id, token).await.json().await.unwrap();
    assert_eq!(v["status"], "cancelled");
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let w = world().await;
    let path = format!("/v1/restaurants/{}/reservations?date={}", w.a.id, w.date);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let res = w
            .app
            .req(Method::GET, &path, None)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("{scheme} {}", w.a.staff),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{scheme}");
    }
}

/// Answers that carry a bearer token or a guest's details are kept by no cache and read by no
/// browser as anything but JSON: every API answer says `no-store` and `nosniff`, errors too;
/// the pages keep their own `no-cache`.
#[tokio::test]
async fn api_answers_are_not_stored_by_caches() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let held = app.hold(&f.id, &date, "19:00", 2).await;
    let again = app.hold(&f.id, &date, "19:00", 7).await;
    let missing = app
        .send(
            Method::GET,
            &format!("/v1/reservations/{}", uuid::Uuid::new_v4()),
            Some(ADMIN),
            None,
        )
        .await;
    let no_route = app
        .send(Method::GET, "/v1/restaurants/", Some(ADMIN), None)
        .await;
    assert_eq!(no_route.status(), 404);
    for (what, res) in [
        ("201 hold", held),
        ("422 hold", again),
        ("404", missing),
        ("404 of no route", no_route),
    ] {
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    }
    let page = reqwest::get(format!("{}/", app.base)).await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
}
