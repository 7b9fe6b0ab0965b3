//! DynamoDB only: which items combined and paced holds write, read from every
//! `TransactWriteItems` through the fault-injection connector, and a paced loser told of a
//! transaction conflict.
use crate::faults::{stores, transaction_keys, Inject, TX};
use crate::fixtures::*;
use std::collections::{BTreeMap, BTreeSet};
use tablecast::domain::reservation::Status;
use tablecast::domain::Pacing;
use tablecast::store::InsertOutcome;

type Key = (String, String);

/// For every item key, the indexes of the transactions that wrote or checked it.
fn owners(sent: &[serde_json::Value]) -> BTreeMap<Key, BTreeSet<usize>> {
    let mut owners: BTreeMap<Key, BTreeSet<usize>> = BTreeMap::new();
    for (i, body) in sent.iter().enumerate() {
        for (_, k) in transaction_keys(body) {
            owners.entry(k).or_default().insert(i);
        }
    }
    owners
}

fn paced(max_covers: u32) -> Pacing {
    Pacing {
        window_minutes: 15,
        max_covers: Some(max_covers),
        max_parties: None,
    }
}

/// A party of 2 at `hh:mm` on `table`, counted in its 15-minute window.
fn paced_hold(
    r: &tablecast::domain::Restaurant,
    table: &str,
    hh: u32,
    mm: u32,
) -> tablecast::store::NewReservation {
    let mut n = new(hold_at(r, at(hh, mm), 90), &[table], 1, morning());
    let p = r.pacing.unwrap();
    n.pacing = Some(window(
        hh as u16,
        (mm / 15 * 15) as u16,
        15,
        p.max_covers,
        p.max_parties,
        true,
    ));
    n
}

#[tokio::test]
async fn paced_holds_share_only_their_windows_item_and_none_across_windows() {
    let Some((plain, faulty, faults)) = stores("paced_shared_items").await else {
        return;
    };
    let r = paced_with_tables(&plain, "Fenêtres", 6, paced(40)).await;
    // Two holds in the 19:00 window, one at 19:15, one at 19:30, each on its own table.
    let holds = [
        ("p001", 19, 0),
        ("p002", 19, 5),
        ("p003", 19, 15),
        ("p004", 19, 30),
    ];
    for (t, hh, mm) in holds {
        won(&faulty, paced_hold(&r, t, hh, mm)).await;
    }
    let sent = faults.transactions();
    assert_eq!(sent.len(), 4, "one transaction per hold");
    let shared: BTreeMap<Key, BTreeSet<usize>> = owners(&sent)
        .into_iter()
        .filter(|(_, by)| by.len() > 1)
        .collect();
    let window = (format!("P#{}", r.id), format!("{}#19:00#19:15", day()));
    assert_eq!(
        shared,
        BTreeMap::from([(window, BTreeSet::from([0, 1]))]),
        "holds of one window share its item only; holds of different windows share nothing"
    );
    // Each window has its own item.
    let windows: BTreeSet<Key> = owners(&sent)
        .into_keys()
        .filter(|(pk, _)| pk.starts_with("P#"))
        .collect();
    assert_eq!(windows.len(), 3, "{windows:?}");
}

#[tokio::test]
async fn a_combined_hold_checks_and_claims_every_member_table_in_one_transaction() {
    let Some((plain, faulty, faults)) = stores("combined_items").await else {
        return;
    };
    let r = combined(&plain, "Ensemble").await;
    let party6 = reservation(&r, at(19, 0), 150, 6, Status::Held, morning());
    won(
        &faulty,
        new_on(party6, vec![combo("c34", &["t3", "t4"])], morning()),
    )
    .await;
    // A hold on t1 at the same time shares no item with it.
    won(
        &faulty,
        new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning()),
    )
    .await;
    let sent = faults.transactions();
    assert_eq!(sent.len(), 2);
    let keys = transaction_keys(&sent[0]);
    let checked: BTreeSet<Key> = keys
        .iter()
        .filter(|(kind, _)| kind == "ConditionCheck")
        .map(|(_, k)| k.clone())
        .collect();
    let member = |t: &str| format!("O#{}#{t}", r.id);
    assert_eq!(
        checked,
        BTreeSet::from([(member("t3"), "T".into()), (member("t4"), "T".into())]),
        "the settings fence of every member"
    );
    for t in ["t3", "t4"] {
        let cells = keys
            .iter()
            .filter(|(kind, (pk, sk))| kind == "Update" && *pk == member(t) && sk != "T")
            .count();
        assert_eq!(
            cells, 10,
            "{t}: 150 minutes from 19:00 UTC in 15-minute cells"
        );
    }
    let shared: Vec<Key> = owners(&sent)
        .into_iter()
        .filter(|(_, by)| by.len() > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(shared.is_empty(), "{shared:?}");
}

#[tokio::test]
async fn a_paced_loser_told_of_a_conflict_answers_pacing_at_once() {
    let Some((plain, faulty, faults)) = stores("paced_loser_conflict").await else {
        return;
    };
    let r = paced_with_tables(&plain, "Complet", 3, paced(2)).await;
    won(&plain, paced_hold(&r, "p001", 19, 0)).await;
    // The loser read the window and the day before the winner committed, so it writes; the
    // write meets a conflict, and the window it read has moved on meanwhile.
    faults.inject("GetItem", Inject::StaleRead, 1);
    faults.inject("Query", Inject::StaleRead, 1);
    faults.inject(TX, Inject::Conflict, 1);
    let out = faulty
        .insert_reservation(paced_hold(&r, "p002", 19, 5))
        .await
        .unwrap();
    assert!(matches!(out, InsertOutcome::Paced { .. }), "{out:?}");
    assert_eq!(faults.calls(TX), 1, "answered at once, not retried");
    let on_day = plain.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(on_day.len(), 1);
}
