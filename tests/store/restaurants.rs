use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::store::{Guard, ReplaceOutcome, TokenOwner, Transition};

contract!(
    restaurants_are_listed_in_creation_order_and_read_back_at_revision_one,
    a_settings_change_needs_the_current_revision_and_raises_it,
    guards_block_a_change_while_a_live_future_reservation_needs_the_table,
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
        let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
        let out = s
            .replace_restaurant(&r, rev, guard.clone(), now)
            .await
            .unwrap();
        match (blocked, &out) {
            (true, ReplaceOutcome::Blocked) | (false, ReplaceOutcome::Done(_)) => {}
            _ => panic!("{guard:?}: expected blocked={blocked}, got {out:?}"),
        }
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
        let out = s
            .replace_restaurant(&r, rev, guard.clone(), now)
            .await
            .unwrap();
        assert!(matches!(out, ReplaceOutcome::Blocked), "{guard:?}: {out:?}");
    }
    // A future no-show ended at its start occupies nothing: it blocks no change of its table
    // (it used to, until its start passed).
    let (now, rev) = (
        morning(),
        s.restaurant(r.id).await.unwrap().unwrap().revision,
    );
    let (h, _) = won(s, new(hold_at(&r, at(20, 0), 90), &["t2"], rev, now)).await;
    let confirm = transition(h.id, Status::Held, Status::Confirmed, now);
    done(s.transition(confirm).await.unwrap());
    let no_show = Transition {
        end: Some(h.start),
        ..transition(h.id, Status::Confirmed, Status::NoShow, now)
    };
    done(s.transition(no_show).await.unwrap());
    let t2 = || table("t2");
    for guard in [
        Guard::NoLiveFuture {
            table: Some(t2()),
            now,
        },
        Guard::PartiesWithin {
            table: t2(),
            min: 3,
            max: 6,
            now,
        },
    ] {
        let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
        let out = s
            .replace_restaurant(&r, rev, guard.clone(), now)
            .await
            .unwrap();
        assert!(matches!(out, ReplaceOutcome::Done(_)), "{guard:?}: {out:?}");
    }
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
