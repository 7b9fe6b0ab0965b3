//! The outbox: mail written by the decision's own atomic write, claimed by one sender at a
//! time under a lease, settled only by the claim that holds it, purged once old.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use futures_util::future::join_all;
use tablecast::domain::reservation::{Guest, Status};
use tablecast::store::{MailIntent, MailKind, Settle, Transition, TransitionOutcome};

contract!(
    a_confirm_with_mail_puts_one_record_with_the_decided_reservation,
    a_refused_change_puts_no_mail,
    one_claimer_wins_each_due_record_and_a_lapsed_lease_frees_it,
    a_retry_waits_until_due_and_a_sent_record_is_purged_after_retention,
);

fn ada() -> Guest {
    Guest {
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
    }
}

/// A held table, confirmed with a confirmation mail; the mail's id.
async fn confirmed_with_mail(b: &Backend) -> (tablecast::domain::Reservation, MailIntent) {
    let s = &b.store;
    let r = created(s, "Courrier").await;
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let mail = MailIntent::new(MailKind::Confirmation, "ada@example.com");
    let t = Transition {
        guest: Some(ada()),
        mail: Some(mail.clone()),
        ..transition(h.id, Status::Held, Status::Confirmed, morning())
    };
    match s.transition(t).await.unwrap() {
        TransitionOutcome::Done { reservation, .. } => (reservation, mail),
        other => panic!("{other:?}"),
    }
}

async fn a_confirm_with_mail_puts_one_record_with_the_decided_reservation(b: &Backend) {
    let s = &b.store;
    let (c, mail) = confirmed_with_mail(b).await;
    assert_eq!(s.outbox_pending().await.unwrap(), 1);
    let now = morning() + Duration::seconds(1);
    let got = s
        .outbox_claim(now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(
        (m.id, m.kind, m.to.as_str()),
        (mail.id, MailKind::Confirmation, "ada@example.com")
    );
    assert_eq!(m.reservation, c, "the reservation as the decision left it");
    assert_eq!(m.attempts, 1);
    assert!(s.outbox_settle(m, Settle::Sent, now).await.unwrap());
    assert_eq!(s.outbox_pending().await.unwrap(), 0);
    let later = now + Duration::hours(1);
    assert!(s
        .outbox_claim(later, later + Duration::seconds(60), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn a_refused_change_puts_no_mail(b: &Backend) {
    let s = &b.store;
    let (c, _) = confirmed_with_mail(b).await;
    // Confirming again is refused: its mail is not written.
    let again = Transition {
        guest: Some(ada()),
        mail: Some(MailIntent::new(MailKind::Confirmation, "ada@example.com")),
        ..transition(c.id, Status::Held, Status::Confirmed, morning())
    };
    assert!(matches!(
        s.transition(again).await.unwrap(),
        TransitionOutcome::Conflict(Some(_))
    ));
    assert_eq!(s.outbox_pending().await.unwrap(), 1);
}

async fn one_claimer_wins_each_due_record_and_a_lapsed_lease_frees_it(b: &Backend) {
    let s = &b.store;
    confirmed_with_mail(b).await;
    let other = b.another_instance().await;
    let now = morning() + Duration::seconds(1);
    let lease = now + Duration::seconds(30);
    let claims = join_all((0..6).map(|i| {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        async move { st.outbox_claim(now, lease, 10).await.unwrap() }
    }))
    .await;
    let won: Vec<_> = claims.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "exactly one claimer: {won:?}");
    let first = &won[0];

    // While leased nobody else gets it; once the lease lapses another claimer does, and the
    // first claim can no longer settle it.
    let during = now + Duration::seconds(10);
    assert!(other
        .outbox_claim(during, during + Duration::seconds(30), 10)
        .await
        .unwrap()
        .is_empty());
    let after = lease + Duration::seconds(1);
    let second = other
        .outbox_claim(after, after + Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    assert!(!s.outbox_settle(first, Settle::Sent, after).await.unwrap());
    assert!(other
        .outbox_settle(&second[0], Settle::Sent, after)
        .await
        .unwrap());
    assert!(
        !other
            .outbox_settle(&second[0], Settle::Sent, after)
            .await
            .unwrap(),
        "once"
    );
}

async fn a_retry_waits_until_due_and_a_sent_record_is_purged_after_retention(b: &Backend) {
    let s = &b.store;
    let (c, _) = confirmed_with_mail(b).await;
    // A cancellation mail too: claimed in order of writing.
    let cancel = Transition {
        mail: Some(MailIntent::new(
            MailKind::CancelledByGuest,
            "ada@example.com",
        )),
        ..transition(
            c.id,
            Status::Confirmed,
            Status::Cancelled,
            morning() + Duration::seconds(5),
        )
    };
    assert!(matches!(
        s.transition(cancel).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    let now = morning() + Duration::seconds(10);
    let got = s
        .outbox_claim(now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    let kinds: Vec<_> = got.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MailKind::Confirmation, MailKind::CancelledByGuest]);
    assert_eq!(got[1].reservation.status, Status::Cancelled);

    let retry_at = now + Duration::seconds(20);
    assert!(s
        .outbox_settle(&got[0], Settle::RetryAt(retry_at), now)
        .await
        .unwrap());
    assert!(s.outbox_settle(&got[1], Settle::Failed, now).await.unwrap());
    assert_eq!(s.outbox_pending().await.unwrap(), 1);
    let early = now + Duration::seconds(19);
    assert!(s
        .outbox_claim(early, early + Duration::seconds(60), 10)
        .await
        .unwrap()
        .is_empty());
    let due = s
        .outbox_claim(retry_at, retry_at + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(s
        .outbox_settle(&due[0], Settle::Sent, retry_at)
        .await
        .unwrap());

    // Settled records go once older than the cut-off, never before.
    assert_eq!(
        s.outbox_purge(now - Duration::seconds(1), 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.outbox_purge(retry_at + Duration::seconds(1), 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.outbox_purge(retry_at + Duration::days(1), 100)
            .await
            .unwrap(),
        0
    );
}

/// A record written by an older or broken binary that this one cannot read is given up, and the
/// records after it are still claimed. (SQLite only: the test writes the bad row by hand.)
#[tokio::test]
async fn an_unreadable_record_is_given_up_and_does_not_block_the_others() {
    let b = Backend::sqlite().await;
    let pool = sqlx::SqlitePool::connect(b.sqlite_url().unwrap())
        .await
        .unwrap();
    let early = (morning() - Duration::seconds(5)).timestamp_millis();
    sqlx::query(
        "INSERT INTO outbox (id, kind, recipient, reservation, next_ms, created_ms)
         VALUES ('00000000-0000-4000-8000-000000000000', 'confirmation', 'x@example.com', '{}', ?1, ?1)",
    )
    .bind(early)
    .execute(&pool)
    .await
    .unwrap();
    let (_, mail) = confirmed_with_mail(&b).await;
    let s = &b.store;
    assert_eq!(s.outbox_pending().await.unwrap(), 2);
    let now = morning() + Duration::seconds(1);
    let got = s
        .outbox_claim(now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), [mail.id]);
    assert_eq!(
        s.outbox_pending().await.unwrap(),
        1,
        "the unreadable one is given up"
    );
}
