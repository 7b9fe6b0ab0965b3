//! A reservation that may run past local midnight moves the next date's availability too: every
//! committed change to it raises the versions of both dates, in the same write, and returns both.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::domain::LocalDate;
use tablecast::store::{DynStore, Transition, TransitionOutcome, Versions};
use uuid::Uuid;

contract!(
    a_late_walk_in_raises_the_next_dates_version_with_its_own_and_a_dinner_does_not,
    a_late_hold_raises_both_dates_when_released_or_expired,
    completing_early_what_ran_past_midnight_raises_the_next_date,
);

async fn version(s: &DynStore, rid: Uuid, d: LocalDate) -> u64 {
    s.day(rid, d).await.unwrap().version
}

fn dates(v: &Versions) -> Vec<LocalDate> {
    let mut d: Vec<_> = v.dates.iter().map(|(d, _)| *d).collect();
    d.sort();
    d.dedup();
    d
}

fn done(o: TransitionOutcome) -> Versions {
    match o {
        TransitionOutcome::Done { versions, .. } => versions,
        other => panic!("expected done, got {other:?}"),
    }
}

/// `v` raised `d` and `d + 1` above `before`, and the store reads what it returned.
async fn raised_both(s: &DynStore, rid: Uuid, v: &Versions, before: [u64; 2], what: &str) {
    let d = day();
    assert_eq!(dates(v), [d, d.succ()], "{what}: {v:?}");
    for (i, date) in [d, d.succ()].into_iter().enumerate() {
        let got = version_of(v, date);
        assert!(got > before[i], "{what}, {date}: {got} after {}", before[i]);
        assert_eq!(version(s, rid, date).await, got, "{what}, {date}: as read");
    }
}

async fn a_late_walk_in_raises_the_next_dates_version_with_its_own_and_a_dinner_does_not(
    b: &Backend,
) {
    let s = &b.store;
    let r = created(s, "Minuit").await;
    let (d, next, after) = (day(), day().succ(), day().succ().succ());
    let now = morning();
    let after_before = version(s, r.id, after).await;
    let before = [version(s, r.id, d).await, version(s, r.id, next).await];

    // A walk-in seated at 23:15 for 150 minutes holds the table until 01:45 the next day.
    let walk_in = reservation(&r, at(23, 15), 150, 2, Status::Seated, now);
    let (w, v) = won(s, new(walk_in, &["t1"], 1, now)).await;
    raised_both(s, r.id, &v, before, "walk-in").await;

    // Completed early, at 23:45: its end moved, and with it the next date's availability.
    let before = [version(s, r.id, d).await, version(s, r.id, next).await];
    let complete = Transition {
        end: Some(at(23, 45)),
        ..transition(w.id, Status::Seated, Status::Completed, now)
    };
    let v = done(s.transition(complete).await.unwrap());
    raised_both(s, r.id, &v, before, "completed").await;

    // A 19:00 dinner of 90 minutes ends well before midnight: the next date does not move.
    let before = [version(s, r.id, d).await, version(s, r.id, next).await];
    let (_, v) = won(s, new(hold_at(&r, at(19, 0), 90), &["t2"], 1, now)).await;
    assert_eq!(dates(&v), [d], "{v:?}");
    assert!(version_of(&v, d) > before[0]);
    assert_eq!(version(s, r.id, d).await, version_of(&v, d));
    assert_eq!(version(s, r.id, next).await, before[1], "the next date");

    // The date after next is read as before: neither moved nor torn.
    assert_eq!(version(s, r.id, after).await, after_before);
}

async fn a_late_hold_raises_both_dates_when_released_or_expired(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Tard").await;
    let next = day().succ();
    let now = morning();
    let (released, _) = won(s, new(hold_at(&r, at(23, 0), 90), &["t1"], 1, now)).await;
    let (expiring, _) = won(s, new(hold_at(&r, at(22, 45), 120), &["t2"], 1, now)).await;

    let before = [version(s, r.id, day()).await, version(s, r.id, next).await];
    let release = transition(released.id, Status::Held, Status::Released, now);
    let v = done(s.transition(release).await.unwrap());
    raised_both(s, r.id, &v, before, "released").await;

    let before = [version(s, r.id, day()).await, version(s, r.id, next).await];
    let swept = s
        .expire_due(expiring.expires_at.unwrap() + Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(swept.len(), 1, "{swept:?}");
    assert_eq!(swept[0].0.id, expiring.id);
    raised_both(s, r.id, &swept[0].1, before, "expired").await;

    // Both dates still read (nothing looks torn) and the time past midnight is free again.
    assert!(s.day(r.id, next.succ()).await.is_ok());
    won(s, new(hold_at(&r, at(23, 30), 150), &["t1"], 1, now)).await;
}

async fn completing_early_what_ran_past_midnight_raises_the_next_date(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Tôt").await;
    let next = day().succ();
    let now = morning();
    // 21:30 for 180 minutes runs to 00:30; completed at 22:00 it no longer reaches midnight,
    // but the half hour it held past midnight is free again.
    let seated = reservation(&r, at(21, 30), 180, 2, Status::Seated, now);
    let (w, _) = won(s, new(seated, &["t1"], 1, now)).await;
    let before = [version(s, r.id, day()).await, version(s, r.id, next).await];
    let complete = Transition {
        end: Some(at(22, 0)),
        ..transition(w.id, Status::Seated, Status::Completed, now)
    };
    let v = done(s.transition(complete).await.unwrap());
    raised_both(s, r.id, &v, before, "completed early").await;
}
