use super::auth::{caller, require, Caller};
use super::dto::*;
use super::error::{from_body, ApiError, Result};
use super::idempotency;
use super::{parse_uuid, AppState};
use crate::domain::{FieldError, Reservation, Status};
use crate::wire::{Problem, ReservationView};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

/// Caller (401), then the reservation (404), then the rights to it (403).
async fn owned(req: &HttpRequest, state: &AppState, id: &str) -> Result<(Caller, Reservation)> {
    let id = parse_uuid(id, "reservation")?;
    let who = caller(req, state).await?;
    let r = state.booking.reservation(id).await?;
    require(who.may_hold(&r))?;
    Ok((who, r))
}

fn view(who: &Caller, r: &Reservation) -> Result<Value> {
    serde_json::to_value(ReservationView::of(
        r,
        chrono::Utc::now(),
        who.sees_guest(r),
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))
}

#[utoipa::path(post, path = "/v1/reservations/{id}/confirm", params(("id" = Uuid, Path)),
    request_body = ConfirmInput, security(("bearer" = [])),
    responses((status = 200, body = ReservationView), (status = 409, body = Problem), (status = 410, body = Problem)))]
pub async fn confirm(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let (who, r) = owned(&req, &state, &path).await?;
    idempotency::once(&state, &req, &body, || async {
        let input: ConfirmInput = from_body(&body)?;
        let r = state
            .booking
            .confirm(r.id, input.guest.into(), input.notes, None)
            .await?;
        Ok((StatusCode::OK, view(&who, &r)?))
    })
    .await
}

#[utoipa::path(get, path = "/v1/reservations/{id}", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReservationView), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (who, r) = owned(&req, &state, &path).await?;
    Ok(HttpResponse::Ok().json(view(&who, &r)?))
}

#[utoipa::path(delete, path = "/v1/reservations/{id}", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 204, description = "released or cancelled; repeats too"),
              (status = 409, body = Problem)))]
pub async fn delete(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (_, r) = owned(&req, &state, &path).await?;
    state.booking.release(r.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(patch, path = "/v1/reservations/{id}", params(("id" = Uuid, Path)),
    request_body = StatusInput, security(("bearer" = [])),
    responses((status = 200, body = ReservationView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let (who, r) = owned(&req, &state, &path).await?;
    require(who.may_staff(r.restaurant_id))?;
    let input: StatusInput = from_body(&body)?;
    let to = Status::parse(&input.status)
        .filter(|s| matches!(s, Status::Seated | Status::Completed | Status::NoShow))
        .ok_or_else(|| FieldError::new("status", "must be one of seated, completed, no_show"))?;
    let r = state.booking.set_status(r.id, to).await?;
    Ok(HttpResponse::Ok().json(view(&who, &r)?))
}
