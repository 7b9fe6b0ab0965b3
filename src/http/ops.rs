use super::error::{ApiError, Result};
use super::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz` when the instance takes traffic.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: String,
    #[schema(example = "ok")]
    pub store: String,
    #[schema(example = "ok")]
    pub bus: String,
}

#[utoipa::path(get, path = "/healthz", operation_id = "healthz",
    responses((status = 200, description = "the process is up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
    })
}

/// How long `/readyz` waits for the store: under a load balancer's health check timeout
/// (an ALB waits 5 s by default).
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

#[utoipa::path(get, path = "/readyz", operation_id = "readyz",
    responses((status = 200, description = "store and bus reachable", body = Ready)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse> {
    if state.draining.load(Ordering::SeqCst) {
        return Err(ApiError::NotReady(
            "draining: this instance is shutting down".into(),
        ));
    }
    // A store that hangs (paused, or a partition that drops without closing) is not ready:
    // said within READY_WITHIN, not after the store's own timeouts and retries (40 s).
    tokio::time::timeout(READY_WITHIN, state.booking.store().ping())
        .await
        .map_err(|_| {
            ApiError::NotReady(format!(
                "the store did not answer within {} s",
                READY_WITHIN.as_secs()
            ))
        })??;
    if let Some(why) = state.bus.degraded() {
        return Err(ApiError::NotReady(format!("bus degraded: {why}")));
    }
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready".into(),
        store: "ok".into(),
        bus: "ok".into(),
    }))
}

#[utoipa::path(get, path = "/metrics", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String,
               content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
