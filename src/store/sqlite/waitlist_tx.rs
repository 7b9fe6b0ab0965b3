//! The waitlist's statements and row mapping, and the steps other writes take on it inside
//! their own transaction: offers due to lapse, the entry of an offered reservation following
//! that reservation's change, an entry read by id.
use super::rows::db;
use super::waitlist_mail::mail_lost;
use crate::domain::reservation::{Guest, Status};
use crate::domain::waitlist::{Offer, WaitStatus, WaitlistEntry};
use crate::domain::{LocalDate, Reservation, WallTime};
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

/// A date's queue, in order (`waitlist_queue`).
pub(super) const QUEUE_SQL: &str = "SELECT * FROM waitlist WHERE restaurant_id = ? AND date = ?
     ORDER BY created_ms, id";
/// The entry of a token (its unique index).
pub(super) const BY_TOKEN_SQL: &str = "SELECT * FROM waitlist WHERE token_hash = ?";
/// Offers due to lapse, run in a hold's transaction (`waitlist_offered`); each lapsed when its
/// offer expired, however late this runs (retention counts from then).
pub(super) const LAPSE_DUE_SQL: &str = "UPDATE waitlist SET status = 'lapsed',
     updated_ms = MIN(offer_expires_ms, ?1)
     WHERE status = 'offered' AND offer_expires_ms <= ?1
     RETURNING restaurant_id, date, offer_reservation_id, mail_to, guest";
/// The entry of an offered reservation follows its change (`waitlist_by_offer`).
pub(super) const FOLLOW_SQL: &str = "UPDATE waitlist SET status = ?2, updated_ms = ?3
     WHERE offer_reservation_id = ?1 AND status = 'offered'
     RETURNING *";
/// Dates with waiting entries, for the reconcile loop (`waitlist_waiting`).
pub(super) const WAITING_DAYS_SQL: &str =
    "SELECT restaurant_id, date, MIN(created_ms) FROM waitlist
     WHERE status = 'waiting' AND date >= ?1
     GROUP BY date, restaurant_id ORDER BY date, restaurant_id LIMIT ?2";

/// The waitlist's statements, by name, for the plan tests.
pub(super) fn statements() -> Vec<(&'static str, String)> {
    [
        ("waitlist of a date", QUEUE_SQL),
        ("entry of a token", BY_TOKEN_SQL),
        ("lapse due offers", LAPSE_DUE_SQL),
        ("entry of an offer", FOLLOW_SQL),
        ("dates with waiting entries", WAITING_DAYS_SQL),
    ]
    .into_iter()
    .map(|(n, s)| (n, s.to_owned()))
    .collect()
}

pub(super) fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::corrupt("instant", format!("{v} ms is out of range")))
}

pub(super) fn row_to_entry(row: &SqliteRow) -> StoreResult<WaitlistEntry> {
    const READ: &str = "read a waitlist row";
    let s = |c: &str| row.try_get::<String, _>(c).map_err(db(READ));
    let uuid = |v: String| Uuid::parse_str(&v).map_err(|e| StoreError::corrupt("id", e));
    let time = |v: String| WallTime::parse(&v).map_err(|e| StoreError::corrupt("time", e));
    let offer = match (
        row.try_get::<Option<String>, _>("offer_reservation_id")
            .map_err(db(READ))?,
        row.try_get::<Option<String>, _>("offer_time")
            .map_err(db(READ))?,
        row.try_get::<Option<i64>, _>("offer_expires_ms")
            .map_err(db(READ))?,
    ) {
        (Some(r), Some(t), Some(x)) => Some(Offer {
            reservation_id: uuid(r)?,
            time: time(t)?,
            expires_at: from_ms(x)?,
        }),
        _ => None,
    };
    let status = s("status")?;
    Ok(WaitlistEntry {
        id: uuid(s("id")?)?,
        restaurant_id: uuid(s("restaurant_id")?)?,
        date: LocalDate::parse(&s("date")?).map_err(|e| StoreError::corrupt("date", e))?,
        party_size: row.try_get::<i64, _>("party_size").map_err(db(READ))? as u32,
        from: time(s("from_time")?)?,
        to: time(s("to_time")?)?,
        status: WaitStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt("waitlist status", status.clone()))?,
        offer,
        guest: serde_json::from_str::<Guest>(&s("guest")?)
            .map_err(|e| StoreError::corrupt("guest", e))?,
        created_at: from_ms(row.try_get("created_ms").map_err(db(READ))?)?,
        updated_at: from_ms(row.try_get("updated_ms").map_err(db(READ))?)?,
    })
}

/// Offered entries whose offer reached `expires_at` by `now` become `lapsed`, in the caller's
/// transaction: the hold they name is expired by then (offers are never extended). Each one
/// whose offer was mailed gets its "lost" mail in the same transaction. Returns the
/// restaurant/dates they are on.
pub(super) async fn lapse_due_offers(
    tx: &mut Transaction<'_, Sqlite>,
    now: i64,
) -> StoreResult<Vec<(String, LocalDate)>> {
    type Lapsed = (String, String, Option<String>, Option<String>, String);
    let rows: Vec<Lapsed> = sqlx::query_as(LAPSE_DUE_SQL)
        .bind(now)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("lapse due offers"))?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, d, offered, mail_to, guest) in rows {
        if let (Some(offered), Some(to)) = (offered, mail_to) {
            mail_lost(tx, &to, &guest, None, &offered, now).await?;
        }
        out.push((
            r,
            LocalDate::parse(&d).map_err(|e| StoreError::corrupt("date", e))?,
        ));
    }
    Ok(out)
}

/// The entry offered `reservation` follows its change (the reservation as changed), in the
/// caller's transaction: a confirm books it, a release or expiry lapses it — with its "lost"
/// mail when the offer was mailed.
pub(super) async fn follow_offer(
    tx: &mut Transaction<'_, Sqlite>,
    reservation: &Reservation,
    now: i64,
) -> StoreResult<Option<WaitlistEntry>> {
    let status = match reservation.status {
        Status::Confirmed => "booked",
        Status::Released | Status::Expired => "lapsed",
        _ => return Ok(None),
    };
    let id = reservation.id.to_string();
    let Some(row) = sqlx::query(FOLLOW_SQL)
        .bind(&id)
        .bind(status)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("move the entry of an offer"))?
    else {
        return Ok(None);
    };
    let entry = row_to_entry(&row)?;
    let to: Option<String> = row.try_get("mail_to").map_err(db("read mail_to"))?;
    let guest: String = row.try_get("guest").map_err(db("read guest"))?;
    if let (Some(to), "lapsed") = (to, status) {
        mail_lost(tx, &to, &guest, Some(reservation.clone()), &id, now).await?;
    }
    Ok(Some(entry))
}

pub(super) async fn entry_in(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
) -> StoreResult<Option<WaitlistEntry>> {
    sqlx::query("SELECT * FROM waitlist WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("read a waitlist entry"))?
        .as_ref()
        .map(row_to_entry)
        .transpose()
}
