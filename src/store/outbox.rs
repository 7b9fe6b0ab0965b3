//! The transactional outbox: mail to send is written in the same atomic write as the decision
//! that causes it, and delivered later by a sender that claims each record with a lease and
//! marks it sent (or failed) with a conditional write.
//!
//! A record is `pending` with a `next_at` instant: due once `next_at` has passed. A claim moves
//! `next_at` to the end of a lease, on condition that it is still the `next_at` the claimer
//! read; so of several instances exactly one claims a due record, and a claimer that dies lets
//! the lease lapse and the record fall due again. Marking it sent, or due again later after a
//! failure, is conditional on the lease still being the claimer's.
use super::StoreResult;
use crate::domain::Reservation;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a mail is about. A new kind is a variant here and a template in `mail::render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A held reservation was confirmed: the manage link and a calendar file.
    Confirmation,
    /// The diner cancelled a confirmed reservation.
    CancelledByGuest,
    /// The restaurant cancelled a confirmed reservation.
    CancelledByRestaurant,
    /// A waitlist entry was offered a held reservation: the deadline and a link that confirms.
    WaitlistOffer,
    /// A waitlist offer lapsed (expired, or released by the diner or the restaurant).
    OfferLost,
}

impl MailKind {
    pub const ALL: [MailKind; 5] = [
        MailKind::Confirmation,
        MailKind::CancelledByGuest,
        MailKind::CancelledByRestaurant,
        MailKind::WaitlistOffer,
        MailKind::OfferLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Confirmation => "confirmation",
            MailKind::CancelledByGuest => "cancelled_by_guest",
            MailKind::CancelledByRestaurant => "cancelled_by_restaurant",
            MailKind::WaitlistOffer => "waitlist_offer",
            MailKind::OfferLost => "offer_lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the mail carries a link that manages the reservation (and so a fresh token).
    pub fn has_manage_link(self) -> bool {
        matches!(self, MailKind::Confirmation | MailKind::WaitlistOffer)
    }
}

/// A mail to write with a decision: the store records it, with the decided reservation as it
/// stands after the change, in the decision's own atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIntent {
    pub id: Uuid,
    pub kind: MailKind,
    /// The recipient's address.
    pub to: String,
}

impl MailIntent {
    pub fn new(kind: MailKind, to: impl Into<String>) -> Self {
        Self {
            id: crate::domain::ids::new_id(),
            kind,
            to: to.into(),
        }
    }
}

/// A claimed outbox record: the sender owns it until `lease` (its `next_at` while claimed).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    pub id: Uuid,
    pub kind: MailKind,
    pub to: String,
    /// The reservation as the decision left it.
    pub reservation: Reservation,
    pub created_at: DateTime<Utc>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The claim's lease end, in milliseconds: the condition of `outbox_settle`.
    pub lease_ms: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    Sent,
    /// Try again at the given instant.
    RetryAt(DateTime<Utc>),
    /// Given up (a permanent refusal, or too old): kept for retention, never sent.
    Failed,
}

/// The outbox part of every store.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` due records (`next_at ≤ now`), oldest first, each until `lease_until`.
    async fn outbox_claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRecord>>;

    /// Ends an attempt, if the lease is still this claim's. `false`: another claimer has it.
    async fn outbox_settle(
        &self,
        record: &OutboxRecord,
        settle: Settle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Records not yet sent or given up (the outbox depth).
    async fn outbox_pending(&self) -> StoreResult<u64>;

    /// Adds a token for a reservation (a link token, minted as its mail is written).
    async fn add_reservation_token(
        &self,
        hash: &str,
        restaurant_id: Uuid,
        reservation_id: Uuid,
    ) -> StoreResult<()>;

    /// Retention: deletes up to `limit` records sent or given up before `before`.
    async fn outbox_purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize>;
}

/// A waitlist mail's reservation: the offered reservation as decided, with the entry's guest
/// (an offered reservation has none of its own) and its status as read at `now` (an offer past
/// its deadline is expired, swept or not).
pub fn waitlist_snapshot(
    mut r: Reservation,
    guest: crate::domain::reservation::Guest,
    now: DateTime<Utc>,
) -> Reservation {
    r.status = r.status_at(now);
    r.guest = Some(guest);
    r
}

/// The reservation snapshot a record keeps, as JSON.
pub fn snapshot(r: &Reservation) -> StoreResult<String> {
    serde_json::to_string(r).map_err(|e| super::StoreError::internal("encode a mail record", e))
}

pub fn from_snapshot(s: &str) -> StoreResult<Reservation> {
    serde_json::from_str(s).map_err(|e| super::StoreError::corrupt("mail record", e))
}
