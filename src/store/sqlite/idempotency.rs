//! Idempotency records: the first answer to a key is replayed for a day.
use super::rows::{db, ms};
use super::SqliteStore;
use crate::store::{IdemBegin, StoreResult};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// An idempotency record still in flight after this long belongs to a crashed request.
const IDEM_STALE_MS: i64 = 60_000;
const IDEM_TTL_MS: i64 = 24 * 3600 * 1000;

impl SqliteStore {
    pub(super) async fn idem_begin_(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin> {
        let mut tx = self.begin_write().await?;
        let now = ms(now);
        let row = sqlx::query(
            "SELECT fingerprint, state, status, body, created_ms FROM idempotency WHERE key = ?",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("read idempotency record"))?;
        if let Some(row) = row {
            let created: i64 = row
                .try_get("created_ms")
                .map_err(db("read idempotency record"))?;
            let state: String = row
                .try_get("state")
                .map_err(db("read idempotency record"))?;
            let fp: String = row
                .try_get("fingerprint")
                .map_err(db("read idempotency record"))?;
            let expired = now - created > IDEM_TTL_MS;
            let abandoned = state == "in_flight" && now - created > IDEM_STALE_MS;
            if !expired && !abandoned {
                if fp != fingerprint {
                    return Ok(IdemBegin::Mismatch);
                }
                if state == "in_flight" {
                    return Ok(IdemBegin::InFlight);
                }
                let status: i64 = row
                    .try_get("status")
                    .map_err(db("read idempotency record"))?;
                let body: String = row.try_get("body").map_err(db("read idempotency record"))?;
                return Ok(IdemBegin::Replay {
                    status: status as u16,
                    body,
                });
            }
        }
        sqlx::query(
            "INSERT INTO idempotency (key, fingerprint, state, created_ms) VALUES (?1, ?2, 'in_flight', ?3)
             ON CONFLICT (key) DO UPDATE SET fingerprint = ?2, state = 'in_flight', status = NULL,
               body = NULL, created_ms = ?3",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db("begin idempotency record"))?;
        tx.commit().await.map_err(db("commit idempotency record"))?;
        Ok(IdemBegin::Fresh)
    }

    pub(super) async fn idem_finish_(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        // Only over its own in-flight marker: an answer already recorded (by the effect's own
        // write, or by a request that took over a stale marker) is never overwritten.
        sqlx::query(
            "UPDATE idempotency SET state = 'done', status = ?, body = ? \
             WHERE key = ? AND state = 'in_flight'",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(key)
        .execute(&self.writer)
        .await
        .map_err(db("finish idempotency record"))?;
        Ok(())
    }

    pub(super) async fn idem_abort_(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency WHERE key = ? AND state = 'in_flight'")
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(db("abort idempotency record"))?;
        Ok(())
    }
}
