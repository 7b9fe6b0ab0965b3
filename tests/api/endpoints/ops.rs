//! Operations endpoints: health, readiness, metrics and the OpenAPI document.
use super::*;

#[tokio::test]
async fn health_and_readiness_answer_200() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.send(Method::GET, path, None, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_request_and_hold_counters() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    held(
        &app,
        &f.id,
        json!({"date": date_in(3), "time": "19:00", "party_size": 2}),
    )
    .await;
    // A path no route matches, and a method the holds resource does not serve.
    let res = app.send(Method::GET, "/v1/nowhere", None, None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let holds = format!("/v1/restaurants/{}/holds", f.id);
    let res = app.send(Method::GET, &holds, None, None).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let res = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ct = res.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = res.text().await.unwrap();
    assert!(
        text.contains("# TYPE tablecast_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tablecast_holds_total counter"),
        "{text}"
    );
    let won = text
        .lines()
        .find(|l| l.starts_with("tablecast_holds_total{") && l.contains("won"))
        .unwrap_or_else(|| panic!("no won holds in {text}"));
    assert!(won.ends_with(" 1"), "{won}");
    // Each request is counted under the pattern of the resource it was routed to.
    let counted = |method: &str, route: &str, status: &str| {
        text.lines().any(|l| {
            l.starts_with("tablecast_http_requests_total{")
                && l.contains(&format!("method=\"{method}\""))
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(
        counted("POST", "/v1/restaurants/{rid}/holds", "201"),
        "{text}"
    );
    assert!(
        counted("GET", "/v1/restaurants/{rid}/holds", "405"),
        "{text}"
    );
    assert!(counted("GET", "unmatched", "404"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_the_v1_paths() {
    let app = TestApp::spawn().await;
    let doc = json_body(
        app.send(Method::GET, "/openapi.json", None, None).await,
        StatusCode::OK,
        "openapi",
    )
    .await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/restaurants", &["get", "post"][..]),
        ("/v1/restaurants/{rid}", &["get", "patch"]),
        ("/v1/restaurants/{rid}/tables/{tid}", &["put", "delete"]),
        ("/v1/restaurants/{rid}/availability", &["get"]),
        ("/v1/restaurants/{rid}/holds", &["post"]),
        ("/v1/restaurants/{rid}/reservations", &["get"]),
        ("/v1/restaurants/{rid}/walk-ins", &["post"]),
        ("/v1/reservations/{id}/confirm", &["post"]),
        ("/v1/reservations/{id}", &["get", "delete", "patch"]),
    ];
    for (path, methods) in expected {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for m in methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing");
        }
    }
}
