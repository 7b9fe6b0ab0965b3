//! Waitlist offers and leaves on DynamoDB, each one `TransactWriteItems` (joins and reads are
//! in `wait_join`).
//!
//! An offer is a hold decided by the very claim every hold makes (`insert::decide`: table
//! checks, cells of every member table, pacing window), with one more item in its transaction:
//! the entry's `waiting → offered` update, conditional on `status = waiting`. So of two offers
//! of one freed capacity exactly one claims the cells, and of two offers to one entry exactly
//! one passes the entry's condition; nothing of a loser is written.
use super::claim::OfferTo;
use super::errors::Written;
use super::insert::Decided;
use super::keys::*;
use super::wait_items::*;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::domain::waitlist::{Offer, WaitStatus, WaitlistEntry};
use crate::domain::Reservation;
use crate::store::outbox::waitlist_snapshot;
use crate::store::{
    InsertOutcome, LeaveOutcome, MailIntent, MailKind, NewOffer, OfferOutcome, StoreError,
    StoreResult, Transition,
};
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How many times a leave reads its entry again after a concurrent change.
const LEAVE_ATTEMPTS: usize = 8;

/// An instant as the store keeps it (milliseconds).
fn stored_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl DynamoStore {
    /// The entry's `waiting → offered` change for the hold `r`, conditional on `waiting`: one
    /// item of the hold's own transaction. `mail_to`: the address the offer is mailed to, kept
    /// on the entry for the mail of its lapse.
    pub(super) fn offer_write(
        &self,
        entry: Uuid,
        r: &Reservation,
        now: DateTime<Utc>,
        mail_to: Option<&str>,
    ) -> StoreResult<TransactWriteItem> {
        let expires = r
            .expires_at
            .ok_or(StoreError::Internal("an offer without expires_at".into()))?;
        let mut e = Expr::default();
        let st = e.name("status");
        let mut sets = vec![
            format!("{st} = {}", e.value(s(WaitStatus::Offered.as_str()))),
            format!("{} = {}", e.name("ores"), e.value(s(r.id.to_string()))),
            format!("{} = {}", e.name("otime"), e.value(s(r.time.to_string()))),
            format!(
                "{} = {}",
                e.name("oexp"),
                e.value(n(expires.timestamp_millis()))
            ),
            format!(
                "{} = {}",
                e.name("updated_ms"),
                e.value(n(now.timestamp_millis()))
            ),
        ];
        if let Some(to) = mail_to {
            sets.push(format!("{} = {}", e.name("mail_to"), e.value(s(to))));
        }
        let expr = format!(
            "SET {} ADD {} {}",
            sets.join(", "),
            e.name("wc"),
            e.value(n(1))
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
    /// entry being as read: `None` when it no longer names `r` as its pending offer. With a
    /// lapse of an entry that was mailed its offer, also the `Put` of its one "lost" mail (`r`
    /// is the reservation as the lapse leaves it): the entry's condition makes it one per lapse.
    pub(super) async fn entry_follow(
        &self,
        r: &Reservation,
        entry: Uuid,
        to: WaitStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(TransactWriteItem, Option<TransactWriteItem>, WaitlistEntry)>> {
        let Some(cur) = self.stored_entry(r.restaurant_id, r.date, entry).await? else {
            return Ok(None);
        };
        let pending = cur.entry.status == WaitStatus::Offered
            && cur.entry.offer.as_ref().map(|o| o.reservation_id) == Some(r.id);
        if !pending {
            return Ok(None);
        }
        let moved = self.entry_move(&cur, to, now)?;
        let after = moved_entry(&cur.entry, to, now);
        let lost = match (&cur.mail_to, to) {
            (Some(addr), WaitStatus::Lapsed) => {
                let told = waitlist_snapshot(r.clone(), cur.entry.guest.clone(), now);
                let mail = MailIntent::new(MailKind::OfferLost, addr.as_str());
                Some(self.mail_put(&mail, &told, now)?)
            }
            _ => None,
        };
        Ok(Some((moved, lost, after)))
    }

    /// `cur` → `to` at `now`, conditional on its write count.
    fn entry_move(
        &self,
        cur: &StoredEntry,
        to: WaitStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let next = moved_entry(&cur.entry, to, now);
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
        self.offer_over(o, None).await
    }

    /// An offer whose claims may also take the minutes `keep` holds (the keep its release
    /// left, see `transition_offering_`).
    pub(super) async fn offer_over(
        &self,
        o: NewOffer,
        keep: Option<&str>,
    ) -> StoreResult<OfferOutcome> {
        let (entry_id, hold, mail) = o.plain();
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
        let to = OfferTo {
            entry: entry_id,
            mail: mail.as_ref().map(|m| (m, &entry.guest)),
            keep,
        };
        Ok(match self.decide(hold, Some(to)).await? {
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
            Decided::Is(InsertOutcome::Lost { .. } | InsertOutcome::OverCap) => OfferOutcome::Lost,
            Decided::Is(InsertOutcome::Paced { .. }) => OfferOutcome::Paced,
            Decided::Is(InsertOutcome::Stale) => OfferOutcome::Stale,
            Decided::NotWaiting => OfferOutcome::NotWaiting(self.waitlist_entry_(entry_id).await?),
        })
    }

    pub(super) async fn leave_waitlist_(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaveOutcome> {
        self.leave_keeping(id, now, None).await
    }

    /// A leave, and the offer of the declined capacity planned before it: the release keeps
    /// the minutes it frees for that offer (see `transition_offering_`).
    pub(super) async fn leave_waitlist_offering_(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        o: NewOffer,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        let keep = super::cells::keep_value(now + super::transition::KEEP_FOR, o.entry_id);
        let out = self.leave_keeping(id, now, Some(&keep)).await?;
        let LeaveOutcome::Left {
            released: Some(released),
            ..
        } = &out
        else {
            return Ok((out, None));
        };
        // The declined offer's times are those of the released hold.
        let offered = self.offer_then_lift(o, &keep, released, released).await;
        Ok((out, offered))
    }

    async fn leave_keeping(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        keep: Option<&str>,
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
                        let t = Transition::new(res, Status::Held, Status::Released, now);
                        match self.release_for_leave(&held, &t, keep).await? {
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
                self.wait_bump(e.restaurant_id, e.date, e.id, cur.writes + 1)?,
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
                let versions = self
                    .versions_after(e.restaurant_id, &[e.date], Some((e.id, cur.writes + 1)))
                    .await;
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

/// `cur` as a move to `to` at `now` leaves it.
fn moved_entry(cur: &WaitlistEntry, to: WaitStatus, now: DateTime<Utc>) -> WaitlistEntry {
    WaitlistEntry {
        status: to,
        updated_at: stored_instant(now),
        ..cur.clone()
    }
}
