use super::auth::{require, Authed, Caller};
use super::body::JsonBody;
use super::dto::*;
use super::error::{from_body, ApiError, Result};
use super::idempotency;
use super::limits::Requester;
use super::AppState;
use crate::booking::{HoldRequest, WalkInRequest};
use crate::domain::{LocalDate, PartySize, RestaurantId, TableId, WallTime};
use crate::wire::{
    AvailabilityBody, CreatedRestaurant, HeldReservation, HoldInput, ReservationList,
    ReservationView, RestaurantDoc, RestaurantList, RestaurantSummary, TableDoc,
};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

/// Loads the restaurant (404) and checks staff rights (403); the caller (401) came first.
pub(super) async fn staff_of(who: &Caller, state: &AppState, rid: RestaurantId) -> Result<Uuid> {
    let rid = rid.get();
    state.booking.restaurant(rid).await?;
    require(who.may_staff(rid))?;
    Ok(rid)
}

#[utoipa::path(post, path = "/v1/restaurants", operation_id = "create_restaurant",
    request_body = RestaurantInput, security(("bearer" = [])),
    responses((status = 201, description = "created; `staff_token` is shown only now", body = CreatedRestaurant)))]
pub async fn create(
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    require(who == Caller::Admin)?;
    let input: RestaurantInput = from_body(&body)?;
    let r = input.into_restaurant().map_err(ApiError::Validation)?;
    let (r, token) = state.booking.create_restaurant(r).await?;
    Ok(HttpResponse::Created().json(CreatedRestaurant {
        restaurant: RestaurantDoc::from(&r),
        staff_token: token,
    }))
}

#[utoipa::path(get, path = "/v1/restaurants", operation_id = "list_restaurants",
    responses((status = 200, description = "every restaurant", body = RestaurantList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse> {
    let restaurants = state.booking.list_restaurants().await?;
    Ok(HttpResponse::Ok().json(RestaurantList {
        restaurants: restaurants
            .into_iter()
            .map(|r| RestaurantSummary {
                id: r.id,
                name: r.name,
                timezone: r.timezone,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}", operation_id = "get_restaurant",
    params(("rid" = Uuid, Path, description = "the restaurant's id")),
    responses((status = 200, description = "the restaurant, without secrets", body = RestaurantDoc)))]
pub async fn get(
    path: web::Path<RestaurantId>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let r = state.booking.restaurant(path.get()).await?;
    Ok(HttpResponse::Ok().json(RestaurantDoc::from(&r)))
}

#[utoipa::path(patch, path = "/v1/restaurants/{rid}", operation_id = "patch_restaurant",
    params(("rid" = Uuid, Path, description = "the restaurant's id")),
    request_body = RestaurantPatchInput, security(("bearer" = [])),
    responses((status = 200, description = "the restaurant as changed", body = RestaurantDoc)))]
pub async fn patch(
    path: web::Path<RestaurantId>,
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let rid = staff_of(&who, &state, *path).await?;
    let input: RestaurantPatchInput = from_body(&body)?;
    let patch = input.into_patch().map_err(ApiError::Validation)?;
    let r = state.booking.patch_restaurant(rid, patch).await?;
    Ok(HttpResponse::Ok().json(RestaurantDoc::from(&r)))
}

#[utoipa::path(put, path = "/v1/restaurants/{rid}/tables/{tid}", operation_id = "put_table",
    params(("rid" = Uuid, Path, description = "the restaurant's id"),
           ("tid" = String, Path, description = "the table's id", pattern = r"^[A-Za-z0-9_-]{1,32}$")),
    request_body = TableInput, security(("bearer" = [])),
    responses((status = 200, description = "the table, replaced", body = TableDoc),
              (status = 201, description = "the table, created", body = TableDoc)))]
pub async fn put_table(
    path: web::Path<(RestaurantId, TableId)>,
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (rid, tid) = path.into_inner();
    let rid = staff_of(&who, &state, rid).await?;
    let input: TableInput = from_body(&body)?;
    let mut errs = Vec::new();
    let table = input.into_table(tid, &mut errs);
    if !errs.is_empty() {
        return Err(ApiError::Validation(errs));
    }
    let (table, created) = state.booking.put_table(rid, table).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(TableDoc::from(&table)))
}

#[utoipa::path(delete, path = "/v1/restaurants/{rid}/tables/{tid}", operation_id = "delete_table",
    params(("rid" = Uuid, Path, description = "the restaurant's id"),
           ("tid" = String, Path, description = "the table's id", pattern = r"^[A-Za-z0-9_-]{1,32}$")),
    security(("bearer" = [])),
    responses((status = 204, description = "deleted")))]
pub async fn delete_table(
    path: web::Path<(RestaurantId, TableId)>,
    who: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let (rid, tid) = path.into_inner();
    let rid = rid.get();
    // The table is the resource here: an unknown one is 404 before any 403.
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

/// A party size: not an integer is 400, out of range 422 (one too large for 64 bits too, as in
/// a JSON body: it is still an integer).
pub fn party_size(v: Option<&str>) -> Result<PartySize> {
    use std::num::IntErrorKind;
    let s = v.ok_or_else(|| ApiError::BadRequest("`party_size` is required".into()))?;
    let n: i64 = match s.parse::<i64>() {
        Ok(n) => n,
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => i64::MAX,
        Err(e) if *e.kind() == IntErrorKind::NegOverflow => i64::MIN,
        Err(_) => {
            return Err(ApiError::BadRequest(format!(
                "`party_size` `{s}` is not an integer"
            )))
        }
    };
    Ok(PartySize::new(n)?)
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}/availability", operation_id = "availability",
    params(("rid" = Uuid, Path, description = "the restaurant's id"),
           ("date" = String, Query, description = "the restaurant's local date", format = Date,
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
           ("party_size" = i64, Query, minimum = 1, maximum = 100)),
    responses((status = 200, description = "every bookable start of the date", body = AvailabilityBody)))]
pub async fn availability(
    path: web::Path<RestaurantId>,
    q: web::Query<AvailabilityQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let date = query_date(q.date.as_deref())?;
    let p = party_size(q.party_size.as_deref())?;
    let a = state.booking.availability(path.get(), date, p).await?;
    Ok(HttpResponse::Ok().json(AvailabilityBody::from(&a)))
}

/// A hold's body, checked: the shape (`400`) and the party size (`422`) before anything else.
pub struct HoldCommand {
    date: crate::domain::LocalDate,
    time: WallTime,
    party_size: PartySize,
    table_id: Option<TableId>,
    combination_id: Option<TableId>,
}

/// `table_id` and `combination_id` together are `422`.
fn one_seating(table: &Option<TableId>, combination: &Option<TableId>) -> Result<()> {
    if table.is_some() && combination.is_some() {
        return Err(crate::domain::FieldError::new(
            "combination_id",
            "name a table_id or a combination_id, not both",
        )
        .into());
    }
    Ok(())
}

impl HoldCommand {
    pub fn parse(input: HoldInput) -> Result<Self> {
        let cmd = HoldCommand {
            time: WallTime::parse_start(&input.time).map_err(ApiError::BadRequest)?,
            party_size: PartySize::new(input.party_size)?,
            date: input.date,
            table_id: input.table_id,
            combination_id: input.combination_id,
        };
        one_seating(&cmd.table_id, &cmd.combination_id)?;
        Ok(cmd)
    }
}

/// The hold use case shared by HTTP and the live `hold` op, under the per-client limits: a rate
/// token (not for an idempotent replay: this runs only for a fresh request) and the live-hold
/// cap, which the store decides in the hold's own write. The admin and the restaurant's staff
/// are exempt.
/// Every hold request takes a rate token first (`Limits::charge`; an idempotent replay never
/// gets here), counted as a hold outcome when refused.
pub async fn charge_hold(state: &AppState, who: &Requester, rid: Uuid) -> Result<()> {
    state.limits.charge(who, rid).await.inspect_err(|e| {
        if matches!(e, ApiError::RateLimited { .. }) {
            state.metrics.hold_outcome("rate_limited");
        }
    })
}

/// Takes a hold whose rate token was taken (`charge_hold`).
pub async fn take_hold(
    state: &AppState,
    who: &Requester,
    rid: Uuid,
    cmd: HoldCommand,
    keyed: Option<idempotency::Keyed>,
) -> Result<idempotency::Answer> {
    let exempt = who.exempt_for(rid);
    let idem = keyed.map(|k| {
        k.idem(StatusCode::CREATED, |r, token| {
            held_value(r, token.unwrap_or_default())
        })
    });
    let (r, token) = state
        .booking
        .hold(HoldRequest {
            restaurant_id: rid,
            date: cmd.date,
            time: cmd.time,
            party_size: cmd.party_size,
            table_id: cmd.table_id,
            combination_id: cmd.combination_id,
            cap: if exempt {
                None
            } else {
                state.limits.hold_cap(&who.client)
            },
            idem,
        })
        .await?;
    Ok((StatusCode::CREATED, held_value(&r, &token)))
}

/// A new hold as its taker sees it: the reservation with its token.
fn held_value(r: &crate::domain::Reservation, token: &str) -> Value {
    let held = HeldReservation {
        reservation: ReservationView::of(r, chrono::Utc::now(), true),
        token: token.to_owned(),
    };
    serde_json::to_value(held).unwrap_or_default()
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/holds", operation_id = "hold",
    params(("rid" = Uuid, Path, description = "the restaurant's id"), super::dto::IdempotencyKey),
    request_body = HoldInput,
    responses((status = 201, description = "the reservation, held, with its `token`", body = HeldReservation)))]
pub async fn hold(
    req: HttpRequest,
    path: std::result::Result<web::Path<RestaurantId>, actix_web::Error>,
    state: web::Data<AppState>,
    body: std::result::Result<JsonBody, actix_web::Error>,
) -> Result<HttpResponse> {
    let who = &Requester::of(&req, &state).await?;
    let state: &AppState = &state;
    // A restaurant id that is not one is charged as for no restaurant (only the admin is exempt).
    let rid = match super::body::charged(path, || charge_hold(state, who, Uuid::nil())).await? {
        Ok(path) => path.get(),
        Err(unread) => return Ok(unread),
    };
    // Every hold request takes a rate token, one that cannot be read as JSON included; only an
    // idempotent replay does not.
    let body = match super::body::charged(body, || charge_hold(state, who, rid)).await? {
        Ok(body) => body,
        Err(unread) => return Ok(unread),
    };
    let body: &Value = &body;
    idempotency::once_charged(
        state,
        &req,
        body,
        || charge_hold(state, who, rid),
        |keyed| async move {
            // A body of the wrong shape or out of range is a final answer too: recorded.
            let cmd = HoldCommand::parse(from_body(body)?)?;
            take_hold(state, who, rid, cmd, keyed).await
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DateQuery {
    pub(super) date: Option<String>,
}

#[utoipa::path(get, path = "/v1/restaurants/{rid}/reservations", operation_id = "staff_list",
    params(("rid" = Uuid, Path, description = "the restaurant's id"),
           ("date" = String, Query, description = "the restaurant's local date", format = Date,
            pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    security(("bearer" = [])),
    responses((status = 200, description = "every reservation of the date, with guests", body = ReservationList)))]
pub async fn staff_list(
    path: web::Path<RestaurantId>,
    who: Caller,
    q: web::Query<DateQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let rid = staff_of(&who, &state, *path).await?;
    let date = query_date(q.date.as_deref())?;
    let now = chrono::Utc::now();
    let reservations = state.booking.reservations_on(rid, date).await?;
    Ok(HttpResponse::Ok().json(ReservationList {
        reservations: reservations
            .iter()
            .map(|r| ReservationView::of(r, now, true))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/restaurants/{rid}/walk-ins", operation_id = "walk_in",
    params(("rid" = Uuid, Path, description = "the restaurant's id"), super::dto::IdempotencyKey),
    request_body = WalkInInput, security(("bearer" = [])),
    responses((status = 201, description = "the reservation, seated now", body = ReservationView)))]
pub async fn walk_in(
    req: HttpRequest,
    path: web::Path<RestaurantId>,
    Authed(who, body): Authed<JsonBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let rid = staff_of(&who, &state, *path).await?;
    let state: &AppState = &state;
    let body: &Value = &body;
    idempotency::once(state, &req, body, |keyed| async move {
        // A body of the wrong shape or out of range is a final answer too: recorded.
        let input: WalkInInput = from_body(body)?;
        let party_size = PartySize::new(input.party_size)?;
        one_seating(&input.table_id, &input.combination_id)?;
        let idem = keyed.map(|k| k.idem(StatusCode::CREATED, |r, _| idempotency::view_value(r)));
        let r = state
            .booking
            .walk_in(WalkInRequest {
                restaurant_id: rid,
                party_size,
                table_id: input.table_id,
                combination_id: input.combination_id,
                guest: input.guest.map(Into::into),
                idem,
            })
            .await?;
        Ok((StatusCode::CREATED, idempotency::view_value(&r)))
    })
    .await
}
