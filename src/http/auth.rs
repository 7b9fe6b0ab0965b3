//! Bearer auth: admin, a restaurant's staff, or a reservation's token. Order: 401, 404, 403.
use super::error::{ApiError, Result};
use super::AppState;
use crate::domain::Reservation;
use crate::store::TokenOwner;
use actix_web::HttpRequest;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Staff { restaurant_id: Uuid },
    Holder { reservation_id: Uuid },
}

impl Caller {
    pub fn may_staff(&self, restaurant_id: Uuid) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Staff { restaurant_id: r } => *r == restaurant_id,
            Caller::Holder { .. } => false,
        }
    }

    pub fn may_hold(&self, r: &Reservation) -> bool {
        match self {
            Caller::Holder { reservation_id } => *reservation_id == r.id,
            other => other.may_staff(r.restaurant_id),
        }
    }

    /// Only staff see guests of other reservations; a holder sees its own.
    pub fn sees_guest(&self, r: &Reservation) -> bool {
        self.may_hold(r)
    }
}

/// The raw bearer token, if the request carries one.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
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
    Ok(match state.booking.store().token_owner(&hash).await? {
        None => None,
        Some(TokenOwner::Staff { restaurant_id }) => Some(Caller::Staff { restaurant_id }),
        Some(TokenOwner::Reservation { reservation_id, .. }) => {
            Some(Caller::Holder { reservation_id })
        }
    })
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
