//! Offers decided by the store alone: concurrent offers to one entry, and of one freed table
//! to two entries, each with every call racing. Whatever the interleaving, one offer wins and
//! nothing of a loser is written. And the days the reconcile loop visits.
use crate::backend::Backend;
use crate::fixtures::*;
use futures_util::future::join_all;
use tablecast::domain::reservation::{Guest, Status};
use tablecast::domain::waitlist::{WaitStatus, WaitlistEntry};
use tablecast::domain::{Restaurant, WallTime};
use tablecast::store::{DynStore, JoinOutcome, NewEntry, NewOffer, OfferOutcome};
use uuid::Uuid;

contract!(
    ten_concurrent_offers_to_one_entry_make_one_offer_and_one_hold,
    two_entries_offered_one_freed_table_at_once_get_one_offer,
    waiting_days_lists_a_day_while_it_has_waiting_entries_and_again_after_a_new_join,
);

/// A `waiting` entry of `r` on [`day`] for a party of 2 at 19:00, joined at `morning + secs`.
pub async fn joined(s: &DynStore, r: &Restaurant, secs: i64) -> WaitlistEntry {
    let at = morning() + chrono::Duration::seconds(secs);
    let entry = WaitlistEntry {
        id: Uuid::new_v4(),
        restaurant_id: r.id,
        date: day(),
        party_size: 2,
        from: WallTime::parse("19:00").unwrap(),
        to: WallTime::parse("19:00").unwrap(),
        status: WaitStatus::Waiting,
        offer: None,
        guest: Guest {
            name: "Ada".into(),
            email: None,
            phone: None,
        },
        created_at: at,
        updated_at: at,
    };
    let new = NewEntry {
        entry,
        token_hash: format!("wtok-{}", Uuid::new_v4()),
    };
    match s.join_waitlist(new).await.unwrap() {
        JoinOutcome::Joined { entry, .. } => entry,
        other => panic!("expected a join, got {other:?}"),
    }
}

/// An offer to `entry` of a 90-minute hold at 19:00 UTC on `table`, lasting two minutes.
pub fn offer_on(r: &Restaurant, entry: Uuid, table: &str) -> NewOffer {
    let mut hold = new(hold_at(r, at(19, 0), 90), &[table], 1, morning());
    hold.token_hash = None;
    hold.reservation.expires_at = Some(morning() + chrono::Duration::seconds(120));
    NewOffer {
        entry_id: entry,
        hold,
        mail: None,
    }
}

async fn held(s: &DynStore, r: &Restaurant) -> usize {
    let day = s.day(r.id, day()).await.unwrap();
    day.reservations
        .iter()
        .filter(|x| x.status == Status::Held)
        .count()
}

async fn ten_concurrent_offers_to_one_entry_make_one_offer_and_one_hold(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Une seule offre").await;
    let e = joined(s, &r, 0).await;
    let tables = ["t1", "t2", "t3"];
    let outs = join_all((0..10).map(|i| s.offer(offer_on(&r, e.id, tables[i % 3])))).await;
    let mut won = Vec::new();
    for o in outs {
        match o.unwrap() {
            OfferOutcome::Offered {
                entry, reservation, ..
            } => won.push((entry, reservation)),
            // Lost only to the offer on the same table that won.
            OfferOutcome::NotWaiting(_) | OfferOutcome::Lost => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one offer to the entry");
    let (entry, res) = &won[0];
    assert_eq!(entry.offer.as_ref().unwrap().reservation_id, res.id);
    let stored = s.waitlist_entry(e.id).await.unwrap().unwrap();
    assert_eq!(stored.status, WaitStatus::Offered);
    assert_eq!(stored.offer, entry.offer);
    assert_eq!(held(s, &r).await, 1, "no hold of a losing offer is left");
}

async fn two_entries_offered_one_freed_table_at_once_get_one_offer(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Une table").await;
    for _ in 0..5 {
        let (first, second) = (joined(s, &r, 0).await, joined(s, &r, 1).await);
        // Two instances each offer the freed t1: one to the first entry, one to the second.
        let (a, c) = tokio::join!(
            s.offer(offer_on(&r, first.id, "t1")),
            s.offer(offer_on(&r, second.id, "t1"))
        );
        let wins = [a.unwrap(), c.unwrap()]
            .iter()
            .filter(|o| matches!(o, OfferOutcome::Offered { .. }))
            .count();
        assert_eq!(wins, 1, "one freed table, one offer");
        let statuses = [
            s.waitlist_entry(first.id).await.unwrap().unwrap().status,
            s.waitlist_entry(second.id).await.unwrap().unwrap().status,
        ];
        assert_eq!(
            statuses
                .iter()
                .filter(|x| **x == WaitStatus::Offered)
                .count(),
            1,
            "{statuses:?}"
        );
        assert!(statuses.contains(&WaitStatus::Waiting), "{statuses:?}");
        // Free t1 again for the next round: the offer's entry leaves, declining it.
        let offered = if statuses[0] == WaitStatus::Offered {
            first.id
        } else {
            second.id
        };
        s.leave_waitlist(offered, morning()).await.unwrap();
        assert_eq!(held(s, &r).await, 0);
    }
}

async fn waiting_days_lists_a_day_while_it_has_waiting_entries_and_again_after_a_new_join(
    b: &Backend,
) {
    let s = &b.store;
    let r = created(s, "Jours").await;
    let listed = || async {
        s.waiting_days(day(), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.restaurant_id == r.id)
            .map(|d| (d.date, d.oldest))
            .collect::<Vec<_>>()
    };
    assert!(listed().await.is_empty());
    let first = joined(s, &r, 0).await;
    let second = joined(s, &r, 5).await;
    assert_eq!(listed().await, vec![(day(), first.created_at)]);
    s.leave_waitlist(first.id, morning()).await.unwrap();
    assert_eq!(listed().await, vec![(day(), second.created_at)]);
    s.leave_waitlist(second.id, morning()).await.unwrap();
    // Read twice: the first read finds the day empty (and may remember it), the second too.
    assert!(listed().await.is_empty());
    assert!(listed().await.is_empty());
    let third = joined(s, &r, 9).await;
    assert_eq!(listed().await, vec![(day(), third.created_at)]);
    // A later `from` leaves the day out.
    assert!(s
        .waiting_days(day().succ(), 1000)
        .await
        .unwrap()
        .iter()
        .all(|d| d.restaurant_id != r.id));
}
