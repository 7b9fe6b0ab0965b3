//! The waitlist: joins, leaves, and the offers freed capacity makes. An offer is a hold decided
//! by the store in one write with the entry's `waiting → offered` change; this layer picks the
//! entry (queue order) and the start, and cascades when an offer is refused.
use super::*;
use crate::domain::grid::{bookable_starts, ceil_to_grid};
use crate::domain::reservation::{Guest, Status};
use crate::domain::time::WallTime;
use crate::domain::waitlist::{offer_starts, positions, Before, Freed, WaitStatus, WaitlistEntry};
use crate::store::{
    JoinOutcome, LeaveOutcome, MailKind, NewEntry, NewOffer, NewReservation, OfferOutcome,
};

/// A join: the diner's date, party and window of acceptable starts.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub restaurant_id: Uuid,
    pub date: LocalDate,
    pub party_size: PartySize,
    pub from: WallTime,
    pub to: WallTime,
    pub guest: Guest,
}

/// An entry as shown: with its 1-based place among the waiting entries of its date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub entry: WaitlistEntry,
    pub position: Option<u32>,
}

/// Entries of one date in queue order, each with its position, read as of `now` (an offer past
/// its expiry shows `lapsed`).
pub fn placed(mut entries: Vec<WaitlistEntry>, now: DateTime<Utc>) -> Vec<Placed> {
    for e in &mut entries {
        e.status = e.status_at(now);
    }
    let pos = positions(&entries);
    entries
        .into_iter()
        .zip(pos)
        .map(|(entry, position)| Placed { entry, position })
        .collect()
}

impl Booking {
    /// Joins the queue of a restaurant/date. `422` for a bad date (past, closed, beyond the
    /// horizon), party size or window only: a party no seating option fits may still join.
    #[tracing::instrument(name = "booking.join", skip_all, fields(restaurant = %req.restaurant_id, date = %req.date))]
    pub async fn join_waitlist(&self, req: JoinRequest) -> BookingResult<(Placed, String)> {
        let r = self.restaurant(req.restaurant_id).await?;
        let now = Self::now();
        let mut errs = Vec::new();
        if let Err(e) = validate_guest_of(&req.guest) {
            errs.extend(e);
        }
        if let Some(e) = crate::domain::grid::date_error(&r, req.date, now) {
            errs.push(e);
        }
        let grid = |t: WallTime| u32::from(t.minutes()).is_multiple_of(r.slot_minutes);
        if !grid(req.from) {
            errs.push(FieldError::new(
                "from",
                "is not on the restaurant's slot grid",
            ));
        }
        if !grid(req.to) {
            errs.push(FieldError::new(
                "to",
                "is not on the restaurant's slot grid",
            ));
        }
        if req.from > req.to {
            errs.push(FieldError::new("to", "must not be before from"));
        }
        // A window no start of the date falls in (all of it past, or outside the hours) could
        // never be offered anything. A party no table fits is not checked: tables can change.
        // Nor is a window or date already refused above.
        let refused = |f: &str| errs.iter().any(|e: &FieldError| e.field == f);
        if !refused("date") && !refused("from") && !refused("to") && r.seats(req.party_size) {
            let starts = crate::domain::grid::bookable_starts(&r, req.date, req.party_size, now);
            if !starts
                .iter()
                .any(|s| req.from <= s.time && s.time <= req.to)
            {
                errs.push(FieldError::new(
                    "from",
                    "no bookable start of this date lies between from and to (they are past, \
                     outside the opening hours, or the restaurant does not open that day)",
                ));
            }
        }
        if !errs.is_empty() {
            return Err(BookingError::Validation(errs));
        }
        let token = crate::token::generate();
        let entry = WaitlistEntry {
            id: crate::domain::ids::new_id(),
            restaurant_id: r.id,
            date: req.date,
            party_size: req.party_size.get(),
            from: req.from,
            to: req.to,
            status: WaitStatus::Waiting,
            offer: None,
            guest: req.guest,
            created_at: now,
            updated_at: now,
        };
        let new = NewEntry {
            entry,
            token_hash: crate::token::hash(&token),
        };
        match self.store.join_waitlist(new).await? {
            JoinOutcome::Joined { entry, versions } => {
                let image = Image::new(Vec::new(), vec![entry.clone()]);
                self.publish(r.id, Cause::Waitlist, now, versions, Some(image));
                Ok((self.place(entry).await?, token))
            }
            JoinOutcome::Gone => Err(BookingError::NotFound("restaurant")),
        }
    }

    /// An entry with its position.
    async fn place(&self, entry: WaitlistEntry) -> BookingResult<Placed> {
        let all = self
            .store
            .waitlist_on(entry.restaurant_id, entry.date)
            .await?;
        let id = entry.id;
        Ok(placed(all, Self::now())
            .into_iter()
            .find(|p| p.entry.id == id)
            .unwrap_or(Placed {
                entry,
                position: None,
            }))
    }

    pub async fn waitlist_entry(&self, id: Uuid) -> BookingResult<Placed> {
        let e = self
            .store
            .waitlist_entry(id)
            .await?
            .ok_or(BookingError::NotFound("waitlist entry"))?;
        self.place(e).await
    }

    /// Every entry of a date, in queue order.
    pub async fn waitlist_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> BookingResult<Vec<Placed>> {
        self.load(restaurant_id).await?;
        Ok(placed(
            self.store.waitlist_on(restaurant_id, date).await?,
            Self::now(),
        ))
    }

    /// The entry leaves; a pending offer is declined and cascades to the next fitting entry.
    /// Leaving twice changes nothing.
    #[tracing::instrument(name = "booking.leave", skip(self), fields(entry = %id))]
    pub async fn leave_waitlist(&self, id: Uuid) -> BookingResult<()> {
        // In a task the request awaits: a request dropped mid-way cannot leave a committed leave
        // unoffered or unpublished (as `apply_freeing`).
        let me = self.clone();
        self.in_background(async move { me.leave(id).await })
            .await
            .map_err(|e| StoreError::internal("the leave's task ended early", e))?
    }

    async fn leave(&self, id: Uuid) -> BookingResult<()> {
        let now = Self::now();
        // A declined offer goes to the next entry: planned now, offered with the leave.
        let planned = match self.store.waitlist_entry(id).await? {
            Some(WaitlistEntry {
                status: WaitStatus::Offered,
                offer: Some(offer),
                ..
            }) => match self.store.reservation(offer.reservation_id).await? {
                Some(held) if held.status_at(now) == Status::Held => {
                    let freed = Freed {
                        at: now,
                        ..Freed::of(&held)
                    };
                    self.plan_freed_offer(&held, freed, None).await
                }
                _ => None,
            },
            _ => None,
        };
        let (outcome, offered) = match planned {
            Some(p) => {
                Self::write_planned(p, |o| self.store.leave_waitlist_offering(id, now, o)).await?
            }
            None => (self.store.leave_waitlist(id, now).await?, None),
        };
        match outcome {
            LeaveOutcome::NotFound => Err(BookingError::NotFound("waitlist entry")),
            LeaveOutcome::Unchanged(_) => Ok(()),
            LeaveOutcome::Left {
                entry,
                released,
                versions,
            } => {
                let cause = if released.is_some() {
                    Cause::Released
                } else {
                    Cause::Waitlist
                };
                let image = Image::new(released.iter().cloned().collect(), vec![entry.clone()]);
                let (me, rid) = (self.clone(), entry.restaurant_id);
                let publish = move || me.publish(rid, cause, now, versions, Some(image));
                // A declined offer cascades before the release is public.
                let fallback = released.as_ref().map(Freed::of);
                self.publish_after_offer(offered, fallback, publish).await;
                Ok(())
            }
        }
    }

    /// Offers freed capacity, then runs `publish` (the freeing change's): see
    /// `apply_freeing`. Both run in a task of their own, which the caller awaits: a request
    /// dropped meanwhile (its client gone, a shutdown) never leaves a committed change
    /// unpublished. With `at_most`, the publish waits that long for the offer at most (the
    /// offer goes on in its own task). The hidden test-only delay instead publishes at once and
    /// offers in the background after it, as an instance that dies between the two would leave
    /// it.
    pub(super) async fn offer_then(
        &self,
        freed: Freed,
        publish: impl FnOnce() + Send + 'static,
        at_most: Option<std::time::Duration>,
    ) {
        if !self.test_only_offer_delay.is_zero() {
            publish();
            self.spawn_offer(freed);
            return;
        }
        let me = self.clone();
        let both = self.in_background(async move {
            let offer = me.spawn_offer(freed);
            match at_most {
                None => {
                    let _ = offer.await;
                }
                Some(limit) => {
                    if tokio::time::timeout(limit, offer).await.is_err() {
                        tracing::warn!(
                            "an offer is taking over {limit:?}; its freeing change is published \
                             first"
                        );
                    }
                }
            }
            publish();
        });
        if let Err(e) = both.await {
            tracing::error!(error = %e, "the offer-then-publish task ended early");
        }
    }

    /// Offers freed capacity in the background (the change that freed it is already answered).
    pub(super) fn spawn_offer(&self, freed: Freed) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        self.in_background(async move { me.offer_after_commit(freed).await })
    }

    /// Offers what a committed change freed, one offer per fitting entry until none fits: a
    /// change may free room for several (a combination's tables, a long reservation's several
    /// starts). A failure is logged (the reconcile loop retries).
    pub(super) async fn offer_after_commit(&self, freed: Freed) {
        // Zero except in a crash test (a hidden test-only flag).
        if !self.test_only_offer_delay.is_zero() {
            tokio::time::sleep(self.test_only_offer_delay).await;
        }
        if let Err(e) = self.offer_all(&freed).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "waitlist offer failed; the reconcile loop retries"
            );
        }
    }

    /// Offers `freed` again and again, each time to the first fitting entry left (each offer
    /// holds its part of the capacity, so the next search sees it taken), until nobody fits.
    /// Returns how many offers were made.
    pub(super) async fn offer_all(&self, freed: &Freed) -> BookingResult<usize> {
        let mut made = 0;
        while self.offer_freed(freed.clone()).await? {
            made += 1;
        }
        Ok(made)
    }

    /// The date's `waiting` entries that joined before `before`, in queue order: those freed
    /// capacity may be offered to.
    pub(super) async fn waiting_before(
        &self,
        rid: Uuid,
        date: LocalDate,
        before: DateTime<Utc>,
    ) -> BookingResult<Vec<WaitlistEntry>> {
        Ok(self
            .store
            .waitlist_on(rid, date)
            .await?
            .into_iter()
            .filter(|e| e.status == WaitStatus::Waiting && e.created_at < before)
            .collect())
    }

    /// The one-at-a-time search, run inside the restaurant's offer pass: the queue read here
    /// already shows every offer an earlier search on this instance made.
    pub(super) async fn offer_serially(&self, freed: Freed) -> BookingResult<bool> {
        let Some(stored) = self.store.restaurant(freed.restaurant_id).await? else {
            return Ok(false);
        };
        let mut stored = stored;
        for date in freed.dates(stored.restaurant.tz()) {
            let queue = self
                .waiting_before(freed.restaurant_id, date, freed.at)
                .await?;
            if queue.is_empty() {
                continue;
            }
            // One read of the day for the whole queue; read again only when a start was taken.
            let mut day = self
                .store
                .day(freed.restaurant_id, date)
                .await?
                .reservations
                .clone();
            for entry in queue {
                // A few tries per entry: a stale restaurant, or a start taken meanwhile.
                for _ in 0..STALE_RETRIES {
                    match self.try_offer(&stored, &entry, &freed, &day).await? {
                        Try::Offered => return Ok(true),
                        Try::Next => break,
                        Try::Again => {
                            day = self
                                .store
                                .day(freed.restaurant_id, date)
                                .await?
                                .reservations
                                .clone();
                        }
                        Try::Stale => {
                            let Some(s) = self.store.restaurant(freed.restaurant_id).await? else {
                                return Ok(false);
                            };
                            stored = s;
                        }
                    }
                }
            }
        }
        Ok(false)
    }

    /// One attempt to offer `freed` to `entry`: its fitting starts in order, until one is
    /// offered, the entry is not waiting any more, or a start was taken meanwhile.
    async fn try_offer(
        &self,
        stored: &crate::store::StoredRestaurant,
        entry: &WaitlistEntry,
        freed: &Freed,
        day: &[Reservation],
    ) -> BookingResult<Try> {
        let r = &stored.restaurant;
        let now = Self::now();
        for (slot, options) in offer_starts(r, entry, freed, day, now) {
            let offer = self.offer_for(stored, entry, slot, options, now);
            let mailed = offer.mail.is_some();
            match self.store.offer(offer).await? {
                OfferOutcome::Offered {
                    reservation,
                    versions,
                    entry,
                } => {
                    self.offered(freed, reservation, entry, versions, mailed);
                    return Ok(Try::Offered);
                }
                OfferOutcome::NotWaiting(_) => return Ok(Try::Next),
                // Pacing refuses this start: the entry's next start may still fit.
                OfferOutcome::Paced => {}
                // Taken meanwhile: look again at what is free now.
                OfferOutcome::Lost => return Ok(Try::Again),
                OfferOutcome::Stale => return Ok(Try::Stale),
            }
        }
        Ok(Try::Next)
    }

    /// The offer of `entry` at `slot`: a hold for `offer_seconds` on the first option, the
    /// store free to seat it on any of `options`.
    pub(super) fn offer_for(
        &self,
        stored: &crate::store::StoredRestaurant,
        entry: &WaitlistEntry,
        slot: crate::domain::grid::Slot,
        options: Vec<crate::domain::Seating>,
        now: DateTime<Utc>,
    ) -> NewOffer {
        let r = &stored.restaurant;
        let mut reservation = Reservation {
            id: crate::domain::ids::new_id(),
            restaurant_id: r.id,
            table_id: options[0].first().clone(),
            table_ids: Vec::new(),
            combination_id: None,
            date: entry.date,
            time: slot.time,
            start: slot.start,
            end: slot.end,
            party_size: entry.party_size,
            status: Status::Held,
            expires_at: Some(now + chrono::Duration::seconds(i64::from(r.offer_seconds))),
            guest: None,
            notes: String::new(),
            created_at: now,
            updated_at: now,
        };
        reservation.seat(&options[0]);
        let hold = NewReservation {
            reservation,
            candidates: options,
            pacing: super::reservations::pacing_check(r, slot.time, true),
            restaurant_revision: stored.revision,
            token_hash: None,
            now,
            cap: None,
            idem: None,
        };
        NewOffer {
            entry_id: entry.id,
            hold,
            mail: self.mail_to(MailKind::WaitlistOffer, entry.guest.email.as_deref()),
        }
    }

    /// After the store made an offer: count it, push it, wake the mail sender.
    pub(super) fn offered(
        &self,
        freed: &Freed,
        reservation: Reservation,
        entry: WaitlistEntry,
        versions: crate::store::Versions,
        mailed: bool,
    ) {
        self.metrics.hold_outcome("offered");
        let lag = Self::now() - freed.at;
        self.metrics
            .free_to_offer(lag.num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
        let (rid, at) = (reservation.restaurant_id, reservation.created_at);
        let image = Image::new(vec![reservation], vec![entry]);
        self.publish(rid, Cause::Held, at, versions, Some(image));
        if mailed {
            self.mail_ready.notify_one();
        }
    }

    /// Repairs offers a crash lost between a freeing commit and its offer: every capacity freed
    /// on a date that still has waiting entries, after the oldest of them joined, is offered
    /// again (an offer is conditional, so repeating one never makes two). Returns how many
    /// offers it made.
    #[tracing::instrument(name = "booking.reconcile_waitlist", skip_all, level = "debug")]
    pub async fn reconcile_waitlist(&self) -> BookingResult<usize> {
        let now = Self::now();
        // Yesterday too: a date's queue is visited until its local date has passed everywhere.
        let from = LocalDate::from_naive(now.date_naive()).pred();
        let mut made = 0;
        for wd in self.store.waiting_days(from, 1000).await? {
            let Some(stored) = self.store.restaurant(wd.restaurant_id).await? else {
                continue;
            };
            let waiting: Vec<WaitlistEntry> = self
                .store
                .waitlist_on(wd.restaurant_id, wd.date)
                .await?
                .into_iter()
                .filter(|e| e.status == WaitStatus::Waiting)
                .collect();
            let day = self
                .store
                .day(wd.restaurant_id, wd.date)
                .await?
                .reservations
                .clone();
            // The date's reservations, and the day before's late ones ended early (a walk-in:
            // nothing else runs past midnight), which may have freed time on this date: those
            // are in the day read (only capacity this date's entries could be offered passes
            // the check below).
            let mut all = self
                .store
                .reservations_on(wd.restaurant_id, wd.date)
                .await?;
            all.extend(day.iter().filter(|r| r.date == wd.date.pred()).cloned());
            for freed in all
                .iter()
                .filter(|r| r.updated_at > wd.oldest && frees(r, now))
                .filter_map(|r| freed_by(r, &stored.restaurant))
            {
                // Only capacity some earlier entry could still be offered goes to a write.
                let open = waiting.iter().any(|e| {
                    e.created_at < freed.at
                        && !offer_starts(&stored.restaurant, e, &freed, &day, now).is_empty()
                });
                if open {
                    made += self.offer_all(&freed).await?;
                }
            }
        }
        self.metrics.waitlist_reconciled();
        Ok(made)
    }

    /// A settings or table change (from `before` to `after`) may free capacity: where it
    /// raised a party's free options, offered to the waiting entries of every date that has
    /// some (see `Freed::before`).
    pub(super) fn offer_settings_change(
        &self,
        before: Restaurant,
        after: Restaurant,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let restaurant_id = after.id;
        self.in_background(async move {
            let now = Self::now();
            let from = LocalDate::from_naive(now.date_naive()).pred();
            let Ok(days) = me.store.waiting_days(from, 1000).await else {
                return;
            };
            for d in days
                .into_iter()
                .filter(|d| d.restaurant_id == restaurant_id)
            {
                // The whole date: every start of any party.
                let Some(first) = PartySize::new(1).ok() else {
                    return;
                };
                let starts = bookable_starts(&after, d.date, first, now);
                let (Some(a), Some(b)) = (starts.first(), starts.last()) else {
                    continue;
                };
                // The day as the change left it (it moves no reservation): what it opened is
                // measured against it, whatever frees or offers come before this pass.
                let Ok(day) = me.store.day(restaurant_id, d.date).await else {
                    continue;
                };
                let freed = Freed {
                    restaurant_id,
                    tables: after.tables.iter().map(|t| t.id.clone()).collect(),
                    start: a.start,
                    end: b.end + chrono::Duration::hours(12),
                    at: now,
                    before: Some(std::sync::Arc::new(Before {
                        restaurant: before.clone(),
                        day: day.reservations.clone(),
                    })),
                    was: None,
                };
                // One offer per waiting entry at most, each conditional.
                let _ = me.offer_all(&freed).await;
            }
        })
    }
}

enum Try {
    Offered,
    Next,
    Again,
    Stale,
}

/// Whether a reservation's change freed time: released, expired (read at `now`), cancelled,
/// or ended early (completed, no-show).
fn frees(r: &Reservation, now: DateTime<Utc>) -> bool {
    matches!(
        r.status_at(now),
        Status::Released | Status::Expired | Status::Cancelled | Status::Completed | Status::NoShow
    )
}

/// The capacity a reservation freed: all of it once dead; once ended (completed, no-show), the
/// rest of its booked time, and nothing when it ended on time. An early end is one where the end
/// moved to the change's time on the grid (`set_status`); on time, the booked end stayed. The
/// booked end is not kept: it is taken as its start plus the restaurant's turn for its party, as
/// when it was booked (unless the turns changed since, when this repair offers a little more or
/// less than was freed).
fn freed_by(r: &Reservation, restaurant: &Restaurant) -> Option<Freed> {
    match r.status {
        Status::Completed | Status::NoShow => {
            let party = PartySize::new(i64::from(r.party_size)).ok()?;
            let booked_end = r.start + restaurant.turn(party);
            let moved = r.end == ceil_to_grid(restaurant, r.updated_at).max(r.start);
            (moved && r.end < booked_end).then(|| Freed::rest_of(r, booked_end))
        }
        _ => Some(Freed::of(r)),
    }
}

fn validate_guest_of(g: &Guest) -> Result<(), Vec<FieldError>> {
    super::reservations::validate_guest(g)
}
