//! The HTTP edge: parses wire DTOs into domain types and maps errors to problem+json.
pub mod auth;
pub mod client;
pub mod dto;
pub mod error;
mod idempotency;
pub mod limits;
mod ops;
mod reservations;
mod restaurants;
pub mod socket;

use crate::booking::Booking;
use crate::metrics::Metrics;
use crate::wire;
use actix_web::{web, HttpRequest, HttpResponse};
use error::ApiError;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use utoipa::OpenApi;
use uuid::Uuid;

pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub booking: Booking,
    pub admin_token_hash: String,
    pub metrics: Metrics,
    pub draining: Arc<AtomicBool>,
    pub hub: crate::live::hub::Hub,
    pub bus: Arc<dyn crate::live::bus::Bus>,
    pub live: socket::LiveSettings,
    pub limits: Arc<limits::Limits>,
    /// Turns true when WebSockets must close with 1001 (SIGTERM, after the grace period).
    pub drain: tokio::sync::watch::Receiver<bool>,
}

pub fn parse_uuid(s: &str, what: &str) -> error::Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| ApiError::BadRequest(format!("`{s}` is not a valid {what} id")))
}

async fn not_found(req: HttpRequest) -> error::Result<HttpResponse> {
    Err(ApiError::NotFound(format!("route {}", req.path())))
}

async fn method_not_allowed() -> error::Result<HttpResponse> {
    Err(ApiError::MethodNotAllowed)
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tablecast", description = "Real-time restaurant reservations (SPEC v1)"),
    paths(
        restaurants::create, restaurants::list, restaurants::get, restaurants::patch,
        restaurants::put_table, restaurants::delete_table, restaurants::availability,
        restaurants::hold, restaurants::staff_list, restaurants::walk_in,
        reservations::confirm, reservations::get, reservations::delete, reservations::patch,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(
        dto::RestaurantInput, dto::RestaurantPatchInput, dto::TableInput, dto::HoursInput,
        dto::TurnRuleInput, dto::ConfirmInput, dto::GuestInput, dto::StatusInput,
        dto::WalkInInput, dto::RestaurantDoc, wire::HoldInput, wire::AvailabilityBody, wire::SlotBody,
        wire::Problem, wire::ReservationView, wire::HeldReservation,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

async fn page(req: HttpRequest) -> error::Result<HttpResponse> {
    crate::web::page(&req).ok_or_else(|| ApiError::NotFound(format!("route {}", req.path())))
}

/// The diner app and the staff dashboard: `GET`/`HEAD`; other methods are `405` problems.
fn pages(cfg: &mut web::ServiceConfig) {
    let read = || actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head());
    for path in crate::web::ROUTES {
        cfg.service(resource(path).route(web::route().guard(read()).to(page)));
    }
}

/// Every route of SPEC section 3, with problem+json for every extractor error.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(BODY_LIMIT)
            .error_handler(|e, _| error::json_error(e).into()),
    )
    .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
    )
    .service(
        resource("/v1/restaurants")
            .route(web::post().to(restaurants::create))
            .route(web::get().to(restaurants::list)),
    )
    .service(
        resource("/v1/restaurants/{rid}")
            .route(web::get().to(restaurants::get))
            .route(web::patch().to(restaurants::patch)),
    )
    .service(
        resource("/v1/restaurants/{rid}/tables/{tid}")
            .route(web::put().to(restaurants::put_table))
            .route(web::delete().to(restaurants::delete_table)),
    )
    .service(
        resource("/v1/restaurants/{rid}/availability")
            .route(web::get().to(restaurants::availability)),
    )
    .service(resource("/v1/restaurants/{rid}/holds").route(web::post().to(restaurants::hold)))
    .service(
        resource("/v1/restaurants/{rid}/reservations")
            .route(web::get().to(restaurants::staff_list)),
    )
    .service(resource("/v1/restaurants/{rid}/walk-ins").route(web::post().to(restaurants::walk_in)))
    .service(resource("/v1/reservations/{id}/confirm").route(web::post().to(reservations::confirm)))
    .service(
        resource("/v1/reservations/{id}")
            .route(web::get().to(reservations::get))
            .route(web::delete().to(reservations::delete))
            .route(web::patch().to(reservations::patch)),
    )
    .service(resource("/v1/live").route(web::get().to(socket::endpoint)))
    .service(resource("/healthz").route(web::get().to(ops::healthz)))
    .service(resource("/readyz").route(web::get().to(ops::readyz)))
    .service(resource("/metrics").route(web::get().to(ops::metrics)))
    .service(resource("/openapi.json").route(web::get().to(ops::openapi)))
    .configure(pages)
    .default_service(web::to(not_found));
}
