//! The decisions made inside one write transaction: insert a reservation on the first free
//! candidate table, or move one through the status machine. The group-commit writer runs them.
//! Holds, walk-ins, status changes and expiry: each decided inside the writer's transaction.
use super::rows::{db, guest_json, ms, row_to_reservation, tables_json, OCCUPYING_SQL};
use super::versions::bump_dates;
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation, TableId};
use crate::store::{
    IdemRecord, InsertOutcome, NewReservation, StoreError, StoreResult, Transition,
    TransitionOutcome,
};
use sqlx::{Sqlite, Transaction};

/// Longest a reservation can last (12 h): bounds overlap scans, as the schema's trigger does.
pub(super) const MAX_SPAN_MS: i64 = 43_200_000;

/// Marks expired holds on the given tables overlapping `[start, end)` so their time can be taken.
/// One statement over the live index: one range per candidate table, history never read.
async fn expire_blocking_holds(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    tables: &[TableId],
    start: i64,
    end: i64,
    now: i64,
) -> StoreResult<Vec<LocalDate>> {
    let rows: Vec<String> = sqlx::query_scalar(&expire_blocking_sql())
        .bind(rid)
        .bind(tables_json(tables))
        .bind(start)
        .bind(end)
        .bind(now)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("expire blocking holds"))?;
    rows.iter()
        .map(|d| LocalDate::parse(d).map_err(|e| StoreError::corrupt("date", e)))
        .collect()
}

pub(super) fn expire_blocking_sql() -> String {
    format!(
        "UPDATE reservations SET status = 'expired', updated_ms = ?5
         WHERE restaurant_id = ?1 AND table_id IN (SELECT value FROM json_each(?2))
           AND status IN {OCCUPYING_SQL} AND status = 'held' AND expires_ms <= ?5
           AND start_ms > ?3 - {MAX_SPAN_MS} AND start_ms < ?4 AND end_ms > ?3
         RETURNING date"
    )
}

/// The candidate tables holding an occupying reservation over `[start, end)`. With `live_at`,
/// a hold past `expires_at` then is free (the readers' view); without it, every occupying row
/// counts (the writer's, after `expire_blocking_holds`). Scans the live index only.
pub(super) fn busy_tables_sql(live_at: bool) -> String {
    let live = if live_at {
        " AND (status <> 'held' OR expires_ms > ?5)"
    } else {
        ""
    };
    format!(
        "SELECT DISTINCT table_id FROM reservations
         WHERE restaurant_id = ?1 AND table_id IN (SELECT value FROM json_each(?2))
           AND start_ms > ?3 - {MAX_SPAN_MS} AND start_ms < ?4 AND end_ms > ?3
           AND end_ms > start_ms AND status IN {OCCUPYING_SQL}{live}"
    )
}

/// How many live holds (`held`, not past `expires_at`) a client has, over all restaurants:
/// answered from `reservations_live_holds_by_client`, so released, expired and confirmed holds
/// are never read.
pub(super) const LIVE_HOLDS_OF_CLIENT_SQL: &str = "SELECT COUNT(*) FROM reservations
     WHERE client_key = ?1 AND status = 'held' AND expires_ms > ?2";

/// Writes the idempotent answer of a decided write in its own transaction (and savepoint), in
/// place of the in-flight marker `idem_begin` wrote: the effect and its record commit together.
async fn record_answer(
    tx: &mut Transaction<'_, Sqlite>,
    idem: &IdemRecord,
    decided: &Reservation,
) -> StoreResult<()> {
    let (status, body) = (idem.render)(decided);
    let written = sqlx::query(
        "UPDATE idempotency SET state = 'done', status = ?2, body = ?3
         WHERE key = ?1 AND state = 'in_flight'",
    )
    .bind(&idem.key)
    .bind(i64::from(status))
    .bind(body)
    .execute(&mut **tx)
    .await
    .map_err(db("record the idempotent answer"))?;
    // No in-flight marker left: another request took over a stale one and recorded its answer.
    // This effect must not commit beside it (the savepoint rolls back), as on DynamoDB.
    if written.rows_affected() == 0 {
        return Err(StoreError::Unavailable(
            "the idempotency key was answered by another request meanwhile; retry to replay it"
                .into(),
        ));
    }
    Ok(())
}

/// One hold or walk-in inside the writer's transaction: the first free candidate is claimed.
pub(super) async fn insert_in(
    tx: &mut Transaction<'_, Sqlite>,
    new: NewReservation,
) -> StoreResult<InsertOutcome> {
    let NewReservation {
        mut reservation,
        candidates,
        restaurant_revision,
        token_hash,
        now,
        cap,
        idem,
    } = new;
    let rid = reservation.restaurant_id.to_string();
    let (start, end, now_ms) = (ms(reservation.start), ms(reservation.end), ms(now));
    if SqliteStore::revision(tx, &rid).await? != Some(restaurant_revision) {
        return Ok(InsertOutcome::Stale);
    }
    // The cap is decided before any table is chosen, in the transaction the single writer
    // serializes: of concurrent holds from one client, exactly the first `max` can win.
    if let Some(cap) = &cap {
        let live: i64 = sqlx::query_scalar(LIVE_HOLDS_OF_CLIENT_SQL)
            .bind(&cap.client)
            .bind(now_ms)
            .fetch_one(&mut **tx)
            .await
            .map_err(db("count live holds of a client"))?;
        if live >= i64::from(cap.max) {
            return Ok(InsertOutcome::OverCap);
        }
    }
    let mut touched = expire_blocking_holds(tx, &rid, &candidates, start, end, now_ms).await?;
    let busy: Vec<String> = sqlx::query_scalar(&busy_tables_sql(false))
        .bind(&rid)
        .bind(tables_json(&candidates))
        .bind(start)
        .bind(end)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("find busy tables"))?;
    let Some(table) = candidates
        .iter()
        .find(|t| !busy.iter().any(|b| b == t.as_str()))
    else {
        return Ok(InsertOutcome::Lost);
    };
    reservation.table_id = table.clone();
    sqlx::query(
        "INSERT INTO reservations (id, restaurant_id, table_id, date, time, start_ms, end_ms,
           party_size, status, expires_ms, guest, notes, created_ms, updated_ms, client_key)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(reservation.id.to_string())
    .bind(&rid)
    .bind(table.as_str())
    .bind(reservation.date.to_string())
    .bind(reservation.time.to_string())
    .bind(start)
    .bind(end)
    .bind(i64::from(reservation.party_size))
    .bind(reservation.status.as_str())
    .bind(reservation.expires_at.map(ms))
    .bind(reservation.guest.as_ref().map(guest_json).transpose()?)
    .bind(&reservation.notes)
    .bind(ms(reservation.created_at))
    .bind(ms(reservation.updated_at))
    .bind(cap.map(|c| c.client))
    .execute(&mut **tx)
    .await
    .map_err(db("insert reservation"))?;
    if let Some(h) = token_hash {
        sqlx::query("INSERT INTO tokens (hash, restaurant_id, reservation_id) VALUES (?, ?, ?)")
            .bind(h)
            .bind(&rid)
            .bind(reservation.id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db("insert reservation token"))?;
    }
    touched.extend(reservation.dates_spanned());
    let versions = bump_dates(tx, &rid, touched).await?;
    if let Some(idem) = idem {
        record_answer(tx, &idem, &reservation).await?;
    }
    Ok(InsertOutcome::Won {
        reservation,
        versions,
    })
}

/// One conditional status change inside the writer's transaction.
pub(super) async fn transition_in(
    tx: &mut Transaction<'_, Sqlite>,
    t: Transition,
) -> StoreResult<TransitionOutcome> {
    let now = ms(t.now);
    // A change that shortens `end` (completed, no-show) frees time up to the old end, which may
    // lie past midnight: its dates count too.
    let old_end: Option<i64> = match t.end {
        Some(_) => sqlx::query_scalar("SELECT end_ms FROM reservations WHERE id = ?")
            .bind(t.id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("read reservation before shortening it"))?,
        None => None,
    };
    let row = sqlx::query(
        "UPDATE reservations SET status = ?3,
           expires_ms = CASE WHEN ?3 = 'held' THEN expires_ms ELSE NULL END,
           guest = COALESCE(?4, guest), notes = COALESCE(?5, notes),
           end_ms = COALESCE(?6, end_ms), updated_ms = ?7
         WHERE id = ?1 AND status = ?2 AND (status <> 'held' OR expires_ms > ?7)
         RETURNING *",
    )
    .bind(t.id.to_string())
    .bind(t.from.as_str())
    .bind(t.to.as_str())
    .bind(t.guest.as_ref().map(guest_json).transpose()?)
    .bind(t.notes.as_deref())
    .bind(t.end.map(ms))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db("change reservation status"))?;
    let Some(row) = row else {
        let cur = sqlx::query("SELECT * FROM reservations WHERE id = ?")
            .bind(t.id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("read reservation after a refused change"))?;
        return Ok(TransitionOutcome::Conflict(
            cur.as_ref().map(row_to_reservation).transpose()?,
        ));
    };
    let reservation = row_to_reservation(&row)?;
    let mut dates = reservation.dates_spanned();
    if let Some(end) = old_end.and_then(chrono::DateTime::from_timestamp_millis) {
        let before = Reservation {
            end,
            ..reservation.clone()
        };
        dates.extend(before.dates_spanned());
    }
    let versions = bump_dates(tx, &reservation.restaurant_id.to_string(), dates).await?;
    if let Some(idem) = &t.idem {
        record_answer(tx, idem, &reservation).await?;
    }
    if let Some(mail) = &t.mail {
        super::outbox::put_mail(tx, mail, &reservation, now).await?;
    }
    Ok(TransitionOutcome::Done {
        reservation,
        versions,
    })
}
