//! Holds, walk-ins, status changes and expiry: queued to the group-commit writer, which decides
//! each inside its transaction (see `decide.rs`).
use super::rows::{db, ms, row_to_reservation};
use super::versions::bump_dates;
use super::{batch, SqliteStore};
use crate::domain::Reservation;
use crate::store::{
    InsertOutcome, NewOffer, NewReservation, OfferOutcome, StoreError, StoreResult, Transition,
    TransitionOutcome, Versions,
};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

impl SqliteStore {
    pub(super) async fn insert_reservation_(
        &self,
        new: NewReservation,
    ) -> StoreResult<InsertOutcome> {
        // Every hold, winner or loser, is decided by the writer's script, with no round trip
        // of its own (`batch.rs`): cheaper than a reader's look first, even for a stampede's
        // losers, which it answers with the date's version it decided at.
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

    /// Queued as one job: the group commit decides the offer right after the transition, in
    /// its transaction.
    pub(super) async fn transition_offering_(
        &self,
        t: Transition,
        o: NewOffer,
    ) -> StoreResult<(TransitionOutcome, Option<OfferOutcome>)> {
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::TransitionOffering(
            Box::new(t),
            Box::new(o),
            reply,
        ))
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
        // Each changed when it expired, however late the sweep: retention counts from then.
        let rows = sqlx::query(
            "UPDATE reservations SET status = 'expired', updated_ms = MIN(expires_ms, ?1)
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
        super::waitlist_tx::lapse_due_offers(&mut tx, ms(now)).await?;
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
