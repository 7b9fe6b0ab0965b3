//! Who a token belongs to.
use super::rows::{corrupt, internal};
use super::SqliteStore;
use crate::store::{StoreResult, TokenOwner};
use sqlx::Row;
use uuid::Uuid;

impl SqliteStore {
    pub(super) async fn token_owner_(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        let row = sqlx::query("SELECT restaurant_id, reservation_id FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(internal)?;
        row.map(|row| {
            let rid: String = row.try_get("restaurant_id").map_err(internal)?;
            let res: Option<String> = row.try_get("reservation_id").map_err(internal)?;
            let restaurant_id = Uuid::parse_str(&rid).map_err(|_| corrupt("token"))?;
            Ok(match res {
                None => TokenOwner::Staff { restaurant_id },
                Some(r) => TokenOwner::Reservation {
                    restaurant_id,
                    reservation_id: Uuid::parse_str(&r).map_err(|_| corrupt("token"))?,
                },
            })
        })
        .transpose()
    }
}
