//! The waitlist's store shapes. Every decision below is ONE atomic write (SQLite: one
//! transaction; DynamoDB: one `TransactWriteItems` whose items are the entry, the table cells
//! and the pacing window of the hold, with conditions), so any number of instances and
//! concurrent frees can race on them safely.
//!
//! Follow-ups the existing writes make for an offered reservation (the entry names it in
//! `offer.reservation_id`; SQLite finds the entry by that column, DynamoDB may keep the entry id
//! on the reservation item), in the same atomic write as the change:
//! - `transition` `held → confirmed`: the entry, if `offered` with this reservation, becomes
//!   `booked`;
//! - `transition` `held → released`, `expire_due`, and any write that marks the hold `expired`
//!   on its way (a hold over it): the entry, if `offered` with this reservation, becomes
//!   `lapsed`.
//!
//! The entry's date version is raised by those writes already (its reservation's date). An
//! `offered` entry whose `offer.expires_at` has passed reads as `lapsed` at once
//! ([`WaitlistEntry::status_at`]), swept or not, exactly as its hold reads as `expired`.
//! Retention (`purge`) also deletes `lapsed` and `left` entries last changed before its
//! cut-off, and every entry whose date is before the cut-off's date, with their tokens.
use super::{NewReservation, Versions};
use crate::domain::waitlist::WaitlistEntry;
use crate::domain::{LocalDate, Reservation};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A new entry, `waiting`, with no offer. Its `created_at` is its place in the queue.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub entry: WaitlistEntry,
    /// The hash of the entry's bearer token (never the token).
    pub token_hash: String,
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum JoinOutcome {
    /// Written, with the raised version of the entry's date.
    Joined {
        entry: WaitlistEntry,
        versions: Versions,
    },
    /// The restaurant no longer exists.
    Gone,
}

/// A restaurant/date with `waiting` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingDay {
    pub restaurant_id: Uuid,
    pub date: LocalDate,
    /// `created_at` of its oldest `waiting` entry.
    pub oldest: DateTime<Utc>,
}

/// An offer: a hold for one `waiting` entry, decided in ONE atomic write, in this order:
///
/// 1. `hold.restaurant_revision` still current, else [`OfferOutcome::Stale`];
/// 2. the entry `entry_id` is still `waiting` (a condition on the entry), else
///    [`OfferOutcome::NotWaiting`] with the entry as it is now — so no entry ever holds two
///    offers, and of two instances offering to the same entry exactly one wins;
/// 3. the first of `hold.candidates` whose every member table is free, exactly as
///    `insert_reservation` decides it (expired holds free, all members or none), else
///    [`OfferOutcome::Lost`];
/// 4. `hold.pacing` as for a hold (always enforced for an offer), else [`OfferOutcome::Paced`].
///
/// On a win, in that same write: the reservation `hold.reservation` (status `held`, its
/// `expires_at` = now + the restaurant's `offer_seconds`, no guest) is inserted seated on the
/// claimed option and remembers `entry_id`; no reservation token is stored (the entry's token
/// owns it through the entry); the entry becomes `offered` with
/// `offer = {reservation_id, time, expires_at}` and `updated_at = hold.now`; the versions of
/// the reservation's dates are raised. `hold.cap`, `hold.idem` and `hold.token_hash` are
/// always `None`.
///
/// Because the offer is a hold on the freed tables, concurrent offers of one freed capacity
/// are decided like concurrent holds: exactly one wins, whatever the number of instances.
///
/// `mail` (a [`MailKind::WaitlistOffer`](super::MailKind) to the entry's address): on a win,
/// the same write puts it in the outbox — its snapshot is the offered reservation with the
/// entry's guest — and remembers the address on the entry. Every later write that lapses that
/// entry (a release of the offer, its expiry, swept or expired on a hold's way) then puts one
/// [`MailKind::OfferLost`](super::MailKind) to that address in the outbox in its own atomic
/// write (snapshot: the reservation as released or expired, with the entry's guest). A leave
/// (`left`) is the diner's own act and mails nothing.
#[derive(Debug, Clone)]
pub struct NewOffer {
    pub entry_id: Uuid,
    pub hold: NewReservation,
    pub mail: Option<super::MailIntent>,
}

impl NewOffer {
    /// The offer's parts, its hold made what every store decides an offer as: a plain hold,
    /// with no cap, no token and no idempotent answer, whose pacing window is enforced.
    pub fn plain(self) -> (Uuid, NewReservation, Option<super::MailIntent>) {
        let NewOffer {
            entry_id,
            mut hold,
            mail,
        } = self;
        (hold.cap, hold.idem, hold.token_hash) = (None, None, None);
        if let Some(p) = hold.pacing.as_mut() {
            p.enforce = true;
        }
        (entry_id, hold, mail)
    }
}

// Returned once per write; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum OfferOutcome {
    Offered {
        entry: WaitlistEntry,
        reservation: Reservation,
        versions: Versions,
    },
    /// The entry is not `waiting` (any more): here it is, or `None` if it is gone.
    NotWaiting(Option<WaitlistEntry>),
    /// Every candidate seating option is taken.
    Lost,
    /// Pacing refuses the party.
    Paced,
    /// The restaurant changed since it was read.
    Stale,
}

/// `leave_waitlist(id, now)`, one atomic write: a `waiting` entry becomes `left`; an `offered`
/// one becomes `left` AND its offered reservation, if still `held` and not past `expires_at`,
/// becomes `released` (the offer is declined), raising the versions of its dates. Any other
/// status changes nothing and answers [`LeaveOutcome::Unchanged`]. A change raises the version
/// of the entry's date (and of the released reservation's dates).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LeaveOutcome {
    Left {
        entry: WaitlistEntry,
        /// The released offer, when one was declined.
        released: Option<Reservation>,
        versions: Versions,
    },
    Unchanged(WaitlistEntry),
    NotFound,
}
