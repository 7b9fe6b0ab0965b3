//! One API error type; the one place that turns failures into problem+json (RFC 9457).
use crate::booking::BookingError;
use crate::domain::availability::{LostReason, SlotCount};
use crate::domain::FieldError;
use crate::store::StoreError;
use crate::wire::problem::{Alternative, FieldErrorBody};
use crate::wire::Problem;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::Value;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or unknown token")]
    Unauthorized,
    #[error("this token has no rights to this resource")]
    Forbidden,
    #[error("this Origin may not open live connections")]
    OriginNotAllowed,
    #[error("{0} not found")]
    NotFound(String),
    /// With the methods the resource serves, for the `Allow` header.
    #[error("method not allowed")]
    MethodNotAllowed(std::sync::Arc<str>),
    #[error("{}", match .reason {
        LostReason::Table => "no fitting table or combination is free at this time",
        LostReason::Pacing => "this time's pacing window is full",
    })]
    SlotUnavailable {
        alternatives: Vec<SlotCount>,
        reason: LostReason,
    },
    #[error("{0}")]
    InvalidTransition(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the hold expired")]
    HoldExpired,
    /// Over a per-client limit (`limit` names it); retry after `retry_after` seconds.
    #[error("{detail}")]
    RateLimited {
        limit: &'static str,
        retry_after: u64,
        detail: String,
    },
    #[error("body over 64 KiB")]
    PayloadTooLarge,
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("same Idempotency-Key, different body")]
    IdempotencyConflict,
    #[error("temporarily unavailable")]
    Unavailable(String),
    /// Not ready, with a reason safe to show (draining, bus unreachable).
    #[error("{0}")]
    NotReady(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn name_and_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::Unauthorized => ("unauthorized", "Unauthorized"),
            ApiError::Forbidden | ApiError::OriginNotAllowed => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            ApiError::SlotUnavailable { .. } => ("slot-unavailable", "Slot unavailable"),
            ApiError::InvalidTransition(_) => ("invalid-transition", "Invalid status transition"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::HoldExpired => ("hold-expired", "Hold expired"),
            ApiError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            ApiError::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Validation(_) => ("validation", "Validation failed"),
            ApiError::IdempotencyConflict => ("idempotency-conflict", "Idempotency key reused"),
            ApiError::Unavailable(_) | ApiError::NotReady(_) => {
                ("unavailable", "Service unavailable")
            }
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (name, title) = self.name_and_title();
        let detail = match self {
            ApiError::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            ApiError::Unavailable(_) => "the store is unreachable; retry shortly".to_owned(),
            e => e.to_string(),
        };
        let mut p = Problem::new(name, title, self.status_code().as_u16()).detail(detail);
        match self {
            ApiError::Validation(errs) => {
                p.errors = Some(errs.iter().map(FieldErrorBody::from).collect())
            }
            ApiError::SlotUnavailable {
                alternatives,
                reason,
            } => {
                p.alternatives = Some(alternatives.iter().map(Alternative::from).collect());
                p.reason = Some(reason.as_str().to_owned());
            }
            ApiError::RateLimited { limit, .. } => p.limit = Some((*limit).to_owned()),
            _ => {}
        }
        p
    }

    /// The problem document as JSON text.
    pub fn problem_json(&self) -> String {
        serde_json::to_string(&self.problem()).expect("problems are plain data")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::OriginNotAllowed => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::SlotUnavailable { .. }
            | ApiError::InvalidTransition(_)
            | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::HoldExpired => StatusCode::GONE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::IdempotencyConflict => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Unavailable(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "request failed")
            }
            _ => {}
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        if matches!(self, ApiError::Unavailable(_) | ApiError::NotReady(_)) {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        if let ApiError::RateLimited { retry_after, .. } = self {
            res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            res.insert_header((header::ALLOW, allow.as_ref()));
        }
        if matches!(self, ApiError::Unauthorized) {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        res.body(self.problem_json())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // For the log: the store's context and its whole source chain.
        let chain = format!("{e:#}");
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(chain),
            StoreError::Internal(_) => ApiError::Internal(chain),
        }
    }
}

impl From<BookingError> for ApiError {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::NotFound(what) => ApiError::NotFound(what.to_owned()),
            BookingError::Validation(errs) => ApiError::Validation(errs),
            BookingError::SlotUnavailable {
                alternatives,
                reason,
            } => ApiError::SlotUnavailable {
                alternatives,
                reason,
            },
            BookingError::InvalidTransition(s) => ApiError::InvalidTransition(s),
            BookingError::HoldExpired => ApiError::HoldExpired,
            BookingError::LiveHoldCap => ApiError::RateLimited {
                limit: "live-holds",
                retry_after: 30,
                detail: e.to_string(),
            },
            BookingError::Conflict(s) => ApiError::Conflict(s),
            BookingError::Store(e) => e.into(),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Validation(vec![e])
    }
}

/// Maps actix's JSON extractor errors onto the problem types (`413`, `415`, `400`).
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { .. } | E::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
        E::ContentType => ApiError::UnsupportedMediaType,
        E::Deserialize(e) => ApiError::BadRequest(format!(
            "malformed JSON body: {}",
            without_type_names(&e.to_string())
        )),
        e => ApiError::BadRequest(format!("unreadable body: {e}")),
    }
}

/// A path segment that does not parse (a non-UUID id, a bad table id) is a `400`.
pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    use actix_web::error::PathError;
    match err {
        PathError::Deserialize(e) => ApiError::BadRequest(e.to_string()),
        e => ApiError::BadRequest(format!("bad path: {e}")),
    }
}

/// A JSON value that does not fit the expected shape is a `400`.
pub fn shape_error(e: serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!(
        "body does not match the expected shape: {}",
        without_type_names(&e.to_string())
    ))
}

/// serde names the Rust type it expected (`expected struct GuestInput`); a client knows JSON
/// objects, not our types.
fn without_type_names(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("expected struct ") {
        out.push_str(&rest[..i]);
        out.push_str("expected an object");
        let after = &rest[i + "expected struct ".len()..];
        let name = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        rest = &after[name..];
    }
    out.push_str(rest);
    out
}

/// A request body as its DTO. Only an object has members: serde would also read an array
/// positionally into a struct, so arrays and scalars are refused here, and read strictly
/// ([`Strict`](super::strict::Strict)) below.
pub fn from_body<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    if !v.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    T::deserialize(super::strict::Strict(v.clone())).map_err(shape_error)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shape_error_names_json_kinds_not_our_types() {
        assert_eq!(
            super::without_type_names(
                "invalid type: string \"x\", expected struct GuestInput at line 1 column 30"
            ),
            "invalid type: string \"x\", expected an object at line 1 column 30"
        );
        assert_eq!(
            super::without_type_names("missing field `date`"),
            "missing field `date`"
        );
    }
}
