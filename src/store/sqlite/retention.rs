//! Retention: dead holds (released, expired, or held past `expires_at`) and old idempotency
//! records are deleted oldest first, in small batches, each its own short write transaction, so
//! holds queued behind the writer never wait long. Business records are never touched. Lapsed
//! and left waitlist entries, and every entry but a booked one of a date before the cut-off,
//! go too.
use super::rows::{db, ms};
use super::SqliteStore;
use crate::store::StoreResult;
use chrono::{DateTime, Utc};

/// Rows deleted by one transaction at most.
const BATCH: usize = 256;

/// The oldest dead holds last changed before `?1`, at most `?2`: released and expired ones by
/// their last change, held ones by their expiry (they are expired by condition since then).
/// Each arm reads its own partial index, in order.
pub(super) const DEAD_HOLDS_SQL: &str = "SELECT id FROM (
       SELECT id, t FROM (SELECT id, updated_ms AS t FROM reservations
                          WHERE status IN ('released','expired') AND updated_ms < ?1
                          ORDER BY updated_ms LIMIT ?2)
       UNION ALL
       SELECT id, t FROM (SELECT id, expires_ms AS t FROM reservations
                          WHERE status = 'held' AND expires_ms < ?1
                          ORDER BY expires_ms LIMIT ?2))
     ORDER BY t LIMIT ?2";

pub(super) const DEAD_TOKENS_SQL: &str =
    "DELETE FROM tokens WHERE reservation_id IN (SELECT value FROM json_each(?1))";

/// Only the statuses that can be dead: a business record is never deleted, whatever its id.
pub(super) const DEAD_RESERVATIONS_SQL: &str =
    "DELETE FROM reservations WHERE id IN (SELECT value FROM json_each(?1))
       AND status IN ('released','expired','held')";

/// Waitlist entries finished (lapsed, left) before `?1`, or not booked and of a date before
/// `?2`, at most `?3`: each arm reads its own index. A booked entry is kept: its token reads
/// the confirmed reservation it became.
pub(super) const OLD_ENTRIES_SQL: &str = "DELETE FROM waitlist WHERE id IN (
       SELECT id FROM (SELECT id FROM waitlist WHERE status IN ('lapsed','left') AND updated_ms < ?1
                       ORDER BY updated_ms LIMIT ?3)
       UNION
       SELECT id FROM (SELECT id FROM waitlist WHERE date < ?2 AND status <> 'booked'
                       ORDER BY date LIMIT ?3)
       LIMIT ?3)";

pub(super) const OLD_IDEMPOTENCY_SQL: &str = "DELETE FROM idempotency WHERE key IN
       (SELECT key FROM idempotency WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2)";

impl SqliteStore {
    pub(super) async fn purge_(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        let before_date = before.date_naive().to_string();
        let before = ms(before);
        let mut left = limit as usize;
        let mut total = 0;
        while left > 0 {
            let want = left.min(BATCH);
            let n = self.purge_holds(before, want).await?;
            (total, left) = (total + n, left - n);
            if n < want {
                break;
            }
        }
        while left > 0 {
            let want = left.min(BATCH);
            let n = self.purge_entries(before, &before_date, want).await?;
            (total, left) = (total + n, left - n);
            if n < want {
                break;
            }
        }
        while left > 0 {
            let want = left.min(BATCH);
            let n = self.purge_idempotency(before, want).await?;
            (total, left) = (total + n, left - n);
            if n < want {
                break;
            }
        }
        Ok(total)
    }

    /// One batch of dead holds and their tokens, in one short transaction.
    async fn purge_holds(&self, before: i64, want: usize) -> StoreResult<usize> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(DEAD_HOLDS_SQL)
            .bind(before)
            .bind(want as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(db("find dead holds"))?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = serde_json::Value::from(ids).to_string();
        sqlx::query(DEAD_TOKENS_SQL)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(db("delete the tokens of dead holds"))?;
        let gone = sqlx::query(DEAD_RESERVATIONS_SQL)
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(db("delete dead holds"))?
            .rows_affected();
        tx.commit().await.map_err(db("commit a retention batch"))?;
        // A held row past its expiry is in the day views and goes without a version: the cached
        // views are read again. (Another instance on the same file keeps its own until a change
        // of the date it does not take in from its own writer, such as a sweep: its own holds
        // and status changes move its views on. An expired hold occupies nothing, so only the
        // floor could show it, and each read of it asks for a sweep, which finds nothing.)
        if gone > 0 {
            self.days.lock().expect("days").clear();
        }
        Ok(gone as usize)
    }

    /// One batch of finished or past waitlist entries (their token hashes go with them).
    async fn purge_entries(&self, before: i64, date: &str, want: usize) -> StoreResult<usize> {
        let gone = sqlx::query(OLD_ENTRIES_SQL)
            .bind(before)
            .bind(date)
            .bind(want as i64)
            .execute(&self.writer)
            .await
            .map_err(db("delete old waitlist entries"))?
            .rows_affected();
        Ok(gone as usize)
    }

    /// One batch of old idempotency records, in one short transaction.
    async fn purge_idempotency(&self, before: i64, want: usize) -> StoreResult<usize> {
        let gone = sqlx::query(OLD_IDEMPOTENCY_SQL)
            .bind(before)
            .bind(want as i64)
            .execute(&self.writer)
            .await
            .map_err(db("delete old idempotency records"))?
            .rows_affected();
        Ok(gone as usize)
    }
}
