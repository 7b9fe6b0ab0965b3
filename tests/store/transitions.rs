use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use futures_util::future::join_all;
use std::collections::HashSet;
use tablecast::domain::reservation::{Guest, Status};
use tablecast::store::{Transition, TransitionOutcome};

contract!(
    a_confirm_is_conditional_on_the_status_and_happens_once,
    a_hold_past_expiry_cannot_be_confirmed,
    a_hold_taken_over_after_expiry_cannot_be_confirmed_by_a_clock_running_behind,
    releasing_a_hold_or_cancelling_a_booking_frees_the_table_at_once,
    a_cancelled_booking_leaves_the_day_for_the_floor_and_the_staff_list,
    completing_early_frees_the_rest_of_the_table,
    each_due_hold_is_expired_exactly_once_across_concurrent_sweepers,
);

async fn a_confirm_is_conditional_on_the_status_and_happens_once(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Confirmé").await;
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let now = morning() + Duration::seconds(10);
    let guest = Guest {
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
    };
    let confirm = Transition {
        guest: Some(guest.clone()),
        notes: Some("window".into()),
        ..transition(h.id, Status::Held, Status::Confirmed, now)
    };
    let c = done(s.transition(confirm.clone()).await.unwrap());
    assert_eq!(c.status, Status::Confirmed);
    assert_eq!(
        (c.guest.as_ref(), c.notes.as_str()),
        (Some(&guest), "window")
    );
    assert_eq!(
        (c.expires_at, c.updated_at, c.created_at),
        (None, now, h.created_at)
    );
    assert_eq!(s.reservation(h.id).await.unwrap(), Some(c.clone()));

    match s.transition(confirm).await.unwrap() {
        TransitionOutcome::Conflict(Some(cur)) => assert_eq!(cur, c),
        other => panic!("{other:?}"),
    }
    let unknown = transition(uuid::Uuid::new_v4(), Status::Held, Status::Confirmed, now);
    assert!(matches!(
        s.transition(unknown).await.unwrap(),
        TransitionOutcome::Conflict(None)
    ));
    // The confirmed booking keeps its table, now with no expiry at all.
    let far = now + Duration::days(1);
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 30), 30), &["t1"], 1, far)).await
    ));
}

async fn a_hold_past_expiry_cannot_be_confirmed(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Trop tard").await;
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let late = transition(h.id, Status::Held, Status::Confirmed, h.expires_at.unwrap());
    match s.transition(late).await.unwrap() {
        TransitionOutcome::Conflict(Some(cur)) => {
            assert_eq!(cur.status_at(h.expires_at.unwrap()), Status::Expired)
        }
        other => panic!("{other:?}"),
    }
}

async fn a_hold_taken_over_after_expiry_cannot_be_confirmed_by_a_clock_running_behind(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Horloges").await;
    let (a, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let expiry = a.expires_at.unwrap();
    // An instance whose clock reached the expiry gives the table to someone else...
    let taker = reservation(&r, at(19, 0), 90, 2, Status::Held, expiry);
    let (taker, _) = won(s, new(taker, &["t1"], 1, expiry)).await;
    // ...and one whose clock is a little behind must not confirm the first hold over it.
    let behind = expiry - Duration::milliseconds(5);
    let late = transition(a.id, Status::Held, Status::Confirmed, behind);
    match s.transition(late).await.unwrap() {
        TransitionOutcome::Conflict(Some(cur)) => {
            assert_eq!(cur.status_at(behind), Status::Expired)
        }
        other => panic!("{other:?}"),
    }
    assert_ne!(
        s.reservation(a.id).await.unwrap().unwrap().status,
        Status::Confirmed
    );
    let taker_now = s.reservation(taker.id).await.unwrap().unwrap();
    assert_eq!(
        (taker_now.status, taker_now.table_id),
        (Status::Held, table("t1"))
    );
}

async fn releasing_a_hold_or_cancelling_a_booking_frees_the_table_at_once(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Libre").await;
    let now = morning();
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    let released = done(
        s.transition(transition(h.id, Status::Held, Status::Released, now))
            .await
            .unwrap(),
    );
    assert_eq!(
        (released.status, released.expires_at),
        (Status::Released, None)
    );
    let (h2, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    done(
        s.transition(transition(h2.id, Status::Held, Status::Confirmed, now))
            .await
            .unwrap(),
    );
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await
    ));
    let cancel = transition(h2.id, Status::Confirmed, Status::Cancelled, now);
    assert_eq!(
        done(s.transition(cancel.clone()).await.unwrap()).status,
        Status::Cancelled
    );
    assert!(matches!(
        s.transition(cancel).await.unwrap(),
        TransitionOutcome::Conflict(Some(_))
    ));
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
}

/// A cancelled booking is out of every day read (availability, holds and live reloads pay for
/// live reservations, not for cancellations), read only by the floor (`cancelled_on`), the
/// staff list and its own id. On DynamoDB its item left the day's key range.
async fn a_cancelled_booking_leaves_the_day_for_the_floor_and_the_staff_list(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Annulé").await;
    let now = morning();
    let (kept, _) = won(s, new(hold_at(&r, at(18, 0), 60), &["t2"], 1, now)).await;
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    done(
        s.transition(transition(h.id, Status::Held, Status::Confirmed, now))
            .await
            .unwrap(),
    );
    done(
        s.transition(transition(h.id, Status::Confirmed, Status::Cancelled, now))
            .await
            .unwrap(),
    );
    let ids = |v: &[tablecast::domain::Reservation]| v.iter().map(|x| x.id).collect::<Vec<_>>();
    // The next date's read covers this one too (a reservation may run past midnight).
    for date in [day(), day().succ()] {
        assert_eq!(
            ids(&s.day(r.id, date).await.unwrap().reservations),
            [kept.id]
        );
    }
    let cancelled = s.cancelled_on(r.id, day()).await.unwrap();
    assert_eq!(
        cancelled
            .iter()
            .map(|x| (x.id, x.status))
            .collect::<Vec<_>>(),
        [(h.id, Status::Cancelled)]
    );
    assert!(s.cancelled_on(r.id, day().succ()).await.unwrap().is_empty());
    let listed: Vec<Status> = s
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .iter()
        .filter(|x| x.id == h.id)
        .map(|x| x.status)
        .collect();
    assert_eq!(listed, [Status::Cancelled]);
    assert_eq!(
        s.reservation(h.id).await.unwrap().map(|x| x.status),
        Some(Status::Cancelled)
    );
    if let Some(table) = b.dynamo_table() {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let out = aws_sdk_dynamodb::Client::new(&sdk)
            .query()
            .table_name(table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("R#{}", r.id)),
            )
            .send()
            .await
            .unwrap();
        let at: Vec<&str> = out
            .items()
            .iter()
            .map(|i| i["sk"].as_s().unwrap().as_str())
            .filter(|sk| sk.ends_with(&h.id.to_string()))
            .collect();
        assert_eq!(at, [format!("CX#{}#R#{}", day(), h.id)]);
    }
}

/// A booking cancelled by a version before cancelled ones left the day's range is still under
/// `D#`, its pointer without `cx` (made here by moving a cancelled item back, as that version
/// left it): the day read drops it, and the floor, the staff list and its id still find it.
#[tokio::test]
async fn a_booking_cancelled_before_cancellations_left_the_day_is_still_on_the_floor() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let Some(b) = Backend::dynamo("a_booking_cancelled_before_cancellations_left_the_day").await
    else {
        return;
    };
    let s = &b.store;
    let r = created(s, "Jadis").await;
    let now = morning();
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    for (from, to) in [
        (Status::Held, Status::Confirmed),
        (Status::Confirmed, Status::Cancelled),
    ] {
        done(s.transition(transition(h.id, from, to, now)).await.unwrap());
    }
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = b.dynamo_table().unwrap();
    let (pk, moved) = (format!("R#{}", r.id), format!("CX#{}#R#{}", day(), h.id));
    let key = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), A::S(pk.to_owned())),
            ("sk".to_owned(), A::S(sk.to_owned())),
        ])
    };
    let mut item = client
        .get_item()
        .table_name(table)
        .set_key(Some(key(&pk, &moved)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the cancelled item");
    item.insert("sk".into(), A::S(format!("D#{}#R#{}", day(), h.id)));
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    client
        .delete_item()
        .table_name(table)
        .set_key(Some(key(&pk, &moved)))
        .send()
        .await
        .unwrap();
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key(&format!("X#{}", h.id), "X")))
        .update_expression("REMOVE cx")
        .send()
        .await
        .unwrap();

    assert!(s.day(r.id, day()).await.unwrap().reservations.is_empty());
    let floor = s.cancelled_on(r.id, day()).await.unwrap();
    assert_eq!(floor.iter().map(|x| x.id).collect::<Vec<_>>(), [h.id]);
    let listed = s.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [h.id]);
    assert_eq!(
        s.reservation(h.id).await.unwrap().map(|x| x.status),
        Some(Status::Cancelled)
    );
    // Its time stays free.
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
}

async fn completing_early_frees_the_rest_of_the_table(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Vite").await;
    let now = morning();
    let walk_in = reservation(&r, at(19, 3), 150, 2, Status::Seated, now);
    let (w, _) = won(s, new(walk_in, &["t1"], 1, now)).await;
    let complete = Transition {
        end: Some(at(19, 45)),
        ..transition(w.id, Status::Seated, Status::Completed, now)
    };
    let c = done(s.transition(complete).await.unwrap());
    assert_eq!(
        (c.status, c.start, c.end),
        (Status::Completed, at(19, 3), at(19, 45))
    );
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 30), 90), &["t1"], 1, now)).await
    ));
    won(s, new(hold_at(&r, at(19, 45), 90), &["t1"], 1, now)).await;

    // A no-show ending where it starts occupies nothing.
    let (h, _) = won(s, new(hold_at(&r, at(22, 0), 90), &["t2"], 1, now)).await;
    done(
        s.transition(transition(h.id, Status::Held, Status::Confirmed, now))
            .await
            .unwrap(),
    );
    let no_show = Transition {
        end: Some(at(22, 0)),
        ..transition(h.id, Status::Confirmed, Status::NoShow, now)
    };
    assert_eq!(done(s.transition(no_show).await.unwrap()).end, at(22, 0));
    won(s, new(hold_at(&r, at(22, 0), 90), &["t2"], 1, now)).await;
}

async fn each_due_hold_is_expired_exactly_once_across_concurrent_sweepers(b: &Backend) {
    let other = b.another_instance().await;
    let s = &b.store;
    let r = created(s, "Balai").await;
    let mut due = HashSet::new();
    for (i, t) in ["t1", "t2", "t3"].iter().enumerate() {
        for k in 0..2 {
            let start = at(18 + k * 2, 0) + Duration::minutes(i as i64);
            let (h, _) = won(s, new(hold_at(&r, start, 90), &[t], 1, morning())).await;
            due.insert(h.id);
        }
    }
    let mut fresh = hold_at(&r, at(22, 30), 30);
    fresh.expires_at = Some(morning() + Duration::hours(1));
    let (fresh, _) = won(s, new(fresh, &["t1"], 1, morning())).await;
    let (confirmed, _) = won(s, new(hold_at(&r, at(22, 30), 30), &["t2"], 1, morning())).await;
    done(
        s.transition(transition(
            confirmed.id,
            Status::Held,
            Status::Confirmed,
            morning(),
        ))
        .await
        .unwrap(),
    );

    let sweep_at = morning() + Duration::seconds(301);
    let sweeps = (0..4).map(|i| {
        let store = if i % 2 == 0 { s } else { &other };
        store.expire_due(sweep_at, 100)
    });
    let mut seen = Vec::new();
    for out in join_all(sweeps).await {
        for (res, versions) in out.unwrap() {
            assert_eq!(res.status, Status::Expired);
            // It changed when it expired, before the sweep recorded it.
            assert_eq!(Some(res.updated_at), res.expires_at);
            assert!(res.updated_at < sweep_at);
            assert!(version_of(&versions, res.date) > 0);
            seen.push(res.id);
        }
    }
    seen.sort();
    let mut expected: Vec<_> = due.into_iter().collect();
    expected.sort();
    assert_eq!(seen, expected, "every due hold once, and only those");
    assert!(s.expire_due(sweep_at, 100).await.unwrap().is_empty());
    assert_eq!(
        s.reservation(fresh.id).await.unwrap().unwrap().status,
        Status::Held
    );
    assert_eq!(
        s.reservation(confirmed.id).await.unwrap().unwrap().status,
        Status::Confirmed
    );
}
