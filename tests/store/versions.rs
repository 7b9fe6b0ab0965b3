use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::store::{Guard, ReplaceOutcome, Transition};

contract!(
    a_dates_version_rises_with_every_committed_change_and_only_then,
    a_restaurant_wide_change_raises_every_date_and_versions_survive_a_reopen,
    a_dates_version_alone_is_the_version_its_day_read_gives,
);

/// `day_version` (what a date with no bookable start answers with) is the version `day` reads,
/// on a date with a reservation, on the next date (which a reservation past midnight raises
/// too), on an empty date, and after a restaurant-wide change.
async fn a_dates_version_alone_is_the_version_its_day_read_gives(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Seule").await;
    let now = morning();
    let check = |what: &'static str| async move {
        for d in [day(), day().succ(), day().succ().succ()] {
            assert_eq!(
                s.day_version(r.id, d).await.unwrap(),
                s.day(r.id, d).await.unwrap().version,
                "{what}: {d}"
            );
        }
    };
    check("fresh").await;
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    // Late enough to run past midnight (UTC 23:00 is 01:00 in Paris the next day).
    won(s, new(hold_at(&r, at(21, 0), 120), &["t2"], 1, now)).await;
    check("after two holds").await;
    let mut longer = r.clone();
    longer.hold_seconds = 600;
    assert!(matches!(
        s.replace_restaurant(&longer, 1, Guard::None, now)
            .await
            .unwrap(),
        ReplaceOutcome::Done(_)
    ));
    check("after a settings change").await;
    assert_eq!(s.day_version(uuid::Uuid::new_v4(), day()).await.unwrap(), 0);
}

fn rises(last: &mut u64, v: u64, what: &str) {
    assert!(v > *last, "{what}: {v} after {last}");
    *last = v;
}

async fn a_dates_version_rises_with_every_committed_change_and_only_then(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Versions").await;
    let d = day();
    let far = d.succ().succ();
    let far_before = s.day(r.id, far).await.unwrap().version;
    let mut last = s.day(r.id, d).await.unwrap().version;

    let now = morning();
    let (h, v) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    rises(&mut last, version_of(&v, d), "hold");
    assert_eq!(s.day(r.id, d).await.unwrap().version, last);

    // What commits nothing changes nothing.
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await
    ));
    let stale = insert(s, new(hold_at(&r, at(21, 0), 90), &["t2"], 9, now)).await;
    assert!(matches!(stale, tablecast::store::InsertOutcome::Stale));
    let wrong = transition(h.id, Status::Confirmed, Status::Seated, now);
    s.transition(wrong).await.unwrap();
    assert_eq!(s.day(r.id, d).await.unwrap().version, last);

    let confirm = transition(h.id, Status::Held, Status::Confirmed, now);
    match s.transition(confirm).await.unwrap() {
        tablecast::store::TransitionOutcome::Done { versions, .. } => {
            rises(&mut last, version_of(&versions, d), "confirm")
        }
        other => panic!("{other:?}"),
    }
    for (from, to, end) in [
        (Status::Confirmed, Status::Seated, None),
        (Status::Seated, Status::Completed, Some(at(19, 30))),
    ] {
        let t = Transition {
            end,
            ..transition(h.id, from, to, now)
        };
        match s.transition(t).await.unwrap() {
            tablecast::store::TransitionOutcome::Done { versions, .. } => {
                rises(&mut last, version_of(&versions, d), to.as_str())
            }
            other => panic!("{other:?}"),
        }
    }
    let walk_in = reservation(&r, at(20, 1), 60, 2, Status::Seated, now);
    rises(
        &mut last,
        version_of(&won(s, new(walk_in, &["t2"], 1, now)).await.1, d),
        "walk-in",
    );
    won(s, new(hold_at(&r, at(21, 0), 90), &["t3"], 1, now)).await;
    last = s.day(r.id, d).await.unwrap().version;
    let swept = s
        .expire_due(now + Duration::seconds(300), 10)
        .await
        .unwrap();
    assert_eq!(swept.len(), 1);
    rises(&mut last, version_of(&swept[0].1, d), "expiry");
    assert_eq!(s.day(r.id, d).await.unwrap().version, last);
    assert_eq!(
        s.day(r.id, far).await.unwrap().version,
        far_before,
        "another date"
    );
}

async fn a_restaurant_wide_change_raises_every_date_and_versions_survive_a_reopen(b: &Backend) {
    let s = &b.store;
    let mut r = created(s, "Partout").await;
    let (busy, quiet) = (day(), day().succ().succ().succ());
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let mut before = [0; 2];
    for (i, d) in [busy, quiet].into_iter().enumerate() {
        before[i] = s.day(r.id, d).await.unwrap().version;
    }
    r.hold_seconds = 600;
    let wide = match s
        .replace_restaurant(&r, 1, Guard::None, morning())
        .await
        .unwrap()
    {
        ReplaceOutcome::Done(v) => v.wide.unwrap(),
        other => panic!("{other:?}"),
    };
    let mut after = [0; 2];
    for (i, d) in [busy, quiet].into_iter().enumerate() {
        after[i] = s.day(r.id, d).await.unwrap().version;
        assert!(
            after[i] > before[i],
            "{d}: {} after {}",
            after[i],
            before[i]
        );
        assert!(
            after[i] >= wide,
            "{d}: {} below the wide version {wide}",
            after[i]
        );
    }
    let (_, v) = won(s, new(hold_at(&r, at(21, 0), 90), &["t1"], 2, morning())).await;
    assert!(version_of(&v, busy) > after[0]);

    let reopened = b.another_instance().await;
    for d in [busy, quiet] {
        assert_eq!(
            reopened.day(r.id, d).await.unwrap().version,
            s.day(r.id, d).await.unwrap().version
        );
    }
}
