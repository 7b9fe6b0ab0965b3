//! DynamoDB only: instances whose clocks differ a little still keep a pacing window within its
//! limits. (The SQLite store has one clock; see the report of this branch.)
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::domain::Pacing;
use tablecast::store::TransitionOutcome;

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
