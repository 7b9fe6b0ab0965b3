//! The decisions made inside one write transaction: insert a reservation on the first free
//! candidate seating option (every member table or none) within its pacing window, or move one
//! through the status machine. The group-commit writer runs them.
use super::rows::{db, guest_json, ms, row_to_reservation, tables_json, PACING_SQL};
use super::versions::{bump_dates, merge};
use super::waitlist_mail::mail_offer;
use super::waitlist_tx::{entry_in, row_to_entry};
use super::SqliteStore;
use crate::domain::reservation::Status;
use crate::domain::WaitStatus;
use crate::domain::{LocalDate, Reservation, Seating, TableId};
use crate::store::{
    IdemRecord, InsertOutcome, NewOffer, NewReservation, OfferOutcome, PacingCheck, StoreError,
    StoreResult, Transition, TransitionOutcome,
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
        "UPDATE reservations SET status = 'expired', updated_ms = MIN(expires_ms, ?5)
         WHERE id IN (SELECT reservation_id FROM reservation_tables
                      WHERE restaurant_id = ?1 AND table_id IN (SELECT value FROM json_each(?2))
                        AND start_ms > ?3 - {MAX_SPAN_MS} AND start_ms < ?4 AND end_ms > ?3
                        AND expires_ms <= ?5)
           AND status = 'held' AND expires_ms <= ?5
         RETURNING date"
    )
}

/// The candidate tables occupied over `[start, end)`, from the rows of occupying reservations'
/// tables (migration 0003): every row counts (the writer's view, after
/// `expire_blocking_holds`).
pub(super) fn busy_tables_sql() -> String {
    format!(
        "SELECT DISTINCT table_id FROM reservation_tables
         WHERE restaurant_id = ?1 AND table_id IN (SELECT value FROM json_each(?2))
           AND start_ms > ?3 - {MAX_SPAN_MS} AND start_ms < ?4 AND end_ms > ?3
           AND end_ms > start_ms"
    )
}

/// Covers and parties counting in one pacing window at `?5`: reservations of the date whose
/// local time lies in `[?3, ?4)`, occupying, a hold only until it expires. Reads the partial
/// index `reservations_pacing`, so history is never scanned.
pub(super) fn pacing_count_sql() -> String {
    format!(
        "SELECT COALESCE(SUM(party_size), 0), COUNT(*) FROM reservations
         WHERE restaurant_id = ?1 AND date = ?2 AND time >= ?3 AND time < ?4
           AND status IN {PACING_SQL} AND (status <> 'held' OR expires_ms > ?5)"
    )
}

/// Marks expired the holds of a window past `expires_at` at `now` (those its count left out).
async fn expire_window_holds(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    date: LocalDate,
    check: &PacingCheck,
    now: i64,
) -> StoreResult<Vec<LocalDate>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "UPDATE reservations SET status = 'expired', updated_ms = MIN(expires_ms, ?5)
         WHERE restaurant_id = ?1 AND date = ?2 AND time >= ?3 AND time < ?4
           AND status = 'held' AND expires_ms <= ?5
         RETURNING date",
    )
    .bind(rid)
    .bind(date.to_string())
    .bind(check.window.start.to_string())
    .bind(check.window.end.to_string())
    .bind(now)
    .fetch_all(&mut **tx)
    .await
    .map_err(db("expire the holds of a pacing window"))?;
    rows.iter()
        .map(|d| LocalDate::parse(d).map_err(|e| StoreError::corrupt("date", e)))
        .collect()
}

/// Every member table of the candidates, once each.
pub(super) fn member_tables(candidates: &[Seating]) -> Vec<TableId> {
    let mut v: Vec<TableId> = candidates
        .iter()
        .flat_map(|s| s.tables.iter().cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The first candidate none of whose tables is busy.
fn first_free<'a>(candidates: &'a [Seating], busy: &[String]) -> Option<&'a Seating> {
    candidates.iter().find(|s| {
        s.tables
            .iter()
            .all(|t| !busy.iter().any(|b| b == t.as_str()))
    })
}

/// `(covers, parties)` counting in a window at `now`.
async fn pacing_count<'e, E>(
    exec: E,
    rid: &str,
    date: LocalDate,
    check: &PacingCheck,
    now: i64,
) -> StoreResult<(u32, u32)>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let (covers, parties): (i64, i64) = sqlx::query_as(&pacing_count_sql())
        .bind(rid)
        .bind(date.to_string())
        .bind(check.window.start.to_string())
        .bind(check.window.end.to_string())
        .bind(now)
        .fetch_one(exec)
        .await
        .map_err(db("count a pacing window"))?;
    let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok((clamp(covers), clamp(parties)))
}

/// How many live holds (`held`, not past `expires_at`) a client has, over all restaurants:
/// answered from `reservations_live_holds_by_client`, so released, expired and confirmed holds
/// are never read.
pub(super) const LIVE_HOLDS_OF_CLIENT_SQL: &str = "SELECT COUNT(*) FROM reservations
     WHERE client_key = ?1 AND status = 'held' AND expires_ms > ?2";

/// Writes the idempotent answer of a decided write in its own transaction (and savepoint), in
/// place of the in-flight marker `idem_begin` wrote: the effect and its record commit together.
pub(super) async fn record_answer(
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
        pacing,
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
    let members = member_tables(&candidates);
    let mut touched = expire_blocking_holds(tx, &rid, &members, start, end, now_ms).await?;
    // Offers whose hold just expired lapse with it.
    if !touched.is_empty() {
        let lapsed = super::waitlist_tx::lapse_due_offers(tx, now_ms).await?;
        touched.extend(
            lapsed
                .into_iter()
                .filter(|(r, _)| *r == rid)
                .map(|(_, d)| d),
        );
    }
    let busy: Vec<String> = sqlx::query_scalar(&busy_tables_sql())
        .bind(&rid)
        .bind(tables_json(&members))
        .bind(start)
        .bind(end)
        .fetch_all(&mut **tx)
        .await
        .map_err(db("find busy tables"))?;
    // No seating option free: the reason is the table, whatever pacing says.
    let Some(seating) = first_free(&candidates, &busy) else {
        return Ok(InsertOutcome::Lost { seen: None });
    };
    // The window's count, in the same transaction the single writer serializes: of concurrent
    // holds into one window, exactly as many as fit can win. An expired hold never counts.
    if let Some(check) = pacing.as_ref().filter(|c| c.enforce) {
        let (covers, parties) =
            pacing_count(&mut **tx, &rid, reservation.date, check, now_ms).await?;
        if check.refuses(covers, parties, reservation.party_size) {
            return Ok(InsertOutcome::Paced { seen: None });
        }
        // The count left out the window's holds past `expires_at`: mark them expired, so a
        // confirm queued behind this hold with a slightly earlier `now` cannot bring one back
        // into the count over this hold.
        touched.extend(expire_window_holds(tx, &rid, reservation.date, check, now_ms).await?);
    }
    reservation.seat(seating);
    sqlx::query(
        "INSERT INTO reservations (id, restaurant_id, table_id, date, time, start_ms, end_ms,
           party_size, status, expires_ms, guest, notes, created_ms, updated_ms, client_key,
           table_ids, combination_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(reservation.id.to_string())
    .bind(&rid)
    .bind(reservation.table_id.as_str())
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
    .bind(tables_json(&reservation.table_ids))
    .bind(
        reservation
            .combination_id
            .as_ref()
            .map(|c| c.as_str().to_owned()),
    )
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
    // An offered hold's entry follows it in this same transaction: booked or lapsed.
    let entry = super::waitlist_tx::follow_offer(tx, &reservation, now).await?;
    let mut dates = reservation.dates_spanned();
    if let Some(end) = old_end.and_then(chrono::DateTime::from_timestamp_millis) {
        let before = Reservation {
            end,
            ..reservation.clone()
        };
        dates.extend(before.dates_spanned());
    }
    // Every date the change touched, the old end's included: time freed past midnight by a
    // turn ended early lies on a date the shortened reservation no longer spans.
    let touched = dates.clone();
    let versions = bump_dates(tx, &reservation.restaurant_id.to_string(), dates).await?;
    if let Some(idem) = &t.idem {
        record_answer(tx, idem, &reservation).await?;
    }
    if let Some(mail) = &t.mail {
        super::outbox::put_mail(tx, mail, &reservation, now).await?;
    }
    // Only a change that frees time looks: read in the same transaction (the
    // `waitlist_waiting` index), so whoever joins after it joined after the free, and is not
    // offered it.
    let frees = matches!(
        t.to,
        Status::Released | Status::Cancelled | Status::Completed | Status::NoShow
    );
    let waiting = if frees {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM waitlist WHERE status = 'waiting'
               AND restaurant_id = ?1 AND date IN (SELECT value FROM json_each(?2)))",
        )
        .bind(reservation.restaurant_id.to_string())
        .bind(super::rows::dates_json(&touched))
        .fetch_one(&mut **tx)
        .await
        .map_err(db("look for waiting entries"))?;
        Some(found)
    } else {
        None
    };
    Ok(TransitionOutcome::Done {
        reservation,
        versions,
        entry,
        waiting,
    })
}

/// An offer decided inside the writer's transaction (the caller commits, or rolls back what
/// this wrote unless it answers `Offered`).
pub(super) async fn offer_in(
    tx: &mut Transaction<'_, Sqlite>,
    o: NewOffer,
) -> StoreResult<OfferOutcome> {
    let (entry_id, hold, mail) = o.plain();
    let now = hold.now;
    let rid = hold.reservation.restaurant_id.to_string();
    if SqliteStore::revision(tx, &rid).await? != Some(hold.restaurant_revision) {
        return Ok(OfferOutcome::Stale);
    }
    let id = entry_id.to_string();
    let waiting = match entry_in(tx, &id).await? {
        Some(e) if e.status == WaitStatus::Waiting => e,
        other => return Ok(OfferOutcome::NotWaiting(other)),
    };
    let (reservation, mut versions) = match insert_in(tx, hold).await? {
        InsertOutcome::Won {
            reservation,
            versions,
        } => (reservation, versions),
        InsertOutcome::Lost { .. } | InsertOutcome::OverCap => return Ok(OfferOutcome::Lost),
        InsertOutcome::Paced { .. } => return Ok(OfferOutcome::Paced),
        InsertOutcome::Stale => return Ok(OfferOutcome::Stale),
    };
    let expires = reservation
        .expires_at
        .ok_or(StoreError::Internal("an offer without expires_at".into()))?;
    let row = sqlx::query(
        "UPDATE waitlist SET status = 'offered', offer_reservation_id = ?2, offer_time = ?3,
               offer_expires_ms = ?4, updated_ms = ?5, mail_to = ?6
             WHERE id = ?1 AND status = 'waiting' RETURNING *",
    )
    .bind(&id)
    .bind(reservation.id.to_string())
    .bind(reservation.time.to_string())
    .bind(ms(expires))
    .bind(ms(now))
    .bind(mail.as_ref().map(|m| m.to.as_str()))
    .fetch_one(&mut **tx)
    .await
    .map_err(db("mark an entry offered"))?;
    let entry = row_to_entry(&row)?;
    if let Some(mail) = &mail {
        mail_offer(tx, mail, &reservation, &waiting.guest, ms(now)).await?;
    }
    let more = bump_dates(tx, &rid, [entry.date]).await?;
    merge(&mut versions, more);
    Ok(OfferOutcome::Offered {
        entry,
        reservation,
        versions,
    })
}
