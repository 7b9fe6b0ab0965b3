//! DynamoDB only: the items of the waitlist's transactions, read from every
//! `TransactWriteItems` through the fault-injection connector. An offer is one transaction
//! holding the entry and the hold's own items (table check, reservation, every cell); a
//! confirm books the entry and a leave releases the offer in the transition's own transaction;
//! a mailed offer and its pass each carry their mail record.
use crate::faults::{stores, transaction_keys, Inject, TX};
use crate::fixtures::*;
use crate::waitlist_races::{joined, offer_on};
use std::collections::BTreeSet;
use tablecast::domain::reservation::Status;
use tablecast::domain::waitlist::WaitStatus;
use tablecast::store::{MailIntent, MailKind, NewOffer, OfferOutcome, TransitionOutcome};

type Key = (String, String);

fn keys_of(body: &serde_json::Value) -> BTreeSet<(String, Key)> {
    transaction_keys(body).into_iter().collect()
}

#[tokio::test]
async fn an_offer_is_one_transaction_with_the_entry_the_table_check_and_every_cell() {
    let Some((plain, faulty, faults)) = stores("waitlist_offer_items").await else {
        return;
    };
    let r = created(&plain, "Liste").await;
    let e = joined(&plain, &r, 0).await;
    let out = faulty.offer(offer_on(&r, e.id, "t2")).await.unwrap();
    let OfferOutcome::Offered { reservation, .. } = out else {
        panic!("expected an offer, got {out:?}");
    };
    let sent = faults.transactions();
    assert_eq!(sent.len(), 1, "one transaction per offer");
    let keys = keys_of(&sent[0]);
    let entry_key = (format!("W#{}", r.id), format!("{}#{}", day(), e.id));
    assert!(
        keys.contains(&("Update".into(), entry_key.clone())),
        "the entry's change: {keys:?}"
    );
    let table = format!("O#{}#t2", r.id);
    assert!(keys.contains(&("ConditionCheck".into(), (table.clone(), "T".into()))));
    let cells = keys
        .iter()
        .filter(|(kind, (pk, sk))| kind == "Update" && *pk == table && sk != "T")
        .count();
    assert_eq!(cells, 6, "90 minutes from 19:00 UTC in 15-minute cells");
    assert!(keys.contains(&(
        "Put".into(),
        (
            format!("R#{}", r.id),
            format!("D#{}#R#{}", day(), reservation.id)
        )
    )));
    assert!(
        !keys.iter().any(|(_, (pk, _))| pk.starts_with("K#")),
        "an offer stores no reservation token"
    );

    // A second offer to the entry writes nothing: the entry is no longer waiting.
    let again = faulty.offer(offer_on(&r, e.id, "t3")).await.unwrap();
    assert!(
        matches!(again, OfferOutcome::NotWaiting(Some(_))),
        "{again:?}"
    );
    assert_eq!(faults.calls(TX), 1);

    // Confirming the offered hold books the entry in the confirm's own transaction.
    let done = faulty
        .transition(transition(
            reservation.id,
            Status::Held,
            Status::Confirmed,
            morning(),
        ))
        .await
        .unwrap();
    assert!(matches!(done, TransitionOutcome::Done { .. }), "{done:?}");
    let sent = faults.transactions();
    assert_eq!(sent.len(), 2);
    assert!(keys_of(&sent[1]).contains(&("Update".into(), entry_key)));
    let stored = plain.waitlist_entry(e.id).await.unwrap().unwrap();
    assert_eq!(stored.status, WaitStatus::Booked);
}

#[tokio::test]
async fn a_leave_releases_its_offer_and_leaves_in_one_transaction() {
    let Some((plain, faulty, faults)) = stores("waitlist_leave_items").await else {
        return;
    };
    let r = created(&plain, "Départ").await;
    let e = joined(&plain, &r, 0).await;
    let OfferOutcome::Offered { reservation, .. } =
        plain.offer(offer_on(&r, e.id, "t1")).await.unwrap()
    else {
        panic!("expected an offer");
    };
    faulty.leave_waitlist(e.id, morning()).await.unwrap();
    let sent = faults.transactions();
    assert_eq!(
        sent.len(),
        1,
        "one transaction for the leave and the release"
    );
    let keys = keys_of(&sent[0]);
    let entry_key = (format!("W#{}", r.id), format!("{}#{}", day(), e.id));
    assert!(keys.contains(&("Update".into(), entry_key)), "{keys:?}");
    assert!(keys.contains(&(
        "Delete".into(),
        (
            format!("R#{}", r.id),
            format!("D#{}#R#{}", day(), reservation.id)
        )
    )));
    assert!(keys
        .iter()
        .any(|(kind, (pk, sk))| kind == "Update" && *pk == format!("O#{}#t1", r.id) && sk != "T"));
    assert_eq!(
        plain.waitlist_entry(e.id).await.unwrap().unwrap().status,
        WaitStatus::Left
    );
    let res = plain.reservation(reservation.id).await.unwrap().unwrap();
    assert_eq!(res.status, Status::Released);
}

#[tokio::test]
async fn an_offer_whose_answer_is_lost_or_that_meets_a_conflict_is_made_exactly_once() {
    let Some((plain, faulty, faults)) = stores("waitlist_offer_faults").await else {
        return;
    };
    let r = created(&plain, "Perdu").await;
    for (i, fault) in [
        Inject::CommitThen500,
        Inject::CommitThenTimeout,
        Inject::Conflict,
    ]
    .into_iter()
    .enumerate()
    {
        let e = joined(&plain, &r, i as i64).await;
        faults.inject(TX, fault.clone(), 1);
        let table = ["t1", "t2", "t3"][i];
        let out = faulty.offer(offer_on(&r, e.id, table)).await.unwrap();
        let OfferOutcome::Offered {
            reservation, entry, ..
        } = out
        else {
            panic!("{fault:?}: expected an offer, got {out:?}");
        };
        let stored = plain.waitlist_entry(e.id).await.unwrap().unwrap();
        assert_eq!(stored.status, WaitStatus::Offered, "{fault:?}");
        assert_eq!(stored.offer, entry.offer, "{fault:?}");
        assert_eq!(
            stored.offer.unwrap().reservation_id,
            reservation.id,
            "{fault:?}"
        );
    }
    let day = plain.day(r.id, day()).await.unwrap();
    let held = day
        .reservations
        .iter()
        .filter(|x| x.status == Status::Held)
        .count();
    assert_eq!(held, 3, "one hold per offer, none twice");
}

#[tokio::test]
async fn a_join_or_a_leave_whose_answer_is_lost_is_done_exactly_once() {
    let Some((plain, faulty, faults)) = stores("waitlist_join_faults").await else {
        return;
    };
    let r = created(&plain, "Rejoint").await;
    faults.inject(TX, Inject::CommitThen500, 1);
    let e = joined(&faulty, &r, 0).await;
    let queue = plain.waitlist_on(r.id, day()).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].id, e.id);
    faults.inject(TX, Inject::CommitThenTimeout, 1);
    let out = faulty.leave_waitlist(e.id, morning()).await.unwrap();
    assert!(
        matches!(out, tablecast::store::LeaveOutcome::Left { .. }),
        "a leave that landed is answered as done: {out:?}"
    );
    assert_eq!(
        plain.waitlist_entry(e.id).await.unwrap().unwrap().status,
        WaitStatus::Left
    );
}

#[tokio::test]
async fn a_mailed_offer_and_its_pass_each_carry_their_mail_once_even_when_the_answer_is_lost() {
    let Some((plain, faulty, faults)) = stores("waitlist_mail_items").await else {
        return;
    };
    let r = created(&plain, "Courrier perdu").await;
    let e = joined(&plain, &r, 0).await;
    let mail = MailIntent::new(MailKind::WaitlistOffer, "grace@example.com");
    faults.inject(TX, Inject::CommitThenTimeout, 1);
    let o = NewOffer {
        mail: Some(mail.clone()),
        ..offer_on(&r, e.id, "t1")
    };
    let OfferOutcome::Offered { reservation, .. } = faulty.offer(o).await.unwrap() else {
        panic!("expected an offer");
    };
    let sent = faults.transactions();
    let keys = keys_of(&sent[0]);
    let entry_key = (format!("W#{}", r.id), format!("{}#{}", day(), e.id));
    assert!(
        keys.contains(&("Update".into(), entry_key.clone())),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("Put".into(), (format!("M#{}", mail.id), "M".into()))),
        "the offer's mail in the offer's transaction: {keys:?}"
    );
    assert_eq!(
        plain.outbox_pending().await.unwrap(),
        1,
        "one mail, however answered"
    );

    // The pass, its answer lost too: the entry's lapse and one lost mail, in one transaction.
    faults.inject(TX, Inject::CommitThen500, 1);
    let pass = transition(reservation.id, Status::Held, Status::Released, morning());
    let out = faulty.transition(pass).await.unwrap();
    assert!(matches!(out, TransitionOutcome::Done { .. }), "{out:?}");
    let sent = faults.transactions();
    let keys = keys_of(&sent[sent.len() - 1]);
    assert!(keys.contains(&("Update".into(), entry_key)), "{keys:?}");
    let mails = keys
        .iter()
        .filter(|(kind, (pk, _))| kind == "Put" && pk.starts_with("M#"))
        .count();
    assert_eq!(mails, 1, "{keys:?}");
    assert_eq!(plain.outbox_pending().await.unwrap(), 2);
    assert_eq!(
        plain.waitlist_entry(e.id).await.unwrap().unwrap().status,
        WaitStatus::Lapsed
    );
}

/// A release planned with an offer, on a faulty store: the offer's write meets `offer_faults`
/// (that many of that fault) and, with `lift_fails`, every write freeing the kept minutes is
/// throttled. The release is done; what the planned offer answered is returned.
async fn release_with_faults(
    test: &str,
    offer_faults: (Inject, usize),
    lift_fails: bool,
) -> Option<(
    tablecast::store::DynStore,
    tablecast::domain::Restaurant,
    uuid::Uuid,
    Option<OfferOutcome>,
)> {
    let (plain, faulty, faults) = stores(test).await?;
    let r = created(&plain, "Échec").await;
    let (h, _) = won(
        &plain,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    let e = joined(&plain, &r, 0).await;
    // The offer is the one write of the entry's item; a lift is a write of kept cells alone
    // (no reservation item, which the release and the offer write).
    let (fault, times) = offer_faults;
    faults.inject_where(TX, Some(&format!("W#{}", r.id)), None, fault, times);
    if lift_fails {
        let reservation = format!("R#{}", r.id);
        faults.inject_where(
            TX,
            Some("~kept"),
            Some(&reservation),
            Inject::Throttle,
            1000,
        );
    }
    let released_at = morning() + chrono::Duration::seconds(1);
    let (out, offered) = faulty
        .transition_offering(
            transition(h.id, Status::Held, Status::Released, released_at),
            offer_on(&r, e.id, "t1"),
        )
        .await
        .unwrap();
    assert!(matches!(out, TransitionOutcome::Done { .. }), "{out:?}");
    faults.clear();
    Some((plain, r, e.id, offered))
}

#[tokio::test]
async fn on_dynamodb_a_planned_offer_that_meets_a_conflict_or_a_throttle_is_still_made() {
    for (i, fault) in [Inject::Conflict, Inject::Throttle].into_iter().enumerate() {
        let Some((plain, _, entry, offered)) = release_with_faults(
            &format!("keep_offer_retried_{i}"),
            (fault.clone(), 1),
            false,
        )
        .await
        else {
            return;
        };
        // Retried over its own keep, not taken for a loss to it.
        assert!(
            matches!(offered, Some(OfferOutcome::Offered { .. })),
            "{fault:?}: {offered:?}"
        );
        let e = plain.waitlist_entry(entry).await.unwrap().unwrap();
        assert_eq!(e.status, WaitStatus::Offered, "{fault:?}");
    }
}

#[tokio::test]
async fn on_dynamodb_a_planned_offer_that_fails_frees_every_kept_minute_at_once() {
    let Some((plain, r, entry, offered)) =
        release_with_faults("keep_offer_fails", (Inject::Throttle, 1000), false).await
    else {
        return;
    };
    assert!(offered.is_none(), "a failed offer is no offer: {offered:?}");
    assert_eq!(
        plain.waitlist_entry(entry).await.unwrap().unwrap().status,
        WaitStatus::Waiting
    );
    // Two seconds after the release, long before the keep's 10 s: the minutes are public.
    let soon = morning() + chrono::Duration::seconds(2);
    won(&plain, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, soon)).await;
}

#[tokio::test]
async fn on_dynamodb_kept_minutes_that_could_not_be_freed_lapse_by_themselves() {
    let Some((plain, r, entry, offered)) =
        release_with_faults("keep_lift_fails", (Inject::Throttle, 1000), true).await
    else {
        return;
    };
    assert!(offered.is_none(), "{offered:?}");
    // The offer failed and so did every lift: the mark still blocks a public hold …
    let soon = morning() + chrono::Duration::seconds(2);
    let blocked = insert(&plain, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, soon)).await;
    assert!(is_lost(&blocked), "{blocked:?}");
    // … until the keep lapses, 10 s after the release, with nothing else written.
    let later = morning() + chrono::Duration::seconds(12);
    won(&plain, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, later)).await;
    let e = plain.waitlist_entry(entry).await.unwrap().unwrap();
    assert_eq!(e.status, WaitStatus::Waiting);
}
