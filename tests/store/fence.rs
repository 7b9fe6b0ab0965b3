//! Settings changes against holds: a hold computed against old settings never commits after
//! the change, and a guarded change never lets a hold it should have seen through. On DynamoDB
//! the fence lies on each table's own item (holds share no item); these run on both stores.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use std::time::Instant;
use tablecast::domain::Restaurant;
use tablecast::store::{DynStore, Guard, InsertOutcome, ReplaceOutcome};

contract!(
    a_hold_computed_before_a_settings_change_is_stale_after_it,
    a_guarded_change_racing_holds_on_its_table_never_lets_both_win,
    a_plain_change_racing_holds_leaves_them_stale_never_committed_after_it,
    a_change_racing_combined_holds_leaves_them_stale_never_committed_after_it,
);

/// A hold of `party` on `t` at `start` computed against `revision`, run on its own task.
fn spawn_hold(
    s: &DynStore,
    r: &Restaurant,
    t: &'static str,
    start: chrono::DateTime<chrono::Utc>,
    party: u32,
    revision: u64,
    delay_ms: u64,
) -> tokio::task::JoinHandle<(Instant, InsertOutcome)> {
    let (s, r) = (s.clone(), r.clone());
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        let began = Instant::now();
        let mut res = reservation(
            &r,
            start,
            90,
            party,
            tablecast::domain::reservation::Status::Held,
            morning(),
        );
        res.table_id = table(t);
        (began, insert(&s, new(res, &[t], revision, morning())).await)
    })
}

async fn a_hold_computed_before_a_settings_change_is_stale_after_it(b: &Backend) {
    let s = &b.store;
    let mut r = created(s, "Avant, après").await;
    r.name = "Après".into();
    let out = s
        .replace_restaurant(&r, 1, Guard::None, morning())
        .await
        .unwrap();
    assert!(matches!(out, ReplaceOutcome::Done(_)), "{out:?}");
    for t in ["t1", "t2", "t3"] {
        let late = insert(s, new(hold_at(&r, at(19, 0), 90), &[t], 1, morning())).await;
        assert!(matches!(late, InsertOutcome::Stale), "{t}: {late:?}");
        won(s, new(hold_at(&r, at(19, 0), 90), &[t], 2, morning())).await;
    }
    // A deleted table takes no hold at the old revision; the others go on at the new one.
    r.tables.retain(|t| t.id != table("t3"));
    let out = s
        .replace_restaurant(&r, 2, Guard::None, morning())
        .await
        .unwrap();
    assert!(matches!(out, ReplaceOutcome::Done(_)), "{out:?}");
    let gone = insert(s, new(hold_at(&r, at(21, 0), 90), &["t3"], 2, morning())).await;
    assert!(matches!(gone, InsertOutcome::Stale), "{gone:?}");
    won(s, new(hold_at(&r, at(21, 0), 90), &["t1"], 3, morning())).await;
}

async fn a_guarded_change_racing_holds_on_its_table_never_lets_both_win(b: &Backend) {
    let other = b.another_instance().await;
    let mut decided = 0;
    for round in 0..6u64 {
        let s = &b.store;
        let r = created(s, &format!("Course {round}")).await;
        // Even rounds delete t1 while nothing lives on it; odd ones shrink it below a party of 2.
        let mut changed = r.clone();
        let guard = if round % 2 == 0 {
            changed.tables.retain(|t| t.id != table("t1"));
            Guard::NoLiveFuture {
                table: Some(table("t1")),
                now: morning(),
            }
        } else {
            changed
                .tables
                .iter_mut()
                .filter(|t| t.id == table("t1"))
                .for_each(|t| t.max_party = 1);
            Guard::PartiesWithin {
                table: table("t1"),
                min: 1,
                max: 1,
                now: morning(),
            }
        };
        let holds: Vec<_> = [(at(18, 0), 0), (at(19, 45), 3), (at(21, 30), 8)]
            .into_iter()
            .map(|(start, delay)| spawn_hold(s, &r, "t1", start, 2, 1, delay))
            .collect();
        let change = {
            let (other, changed) = (other.clone(), changed.clone());
            tokio::spawn(async move {
                // Sometimes before the holds, sometimes among them, sometimes after.
                tokio::time::sleep(std::time::Duration::from_millis(round % 3 * 12)).await;
                other
                    .replace_restaurant(&changed, 1, guard, morning())
                    .await
                    .unwrap()
            })
        };
        let change = change.await.unwrap();
        let mut wins = 0;
        for h in holds {
            match h.await.unwrap().1 {
                InsertOutcome::Won { .. } => wins += 1,
                InsertOutcome::Stale => {}
                other => panic!("round {round}: a hold answered {other:?}"),
            }
        }
        let live_on_t1 = s
            .reservations_on(r.id, day())
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.table_id == table("t1"))
            .count();
        assert_eq!(live_on_t1, wins, "round {round}");
        match change {
            ReplaceOutcome::Done(_) => {
                assert_eq!(wins, 0, "round {round}: a hold and the change both won");
                // What the change was guarded against cannot be booked after it either.
                let late = insert(s, new(hold_at(&r, at(20, 0), 90), &["t1"], 1, morning())).await;
                assert!(matches!(late, InsertOutcome::Stale), "{late:?}");
            }
            ReplaceOutcome::Blocked => assert!(wins > 0, "round {round}: blocked by nothing"),
            ReplaceOutcome::Stale => {}
        }
        decided += usize::from(!matches!(change, ReplaceOutcome::Stale));
        // Whatever won, the restaurant takes holds at its revision right after.
        let rev = s.restaurant(r.id).await.unwrap().unwrap().revision;
        won(s, new(hold_at(&r, at(18, 0), 90), &["t2"], rev, morning())).await;
    }
    // The rule was put to the test: the change was decided (done or blocked), not only stale.
    assert!(decided > 0, "every round's change came back stale");
}

async fn a_plain_change_racing_holds_leaves_them_stale_never_committed_after_it(b: &Backend) {
    let other = b.another_instance().await;
    for round in 0..4u64 {
        let s = &b.store;
        let r = created(s, &format!("Pendant {round}")).await;
        let mut renamed = r.clone();
        renamed.name = format!("Pendant {round} bis");
        let mut holds = Vec::new();
        for (i, t) in ["t1", "t2", "t3"].into_iter().enumerate() {
            for (j, start) in [at(18, 0), at(20, 30)].into_iter().enumerate() {
                let late = start + Duration::minutes(i as i64);
                let delay = (3 * i + 7 * j) as u64 * (round + 1);
                holds.push((t, start, spawn_hold(s, &r, t, late, 2, 1, delay)));
            }
        }
        let out = other
            .replace_restaurant(&renamed, 1, Guard::None, morning())
            .await
            .unwrap();
        let done_at = Instant::now();
        assert!(
            matches!(out, ReplaceOutcome::Done(_)),
            "round {round}: {out:?}"
        );
        for (t, start, h) in holds {
            let (began, outcome) = h.await.unwrap();
            match outcome {
                InsertOutcome::Won { .. } => assert!(
                    began < done_at,
                    "round {round}: a hold begun after the change won at the old revision"
                ),
                InsertOutcome::Stale => {
                    // Retried at the new revision, as the booking layer does.
                    won(s, new(hold_at(&renamed, start, 90), &[t], 2, morning())).await;
                }
                other => panic!("round {round}: {other:?}"),
            }
        }
        let late = insert(s, new(hold_at(&r, at(22, 15), 30), &["t2"], 1, morning())).await;
        assert!(matches!(late, InsertOutcome::Stale), "{late:?}");
    }
}

async fn a_change_racing_combined_holds_leaves_them_stale_never_committed_after_it(b: &Backend) {
    let other = b.another_instance().await;
    for round in 0..4u64 {
        let s = &b.store;
        let r = combined(s, &format!("Ensemble {round}")).await;
        // The change removes the combination: no hold on it may commit after the change. The
        // holds' times do not overlap, so each either wins or is stale.
        let mut apart = r.clone();
        apart.combinations.clear();
        let holds: Vec<_> = [at(18, 0), at(21, 0), at(19, 30)]
            .into_iter()
            .enumerate()
            .map(|(i, start)| {
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let delay = (5 * i as u64) * (round + 1);
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    let began = Instant::now();
                    let party6 = reservation(
                        &r,
                        start,
                        90,
                        6,
                        tablecast::domain::reservation::Status::Held,
                        morning(),
                    );
                    let n = new_on(party6, vec![combo("c34", &["t3", "t4"])], morning());
                    (began, insert(&s, n).await)
                })
            })
            .collect();
        let out = other
            .replace_restaurant(&apart, 1, Guard::None, morning())
            .await
            .unwrap();
        let done_at = Instant::now();
        assert!(
            matches!(out, ReplaceOutcome::Done(_)),
            "round {round}: {out:?}"
        );
        let mut wins = 0;
        for h in holds {
            match h.await.unwrap() {
                (began, InsertOutcome::Won { .. }) => {
                    wins += 1;
                    assert!(
                        began < done_at,
                        "round {round}: a combined hold begun after the change won"
                    );
                }
                (_, InsertOutcome::Stale) => {}
                (_, other) => panic!("round {round}: {other:?}"),
            }
        }
        let combined_now = s
            .reservations_on(r.id, day())
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.combination_id.is_some())
            .count();
        assert_eq!(combined_now, wins, "round {round}");
        let late = new_on(
            reservation(
                &r,
                at(22, 30),
                60,
                6,
                tablecast::domain::reservation::Status::Held,
                morning(),
            ),
            vec![combo("c34", &["t3", "t4"])],
            morning(),
        );
        let late = insert(s, late).await;
        assert!(matches!(late, InsertOutcome::Stale), "{late:?}");
    }
}
