//! `Idempotency-Key`: the first final answer is replayed for the same key and body (24 h).
//! A body that is not JSON at all is refused before the key is looked at (and, for confirms and
//! walk-ins, the caller's rights and the resource are checked first); every other final answer,
//! a body of the wrong shape included, is recorded. A request's effect records its own answer
//! in the same atomic write (see `booking::Idem`); stored answers are sealed with a key derived
//! from the request's `Idempotency-Key` and `Authorization`, which the store never keeps, so a
//! replay can return the first answer's token without any token lying in the store in clear.
use super::auth::bearer;
use super::error::{ApiError, Result};
use super::AppState;
use crate::booking::{Idem, Render};
use crate::domain::Reservation;
use crate::store::IdemBegin;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub type Answer = (StatusCode, Value);

/// An answer's body as JSON.
pub(super) fn to_value<T: serde::Serialize>(body: &T) -> Result<Value> {
    serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The reservation as its token holder or staff see it, for a recorded idempotent answer.
pub(super) fn view_value(r: &Reservation) -> Value {
    serde_json::to_value(crate::wire::ReservationView::of(
        r,
        chrono::Utc::now(),
        true,
    ))
    .unwrap_or_default()
}

const SEALED: &str = "sealed1:";

/// Seals and opens stored answers with a key only the retrying client can derive.
#[derive(Clone)]
pub struct Seal(ChaCha20Poly1305);

impl Seal {
    fn new(idempotency_key: &str, authorization: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"tablecast idempotent answer\n");
        h.update(idempotency_key.as_bytes());
        h.update(b"\n");
        h.update(authorization.as_bytes());
        Seal(ChaCha20Poly1305::new(Key::from_slice(&h.finalize())))
    }

    pub fn seal(&self, text: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), text.as_bytes())
            .expect("encryption of a short text");
        format!("{SEALED}{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    fn open(&self, stored: &str) -> Option<String> {
        let Some(hexed) = stored.strip_prefix(SEALED) else {
            // Answers recorded before sealing existed are plain text.
            return Some(stored.to_owned());
        };
        let bytes = hex::decode(hexed).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(12)?;
        let plain = self.0.decrypt(Nonce::from_slice(nonce), sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// What a fresh keyed request hands its use case: the record to write with its effect.
#[derive(Clone)]
pub struct Keyed {
    key: String,
    seal: Seal,
    /// Set by the booking layer when the effect's own write recorded the answer.
    recorded: Arc<AtomicBool>,
}

impl Keyed {
    /// The booking layer's record: `status` and the body `render` makes, sealed.
    pub fn idem(
        &self,
        status: StatusCode,
        render: impl Fn(&Reservation, Option<&str>) -> Value + Send + Sync + 'static,
    ) -> Idem {
        let seal = self.seal.clone();
        let render: Render =
            Arc::new(move |r, token| (status.as_u16(), seal.seal(&render(r, token).to_string())));
        Idem {
            key: self.key.clone(),
            render,
            recorded: self.recorded.clone(),
        }
    }
}

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

/// `v` as the fingerprint compares it: as a JSON value, so members in any order (the map is
/// sorted) and a number however it is written (`2`, `2.0` and `2e0` are one number; a number
/// with a fraction, or past 2^53, stays as written).
fn canonical(v: &Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is a distinct f64
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < EXACT => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), canonical(x))).collect())
        }
        _ => v.clone(),
    }
}

/// Runs `f` at most once per key: scoped by token, method and path; bodies compare as JSON.
/// `f` gets the record its effect must write (`None` without a key). Check the body's shape
/// inside `f`: a refusal of it is a final answer, recorded like any other.
pub async fn once<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    body: &Value,
    f: F,
) -> Result<HttpResponse>
where
    F: FnOnce(Option<Keyed>) -> Fut,
    Fut: Future<Output = Result<Answer>>,
{
    once_charged(state, req, body, || async { Ok(()) }, f).await
}

/// The path as a key's scope names it: as the router reads it (percent-encoded characters
/// decoded but for `%`, `/` and `+`), every id in it written one way (lower case), so
/// `/v1/reservations/{ID}/confirm` with the id in upper case or percent-encoded is the same path
/// as with it plain.
fn scoped_path(path: &str) -> String {
    path.split('/')
        .map(|part| match uuid::Uuid::parse_str(part) {
            Ok(id) => id.hyphenated().to_string(),
            Err(_) => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// [`once`] for a request that costs a rate token unless it is a replay: `charge` runs before
/// anything else is answered (a bad key, a key reused with another body, a key in flight, the
/// request itself), and its refusal is the answer. A replay costs nothing.
pub async fn once_charged<C, CFut, F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    body: &Value,
    charge: C,
    f: F,
) -> Result<HttpResponse>
where
    C: FnOnce() -> CFut,
    CFut: Future<Output = Result<()>>,
    F: FnOnce(Option<Keyed>) -> Fut,
    Fut: Future<Output = Result<Answer>>,
{
    let Some(key) = req.headers().get("Idempotency-Key") else {
        charge().await?;
        let (status, v) = f(None).await?;
        return Ok(respond(status, v.to_string(), false));
    };
    if req.headers().get_all("Idempotency-Key").nth(1).is_some() {
        charge().await?;
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header, not several".into(),
        ));
    }
    // Counted in characters: a header value may carry UTF-8 beyond ASCII.
    let Some(key) = std::str::from_utf8(key.as_bytes())
        .ok()
        .filter(|k| (1..=255).contains(&k.chars().count()) && !k.chars().any(char::is_control))
    else {
        charge().await?;
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 characters of UTF-8, none of them a control \
             character"
                .into(),
        ));
    };
    let scope = format!(
        "{}\n{}\n{}\n{}",
        bearer(req).unwrap_or(""),
        req.method(),
        scoped_path(req.match_info().as_str()),
        key
    );
    let (scope, fingerprint) = (
        crate::token::hash(&scope),
        crate::token::hash(&canonical(body).to_string()),
    );
    let seal = Seal::new(key, bearer(req).unwrap_or(""));
    let store = state.booking.store();
    match store
        .idem_begin(&scope, &fingerprint, chrono::Utc::now())
        .await?
    {
        IdemBegin::Replay { status, body } => {
            let body = seal.open(&body).ok_or_else(|| {
                ApiError::Internal("a recorded idempotent answer does not open".into())
            })?;
            Ok(respond(
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                body,
                true,
            ))
        }
        IdemBegin::Mismatch => {
            charge().await?;
            Err(ApiError::IdempotencyConflict)
        }
        IdemBegin::InFlight => {
            charge().await?;
            Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still in flight".into(),
            ))
        }
        IdemBegin::Fresh => {
            let recorded = Arc::new(AtomicBool::new(false));
            let keyed = Keyed {
                key: scope.clone(),
                seal: seal.clone(),
                recorded: recorded.clone(),
            };
            // Refused a token, the record is dropped below (a 429 is not recorded).
            let out = match charge().await {
                Ok(()) => f(Some(keyed)).await,
                Err(e) => Err(e),
            };
            let (status, text) = match &out {
                Ok((s, v)) => (*s, v.to_string()),
                Err(e) => (e.status_code(), e.problem_json()),
            };
            if recorded.load(Ordering::Acquire) {
                // The effect's own write recorded this answer: nothing is left to do.
            } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                store.idem_abort(&scope).await?;
            } else {
                // Answers that changed nothing (a lost race, a refused transition, a repeat).
                // Should the record fail, the key is let go, as after a 5xx: a retry runs
                // afresh rather than finding it in flight.
                let finished = store
                    .idem_finish(&scope, status.as_u16(), &seal.seal(&text))
                    .await;
                if let Err(e) = finished {
                    store.idem_abort(&scope).await?;
                    return Err(e.into());
                }
            }
            out.map(|_| respond(status, text, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_fractions_stay() {
        let one = |v: serde_json::Value| canonical(&v).to_string();
        assert_eq!(
            one(json!({"a": 2.0, "b": [-0.0, 1e2]})),
            one(json!({"b": [0, 100], "a": 2}))
        );
        assert_ne!(one(json!(2.5)), one(json!(2)));
        // Past 2^53 an f64 is not one integer: left as written.
        assert_eq!(one(json!(1e300)), json!(1e300).to_string());
    }
}
