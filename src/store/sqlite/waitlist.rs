//! The waitlist on SQLite: joins, reads, offers and leaves, each one write transaction. An
//! offer is a hold decided by the same code as any hold (`decide::offer_in` calls
//! `decide::insert_in`), with the entry's `waiting → offered` change in the same transaction.
use super::decide::offer_in;
use super::rows::{db, guest_json, ms, row_to_reservation};
use super::savepoint::{close_savepoint, savepoint};
use super::versions::bump_dates;
use super::waitlist_tx::{
    entry_in, from_ms, row_to_entry, BY_TOKEN_SQL, QUEUE_SQL, WAITING_DAYS_SQL,
};
use super::SqliteStore;
use crate::domain::waitlist::{WaitStatus, WaitlistEntry};
use crate::domain::LocalDate;
use crate::store::{
    JoinOutcome, LeaveOutcome, NewEntry, NewOffer, OfferOutcome, StoreError, StoreResult,
    WaitingDay,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

impl SqliteStore {
    pub(super) async fn join_waitlist_(&self, new: NewEntry) -> StoreResult<JoinOutcome> {
        let e = new.entry;
        let rid = e.restaurant_id.to_string();
        let mut tx = self.begin_write().await?;
        if Self::revision(&mut tx, &rid).await?.is_none() {
            return Ok(JoinOutcome::Gone);
        }
        sqlx::query(
            "INSERT INTO waitlist (id, restaurant_id, date, party_size, from_time, to_time,
               status, guest, token_hash, created_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
        )
        .bind(e.id.to_string())
        .bind(&rid)
        .bind(e.date.to_string())
        .bind(i64::from(e.party_size))
        .bind(e.from.to_string())
        .bind(e.to.to_string())
        .bind(guest_json(&e.guest)?)
        .bind(&new.token_hash)
        .bind(ms(e.created_at))
        .bind(ms(e.updated_at))
        .execute(&mut *tx)
        .await
        .map_err(db("insert a waitlist entry"))?;
        let versions = bump_dates(&mut tx, &rid, [e.date]).await?;
        tx.commit().await.map_err(db("commit a join"))?;
        let entry = WaitlistEntry {
            status: WaitStatus::Waiting,
            offer: None,
            ..e
        };
        Ok(JoinOutcome::Joined { entry, versions })
    }

    pub(super) async fn waitlist_entry_(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>> {
        sqlx::query("SELECT * FROM waitlist WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read a waitlist entry"))?
            .as_ref()
            .map(row_to_entry)
            .transpose()
    }

    pub(super) async fn waitlist_entry_by_token_(
        &self,
        hash: &str,
    ) -> StoreResult<Option<WaitlistEntry>> {
        sqlx::query(BY_TOKEN_SQL)
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read a waitlist entry by token"))?
            .as_ref()
            .map(row_to_entry)
            .transpose()
    }

    pub(super) async fn waitlist_on_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>> {
        sqlx::query(QUEUE_SQL)
            .bind(restaurant_id.to_string())
            .bind(date.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(db("read a waitlist"))?
            .iter()
            .map(row_to_entry)
            .collect()
    }

    pub(super) async fn waiting_days_(
        &self,
        from: LocalDate,
        limit: u32,
    ) -> StoreResult<Vec<WaitingDay>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(WAITING_DAYS_SQL)
            .bind(from.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(db("read the days with waiting entries"))?;
        rows.into_iter()
            .map(|(r, d, c)| {
                Ok(WaitingDay {
                    restaurant_id: Uuid::parse_str(&r).map_err(|e| StoreError::corrupt("id", e))?,
                    date: LocalDate::parse(&d).map_err(|e| StoreError::corrupt("date", e))?,
                    oldest: from_ms(c)?,
                })
            })
            .collect()
    }

    /// Queued to the group-commit writer like any hold: offers made at once share its commit.
    pub(super) async fn offer_(&self, o: NewOffer) -> StoreResult<OfferOutcome> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.batch(super::batch::Job::Offer(Box::new(o), reply))
            .await?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the writer dropped an offer".into()))?
    }
}

impl SqliteStore {
    /// The entry leaves; when that releases its offer, `offer` (planned for the released
    /// capacity) is decided next in the same transaction, in a savepoint of its own: refused,
    /// only it is rolled back.
    pub(super) async fn leave_waitlist_(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        offer: Option<NewOffer>,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;
        let Some(cur) = entry_in(&mut tx, &id.to_string()).await? else {
            return Ok((LeaveOutcome::NotFound, None));
        };
        let offered = match cur.status {
            WaitStatus::Waiting => None,
            WaitStatus::Offered => cur.offer.as_ref().map(|o| o.reservation_id),
            _ => return Ok((LeaveOutcome::Unchanged(cur), None)),
        };
        let row = sqlx::query(
            "UPDATE waitlist SET status = 'left', updated_ms = ?2 WHERE id = ?1 RETURNING *",
        )
        .bind(id.to_string())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("leave the waitlist"))?;
        let entry = row_to_entry(&row)?;
        let rid = entry.restaurant_id.to_string();
        let mut dates = vec![entry.date];
        let mut released = None;
        if let Some(res) = offered {
            let row = sqlx::query(
                "UPDATE reservations SET status = 'released', expires_ms = NULL, updated_ms = ?2
                 WHERE id = ?1 AND status = 'held' AND expires_ms > ?2 RETURNING *",
            )
            .bind(res.to_string())
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("decline an offer"))?;
            if let Some(row) = row {
                let r = row_to_reservation(&row)?;
                dates.extend(r.dates_spanned());
                released = Some(r);
            }
        }
        let versions = bump_dates(&mut tx, &rid, dates).await?;
        let next = match offer.filter(|_| released.is_some()) {
            Some(o) => {
                savepoint(&mut tx)
                    .await
                    .map_err(db("open the offer's savepoint"))?;
                // Refused or failed, only the offer is undone: the leave stands, and the
                // caller offers the declined capacity the usual way.
                let out = crate::store::planned_offer(offer_in(&mut tx, o).await);
                let keep = matches!(out, Some(OfferOutcome::Offered { .. }));
                close_savepoint(&mut tx, keep)
                    .await
                    .map_err(db("close the offer's savepoint"))?;
                out
            }
            None => None,
        };
        tx.commit().await.map_err(db("commit a leave"))?;
        let left = LeaveOutcome::Left {
            entry,
            released,
            versions,
        };
        Ok((left, next))
    }
}
