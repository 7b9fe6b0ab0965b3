//! A JSON request body, read only when it says it is `application/json`: a body of another type
//! (`text/json`, `application/merge-patch+json`, a form, none) is `415`. actix's own extractor
//! also takes any `*/json` and any `+json` type.
use super::error::ApiError;
use actix_web::{dev::Payload, mime, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

pub struct JsonBody(pub Value);

impl std::ops::Deref for JsonBody {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

/// `application/json`, with or without parameters (`; charset=utf-8`).
fn is_json(req: &HttpRequest) -> bool {
    matches!(req.mime_type(), Ok(Some(m))
        if m.type_() == mime::APPLICATION && m.subtype() == mime::JSON && m.suffix().is_none())
}

impl FromRequest for JsonBody {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(req) {
            return Box::pin(async { Err(ApiError::UnsupportedMediaType.into()) });
        }
        let json = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move { Ok(JsonBody(json.await?.into_inner())) })
    }
}

/// A part of a hold or join request as its handler takes it (the path's restaurant, the body)
/// when a request that fails to read (a restaurant id that is not one; a body not JSON,
/// malformed, too large) must still cost what it costs: `charge` runs first (its refusal is the
/// answer), then the part's own error is answered as actix would have (`Err(response)`).
pub async fn charged<T, F: std::future::Future<Output = Result<(), ApiError>>>(
    part: Result<T, actix_web::Error>,
    charge: impl FnOnce() -> F,
) -> Result<Result<T, actix_web::HttpResponse>, ApiError> {
    match part {
        Ok(b) => Ok(Ok(b)),
        Err(e) => {
            charge().await?;
            Ok(Err(e.error_response()))
        }
    }
}
