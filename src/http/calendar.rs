//! `GET /v1/reservations/{id}/calendar`: the reservation as an iCalendar file, for the diner's
//! "Add to calendar" (the same event the confirmation mail attaches).
use super::auth::{require, Caller};
use super::error::Result;
use super::AppState;
use crate::domain::ReservationId;
use actix_web::http::header;
use actix_web::{web, HttpResponse};

#[utoipa::path(get, path = "/v1/reservations/{id}/calendar", operation_id = "reservation_calendar",
    params(("id" = Uuid, Path, description = "the reservation's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "an iCalendar (RFC 5545) file with one event; a \
        cancelled reservation gives a `CANCEL` of the same event", body = String,
        content_type = "text/calendar")))]
pub async fn calendar(
    path: web::Path<ReservationId>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = state.booking.reservation(path.get()).await?;
    require(who.may_hold(&r))?;
    let restaurant = state.booking.restaurant(r.restaurant_id).await?;
    let ics = crate::mail::ics::event(&r, &restaurant, chrono::Utc::now());
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"reservation-{}.ics\"",
                crate::mail::ics::reference(&r).to_lowercase()
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ics))
}
