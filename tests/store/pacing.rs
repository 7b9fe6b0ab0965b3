//! Pacing: a window's covers and parties are counted in the same atomic decision as the hold.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use futures_util::future::join_all;
use tablecast::domain::reservation::Status;
use tablecast::domain::{Pacing, Reservation, Restaurant};
use tablecast::store::{InsertOutcome, NewReservation, PacingCheck};

contract!(
    of_a_hundred_concurrent_holds_into_one_window_exactly_the_covers_limit_win,
    a_release_or_a_cancel_frees_its_covers_at_once,
    an_expired_hold_frees_its_covers_before_any_sweep,
    max_parties_counts_reservations_window_by_window,
    walk_ins_count_in_their_window_but_are_never_refused,
    a_taken_table_is_the_reason_even_when_the_window_is_full,
    a_hold_left_out_as_expired_cannot_be_confirmed_by_an_earlier_now_afterwards,
);

fn pacing(max_covers: Option<u32>, max_parties: Option<u32>) -> Pacing {
    Pacing {
        window_minutes: 15,
        max_covers,
        max_parties,
    }
}

/// The window of 19:00–19:15 with the restaurant's limits.
fn at_seven(r: &Restaurant, enforce: bool) -> PacingCheck {
    let p = r.pacing.expect("paced");
    window(19, 0, 15, p.max_covers, p.max_parties, enforce)
}

/// A hold of `party` at `start` on any of the restaurant's tables, paced.
fn paced_hold(
    r: &Restaurant,
    start_minute: i64,
    party: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> NewReservation {
    let res: Reservation = reservation(
        r,
        at(19, 0) + Duration::minutes(start_minute),
        90,
        party,
        Status::Held,
        now,
    );
    let tables: Vec<&str> = r.tables.iter().map(|t| t.id.as_str()).collect();
    let mut n = new(res, &tables, 1, now);
    n.pacing = Some(window(
        19,
        (start_minute / 15 * 15) as u16,
        15,
        r.pacing.unwrap().max_covers,
        r.pacing.unwrap().max_parties,
        true,
    ));
    n
}

fn wins(v: &[InsertOutcome]) -> usize {
    v.iter()
        .filter(|o| matches!(o, InsertOutcome::Won { .. }))
        .count()
}

async fn of_a_hundred_concurrent_holds_into_one_window_exactly_the_covers_limit_win(b: &Backend) {
    let other = b.another_instance().await;
    let r = paced_with_tables(&b.store, "Cadence", 30, pacing(Some(10), None)).await;
    let now = morning();
    // Party 2 at 19:00, 19:05 and 19:10: one window, 30 free tables.
    let attempts = (0..100).map(|i| {
        let store = if i % 2 == 0 { &b.store } else { &other };
        insert(store, paced_hold(&r, i % 3 * 5, 2, now))
    });
    let outcomes = join_all(attempts).await;
    let paced = outcomes.iter().filter(|o| is_paced(o)).count();
    assert_eq!((wins(&outcomes), paced), (5, 95), "{outcomes:?}");
    let kept = b.store.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(kept.iter().map(|x| x.party_size).sum::<u32>(), 10);
    // The next window is not touched.
    won(&b.store, paced_hold(&r, 15, 2, now)).await;
}

async fn a_release_or_a_cancel_frees_its_covers_at_once(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Libéré", 3, pacing(Some(4), None)).await;
    let now = morning();
    let (a, _) = won(s, paced_hold(&r, 0, 2, now)).await;
    let (c, _) = won(s, paced_hold(&r, 5, 2, now)).await;
    assert!(is_paced(&insert(s, paced_hold(&r, 10, 1, now)).await));
    s.transition(transition(a.id, Status::Held, Status::Released, now))
        .await
        .unwrap();
    won(s, paced_hold(&r, 10, 2, now)).await;
    assert!(is_paced(&insert(s, paced_hold(&r, 0, 1, now)).await));
    // A confirmed booking cancelled frees its covers too.
    s.transition(transition(c.id, Status::Held, Status::Confirmed, now))
        .await
        .unwrap();
    s.transition(transition(c.id, Status::Confirmed, Status::Cancelled, now))
        .await
        .unwrap();
    won(s, paced_hold(&r, 0, 2, now)).await;
}

async fn an_expired_hold_frees_its_covers_before_any_sweep(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Expiré", 3, pacing(None, Some(1))).await;
    let now = morning();
    let (a, _) = won(s, paced_hold(&r, 0, 2, now)).await;
    let expiry = a.expires_at.unwrap();
    let just_before = expiry - Duration::milliseconds(1);
    assert!(is_paced(
        &insert(s, paced_hold(&r, 5, 2, just_before)).await
    ));
    // No sweeper has run: at its expiry the hold counts no more.
    let (c, _) = won(s, paced_hold(&r, 5, 2, expiry)).await;
    assert_eq!(c.status, Status::Held);
    assert!(is_paced(&insert(s, paced_hold(&r, 10, 2, expiry)).await));
}

async fn max_parties_counts_reservations_window_by_window(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Tables", 6, pacing(None, Some(2))).await;
    let now = morning();
    won(s, paced_hold(&r, 0, 1, now)).await;
    won(s, paced_hold(&r, 10, 4, now)).await;
    assert!(is_paced(&insert(s, paced_hold(&r, 5, 1, now)).await));
    // 19:15 is another window.
    won(s, paced_hold(&r, 15, 1, now)).await;
    won(s, paced_hold(&r, 25, 1, now)).await;
    assert!(is_paced(&insert(s, paced_hold(&r, 20, 1, now)).await));
}

async fn walk_ins_count_in_their_window_but_are_never_refused(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Passage", 6, pacing(Some(4), Some(1))).await;
    let now = morning();
    won(s, paced_hold(&r, 0, 4, now)).await;
    // A walk-in at 19:07 takes the window past both limits: counted, not refused.
    for party in [3, 4] {
        let walk_in = reservation(&r, at(19, 7), 90, party, Status::Seated, now);
        let tables: Vec<&str> = r.tables.iter().map(|t| t.id.as_str()).collect();
        let mut n = new(walk_in, &tables, 1, now);
        n.token_hash = None;
        n.pacing = Some(at_seven(&r, false));
        won(s, n).await;
    }
    // The window holds 11 covers in 3 parties now; the next hold is refused.
    assert!(is_paced(&insert(s, paced_hold(&r, 10, 1, now)).await));
    let day = s.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(day.iter().map(|x| x.party_size).sum::<u32>(), 11);
}

async fn a_taken_table_is_the_reason_even_when_the_window_is_full(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Raison", 1, pacing(Some(2), None)).await;
    let now = morning();
    won(s, paced_hold(&r, 0, 2, now)).await;
    // The only table is taken and the window is full: the reason is the table.
    assert!(is_lost(&insert(s, paced_hold(&r, 5, 1, now)).await));
    // Later the table is free but the 19:00 window is still full.
    let mut late = paced_hold(&r, 0, 1, now);
    late.reservation.start = at(21, 0);
    late.reservation.end = at(22, 30);
    assert!(is_paced(&insert(s, late).await));
}

/// A hold that won a window's last party by leaving out an expired hold: a confirm of that hold
/// carrying a slightly earlier `now` (another instance's clock, or a job queued behind the hold)
/// must not bring it back into the count.
async fn a_hold_left_out_as_expired_cannot_be_confirmed_by_an_earlier_now_afterwards(b: &Backend) {
    let s = &b.store;
    let r = paced_with_tables(s, "Retard", 3, pacing(None, Some(1))).await;
    let one_table = |t: &str, now| {
        let res = reservation(&r, at(19, 0), 90, 2, Status::Held, now);
        let mut n = new(res, &[t], 1, now);
        n.pacing = Some(at_seven(&r, true));
        n
    };
    let (a, _) = won(s, one_table("p001", morning())).await;
    let expiry = a.expires_at.unwrap();
    let (taker, _) = won(s, one_table("p002", expiry)).await;
    let behind = expiry - Duration::milliseconds(5);
    let late = transition(a.id, Status::Held, Status::Confirmed, behind);
    let out = s.transition(late).await.unwrap();
    assert!(
        matches!(out, tablecast::store::TransitionOutcome::Conflict(_)),
        "{out:?}"
    );
    let kept = s.reservations_on(r.id, day()).await.unwrap();
    let confirmed = kept
        .iter()
        .filter(|x| x.status == Status::Confirmed)
        .count();
    assert_eq!(confirmed, 0, "{kept:?}");
    assert!(kept
        .iter()
        .any(|x| x.id == taker.id && x.status == Status::Held));
}
