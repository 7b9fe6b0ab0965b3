//! The waitlist on DynamoDB: joins, reads, offers and leaves, each one `TransactWriteItems`.
//!
//! An offer is a hold decided by the very claim every hold makes (`insert::decide`: table
//! checks, cells of every member table, pacing window), with one more item in its transaction:
//! the entry's `waiting → offered` update, conditional on `status = waiting`. So of two offers
//! of one freed capacity exactly one claims the cells, and of two offers to one entry exactly
//! one passes the entry's condition; nothing of a loser is written.
use super::errors::{Reason, Written, UNKNOWN_RESENDS};
use super::insert::Decided;
use super::keys::*;
use super::wait_items::*;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::domain::waitlist::{Offer, WaitStatus, WaitlistEntry};
use crate::domain::{LocalDate, Reservation};
use crate::store::{
    InsertOutcome, JoinOutcome, LeaveOutcome, NewEntry, NewOffer, OfferOutcome, StoreError,
    StoreResult, Transition, WaitingDay,
};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

/// How many waitlist days the reconcile read looks into at once.
const DAY_CONCURRENCY: usize = 8;
/// How many times a leave reads its entry again after a concurrent change.
const LEAVE_ATTEMPTS: usize = 8;

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
            self.wait_bump(e.restaurant_id, e.date, e.id)?,
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
        let versions = self.versions_after(e.restaurant_id, &[e.date]).await;
        Ok(JoinOutcome::Joined { entry: e, versions })
    }

    /// Raises a date's version for a change of its waitlist alone (join, leave): its own
    /// counter, which names no reservation (`lg`), so no read mistakes it for a torn one.
    fn wait_bump(&self, rid: Uuid, date: LocalDate, entry: Uuid) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let expr = format!(
            "ADD {nn} {one} SET {lr} = {id}, {lw} = {zero}, {lg} = {yes}",
            nn = e.name("n"),
            one = e.value(n(1)),
            lr = e.name("lr"),
            id = e.value(s(entry.to_string())),
            lw = e.name("lw"),
            zero = e.value(n(0)),
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
    async fn located(&self, k: (String, String)) -> StoreResult<Option<StoredEntry>> {
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

    /// The entry's `waiting → offered` change for the hold `r`, conditional on `waiting`: one
    /// item of the hold's own transaction.
    pub(super) fn offer_write(
        &self,
        entry: Uuid,
        r: &Reservation,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let expires = r
            .expires_at
            .ok_or(StoreError::Internal("an offer without expires_at".into()))?;
        let mut e = Expr::default();
        let st = e.name("status");
        let expr = format!(
            "SET {st} = {offered}, {ores} = {res}, {otime} = {time}, {oexp} = {x}, \
             {up} = {now} ADD {wc} {one}",
            offered = e.value(s(WaitStatus::Offered.as_str())),
            ores = e.name("ores"),
            res = e.value(s(r.id.to_string())),
            otime = e.name("otime"),
            time = e.value(s(r.time.to_string())),
            oexp = e.name("oexp"),
            x = e.value(n(expires.timestamp_millis())),
            up = e.name("updated_ms"),
            now = e.value(n(now.timestamp_millis())),
            wc = e.name("wc"),
            one = e.value(n(1)),
        );
        let cond = format!("{st} = {}", e.value(s(WaitStatus::Waiting.as_str())));
        self.update(
            entry_key(r.restaurant_id, r.date, entry),
            &expr,
            Some(&cond),
            &e,
        )
    }

    /// The entry offered `r` follows it to `to` (booked, lapsed, left), conditional on the
    /// entry being as read: `None` when it no longer names `r` as its pending offer.
    pub(super) async fn entry_follow(
        &self,
        r: &Reservation,
        entry: Uuid,
        to: WaitStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TransactWriteItem>> {
        let Some(cur) = self.stored_entry(r.restaurant_id, r.date, entry).await? else {
            return Ok(None);
        };
        let pending = cur.entry.status == WaitStatus::Offered
            && cur.entry.offer.as_ref().map(|o| o.reservation_id) == Some(r.id);
        if !pending {
            return Ok(None);
        }
        self.entry_move(&cur, to, now).map(Some)
    }

    /// `cur` → `to` at `now`, conditional on its write count.
    fn entry_move(
        &self,
        cur: &StoredEntry,
        to: WaitStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let mut next = cur.entry.clone();
        next.status = to;
        next.updated_at = stored_instant(now);
        let mut e = Expr::default();
        let wc = e.name("wc");
        let mut sets = vec![
            format!("{} = {}", e.name("status"), e.value(s(to.as_str()))),
            format!(
                "{} = {}",
                e.name("updated_ms"),
                e.value(n(next.updated_at.timestamp_millis()))
            ),
        ];
        if is_finished(to) {
            let (shard, at) = entry_gc(&next);
            sets.push(format!("{} = {}", e.name(GC_PK), e.value(s(shard))));
            sets.push(format!("{} = {}", e.name(GC_AT), e.value(n(at))));
        }
        let expr = format!("SET {} ADD {wc} {}", sets.join(", "), e.value(n(1)));
        let cond = format!("{wc} = {}", e.value(n(cur.writes)));
        let (pk, sk) = entry_key(next.restaurant_id, next.date, next.id);
        self.update((pk, sk), &expr, Some(&cond), &e)
    }

    pub(super) async fn offer_(&self, o: NewOffer) -> StoreResult<OfferOutcome> {
        let NewOffer { entry_id, mut hold } = o;
        // An offer is always decided as a plain hold: no cap, no token, no idempotent answer.
        (hold.cap, hold.idem, hold.token_hash) = (None, None, None);
        if let Some(p) = hold.pacing.as_mut() {
            p.enforce = true;
        }
        let rid = hold.reservation.restaurant_id;
        let now = hold.now;
        match self.restaurant_item(rid).await? {
            Some(r) if r.stored.revision == hold.restaurant_revision => {}
            _ => return Ok(OfferOutcome::Stale),
        }
        // The entry's key follows from the hold's restaurant and date; one on another date
        // (never asked by the use case) is found through its pointer and refused.
        let found = match self
            .stored_entry(rid, hold.reservation.date, entry_id)
            .await?
        {
            Some(s) => Some(s),
            None => self.located(entry_pointer_key(entry_id)).await?,
        };
        let entry = match found {
            Some(s) if s.entry.status == WaitStatus::Waiting => s.entry,
            other => return Ok(OfferOutcome::NotWaiting(other.map(|s| s.entry))),
        };
        if entry.restaurant_id != rid || entry.date != hold.reservation.date {
            return Err(StoreError::Internal(
                "an offer on another restaurant or date than its entry's".into(),
            ));
        }
        Ok(match self.decide(hold, Some(entry_id)).await? {
            Decided::Is(InsertOutcome::Won {
                reservation,
                versions,
            }) => {
                let expires_at = reservation
                    .expires_at
                    .ok_or(StoreError::Internal("an offer without expires_at".into()))?;
                let entry = WaitlistEntry {
                    status: WaitStatus::Offered,
                    offer: Some(Offer {
                        reservation_id: reservation.id,
                        time: reservation.time,
                        expires_at: stored_instant(expires_at),
                    }),
                    updated_at: stored_instant(now),
                    ..entry
                };
                OfferOutcome::Offered {
                    entry,
                    reservation,
                    versions,
                }
            }
            Decided::Is(InsertOutcome::Lost | InsertOutcome::OverCap) => OfferOutcome::Lost,
            Decided::Is(InsertOutcome::Paced) => OfferOutcome::Paced,
            Decided::Is(InsertOutcome::Stale) => OfferOutcome::Stale,
            Decided::NotWaiting => OfferOutcome::NotWaiting(self.waitlist_entry_(entry_id).await?),
        })
    }

    pub(super) async fn leave_waitlist_(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaveOutcome> {
        for _ in 0..LEAVE_ATTEMPTS {
            let Some(cur) = self.located(entry_pointer_key(id)).await? else {
                return Ok(LeaveOutcome::NotFound);
            };
            let e = &cur.entry;
            let pending = match (e.status, &e.offer) {
                (WaitStatus::Waiting, _) => None,
                (WaitStatus::Offered, Some(o)) => Some(o.reservation_id),
                (WaitStatus::Offered, None) => None,
                _ => return Ok(LeaveOutcome::Unchanged(cur.entry)),
            };
            let left = WaitlistEntry {
                status: WaitStatus::Left,
                updated_at: stored_instant(now),
                ..e.clone()
            };
            // A pending offer still live is declined: released, with the entry's change in the
            // release's own transaction.
            if let Some(res) = pending {
                if let Some(held) = self.stored_reservation(res).await? {
                    let live = held.reservation.status == Status::Held
                        && held.reservation.expires_at.is_some_and(|x| x > now)
                        && held.entry == Some(id);
                    if live {
                        let t = Transition {
                            id: res,
                            from: Status::Held,
                            to: Status::Released,
                            guest: None,
                            notes: None,
                            end: None,
                            now,
                            idem: None,
                        };
                        match self.release_for_leave(&held, &t).await? {
                            Some((released, versions)) => {
                                return Ok(LeaveOutcome::Left {
                                    entry: left,
                                    released: Some(released),
                                    versions,
                                })
                            }
                            None => continue,
                        }
                    }
                }
            }
            let items = vec![
                self.entry_move(&cur, WaitStatus::Left, now)?,
                self.wait_bump(e.restaurant_id, e.date, e.id)?,
            ];
            let landed = match self.transact(items).await? {
                Written::Done(()) => true,
                // Unknown: it landed if the entry is `left` at the very next write count.
                Written::Unknown(_) => self
                    .stored_entry(e.restaurant_id, e.date, e.id)
                    .await?
                    .is_some_and(|s| {
                        s.entry.status == WaitStatus::Left && s.writes == cur.writes + 1
                    }),
                // Moved on meanwhile: read it again.
                _ => false,
            };
            if landed {
                let versions = self.versions_after(e.restaurant_id, &[e.date]).await;
                return Ok(LeaveOutcome::Left {
                    entry: left,
                    released: None,
                    versions,
                });
            }
        }
        Err(StoreError::Unavailable(
            "the waitlist entry keeps changing".into(),
        ))
    }
}
