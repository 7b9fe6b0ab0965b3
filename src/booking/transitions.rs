//! A reservation's life after its hold: read it, confirm it (with the diner's details), release
//! it (the diner's token or staff), and the staff's status changes — each one conditional write
//! through the store, published with its after-image.
use super::reservations::{validate_guest, Idem};
use super::*;
use crate::domain::grid::ceil_to_grid;
use crate::domain::reservation::{Guest, Status};
use crate::domain::waitlist::Freed;
use crate::store::{MailKind, NewOffer, Transition, TransitionOutcome};

impl Booking {
    pub async fn reservation(&self, id: Uuid) -> BookingResult<Reservation> {
        self.store
            .reservation(id)
            .await?
            .ok_or(BookingError::NotFound("reservation"))
    }

    async fn apply(
        &self,
        t: Transition,
        cause: Cause,
    ) -> BookingResult<Result<Reservation, Option<Reservation>>> {
        self.apply_freeing(t, cause, |_| None, None).await
    }

    /// [`Self::apply`] for a change that may free capacity (`frees` says what, from the
    /// reservation as written): the freed time is offered to the waitlist first, and only then
    /// is the change published and answered, so no subscriber, and no client acting on the
    /// answer, sees it public while a waiting entry may be offered it.
    ///
    /// `planned`: the offer of the freed capacity, planned before the change, which the store
    /// decides right after it (on SQLite in the same transaction, so no public hold can take the
    /// capacity in between). Not made, the freed capacity is offered the usual way.
    ///
    /// It all runs in a task of its own that the request awaits: a request dropped mid-way (a
    /// client gone, a drain's deadline) cannot leave a committed change unoffered or unpublished.
    async fn apply_freeing(
        &self,
        t: Transition,
        cause: Cause,
        frees: impl FnOnce(&Reservation) -> Option<Freed> + Send + 'static,
        planned: Option<(Freed, NewOffer, super::offers::Planner)>,
    ) -> BookingResult<Result<Reservation, Option<Reservation>>> {
        let me = self.clone();
        self.in_background(async move { me.freeing(t, cause, frees, planned).await })
            .await
            .map_err(|e| StoreError::internal("the change's task ended early", e))?
    }

    async fn freeing(
        &self,
        t: Transition,
        cause: Cause,
        frees: impl FnOnce(&Reservation) -> Option<Freed>,
        planned: Option<(Freed, NewOffer, super::offers::Planner)>,
    ) -> BookingResult<Result<Reservation, Option<Reservation>>> {
        let (now, mailed) = (t.now, t.mail.is_some());
        let (outcome, offered) = match planned {
            Some(p) => Self::write_planned(p, |o| self.store.transition_offering(t, o)).await?,
            None => (self.store.transition(t).await?, None),
        };
        Ok(match outcome {
            TransitionOutcome::Done {
                reservation,
                versions,
                entry,
                waiting,
            } => {
                let image = Image::new(vec![reservation.clone()], entry.into_iter().collect());
                let (me, rid) = (self.clone(), reservation.restaurant_id);
                let publish = move || me.publish(rid, cause, now, versions, Some(image));
                // Nobody waiting as of the write: nothing to offer, nothing to wait for.
                let fallback = frees(&reservation).filter(|_| waiting != Some(false));
                self.publish_after_offer(offered, fallback, publish).await;
                if mailed {
                    self.mail_ready.notify_one();
                }
                Ok(reservation)
            }
            TransitionOutcome::Conflict(cur) => Err(cur),
        })
    }

    #[tracing::instrument(name = "booking.confirm", skip_all, fields(reservation = %id))]
    pub async fn confirm(
        &self,
        id: Uuid,
        guest: Guest,
        notes: Option<String>,
        idem: Option<Idem>,
    ) -> BookingResult<Reservation> {
        validate_guest(&guest).map_err(BookingError::Validation)?;
        let guest = self.with_offer_contact(id, guest).await;
        let email = guest.email.clone();
        if notes.as_ref().is_some_and(|n| n.len() > 2000) {
            return Err(FieldError::new("notes", "at most 2000 bytes").into());
        }
        let now = Self::now();
        let t = Transition {
            guest: Some(guest),
            notes,
            idem: idem.as_ref().map(|i| i.record(None)),
            mail: self.mail_to(MailKind::Confirmation, email.as_deref()),
            ..Transition::new(id, Status::Held, Status::Confirmed, now)
        };
        match self.apply(t, Cause::Confirmed).await? {
            Ok(r) => {
                idem.iter().for_each(Idem::mark_recorded);
                Ok(r)
            }
            Err(None) => Err(BookingError::NotFound("reservation")),
            Err(Some(cur)) => match cur.status_at(now) {
                Status::Confirmed => Ok(cur),
                Status::Expired => Err(BookingError::HoldExpired),
                s => Err(BookingError::InvalidTransition(format!(
                    "a {} reservation cannot be confirmed",
                    s.as_str()
                ))),
            },
        }
    }

    /// A waitlist offer confirmed without an `email` keeps the email (and, when none is given,
    /// the phone) its entry gave at the join: the diner was asked once, and the confirmation is
    /// mailed there. Each is taken only if it passes today's rules (an entry may be older than
    /// them). Best effort: when the store cannot say, the confirm goes on with what was sent.
    async fn with_offer_contact(&self, id: Uuid, guest: Guest) -> Guest {
        if guest.email.is_some() {
            return guest;
        }
        let entry = match self.offered_entry(id).await {
            Ok(Some(e)) => e,
            Ok(None) => return guest,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "confirm: the offer's entry could not be read; its contact is not added"
                );
                return guest;
            }
        };
        let mut merged = guest;
        let with_email = Guest {
            email: entry.guest.email.clone(),
            ..merged.clone()
        };
        if validate_guest(&with_email).is_ok() {
            merged = with_email;
        }
        if merged.phone.is_none() {
            let with_phone = Guest {
                phone: entry.guest.phone.clone(),
                ..merged.clone()
            };
            if validate_guest(&with_phone).is_ok() {
                merged = with_phone;
            }
        }
        merged
    }

    /// The waitlist entry a held reservation was offered to, if it is an offer.
    async fn offered_entry(
        &self,
        id: Uuid,
    ) -> crate::store::StoreResult<Option<crate::domain::WaitlistEntry>> {
        let Some(r) = self.store.reservation(id).await? else {
            return Ok(None);
        };
        if r.status != Status::Held {
            return Ok(None);
        }
        let queue = self.store.waitlist_on(r.restaurant_id, r.date).await?;
        Ok(queue
            .into_iter()
            .find(|e| e.offer.as_ref().is_some_and(|o| o.reservation_id == id)))
    }

    /// `DELETE`: a hold is released, a confirmed reservation cancelled; repeats change nothing.
    pub async fn release(&self, id: Uuid) -> BookingResult<()> {
        self.release_by(id, false).await
    }

    /// `DELETE` by the diner or (`by_staff`) the restaurant: a cancellation mails the guest.
    #[tracing::instrument(name = "booking.release", skip(self), fields(reservation = %id))]
    pub async fn release_by(&self, id: Uuid, by_staff: bool) -> BookingResult<()> {
        for attempt in 1..=STALE_RETRIES {
            let now = Self::now();
            let cur = self.reservation(id).await?;
            let (from, to, cause) = match cur.status_at(now) {
                Status::Held => (Status::Held, Status::Released, Cause::Released),
                Status::Confirmed => (Status::Confirmed, Status::Cancelled, Cause::Cancelled),
                Status::Released | Status::Cancelled | Status::Expired => return Ok(()),
                s => {
                    return Err(BookingError::InvalidTransition(format!(
                        "a {} reservation cannot be cancelled",
                        s.as_str()
                    )))
                }
            };
            let kind = if by_staff {
                MailKind::CancelledByRestaurant
            } else {
                MailKind::CancelledByGuest
            };
            let email = cur.guest.as_ref().and_then(|g| g.email.as_deref());
            let t = Transition {
                mail: (to == Status::Cancelled)
                    .then(|| self.mail_to(kind, email))
                    .flatten(),
                // Its planned offer failed (the entry was offered by another instance, say):
                // plan again rather than free the time for anyone before the next offer. The
                // last attempt frees it anyway, offered after the write.
                offer_or_nothing: attempt < STALE_RETRIES,
                ..Transition::new(id, from, to, now)
            };
            // The freed time goes to the waitlist first: planned now, offered with the change.
            let freed = Freed {
                at: now,
                ..Freed::of(&cur)
            };
            let planned = self.plan_freed_offer(&cur, freed, None).await;
            if self
                .apply_freeing(t, cause, |r| Some(Freed::of(r)), planned)
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(BookingError::Conflict(
            "the reservation keeps changing; try again".into(),
        ))
    }

    /// Staff status changes: seated, completed, no_show.
    #[tracing::instrument(name = "booking.set_status", skip(self), fields(reservation = %id, to = to.as_str()))]
    pub async fn set_status(&self, id: Uuid, to: Status) -> BookingResult<Reservation> {
        let cause = match to {
            Status::Seated => Cause::Seated,
            Status::Completed => Cause::Completed,
            Status::NoShow => Cause::NoShow,
            _ => {
                return Err(
                    FieldError::new("status", "must be one of seated, completed, no_show").into(),
                )
            }
        };
        for attempt in 1..=STALE_RETRIES {
            let cur = self.reservation(id).await?;
            let now = Self::now();
            let from = cur.status_at(now);
            if !from.can_become(to) {
                return Err(BookingError::InvalidTransition(format!(
                    "a {} reservation cannot become {}",
                    from.as_str(),
                    to.as_str()
                )));
            }
            let end = if matches!(to, Status::Completed | Status::NoShow) {
                let r = self.restaurant(cur.restaurant_id).await?;
                Some(ceil_to_grid(&r, now).max(cur.start).min(cur.end))
            } else {
                None
            };
            // Ended early: the rest of its time goes to the waitlist first, planned now and
            // offered with the change when someone waits for it.
            let booked_end = cur.end;
            let planned = match end.filter(|e| *e < booked_end) {
                Some(new_end) => {
                    let after = Reservation {
                        status: to,
                        end: new_end,
                        updated_at: now,
                        ..cur.clone()
                    };
                    let freed = Freed::rest_of(&after, booked_end);
                    self.plan_freed_offer(&cur, freed, Some(after)).await
                }
                None => None,
            };
            let t = Transition {
                end,
                // As a release's (`release_by`): a failed planned offer is planned again.
                offer_or_nothing: attempt < STALE_RETRIES,
                ..Transition::new(id, from, to, now)
            };
            let rest =
                move |r: &Reservation| (r.end < booked_end).then(|| Freed::rest_of(r, booked_end));
            match self.apply_freeing(t, cause, rest, planned).await? {
                Ok(r) => return Ok(r),
                // Nothing was written: its planned offer was not made (or it is gone).
                Err(None) if attempt < STALE_RETRIES => continue,
                Err(cur) => {
                    return Err(BookingError::InvalidTransition(format!(
                        "a {} reservation cannot become {}",
                        cur.map_or("missing", |c| c.status_at(now).as_str()),
                        to.as_str()
                    )))
                }
            }
        }
        Err(BookingError::Conflict(
            "the reservation keeps changing; try again".into(),
        ))
    }

    pub async fn reservations_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> BookingResult<Vec<Reservation>> {
        self.load(restaurant_id).await?;
        Ok(self.store.reservations_on(restaurant_id, date).await?)
    }
}
