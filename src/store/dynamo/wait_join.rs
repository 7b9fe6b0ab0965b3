//! Waitlist joins and reads on DynamoDB: the entry with its pointer and token in one
//! transaction, the queue of a date, and the days the reconcile loop visits.
use super::errors::{Reason, Written, UNKNOWN_RESENDS};
use super::keys::*;
use super::wait_items::*;
use super::DynamoStore;
use crate::domain::waitlist::{WaitStatus, WaitlistEntry};
use crate::domain::LocalDate;
use crate::store::{JoinOutcome, NewEntry, StoreError, StoreResult, WaitingDay};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

/// How many waitlist days the reconcile read looks into at once.
const DAY_CONCURRENCY: usize = 8;

const NOT_EXISTS: &str = "attribute_not_exists(#pk)";

/// An instant as the store keeps it (milliseconds).
fn stored_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl DynamoStore {
    pub(super) async fn join_waitlist_(&self, new: NewEntry) -> StoreResult<JoinOutcome> {
        let e = WaitlistEntry {
            status: WaitStatus::Waiting,
            offer: None,
            created_at: stored_instant(new.entry.created_at),
            updated_at: stored_instant(new.entry.updated_at),
            ..new.entry
        };
        if self.restaurant_item(e.restaurant_id).await?.is_none() {
            return Ok(JoinOutcome::Gone);
        }
        let stored = StoredEntry {
            entry: e.clone(),
            writes: 1,
            token_hash: new.token_hash,
            mail_to: None,
        };
        let mut d = Expr::default();
        let day = self.update(
            wait_day_key(e.date, e.restaurant_id),
            &format!("ADD {} {}", d.name("j"), d.value(n(1))),
            None,
            &d,
        )?;
        // The entry first: its failed condition means an earlier send landed.
        let items = vec![
            self.put(entry_item(&stored)?, Some(NOT_EXISTS))?,
            self.put(entry_locator(entry_pointer_key(e.id), &e), Some(NOT_EXISTS))?,
            self.put(
                entry_locator(entry_token_key(&stored.token_hash), &e),
                Some(NOT_EXISTS),
            )?,
            day,
            self.wait_bump(e.restaurant_id, e.date, e.id, stored.writes)?,
        ];
        let ours = || async {
            Ok::<_, StoreError>(
                self.stored_entry(e.restaurant_id, e.date, e.id)
                    .await?
                    .is_some_and(|s| s.token_hash == stored.token_hash),
            )
        };
        let mut resends = 0;
        loop {
            match self.transact(items.clone()).await? {
                Written::Done(()) => break,
                Written::Canceled(r) if r.first() == Some(&Reason::ConditionalCheckFailed) => {
                    if ours().await? {
                        break;
                    }
                    return Err(StoreError::Internal(
                        format!("waitlist entry id {} is already in use", e.id).into(),
                    ));
                }
                Written::Canceled(r) => {
                    return Err(StoreError::Internal(
                        format!("join cancelled: {r:?}").into(),
                    ))
                }
                Written::Condition => {
                    return Err(StoreError::Internal("unexpected condition failure".into()))
                }
                Written::Unknown(why) => {
                    if ours().await? {
                        break;
                    }
                    resends += 1;
                    if resends > UNKNOWN_RESENDS {
                        return Err(StoreError::unavailable(
                            "the outcome of a join stays unknown",
                            why,
                        ));
                    }
                }
            }
        }
        let versions = self
            .versions_after(e.restaurant_id, &[e.date], Some((e.id, stored.writes)))
            .await;
        Ok(JoinOutcome::Joined { entry: e, versions })
    }

    /// Raises a date's version for a change of its waitlist alone (join, leave): its own
    /// counter, which names no reservation (`lg`), so no read mistakes it for a torn one. It
    /// names the entry and the entry's write count after this change (`writes`), so the change
    /// can tell its own count from a later one's.
    pub(super) fn wait_bump(
        &self,
        rid: Uuid,
        date: LocalDate,
        entry: Uuid,
        writes: u64,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let expr = format!(
            "ADD {nn} {one} SET {lr} = {id}, {lw} = {writes}, {lg} = {yes}",
            nn = e.name("n"),
            one = e.value(n(1)),
            lr = e.name("lr"),
            id = e.value(s(entry.to_string())),
            lw = e.name("lw"),
            writes = e.value(n(writes)),
            lg = e.name("lg"),
            yes = e.value(AttributeValue::Bool(true)),
        );
        self.update((restaurant_pk(rid), wait_counter_sk(date)), &expr, None, &e)
    }

    pub(super) async fn stored_entry(
        &self,
        rid: Uuid,
        date: LocalDate,
        id: Uuid,
    ) -> StoreResult<Option<StoredEntry>> {
        self.get(entry_key(rid, date, id))
            .await?
            .as_ref()
            .map(entry_from)
            .transpose()
    }

    /// An entry found through its pointer or token item.
    pub(super) async fn located(&self, k: (String, String)) -> StoreResult<Option<StoredEntry>> {
        let Some(at) = self.get(k).await? else {
            return Ok(None);
        };
        let (rid, date, id) = entry_location(&at)?;
        self.stored_entry(rid, date, id).await
    }

    pub(super) async fn waitlist_entry_(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>> {
        Ok(self.located(entry_pointer_key(id)).await?.map(|s| s.entry))
    }

    pub(super) async fn waitlist_entry_by_token_(
        &self,
        hash: &str,
    ) -> StoreResult<Option<WaitlistEntry>> {
        Ok(self
            .located(entry_token_key(hash))
            .await?
            .filter(|s| s.token_hash == hash)
            .map(|s| s.entry))
    }

    pub(super) async fn stored_queue(
        &self,
        rid: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<StoredEntry>> {
        let mut v: Vec<StoredEntry> = self
            .query_prefix(&entry_pk(rid), &entry_day_prefix(date))
            .await?
            .iter()
            .map(entry_from)
            .collect::<StoreResult<_>>()?;
        v.sort_by_key(|s| s.entry.queue_key());
        Ok(v)
    }

    pub(super) async fn waitlist_on_(
        &self,
        rid: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>> {
        Ok(self
            .stored_queue(rid, date)
            .await?
            .into_iter()
            .map(|s| s.entry)
            .collect())
    }

    /// The waitlist days from `from` on that may have waiting entries, each with its queue
    /// read to find its oldest waiting entry. A day found with none is marked idle at the join
    /// count it read (`idle = j`, conditional on `j` unchanged) and skipped by later reads
    /// until a join raises `j`: only a join makes an entry `waiting`, and it raises `j` in its
    /// own transaction, so no waiting entry hides behind the mark. A background read whose
    /// cost is the days with waiting entries.
    pub(super) async fn waiting_days_(
        &self,
        from: LocalDate,
        limit: u32,
    ) -> StoreResult<Vec<WaitingDay>> {
        let mut days = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = super::errors::read(|| {
                self.client
                    .query()
                    .table_name(self.table())
                    .consistent_read(true)
                    .key_condition_expression("#pk = :pk AND #sk >= :from")
                    .filter_expression("attribute_not_exists(#idle) OR #idle <> #j")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_names("#idle", "idle")
                    .expression_attribute_names("#j", "j")
                    .expression_attribute_values(":pk", s(WAIT_DAYS_PK))
                    .expression_attribute_values(":from", s(entry_day_prefix(from)))
                    .set_exclusive_start_key(start.clone())
                    .send()
            })
            .await?;
            for item in page.items.unwrap_or_default() {
                let (date, rid) = wait_day_from(&item)?;
                days.push((date, rid, wait_day_joins(&item)?));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        let found: Vec<StoreResult<Option<WaitingDay>>> = stream::iter(days)
            .map(|(date, rid, joins)| async move {
                let oldest = self
                    .stored_queue(rid, date)
                    .await?
                    .into_iter()
                    .find(|s| s.entry.status == WaitStatus::Waiting)
                    .map(|s| s.entry.created_at);
                if oldest.is_none() {
                    self.mark_idle(date, rid, joins).await;
                }
                Ok(oldest.map(|oldest| WaitingDay {
                    restaurant_id: rid,
                    date,
                    oldest,
                }))
            })
            .buffered(DAY_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for d in found {
            if let Some(d) = d? {
                out.push(d);
                if out.len() >= limit as usize {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Marks a day idle at `joins`, if no join came since: best effort (a failure only costs
    /// the next read one more query).
    async fn mark_idle(&self, date: LocalDate, rid: Uuid, joins: u64) {
        let mut e = Expr::default();
        let j = e.name("j");
        let v = e.value(n(joins));
        let expr = format!("SET {} = {v}", e.name("idle"));
        let cond = format!("{j} = {v}");
        let (pk, sk) = wait_day_key(date, rid);
        if let Err(err) = self
            .conditional_update(key(pk, sk), &expr, &cond, &e)
            .send()
            .await
        {
            tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), %rid, %date, "waitlist day not marked idle");
        }
    }
}
