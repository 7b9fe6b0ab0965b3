use super::error::{ApiError, Result};
use super::{ApiDoc, AppState};
use actix_web::{web, HttpResponse};
use serde_json::json;
use std::sync::atomic::Ordering;
use utoipa::OpenApi;

#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "the process is up")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/readyz",
    responses((status = 200, description = "store and bus reachable"),
              (status = 503, description = "draining, or the store or bus is unreachable")))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::NotReady(
            "draining: this instance is shutting down".into(),
        ));
    }
    state.booking.store().ping().await?;
    if let Some(why) = state.bus.degraded() {
        return Err(ApiError::NotReady(format!("bus degraded: {why}")));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "store": "ok", "bus": "ok"})))
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
