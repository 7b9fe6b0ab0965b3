//! The waitlist's mail on SQLite, written inside the decision's transaction: the offer's mail
//! with the offer, and one "you've lost the offer" mail with the lapse of an offer that was
//! mailed (the entry remembers the address in `mail_to`).
use super::outbox::put_mail;
use super::rows::{db, row_to_reservation};
use crate::domain::reservation::Guest;
use crate::domain::Reservation;
use crate::store::outbox::waitlist_snapshot;
use crate::store::{MailIntent, MailKind, StoreError, StoreResult};
use chrono::DateTime;
use sqlx::{Sqlite, Transaction};

/// A waitlist mail's snapshot (`outbox::waitlist_snapshot`) at `now_ms`.
fn snapshot(r: Reservation, guest: Guest, now_ms: i64) -> Reservation {
    match DateTime::from_timestamp_millis(now_ms) {
        Some(now) => waitlist_snapshot(r, guest, now),
        None => Reservation {
            guest: Some(guest),
            ..r
        },
    }
}

fn guest_of(json: &str) -> StoreResult<Guest> {
    serde_json::from_str(json).map_err(|e| StoreError::corrupt("guest", e))
}

/// The offer's mail, in the offer's transaction.
pub(super) async fn mail_offer(
    tx: &mut Transaction<'_, Sqlite>,
    mail: &MailIntent,
    offered: &Reservation,
    guest: &Guest,
    now_ms: i64,
) -> StoreResult<()> {
    let r = snapshot(offered.clone(), guest.clone(), now_ms);
    put_mail(tx, mail, &r, now_ms).await
}

/// The lapse of an entry that was mailed its offer (`mail_to`, `guest` as stored): one
/// "lost" mail, in the lapse's transaction. `reservation` is the offered reservation as the
/// lapse left it, or `None` to read it here by `reservation_id`.
pub(super) async fn mail_lost(
    tx: &mut Transaction<'_, Sqlite>,
    to: &str,
    guest_json: &str,
    reservation: Option<Reservation>,
    reservation_id: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let r = match reservation {
        Some(r) => r,
        None => {
            let row = sqlx::query("SELECT * FROM reservations WHERE id = ?")
                .bind(reservation_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(db("read a lapsed offer"))?;
            match row {
                Some(row) => row_to_reservation(&row)?,
                // Retention took it: nothing left to say.
                None => return Ok(()),
            }
        }
    };
    let r = snapshot(r, guest_of(guest_json)?, now_ms);
    put_mail(tx, &MailIntent::new(MailKind::OfferLost, to), &r, now_ms).await
}
