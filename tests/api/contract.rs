//! The edge's contract: `Allow` on 405, auth before the body, integers as JSON Schema counts
//! them, and the two documents the server describes itself with.
use crate::kit::api::*;
use crate::kit::app::TestApp;
use crate::problem::assert_problem;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn json_body(res: reqwest::Response, what: &str) -> Value {
    assert_eq!(res.status(), StatusCode::OK, "{what}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_405_lists_the_methods_of_the_path_in_allow() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    for (method, path, allow) in [
        (
            Method::DELETE,
            "/v1/restaurants".to_owned(),
            "GET, HEAD, POST",
        ),
        (
            Method::PUT,
            format!("/v1/restaurants/{}/holds", f.id),
            "POST",
        ),
        (
            Method::POST,
            format!("/v1/reservations/{}", f.id),
            "GET, HEAD, DELETE, PATCH",
        ),
        (Method::OPTIONS, "/healthz".to_owned(), "GET, HEAD"),
        (Method::POST, "/staff".to_owned(), "GET, HEAD"),
    ] {
        let res = app.send(method.clone(), &path, None, None).await;
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        assert_problem(res, 405, "method-not-allowed", &path).await;
    }
}

#[tokio::test]
async fn head_is_served_wherever_get_is_with_the_same_head_and_no_body() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    for path in [
        "/healthz".to_owned(),
        "/v1/restaurants".to_owned(),
        format!("/v1/restaurants/{}", f.id),
        format!(
            "/v1/restaurants/{}/availability?date={}&party_size=2",
            f.id,
            date_in(3)
        ),
        "/staff".to_owned(),
    ] {
        let get = app.send(Method::GET, &path, None, None).await;
        let head = app.send(Method::HEAD, &path, None, None).await;
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        let ct = |r: &reqwest::Response| r.headers().get("content-type").cloned();
        assert_eq!(ct(&head), ct(&get), "{path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "{path}: a HEAD answer has no body"
        );
    }
}

#[tokio::test]
async fn an_unknown_token_is_401_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let res = app
        .req(
            Method::PATCH,
            &format!("/v1/restaurants/{}", f.id),
            Some("nope"),
        )
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::UNAUTHORIZED.as_u16(),
        "unauthorized",
        "unauthorized",
    )
    .await;
    let res = app
        .req(
            Method::PATCH,
            &format!("/v1/restaurants/{}", f.id),
            Some(&f.staff),
        )
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::BAD_REQUEST.as_u16(),
        "bad-request",
        "bad-request",
    )
    .await;
}

#[tokio::test]
async fn integral_numbers_count_as_integers() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let body = json!({"date": date_in(3), "time": "19:00", "party_size": 2.0});
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", f.id),
            None,
            Some(body),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body = json!({"date": date_in(3), "time": "19:00", "party_size": 2.5});
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", f.id),
            None,
            Some(body),
        )
        .await;
    assert_problem(
        res,
        StatusCode::BAD_REQUEST.as_u16(),
        "bad-request",
        "bad-request",
    )
    .await;
}

#[tokio::test]
async fn the_documents_describe_every_problem_and_every_frame() {
    let app = TestApp::spawn().await;
    let doc = json_body(
        app.send(Method::GET, "/openapi.json", None, None).await,
        "openapi",
    )
    .await;
    let confirm = &doc["paths"]["/v1/reservations/{id}/confirm"]["post"];
    for status in [
        "200", "400", "401", "403", "404", "409", "410", "413", "415", "422", "503",
    ] {
        assert!(
            confirm["responses"].get(status).is_some(),
            "confirm {status}"
        );
    }
    assert_eq!(
        confirm["responses"]["410"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    let text = doc.to_string();
    assert!(!text.contains("SPEC"), "{text}");
    let asyncapi: Value = json_body(
        app.send(Method::GET, "/asyncapi.json", None, None).await,
        "asyncapi",
    )
    .await;
    assert!(asyncapi["asyncapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(asyncapi["channels"]["live"]["address"], "/v1/live");
    for t in [
        "ClientFrame",
        "SnapshotFrame",
        "UpdateFrame",
        "HoldResultFrame",
        "ErrorFrame",
        "PongFrame",
    ] {
        assert!(asyncapi["components"]["schemas"].get(t).is_some(), "{t}");
    }
}
