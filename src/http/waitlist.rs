//! The waitlist endpoints: join (anyone, under the per-client hold rate), read and leave (the
//! entry's token or staff), and the staff's queue of a date.
use super::auth::{may_wait, require, Caller};
use super::body::JsonBody;
use super::dto::JoinInput;
use super::error::{from_body, ApiError, Result};
use super::limits::Requester;
use super::restaurants::{query_date, staff_of, DateQuery};
use super::AppState;
use crate::booking::{JoinRequest, Placed};
use crate::domain::{EntryId, PartySize, RestaurantId, WallTime};
use crate::wire::{JoinedEntry, WaitlistEntryView, WaitlistList};
use actix_web::{web, HttpRequest, HttpResponse};

fn view(p: &Placed, with_guest: bool) -> WaitlistEntryView {
    WaitlistEntryView::of(&p.entry, p.position, chrono::Utc::now(), with_guest)
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/waitlist", operation_id = "join_waitlist",
    params(("rid" = Uuid, Path, description = "the restaurant's id")),
    request_body = JoinInput,
    responses((status = 201, description = "the entry, `waiting`, with its `token`", body = JoinedEntry)))]
pub async fn join(
    req: HttpRequest,
    path: std::result::Result<web::Path<RestaurantId>, actix_web::Error>,
    state: web::Data<AppState>,
    body: std::result::Result<JsonBody, actix_web::Error>,
) -> Result<HttpResponse> {
    let who = Requester::of(&req, &state).await?;
    let nil = uuid::Uuid::nil();
    let rid = match super::body::charged(path, || state.limits.charge(&who, nil)).await? {
        Ok(path) => path.get(),
        Err(unread) => return Ok(unread),
    };
    // A join takes a rate token like a hold, one that cannot be read as JSON included.
    let body = match super::body::charged(body, || state.limits.charge(&who, rid)).await? {
        Ok(body) => body,
        Err(unread) => return Ok(unread),
    };
    state.limits.charge(&who, rid).await?;
    let input: JoinInput = from_body(&body)?;
    let from = WallTime::parse_start(&input.from).map_err(ApiError::BadRequest)?;
    let to = WallTime::parse_start(&input.to).map_err(ApiError::BadRequest)?;
    let party_size = PartySize::new(input.party_size)?;
    let (placed, token) = state
        .booking
        .join_waitlist(JoinRequest {
            restaurant_id: rid,
            date: input.date,
            party_size,
            from,
            to,
            guest: input.guest.into(),
        })
        .await?;
    Ok(HttpResponse::Created().json(JoinedEntry {
        entry: view(&placed, true),
        token,
    }))
}

/// The entry (404), then the caller's rights to it (403); the caller (401) came first.
async fn owned(who: &Caller, state: &AppState, id: EntryId) -> Result<Placed> {
    let p = state.booking.waitlist_entry(id.get()).await?;
    require(may_wait(who, &p.entry))?;
    Ok(p)
}

#[utoipa::path(get, path = "/v1/waitlist/{id}", operation_id = "get_waitlist_entry",
    params(("id" = Uuid, Path, description = "the entry's id")),
    security(("bearer" = [])),
    responses((status = 200, description = "the entry, with its position and offer", body = WaitlistEntryView)))]
pub async fn get(
    path: web::Path<EntryId>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let p = owned(&who, &state, *path).await?;
    Ok(HttpResponse::Ok().json(view(&p, true)))
}

#[utoipa::path(delete, path = "/v1/waitlist/{id}", operation_id = "leave_waitlist",
    params(("id" = Uuid, Path, description = "the entry's id")),
    security(("bearer" = [])),
    responses((status = 204, description = "left (a pending offer is declined); repeats too")))]
pub async fn delete(
    path: web::Path<EntryId>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let p = owned(&who, &state, *path).await?;
    state.booking.leave_waitlist(p.entry.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}/waitlist", operation_id = "staff_waitlist",
    params(("rid" = Uuid, Path, description = "the restaurant's id"),
           ("date" = String, Query, description = "the restaurant's local date", format = Date,
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    security(("bearer" = [])),
    responses((status = 200, description = "every entry of the date in queue order, with guests", body = WaitlistList)))]
pub async fn staff_list(
    path: web::Path<RestaurantId>,
    who: Caller,
    q: web::Query<DateQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let rid = staff_of(&who, &state, *path).await?;
    let date = query_date(q.date.as_deref())?;
    let entries = state.booking.waitlist_on(rid, date).await?;
    Ok(HttpResponse::Ok().json(WaitlistList {
        entries: entries.iter().map(|p| view(p, true)).collect(),
    }))
}

/// What a live `waitlist` subscription watches: its entry's restaurant/date channel and view.
/// The same auth order as HTTP: `401` (no or unknown token), `404`, `403`; `400` without
/// `entry_id`.
pub async fn watched(
    state: &AppState,
    token: Option<&str>,
    entry_id: Option<uuid::Uuid>,
) -> std::result::Result<(crate::live::hub::Key, crate::live::hub::View), (u16, &'static str, String)>
{
    let unavailable = || {
        (
            503,
            "Service unavailable",
            "the store is unreachable".to_owned(),
        )
    };
    // Syntax first, as everywhere: a frame without its entry is `400` whatever its token.
    let Some(id) = entry_id else {
        return Err((400, "Bad request", "`entry_id` is required".into()));
    };
    let Some(token) = token else {
        return Err((
            401,
            "Unauthorized",
            "a waitlist subscription needs the entry's token".into(),
        ));
    };
    let who = match super::auth::resolve(token, state).await {
        Ok(Some(who)) => who,
        Ok(None) => return Err((401, "Unauthorized", "unknown token".into())),
        Err(_) => return Err(unavailable()),
    };
    let entry = match state.booking.store().waitlist_entry(id).await {
        Ok(Some(e)) => e,
        Ok(None) => return Err((404, "Not found", "waitlist entry not found".into())),
        Err(_) => return Err(unavailable()),
    };
    if !may_wait(&who, &entry) {
        return Err((403, "Forbidden", "this token is not this entry's".into()));
    }
    Ok((
        (entry.restaurant_id, entry.date),
        crate::live::hub::View::Entry(entry.id),
    ))
}
