//! The day view and reservation lookups, from the readers.
use super::rows::{db, row_to_reservation, SHOWN_SQL};
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{DayView, StoreResult};
use sqlx::Row;
use uuid::Uuid;

/// A day view in one statement (one snapshot, one round trip): the date's version on every
/// row, then the reservations of the date and the day before, all but released and expired
/// holds, which occupy nothing and which no view lists (the floor does list cancelled ones); a
/// day without reservations is one row of the version alone. The predicate keeps the read on
/// the partial index of what is shown, whatever the history.
pub(super) fn day_sql() -> String {
    format!(
        "SELECT v.version AS day_version, x.* FROM
           (SELECT MAX(o.wide_version, COALESCE(d.version, 0)) AS version FROM restaurants AS o
            LEFT JOIN day_versions AS d ON d.restaurant_id = o.id AND d.date = ?3
            WHERE o.id = ?1) AS v
         LEFT JOIN reservations AS x ON x.restaurant_id = ?1 AND x.date IN (?2, ?3)
           AND x.{SHOWN_SQL}
         ORDER BY x.start_ms, x.table_id"
    )
}

impl SqliteStore {
    pub(super) async fn day_(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<DayView> {
        let rows = sqlx::query(&day_sql())
            .bind(restaurant_id.to_string())
            .bind(date.pred().to_string())
            .bind(date.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db("read a day"))?;
        let mut version = 0;
        let mut reservations = Vec::with_capacity(rows.len());
        for row in &rows {
            version = row
                .try_get::<i64, _>("day_version")
                .map_err(db("read a day"))?;
            let id: Option<String> = row.try_get("id").map_err(db("read a day"))?;
            if id.is_some() {
                reservations.push(row_to_reservation(row)?);
            }
        }
        Ok(DayView {
            version: version as u64,
            parts: vec![(String::new(), version as u64)],
            reservations,
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
