//! Offer searches, one restaurant at a time: frees that arrive while a search runs wait in the
//! restaurant's queue, and the next pass takes them all — one read of the restaurant, its queue
//! and the day for the whole batch, then every planned offer submitted at once, so on SQLite they
//! share one group commit. The store still decides each offer (a conditional write); whatever a
//! batch could not place goes through the one-at-a-time search.
use super::*;
use crate::domain::waitlist::{first_fit, Freed, WaitStatus, WaitlistEntry};
use crate::store::{NewOffer, OfferOutcome};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

type Waiting = Vec<(Freed, oneshot::Sender<BookingResult<bool>>)>;

/// Per restaurant, the frees waiting for the next pass. A restaurant with an entry here has a
/// pass running; the pass removes the entry when it finds nothing left.
#[derive(Clone, Default)]
pub(super) struct OfferQueues {
    waiting: Arc<std::sync::Mutex<HashMap<Uuid, Waiting>>>,
    /// Per restaurant, held by whoever plans offers and writes them on this instance: a pass,
    /// or a release with the offer it planned. One planner at a time makes, and dates, the
    /// offers in queue order: with two, the one that lost the head of the queue to the other
    /// could offer the next entry dated before the head's offer.
    planners: Arc<std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The right to plan and write a restaurant's offers (see `OfferQueues::planners`).
pub(super) type Planner = tokio::sync::OwnedMutexGuard<()>;

/// What a planned offer came to: the capacity it was planned for, the store's answer, and
/// whether it wrote a mail.
pub(super) type Planned = (Freed, OfferOutcome, bool);

impl OfferQueues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the right to plan and write `rid`'s offers.
    async fn planner(&self, rid: Uuid) -> Planner {
        let m = {
            let mut all = self.planners.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(all.entry(rid).or_default())
        };
        m.lock_owned().await
    }
}

/// Ends a restaurant's pass even if it panics: its waiters then hear nothing (and the
/// reconcile loop repairs what they would have offered).
struct PassGuard(OfferQueues, Uuid);

impl Drop for PassGuard {
    fn drop(&mut self) {
        // A pass that ends normally has already removed its entry under the lock.
        if std::thread::panicking() {
            self.0.lock().remove(&self.1);
        }
    }
}

impl Booking {
    /// Offers capacity a change freed to the first fitting `waiting` entry, in queue order,
    /// that joined before it was freed: one offer at most (`offer_all` repeats it until
    /// nobody fits). Returns whether one was made.
    #[tracing::instrument(name = "booking.offer", skip_all, fields(restaurant = %freed.restaurant_id))]
    pub async fn offer_freed(&self, freed: Freed) -> BookingResult<bool> {
        let rid = freed.restaurant_id;
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.offer_queues.lock();
            match q.get_mut(&rid) {
                Some(w) => {
                    w.push((freed, tx));
                    false
                }
                None => {
                    q.insert(rid, vec![(freed, tx)]);
                    true
                }
            }
        };
        if start {
            let me = self.clone();
            self.in_background(async move { me.offer_passes(rid).await });
        }
        rx.await.unwrap_or_else(|_| {
            tracing::warn!("waitlist offer pass ended early; the reconcile loop retries");
            Ok(false)
        })
    }

    /// Runs passes for a restaurant until no free waits.
    async fn offer_passes(&self, rid: Uuid) {
        let _guard = PassGuard(self.offer_queues.clone(), rid);
        loop {
            let batch = {
                let mut q = self.offer_queues.lock();
                match q.get_mut(&rid) {
                    Some(w) if !w.is_empty() => std::mem::take(w),
                    _ => {
                        q.remove(&rid);
                        return;
                    }
                }
            };
            let (frees, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let planner = self.offer_queues.planner(rid).await;
            let results = self.offer_batch(rid, frees).await;
            drop(planner);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
    }

    /// One pass: plans an offer per free from one read, submits them together, and searches
    /// one at a time for every free the plan did not place.
    async fn offer_batch(&self, rid: Uuid, frees: Vec<Freed>) -> Vec<BookingResult<bool>> {
        let mut results: Vec<Option<BookingResult<bool>>> = frees.iter().map(|_| None).collect();
        if frees.len() > 1 {
            match self.plan_offers(rid, &frees, &mut results).await {
                Ok(planned) => self.submit_planned(planned, &frees, &mut results).await,
                Err(e) => tracing::debug!(error = %e, "batch offer plan failed; one at a time"),
            }
        }
        let mut out = Vec::with_capacity(frees.len());
        for (freed, result) in frees.into_iter().zip(results) {
            out.push(match result {
                Some(r) => r,
                None => self.offer_serially(freed).await,
            });
        }
        out
    }

    /// The offer that a change of `cur` freeing `freed` (committed as of `freed.at`) would
    /// make: the first waiting entry in queue order, joined before then, that fits the freed
    /// time, at its nearest start, as if `cur` were already `after` in the day (gone, for a
    /// release or a cancel; ended early, for a completion or a no-show). Planned before the
    /// change so that the store decides both together; the caller holds the restaurant's
    /// [`Planner`] until that write is done. The freed time may lie on the next date (a late
    /// turn ended early past midnight) or on both: each of its dates is searched in turn, as
    /// the usual search does, and the first fit is the planned offer (the usual search after
    /// the change offers the rest). `None` when nobody waits or fits, or on a failed read (the
    /// usual search handles it).
    pub(super) async fn plan_freed_offer(
        &self,
        cur: &Reservation,
        freed: Freed,
        after: Option<Reservation>,
    ) -> Option<(Freed, NewOffer, Planner)> {
        // A crash test delays every offer on purpose: it keeps to the usual path.
        if !self.test_only_offer_delay.is_zero() {
            return None;
        }
        let (rid, now) = (cur.restaurant_id, freed.at);
        // Nobody waits on a date the reservation spans, which the freed time lies within (the
        // common case): no planner to wait for. Known without reading the restaurant: a
        // release is on the hot path.
        let mut waited = false;
        for date in cur.dates_spanned() {
            waited |= self
                .waiting_before(rid, date, now)
                .await
                .is_ok_and(|q| !q.is_empty());
        }
        if !waited {
            return None;
        }
        let planner = self.offer_queues.planner(rid).await;
        let planned = async {
            let Some(stored) = self.store.restaurant(rid).await? else {
                return Ok(None);
            };
            for date in freed.dates(stored.restaurant.tz()) {
                // Read again as the planner: the offers of the planner before are in.
                let queue = self.waiting_before(rid, date, now).await?;
                if queue.is_empty() {
                    continue;
                }
                // The date's day (which holds the day before's late reservations too), with
                // the change as it is about to be made.
                let mut day = self.store.day(rid, date).await?.reservations.clone();
                day.retain(|r| r.id != cur.id);
                day.extend(after.clone());
                // Made, and dated, as of now: after the offers of the planners before.
                let offered_at = Self::now();
                let pick = first_fit(&stored.restaurant, &queue, &freed, &day, offered_at);
                if let Some((entry, (slot, options))) = pick {
                    let offer = self.offer_for(&stored, entry, slot, options, offered_at);
                    return Ok(Some((freed, offer)));
                }
            }
            Ok::<_, BookingError>(None)
        };
        let planned = planned.await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "planning the offer of a release failed; offered after it");
            None
        });
        planned.map(|(freed, offer)| (freed, offer, planner))
    }

    /// Writes a freeing change together with its planned offer (`write`, given the offer),
    /// then gives the planner up: the next planner reads what was written. (Held longer, the
    /// pass that offers what this offer did not place would wait for it forever.)
    pub(super) async fn write_planned<T, Fut>(
        (freed, offer, planner): (Freed, NewOffer, Planner),
        write: impl FnOnce(NewOffer) -> Fut,
    ) -> BookingResult<(T, Option<Planned>)>
    where
        Fut: std::future::Future<Output = crate::store::StoreResult<(T, Option<OfferOutcome>)>>,
    {
        let mailed = offer.mail.is_some();
        let (outcome, offered) = write(offer).await?;
        drop(planner);
        Ok((outcome, offered.map(|o| (freed, o, mailed))))
    }

    /// Publishes a freeing change (`publish`) after its offers: the planned one the store made
    /// with it, and, if the change freed room for more, the usual offers of the rest (made
    /// first, then the planned offer's change and the freeing change, as after a pass); or else
    /// the usual offers of `fallback`, if any. The caller answers after this, so a client acting
    /// on the answer finds every part offered.
    pub(super) async fn publish_after_offer(
        &self,
        planned: Option<Planned>,
        fallback: Option<Freed>,
        publish: impl FnOnce() + Send + 'static,
    ) {
        match planned {
            Some((
                freed,
                OfferOutcome::Offered {
                    reservation,
                    versions,
                    entry,
                },
                mailed,
            )) => {
                // Published with the change, after the rest: a frame of this offer alone
                // would read the day (a version gap) while the rest still shows free.
                let (me, first) = (self.clone(), freed.clone());
                let both = move || {
                    me.offered(&first, reservation, entry, versions, mailed);
                    publish();
                };
                self.offer_then(freed, both, None).await;
            }
            _ => match fallback {
                Some(freed) => self.offer_then(freed, publish, None).await,
                None => publish(),
            },
        }
    }

    /// Picks, for each free in commit order, the first fitting waiting entry not already picked
    /// and its nearest start, counting earlier picks as taken. Frees no entry fits are answered
    /// `false`; frees spanning two dates are left to the one-at-a-time search.
    async fn plan_offers(
        &self,
        rid: Uuid,
        frees: &[Freed],
        results: &mut [Option<BookingResult<bool>>],
    ) -> BookingResult<Vec<(usize, NewOffer)>> {
        let Some(stored) = self.store.restaurant(rid).await? else {
            results.iter_mut().for_each(|r| *r = Some(Ok(false)));
            return Ok(Vec::new());
        };
        let r = &stored.restaurant;
        let tz = r.tz();
        let mut by_date: HashMap<LocalDate, Vec<usize>> = HashMap::new();
        for (i, f) in frees.iter().enumerate() {
            if let [date] = f.dates(tz)[..] {
                by_date.entry(date).or_default().push(i);
            }
        }
        let now = Self::now();
        let mut planned = Vec::new();
        for (date, mut idxs) in by_date {
            let queue: Vec<WaitlistEntry> = self
                .store
                .waitlist_on(rid, date)
                .await?
                .into_iter()
                .filter(|e| e.status == WaitStatus::Waiting)
                .collect();
            let mut day = self.store.day(rid, date).await?.reservations.clone();
            let mut picked = HashSet::new();
            idxs.sort_by_key(|&i| frees[i].at);
            for i in idxs {
                let f = &frees[i];
                let unpicked = queue
                    .iter()
                    .filter(|e| e.created_at < f.at && !picked.contains(&e.id));
                let pick = first_fit(r, unpicked, f, &day, now);
                match pick {
                    None => results[i] = Some(Ok(false)),
                    Some((entry, (slot, options))) => {
                        let offer = self.offer_for(&stored, entry, slot, options, now);
                        day.push(offer.hold.reservation.clone());
                        picked.insert(entry.id);
                        planned.push((i, offer));
                    }
                }
            }
        }
        Ok(planned)
    }

    /// Submits planned offers together and answers the ones the store made.
    async fn submit_planned(
        &self,
        planned: Vec<(usize, NewOffer)>,
        frees: &[Freed],
        results: &mut [Option<BookingResult<bool>>],
    ) {
        let writes = planned.into_iter().map(|(i, offer)| async move {
            let mailed = offer.mail.is_some();
            (i, mailed, self.store.offer(offer).await)
        });
        for (i, mailed, outcome) in futures_util::future::join_all(writes).await {
            if let Ok(OfferOutcome::Offered {
                reservation,
                versions,
                entry,
            }) = outcome
            {
                self.offered(&frees[i], reservation, entry, versions, mailed);
                results[i] = Some(Ok(true));
            }
        }
    }
}
