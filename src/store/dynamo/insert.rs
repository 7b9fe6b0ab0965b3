//! Holds and walk-ins: one transaction claims a table's minutes, or fails at once.
use super::cells::{self, claim_value, minutes, now_key, CELL_MINUTES};
use super::errors::{fault, pause, Fault, Reason, Written, RETRIES, THROTTLED, UNKNOWN_RESENDS};
use super::io::counter_bump;
use super::items::*;
use super::keys::{
    cell_pk, cell_sk, client_key, date_prefix, restaurant_pk, slot_attr, Expr, Item, TTL,
};
use super::keys::{n as num, s as st};
use super::reads::split;
use super::sessions::idem_taken;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::domain::{Reservation, TableId};
use crate::store::{
    HoldCap, IdemRecord, InsertOutcome, NewReservation, StoreError, StoreResult, TokenOwner,
};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::HashSet;
use uuid::Uuid;

const NOT_EXISTS: &str = "attribute_not_exists(#pk)";

/// The value a reservation's claimed minutes carry.
fn claim_of(r: &Reservation) -> String {
    let expiry = (r.status == Status::Held)
        .then(|| r.expires_at.map(|e| e.timestamp_millis()))
        .flatten();
    claim_value(expiry, r.id)
}

enum Claim {
    Won(Box<Reservation>),
    /// The table is taken over some of the requested minutes.
    Taken,
    /// The live-hold slot tried was taken meanwhile by another hold of the client.
    SlotTaken,
    Stale,
}

/// What a hold writes besides its own items: the cap slot it claims, the answer it records.
struct Extras<'a> {
    slot: Option<(&'a HoldCap, u32)>,
    idem: Option<&'a IdemRecord>,
}

/// How many times one claim settles its table and is sent again before answering `Stale`.
const SETTLE_ATTEMPTS: usize = 2;

/// How many times one hold picks a slot again after losing one to the client's own race.
const SLOT_ATTEMPTS: usize = 16;

/// The slots a hold of this client may claim at `now`: those below the effective cap that are
/// absent or hold an expired hold. Live slots at or above `max` (claimed under a larger cap
/// before it was lowered) shrink the effective cap, so the client never has more than `max`
/// live holds while they lapse; claims use the lowest indices only.
pub fn free_slots(item: Option<&Item>, max: u32, now: DateTime<Utc>) -> Vec<u32> {
    let now = now_key(now);
    let live = |v: Option<&AttributeValue>| matches!(v, Some(AttributeValue::S(v)) if v.as_str() > now.as_str());
    let high = item.map_or(0, |it| {
        it.iter()
            .filter(|(k, v)| {
                k.strip_prefix('s')
                    .and_then(|i| i.parse::<u32>().ok())
                    .is_some_and(|i| i >= max)
                    && live(Some(v))
            })
            .count() as u32
    });
    (0..max.saturating_sub(high))
        .filter(|i| !live(item.and_then(|it| it.get(&slot_attr(*i)))))
        .collect()
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
}

impl DynamoStore {
    pub(super) async fn insert_(&self, new: NewReservation) -> StoreResult<InsertOutcome> {
        let NewReservation {
            reservation,
            candidates,
            pacing,
            restaurant_revision,
            token_hash,
            now,
            cap,
            idem,
        } = new;
        let rid = reservation.restaurant_id;
        // Not decided here yet: combinations and pacing are refused, never half-decided.
        if pacing.is_some() {
            return Err(StoreError::Internal(
                "the DynamoDB store does not decide pacing yet".into(),
            ));
        }
        let candidates: Vec<TableId> = candidates
            .iter()
            .filter(|s| s.combination.is_none())
            .map(|s| s.first().clone())
            .collect();
        if candidates.is_empty() {
            return Err(StoreError::Internal(
                "the DynamoDB store does not decide combinations yet".into(),
            ));
        }
        // Only narrows the candidates: the conditional write decides.
        let (lo, hi) = (
            date_prefix(reservation.date.pred()),
            format!("{}~", date_prefix(reservation.date)),
        );
        let seen = split(&self.query_range(&restaurant_pk(rid), &lo, &hi).await?)?;
        let busy: HashSet<TableId> = seen
            .reservations
            .iter()
            .map(|s| &s.reservation)
            .filter(|r| r.occupies_at(now) && r.overlaps(reservation.start, reservation.end))
            .map(|r| r.table_id.clone())
            .collect();
        // The cap applies to holds: a hold claims a slot of its client with its own expiry.
        let cap =
            cap.filter(|_| reservation.status == Status::Held && reservation.expires_at.is_some());
        let mut free = match &cap {
            Some(c) => {
                let free = self.client_slots(c, now).await?;
                if free.is_empty() {
                    return Ok(InsertOutcome::OverCap);
                }
                free
            }
            None => Vec::new(),
        };
        let mut slot_attempts = 0;
        for table in candidates.into_iter().filter(|t| !busy.contains(t)) {
            let mut r = reservation.clone();
            r.seat(&crate::domain::Seating::single(&table));
            loop {
                // Spread a client's concurrent holds over its free slots.
                let slot = cap.as_ref().map(|c| {
                    let i = rand::thread_rng().gen_range(0..free.len());
                    (c, free[i])
                });
                let extras = Extras {
                    slot,
                    idem: idem.as_ref(),
                };
                match self
                    .claim(
                        r.clone(),
                        token_hash.as_deref(),
                        restaurant_revision,
                        now,
                        &extras,
                    )
                    .await?
                {
                    Claim::Won(reservation) => {
                        let reservation = *reservation;
                        let versions = self.versions_after(rid, &reservation.dates_spanned()).await;
                        return Ok(InsertOutcome::Won {
                            reservation,
                            versions,
                        });
                    }
                    Claim::Taken => break,
                    Claim::Stale => return Ok(InsertOutcome::Stale),
                    Claim::SlotTaken => {
                        slot_attempts += 1;
                        if slot_attempts > SLOT_ATTEMPTS {
                            return Err(StoreError::Unavailable(
                                "the client's live holds keep changing".into(),
                            ));
                        }
                        let Some(c) = &cap else {
                            return Err(StoreError::Internal("a slot lost without a cap".into()));
                        };
                        free = self.client_slots(c, now).await?;
                        if free.is_empty() {
                            return Ok(InsertOutcome::OverCap);
                        }
                    }
                }
            }
        }
        Ok(InsertOutcome::Lost)
    }

    /// The free slots of a client (strongly consistent): only a hint, the write decides.
    async fn client_slots(&self, cap: &HoldCap, now: DateTime<Utc>) -> StoreResult<Vec<u32>> {
        let item = self.get(client_key(&cap.client)).await?;
        Ok(free_slots(item.as_ref(), cap.max, now))
    }

    /// Claims `slot` of the client for `r` (a hold): free, or held by an expired hold.
    fn slot_claim(
        &self,
        cap: &HoldCap,
        slot: u32,
        r: &Reservation,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let a = e.name(&slot_attr(slot));
        let expires = r.expires_at.map(|x| x.timestamp_millis());
        let expr = format!(
            "SET {a} = {v}, {ttl} = {t}",
            v = e.value(st(claim_value(expires, r.id))),
            ttl = e.name(TTL),
            t = e.value(num(
                hold_ttl(r).unwrap_or(now.timestamp() + HOLD_TTL_AFTER_S)
            )),
        );
        let cond = format!(
            "attribute_not_exists({a}) OR {a} < {now}",
            now = e.value(st(now_key(now)))
        );
        self.update(client_key(&cap.client), &expr, Some(&cond), &e)
    }

    async fn claim(
        &self,
        r: Reservation,
        token_hash: Option<&str>,
        revision: u64,
        now: DateTime<Utc>,
        extras: &Extras<'_>,
    ) -> StoreResult<Claim> {
        let stamp = Uuid::new_v4().simple().to_string();
        let ttl = hold_ttl(&r);
        let stored = StoredReservation {
            reservation: r.clone(),
            writes: 1,
            stamp: stamp.clone(),
            token_hash: token_hash.map(str::to_owned),
            ttl,
            slot: extras.slot.map(|(c, index)| Slot {
                client: c.client.clone(),
                index,
            }),
        };
        let pointer = Pointer {
            id: r.id,
            restaurant_id: r.restaurant_id,
            date: r.date,
            ttl,
            dead: false,
        };
        let mut items = vec![
            self.table_check(r.restaurant_id, &r.table_id, revision)?,
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
        let slot_at = match extras.slot {
            Some((cap, slot)) => {
                items.push(self.slot_claim(cap, slot, &r, now)?);
                Some(items.len() - 1)
            }
            None => None,
        };
        let idem_at = match extras.idem {
            Some(idem) => {
                items.push(self.idem_answer(idem, &r)?);
                Some(items.len() - 1)
            }
            None => None,
        };
        let first_cell = items.len();
        let claim = (minutes(r.start, r.end), claim_of(&r));
        for (cell, ops) in cells::diff(None, Some(claim)) {
            items.push(
                cells::update(&self.table, r.restaurant_id, &r.table_id, cell, &ops, now)
                    .map_err(super::io::build_err)?,
            );
        }

        let (mut resends, mut settled) = (0, 0);
        loop {
            let slot = extras.slot.map(|(c, i)| (c.client.as_str(), i));
            let written = match self
                .send_claim(&items, &r, now, &claim_of(&r), slot)
                .await?
            {
                Sent::Written(w) => w,
                Sent::Taken => return Ok(Claim::Taken),
                Sent::SlotTaken => return Ok(Claim::SlotTaken),
            };
            match written {
                Written::Done(()) => return Ok(Claim::Won(Box::new(r))),
                Written::Canceled(reasons) => {
                    let failed = |i: usize| reasons.get(i) == Some(&Reason::ConditionalCheckFailed);
                    if failed(1) {
                        // The reservation exists: an earlier attempt of this very write landed.
                        return self.ours(r.id, &stamp).await;
                    }
                    if failed(0) {
                        // The table moved on, or a settings change fences it (or left it
                        // fenced): settle it, and send again if that was all.
                        settled += 1;
                        if settled <= SETTLE_ATTEMPTS
                            && self
                                .settle_table(r.restaurant_id, &r.table_id, revision)
                                .await?
                        {
                            continue;
                        }
                        return Ok(Claim::Stale);
                    }
                    if slot_at.is_some_and(failed) {
                        return Ok(Claim::SlotTaken);
                    }
                    if (first_cell..reasons.len()).any(failed) {
                        return Ok(Claim::Taken);
                    }
                    if idem_at.is_some_and(failed) {
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

    /// Sends a claim, retrying throttling and conflicts. When DynamoDB reports a conflict rather
    /// than a failed condition (another transaction holds an item right now), a look at the
    /// table's minutes tells a loser at once (`None`) instead of after the retries.
    async fn send_claim(
        &self,
        items: &[TransactWriteItem],
        r: &Reservation,
        now: DateTime<Utc>,
        mine: &str,
        slot: Option<(&str, u32)>,
    ) -> StoreResult<Sent> {
        if items.len() > 100 {
            return Err(StoreError::Internal(
                format!(
                    "a hold of {} items is over DynamoDB's limit of 100",
                    items.len()
                )
                .into(),
            ));
        }
        let mut delays = RETRIES.build();
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
                    if self.minutes_taken(r, now, mine).await? {
                        return Ok(Sent::Taken);
                    }
                    if let Some((client, i)) = slot {
                        let item = self.get(client_key(client)).await?;
                        if slot_live_for_another(item.as_ref(), i, mine, now) {
                            return Ok(Sent::SlotTaken);
                        }
                    }
                    if !pause(&mut delays).await {
                        return Err(StoreError::unavailable(THROTTLED, why));
                    }
                    continue;
                }
            };
            return Ok(Sent::Written(written));
        }
    }

    /// Whether another live claim holds any minute of `r` on its table (committed state).
    async fn minutes_taken(
        &self,
        r: &Reservation,
        now: DateTime<Utc>,
        mine: &str,
    ) -> StoreResult<bool> {
        let span = minutes(r.start, r.end);
        if span.is_empty() {
            return Ok(false);
        }
        let (first, last) = (
            span.start.div_euclid(CELL_MINUTES),
            (span.end - 1).div_euclid(CELL_MINUTES),
        );
        let cells = self
            .query_range(
                &cell_pk(r.restaurant_id, &r.table_id),
                &cell_sk(first),
                &cell_sk(last),
            )
            .await?;
        let now = now_key(now);
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
                    if v.as_str() > now.as_str() && v != mine {
                        return Ok(true);
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
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn free_slots_are_absent_or_expired_and_a_lowered_cap_counts_live_slots_above_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 18, 0, 0).unwrap();
        let ms = now.timestamp_millis();
        let (live, dead) = (
            st(claim_value(Some(ms + 1), Uuid::new_v4())),
            st(claim_value(Some(ms), Uuid::new_v4())),
        );
        assert_eq!(free_slots(None, 3, now), [0, 1, 2]);
        let item: Item = [("s0".to_owned(), live.clone()), ("s2".into(), dead)].into();
        assert_eq!(free_slots(Some(&item), 3, now), [1, 2]);
        assert!(free_slots(Some(&item), 1, now).is_empty());
        let high: Item = [("s3".to_owned(), live), ("sk".into(), st("C"))].into();
        assert_eq!(
            free_slots(Some(&high), 2, now),
            [0],
            "one of two is taken above the cap"
        );
        assert!(free_slots(Some(&high), 1, now).is_empty());
    }
}
