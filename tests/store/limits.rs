//! Limits: the per-client live-hold cap and the idempotent answer are decided in the hold's (or
//! the transition's) own atomic write.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use std::sync::Arc;
use tablecast::domain::reservation::Status;
use tablecast::domain::{Reservation, Restaurant};
use tablecast::store::{
    DynStore, HoldCap, IdemBegin, IdemRecord, InsertOutcome, NewReservation, TransitionOutcome,
};

contract!(
    of_twenty_concurrent_holds_from_one_client_with_a_cap_of_four_exactly_four_win,
    a_released_or_confirmed_hold_frees_a_cap_slot,
    an_expired_hold_frees_a_cap_slot_before_any_sweep,
    the_cap_is_per_client_and_holds_without_a_cap_are_unaffected,
    a_winning_hold_records_its_idempotent_answer_in_the_same_write,
    a_done_transition_records_its_idempotent_answer_in_the_same_write,
);

/// A restaurant like the fixtures' one, with tables t1..=tN (parties 1–4).
async fn with_tables(store: &DynStore, name: &str, n: usize) -> Restaurant {
    let mut r = restaurant(name);
    r.tables = serde_json::from_value(serde_json::Value::Array(
        (1..=n)
            .map(|i| {
                serde_json::json!({"id": format!("t{i}"), "label": format!("T{i}"),
                                   "min_party": 1, "max_party": 4})
            })
            .collect(),
    ))
    .unwrap();
    r.validate().unwrap();
    store
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    r
}

fn capped(mut n: NewReservation, client: &str, max: u32) -> NewReservation {
    n.cap = Some(HoldCap {
        client: client.into(),
        max,
    });
    n
}

fn is_over_cap(o: &InsertOutcome) -> bool {
    matches!(o, InsertOutcome::OverCap)
}

/// A hold of `r` at 19:00 on `table`, asked at `now`.
fn hold_on(r: &Restaurant, table: &str, now: DateTime<Utc>) -> NewReservation {
    new(
        reservation(r, at(19, 0), 90, 2, Status::Held, now),
        &[table],
        1,
        now,
    )
}

async fn of_twenty_concurrent_holds_from_one_client_with_a_cap_of_four_exactly_four_win(
    b: &Backend,
) {
    let other = b.another_instance().await;
    let r = with_tables(&b.store, "Plafond", 20).await;
    let attempts = (1..=20).map(|i| {
        let store = if i % 2 == 0 { &b.store } else { &other };
        insert(
            store,
            capped(hold_on(&r, &format!("t{i}"), morning()), "client-a", 4),
        )
    });
    let outcomes = join_all(attempts).await;
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Won { .. }))
        .count();
    let over = outcomes.iter().filter(|o| is_over_cap(o)).count();
    assert_eq!((wins, over), (4, 16), "{outcomes:?}");
    let held = b.store.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(held.len(), 4, "{held:?}");
    // A fifth hold, asked later, is still over the cap.
    let late = capped(hold_on(&r, "t1", morning()), "client-a", 4);
    let late = insert(&b.store, late).await;
    assert!(is_over_cap(&late) || is_lost(&late), "{late:?}");
}

async fn a_released_or_confirmed_hold_frees_a_cap_slot(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Libéré", 5).await;
    let now = morning();
    let (h1, _) = won(s, capped(hold_on(&r, "t1", now), "client-b", 2)).await;
    let (h2, _) = won(s, capped(hold_on(&r, "t2", now), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t3", now), "client-b", 2)).await
    ));
    let later = now + Duration::seconds(10);
    let release = transition(h1.id, Status::Held, Status::Released, later);
    assert!(matches!(
        s.transition(release).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    let (h3, _) = won(s, capped(hold_on(&r, "t3", later), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t4", later), "client-b", 2)).await
    ));
    // A confirmed booking is no longer a live hold either.
    let confirm = transition(h2.id, Status::Held, Status::Confirmed, later);
    assert!(matches!(
        s.transition(confirm).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    won(s, capped(hold_on(&r, "t4", later), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t5", later), "client-b", 2)).await
    ));
    assert_eq!(
        s.reservation(h3.id).await.unwrap().unwrap().status,
        Status::Held
    );
}

async fn an_expired_hold_frees_a_cap_slot_before_any_sweep(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Échu", 3).await;
    let (h, _) = won(s, capped(hold_on(&r, "t1", morning()), "client-c", 1)).await;
    let expiry = h.expires_at.unwrap();
    let just_before = expiry - Duration::milliseconds(1);
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t2", just_before), "client-c", 1)).await
    ));
    // At expiry the hold is no longer live, though no sweeper has marked it.
    won(s, capped(hold_on(&r, "t2", expiry), "client-c", 1)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t3", expiry), "client-c", 1)).await
    ));
}

async fn the_cap_is_per_client_and_holds_without_a_cap_are_unaffected(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Chacun", 6).await;
    let now = morning();
    won(s, capped(hold_on(&r, "t1", now), "client-d", 1)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t2", now), "client-d", 1)).await
    ));
    // Another client, and holds without a cap (staff, limits off), are not counted against it.
    won(s, capped(hold_on(&r, "t2", now), "client-e", 1)).await;
    won(s, hold_on(&r, "t3", now)).await;
    won(s, hold_on(&r, "t4", now)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t5", now), "client-d", 1)).await
    ));
    // Over all restaurants: the same client elsewhere is still at its cap.
    let elsewhere = with_tables(s, "Ailleurs", 2).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&elsewhere, "t1", now), "client-d", 1)).await
    ));
    // A losing hold is a loss, whatever the cap.
    assert!(is_lost(
        &insert(s, capped(hold_on(&r, "t1", now), "client-f", 3)).await
    ));
}

/// An answer that names what was decided, as a handler's body would.
fn render() -> tablecast::store::RenderAnswer {
    Arc::new(|r: &Reservation| {
        (
            201,
            format!(
                "{{\"id\":\"{}\",\"table_id\":\"{}\",\"status\":\"{}\"}}",
                r.id,
                r.table_id.as_str(),
                r.status.as_str()
            ),
        )
    })
}

fn idem(key: &str) -> Option<IdemRecord> {
    Some(IdemRecord {
        key: key.into(),
        render: render(),
    })
}

async fn a_winning_hold_records_its_idempotent_answer_in_the_same_write(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Une fois", 2).await;
    let now = morning();
    assert_eq!(
        s.idem_begin("hold-key", "fp-1", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut n = capped(hold_on(&r, "t2", now), "client-g", 4);
    n.idem = idem("hold-key");
    let (h, _) = won(s, n).await;
    // No `idem_finish`: the record was written with the hold.
    let (status, body) = (render())(&h);
    assert_eq!(
        s.idem_begin("hold-key", "fp-1", now + Duration::seconds(1))
            .await
            .unwrap(),
        IdemBegin::Replay { status, body }
    );
    assert_eq!(
        s.idem_begin("hold-key", "fp-other", now + Duration::seconds(1))
            .await
            .unwrap(),
        IdemBegin::Mismatch
    );
    // A lost hold writes nothing: its marker is still in flight for the caller to finish.
    assert_eq!(
        s.idem_begin("lost-key", "fp-2", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut lost = hold_on(&r, "t2", now);
    lost.idem = idem("lost-key");
    assert!(is_lost(&insert(s, lost).await));
    assert_eq!(
        s.idem_begin("lost-key", "fp-2", now).await.unwrap(),
        IdemBegin::InFlight
    );
    // So does a hold over the cap.
    assert_eq!(
        s.idem_begin("cap-key", "fp-3", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut over = capped(hold_on(&r, "t1", now), "client-g", 1);
    over.idem = idem("cap-key");
    assert!(is_over_cap(&insert(s, over).await));
    assert_eq!(
        s.idem_begin("cap-key", "fp-3", now).await.unwrap(),
        IdemBegin::InFlight
    );
}

async fn a_done_transition_records_its_idempotent_answer_in_the_same_write(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Confirmé une fois", 1).await;
    let now = morning();
    let (h, _) = won(s, hold_on(&r, "t1", now)).await;
    let later = now + Duration::seconds(5);
    assert_eq!(
        s.idem_begin("confirm-key", "fp-c", later).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut confirm = transition(h.id, Status::Held, Status::Confirmed, later);
    confirm.idem = idem("confirm-key");
    let TransitionOutcome::Done { reservation: c, .. } = s.transition(confirm).await.unwrap()
    else {
        panic!("the confirm should be done");
    };
    let (status, body) = (render())(&c);
    assert!(body.contains("confirmed"), "{body}");
    assert_eq!(
        s.idem_begin("confirm-key", "fp-c", later).await.unwrap(),
        IdemBegin::Replay { status, body }
    );
    // A conflicting transition writes nothing.
    assert_eq!(
        s.idem_begin("again-key", "fp-d", later).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut again = transition(h.id, Status::Held, Status::Confirmed, later);
    again.idem = idem("again-key");
    assert!(matches!(
        s.transition(again).await.unwrap(),
        TransitionOutcome::Conflict(Some(_))
    ));
    assert_eq!(
        s.idem_begin("again-key", "fp-d", later).await.unwrap(),
        IdemBegin::InFlight
    );
}
