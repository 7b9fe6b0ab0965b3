//! Holds and walk-ins: the first free seating option is claimed — every member table's
//! minutes and, when paced, the window's count — in one transaction, or the hold fails at once.
use super::cells::{claim_value, now_key};
use super::claim::{Claim, Extras, Fence, OfferTo};
use super::errors::Contention;
use super::items::*;
use super::keys::{
    client_key, date_prefix, restaurant_pk, slot_attr, window_key, Expr, Item, CLAIMS, TTL,
};
use super::keys::{n as num, s as st};
use super::pacing::{tally, Tally, WindowWrite};
use super::reads::split;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::domain::{Reservation, TableId};
use crate::store::{HoldCap, InsertOutcome, NewReservation, StoreError, StoreResult};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use rand::Rng;
use std::collections::HashSet;

/// What a capped hold of a client may claim at `now`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreeSlots {
    /// A few of the slots below `max` that are absent or hold an expired hold; none when the
    /// client's live slots, counted wherever they are, already reach `max`.
    pub slots: Vec<u32>,
    /// Set when the client has live slots at or above `max` (claimed under a larger cap before
    /// it was lowered), so fewer holds are allowed than free slots below `max`: the claim must
    /// then find the client's claim count as read, that is no other claim in between, or two
    /// concurrent claims could pass the cap.
    pub fence: Option<Fence>,
}

/// The slots a hold of this client may claim at `now`. Every live slot counts against `max`,
/// wherever it is: after the cap was lowered, live slots at or above the new `max` (and any
/// below it) leave room for `max` minus their number, and the claim is then fenced (see
/// [`FreeSlots::fence`]). Claims only ever use slots below `max`, so without live slots at or
/// above it, one hold per slot keeps the client within `max`.
pub fn free_slots(item: Option<&Item>, max: u32, now: DateTime<Utc>) -> FreeSlots {
    let now = now_key(now);
    let live = |v: Option<&AttributeValue>| matches!(v, Some(AttributeValue::S(v)) if v.as_str() > now.as_str());
    let (mut all, mut high) = (0u32, 0u32);
    for (k, v) in item.into_iter().flatten() {
        let Some(i) = k.strip_prefix('s').and_then(|i| i.parse::<u32>().ok()) else {
            continue;
        };
        if live(Some(v)) {
            all += 1;
            high += u32::from(i >= max);
        }
    }
    if all >= max {
        return FreeSlots::default();
    }
    FreeSlots {
        // Any free slot will do, and the first few are plenty to spread concurrent holds over:
        // a cap of 2^31 listed 2^31 slots on every hold (no answer, a gigabyte, a drain SIGTERM
        // could not end).
        slots: (0..max)
            .filter(|i| !live(item.and_then(|it| it.get(&slot_attr(*i)))))
            .take(SPREAD)
            .collect(),
        fence: (high > 0).then(|| Fence::of(item)),
    }
}

/// How many free slots a hold picks among (at random: a client's concurrent holds rarely race
/// for one).
const SPREAD: usize = 16;

/// What one hold decision came to: a hold's outcome, or, for an offer, an entry that is no
/// longer `waiting`.
// Returned once per decision; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Decided {
    Is(InsertOutcome),
    NotWaiting,
}

/// Giving up after the hold's whole time budget went to contention on `what`.
fn contended(what: &str) -> StoreError {
    StoreError::Unavailable(format!("{what} stayed contended for the whole retry budget").into())
}

impl DynamoStore {
    pub(super) async fn insert_(&self, new: NewReservation) -> StoreResult<InsertOutcome> {
        match self.decide(new, None).await? {
            Decided::Is(o) => Ok(o),
            Decided::NotWaiting => Err(StoreError::Internal(
                "a hold without an entry found its entry taken".into(),
            )),
        }
    }

    /// Decides a hold, or with `entry` an offer: the same claim, with the entry's
    /// `waiting → offered` change in its transaction.
    pub(super) async fn decide(
        &self,
        new: NewReservation,
        entry: Option<OfferTo<'_>>,
    ) -> StoreResult<Decided> {
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
        // The cap applies to holds: a hold claims a slot of its client with its own expiry.
        let cap =
            cap.filter(|_| reservation.status == Status::Held && reservation.expires_at.is_some());
        let mut free = match &cap {
            Some(c) => {
                let free = self.client_slots(c, now).await?;
                if free.slots.is_empty() {
                    return Ok(Decided::Is(InsertOutcome::OverCap));
                }
                free
            }
            None => FreeSlots::default(),
        };
        let (lo, hi) = (
            date_prefix(reservation.date.pred()),
            format!("{}~", date_prefix(reservation.date)),
        );
        // Options found taken by a failed claim, whatever the next read says.
        let mut taken: HashSet<usize> = HashSet::new();
        // Options another transaction was writing when this hold tried them: left for the
        // others of this read, tried again after a pause and a fresh read.
        let mut in_flight: HashSet<usize> = HashSet::new();
        // Holds of this instance decide a window one at a time (see `gates`); the wait for the
        // turn is not contention with DynamoDB, so the budget starts after it.
        let _turn = match &pacing {
            Some(p) if p.enforce => {
                let (pk, sk) = window_key(rid, reservation.date, &p.window);
                Some(self.gates.enter(format!("{pk}/{sk}")).await)
            }
            _ => None,
        };
        // Every retry of this hold, whatever kept it from committing, shares one time budget.
        let mut contention = Contention::default();
        'read: loop {
            // Ended before a pause: a read in progress keeps other holds' wins in memory.
            let read = self.claiming.read();
            // A paced hold reads its window before the day: see `pacing`.
            let (window, day) = match &pacing {
                Some(p) if p.enforce => {
                    let w = self.window_item(rid, reservation.date, &p.window).await?;
                    (Some(w), self.untorn(rid, &lo, &hi).await?.reservations)
                }
                _ => (
                    None,
                    split(&self.query_range(&restaurant_pk(rid), &lo, &hi).await?)?.reservations,
                ),
            };
            let day: Vec<Reservation> = day.into_iter().map(|s| s.reservation).collect();
            // Only narrows the candidates: the conditional write decides.
            let busy: HashSet<&TableId> = day
                .iter()
                .filter(|r| r.occupies_at(now) && r.overlaps(reservation.start, reservation.end))
                .flat_map(|r| r.table_ids.iter())
                .collect();
            let counted: Option<Tally> = match (&pacing, &window) {
                (Some(p), Some(w)) if p.enforce => {
                    Some(tally(w, &day, reservation.date, &p.window, now))
                }
                _ => None,
            };
            // An offer keeping its freed table takes it in order of fit; any other claim
            // passes over the options other holds of this instance are claiming (see
            // `claiming`), which picks and marks in one step.
            let avoid = entry.and_then(|o| o.keep).is_none();
            loop {
                let open: Vec<(usize, &[TableId])> = candidates
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| {
                        !taken.contains(i)
                            && !in_flight.contains(i)
                            && !c.tables.iter().any(|t| busy.contains(t))
                    })
                    .map(|(i, c)| (i, c.tables.as_slice()))
                    .collect();
                let span = (reservation.start, reservation.end);
                let Some((i, mark)) = self.claiming.pick(&read, rid, &open, span, avoid) else {
                    break;
                };
                let seating = &candidates[i];
                // An option is free: now pacing decides (no free option is `Lost`, whatever
                // pacing says).
                if let (Some(p), Some(t)) = (&pacing, &counted) {
                    if p.refuses(t.count.covers, t.count.parties, reservation.party_size) {
                        return Ok(Decided::Is(InsertOutcome::Paced { seen: None }));
                    }
                }
                let paced = match (&pacing, &window, &counted) {
                    (Some(p), Some(read), Some(t)) => {
                        Some((p.window, WindowWrite::Decide { read, tally: t }))
                    }
                    (Some(p), _, None) => Some((p.window, WindowWrite::Count)),
                    _ => None,
                };
                let mut r = reservation.clone();
                r.seat(seating);
                loop {
                    // Spread a client's concurrent holds over its free slots; a fenced claim
                    // also finds no other claim since its read.
                    let slot = cap.as_ref().map(|c| {
                        let i = rand::thread_rng().gen_range(0..free.slots.len());
                        (c, free.slots[i], free.fence)
                    });
                    let extras = Extras {
                        slot,
                        idem: idem.as_ref(),
                        window: paced,
                        entry,
                    };
                    match self
                        .claim(
                            r.clone(),
                            token_hash.as_deref(),
                            restaurant_revision,
                            now,
                            &extras,
                            &mut contention,
                        )
                        .await?
                    {
                        Claim::Won(reservation) => {
                            mark.won();
                            let reservation = *reservation;
                            let versions = self
                                .versions_after(
                                    rid,
                                    &reservation.dates_spanned(),
                                    Some((reservation.id, 1)),
                                )
                                .await;
                            return Ok(Decided::Is(InsertOutcome::Won {
                                reservation,
                                versions,
                            }));
                        }
                        // Lost to another claim: in a race the others most likely went too,
                        // so a fresh read (not the next option of a stale one) says what is left.
                        Claim::Taken => {
                            taken.insert(i);
                            continue 'read;
                        }
                        Claim::Busy => {
                            in_flight.insert(i);
                            break;
                        }
                        Claim::Stale => return Ok(Decided::Is(InsertOutcome::Stale)),
                        Claim::NotWaiting => return Ok(Decided::NotWaiting),
                        // Another hold committed into the window: decide again at once.
                        Claim::WindowMoved => {
                            drop(read);
                            if !contention.yield_to_winner().await {
                                return Err(contended("the pacing window"));
                            }
                            continue 'read;
                        }
                        // Another transaction held the window (or a table) right then: back off
                        // before reading again, so contenders spread out; once the window is
                        // full, a fresh read answers `Paced` without writing.
                        Claim::Contended => {
                            drop(read);
                            if !contention.pause().await {
                                return Err(contended("the pacing window"));
                            }
                            continue 'read;
                        }
                        Claim::SlotTaken => {
                            if !contention.yield_to_winner().await {
                                return Err(contended("the client's live holds"));
                            }
                            let Some(c) = &cap else {
                                return Err(StoreError::Internal(
                                    "a slot lost without a cap".into(),
                                ));
                            };
                            free = self.client_slots(c, now).await?;
                            if free.slots.is_empty() {
                                return Ok(Decided::Is(InsertOutcome::OverCap));
                            }
                        }
                    }
                }
            }
            // Nothing free is left but what other transactions were writing: once they are
            // done, a fresh read tells whether they took it.
            if !in_flight.is_empty() {
                drop(read);
                if !contention.pause().await {
                    return Err(contended("a seating option"));
                }
                in_flight.clear();
                continue 'read;
            }
            return Ok(Decided::Is(InsertOutcome::Lost { seen: None }));
        }
    }

    /// The free slots of a client (strongly consistent): only a hint, the write decides.
    async fn client_slots(&self, cap: &HoldCap, now: DateTime<Utc>) -> StoreResult<FreeSlots> {
        let item = self.get(client_key(&cap.client)).await?;
        Ok(free_slots(item.as_ref(), cap.max, now))
    }

    /// Claims `slot` of the client for `r` (a hold): free, or held by an expired hold, and,
    /// with a `fence`, no other claim of the client since it was read (see
    /// [`FreeSlots::fence`]). Every claim counts itself in the item's [`CLAIMS`].
    pub(super) fn slot_claim(
        &self,
        cap: &HoldCap,
        slot: u32,
        fence: Option<Fence>,
        r: &Reservation,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let a = e.name(&slot_attr(slot));
        let claims = e.name(CLAIMS);
        let expires = r.expires_at.map(|x| x.timestamp_millis());
        let expr = format!(
            "SET {a} = {v}, {ttl} = {t} ADD {claims} {one}",
            v = e.value(st(claim_value(expires, r.id))),
            ttl = e.name(TTL),
            t = e.value(num(
                hold_ttl(r, self.dead_ttl_s).unwrap_or(now.timestamp() + self.dead_ttl_s)
            )),
            one = e.value(num(1)),
        );
        let now = e.value(st(now_key(now)));
        let mut cond = format!("(attribute_not_exists({a}) OR {a} < {now})");
        match fence {
            Some(Fence { claims: 0 }) => {
                cond.push_str(&format!(" AND attribute_not_exists({claims})"))
            }
            Some(Fence { claims: n }) => {
                cond.push_str(&format!(" AND {claims} = {}", e.value(num(n))))
            }
            None => {}
        }
        self.update(client_key(&cap.client), &expr, Some(&cond), &e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn item(slots: &[(u32, &AttributeValue)]) -> Item {
        let mut it: Item = [("sk".to_owned(), st("C"))].into();
        it.extend(slots.iter().map(|(i, v)| (slot_attr(*i), (*v).clone())));
        it
    }

    /// Free `slots`, fenced at `claims` when given.
    fn free(slots: &[u32], fenced: Option<u64>) -> FreeSlots {
        FreeSlots {
            slots: slots.to_vec(),
            fence: fenced.map(|claims| Fence { claims }),
        }
    }

    #[test]
    fn free_slots_are_absent_or_expired_and_a_lowered_cap_counts_live_slots_above_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 18, 0, 0).unwrap();
        let ms = now.timestamp_millis();
        let (live, dead) = (
            st(claim_value(Some(ms + 1), Uuid::new_v4())),
            st(claim_value(Some(ms), Uuid::new_v4())),
        );
        assert_eq!(free_slots(None, 3, now), free(&[0, 1, 2], None));
        let it = item(&[(0, &live), (2, &dead)]);
        assert_eq!(free_slots(Some(&it), 3, now), free(&[1, 2], None));
        assert_eq!(free_slots(Some(&it), 1, now), free(&[], None));
        // One live slot above a cap of 2 leaves room for one hold: either free slot below the
        // cap, claimed on condition that no other claim came after the read (the item counted
        // none here, then 7).
        let mut high = item(&[(3, &live)]);
        assert_eq!(free_slots(Some(&high), 2, now), free(&[0, 1], Some(0)));
        high.insert(CLAIMS.into(), num(7));
        assert_eq!(free_slots(Some(&high), 2, now), free(&[0, 1], Some(7)));
        assert_eq!(free_slots(Some(&high), 1, now), free(&[], None));
        // However large the cap, a hold looks at a few free slots, not all of them.
        let first: Vec<u32> = (1..=SPREAD as u32).collect();
        assert_eq!(free_slots(Some(&it), u32::MAX, now), free(&first, None));
        // A fenced one too: a live slot at 400 with the cap lowered to 300 (a claim that named
        // every other free slot below the cap outgrew DynamoDB's 4 KB condition).
        let far = item(&[(400, &live)]);
        let first: Vec<u32> = (0..SPREAD as u32).collect();
        assert_eq!(free_slots(Some(&far), 300, now), free(&first, Some(0)));
    }

    /// A cap of 4 lowered to 2 with live holds in s1 and s2 (s0 and s3 released): the client
    /// is at its cap. Only the live slots at or above the cap used to be counted, and s0 was
    /// offered: a third live hold.
    #[test]
    fn a_live_slot_below_a_lowered_cap_counts_too() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 18, 0, 0).unwrap();
        let live = st(claim_value(
            Some(now.timestamp_millis() + 1),
            Uuid::new_v4(),
        ));
        let mid = item(&[(1, &live), (2, &live)]);
        assert_eq!(free_slots(Some(&mid), 2, now), free(&[], None));
        assert_eq!(free_slots(Some(&mid), 3, now), free(&[0], None));
        let spread = item(&[(1, &live), (4, &live)]);
        assert_eq!(free_slots(Some(&spread), 3, now), free(&[0, 2], Some(0)));
        assert_eq!(free_slots(Some(&spread), 2, now), free(&[], None));
    }
}
