//! Holds, walk-ins, status changes and expiry: queued to the group-commit writer, which decides
//! each inside its transaction (see `decide.rs`).
use super::decide::MAX_SPAN_MS;
use super::rows::{db, ms, row_to_reservation, OCCUPYING_SQL};
use super::versions::bump_dates;
use super::{batch, SqliteStore};
use crate::domain::{Reservation, TableId};
use crate::store::{
    InsertOutcome, NewReservation, StoreError, StoreResult, Transition, TransitionOutcome, Versions,
};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

/// Longest a reservation can last (12 h): bounds overlap scans, as the schema's trigger does.
impl SqliteStore {
    /// Whether every candidate table holds a live reservation over `[start, end)` in the last
    /// committed state (a hold past `expires_at` is free).
    async fn all_taken(
        &self,
        rid: &str,
        candidates: &[TableId],
        start: i64,
        end: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let q = format!(
            "SELECT DISTINCT table_id FROM reservations
             WHERE restaurant_id = ? AND start_ms > ? AND start_ms < ? AND end_ms > ?
               AND end_ms > start_ms AND status IN {OCCUPYING_SQL}
               AND (status <> 'held' OR expires_ms > ?)"
        );
        let busy: Vec<String> = sqlx::query_scalar(&q)
            .bind(rid)
            .bind(start - MAX_SPAN_MS)
            .bind(end)
            .bind(start)
            .bind(now)
            .fetch_all(&self.reader)
            .await
            .map_err(db("find taken tables"))?;
        Ok(candidates
            .iter()
            .all(|t| busy.iter().any(|b| b == t.as_str())))
    }

    pub(super) async fn insert_reservation_(
        &self,
        new: NewReservation,
    ) -> StoreResult<InsertOutcome> {
        let rid = new.reservation.restaurant_id.to_string();
        let (start, end) = (ms(new.reservation.start), ms(new.reservation.end));
        // A hold never waits on another: when a committed snapshot already shows every
        // candidate taken, the loser is answered from a reader without queueing for the writer.
        if self
            .all_taken(&rid, &new.candidates, start, end, ms(new.now))
            .await?
        {
            return Ok(InsertOutcome::Lost);
        }
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Insert(new, reply)).await?;
        answer
            .await
            .map_err(|e| StoreError::internal("the writer stopped before answering", e))?
    }

    pub(super) async fn transition_(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Transition(t, reply)).await?;
        answer
            .await
            .map_err(|e| StoreError::internal("the writer stopped before answering", e))?
    }

    pub(super) async fn expire_due_(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE reservations SET status = 'expired', updated_ms = ?1
             WHERE id IN (SELECT id FROM reservations WHERE status = 'held' AND expires_ms <= ?1
                          ORDER BY expires_ms LIMIT ?2)
             RETURNING *",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(db("expire due holds"))?;
        let mut out = Vec::new();
        for row in &rows {
            let r = row_to_reservation(row)?;
            let v = bump_dates(&mut tx, &r.restaurant_id.to_string(), [r.date]).await?;
            out.push((r, v));
        }
        tx.commit().await.map_err(db("commit expiries"))?;
        Ok(out)
    }
}
