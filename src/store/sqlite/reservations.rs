//! Holds, walk-ins, status changes and expiry: queued to the group-commit writer, which decides
//! each inside its transaction (see `decide.rs`).
use super::decide::{
    busy_tables_sql, first_free, member_tables, pacing_count, LIVE_HOLDS_OF_CLIENT_SQL,
};
use super::rows::{db, ms, row_to_reservation, tables_json};
use super::versions::bump_dates;
use super::{batch, SqliteStore};
use crate::domain::{Reservation, Seating};
use crate::store::{
    InsertOutcome, NewReservation, StoreError, StoreResult, Transition, TransitionOutcome, Versions,
};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

impl SqliteStore {
    /// Whether every candidate seating option has a taken table over `[start, end)` in the last
    /// committed state (a hold past `expires_at` is free).
    async fn all_taken(
        &self,
        rid: &str,
        candidates: &[Seating],
        start: i64,
        end: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let busy: Vec<String> = sqlx::query_scalar(&busy_tables_sql(true))
            .bind(rid)
            .bind(tables_json(&member_tables(candidates)))
            .bind(start)
            .bind(end)
            .bind(now)
            .fetch_all(&self.reader)
            .await
            .map_err(db("find taken tables"))?;
        Ok(first_free(candidates, &busy).is_none())
    }

    /// Whether the last committed state of the window already refuses this party.
    async fn paced(&self, rid: &str, new: &NewReservation, now: i64) -> StoreResult<bool> {
        let Some(check) = new.pacing.filter(|c| c.enforce) else {
            return Ok(false);
        };
        let (covers, parties) =
            pacing_count(&self.reader, rid, new.reservation.date, &check, now).await?;
        Ok(check.refuses(covers, parties, new.reservation.party_size))
    }

    pub(super) async fn insert_reservation_(
        &self,
        new: NewReservation,
    ) -> StoreResult<InsertOutcome> {
        let rid = new.reservation.restaurant_id.to_string();
        let (start, end) = (ms(new.reservation.start), ms(new.reservation.end));
        // A hold never waits on another: when a committed snapshot already shows the client at
        // its cap, every candidate taken, or its pacing window full, the loser is answered from a
        // reader without queueing for the writer (in the order the writer decides). Only the
        // writer wins.
        let now = ms(new.now);
        let over_cap = async {
            let Some(cap) = &new.cap else {
                return Ok(false);
            };
            let live: i64 = sqlx::query_scalar(LIVE_HOLDS_OF_CLIENT_SQL)
                .bind(&cap.client)
                .bind(now)
                .fetch_one(&self.reader)
                .await
                .map_err(db("count the client's live holds"))?;
            Ok(live >= i64::from(cap.max))
        };
        // The reads at once, on reader connections.
        let (over_cap, taken, paced) = tokio::try_join!(
            over_cap,
            self.all_taken(&rid, &new.candidates, start, end, now),
            self.paced(&rid, &new, now)
        )?;
        if over_cap {
            return Ok(InsertOutcome::OverCap);
        }
        if taken {
            return Ok(InsertOutcome::Lost);
        }
        if paced {
            return Ok(InsertOutcome::Paced);
        }
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Insert(Box::new(new), reply)).await?;
        answer
            .await
            .map_err(|e| StoreError::internal("the writer stopped before answering", e))?
    }

    pub(super) async fn transition_(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Transition(Box::new(t), reply))
            .await?;
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
        // Offers whose hold expired lapse in the same transaction.
        super::waitlist::lapse_due_offers(&mut tx, ms(now)).await?;
        let mut out = Vec::new();
        for row in &rows {
            let r = row_to_reservation(row)?;
            let v = bump_dates(&mut tx, &r.restaurant_id.to_string(), r.dates_spanned()).await?;
            out.push((r, v));
        }
        tx.commit().await.map_err(db("commit expiries"))?;
        Ok(out)
    }
}
