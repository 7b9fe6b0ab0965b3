//! DynamoDB only: instances whose clocks differ a little still keep a pacing window within its
//! limits. (The SQLite store has one clock; see the report of this branch.)
use crate::backend::Backend;
use crate::faults::{stores, Gate, Inject, TX};
use crate::fixtures::*;
use chrono::Duration;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use tablecast::domain::reservation::Status;
use tablecast::domain::Pacing;
use tablecast::store::{InsertOutcome, TransitionOutcome};

/// A party of 2 at 19:00 on `t`, paced in the 19:00 window, held at `now`.
fn paced_hold(
    r: &tablecast::domain::Restaurant,
    t: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> tablecast::store::NewReservation {
    let res = reservation(r, at(19, 0), 90, 2, Status::Held, now);
    let mut n = new(res, &[t], 1, now);
    let p = r.pacing.unwrap();
    n.pacing = Some(window(19, 0, 15, p.max_covers, p.max_parties, true));
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_counted_as_expired_cannot_be_confirmed_by_a_clock_running_behind() {
    let Some(b) = Backend::dynamo("pacing_dynamo::confirm_behind").await else {
        return;
    };
    let s = &b.store;
    let one_party = Pacing {
        window_minutes: 15,
        max_covers: None,
        max_parties: Some(1),
    };
    let r = paced_with_tables(s, "Horloges", 3, one_party).await;
    let (a, _) = won(s, paced_hold(&r, "p001", morning())).await;
    let expiry = a.expires_at.unwrap();
    // An instance whose clock reached the expiry gives the window's one party to another hold,
    // on another table...
    let (taker, _) = won(s, paced_hold(&r, "p002", expiry)).await;
    // ...and one whose clock is a little behind must not confirm the first hold over it.
    let behind = expiry - Duration::milliseconds(5);
    let late = transition(a.id, Status::Held, Status::Confirmed, behind);
    match s.transition(late).await.unwrap() {
        TransitionOutcome::Conflict(Some(cur)) => {
            assert_eq!(cur.status_at(behind), Status::Expired)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.reservation(a.id).await.unwrap().unwrap().status,
        Status::Held
    );
    // A hold nobody counted as expired is confirmed as ever.
    let confirm = transition(taker.id, Status::Held, Status::Confirmed, expiry);
    assert!(matches!(
        s.transition(confirm).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    let full = insert(s, paced_hold(&r, "p003", expiry)).await;
    assert!(is_paced(&full), "{full:?}");
}

/// A confirm that lands between another hold's read of the window and its write, the confirm
/// decided just before the confirmed hold's expiry and the other hold at it (so it counts the
/// first hold as gone): exactly one of the two is in a window of one party. The confirm used to
/// check the window for a lapse mark only, leaving its version alone, so the other hold's write,
/// conditional on the version it had read, committed as well: two parties in the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_landing_between_a_holds_read_and_write_of_the_window_leaves_one_party() {
    let Some((plain, faulty, faults)) = stores("pacing_dynamo::confirm_between").await else {
        return;
    };
    let one_party = Pacing {
        window_minutes: 15,
        max_covers: None,
        max_parties: Some(1),
    };
    let r = paced_with_tables(&plain, "Entre-deux", 3, one_party).await;
    let (a, _) = won(&plain, paced_hold(&r, "p001", morning())).await;
    let expiry = a.expires_at.unwrap();
    // The other hold decides at the expiry: it has read the window and the day, and its write
    // (the transaction carrying the window item) waits at the gate.
    let gate = Gate::new();
    let window_pk = format!("P#{}", r.id);
    faults.inject_where(TX, Some(&window_pk), None, Inject::Gated(gate.clone()), 1);
    let other = tokio::spawn({
        let (faulty, n) = (faulty.clone(), paced_hold(&r, "p002", expiry));
        async move { faulty.insert_reservation(n).await }
    });
    gate.arrived().await;
    let behind = expiry - Duration::milliseconds(1);
    let confirm = transition(a.id, Status::Held, Status::Confirmed, behind);
    let confirmed = plain.transition(confirm).await.unwrap();
    assert!(
        matches!(confirmed, TransitionOutcome::Done { .. }),
        "{confirmed:?}"
    );
    gate.open();
    let other = other.await.unwrap().unwrap();
    assert!(
        is_paced(&other),
        "the window's one party is booked: {other:?}"
    );
    let in_window: Vec<Status> = plain
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .iter()
        .map(|x| x.status_at(expiry))
        .filter(|s| Status::OCCUPYING.contains(s))
        .collect();
    assert_eq!(in_window, [Status::Confirmed]);
}

/// Two hundred holds racing into one window from two instances: however hot the window item
/// and the first table get, every hold is answered won or paced, never "unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_paced_holds_are_each_won_or_paced_never_unavailable() {
    let Some(b) = Backend::dynamo("pacing_dynamo::two_hundred_holds").await else {
        return;
    };
    let other = b.another_instance().await;
    let covers = Pacing {
        window_minutes: 15,
        max_covers: Some(10),
        max_parties: None,
    };
    let r = paced_with_tables(&b.store, "Affluence", 30, covers).await;
    let tables: Vec<&str> = r.tables.iter().map(|t| t.id.as_str()).collect();
    let now = morning();
    let attempts = (0..200).map(|i| {
        let store = if i % 2 == 0 { &b.store } else { &other };
        let res = reservation(&r, at(19, 0), 90, 2, Status::Held, now);
        let mut n = new(res, &tables, 1, now);
        n.pacing = Some(window(19, 0, 15, Some(10), None, true));
        store.insert_reservation(n)
    });
    let outcomes = join_all(attempts).await;
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        let k = match o {
            Ok(InsertOutcome::Won { .. }) => "won".to_owned(),
            Ok(o) if is_paced(o) => "paced".to_owned(),
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("error: {e}"),
        };
        *tally.entry(k).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> =
        [("paced".to_owned(), 195), ("won".to_owned(), 5)].into();
    assert_eq!(tally, expected);
    let kept = b.store.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(kept.iter().map(|x| x.party_size).sum::<u32>(), 10);
}
