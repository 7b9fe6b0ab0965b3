use crate::backend::Backend;
use crate::fixtures::*;
use chrono::{DateTime, Duration, Utc};
use tablecast::domain::reservation::Status;
use tablecast::domain::Restaurant;
use tablecast::store::{DynStore, Guard, ReplaceOutcome, TokenOwner, Transition};

contract!(
    restaurants_are_listed_in_creation_order_and_read_back_at_revision_one,
    a_settings_change_needs_the_current_revision_and_raises_it,
    guards_block_a_change_while_a_live_future_reservation_needs_the_table,
    an_empty_reservation_blocks_no_table_change_but_a_time_zone_change_waits_for_it,
    a_blocked_change_leaves_the_restaurant_usable_at_the_same_revision,
    a_table_stored_with_a_long_area_leaves_its_restaurant_changeable,
);

async fn restaurants_are_listed_in_creation_order_and_read_back_at_revision_one(b: &Backend) {
    let s = &b.store;
    assert!(s.list_restaurants().await.unwrap().is_empty());
    let first = restaurant("Chez Un");
    let second = restaurant("Chez Deux");
    s.create_restaurant(&first, "staff-1", morning())
        .await
        .unwrap();
    s.create_restaurant(&second, "staff-2", morning() + Duration::milliseconds(1))
        .await
        .unwrap();
    let listed = s.list_restaurants().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Chez Un", "Chez Deux"]);
    assert_eq!(listed[0].id, first.id);
    assert_eq!(listed[0].timezone, "Europe/Paris");

    let got = s.restaurant(first.id).await.unwrap().unwrap();
    assert_eq!((got.restaurant, got.revision), (first.clone(), 1));
    assert!(s.restaurant(uuid::Uuid::new_v4()).await.unwrap().is_none());
    assert_eq!(
        s.token_owner("staff-1").await.unwrap(),
        Some(TokenOwner::Staff {
            restaurant_id: first.id
        })
    );
    assert_eq!(s.token_owner("nobody").await.unwrap(), None);
}

async fn a_settings_change_needs_the_current_revision_and_raises_it(b: &Backend) {
    let s = &b.store;
    let mut r = created(s, "Avant").await;
    r.name = "Après".into();
    match s
        .replace_restaurant(&r, 1, Guard::None, morning())
        .await
        .unwrap()
    {
        ReplaceOutcome::Done(v) => assert!(v.wide.is_some() && v.dates.is_empty()),
        other => panic!("{other:?}"),
    }
    let got = s.restaurant(r.id).await.unwrap().unwrap();
    assert_eq!((got.restaurant.name.as_str(), got.revision), ("Après", 2));
    assert_eq!(s.list_restaurants().await.unwrap()[0].name, "Après");

    r.name = "Encore".into();
    let stale = s
        .replace_restaurant(&r, 1, Guard::None, morning())
        .await
        .unwrap();
    assert!(matches!(stale, ReplaceOutcome::Stale), "{stale:?}");
    assert_eq!(s.restaurant(r.id).await.unwrap().unwrap().revision, 2);
    let missing = restaurant("Nowhere");
    assert!(matches!(
        s.replace_restaurant(&missing, 1, Guard::None, morning())
            .await
            .unwrap(),
        ReplaceOutcome::Stale
    ));
}

async fn guards_block_a_change_while_a_live_future_reservation_needs_the_table(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Gardée").await;
    let (held, _) = won(s, new(hold_at(&r, at(18, 0), 90), &["t1"], 1, morning())).await;
    let now = morning();
    let t1 = || Some(table("t1"));
    let cases = [
        (Guard::NoLiveFuture { table: t1(), now }, true),
        (Guard::NoLiveFuture { table: None, now }, true),
        (
            Guard::NoLiveFuture {
                table: Some(table("t2")),
                now,
            },
            false,
        ),
        (
            Guard::PartiesWithin {
                table: table("t1"),
                min: 3,
                max: 6,
                now,
            },
            true,
        ),
        (
            Guard::PartiesWithin {
                table: table("t1"),
                min: 1,
                max: 2,
                now,
            },
            false,
        ),
        // Once the hold has expired it needs nothing.
        (
            Guard::NoLiveFuture {
                table: t1(),
                now: held.expires_at.unwrap(),
            },
            false,
        ),
    ];
    for (guard, blocked) in cases {
        assert_eq!(blocks(s, &r, &guard, now).await, blocked, "{guard:?}");
    }
    // Under way past midnight, dated the day before the guard's `now`: still live.
    let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
    let late = reservation(&r, at(23, 30), 90, 2, Status::Confirmed, morning());
    won(s, new(late, &["t3"], rev, morning())).await;
    let now = at(23, 30) + Duration::minutes(60);
    for guard in [
        Guard::NoLiveFuture {
            table: Some(table("t3")),
            now,
        },
        Guard::PartiesWithin {
            table: table("t3"),
            min: 3,
            max: 6,
            now,
        },
    ] {
        assert!(blocks(s, &r, &guard, now).await, "{guard:?}");
    }
}

/// Whether `guard` stops a change of `r` made at its current revision at `now` (else it is
/// done).
async fn blocks(s: &DynStore, r: &Restaurant, guard: &Guard, now: DateTime<Utc>) -> bool {
    let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
    match s.replace_restaurant(r, rev, guard.clone(), now).await {
        Ok(ReplaceOutcome::Blocked) => true,
        Ok(ReplaceOutcome::Done(_)) => false,
        other => panic!("{guard:?}: {other:?}"),
    }
}

/// A future no-show ended at its start takes no table: it blocks no change of its table (it
/// did, until its start passed). A change of time zone still waits for it: it keeps its local
/// date and time, and counts in its pacing window. One completed after its start keeps its
/// table until its new end.
async fn an_empty_reservation_blocks_no_table_change_but_a_time_zone_change_waits_for_it(
    b: &Backend,
) {
    let s = &b.store;
    let r = created(s, "Absent").await;
    let now = morning();
    let (h, _) = won(s, new(hold_at(&r, at(20, 0), 90), &["t2"], 1, now)).await;
    let step = |from, to, end| Transition {
        end,
        ..transition(h.id, from, to, now)
    };
    done(
        s.transition(step(Status::Held, Status::Confirmed, None))
            .await
            .unwrap(),
    );
    let no_show = step(Status::Confirmed, Status::NoShow, Some(h.start));
    done(s.transition(no_show).await.unwrap());
    let t2 = || table("t2");
    let cases = [
        (
            Guard::NoLiveFuture {
                table: Some(t2()),
                now,
            },
            false,
        ),
        (
            Guard::PartiesWithin {
                table: t2(),
                min: 3,
                max: 6,
                now,
            },
            false,
        ),
        (Guard::NoLiveFuture { table: None, now }, true),
    ];
    for (guard, blocked) in cases {
        assert_eq!(blocks(s, &r, &guard, now).await, blocked, "{guard:?}");
    }

    // Seated at 20:00, completed early with its end at 20:30: at 20:10 the table is still
    // being cleared.
    let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
    let (c, _) = won(s, new(hold_at(&r, at(20, 0), 90), &["t1"], rev, now)).await;
    for (from, to, end) in [
        (Status::Held, Status::Confirmed, None),
        (Status::Confirmed, Status::Seated, None),
        (Status::Seated, Status::Completed, Some(at(20, 30))),
    ] {
        let t = Transition {
            end,
            ..transition(c.id, from, to, now)
        };
        done(s.transition(t).await.unwrap());
    }
    let guard = Guard::NoLiveFuture {
        table: Some(table("t1")),
        now: at(20, 10),
    };
    assert!(blocks(s, &r, &guard, at(20, 10)).await);
}

async fn a_blocked_change_leaves_the_restaurant_usable_at_the_same_revision(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Toujours").await;
    won(s, new(hold_at(&r, at(19, 0), 90), &["t2"], 1, morning())).await;
    let guard = Guard::NoLiveFuture {
        table: Some(table("t2")),
        now: morning(),
    };
    let out = s.replace_restaurant(&r, 1, guard, morning()).await.unwrap();
    assert!(matches!(out, ReplaceOutcome::Blocked), "{out:?}");
    assert_eq!(s.restaurant(r.id).await.unwrap().unwrap().revision, 1);
    // Holds go on at once at that revision, and an unguarded change still applies.
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let out = s
        .replace_restaurant(&r, 1, Guard::None, morning())
        .await
        .unwrap();
    assert!(matches!(out, ReplaceOutcome::Done(_)), "{out:?}");
}

/// A table stored before areas were limited to 100 bytes keeps its area, and its restaurant
/// takes every other change (a rename, another table put); only a `PUT` of that table must bring
/// its area within the limit.
async fn a_table_stored_with_a_long_area_leaves_its_restaurant_changeable(b: &Backend) {
    use tablecast::booking::BookingError;
    let s = &b.store;
    let mut r = restaurant("Avant");
    r.tables[0].area = Some("x".repeat(300));
    r.validate().unwrap();
    let bk = stored_before_and_renamed(s, &r, "staff-area").await;
    let mut other = r.tables[1].clone();
    other.label = "Autre".into();
    bk.put_table(r.id, other).await.unwrap();
    let mut same = r.tables[0].clone();
    let refused = bk.put_table(r.id, same.clone()).await.unwrap_err();
    assert!(
        matches!(&refused, BookingError::Validation(errs) if errs[0].field == "area"),
        "{refused:?}"
    );
    same.area = Some("terrace".into());
    bk.put_table(r.id, same).await.unwrap();
}
