//! `Idempotency-Key`: the first final answer is replayed for the same key and body (24 h).
use super::auth::bearer;
use super::error::{ApiError, Result};
use super::AppState;
use crate::store::IdemBegin;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::Value;
use std::future::Future;

pub type Answer = (StatusCode, Value);

fn respond(status: StatusCode, body: String, replayed: bool) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.content_type(if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    });
    if replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.body(body)
}

/// Runs `f` at most once per key: scoped by token, method and path; bodies compare as JSON.
pub async fn once<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    body: &Value,
    f: F,
) -> Result<HttpResponse>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Answer>>,
{
    let Some(key) = req.headers().get("Idempotency-Key") else {
        let (status, v) = f().await?;
        return Ok(respond(status, v.to_string(), false));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (b' '..=b'~').contains(&b)))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters or spaces".into(),
            )
        })?;
    let scope = format!(
        "{}\n{}\n{}\n{}",
        bearer(req).unwrap_or(""),
        req.method(),
        req.path(),
        key
    );
    let (scope, fingerprint) = (
        crate::token::hash(&scope),
        crate::token::hash(&body.to_string()),
    );
    let store = state.booking.store();
    match store
        .idem_begin(&scope, &fingerprint, chrono::Utc::now())
        .await?
    {
        IdemBegin::Replay { status, body } => Ok(respond(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            body,
            true,
        )),
        IdemBegin::Mismatch => Err(ApiError::IdempotencyConflict),
        IdemBegin::InFlight => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still in flight".into(),
        )),
        IdemBegin::Fresh => {
            let out = f().await;
            let (status, text) = match &out {
                Ok((s, v)) => (*s, v.to_string()),
                Err(e) => (e.status_code(), e.problem_json()),
            };
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                store.idem_abort(&scope).await?;
            } else {
                store.idem_finish(&scope, status.as_u16(), &text).await?;
            }
            out.map(|_| respond(status, text, false))
        }
    }
}
