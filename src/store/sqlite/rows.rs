//! Rows ⇄ domain values, and sqlx errors as store errors.
use super::raw::Value;
use crate::domain::reservation::{Guest, Reservation, Status};
use crate::domain::time::WallTime;
use crate::domain::{LocalDate, Restaurant, TableId};
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

/// The statuses that hold a table, as an SQL list. Written exactly as in the predicate of the
/// partial index `reservations_pacing` (migration 0003): a query that says
/// `status IN {OCCUPYING_SQL}` can be answered from it, and so never reads a released, expired
/// or cancelled reservation.
pub(super) const OCCUPYING_SQL: &str = "('held','confirmed','seated','completed','no_show')";

/// The statuses that count in a pacing window (a held one only until it expires): the same as
/// those that occupy a table, written as in the predicate of `reservations_pacing`
/// (migration 0003).
pub(super) const PACING_SQL: &str = OCCUPYING_SQL;

/// Everything but released and expired holds: the live reservations and a date's business
/// records. Written exactly as in the predicate of the partial index `reservations_shown_by_day`
/// (migration 0002), which the floor's read of a date's cancelled reservations searches.
pub(super) const SHOWN_SQL: &str = "status NOT IN ('released','expired')";

/// Candidate tables as one JSON array, for `table_id IN (SELECT value FROM json_each(?))`: one
/// statement text whatever the number of candidates, answered by one index range per table.
pub(super) fn tables_json(tables: &[TableId]) -> String {
    let ids: Vec<&str> = tables.iter().map(|t| t.as_str()).collect();
    serde_json::Value::from(ids).to_string()
}

/// A failed query as a store error with `context`: a lost connection or an exhausted pool is
/// transient, anything else a failure.
pub(super) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::unavailable(context, e)
        }
        e => StoreError::internal(context, e),
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::corrupt("instant", format!("{v} ms is out of range")))
}

/// A reservation row's columns by name, however the row was read.
pub(super) trait Columns {
    fn text(&self, column: &str) -> StoreResult<Option<&str>>;
    fn int(&self, column: &str) -> StoreResult<Option<i64>>;
}

const READ: &str = "read a reservation row";

impl Columns for SqliteRow {
    fn text(&self, column: &str) -> StoreResult<Option<&str>> {
        self.try_get(column).map_err(db(READ))
    }

    fn int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(db(READ))
    }
}

/// The columns `row_to_reservation` reads, in the order a `RawRow` has them.
pub(super) const RESERVATION_COLUMNS: [&str; 16] = [
    "id",
    "restaurant_id",
    "table_id",
    "date",
    "time",
    "start_ms",
    "end_ms",
    "party_size",
    "status",
    "expires_ms",
    "guest",
    "notes",
    "created_ms",
    "updated_ms",
    "table_ids",
    "combination_id",
];

/// `RESERVATION_COLUMNS` as a select list of the table aliased `alias`.
pub(super) fn reservation_columns(alias: &str) -> String {
    RESERVATION_COLUMNS
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A row read on a connection's own handle (`raw::Script`): `RESERVATION_COLUMNS` in order,
/// from the row's `at`-th value on.
pub(super) struct RawRow<'a> {
    pub values: &'a [Value],
    pub at: usize,
}

impl RawRow<'_> {
    fn value(&self, column: &str) -> StoreResult<&Value> {
        RESERVATION_COLUMNS
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.values.get(self.at + i))
            .ok_or_else(|| StoreError::corrupt(READ, format!("no column `{column}`")))
    }
}

impl Columns for RawRow<'_> {
    fn text(&self, column: &str) -> StoreResult<Option<&str>> {
        match self.value(column)? {
            Value::Text(t) => Ok(Some(t)),
            Value::Null => Ok(None),
            Value::Int(_) => Err(StoreError::corrupt(READ, format!("`{column}` is not text"))),
        }
    }

    fn int(&self, column: &str) -> StoreResult<Option<i64>> {
        match self.value(column)? {
            Value::Int(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            Value::Text(_) => Err(StoreError::corrupt(
                READ,
                format!("`{column}` is not an integer"),
            )),
        }
    }
}

pub(super) fn row_to_reservation(row: &impl Columns) -> StoreResult<Reservation> {
    let missing = |c: &str| StoreError::corrupt(READ, format!("`{c}` is null"));
    let get_s = |c: &str| row.text(c)?.ok_or_else(|| missing(c));
    let get_i = |c: &str| row.int(c)?.ok_or_else(|| missing(c));
    let guest = row.text("guest")?;
    let expires = row.int("expires_ms")?;
    let table_id =
        TableId::parse(get_s("table_id")?).map_err(|e| StoreError::corrupt("table id", e))?;
    // Rows written before combinations existed occupy `table_id` alone.
    let table_ids = match row.text("table_ids")? {
        Some(j) => serde_json::from_str::<Vec<TableId>>(j)
            .map_err(|e| StoreError::corrupt("table ids", e))?,
        None => vec![table_id.clone()],
    };
    let combination_id = row
        .text("combination_id")?
        .map(|c| TableId::parse(c).map_err(|e| StoreError::corrupt("combination id", e)))
        .transpose()?;
    Ok(Reservation {
        id: Uuid::parse_str(get_s("id")?).map_err(|e| StoreError::corrupt("id", e))?,
        restaurant_id: Uuid::parse_str(get_s("restaurant_id")?)
            .map_err(|e| StoreError::corrupt("id", e))?,
        table_id,
        table_ids,
        combination_id,
        date: LocalDate::parse(get_s("date")?).map_err(|e| StoreError::corrupt("date", e))?,
        time: WallTime::parse(get_s("time")?).map_err(|e| StoreError::corrupt("time", e))?,
        start: from_ms(get_i("start_ms")?)?,
        end: from_ms(get_i("end_ms")?)?,
        party_size: get_i("party_size")? as u32,
        status: status(get_s("status")?)?,
        expires_at: expires.map(from_ms).transpose()?,
        guest: guest
            .map(|g| serde_json::from_str::<Guest>(g).map_err(|e| StoreError::corrupt("guest", e)))
            .transpose()?,
        notes: get_s("notes")?.to_owned(),
        created_at: from_ms(get_i("created_ms")?)?,
        updated_at: from_ms(get_i("updated_ms")?)?,
    })
}

pub(super) fn to_doc(r: &Restaurant) -> StoreResult<String> {
    serde_json::to_string(r).map_err(|e| StoreError::internal("encode restaurant settings", e))
}

fn status(s: &str) -> StoreResult<Status> {
    Status::parse(s).ok_or_else(|| StoreError::corrupt("status", format!("unknown status `{s}`")))
}

pub(super) fn guest_json(g: &Guest) -> StoreResult<String> {
    serde_json::to_string(g).map_err(|e| StoreError::internal("encode guest", e))
}

/// A JSON array of dates, as the scripts bind them.
pub(super) fn dates_json(dates: &[LocalDate]) -> String {
    let v: Vec<String> = dates.iter().map(|d| d.to_string()).collect();
    serde_json::Value::from(v).to_string()
}
