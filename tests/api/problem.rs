//! Assertions on RFC 9457 problem answers, shared by the endpoint, bad-input and auth tests.
use reqwest::Response;
use serde_json::Value;

/// Asserts the status, the problem+json content type and the `type`/`title`/`status` members;
/// returns the problem body.
pub async fn assert_problem(res: Response, status: u16, name: &str, context: &str) -> Value {
    let got = res.status().as_u16();
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    // Every answer names the request id its log lines carry.
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok());
    let text = res.text().await.expect("body read");
    assert_eq!(got, status, "{context}: status (body {text})");
    assert!(request_id.is_some(), "{context}: no x-request-id uuid");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{context}: content type `{content_type}`"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{context}: problem body is not JSON ({e}): {text}"));
    assert_eq!(
        body["type"],
        format!("/problems/{name}"),
        "{context}: type in {body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}: title in {body}"
    );
    assert_eq!(body["status"], status, "{context}: status member in {body}");
    body
}

/// The `field` names of a `validation` problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list in {problem}"))
        .iter()
        .map(|e| {
            assert!(e["message"].is_string(), "error without message: {e}");
            e["field"].as_str().expect("field").to_owned()
        })
        .collect()
}
