use super::auth::{caller, require, Caller};
use super::dto::*;
use super::error::{from_body, ApiError, Result};
use super::idempotency;
use super::{parse_uuid, AppState};
use crate::booking::{HoldRequest, WalkInRequest};
use crate::domain::{LocalDate, PartySize, TableId, WallTime};
use crate::wire::{AvailabilityBody, HeldReservation, HoldInput, Problem, ReservationView};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

fn parse_body<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    from_body(v)
}

/// Loads the restaurant (404) and checks staff rights (403), after the caller (401).
async fn staff_of(req: &HttpRequest, state: &AppState, rid: &str) -> Result<(Caller, Uuid)> {
    let rid = parse_uuid(rid, "restaurant")?;
    let who = caller(req, state).await?;
    state.booking.restaurant(rid).await?;
    require(who.may_staff(rid))?;
    Ok((who, rid))
}

#[utoipa::path(post, path = "/v1/restaurants", request_body = RestaurantInput,
    security(("bearer" = [])),
    responses((status = 201, description = "created; `staff_token` is shown only now", body = Object),
               (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let who = caller(&req, &state).await?;
    require(who == Caller::Admin)?;
    let input: RestaurantInput = parse_body(&body)?;
    let r = input.into_restaurant().map_err(ApiError::Validation)?;
    let (r, token) = state.booking.create_restaurant(r).await?;
    Ok(HttpResponse::Created().json(json!({"restaurant": r, "staff_token": token})))
}

#[utoipa::path(get, path = "/v1/restaurants",
    responses((status = 200, description = "`{\"restaurants\": [{id, name, timezone}]}`", body = Object)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let list: Vec<Value> = state
        .booking
        .list_restaurants()
        .await?
        .into_iter()
        .map(|r| json!({"id": r.id, "name": r.name, "timezone": r.timezone}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "restaurants": list })))
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}", params(("rid" = Uuid, Path)),
    responses((status = 200, body = RestaurantDoc), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn get(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse> {
    let rid = parse_uuid(&path, "restaurant")?;
    Ok(HttpResponse::Ok().json(state.booking.restaurant(rid).await?))
}

#[utoipa::path(patch, path = "/v1/restaurants/{rid}", params(("rid" = Uuid, Path)),
    request_body = RestaurantPatchInput, security(("bearer" = [])),
    responses((status = 200, body = RestaurantDoc), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let (_, rid) = staff_of(&req, &state, &path).await?;
    let input: RestaurantPatchInput = parse_body(&body)?;
    let patch = input.into_patch().map_err(ApiError::Validation)?;
    Ok(HttpResponse::Ok().json(state.booking.patch_restaurant(rid, patch).await?))
}

fn table_id(s: &str) -> Result<TableId> {
    TableId::parse(s).map_err(ApiError::BadRequest)
}

#[utoipa::path(put, path = "/v1/restaurants/{rid}/tables/{tid}",
    params(("rid" = Uuid, Path), ("tid" = String, Path)), request_body = TableInput,
    security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 201, body = Object), (status = 409, body = Problem)))]
pub async fn put_table(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let (rid, tid) = path.into_inner();
    let tid = table_id(&tid)?;
    let (_, rid) = staff_of(&req, &state, &rid).await?;
    let input: TableInput = parse_body(&body)?;
    let mut errs = Vec::new();
    let table = input.into_table(tid, &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let (table, created) = state.booking.put_table(rid, table).await?;
    Ok(if created {
        HttpResponse::Created().json(table)
    } else {
        HttpResponse::Ok().json(table)
    })
}

#[utoipa::path(delete, path = "/v1/restaurants/{rid}/tables/{tid}",
    params(("rid" = Uuid, Path), ("tid" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_table(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (rid, tid) = path.into_inner();
    let tid = table_id(&tid)?;
    let rid = parse_uuid(&rid, "restaurant")?;
    let who = caller(&req, &state).await?;
    // The table is the resource here: an unknown one is 404 before any 403 (SPEC section 6).
    if state.booking.restaurant(rid).await?.table(&tid).is_none() {
        return Err(ApiError::NotFound("table".into()));
    }
    require(who.may_staff(rid))?;
    state.booking.delete_table(rid, &tid).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
pub struct AvailabilityQuery {
    date: Option<String>,
    party_size: Option<String>,
}

/// `date` in `YYYY-MM-DD` (400 otherwise).
pub fn query_date(date: Option<&str>) -> Result<LocalDate> {
    let d = date.ok_or_else(|| ApiError::BadRequest("`date` is required".into()))?;
    LocalDate::parse(d).map_err(ApiError::BadRequest)
}

/// A party size: not an integer is 400, out of range 422.
pub fn party_size(v: Option<&str>) -> Result<PartySize> {
    let s = v.ok_or_else(|| ApiError::BadRequest("`party_size` is required".into()))?;
    let n: i64 = s
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`party_size` `{s}` is not an integer")))?;
    Ok(PartySize::new(n)?)
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}/availability",
    params(("rid" = Uuid, Path), ("date" = String, Query), ("party_size" = u32, Query)),
    responses((status = 200, body = AvailabilityBody), (status = 400, body = Problem),
              (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn availability(
    path: web::Path<String>,
    q: web::Query<AvailabilityQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let rid = parse_uuid(&path, "restaurant")?;
    let date = query_date(q.date.as_deref())?;
    let p = party_size(q.party_size.as_deref())?;
    let a = state.booking.availability(rid, date, p).await?;
    Ok(HttpResponse::Ok().json(AvailabilityBody::from(&a)))
}

/// The hold use case shared by HTTP and the live `hold` op: the answer as status and body.
pub async fn take_hold(
    state: &AppState,
    rid: Uuid,
    input: HoldInput,
    cap: Option<crate::store::HoldCap>,
) -> Result<idempotency::Answer> {
    let time = WallTime::parse_start(&input.time).map_err(ApiError::BadRequest)?;
    let party_size = PartySize::new(input.party_size)?;
    let (r, token) = state
        .booking
        .hold(HoldRequest {
            restaurant_id: rid,
            date: input.date,
            time,
            party_size,
            table_id: input.table_id,
            cap,
            idem: None,
        })
        .await?;
    let held = HeldReservation {
        reservation: ReservationView::of(&r, chrono::Utc::now(), true),
        token,
    };
    let v = serde_json::to_value(held).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::CREATED, v))
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/holds", params(("rid" = Uuid, Path)),
    request_body = HoldInput,
    responses((status = 201, description = "the reservation, held, with its `token`", body = ReservationView),
              (status = 409, description = "slot-unavailable with `alternatives`", body = Problem),
              (status = 422, body = Problem)))]
pub async fn hold(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let rid = parse_uuid(&path, "restaurant")?;
    idempotency::once(&state, &req, &body, || async {
        take_hold(&state, rid, parse_body(&body)?, None).await
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct DateQuery {
    date: Option<String>,
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}/reservations",
    params(("rid" = Uuid, Path), ("date" = String, Query)), security(("bearer" = [])),
    responses((status = 200, description = "`{\"reservations\": [...]}` with guests", body = Object)))]
pub async fn staff_list(
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<DateQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (_, rid) = staff_of(&req, &state, &path).await?;
    let date = query_date(q.date.as_deref())?;
    let now = chrono::Utc::now();
    let list: Vec<_> = state
        .booking
        .reservations_on(rid, date)
        .await?
        .iter()
        .map(|r| ReservationView::of(r, now, true))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "reservations": list })))
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/walk-ins", params(("rid" = Uuid, Path)),
    request_body = WalkInInput, security(("bearer" = [])),
    responses((status = 201, body = ReservationView), (status = 409, body = Problem)))]
pub async fn walk_in(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    let (_, rid) = staff_of(&req, &state, &path).await?;
    idempotency::once(&state, &req, &body, || async {
        let input: WalkInInput = parse_body(&body)?;
        let r = state
            .booking
            .walk_in(WalkInRequest {
                restaurant_id: rid,
                party_size: PartySize::new(input.party_size)?,
                table_id: input.table_id,
                guest: input.guest.map(Into::into),
                idem: None,
            })
            .await?;
        let v = serde_json::to_value(ReservationView::of(&r, chrono::Utc::now(), true))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok((StatusCode::CREATED, v))
    })
    .await
}
