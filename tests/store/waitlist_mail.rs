//! Waitlist mail in the store: a mailed offer puts its record (with the entry's guest) in its
//! own write, and each write that lapses a mailed offer (a pass, the expiry) puts exactly one
//! `offer_lost` record; a leave, a booking and the lapse of an unmailed offer put none.
use crate::backend::Backend;
use crate::fixtures::*;
use crate::waitlist_races::{joined, offer_on};
use chrono::{DateTime, Duration, Utc};
use tablecast::domain::reservation::Status;
use tablecast::domain::waitlist::{WaitStatus, WaitlistEntry};
use tablecast::domain::{Reservation, Restaurant};
use tablecast::store::{
    DynStore, LeaveOutcome, MailIntent, MailKind, NewOffer, OfferOutcome, OutboxRecord, Settle,
    TransitionOutcome,
};

contract!(
    a_mailed_offer_puts_its_mail_and_a_pass_one_lost_mail,
    a_mailed_offer_that_expires_puts_one_lost_mail,
    leaving_or_booking_a_mailed_offer_and_an_unmailed_lapse_put_no_lost_mail,
);

const TO: &str = "grace@example.com";

/// An offer on `table` to a new entry joined at `morning + secs`, mailed when `mailed`.
async fn offered(
    s: &DynStore,
    r: &Restaurant,
    secs: i64,
    table: &str,
    mailed: bool,
) -> (WaitlistEntry, Reservation, Option<MailIntent>) {
    let e = joined(s, r, secs).await;
    let mail = mailed.then(|| MailIntent::new(MailKind::WaitlistOffer, TO));
    let o = NewOffer {
        mail: mail.clone(),
        ..offer_on(r, e.id, table)
    };
    match s.offer(o).await.unwrap() {
        OfferOutcome::Offered { reservation, .. } => (e, reservation, mail),
        other => panic!("expected an offer, got {other:?}"),
    }
}

/// The records pending at `at`, each settled as sent (so the next call sees only new ones).
async fn take(s: &DynStore, at: DateTime<Utc>) -> Vec<OutboxRecord> {
    let got = s
        .outbox_claim(at, at + Duration::seconds(60), 100)
        .await
        .unwrap();
    for m in &got {
        assert!(s.outbox_settle(m, Settle::Sent, at).await.unwrap());
    }
    got
}

async fn status(s: &DynStore, e: &WaitlistEntry) -> WaitStatus {
    s.waitlist_entry(e.id).await.unwrap().unwrap().status
}

async fn a_mailed_offer_puts_its_mail_and_a_pass_one_lost_mail(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Liste postale").await;
    let (e, res, mail) = offered(s, &r, 0, "t1", true).await;
    let mail = mail.unwrap();
    let later = morning() + Duration::hours(1);
    let got = take(s, later).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    let m = &got[0];
    assert_eq!(
        (m.id, m.kind, m.to.as_str()),
        (mail.id, MailKind::WaitlistOffer, TO)
    );
    assert_eq!(m.reservation.id, res.id);
    assert_eq!(m.reservation.status, Status::Held);
    assert_eq!(m.reservation.expires_at, res.expires_at);
    assert_eq!(
        m.reservation.guest.as_ref(),
        Some(&e.guest),
        "the entry's guest"
    );

    // The guest passes: the release lapses the entry and puts one lost mail.
    let pass = transition(res.id, Status::Held, Status::Released, morning());
    let out = s.transition(pass.clone()).await.unwrap();
    assert!(matches!(out, TransitionOutcome::Done { .. }), "{out:?}");
    assert_eq!(status(s, &e).await, WaitStatus::Lapsed);
    let got = take(s, later).await;
    assert_eq!(got.len(), 1, "one lost mail: {got:#?}");
    let m = &got[0];
    assert_eq!((m.kind, m.to.as_str()), (MailKind::OfferLost, TO));
    assert_eq!(m.reservation.id, res.id);
    assert_eq!(m.reservation.status, Status::Released);
    assert_eq!(m.reservation.guest.as_ref(), Some(&e.guest));

    // Passing again changes nothing and mails nothing.
    let again = s.transition(pass).await.unwrap();
    assert!(
        !matches!(again, TransitionOutcome::Done { .. }),
        "{again:?}"
    );
    assert!(take(s, later).await.is_empty());
    assert_eq!(s.outbox_pending().await.unwrap(), 0);
}

async fn a_mailed_offer_that_expires_puts_one_lost_mail(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Liste expirée").await;
    let (e, res, _) = offered(s, &r, 0, "t2", true).await;
    let deadline = res.expires_at.unwrap();
    assert!(s
        .expire_due(deadline - Duration::seconds(1), 100)
        .await
        .unwrap()
        .is_empty());
    let after = deadline + Duration::seconds(1);
    let expired = s.expire_due(after, 100).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(status(s, &e).await, WaitStatus::Lapsed);
    let got = take(s, after).await;
    assert_eq!(got.len(), 2, "the offer and its loss: {got:#?}");
    let lost: Vec<_> = got
        .iter()
        .filter(|m| m.kind == MailKind::OfferLost)
        .collect();
    assert_eq!(lost.len(), 1, "{got:#?}");
    assert_eq!(lost[0].to, TO);
    assert_eq!(lost[0].reservation.id, res.id);
    assert_eq!(lost[0].reservation.status, Status::Expired);
    assert_eq!(lost[0].reservation.guest.as_ref(), Some(&e.guest));
    // A second sweep finds nothing to expire and mails nothing.
    assert!(s.expire_due(after, 100).await.unwrap().is_empty());
    assert!(take(s, after).await.is_empty());
}

async fn leaving_or_booking_a_mailed_offer_and_an_unmailed_lapse_put_no_lost_mail(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Liste sans perte").await;
    let (left, _, _) = offered(s, &r, 0, "t1", true).await;
    let (booked, held, _) = offered(s, &r, 1, "t2", true).await;
    let (quiet, passed, _) = offered(s, &r, 2, "t3", false).await;

    let out = s.leave_waitlist(left.id, morning()).await.unwrap();
    assert!(matches!(out, LeaveOutcome::Left { .. }), "{out:?}");
    let confirm = transition(held.id, Status::Held, Status::Confirmed, morning());
    let out = s.transition(confirm).await.unwrap();
    assert!(matches!(out, TransitionOutcome::Done { .. }), "{out:?}");
    let pass = transition(passed.id, Status::Held, Status::Released, morning());
    let out = s.transition(pass).await.unwrap();
    assert!(matches!(out, TransitionOutcome::Done { .. }), "{out:?}");
    assert_eq!(
        (
            status(s, &left).await,
            status(s, &booked).await,
            status(s, &quiet).await
        ),
        (WaitStatus::Left, WaitStatus::Booked, WaitStatus::Lapsed)
    );
    let got = take(s, morning() + Duration::hours(1)).await;
    assert_eq!(got.len(), 2, "the two offers' mail only: {got:#?}");
    assert!(got.iter().all(|m| m.kind == MailKind::WaitlistOffer));
}
