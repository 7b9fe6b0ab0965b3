use super::*;
use crate::domain::grid::check_start;
use crate::domain::reservation::{Guest, Status};
use crate::domain::text;
use crate::domain::time::{local_date_of, local_time_of, WallTime};
use crate::domain::{Seating, TableId};
use crate::store::{HoldCap, IdemRecord, InsertOutcome, NewReservation, PacingCheck, Seen};

#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub restaurant_id: Uuid,
    pub date: LocalDate,
    pub time: WallTime,
    pub party_size: PartySize,
    /// At most one of `table_id` and `combination_id` (the caller refuses both).
    pub table_id: Option<TableId>,
    pub combination_id: Option<TableId>,
    /// The client's live-hold cap (none for exempt callers or when the limit is off).
    pub cap: Option<HoldCap>,
    pub idem: Option<Idem>,
}

#[cfg(test)]
impl HoldRequest {
    /// A party of two at 19:00 on `table`, as the unit tests ask.
    pub(crate) fn two_at_seven(restaurant_id: Uuid, date: LocalDate, table: &str) -> Self {
        HoldRequest {
            restaurant_id,
            date,
            time: WallTime::parse("19:00").unwrap(),
            party_size: PartySize::new(2).unwrap(),
            table_id: Some(TableId::parse(table).unwrap()),
            combination_id: None,
            cap: None,
            idem: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WalkInRequest {
    pub restaurant_id: Uuid,
    pub party_size: PartySize,
    pub table_id: Option<TableId>,
    pub combination_id: Option<TableId>,
    pub guest: Option<Guest>,
    pub idem: Option<Idem>,
}

/// Renders a request's final answer from the decided reservation and, for a hold, its token.
pub type Render = Arc<dyn Fn(&Reservation, Option<&str>) -> (u16, String) + Send + Sync>;

/// An idempotent request: its answer is recorded in the same atomic write as its effect.
#[derive(Clone)]
pub struct Idem {
    /// The scope key the request's `idem_begin` used.
    pub key: String,
    pub render: Render,
    /// Set once a write that carried this record committed: the answer is already stored.
    pub recorded: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Idem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idem").field("key", &self.key).finish()
    }
}

impl Idem {
    pub(super) fn mark_recorded(&self) {
        self.recorded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The store's record, with the token (if any) bound into the rendering.
    pub(super) fn record(&self, token: Option<&str>) -> IdemRecord {
        let render = self.render.clone();
        let token = token.map(str::to_owned);
        IdemRecord {
            key: self.key.clone(),
            render: Arc::new(move |r: &Reservation| render(r, token.as_deref())),
        }
    }
}

/// What a new reservation's write carries besides the reservation.
struct Extras<'a> {
    token: Option<&'a str>,
    cap: Option<HoldCap>,
    idem: Option<&'a Idem>,
}

/// What a hold or walk-in asked to sit at.
#[derive(Debug, Clone, Copy)]
pub enum Asked<'a> {
    Any,
    Table(&'a TableId),
    Combination(&'a TableId),
}

impl<'a> Asked<'a> {
    /// `table_id` or `combination_id`, not both (`422`).
    pub fn of(table: Option<&'a TableId>, combination: Option<&'a TableId>) -> BookingResult<Self> {
        match (table, combination) {
            (Some(_), Some(_)) => Err(FieldError::new(
                "combination_id",
                "name a table_id or a combination_id, not both",
            )
            .into()),
            (Some(t), None) => Ok(Asked::Table(t)),
            (None, Some(c)) => Ok(Asked::Combination(c)),
            (None, None) => Ok(Asked::Any),
        }
    }
}

/// Candidate seating options in best-fit order: the one asked for, or every fitting one.
fn candidates(r: &Restaurant, p: PartySize, asked: Asked<'_>) -> BookingResult<Vec<Seating>> {
    match asked {
        Asked::Table(id) => {
            let t = r.table(id).ok_or(BookingError::NotFound("table"))?;
            if !t.fits(p) {
                return Err(
                    FieldError::new("table_id", "this table does not fit the party").into(),
                );
            }
            Ok(vec![Seating::single(id)])
        }
        Asked::Combination(id) => {
            let c = r
                .combination(id)
                .ok_or(BookingError::NotFound("combination"))?;
            if !c.fits(p) {
                return Err(FieldError::new(
                    "combination_id",
                    "this combination does not fit the party",
                )
                .into());
            }
            Ok(vec![Seating::of_combination(c)])
        }
        Asked::Any => {
            let v = r.fitting_options(p);
            if v.is_empty() {
                return Err(FieldError::new(
                    "party_size",
                    "no table or combination fits a party of this size",
                )
                .into());
            }
            Ok(v)
        }
    }
}

/// The pacing a new reservation at local `time` is decided with, if the restaurant paces.
pub(super) fn pacing_check(r: &Restaurant, time: WallTime, enforce: bool) -> Option<PacingCheck> {
    r.pacing.map(|p| PacingCheck {
        window: p.window_of(time),
        max_covers: p.max_covers,
        max_parties: p.max_parties,
        enforce,
    })
}

/// A reservation about to be written, seated provisionally on the first candidate.
fn provisional(mut r: Reservation, candidates: &[Seating]) -> Reservation {
    r.seat(&candidates[0]);
    r
}

pub fn validate_guest(g: &Guest) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if let Some(problem) = text::name_problem(&g.name) {
        errs.push(FieldError::new("guest.name", problem));
    }
    if let Some(e) = &g.email {
        // One `@` between a local part and a domain of dot-separated labels; nothing a mail
        // header or a log line could be split on (spaces, controls, commas, angle brackets).
        // ASCII only, and a domain name, not a `[literal]`: what every relay can send to
        // (an address in UTF-8 needs SMTPUTF8, which many relays lack).
        let ok = e.len() <= 254
            && e.is_ascii()
            && !e.contains(['[', ']'])
            && !e
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || ",;<>\"".contains(c))
            && e.split_once('@').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.contains('@')
                    && b.contains('.')
                    && b.split('.').all(|label| !label.is_empty())
            })
            // What the mailer accepts, so that no confirmed diner is left without their mail.
            && e.parse::<lettre::Address>().is_ok();
        if !ok {
            errs.push(FieldError::new("guest.email", "is not an email address"));
        }
    }
    if let Some(p) = &g.phone {
        let digits = p.chars().filter(|c| c.is_ascii_digit()).count();
        let ok = (5..=20).contains(&digits)
            && p.len() <= 40
            && p.chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if !ok {
            errs.push(FieldError::new("guest.phone", "is not a phone number"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

impl Booking {
    async fn alternatives(
        &self,
        r: &Restaurant,
        date: LocalDate,
        p: PartySize,
        requested: DateTime<Utc>,
        seen: Seen,
    ) -> BookingResult<Vec<SlotCount>> {
        let day = self.loser_days.day(&self.store, r.id, date, seen).await?;
        let slots = availability::availability(r, date, p, Self::now(), &day.reservations);
        Ok(availability::alternatives(&slots, requested))
    }

    /// A refused hold or walk-in's answer, with the nearest free starts.
    async fn refused(
        &self,
        r: &Restaurant,
        (date, party, start): (LocalDate, PartySize, DateTime<Utc>),
        seen: Seen,
        reason: LostReason,
    ) -> BookingError {
        match self.alternatives(r, date, party, start, seen).await {
            Ok(alternatives) => BookingError::SlotUnavailable {
                alternatives,
                reason,
            },
            Err(e) => e,
        }
    }

    /// Takes a hold: the store's conditional write decides; a loser hears `SlotUnavailable` at once.
    #[tracing::instrument(name = "booking.hold", skip_all, fields(restaurant = %req.restaurant_id, date = %req.date, time = %req.time, party = req.party_size.get()))]
    pub async fn hold(&self, req: HoldRequest) -> BookingResult<(Reservation, String)> {
        let token = crate::token::generate();
        let extras = Extras {
            token: Some(&token),
            cap: req.cap.clone(),
            idem: req.idem.as_ref(),
        };
        let outcome = self
            .insert(req.restaurant_id, extras, |r, now| {
                let slot = check_start(r, req.date, req.time, req.party_size, now)?;
                let asked = Asked::of(req.table_id.as_ref(), req.combination_id.as_ref())?;
                let options = candidates(r, req.party_size, asked)?;
                let pacing = pacing_check(r, slot.time, true);
                let reservation = provisional(
                    Reservation {
                        id: crate::domain::ids::new_id(),
                        restaurant_id: r.id,
                        table_id: options[0].first().clone(),
                        table_ids: Vec::new(),
                        combination_id: None,
                        date: req.date,
                        time: slot.time,
                        start: slot.start,
                        end: slot.end,
                        party_size: req.party_size.get(),
                        status: Status::Held,
                        // A hold lasts `hold_seconds`, and never past its start: a time that
                        // has come cannot be booked (it reads expired then, and confirming it
                        // is `410`).
                        expires_at: Some(
                            (now + chrono::Duration::seconds(i64::from(r.hold_seconds)))
                                .min(slot.start),
                        ),
                        guest: None,
                        notes: String::new(),
                        created_at: now,
                        updated_at: now,
                    },
                    &options,
                );
                Ok((reservation, options, pacing))
            })
            .await;
        self.metrics.hold_outcome(match &outcome {
            Ok(_) => "won",
            Err(BookingError::SlotUnavailable {
                reason: LostReason::Table,
                ..
            }) => "lost",
            Err(BookingError::SlotUnavailable { .. }) => "paced",
            Err(BookingError::LiveHoldCap) => "capped",
            Err(BookingError::Validation(_)) | Err(BookingError::NotFound(_)) => "invalid",
            Err(_) => "error",
        });
        Ok((outcome?, token))
    }

    /// Seats a walk-in party now on the best free table.
    #[tracing::instrument(name = "booking.walk_in", skip_all, fields(restaurant = %req.restaurant_id, party = req.party_size.get()))]
    pub async fn walk_in(&self, req: WalkInRequest) -> BookingResult<Reservation> {
        if let Some(g) = &req.guest {
            validate_guest(g).map_err(BookingError::Validation)?;
        }
        let extras = Extras {
            token: None,
            cap: None,
            idem: req.idem.as_ref(),
        };
        self.insert(req.restaurant_id, extras, |r, now| {
            let start = now
                - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
                - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&now)));
            let asked = Asked::of(req.table_id.as_ref(), req.combination_id.as_ref())?;
            let options = candidates(r, req.party_size, asked)?;
            let time = local_time_of(r.tz(), start);
            // Walk-ins count in their window but pacing never refuses them.
            let pacing = pacing_check(r, time, false);
            let reservation = provisional(
                Reservation {
                    id: crate::domain::ids::new_id(),
                    restaurant_id: r.id,
                    table_id: options[0].first().clone(),
                    table_ids: Vec::new(),
                    combination_id: None,
                    date: local_date_of(r.tz(), start),
                    time,
                    start,
                    end: start + r.turn(req.party_size),
                    party_size: req.party_size.get(),
                    status: Status::Seated,
                    expires_at: None,
                    guest: req.guest.clone(),
                    notes: String::new(),
                    created_at: now,
                    updated_at: now,
                },
                &options,
            );
            Ok((reservation, options, pacing))
        })
        .await
    }

    async fn insert<F>(
        &self,
        restaurant_id: Uuid,
        extras: Extras<'_>,
        build: F,
    ) -> BookingResult<Reservation>
    where
        F: Fn(
            &Restaurant,
            DateTime<Utc>,
        ) -> BookingResult<(Reservation, Vec<Seating>, Option<PacingCheck>)>,
    {
        for attempt in 0..STALE_RETRIES {
            // The store may answer from what it last read: the write checks the revision, and a
            // stale one is read again as last committed.
            let mut stored = if attempt == 0 {
                self.store
                    .restaurant_for_insert(restaurant_id)
                    .await?
                    .ok_or(BookingError::NotFound("restaurant"))?
            } else {
                Arc::new(self.load(restaurant_id).await?)
            };
            let now = Self::now();
            let (reservation, candidates, pacing) = match build(&stored.restaurant, now) {
                Ok(built) => built,
                // The store's copy may predate a change committed since (on this instance or
                // another): a request is refused for the settings only as last committed.
                Err(refused) if attempt == 0 => {
                    let fresh = self.load(restaurant_id).await?;
                    if fresh.revision == stored.revision {
                        return Err(refused);
                    }
                    stored = Arc::new(fresh);
                    build(&stored.restaurant, now)?
                }
                Err(refused) => return Err(refused),
            };
            let cause = match reservation.status {
                Status::Held => Cause::Held,
                _ => Cause::WalkIn,
            };
            let (date, party, start) = (
                reservation.date,
                PartySize::new(i64::from(reservation.party_size))?,
                reservation.start,
            );
            let (seen, reason) = match self
                .store
                .insert_reservation(NewReservation {
                    reservation,
                    candidates,
                    pacing,
                    restaurant_revision: stored.revision,
                    token_hash: extras.token.map(crate::token::hash),
                    now,
                    cap: extras.cap.clone(),
                    idem: extras.idem.map(|i| i.record(extras.token)),
                })
                .await?
            {
                InsertOutcome::Won {
                    reservation,
                    versions,
                } => {
                    extras.idem.iter().for_each(|i| i.mark_recorded());
                    let image = Image::new(vec![reservation.clone()], Vec::new());
                    self.publish(restaurant_id, cause, now, versions, Some(image));
                    return Ok(reservation);
                }
                InsertOutcome::Lost { seen } => (seen, LostReason::Table),
                InsertOutcome::Paced { seen } => (seen, LostReason::Pacing),
                InsertOutcome::OverCap => return Err(BookingError::LiveHoldCap),
                InsertOutcome::Stale => continue,
            };
            let at = (date, party, start);
            return Err(self.refused(&stored.restaurant, at, seen, reason).await);
        }
        Err(BookingError::Conflict(
            "the restaurant is being changed concurrently; try again".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_need_a_name_and_well_formed_contacts() {
        let g = |name: &str, email: Option<&str>, phone: Option<&str>| Guest {
            name: name.into(),
            email: email.map(Into::into),
            phone: phone.map(Into::into),
        };
        assert!(validate_guest(&g(
            "Ada",
            Some("ada@example.com"),
            Some("+33 1 23 45 67 89")
        ))
        .is_ok());
        assert!(validate_guest(&g(" ", None, None)).is_err());
        assert!(validate_guest(&g("Ada", Some("nope"), None)).is_err());
        for bad in [
            "eve\r\nBcc: x@evil.com\r\n@example.com",
            "a,b@c.com",
            "a b@c.d",
            "a@.com",
            "a@b..com",
            "a@b@c.com",
            "<a@b.com>",
            // Refused by the mailer (lettre), so refused here: the diner would never get mail.
            "a(b)@example.com",
            "a..b@example.com",
            "ad[a]@example.com",
            "a@-ex.com",
        ] {
            assert!(
                validate_guest(&g("Ada", Some(bad), None)).is_err(),
                "{bad:?}"
            );
        }
        assert!(validate_guest(&g("Ada\0", None, None)).is_err());
        // Nothing to show, or text that would run backwards or break the mail's lines.
        for name in ["\u{200B}", "Ada\u{2028}Bcc", "\u{202E}adA"] {
            assert!(validate_guest(&g(name, None, None)).is_err(), "{name:?}");
        }
        assert!(validate_guest(&g("Zoë Ørsted", Some("zoe.o+tc@mail.example.fr"), None)).is_ok());
        assert!(validate_guest(&g("Ada", None, Some("call me"))).is_err());
        // Bounded as a whole, not only in its digits.
        let padded = format!("+{}1-2-3-4-5", " ".repeat(40));
        assert!(validate_guest(&g("Ada", None, Some(&padded))).is_err());
        assert!(validate_guest(&g("Ada", None, Some("+33 (0)1 23 45 67 89"))).is_ok());
    }
}
