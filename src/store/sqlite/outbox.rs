//! The outbox on SQLite: records are inserted in the decision's transaction; the sender claims
//! due ones in a short write transaction of its own (the single writer serializes claims).
use super::rows::{db, ms};
use super::SqliteStore;
use crate::domain::Reservation;
use crate::store::outbox::{from_snapshot, snapshot};
use crate::store::{MailIntent, MailKind, Outbox, OutboxRecord, Settle, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

/// The oldest due pending records, claimed until the lease's end (`?2`).
pub(super) const CLAIM_SQL: &str = "UPDATE outbox SET next_ms = ?2, attempts = attempts + 1
     WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_ms <= ?1
                  ORDER BY next_ms, created_ms LIMIT ?3)
     RETURNING *";

pub(super) const PENDING_SQL: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'pending'";

/// Settled records oldest first, only those settled before `?1`.
pub(super) const PURGE_SQL: &str = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
       WHERE state <> 'pending' AND settled_ms < ?1 ORDER BY settled_ms LIMIT ?2)";

/// Puts a mail in the outbox inside the decision's transaction, due at once.
pub(super) async fn put_mail(
    tx: &mut Transaction<'_, Sqlite>,
    mail: &MailIntent,
    decided: &Reservation,
    now_ms: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (id, kind, recipient, reservation, next_ms, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .bind(mail.id.to_string())
    .bind(mail.kind.as_str())
    .bind(&mail.to)
    .bind(snapshot(decided)?)
    .bind(now_ms)
    .execute(&mut **tx)
    .await
    .map_err(db("put a mail in the outbox"))?;
    Ok(())
}

fn record(row: &SqliteRow) -> StoreResult<OutboxRecord> {
    let get = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(db("read the outbox")) };
    let kind = get("kind")?;
    let created: i64 = row.try_get("created_ms").map_err(db("read the outbox"))?;
    let attempts: i64 = row.try_get("attempts").map_err(db("read the outbox"))?;
    Ok(OutboxRecord {
        id: Uuid::parse_str(&get("id")?).map_err(|e| StoreError::corrupt("mail record", e))?,
        kind: MailKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("mail record", format!("kind `{kind}`")))?,
        to: get("recipient")?,
        reservation: from_snapshot(&get("reservation")?)?,
        created_at: DateTime::from_timestamp_millis(created)
            .ok_or_else(|| StoreError::corrupt("mail record", "created_ms"))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        lease_ms: row.try_get("next_ms").map_err(db("read the outbox"))?,
    })
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn outbox_claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRecord>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(CLAIM_SQL)
            .bind(ms(now))
            .bind(ms(lease_until))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db("claim due mail"))?;
        tx.commit().await.map_err(db("commit a mail claim"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match record(row) {
                Ok(r) => out.push(r),
                // One record that cannot be read must not block the others: it is given up.
                Err(e) => {
                    let id: String = row.try_get("id").map_err(db("read the outbox"))?;
                    tracing::error!(mail = %id, error = format!("{e:#}"), "mail: unreadable outbox record given up");
                    sqlx::query(
                        "UPDATE outbox SET state = 'failed', settled_ms = ?2
                         WHERE id = ?1 AND state = 'pending'",
                    )
                    .bind(&id)
                    .bind(ms(now))
                    .execute(&self.writer)
                    .await
                    .map_err(db("give up an unreadable mail"))?;
                }
            }
        }
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    async fn outbox_settle(
        &self,
        record: &OutboxRecord,
        settle: Settle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (state, next) = match settle {
            Settle::Sent => ("sent", record.lease_ms),
            Settle::Failed => ("failed", record.lease_ms),
            Settle::RetryAt(at) => ("pending", ms(at)),
        };
        let done = sqlx::query(
            "UPDATE outbox SET state = ?3, next_ms = ?4,
               settled_ms = CASE WHEN ?3 = 'pending' THEN NULL ELSE ?5 END
             WHERE id = ?1 AND state = 'pending' AND next_ms = ?2",
        )
        .bind(record.id.to_string())
        .bind(record.lease_ms)
        .bind(state)
        .bind(next)
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .map_err(db("settle a mail"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_pending(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(PENDING_SQL)
            .fetch_one(&self.reader)
            .await
            .map_err(db("count pending mail"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn add_reservation_token(
        &self,
        hash: &str,
        restaurant_id: Uuid,
        reservation_id: Uuid,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO tokens (hash, restaurant_id, reservation_id) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(restaurant_id.to_string())
            .bind(reservation_id.to_string())
            .execute(&self.writer)
            .await
            .map_err(db("add a reservation token"))?;
        Ok(())
    }

    async fn outbox_purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        let gone = sqlx::query(PURGE_SQL)
            .bind(ms(before))
            .bind(i64::from(limit))
            .execute(&self.writer)
            .await
            .map_err(db("delete old mail records"))?
            .rows_affected();
        Ok(gone as usize)
    }
}
