//! Status changes and expiry: each a conditional write on the reservation's status and write
//! count that moves exactly the minutes that still carry the owner's value.
use super::cells::{self, claim_value, minutes};
use super::errors::UNKNOWN_RESENDS;
use super::errors::{unknown_outcome, Reason, Written};
use super::io::{counter_bump, dates_touched};
use super::items::*;
use super::keys::*;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::domain::waitlist::{WaitStatus, WaitlistEntry};
use crate::domain::Reservation;
use crate::store::{StoreError, StoreResult, Transition, TransitionOutcome, Versions};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

/// How many expiries one sweep writes at once.
const EXPIRE_CONCURRENCY: usize = 8;

enum Applied {
    /// With the entry that followed the hold, as the write left it.
    Done(Box<Reservation>, Option<WaitlistEntry>),
    /// The reservation changed since it was read: read it again.
    Moved,
    /// A minute no longer carries the owner's value (another instance, whose clock is ahead,
    /// saw the hold expire and took the time).
    Superseded,
}

/// An instant as the store keeps it (milliseconds), so what a write returns is what reads see.
fn stored_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The minutes a reservation holds and the value they carry, when it occupies its table.
fn occupancy(r: &Reservation) -> Option<(std::ops::Range<i64>, String)> {
    let expiry = match r.status {
        Status::Held => Some(r.expires_at?.timestamp_millis()),
        s if Status::OCCUPYING.contains(&s) => None,
        _ => return None,
    };
    Some((minutes(r.start, r.end), claim_value(expiry, r.id)))
}

/// How long the freed minutes are kept for a planned offer at most.
pub(super) const KEEP_FOR: chrono::Duration = chrono::Duration::seconds(10);

impl DynamoStore {
    pub(super) async fn transition_(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        Ok(self.transition_keeping(t, None).await?.0)
    }

    /// A transition and the offer of what it frees, planned before it. The transition hands
    /// the minutes it frees to a keep instead of freeing them, and the offer's claims may take
    /// the keep: no other claim, from any client or instance, takes those minutes in between,
    /// though the two are separate writes. Not offered, the keep is lifted (and it lapses by
    /// itself in `KEEP_FOR` anyway, should lifting it fail).
    pub(super) async fn transition_offering_(
        &self,
        t: Transition,
        o: crate::store::NewOffer,
    ) -> StoreResult<(TransitionOutcome, Option<crate::store::OfferOutcome>)> {
        let keep = cells::keep_value(t.now + KEEP_FOR, o.entry_id);
        let (out, before) = self.transition_keeping(t, Some(&keep)).await?;
        let (TransitionOutcome::Done { reservation, .. }, Some(before)) = (&out, before) else {
            return Ok((out, None));
        };
        let offered = self.offer_then_lift(o, &keep, &before, reservation).await;
        Ok((out, offered))
    }

    /// The planned offer `o`, whose claims may take what `keep` holds, then every kept minute
    /// it did not take freed (`lift_keep`). `None`: the offer failed (logged).
    pub(super) async fn offer_then_lift(
        &self,
        o: crate::store::NewOffer,
        keep: &str,
        before: &Reservation,
        after: &Reservation,
    ) -> Option<crate::store::OfferOutcome> {
        let offered = crate::store::planned_offer(self.offer_over(o, Some(keep)).await);
        let took = match &offered {
            Some(crate::store::OfferOutcome::Offered { reservation, .. }) => Some(reservation),
            _ => None,
        };
        self.lift_keep(before, after, keep, took).await;
        offered
    }

    /// Frees the minutes a change from `before` to `after` kept with `keep` (those of `before`
    /// that `after` no longer occupies) except those the offer `took` on its tables, cell by
    /// cell. Should a write fail, the mark lapses by itself.
    pub(super) async fn lift_keep(
        &self,
        before: &Reservation,
        after: &Reservation,
        keep: &str,
        took: Option<&Reservation>,
    ) {
        let still = occupancy(after).map(|(m, _)| m);
        for table in &before.table_ids {
            let taken = took
                .filter(|o| o.table_ids.contains(table))
                .map(|o| minutes(o.start, o.end));
            let mut ops: std::collections::BTreeMap<i64, Vec<(u8, cells::Op)>> =
                std::collections::BTreeMap::new();
            for m in minutes(before.start, before.end) {
                if still.as_ref().is_some_and(|r| r.contains(&m))
                    || taken.as_ref().is_some_and(|r| r.contains(&m))
                {
                    continue;
                }
                cells::place(&mut ops, m, cells::Op::Free(keep.to_owned()));
            }
            for (cell, ops) in &ops {
                let lifted = match cells::update(
                    &self.table,
                    before.restaurant_id,
                    table,
                    *cell,
                    ops,
                    Utc::now(),
                ) {
                    Ok(item) => self.transact(vec![item]).await.map(|_| ()),
                    Err(e) => Err(super::io::build_err(e)),
                };
                if let Err(e) = lifted {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "a kept minute was not freed; it lapses by itself"
                    );
                }
            }
        }
    }

    /// A transition whose freed minutes `keep` takes (when given); done, with the reservation
    /// as it was before it.
    async fn transition_keeping(
        &self,
        t: Transition,
        keep: Option<&str>,
    ) -> StoreResult<(TransitionOutcome, Option<Reservation>)> {
        for _ in 0..8 {
            let Some(cur) = self.stored_reservation(t.id).await? else {
                return Ok((TransitionOutcome::Conflict(None), None));
            };
            let r = &cur.reservation;
            let live = r.status == t.from
                && (t.from != Status::Held || r.expires_at.is_some_and(|e| e > t.now));
            if !live {
                return Ok((TransitionOutcome::Conflict(Some(cur.reservation)), None));
            }
            match self.apply_with(&cur, &t, None, keep).await? {
                Applied::Done(reservation, entry) => {
                    let reservation = *reservation;
                    let dates = dates_touched(&cur.reservation, &reservation);
                    let mine = Some((reservation.id, cur.writes + 1));
                    let versions = self
                        .versions_after(reservation.restaurant_id, &dates, mine)
                        .await;
                    let done = TransitionOutcome::Done {
                        reservation,
                        versions,
                        entry,
                        waiting: None,
                    };
                    return Ok((done, Some(cur.reservation)));
                }
                Applied::Moved => continue,
                Applied::Superseded => {
                    // Its time was taken as expired: it reads as expired from now on.
                    let mut r = cur.reservation;
                    r.expires_at = r.expires_at.map(|e| e.min(t.now));
                    return Ok((TransitionOutcome::Conflict(Some(r)), None));
                }
            }
        }
        Err(StoreError::Unavailable(
            "the reservation keeps changing".into(),
        ))
    }

    fn reservation_write(
        &self,
        cur: &StoredReservation,
        next: &StoredReservation,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let mut e = Expr::default();
        let mut cond = format!(
            "{st} = {from} AND {wc} = {w}",
            st = e.name("status"),
            from = e.value(s(cur.reservation.status.as_str())),
            wc = e.name("wc"),
            w = e.value(n(cur.writes)),
        );
        if cur.reservation.status == Status::Held {
            let (x, now) = (e.name("exp_ms"), e.value(n(now.timestamp_millis())));
            cond.push_str(&format!(" AND {x} > {now}"));
        }
        self.write_or_move(cur, next, &cond, &e)
    }

    /// `cur` → `next` under `cond` (on `cur`), the conditional item first. When `next` is a dead
    /// hold or cancelled it moves out of the day's range: a conditional `Delete` of `cur`, a
    /// `Put` of `next` at its new key, and its pointer re-pointed, all in the caller's
    /// transaction.
    fn write_or_move(
        &self,
        cur: &StoredReservation,
        next: &StoredReservation,
        cond: &str,
        e: &Expr,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let (from, to) = (&cur.reservation, &next.reservation);
        if reservation_sk_of(from) == reservation_sk_of(to) {
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(reservation_item(next)?))
                .condition_expression(cond)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .build()
                .map_err(super::io::build_err)?;
            return Ok(vec![TransactWriteItem::builder().put(put).build()]);
        }
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                restaurant_pk(from.restaurant_id),
                reservation_sk_of(from),
            )))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(super::io::build_err)?;
        let pointer = Pointer::of(to, next.ttl);
        Ok(vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.put(reservation_item(next)?, None)?,
            self.put(pointer_item(&pointer), None)?,
        ])
    }

    /// Gives a capped hold's slot back, if it still names this hold.
    fn slot_free(&self, cur: &StoredReservation) -> StoreResult<Option<TransactWriteItem>> {
        let (Some(slot), Some((_, mine))) = (&cur.slot, occupancy(&cur.reservation)) else {
            return Ok(None);
        };
        let mut e = Expr::default();
        let a = e.name(&slot_attr(slot.index));
        let expr = format!("REMOVE {a}");
        let cond = format!("attribute_not_exists({a}) OR {a} = {}", e.value(s(mine)));
        self.update(client_key(&slot.client), &expr, Some(&cond), &e)
            .map(Some)
    }

    fn drop_ttl(&self, k: (String, String)) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let expr = format!("REMOVE {}", e.name(TTL));
        let cond = format!("attribute_exists({})", e.name(PK));
        self.update(k, &expr, Some(&cond), &e)
    }

    /// Releases an offered hold whose entry leaves, the entry's `left` in the same write:
    /// `None` when either moved meanwhile (read both again).
    pub(super) async fn release_for_leave(
        &self,
        cur: &StoredReservation,
        t: &Transition,
        keep: Option<&str>,
    ) -> StoreResult<Option<(Reservation, Versions)>> {
        match self
            .apply_with(cur, t, Some(WaitStatus::Left), keep)
            .await?
        {
            Applied::Done(r, _) => {
                let dates = dates_touched(&cur.reservation, &r);
                let mine = Some((r.id, cur.writes + 1));
                let versions = self.versions_after(r.restaurant_id, &dates, mine).await;
                Ok(Some((*r, versions)))
            }
            Applied::Moved | Applied::Superseded => Ok(None),
        }
    }

    /// A transition; `entry_to` overrides where the offered entry goes (a leave); `keep`
    /// takes the minutes it frees (see `transition_offering_`).
    async fn apply_with(
        &self,
        cur: &StoredReservation,
        t: &Transition,
        entry_to: Option<WaitStatus>,
        keep: Option<&str>,
    ) -> StoreResult<Applied> {
        let mut r = cur.reservation.clone();
        r.status = t.to;
        r.updated_at = stored_instant(t.now);
        if t.to != Status::Held {
            r.expires_at = None;
        }
        if let Some(g) = &t.guest {
            r.guest = Some(g.clone());
        }
        if let Some(notes) = &t.notes {
            r.notes = notes.clone();
        }
        if let Some(end) = t.end {
            if end > r.end || end < r.start {
                return Err(StoreError::Internal(
                    "a transition may only shorten a reservation".into(),
                ));
            }
            r.end = end;
        }
        let keeps_ttl = matches!(t.to, Status::Held | Status::Released | Status::Expired);
        let next = StoredReservation {
            reservation: r.clone(),
            writes: cur.writes + 1,
            stamp: Uuid::new_v4().simple().to_string(),
            token_hash: cur.token_hash.clone(),
            ttl: cur.ttl.filter(|_| keeps_ttl),
            slot: cur.slot.clone(),
            window: cur.window.clone(),
            entry: cur.entry,
        };
        let moved = reservation_sk_of(&cur.reservation) != reservation_sk_of(&r);
        let mut written = self.reservation_write(cur, &next, t.now)?;
        let mut items = vec![written.remove(0)];
        let dates = dates_touched(&cur.reservation, &r);
        items.push(counter_bump(
            self,
            &r,
            next.writes,
            next.ttl,
            moved,
            &dates,
        )?);
        items.extend(written);
        if cur.ttl.is_some() && next.ttl.is_none() {
            if !moved {
                items.push(self.drop_ttl(pointer_key(r.id))?);
            }
            if let Some(h) = &cur.token_hash {
                items.push(self.drop_ttl(token_key(h))?);
            }
        }
        // A hold that stops being held gives its client's slot back in the same write.
        let slot_at = match (cur.reservation.status, r.status) {
            (Status::Held, to) if to != Status::Held => self.slot_free(cur)?.map(|w| {
                items.push(w);
                items.len() - 1
            }),
            _ => None,
        };
        if let Some(idem) = &t.idem {
            items.push(self.idem_answer(idem, &r)?);
        }
        let idem_at = t.idem.as_ref().map(|_| items.len() - 1);
        // Released or cancelled, it leaves the pacing window it was counted in (an expired
        // hold's entry lapses by itself).
        // A paced hold is confirmed only if no decision of its window counted it as expired
        // (an instance whose clock is ahead): else it reads as expired, as for its minutes. The
        // confirm raises the window's version, so a decision that read the window before it
        // (and may have counted this hold as expired) decides again.
        let mut lapse_at = None;
        if let Some(w) = cur.window.as_deref() {
            if matches!(t.to, Status::Released | Status::Cancelled) {
                items.push(self.window_remove(&r, w)?);
            } else if cur.reservation.status == Status::Held && t.to == Status::Confirmed {
                items.push(self.window_confirm(&r, w)?);
                lapse_at = Some(items.len() - 1);
            }
        }
        if let Some(mail) = &t.mail {
            items.push(self.mail_put(mail, &r, t.now)?);
        }
        // The entry this hold was offered to follows it: booked on confirm, lapsed on release
        // (left when it is the entry that leaves), conditional on the entry as read.
        let mut follow_at = None;
        let mut followed = None;
        if let Some(entry) = cur.entry {
            let to = entry_to.or(match t.to {
                Status::Confirmed => Some(WaitStatus::Booked),
                Status::Released => Some(WaitStatus::Lapsed),
                _ => None,
            });
            if let Some(to) = to {
                match self.entry_follow(&r, entry, to, t.now).await? {
                    Some((w, lost, after)) => {
                        items.push(w);
                        follow_at = Some(items.len() - 1);
                        items.extend(lost);
                        followed = Some(after);
                    }
                    None if entry_to.is_some() => return Ok(Applied::Moved),
                    None => {}
                }
            }
        }
        let first_cell = items.len();
        // Every member table's minutes move together.
        let mut ops = cells::diff(occupancy(&cur.reservation), occupancy(&r));
        if let Some(keep) = keep {
            ops.values_mut().for_each(|ops| cells::keep_ops(ops, keep));
        }
        for table in &r.table_ids {
            for (cell, ops) in &ops {
                items.push(
                    cells::update(&self.table, r.restaurant_id, table, *cell, ops, t.now)
                        .map_err(super::io::build_err)?,
                );
            }
        }
        let failed =
            |reasons: &[Reason], i: usize| reasons.get(i) == Some(&Reason::ConditionalCheckFailed);
        Ok(match self.resolve(items, cur, &next).await? {
            Written::Done(r) => Applied::Done(Box::new(r), followed),
            Written::Canceled(reasons) if failed(&reasons, 0) => Applied::Moved,
            Written::Canceled(reasons) if follow_at.is_some_and(|i| failed(&reasons, i)) => {
                Applied::Moved
            }
            // Another hold of the client took the slot: it saw this hold expired.
            Written::Canceled(reasons)
                if reasons[first_cell.min(reasons.len())..]
                    .contains(&Reason::ConditionalCheckFailed)
                    || slot_at.is_some_and(|i| failed(&reasons, i))
                    || lapse_at.is_some_and(|i| failed(&reasons, i)) =>
            {
                Applied::Superseded
            }
            Written::Canceled(reasons) if idem_at.is_some_and(|i| failed(&reasons, i)) => {
                return Err(super::sessions::idem_taken())
            }
            Written::Canceled(reasons) => {
                return Err(StoreError::Internal(
                    format!("transition cancelled for another reason: {reasons:?}").into(),
                ))
            }
            Written::Condition | Written::Unknown(_) => Applied::Moved,
        })
    }

    /// Sends a write of `cur` → `next`; an unknown outcome is settled by reading the item back:
    /// our stamp means done, an untouched item means send it again, anything else moved on.
    async fn resolve(
        &self,
        items: Vec<TransactWriteItem>,
        cur: &StoredReservation,
        next: &StoredReservation,
    ) -> StoreResult<Written<Reservation>> {
        let id = cur.reservation.id;
        let mut last = None;
        for _ in 0..=UNKNOWN_RESENDS {
            match self.transact(items.clone()).await? {
                Written::Done(()) => return Ok(Written::Done(next.reservation.clone())),
                Written::Canceled(r) => return Ok(Written::Canceled(r)),
                Written::Condition => return Ok(Written::Condition),
                Written::Unknown(why) => match self.stored_reservation(id).await? {
                    Some(s) if s.stamp == next.stamp => return Ok(Written::Done(s.reservation)),
                    Some(s) if s.stamp == cur.stamp => {
                        let shown = DisplayErrorContext(&*why);
                        tracing::warn!(%id, why = %shown, "write outcome unknown and not applied; sending it again");
                        last = Some(why);
                    }
                    _ => return Ok(Written::Unknown(why)),
                },
            }
        }
        Err(unknown_outcome(
            format!("the outcome of a write to reservation {id} stays unknown"),
            last,
        ))
    }

    pub(super) async fn expire_due_(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>> {
        let shards = futures_util::future::try_join_all(
            (0..DUE_SHARDS).map(|k| self.due_in_shard(k, now, limit)),
        )
        .await?;
        let mut due: Vec<StoredReservation> = shards.into_iter().flatten().collect();
        due.sort_by_key(|s| s.reservation.expires_at);
        due.truncate(limit as usize);
        let results: Vec<StoreResult<Option<(Reservation, Versions)>>> = stream::iter(due)
            .map(|s| self.expire_one(s, now))
            .buffer_unordered(EXPIRE_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::new();
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    async fn due_in_shard(
        &self,
        shard: u8,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<StoredReservation>> {
        let out = super::errors::read(|| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#p = :p AND #a <= :now")
                .expression_attribute_names("#p", DUE_PK)
                .expression_attribute_names("#a", DUE_AT)
                .expression_attribute_values(":p", s(format!("DUE#{shard}")))
                .expression_attribute_values(":now", n(now.timestamp_millis()))
                .limit(limit.clamp(1, 1000) as i32)
                .send()
        })
        .await?;
        out.items
            .unwrap_or_default()
            .iter()
            .map(reservation_from)
            .collect()
    }

    /// Marks one hold expired; `None` when another instance (or a confirm) got there first.
    async fn expire_one(
        &self,
        cur: StoredReservation,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Reservation, Versions)>> {
        let mut r = cur.reservation.clone();
        r.status = Status::Expired;
        // It changed when it expired, however late the sweep: retention counts from then.
        r.updated_at = stored_instant(r.expires_at.map_or(now, |x| x.min(now)));
        let next = StoredReservation {
            reservation: r.clone(),
            writes: cur.writes + 1,
            stamp: Uuid::new_v4().simple().to_string(),
            token_hash: cur.token_hash.clone(),
            ttl: cur.ttl,
            slot: cur.slot.clone(),
            window: cur.window.clone(),
            entry: cur.entry,
        };
        let mut e = Expr::default();
        let cond = format!(
            "{st} = {held} AND {x} <= {now} AND {wc} = {w}",
            st = e.name("status"),
            held = e.value(s(Status::Held.as_str())),
            x = e.name("exp_ms"),
            now = e.value(n(now.timestamp_millis())),
            wc = e.name("wc"),
            w = e.value(n(cur.writes)),
        );
        // The expired hold leaves the day's range; its slot and minutes lapse by their expiry.
        let mut written = self.write_or_move(&cur, &next, &cond, &e)?;
        let mut items = vec![written.remove(0)];
        let dates = r.dates_spanned();
        items.push(counter_bump(self, &r, next.writes, next.ttl, true, &dates)?);
        items.extend(written);
        // An offered hold's entry lapses with it.
        if let Some(entry) = cur.entry {
            if let Some((w, lost, _)) = self
                .entry_follow(&r, entry, WaitStatus::Lapsed, r.updated_at)
                .await?
            {
                items.push(w);
                items.extend(lost);
            }
        }
        match self.resolve(items, &cur, &next).await? {
            Written::Done(r) => {
                let mine = Some((r.id, next.writes));
                let versions = self.versions_after(r.restaurant_id, &dates, mine).await;
                Ok(Some((r, versions)))
            }
            _ => Ok(None),
        }
    }
}
