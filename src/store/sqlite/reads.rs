//! The day view and reservation lookups, from the readers. A day's rows are read on the reader
//! connection's own handle (`raw.rs`): through sqlx each row would be a message from the
//! connection's thread and a wake-up of the task, which for a busy date's thousand rows cost
//! more than the query.
use super::raw::{Script, Value};
use super::rows::{db, reservation_columns, row_to_reservation, RawRow, SHOWN_SQL};
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{DayView, StoreError, StoreResult};
use uuid::Uuid;

/// A day view in one statement (one snapshot): the date's version on every row, then the
/// reservations of the date and the day before, all but released and expired holds, which
/// occupy nothing and which no view lists (the floor does list cancelled ones); a day without
/// reservations is one row of the version alone. The predicate keeps the read on the partial
/// index of what is shown, whatever the history. Parameters: ?1 restaurant, ?2 the day before,
/// ?3 the date.
pub(super) fn day_sql() -> String {
    format!(
        "SELECT v.version AS day_version, {} FROM
           (SELECT MAX(o.wide_version, COALESCE(d.version, 0)) AS version FROM restaurants AS o
            LEFT JOIN day_versions AS d ON d.restaurant_id = o.id AND d.date = ?3
            WHERE o.id = ?1) AS v
         LEFT JOIN reservations AS x ON x.restaurant_id = ?1 AND x.date IN (?2, ?3)
           AND x.{SHOWN_SQL}
         ORDER BY x.start_ms, x.table_id",
        reservation_columns("x")
    )
}

/// Every reservation of a date, whatever its status (the staff list). ?1 restaurant, ?2 date.
fn date_sql() -> String {
    format!(
        "SELECT {} FROM reservations AS x WHERE x.restaurant_id = ?1 AND x.date = ?2
         ORDER BY x.start_ms, x.table_id",
        reservation_columns("x")
    )
}

impl SqliteStore {
    /// Runs the one-statement `sql` on a reader's own handle; its rows.
    async fn read_raw(
        &self,
        context: &'static str,
        sql: &str,
        values: &[Value],
    ) -> StoreResult<Vec<Vec<Value>>> {
        let mut conn = self.reader.acquire().await.map_err(db(context))?;
        let mut handle = conn.lock_handle().await.map_err(db(context))?;
        // SAFETY: the handle is held until the script is dropped, at the end of this statement.
        let rows = unsafe { Script::prepare(handle.as_raw_handle(), sql) }
            .and_then(|mut script| script.run(values))
            .map_err(|e| StoreError::internal(context, e));
        drop(handle);
        rows
    }

    pub(super) async fn day_(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<DayView> {
        let values = [
            restaurant_id.to_string().into(),
            date.pred().to_string().into(),
            date.to_string().into(),
        ];
        let rows = self.read_raw("read a day", &day_sql(), &values).await?;
        let mut version = 0;
        let mut reservations = Vec::with_capacity(rows.len());
        for row in &rows {
            version = match row.first() {
                Some(Value::Int(v)) => *v,
                other => {
                    return Err(StoreError::corrupt(
                        "read a day",
                        format!("the version is {other:?}"),
                    ))
                }
            };
            // The left join's row of a day without reservations has no id.
            if !matches!(row.get(1), None | Some(Value::Null)) {
                reservations.push(row_to_reservation(&RawRow { values: row, at: 1 })?);
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
        let values = [restaurant_id.to_string().into(), date.to_string().into()];
        let rows = self
            .read_raw("list reservations of a date", &date_sql(), &values)
            .await?;
        rows.iter()
            .map(|row| row_to_reservation(&RawRow { values: row, at: 0 }))
            .collect()
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
