//! Bearer auth: admin, a restaurant's staff, or a reservation's token. Order: 401, 404, 403.
//!
//! `Caller` is an extractor: it answers `401` before the handler runs. The handler then loads
//! the resource (`404`) and checks the caller's rights to it (`403`). `Authed<T>` decides the
//! caller before it reads the body `T`, so a stranger never learns how the body would parse.
use super::error::{ApiError, Result};
use super::AppState;
use crate::domain::Reservation;
use crate::store::TokenOwner;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Staff {
        restaurant_id: Uuid,
    },
    Holder {
        reservation_id: Uuid,
    },
    /// A waitlist entry's token: its entry, and the reservation offered to it (once made), which
    /// it may confirm, release and read like a reservation token.
    Entrant {
        entry_id: Uuid,
        offer: Option<Uuid>,
    },
}

impl Caller {
    pub fn may_staff(&self, restaurant_id: Uuid) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Staff { restaurant_id: r } => *r == restaurant_id,
            Caller::Holder { .. } | Caller::Entrant { .. } => false,
        }
    }

    pub fn may_hold(&self, r: &Reservation) -> bool {
        match self {
            Caller::Holder { reservation_id } => *reservation_id == r.id,
            Caller::Entrant { offer, .. } => *offer == Some(r.id),
            other => other.may_staff(r.restaurant_id),
        }
    }

    /// Only staff see guests of other reservations; a holder sees its own.
    pub fn sees_guest(&self, r: &Reservation) -> bool {
        self.may_hold(r)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("no application state".into()))?;
            caller(&req, state).await
        })
    }
}

/// The caller (`401`), then the body `T` (`400`, `413`, `415`): in that order, always.
pub struct Authed<T>(pub Caller, pub T);

impl<T: FromRequest + 'static> FromRequest for Authed<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let who = Caller::extract(&req).await?;
            let body = T::from_request(&req, &mut payload)
                .await
                .map_err(Into::into)?;
            Ok(Authed(who, body))
        })
    }
}

/// The raw bearer token, if the request carries one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        // The scheme's name is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves the caller; a missing, malformed or unknown token is `401`.
pub async fn caller(req: &HttpRequest, state: &AppState) -> Result<Caller> {
    let token = bearer(req).ok_or(ApiError::Unauthorized)?;
    resolve(token, state).await?.ok_or(ApiError::Unauthorized)
}

pub async fn resolve(token: &str, state: &AppState) -> Result<Option<Caller>> {
    let hash = crate::token::hash(token);
    if constant_time_eq(hash.as_bytes(), state.admin_token_hash.as_bytes()) {
        return Ok(Some(Caller::Admin));
    }
    let known = state.booking.store().token_owner(&hash).await?;
    if known.is_none() {
        return entrant(&hash, state).await;
    }
    Ok(match known {
        Some(TokenOwner::Staff { restaurant_id }) => Some(Caller::Staff { restaurant_id }),
        Some(TokenOwner::Reservation { reservation_id, .. }) => {
            Some(Caller::Holder { reservation_id })
        }
        None => None,
    })
}

/// A waitlist entry's token (asked only when the token is no other kind).
async fn entrant(hash: &str, state: &AppState) -> Result<Option<Caller>> {
    Ok(state
        .booking
        .store()
        .waitlist_entry_by_token(hash)
        .await?
        .map(|e| Caller::Entrant {
            entry_id: e.id,
            offer: e.offer.map(|o| o.reservation_id),
        }))
}

/// Whether the caller may act on a waitlist entry: its own token, or staff of its restaurant.
pub fn may_wait(who: &Caller, e: &crate::domain::WaitlistEntry) -> bool {
    match who {
        Caller::Entrant { entry_id, .. } => *entry_id == e.id,
        other => other.may_staff(e.restaurant_id),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn require(ok: bool) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
