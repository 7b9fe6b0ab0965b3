//! The day view and reservation lookups, from the readers.
use super::rows::{db, row_to_reservation, SHOWN_SQL};
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{DayView, StoreResult};
use uuid::Uuid;

/// The reservations of a day view: the date and the day before, all but released and expired
/// holds, which occupy nothing and which no view lists (the floor does list cancelled ones).
/// The predicate keeps the read on the partial index of what is shown, whatever the history.
pub(super) fn day_sql() -> String {
    format!(
        "SELECT * FROM reservations WHERE restaurant_id = ?1 AND date IN (?2, ?3) AND {SHOWN_SQL}
         ORDER BY start_ms, table_id"
    )
}

impl SqliteStore {
    pub(super) async fn day_(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<DayView> {
        // One read transaction: WAL gives it a single snapshot for version and rows.
        let mut tx = self.reader.begin().await.map_err(db("begin day read"))?;
        let rid = restaurant_id.to_string();
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(r.wide_version, COALESCE(d.version, 0)) FROM restaurants r
             LEFT JOIN day_versions d ON d.restaurant_id = r.id AND d.date = ?2
             WHERE r.id = ?1",
        )
        .bind(&rid)
        .bind(date.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read day version"))?;
        let rows = sqlx::query(&day_sql())
            .bind(&rid)
            .bind(date.pred().to_string())
            .bind(date.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read day reservations"))?;
        tx.commit().await.map_err(db("end day read"))?;
        let version = version.unwrap_or(0) as u64;
        Ok(DayView {
            version,
            parts: vec![(String::new(), version)],
            reservations: rows
                .iter()
                .map(row_to_reservation)
                .collect::<StoreResult<_>>()?,
        })
    }

    pub(super) async fn reservations_on_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let rows = sqlx::query(
            "SELECT * FROM reservations WHERE restaurant_id = ? AND date = ?
             ORDER BY start_ms, table_id",
        )
        .bind(restaurant_id.to_string())
        .bind(date.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(db("list reservations of a date"))?;
        rows.iter().map(row_to_reservation).collect()
    }

    pub(super) async fn reservation_(&self, id: Uuid) -> StoreResult<Option<Reservation>> {
        let row = sqlx::query("SELECT * FROM reservations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read reservation"))?;
        row.as_ref().map(row_to_reservation).transpose()
    }
}
