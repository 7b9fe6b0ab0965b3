use super::auth::{require, Authed, Caller};
use super::body::JsonBody;
use super::dto::*;
use super::error::{from_body, Result};
use super::idempotency;
use super::idempotency::{to_value, view_value};
use super::AppState;
use crate::domain::{FieldError, Reservation, ReservationId, Status};
use crate::wire::ReservationView;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

/// The reservation (404), then the caller's rights to it (403); the caller (401) came first.
async fn owned(who: &Caller, state: &AppState, id: ReservationId) -> Result<Reservation> {
    let r = state.booking.reservation(id.get()).await?;
    require(who.may_hold(&r))?;
    Ok(r)
}

fn view(who: &Caller, r: &Reservation) -> ReservationView {
    ReservationView::of(r, chrono::Utc::now(), who.sees_guest(r))
}

#[utoipa::path(post, path = "/v1/reservations/{id}/confirm", operation_id = "confirm",
    params(("id" = Uuid, Path, description = "the reservation's id"), super::dto::IdempotencyKey),
    request_body = ConfirmInput, security(("bearer" = [])),
    responses((status = 200, description = "the reservation, confirmed", body = ReservationView)))]
pub async fn confirm(
    req: HttpRequest,
    path: web::Path<ReservationId>,
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = owned(&who, &state, *path).await?;
    let state: &AppState = &state;
    let body: &Value = &body;
    idempotency::once(state, &req, body, |keyed| async move {
        // A body of the wrong shape is a final answer too: recorded under the key.
        let input: ConfirmInput = from_body(body)?;
        let idem = keyed.map(|k| k.idem(StatusCode::OK, |r, _| view_value(r)));
        let r = state
            .booking
            .confirm(r.id, input.guest.into(), input.notes, idem)
            .await?;
        Ok((StatusCode::OK, to_value(&view(&who, &r))?))
    })
    .await
}

#[utoipa::path(get, path = "/v1/reservations/{id}", operation_id = "get_reservation",
    params(("id" = Uuid, Path, description = "the reservation's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the reservation, with its guest", body = ReservationView)))]
pub async fn get(
    path: web::Path<ReservationId>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = owned(&who, &state, *path).await?;
    Ok(HttpResponse::Ok().json(view(&who, &r)))
}

#[utoipa::path(delete, path = "/v1/reservations/{id}", operation_id = "delete_reservation",
    params(("id" = Uuid, Path, description = "the reservation's id")),
    security(("bearer" = [])),
    responses((status = 204, description = "released or cancelled; repeats too")))]
pub async fn delete(
    path: web::Path<ReservationId>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = owned(&who, &state, *path).await?;
    // A reservation's own token or the waitlist entry's that it came from: the diner's own
    // cancellation, not the restaurant's.
    let by_staff = !matches!(who, Caller::Holder { .. } | Caller::Entrant { .. });
    state.booking.release_by(r.id, by_staff).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(patch, path = "/v1/reservations/{id}", operation_id = "patch_reservation",
    params(("id" = Uuid, Path, description = "the reservation's id")),
    request_body = StatusInput, security(("bearer" = [])),
    responses((status = 200, description = "the reservation, moved on", body = ReservationView)))]
pub async fn patch(
    path: web::Path<ReservationId>,
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = owned(&who, &state, *path).await?;
    require(who.may_staff(r.restaurant_id))?;
    let input: StatusInput = from_body(&body)?;
    let to = Status::parse(&input.status)
        .filter(|s| matches!(s, Status::Seated | Status::Completed | Status::NoShow))
        .ok_or_else(|| FieldError::new("status", "must be one of seated, completed, no_show"))?;
    let r = state.booking.set_status(r.id, to).await?;
    Ok(HttpResponse::Ok().json(view(&who, &r)))
}
