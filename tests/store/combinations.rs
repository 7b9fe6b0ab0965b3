//! Combinations: a hold on several tables claims all of them or none, in one atomic decision.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use tablecast::domain::reservation::Status;
use tablecast::store::{Guard, InsertOutcome, ReplaceOutcome, Transition};

contract!(
    a_combination_claims_every_member_table_and_reads_back_whole,
    a_member_table_and_its_combination_never_both_win_a_race,
    the_first_free_option_is_claimed_single_tables_before_combinations,
    a_walk_in_takes_a_combination_like_a_hold,
    a_combined_reservation_moves_every_member_through_its_transitions,
    an_expired_combined_hold_frees_every_member_before_any_sweep,
    a_guarded_change_sees_a_combined_reservation_on_each_member_only,
);

async fn a_combination_claims_every_member_table_and_reads_back_whole(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Jointes").await;
    let now = morning();
    let party6 = reservation(&r, at(19, 0), 150, 6, Status::Held, now);
    let (c, _) = won(s, new_on(party6, vec![combo("c34", &["t4", "t3"])], now)).await;
    assert_eq!(c.table_id, table("t3"));
    assert_eq!(c.table_ids, [table("t3"), table("t4")]);
    assert_eq!(c.combination_id, Some(table("c34")));
    assert_eq!(s.reservation(c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(
        s.reservations_on(r.id, day()).await.unwrap(),
        std::slice::from_ref(&c)
    );
    assert_eq!(
        s.day(r.id, day()).await.unwrap().reservations,
        std::slice::from_ref(&c)
    );

    // Each member is taken over the combination's time, the first as much as the last.
    for t in ["t3", "t4"] {
        let single = new(hold_at(&r, at(20, 0), 90), &[t], 1, now);
        assert!(is_lost(&insert(s, single).await), "{t}");
    }
    // Another table and another time are not.
    won(s, new(hold_at(&r, at(20, 0), 90), &["t2"], 1, now)).await;
    won(s, new(hold_at(&r, at(21, 30), 90), &["t4"], 1, now)).await;

    // Released, the combination frees every member at once.
    let release = transition(c.id, Status::Held, Status::Released, now);
    s.transition(release).await.unwrap();
    won(s, new(hold_at(&r, at(19, 0), 90), &["t3"], 1, now)).await;
    won(s, new(hold_at(&r, at(19, 0), 90), &["t4"], 1, now)).await;
}

async fn a_member_table_and_its_combination_never_both_win_a_race(b: &Backend) {
    let other = b.another_instance().await;
    for round in 0..20 {
        let r = combined(&b.store, &format!("Course {round}")).await;
        let now = morning();
        // Overlapping times, from two instances at once; the order alternates.
        let single = new(hold_at(&r, at(19, 30), 90), &["t3"], 1, now);
        let party6 = reservation(&r, at(19, 0), 150, 6, Status::Held, now);
        let joined = new_on(party6, vec![combo("c34", &["t3", "t4"])], now);
        let (first, second) = if round % 2 == 0 {
            (&b.store, &other)
        } else {
            (&other, &b.store)
        };
        let (a, c) = tokio::join!(insert(first, single), insert(second, joined));
        let wins = [&a, &c]
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Won { .. }))
            .count();
        let lost = [&a, &c].iter().filter(|o| is_lost(o)).count();
        assert_eq!((wins, lost), (1, 1), "round {round}: {a:?} / {c:?}");
        let kept = b.store.reservations_on(r.id, day()).await.unwrap();
        assert_eq!(kept.len(), 1, "round {round}: {kept:?}");
    }
}

async fn the_first_free_option_is_claimed_single_tables_before_combinations(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Meilleur").await;
    let now = morning();
    let options = || vec![combo("c34", &["t3", "t4"])];
    let party5 = || reservation(&r, at(19, 0), 150, 5, Status::Held, now);
    // A single table for a party of 5 (t3 seats 6) comes first when it is free.
    let both = |res| {
        let mut n = new_on(res, options(), now);
        n.candidates
            .insert(0, tablecast::domain::Seating::single(&table("t3")));
        n
    };
    let (first, _) = won(s, both(party5())).await;
    assert_eq!((first.table_ids.len(), first.combination_id), (1, None));
    // t3 taken: the combination needs t3 too, so nothing is free.
    assert!(is_lost(&insert(s, both(party5())).await));
    // Later, t3 is free again and is taken before the combination.
    let later = reservation(&r, at(21, 30), 90, 5, Status::Held, now);
    let (l, _) = won(s, both(later)).await;
    assert_eq!(l.table_ids, [table("t3")]);
    // A candidate list that is only the combination loses while a member is taken.
    assert!(is_lost(
        &insert(s, new_on(party5(), options(), now + Duration::seconds(1))).await
    ));
}

async fn a_walk_in_takes_a_combination_like_a_hold(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Sans réservation").await;
    let now = morning();
    let walk_in = reservation(&r, at(19, 7), 120, 7, Status::Seated, now);
    let mut n = new_on(walk_in, vec![combo("c34", &["t3", "t4"])], now);
    n.token_hash = None;
    let (w, _) = won(s, n).await;
    assert_eq!(w.table_ids, [table("t3"), table("t4")]);
    assert_eq!(w.status, Status::Seated);
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(20, 0), 90), &["t4"], 1, now)).await
    ));
}

/// A party of 6 on c34 from `start` for 150 minutes, held at `now`.
fn on_c34(
    r: &tablecast::domain::Restaurant,
    start: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> tablecast::store::NewReservation {
    let party6 = reservation(r, start, 150, 6, Status::Held, now);
    new_on(party6, vec![combo("c34", &["t3", "t4"])], now)
}

async fn a_combined_reservation_moves_every_member_through_its_transitions(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Parcours").await;
    let now = morning();
    let (c, _) = won(s, on_c34(&r, at(19, 0), now)).await;
    for (from, to) in [
        (Status::Held, Status::Confirmed),
        (Status::Confirmed, Status::Seated),
    ] {
        let x = done(s.transition(transition(c.id, from, to, now)).await.unwrap());
        assert_eq!((x.status, &x.table_ids), (to, &c.table_ids));
    }
    // Completed early: every member is free from the new end, and taken before it.
    let complete = Transition {
        end: Some(at(20, 0)),
        ..transition(c.id, Status::Seated, Status::Completed, now)
    };
    let x = done(s.transition(complete).await.unwrap());
    assert_eq!(s.reservation(c.id).await.unwrap(), Some(x));
    for t in ["t3", "t4"] {
        let early = new(hold_at(&r, at(19, 30), 30), &[t], 1, now);
        assert!(is_lost(&insert(s, early).await), "{t}");
        won(s, new(hold_at(&r, at(20, 0), 60), &[t], 1, now)).await;
    }
    // A confirmed combination cancelled frees every member at once.
    let (later, _) = won(s, on_c34(&r, at(21, 0), now)).await;
    done(
        s.transition(transition(later.id, Status::Held, Status::Confirmed, now))
            .await
            .unwrap(),
    );
    done(
        s.transition(transition(
            later.id,
            Status::Confirmed,
            Status::Cancelled,
            now,
        ))
        .await
        .unwrap(),
    );
    for t in ["t3", "t4"] {
        won(s, new(hold_at(&r, at(21, 30), 90), &[t], 1, now)).await;
    }
}

async fn an_expired_combined_hold_frees_every_member_before_any_sweep(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Expirée").await;
    let now = morning();
    let (c, _) = won(s, on_c34(&r, at(19, 0), now)).await;
    let expiry = c.expires_at.unwrap();
    let before = expiry - Duration::milliseconds(1);
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 0), 90), &["t4"], 1, before)).await
    ));
    // No sweeper has run: at its expiry both members are free, the combination too.
    for t in ["t4", "t3"] {
        let single = reservation(&r, at(19, 0), 90, 2, Status::Held, expiry);
        won(s, new(single, &[t], 1, expiry)).await;
    }
    assert!(is_lost(&insert(s, on_c34(&r, at(19, 0), expiry)).await));
}

async fn a_guarded_change_sees_a_combined_reservation_on_each_member_only(b: &Backend) {
    let s = &b.store;
    let r = combined(s, "Gardée").await;
    let now = morning();
    let (c, _) = won(s, on_c34(&r, at(19, 0), now)).await;
    done(
        s.transition(transition(c.id, Status::Held, Status::Confirmed, now))
            .await
            .unwrap(),
    );
    // Deleting t4 is blocked by the combination living on it, as by a reservation on t4 alone.
    let mut without_t4 = r.clone();
    without_t4.combinations.clear();
    without_t4.tables.retain(|t| t.id != table("t4"));
    let guard = Guard::NoLiveFuture {
        table: Some(table("t4")),
        now,
    };
    let out = s
        .replace_restaurant(&without_t4, 1, guard, now)
        .await
        .unwrap();
    assert!(matches!(out, ReplaceOutcome::Blocked), "{out:?}");
    // Shrinking t3 minds the parties on t3 alone: the combined party of 6 does not stop it.
    let mut smaller = r.clone();
    smaller
        .tables
        .iter_mut()
        .filter(|t| t.id == table("t3"))
        .for_each(|t| t.max_party = 4);
    let guard = Guard::PartiesWithin {
        table: table("t3"),
        min: 2,
        max: 4,
        now,
    };
    let out = s.replace_restaurant(&smaller, 1, guard, now).await.unwrap();
    assert!(matches!(out, ReplaceOutcome::Done(_)), "{out:?}");
    // A combined hold computed against the old settings is stale; at the new ones it wins.
    let stale = on_c34(&r, at(21, 30), now);
    assert!(matches!(insert(s, stale).await, InsertOutcome::Stale));
    let mut fresh = on_c34(&r, at(21, 30), now);
    fresh.restaurant_revision = 2;
    won(s, fresh).await;
}

/// A restaurant stored before DynamoDB refused combinations too long for one transaction (a
/// combination of t1–t3 for parties of 7 to 12, whose turn is 720 minutes): its other settings
/// still change; a change of its combinations or turns is refused until they fit.
#[tokio::test]
async fn on_dynamodb_a_restaurant_stored_with_a_too_long_combination_still_takes_other_changes() {
    use tablecast::booking::{BookingError, RestaurantPatch};
    let Some(b) = Backend::dynamo("combinations::too_long_stored_before").await else {
        return;
    };
    let s = &b.store;
    let mut r = restaurant("Avant");
    r.combinations = serde_json::from_value(serde_json::json!([
        {"id": "c3", "tables": ["t1", "t2", "t3"], "min_party": 7, "max_party": 12}
    ]))
    .unwrap();
    r.turn_minutes = serde_json::from_value(serde_json::json!([
        {"max_party": 6, "minutes": 90}, {"max_party": null, "minutes": 720}
    ]))
    .unwrap();
    r.validate().unwrap();
    let bk = stored_before_and_renamed(s, &r, "staff-avant").await;
    let longer = bk
        .patch_restaurant(
            r.id,
            RestaurantPatch {
                turn_minutes: Some(
                    serde_json::from_value(serde_json::json!([
                        {"max_party": 4, "minutes": 90}, {"max_party": null, "minutes": 720}
                    ]))
                    .unwrap(),
                ),
                ..RestaurantPatch::default()
            },
        )
        .await;
    match longer {
        Err(BookingError::Validation(errs)) => assert_eq!(errs[0].field, "combinations[0]"),
        other => panic!("expected a refusal naming the combination, got {other:?}"),
    }
}
