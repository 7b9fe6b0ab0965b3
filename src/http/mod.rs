//! The HTTP edge: parses wire DTOs into domain types and maps errors to problem+json.
mod asyncapi;
pub mod auth;
mod body;
mod calendar;
pub mod client;
pub mod dto;
pub mod error;
mod idempotency;
pub mod limits;
pub mod openapi;
mod ops;
mod reservations;
mod restaurants;
pub mod socket;
mod socket_frames;
mod socket_writer;
pub mod span;
mod strict;
mod waitlist;

use crate::booking::Booking;
use crate::metrics::Metrics;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, Route};
use error::ApiError;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

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
    /// The open WebSockets, which close with 1001 on a drain (SIGTERM, after the grace period).
    pub sockets: Arc<socket::Sockets>,
}

/// A path no route serves: `404`, with the API's cache headers under `/v1/` like any answer there.
async fn not_found(req: HttpRequest) -> HttpResponse {
    let mut res = actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
        "route {}",
        req.path()
    )));
    if req.path().starts_with("/v1/") {
        no_store(res.headers_mut());
    }
    res
}

/// The pattern of the resource a request was routed to, as its span and its metrics name it
/// (`HttpRequest::match_pattern` would walk the routes and their regexes again, per request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutePattern(pub &'static str);

/// A resource serving `routes`, and `HEAD` wherever it serves `GET` (actix-http sends a HEAD
/// answer's head alone); any other method is a `405` problem whose `Allow` lists them. Its
/// requests carry its pattern (`RoutePattern`), which their span records once routed.
fn resource(
    path: &'static str,
    routes: Vec<(Method, Route)>,
) -> impl actix_web::dev::HttpServiceFactory {
    let allow: Arc<str> = routes
        .iter()
        .flat_map(|(m, _)| match *m {
            Method::GET => vec!["GET", "HEAD"],
            _ => vec![m.as_str()],
        })
        .collect::<Vec<_>>()
        .join(", ")
        .into();
    let mut res = web::resource(path).app_data(RoutePattern(path));
    for (method, route) in routes {
        res = res.route(match method {
            Method::GET => route
                .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head())),
            _ => route.method(method),
        });
    }
    res.default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
    }))
    .wrap_fn(move |req, srv| {
        tracing::Span::current().record("http.route", path);
        let answer = actix_web::dev::Service::call(srv, req);
        async move {
            let mut res = answer.await?;
            if path.starts_with("/v1/") {
                no_store(res.headers_mut());
            }
            Ok(res)
        }
    })
}

/// An API answer may carry a bearer token (a hold's, a join's, a new restaurant's staff token)
/// or a guest's details: no cache keeps it, and no browser reads it as anything but its type.
fn no_store(h: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{HeaderValue, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

async fn page(req: HttpRequest) -> error::Result<HttpResponse> {
    crate::web::page(&req).ok_or_else(|| ApiError::NotFound(format!("route {}", req.path())))
}

/// The diner app and the staff dashboard: `GET`/`HEAD`; other methods are `405` problems.
fn pages(cfg: &mut web::ServiceConfig) {
    for path in crate::web::ROUTES {
        cfg.service(resource(path, vec![(Method::GET, web::to(page))]));
    }
}

/// Every route of the API (see docs/http-api.md), with problem+json for every extractor error.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use Method as M;
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
    .app_data(web::PathConfig::default().error_handler(|e, _| error::path_error(e).into()))
    .service(resource(
        "/v1/restaurants",
        vec![
            (M::GET, web::to(restaurants::list)),
            (M::POST, web::to(restaurants::create)),
        ],
    ))
    .service(resource(
        "/v1/restaurants/{rid}",
        vec![
            (M::GET, web::to(restaurants::get)),
            (M::PATCH, web::to(restaurants::patch)),
        ],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/tables/{tid}",
        vec![
            (M::PUT, web::to(restaurants::put_table)),
            (M::DELETE, web::to(restaurants::delete_table)),
        ],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/availability",
        vec![(M::GET, web::to(restaurants::availability))],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/holds",
        vec![(M::POST, web::to(restaurants::hold))],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/reservations",
        vec![(M::GET, web::to(restaurants::staff_list))],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/walk-ins",
        vec![(M::POST, web::to(restaurants::walk_in))],
    ))
    .service(resource(
        "/v1/restaurants/{rid}/waitlist",
        vec![
            (M::GET, web::to(waitlist::staff_list)),
            (M::POST, web::to(waitlist::join)),
        ],
    ))
    .service(resource(
        "/v1/waitlist/{id}",
        vec![
            (M::GET, web::to(waitlist::get)),
            (M::DELETE, web::to(waitlist::delete)),
        ],
    ))
    .service(resource(
        "/v1/reservations/{id}/confirm",
        vec![(M::POST, web::to(reservations::confirm))],
    ))
    .service(resource(
        "/v1/reservations/{id}/calendar",
        vec![(M::GET, web::to(calendar::calendar))],
    ))
    .service(resource(
        "/v1/reservations/{id}",
        vec![
            (M::GET, web::to(reservations::get)),
            (M::DELETE, web::to(reservations::delete)),
            (M::PATCH, web::to(reservations::patch)),
        ],
    ))
    .service(resource(
        "/v1/live",
        vec![(M::GET, web::to(socket::endpoint))],
    ))
    .service(resource("/healthz", vec![(M::GET, web::to(ops::healthz))]))
    .service(resource("/readyz", vec![(M::GET, web::to(ops::readyz))]))
    .service(resource("/metrics", vec![(M::GET, web::to(ops::metrics))]))
    .service(resource(
        "/openapi.json",
        vec![(M::GET, web::to(openapi::openapi))],
    ))
    .service(resource(
        "/asyncapi.json",
        vec![(M::GET, web::to(openapi::asyncapi))],
    ))
    .configure(pages)
    .default_service(web::to(not_found));
}
