//! One claim of one seating option: a single `TransactWriteItems` that checks every member
//! table's settings fence, claims every member's minutes, writes the reservation with its
//! pointer, token and counter, and, as the hold asks, its client's slot, its answer and its
//! pacing window. All or nothing.
use super::cells::{self, claim_value, minutes, now_key, CELL_MINUTES};
use super::errors::{
    fault, retry_reasons, Contention, Fault, Reason, Written, THROTTLED, UNKNOWN_RESENDS,
};
use super::io::counter_bump;
use super::items::*;
use super::keys::{cell_pk, cell_sk, client_key, slot_attr, window_sk, Item, CLAIMS};
use super::pacing::WindowWrite;
use super::sessions::idem_taken;
use super::DynamoStore;
use crate::domain::pacing::Window;
use crate::domain::reservation::{Guest, Status};
use crate::domain::Reservation;
use crate::store::outbox::waitlist_snapshot;
use crate::store::{HoldCap, IdemRecord, MailIntent, StoreError, StoreResult, TokenOwner};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::ops::Range;
use uuid::Uuid;

const NOT_EXISTS: &str = "attribute_not_exists(#pk)";

/// DynamoDB's limit on the items of one transaction.
const MAX_ITEMS: usize = 100;

/// The most items a claim writes besides its tables': the reservation, its pointer, the date's
/// counter, a token, a cap slot, an idempotent answer, a pacing window, a waitlist entry and
/// its mail (no claim writes all of them).
const FIXED_ITEMS: usize = 9;

/// The longest claim of `tables` tables that fits one transaction wherever it starts: each
/// table takes its check and one item per `CELL_MINUTES` cell its minutes touch (one more than
/// the length covers when the start is off the cells' edges, as a walk-in's may be).
pub fn longest_claim_minutes(tables: usize) -> u32 {
    let per_table = MAX_ITEMS.saturating_sub(FIXED_ITEMS) / tables.max(1);
    // The check, and one cell for a start off the edges.
    let whole_cells = per_table.saturating_sub(2);
    u32::try_from(whole_cells).unwrap_or(u32::MAX) * CELL_MINUTES as u32
}

/// How many times one claim settles its tables and is sent again before answering `Stale`.
const SETTLE_ATTEMPTS: usize = 2;

/// The value a reservation's claimed minutes carry.
pub fn claim_of(r: &Reservation) -> String {
    let expiry = (r.status == Status::Held)
        .then(|| r.expires_at.map(|e| e.timestamp_millis()))
        .flatten();
    claim_value(expiry, r.id)
}

pub enum Claim {
    Won(Box<Reservation>),
    /// A member table is taken over some of the requested minutes (or the option needs more
    /// items than one transaction may hold).
    Taken,
    /// The live-hold slot tried was taken meanwhile by another hold of the client.
    SlotTaken,
    /// The pacing window changed since it was read: read it (and the day) again.
    WindowMoved,
    /// The waitlist entry the hold was offered to is no longer `waiting`.
    NotWaiting,
    /// Another transaction held an item of a paced claim: pause, then read and decide again.
    Contended,
    /// Another transaction is writing this option's minutes and nothing of this claim was
    /// written: try the other options first, then pause, read and decide again.
    Busy,
    Stale,
}

/// What a hold writes besides its own items: the cap slot it claims, the answer it records,
/// the pacing window it counts in.
pub struct Extras<'a> {
    /// The cap slot claimed, and the client's claim count it must find (a fenced claim).
    pub slot: Option<(&'a HoldCap, u32, Option<Fence>)>,
    pub idem: Option<&'a IdemRecord>,
    pub window: Option<(Window, WindowWrite<'a>)>,
    /// The waitlist entry the hold is offered to: it turns `offered` in the same write, on
    /// condition that it is still `waiting`.
    pub entry: Option<OfferTo<'a>>,
}

/// The entry an offer goes to, and the mail that tells its guest (with the guest as stored on
/// the entry), both written by the offer's own transaction.
#[derive(Clone, Copy)]
pub struct OfferTo<'a> {
    pub entry: Uuid,
    pub mail: Option<(&'a MailIntent, &'a Guest)>,
    /// The keep its release left on the freed minutes, which this offer's claims may take.
    pub keep: Option<&'a str>,
}

/// The number of claims a client's item had counted when it was read (0: none, the count
/// absent). Every claim adds one to it in its own write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence {
    pub claims: u64,
}

impl Fence {
    /// The count `item` holds now.
    pub fn of(item: Option<&Item>) -> Fence {
        let claims = match item.and_then(|it| it.get(CLAIMS)) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(u64::MAX),
            _ => 0,
        };
        Fence { claims }
    }
}

/// Whether `slot` of a client item names `mine`.
fn slot_names(item: Option<&Item>, slot: u32, mine: &str) -> bool {
    matches!(item.and_then(|it| it.get(&slot_attr(slot))), Some(AttributeValue::S(v)) if v == mine)
}

/// Whether `slot` of a client item now names a live hold other than `mine`.
fn slot_live_for_another(item: Option<&Item>, slot: u32, mine: &str, now: DateTime<Utc>) -> bool {
    match item.and_then(|it| it.get(&slot_attr(slot))) {
        Some(AttributeValue::S(v)) => v != mine && v.as_str() > now_key(now).as_str(),
        _ => false,
    }
}

/// What sending a claim came to.
enum Sent {
    Written(Written<()>),
    /// Told of a conflict, and another live claim holds one of the minutes.
    Taken,
    /// Told of a conflict, and another live hold of the client holds the slot.
    SlotTaken,
    /// Told of a conflict while deciding a pacing window: decide again on a fresh read.
    Contended,
    /// Told of a conflict on the option's own cells, no other claim holds the minutes or the
    /// slot, and no earlier send of this claim may yet land: another transaction is writing
    /// those minutes right now.
    Busy,
}

/// Where each kind of item sits in a claim, to read its cancellation reasons.
struct Layout {
    checks: Range<usize>,
    slot: Option<usize>,
    idem: Option<usize>,
    window: Option<usize>,
    entry: Option<usize>,
    cells: Range<usize>,
}

impl DynamoStore {
    pub(super) async fn claim(
        &self,
        r: Reservation,
        token_hash: Option<&str>,
        revision: u64,
        now: DateTime<Utc>,
        extras: &Extras<'_>,
        contention: &mut Contention,
    ) -> StoreResult<Claim> {
        let stamp = Uuid::new_v4().simple().to_string();
        let ttl = hold_ttl(&r, self.dead_ttl_s);
        let stored = StoredReservation {
            reservation: r.clone(),
            writes: 1,
            stamp: stamp.clone(),
            token_hash: token_hash.map(str::to_owned),
            ttl,
            slot: extras.slot.map(|(c, index, _)| Slot {
                client: c.client.clone(),
                index,
            }),
            window: extras.window.map(|(w, _)| window_sk(r.date, &w)),
            entry: extras.entry.map(|o| o.entry),
        };
        let pointer = Pointer::of(&r, ttl);
        // The reservation first: its failed condition means an earlier send landed.
        let mut items = vec![
            self.put(reservation_item(&stored)?, Some(NOT_EXISTS))?,
            self.put(pointer_item(&pointer), Some(NOT_EXISTS))?,
            counter_bump(self, &r, 1, ttl, false, &r.dates_spanned())?,
        ];
        if let Some(h) = token_hash {
            let owner = TokenOwner::Reservation {
                restaurant_id: r.restaurant_id,
                reservation_id: r.id,
            };
            items.push(self.put(token_item(h, &owner, ttl), Some(NOT_EXISTS))?);
        }
        let checks_from = items.len();
        for t in &r.table_ids {
            items.push(self.table_check(r.restaurant_id, t, revision)?);
        }
        let checks = checks_from..items.len();
        let push = |items: &mut Vec<TransactWriteItem>, w: TransactWriteItem| {
            items.push(w);
            Some(items.len() - 1)
        };
        let slot = match extras.slot {
            Some((cap, slot, fence)) => {
                push(&mut items, self.slot_claim(cap, slot, fence, &r, now)?)
            }
            None => None,
        };
        let idem = match extras.idem {
            Some(idem) => push(&mut items, self.idem_answer(idem, &r)?),
            None => None,
        };
        let window = match extras.window {
            Some((w, how)) => push(&mut items, self.window_write(&r, &w, how)?),
            None => None,
        };
        let entry = match extras.entry {
            Some(o) => push(
                &mut items,
                self.offer_write(o.entry, &r, now, o.mail.map(|(m, _)| m.to.as_str()))?,
            ),
            None => None,
        };
        if let Some((mail, guest)) = extras.entry.and_then(|o| o.mail) {
            let told = waitlist_snapshot(r.clone(), guest.clone(), now);
            items.push(self.mail_put(mail, &told, now)?);
        }
        let first_cell = items.len();
        let claim = (minutes(r.start, r.end), claim_of(&r));
        for t in &r.table_ids {
            for (cell, mut ops) in cells::diff(None, Some(claim.clone())) {
                if let Some(keep) = extras.entry.and_then(|o| o.keep) {
                    cells::over_keep(&mut ops, keep);
                }
                items.push(
                    cells::update(&self.table, r.restaurant_id, t, cell, &ops, now)
                        .map_err(super::io::build_err)?,
                );
            }
        }
        let at = Layout {
            checks,
            slot,
            idem,
            window,
            entry,
            cells: first_cell..items.len(),
        };
        if items.len() > MAX_ITEMS {
            // Only a combination of many tables held for many hours gets here: it cannot be
            // claimed atomically, so it is never claimed.
            tracing::warn!(
                id = %r.id, items = items.len(), tables = r.table_ids.len(),
                "a seating option needs more items than one DynamoDB transaction holds; skipped"
            );
            return Ok(Claim::Taken);
        }

        let (mut resends, mut settled) = (0, 0);
        loop {
            // Only a claim none of whose sends may still land can leave for another option.
            let leave_on = (resends == 0).then_some(&at.cells);
            let written = match self
                .send_claim(&items, &r, now, extras, contention, leave_on)
                .await?
            {
                Sent::Written(w) => w,
                Sent::Taken => return Ok(Claim::Taken),
                Sent::SlotTaken => return Ok(Claim::SlotTaken),
                Sent::Contended => return Ok(Claim::Contended),
                Sent::Busy => return Ok(Claim::Busy),
            };
            match written {
                Written::Done(()) => return Ok(Claim::Won(Box::new(r))),
                Written::Canceled(reasons) => {
                    let failed = |i: usize| reasons.get(i) == Some(&Reason::ConditionalCheckFailed);
                    if failed(0) {
                        // The reservation exists: an earlier attempt of this very write landed.
                        return self.ours(r.id, &stamp).await;
                    }
                    let fenced: Vec<usize> = at.checks.clone().filter(|i| failed(*i)).collect();
                    if !fenced.is_empty() {
                        // A member table moved on, or a settings change fences it (or left it
                        // fenced): settle each, and send again if that was all.
                        settled += 1;
                        if settled > SETTLE_ATTEMPTS {
                            return Ok(Claim::Stale);
                        }
                        for i in fenced {
                            let t = r.table_ids[i - at.checks.start].clone();
                            if !self.settle_table(r.restaurant_id, &t, revision).await? {
                                return Ok(Claim::Stale);
                            }
                        }
                        continue;
                    }
                    if at.entry.is_some_and(failed) {
                        return Ok(Claim::NotWaiting);
                    }
                    if at.cells.clone().any(failed) {
                        return Ok(Claim::Taken);
                    }
                    if at.slot.is_some_and(failed) {
                        return Ok(Claim::SlotTaken);
                    }
                    if at.window.is_some_and(failed) {
                        return Ok(Claim::WindowMoved);
                    }
                    if at.idem.is_some_and(failed) {
                        return Err(idem_taken());
                    }
                    return Err(StoreError::Internal(
                        format!("hold cancelled for another reason: {reasons:?}").into(),
                    ));
                }
                Written::Unknown(why) => {
                    if let Some(s) = self.stored_reservation(r.id).await? {
                        return self.ours_given(s, &stamp);
                    }
                    resends += 1;
                    if resends > UNKNOWN_RESENDS {
                        return Err(StoreError::unavailable(
                            "the outcome of a hold stays unknown",
                            why,
                        ));
                    }
                    let why = DisplayErrorContext(&*why);
                    tracing::warn!(id = %r.id, %why, "hold outcome unknown and not found; sending it again");
                }
                Written::Condition => {
                    return Err(StoreError::Internal("unexpected condition failure".into()))
                }
            }
        }
    }

    /// Sends a claim, retrying throttling and conflicts within the hold's time budget. When
    /// DynamoDB reports a conflict rather than a failed condition (another transaction holds an
    /// item right now), a paced hold reads its window and day again (a conflict may be another
    /// hold deciding the window: sending the same version again is pointless), and any other
    /// hold looks at the members' minutes and the client's slot to learn at once that it lost.
    async fn send_claim(
        &self,
        items: &[TransactWriteItem],
        r: &Reservation,
        now: DateTime<Utc>,
        extras: &Extras<'_>,
        contention: &mut Contention,
        leave_on: Option<&Range<usize>>,
    ) -> StoreResult<Sent> {
        let mine = claim_of(r);
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.to_vec()))
                .send()
                .await;
            let written = match sent.map_err(fault) {
                Ok(_) => Written::Done(()),
                Err(Fault::Condition) => Written::Condition,
                Err(Fault::Canceled(reasons)) => Written::Canceled(reasons),
                Err(Fault::Unknown(why)) => Written::Unknown(why),
                Err(Fault::Fatal(why)) => {
                    return Err(StoreError::internal("DynamoDB refused a hold", why))
                }
                Err(Fault::Retry(why)) => {
                    if let Some((_, WindowWrite::Decide { .. })) = &extras.window {
                        // The caller pauses and decides again on a fresh read.
                        return Ok(Sent::Contended);
                    }
                    // A minute the offer's own keep holds is its to take, not taken.
                    let keep = extras.entry.and_then(|o| o.keep);
                    if self.minutes_taken(r, now, &mine, keep).await? {
                        return Ok(Sent::Taken);
                    }
                    if let Some((cap, i, fence)) = extras.slot {
                        let item = self.get(client_key(&cap.client)).await?;
                        // An earlier send of this claim that landed moved the count too: that
                        // is no other claim (sent again, it settles as won). Otherwise a moved
                        // count is another claim, and no send of this one can land any more.
                        let landed = slot_names(item.as_ref(), i, &mine);
                        let claimed =
                            !landed && fence.is_some_and(|f| Fence::of(item.as_ref()) != f);
                        if claimed || slot_live_for_another(item.as_ref(), i, &mine, now) {
                            return Ok(Sent::SlotTaken);
                        }
                    }
                    // A conflict on the option's own cells is another transaction writing its
                    // minutes (most often a hold racing for the same best fit): rather than wait
                    // for it here, the caller tries its other options, and pauses only when
                    // none is left. Throttling, and a conflict on an item other holds share
                    // without sharing minutes (a table's counter or check, the client's slots),
                    // say nothing about the option: pause and send it again.
                    let on_cells = leave_on.is_some_and(|cells| {
                        retry_reasons(&why)
                            .iter()
                            .enumerate()
                            .any(|(i, r)| cells.contains(&i) && *r == Reason::TransactionConflict)
                    });
                    if on_cells {
                        return Ok(Sent::Busy);
                    }
                    if !contention.pause().await {
                        return Err(StoreError::unavailable(THROTTLED, why));
                    }
                    continue;
                }
            };
            return Ok(Sent::Written(written));
        }
    }

    /// Whether another live claim holds any minute of `r` on any of its tables (committed
    /// state). A minute held by `keep` (a planned offer's, which its claims may take) is free.
    async fn minutes_taken(
        &self,
        r: &Reservation,
        now: DateTime<Utc>,
        mine: &str,
        keep: Option<&str>,
    ) -> StoreResult<bool> {
        let span = minutes(r.start, r.end);
        if span.is_empty() {
            return Ok(false);
        }
        let (first, last) = (
            span.start.div_euclid(CELL_MINUTES),
            (span.end - 1).div_euclid(CELL_MINUTES),
        );
        let now = now_key(now);
        for t in &r.table_ids {
            let cells = self
                .query_range(
                    &cell_pk(r.restaurant_id, t),
                    &cell_sk(first),
                    &cell_sk(last),
                )
                .await?;
            for item in &cells {
                let cell: i64 = get_s(item, super::keys::SK)?
                    .parse()
                    .map_err(|e| StoreError::corrupt("cell key", e))?;
                for m in span.clone() {
                    if m.div_euclid(CELL_MINUTES) != cell {
                        continue;
                    }
                    let attr = format!("m{}", m.rem_euclid(CELL_MINUTES));
                    if let Some(AttributeValue::S(v)) = item.get(&attr) {
                        if v.as_str() > now.as_str() && v != mine && Some(v.as_str()) != keep {
                            return Ok(true);
                        }
                    }
                }
            }
        }
        Ok(false)
    }

    async fn ours(&self, id: Uuid, stamp: &str) -> StoreResult<Claim> {
        match self.stored_reservation(id).await? {
            Some(s) => self.ours_given(s, stamp),
            None => Err(StoreError::Internal(
                format!("reservation {id} vanished").into(),
            )),
        }
    }

    fn ours_given(&self, s: StoredReservation, stamp: &str) -> StoreResult<Claim> {
        if s.stamp == stamp {
            Ok(Claim::Won(Box::new(s.reservation)))
        } else {
            Err(StoreError::Internal(
                format!("reservation id {} is already in use", s.reservation.id).into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{longest_claim_minutes, CELL_MINUTES, FIXED_ITEMS, MAX_ITEMS};

    /// The items of a claim of `minutes` on `tables` tables starting one minute before a cell's
    /// end, the start that touches the most cells.
    fn worst_items(tables: usize, minutes: i64) -> usize {
        let offset = CELL_MINUTES - 1;
        let cells = (offset + minutes + CELL_MINUTES - 1) / CELL_MINUTES;
        FIXED_ITEMS + tables * (1 + cells as usize)
    }

    #[test]
    fn the_longest_claim_fits_one_transaction_from_any_start_and_a_cell_more_does_not() {
        for tables in 1..=6usize {
            let m = i64::from(longest_claim_minutes(tables));
            assert!(
                worst_items(tables, m) <= MAX_ITEMS,
                "{tables} tables, {m} min"
            );
            assert!(
                worst_items(tables, m + CELL_MINUTES) > MAX_ITEMS,
                "{tables} tables, {m} min"
            );
        }
        assert_eq!(longest_claim_minutes(6), 195);
        assert_eq!(longest_claim_minutes(2), 645);
        assert!(longest_claim_minutes(1) >= 12 * 60);
    }
}
