//! Who a token belongs to.
use super::rows::db;
use super::SqliteStore;
use crate::store::{StoreError, StoreResult, TokenOwner};
use sqlx::Row;
use uuid::Uuid;

impl SqliteStore {
    pub(super) async fn token_owner_(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        let row = sqlx::query("SELECT restaurant_id, reservation_id FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read token"))?;
        row.map(|row| {
            let rid: String = row.try_get("restaurant_id").map_err(db("read token"))?;
            let res: Option<String> = row.try_get("reservation_id").map_err(db("read token"))?;
            let restaurant_id =
                Uuid::parse_str(&rid).map_err(|e| StoreError::corrupt("token", e))?;
            Ok(match res {
                None => TokenOwner::Staff { restaurant_id },
                Some(r) => TokenOwner::Reservation {
                    restaurant_id,
                    reservation_id: Uuid::parse_str(&r)
                        .map_err(|e| StoreError::corrupt("token", e))?,
                },
            })
        })
        .transpose()
    }
}
