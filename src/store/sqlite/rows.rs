//! Rows ⇄ domain values, and sqlx errors as store errors.
use crate::domain::reservation::{Guest, Reservation, Status};
use crate::domain::time::WallTime;
use crate::domain::{LocalDate, Restaurant, TableId};
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

/// The statuses that hold a table, as an SQL list.
pub(super) const OCCUPYING_SQL: &str = "('held','confirmed','seated','completed','no_show')";

pub(super) fn internal(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        e => StoreError::Internal(e.to_string()),
    }
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Internal(format!("bad instant {v}")))
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in store"))
}

pub(super) fn row_to_reservation(row: &SqliteRow) -> StoreResult<Reservation> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(internal);
    let guest: Option<String> = row.try_get("guest").map_err(internal)?;
    let expires: Option<i64> = row.try_get("expires_ms").map_err(internal)?;
    Ok(Reservation {
        id: Uuid::parse_str(&get_s("id")?).map_err(|_| corrupt("id"))?,
        restaurant_id: Uuid::parse_str(&get_s("restaurant_id")?).map_err(|_| corrupt("id"))?,
        table_id: TableId::parse(&get_s("table_id")?).map_err(|_| corrupt("table id"))?,
        date: LocalDate::parse(&get_s("date")?).map_err(|_| corrupt("date"))?,
        time: WallTime::parse(&get_s("time")?).map_err(|_| corrupt("time"))?,
        start: from_ms(row.try_get("start_ms").map_err(internal)?)?,
        end: from_ms(row.try_get("end_ms").map_err(internal)?)?,
        party_size: row.try_get::<i64, _>("party_size").map_err(internal)? as u32,
        status: Status::parse(&get_s("status")?).ok_or_else(|| corrupt("status"))?,
        expires_at: expires.map(from_ms).transpose()?,
        guest: guest
            .map(|g| serde_json::from_str::<Guest>(&g).map_err(|_| corrupt("guest")))
            .transpose()?,
        notes: get_s("notes")?,
        created_at: from_ms(row.try_get("created_ms").map_err(internal)?)?,
        updated_at: from_ms(row.try_get("updated_ms").map_err(internal)?)?,
    })
}

pub(super) fn to_doc(r: &Restaurant) -> StoreResult<String> {
    serde_json::to_string(r).map_err(|e| StoreError::Internal(e.to_string()))
}
