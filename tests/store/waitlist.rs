//! The waitlist: freed capacity is offered as an exclusive hold to the first fitting waiting
//! entry, in one write with the entry's change; refusals cascade; concurrent frees and several
//! instances never make two offers of one capacity nor give one entry two offers.
use crate::backend::Backend;
use crate::fixtures::{self, booking, restaurant};
use crate::kit::wait::{eventually, until};
use chrono::{Duration, SubsecRound as _, Utc};
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use tablecast::booking::{Booking, Cause, Change, HoldRequest, JoinRequest, Publish};
use tablecast::domain::reservation::{Guest, Status};
use tablecast::domain::time::local_date_of;
use tablecast::domain::waitlist::{WaitStatus, WaitlistEntry};
use tablecast::domain::{LocalDate, PartySize, Reservation, Restaurant, TableId, WallTime};
use tablecast::metrics::Metrics;
use tablecast::store::{DynStore, NewOffer, NewReservation, OfferOutcome};
use uuid::Uuid;

contract!(
    a_release_offers_the_freed_table_to_the_first_fitting_entry_exclusively,
    a_cancel_offers_the_freed_table,
    an_expired_hold_is_offered_by_the_sweep,
    two_holds_that_fill_a_paced_window_and_expire_together_offer_the_room_they_opened,
    a_slow_offer_holds_up_no_sweep_and_no_other_expiry,
    an_expiry_is_published_at_once_when_its_offer_is_held_back,
    a_passed_offer_cascades_to_the_next_entry_and_a_confirmed_one_books,
    an_offer_that_expires_lapses_and_cascades,
    an_earlier_entry_that_does_not_fit_does_not_block_a_later_one,
    capacity_freed_before_an_entry_joined_is_not_offered_to_it,
    twenty_entries_five_tables_freed_at_once_on_two_instances_make_exactly_five_offers,
    leaving_declines_a_pending_offer_and_repeats_change_nothing,
    the_offer_write_refuses_an_entry_that_is_not_waiting,
    retention_deletes_finished_entries_and_keeps_waiting_ones,
    an_offer_swept_long_after_it_expired_lapses_at_its_expiry,
    an_offer_lost_to_a_crash_after_the_freeing_commit_is_made_by_the_reconcile,
    the_reconcile_offers_only_what_an_early_end_freed,
    the_reconcile_offers_the_next_dates_time_a_late_seating_freed,
    a_status_change_never_says_nobody_waits_while_an_entry_does,
);

const WAIT: StdDuration = StdDuration::from_secs(10);

/// Keeps the causes of what is published.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Cause>>);
impl Publish for Recorder {
    fn publish(&self, c: Change) {
        self.0.lock().unwrap().push(c.cause);
    }
}

/// A date ten days ahead in Paris (within the horizon, never in the past).
fn date() -> LocalDate {
    local_date_of(chrono_tz::Europe::Paris, Utc::now() + Duration::days(10))
}

fn t(s: &str) -> WallTime {
    WallTime::parse(s).unwrap()
}

/// `n` tables for parties of 1–2 (`t1`…), open 18:00–23:00 in Paris.
async fn created(store: &DynStore, tables: usize, hold_seconds: u32) -> Restaurant {
    let mut r = restaurant("Waitlist");
    r.tables = (1..=tables)
        .map(|i| tablecast::domain::Table {
            id: TableId::parse(&format!("t{i}")).unwrap(),
            label: format!("T{i}"),
            min_party: 1,
            max_party: 2,
            area: None,
        })
        .collect();
    r.hold_seconds = hold_seconds;
    r.validate().unwrap();
    store
        .create_restaurant(&r, "staff", Utc::now())
        .await
        .unwrap();
    r
}

async fn hold(b: &Booking, r: &Restaurant, time: &str, party: i64) -> Reservation {
    b.hold(HoldRequest {
        restaurant_id: r.id,
        date: date(),
        time: t(time),
        party_size: PartySize::new(party).unwrap(),
        table_id: None,
        combination_id: None,
        cap: None,
        idem: None,
    })
    .await
    .expect("the hold wins")
    .0
}

/// Holds every table at `time` for a party of 2.
async fn fill(b: &Booking, r: &Restaurant, time: &str) -> Vec<Reservation> {
    let mut v = Vec::new();
    for _ in &r.tables {
        v.push(hold(b, r, time, 2).await);
    }
    v
}

async fn join(b: &Booking, r: &Restaurant, party: i64, from: &str, to: &str) -> Uuid {
    join_on(b, r, date(), party, from, to).await
}

/// An entry of `r` on `on`, for a party of `party` from `from` to `to`.
async fn join_on(
    b: &Booking,
    r: &Restaurant,
    on: LocalDate,
    party: i64,
    from: &str,
    to: &str,
) -> Uuid {
    b.join_waitlist(JoinRequest {
        restaurant_id: r.id,
        date: on,
        party_size: PartySize::new(party).unwrap(),
        from: t(from),
        to: t(to),
        guest: Guest {
            name: "Ada".into(),
            email: None,
            phone: None,
        },
    })
    .await
    .expect("joins")
    .0
    .entry
    .id
}

async fn entry(store: &DynStore, id: Uuid) -> WaitlistEntry {
    store
        .waitlist_entry(id)
        .await
        .unwrap()
        .expect("entry exists")
}

async fn offered(store: &DynStore, id: Uuid) -> WaitlistEntry {
    until(WAIT, "an offer to the entry", || async {
        let e = entry(store, id).await;
        (e.status == WaitStatus::Offered).then_some(e)
    })
    .await
}

async fn reservation(store: &DynStore, id: Uuid) -> Reservation {
    store.reservation(id).await.unwrap().expect("reservation")
}

async fn a_release_offers_the_freed_table_to_the_first_fitting_entry_exclusively(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 3, 300).await;
    let held = fill(&bk, &r, "19:00").await;
    let first = join(&bk, &r, 2, "18:30", "19:30").await;
    let second = join(&bk, &r, 2, "18:30", "19:30").await;
    let placed = bk.waitlist_on(r.id, date()).await.unwrap();
    assert_eq!(
        placed.iter().map(|p| p.position).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
    let before = Utc::now();
    bk.release(held[1].id).await.unwrap();
    let e = offered(s, first).await;
    let offer = e.offer.clone().expect("offer");
    assert_eq!(offer.time, t("19:00"), "the freed start itself");
    let o = reservation(s, offer.reservation_id).await;
    assert_eq!(o.status, Status::Held);
    assert_eq!(
        o.table_ids, held[1].table_ids,
        "the freed table, not another"
    );
    assert_eq!(o.expires_at, Some(offer.expires_at));
    let secs = (offer.expires_at - before).num_seconds();
    assert!((115..=125).contains(&secs), "offer_seconds 120, got {secs}");
    assert_eq!(entry(s, second).await.status, WaitStatus::Waiting);
    // Nobody else can take the offered capacity meanwhile.
    let lost = bk
        .hold(HoldRequest {
            restaurant_id: r.id,
            date: date(),
            time: t("19:00"),
            party_size: PartySize::new(2).unwrap(),
            table_id: None,
            combination_id: None,
            cap: None,
            idem: None,
        })
        .await;
    assert!(lost.is_err(), "the offered table is held for the entry");
    let placed = bk.waitlist_on(r.id, date()).await.unwrap();
    assert_eq!(
        placed.iter().map(|p| p.position).collect::<Vec<_>>(),
        vec![None, Some(1)]
    );
}

async fn a_cancel_offers_the_freed_table(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let held = hold(&bk, &r, "20:00", 2).await;
    let guest = Guest {
        name: "Bo".into(),
        email: None,
        phone: None,
    };
    bk.confirm(held.id, guest, None, None).await.unwrap();
    let e = join(&bk, &r, 1, "19:00", "21:00").await;
    bk.release(held.id).await.unwrap();
    assert_eq!(reservation(s, held.id).await.status, Status::Cancelled);
    let got = offered(s, e).await;
    assert_eq!(got.offer.unwrap().time, t("20:00"));
}

async fn an_expired_hold_is_offered_by_the_sweep(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 1).await;
    let held = hold(&bk, &r, "19:00", 2).await;
    let e = join(&bk, &r, 2, "19:00", "19:00").await;
    eventually(WAIT, "the hold to expire", || async {
        bk.sweep().await.unwrap() > 0
    })
    .await;
    assert_eq!(reservation(s, held.id).await.status, Status::Expired);
    offered(s, e).await;
}

/// Two holds fill a paced window between them (2 + 2 of 4 covers) and expire together: the room
/// for a party of 4 that they open only together goes to the waiting party of 4, on the table
/// that was free all along (its window was full, so it was not public).
async fn two_holds_that_fill_a_paced_window_and_expire_together_offer_the_room_they_opened(
    b: &Backend,
) {
    let s = &b.store;
    let bk = booking(s);
    let mut r = restaurant("Paced waitlist");
    r.tables = [("t1", 2), ("t2", 2), ("t3", 4)]
        .into_iter()
        .map(|(id, max)| tablecast::domain::Table {
            id: TableId::parse(id).unwrap(),
            label: id.to_uppercase(),
            min_party: 1,
            max_party: max,
            area: None,
        })
        .collect();
    r.hold_seconds = 2;
    r.pacing = Some(tablecast::domain::Pacing {
        window_minutes: 30,
        max_covers: Some(4),
        max_parties: None,
    });
    r.validate().unwrap();
    s.create_restaurant(&r, "staff", Utc::now()).await.unwrap();
    let a = hold(&bk, &r, "19:30", 2).await;
    let b2 = hold(&bk, &r, "19:30", 2).await;
    let mut on: Vec<String> = [&a, &b2].iter().map(|h| h.table_id.to_string()).collect();
    on.sort();
    assert_eq!(on, ["t1", "t2"], "best fit first");
    let e = join(&bk, &r, 4, "19:45", "19:45").await;
    eventually(WAIT, "both holds to expire", || async {
        bk.sweep().await.unwrap();
        let (a, b2) = (reservation(s, a.id).await, reservation(s, b2.id).await);
        a.status == Status::Expired && b2.status == Status::Expired
    })
    .await;
    let got = offered(s, e).await;
    let offer = got.offer.expect("offer");
    assert_eq!(offer.time, t("19:45"));
    let o = reservation(s, offer.reservation_id).await;
    assert_eq!(o.table_ids, vec![TableId::parse("t3").unwrap()]);
    assert_eq!(o.party_size, 4);
}

/// The sweep offers what each expired hold freed and then publishes it, in a task of its own: an
/// offer that takes long (here held back 30 s) holds up neither the sweep nor the expiry of
/// another restaurant's hold.
async fn a_slow_offer_holds_up_no_sweep_and_no_other_expiry(b: &Backend) {
    let s = &b.store;
    let bk = booking(s).with_test_only_offer_delay(StdDuration::from_secs(30));
    let r1 = created(s, 1, 1).await;
    let mut r2 = restaurant("Elsewhere");
    r2.tables = r1.tables.clone();
    r2.hold_seconds = 2;
    r2.validate().unwrap();
    s.create_restaurant(&r2, "staff-elsewhere", Utc::now())
        .await
        .unwrap();
    let h1 = hold(&bk, &r1, "19:00", 2).await;
    let h2 = hold(&bk, &r2, "19:00", 2).await;
    join(&bk, &r1, 2, "19:00", "19:00").await;
    eventually(WAIT, "both holds to expire", || async {
        tokio::time::timeout(StdDuration::from_secs(5), bk.sweep())
            .await
            .expect("a sweep waits for no offer")
            .unwrap();
        let (a, b) = (reservation(s, h1.id).await, reservation(s, h2.id).await);
        a.status == Status::Expired && b.status == Status::Expired
    })
    .await;
}

/// An expiry is broadcast within the contract's 2 s whatever its offer does. With the offer held
/// back (the hidden crash-test delay, 30 s here) it is published at once and offered after, as
/// a release is: an instance that dies in between leaves the offer to the reconcile, never the
/// expiry unpublished.
async fn an_expiry_is_published_at_once_when_its_offer_is_held_back(b: &Backend) {
    let s = &b.store;
    let seen = Arc::new(Recorder::default());
    let bk = Booking::new(s.clone(), seen.clone(), Metrics::new())
        .with_test_only_offer_delay(StdDuration::from_secs(30));
    let r = created(s, 1, 1).await;
    hold(&bk, &r, "19:00", 2).await;
    join(&bk, &r, 2, "19:00", "19:00").await;
    eventually(WAIT, "the hold's expiry published", || async {
        bk.sweep().await.unwrap();
        seen.0.lock().unwrap().contains(&Cause::Expired)
    })
    .await;
}

async fn a_passed_offer_cascades_to_the_next_entry_and_a_confirmed_one_books(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let held = hold(&bk, &r, "19:00", 2).await;
    let (e1, e2, e3) = (
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    bk.release(held.id).await.unwrap();
    let o1 = offered(s, e1).await.offer.unwrap().reservation_id;
    // The entry's token releases the offer like a reservation token: lapsed, and on to e2.
    bk.release(o1).await.unwrap();
    assert_eq!(entry(s, e1).await.status, WaitStatus::Lapsed);
    let o2 = offered(s, e2).await.offer.unwrap().reservation_id;
    assert_ne!(o1, o2);
    let guest = Guest {
        name: "Cy".into(),
        email: None,
        phone: None,
    };
    bk.confirm(o2, guest, None, None).await.unwrap();
    assert_eq!(entry(s, e2).await.status, WaitStatus::Booked);
    assert_eq!(reservation(s, o2).await.status, Status::Confirmed);
    assert_eq!(entry(s, e3).await.status, WaitStatus::Waiting);
}

/// An offer written as made 30 s ago and expiring a moment from now (the store takes `now` from
/// the caller): it reads as lapsed as soon as it expires, the sweep expires it and lapses the
/// entry in that write, and the next entry (which joined before the expiry) gets the table.
async fn an_offer_that_expires_lapses_and_cascades(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let (e1, e2) = (
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    let past = Utc::now() - Duration::seconds(30);
    let o = s
        .offer(NewOffer {
            entry_id: e1,
            hold: offer_hold(s, &r, "19:00", past, Duration::milliseconds(30_300)).await,
            mail: None,
        })
        .await
        .unwrap();
    assert!(matches!(o, OfferOutcome::Offered { .. }), "{o:?}");
    // Offered and live until its deadline (stated at the deadline, not at the clock: the offer
    // may well have expired already on a busy machine).
    let stored = entry(s, e1).await;
    assert_eq!(stored.status, WaitStatus::Offered);
    let deadline = stored.offer.as_ref().expect("the offer").expires_at;
    assert_eq!(
        deadline,
        (past + Duration::milliseconds(30_300)).trunc_subsecs(3)
    );
    assert_eq!(
        stored.status_at(deadline - Duration::milliseconds(1)),
        WaitStatus::Offered
    );
    // Read at once as lapsed once expired, before any sweep.
    eventually(WAIT, "the offer to read as lapsed", || async {
        entry(s, e1).await.status_at(Utc::now()) == WaitStatus::Lapsed
    })
    .await;
    assert_eq!(
        entry(s, e1).await.status,
        WaitStatus::Offered,
        "not swept yet"
    );
    assert!(bk.sweep().await.unwrap() >= 1);
    assert_eq!(entry(s, e1).await.status, WaitStatus::Lapsed);
    offered(s, e2).await;
}

/// A hold of the whole restaurant's options for a party of 2 at `time`, made at `now`.
async fn offer_hold(
    s: &DynStore,
    r: &Restaurant,
    time: &str,
    now: chrono::DateTime<Utc>,
    lasts: Duration,
) -> NewReservation {
    let stored = s.restaurant(r.id).await.unwrap().unwrap();
    let p = PartySize::new(2).unwrap();
    let slot = tablecast::domain::grid::check_start(
        r,
        date(),
        t(time),
        p,
        Utc::now() - Duration::hours(1),
    )
    .unwrap();
    let options = r.fitting_options(p);
    let mut res = Reservation {
        id: Uuid::new_v4(),
        restaurant_id: r.id,
        table_id: options[0].first().clone(),
        table_ids: vec![],
        combination_id: None,
        date: date(),
        time: slot.time,
        start: slot.start,
        end: slot.end,
        party_size: 2,
        status: Status::Held,
        expires_at: Some(now + lasts),
        guest: None,
        notes: String::new(),
        created_at: now,
        updated_at: now,
    };
    res.seat(&options[0]);
    NewReservation {
        reservation: res,
        candidates: options,
        pacing: None,
        restaurant_revision: stored.revision,
        token_hash: None,
        now,
        cap: None,
        idem: None,
    }
}

async fn an_earlier_entry_that_does_not_fit_does_not_block_a_later_one(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 2, 300).await;
    let held = fill(&bk, &r, "19:00").await;
    // Too big for any table, then a window that does not meet the freed time, then one that fits.
    let big = join(&bk, &r, 6, "19:00", "19:00").await;
    let late = join(&bk, &r, 2, "21:30", "21:30").await;
    let fits = join(&bk, &r, 2, "18:00", "20:00").await;
    bk.release(held[0].id).await.unwrap();
    offered(s, fits).await;
    assert_eq!(entry(s, big).await.status, WaitStatus::Waiting);
    assert_eq!(entry(s, late).await.status, WaitStatus::Waiting);
}

async fn capacity_freed_before_an_entry_joined_is_not_offered_to_it(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 2, 300).await;
    let held = fill(&bk, &r, "19:00").await;
    bk.release(held[0].id).await.unwrap();
    // Joins after the release: that capacity was public when it joined.
    let e = join(&bk, &r, 2, "19:00", "19:00").await;
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
    assert_eq!(entry(s, e).await.status, WaitStatus::Waiting);
    // Capacity freed after it joined is offered.
    bk.release(held[1].id).await.unwrap();
    let got = offered(s, e).await;
    let o = reservation(s, got.offer.unwrap().reservation_id).await;
    assert_eq!(o.table_ids, held[1].table_ids);
}

async fn twenty_entries_five_tables_freed_at_once_on_two_instances_make_exactly_five_offers(
    b: &Backend,
) {
    let s = &b.store;
    let other = b.another_instance().await;
    let (one, two) = (booking(s), booking(&other));
    let r = created(s, 5, 300).await;
    let held = fill(&one, &r, "19:00").await;
    let mut entries = Vec::new();
    for _ in 0..20 {
        entries.push(join(&one, &r, 2, "19:00", "19:00").await);
    }
    // Five releases at once, each also offered again by the second instance, concurrently.
    join_all(held.iter().map(|h| {
        let (one, two) = (one.clone(), two.clone());
        let id = h.id;
        async move {
            one.release(id).await.unwrap();
            let freed = reservation(two.store(), id).await;
            two.offer_freed(tablecast::domain::waitlist::Freed::of(&freed))
                .await
                .unwrap();
        }
    }))
    .await;
    for e in &entries[..5] {
        offered(s, *e).await;
    }
    // Both reconcile loops find nothing more to offer.
    let (a, c) = tokio::join!(one.reconcile_waitlist(), two.reconcile_waitlist());
    assert_eq!((a.unwrap(), c.unwrap()), (0, 0));
    let all = s.waitlist_on(r.id, date()).await.unwrap();
    let statuses: Vec<_> = all.iter().map(|e| e.status).collect();
    assert_eq!(&statuses[..5], &[WaitStatus::Offered; 5]);
    assert_eq!(&statuses[5..], &[WaitStatus::Waiting; 15]);
    let mut offers: Vec<Uuid> = all[..5]
        .iter()
        .map(|e| e.offer.as_ref().unwrap().reservation_id)
        .collect();
    let mut tables = Vec::new();
    for o in &offers {
        tables.extend(reservation(s, *o).await.table_ids);
    }
    tables.sort();
    tables.dedup();
    assert_eq!(tables.len(), 5, "one offer per freed table");
    offers.sort();
    offers.dedup();
    assert_eq!(offers.len(), 5);
}

async fn leaving_declines_a_pending_offer_and_repeats_change_nothing(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let held = hold(&bk, &r, "19:00", 2).await;
    let (e1, e2, e3) = (
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    bk.leave_waitlist(e2).await.unwrap();
    assert_eq!(entry(s, e2).await.status, WaitStatus::Left);
    let placed = bk.waitlist_on(r.id, date()).await.unwrap();
    assert_eq!(
        placed.iter().map(|p| p.position).collect::<Vec<_>>(),
        vec![Some(1), None, Some(2)]
    );
    bk.release(held.id).await.unwrap();
    let o = offered(s, e1).await.offer.unwrap().reservation_id;
    bk.leave_waitlist(e1).await.unwrap();
    assert_eq!(entry(s, e1).await.status, WaitStatus::Left);
    assert_eq!(reservation(s, o).await.status, Status::Released);
    offered(s, e3).await;
    bk.leave_waitlist(e1).await.unwrap();
    assert_eq!(entry(s, e1).await.status, WaitStatus::Left);
}

async fn the_offer_write_refuses_an_entry_that_is_not_waiting(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 2, 300).await;
    let e = join(&bk, &r, 2, "19:00", "19:00").await;
    let now = Utc::now();
    let first = s
        .offer(NewOffer {
            entry_id: e,
            hold: offer_hold(s, &r, "19:00", now, Duration::seconds(120)).await,
            mail: None,
        })
        .await
        .unwrap();
    assert!(matches!(first, OfferOutcome::Offered { .. }), "{first:?}");
    // A second offer to the same entry, on the other table: refused, nothing written.
    let second = s
        .offer(NewOffer {
            entry_id: e,
            hold: offer_hold(s, &r, "19:00", now, Duration::seconds(120)).await,
            mail: None,
        })
        .await
        .unwrap();
    assert!(
        matches!(second, OfferOutcome::NotWaiting(Some(_))),
        "{second:?}"
    );
    let day = s.day(r.id, date()).await.unwrap();
    assert_eq!(
        day.reservations
            .iter()
            .filter(|x| x.status == Status::Held)
            .count(),
        1
    );
}

async fn retention_deletes_finished_entries_and_keeps_waiting_ones(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    // A booked entry: offered the time a release freed, and confirmed.
    let held = hold(&bk, &r, "19:00", 2).await;
    let booked = join(&bk, &r, 2, "19:00", "19:00").await;
    bk.release(held.id).await.unwrap();
    let offer = offered(s, booked).await.offer.unwrap().reservation_id;
    let guest = Guest {
        name: "Bo".into(),
        email: None,
        phone: None,
    };
    bk.confirm(offer, guest, None, None).await.unwrap();
    assert_eq!(entry(s, booked).await.status, WaitStatus::Booked);
    let (gone, kept) = (
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    bk.leave_waitlist(gone).await.unwrap();
    // A cut-off after the leave, but before the entries' date.
    let n = s
        .purge(Utc::now() + Duration::seconds(1), 100)
        .await
        .unwrap();
    assert!(n >= 1);
    assert!(s.waitlist_entry(gone).await.unwrap().is_none());
    assert_eq!(entry(s, kept).await.status, WaitStatus::Waiting);
    // Once its date is past the cut-off, a waiting entry goes too; a booked one stays, with
    // its token, like the reservation it became.
    s.purge(Utc::now() + Duration::days(12), 100).await.unwrap();
    assert!(s.waitlist_entry(kept).await.unwrap().is_none());
    assert_eq!(entry(s, booked).await.status, WaitStatus::Booked);
    assert_eq!(reservation(s, offer).await.status, Status::Confirmed);
    // Nothing more goes on another run: what stays is kept, not retried.
    assert_eq!(
        s.purge(Utc::now() + Duration::days(12), 100).await.unwrap(),
        0
    );
    assert_eq!(entry(s, booked).await.status, WaitStatus::Booked);
}

/// The server was down when the offer expired: the sweep long after lapses the entry as of the
/// expiry, which retention counts from.
async fn an_offer_swept_long_after_it_expired_lapses_at_its_expiry(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let held = hold(&bk, &r, "19:00", 2).await;
    let e = join(&bk, &r, 2, "19:00", "19:00").await;
    bk.release(held.id).await.unwrap();
    let expiry = offered(s, e).await.offer.unwrap().expires_at;
    let swept = s.expire_due(expiry + Duration::days(3), 10).await.unwrap();
    assert_eq!(swept.len(), 1);
    let lapsed = entry(s, e).await;
    assert_eq!(lapsed.status, WaitStatus::Lapsed);
    assert_eq!(lapsed.updated_at, expiry);
}

/// The release is committed straight through the store, as by an instance that crashed before
/// offering it: the reconcile loop finds the freed capacity and offers it, once.
async fn an_offer_lost_to_a_crash_after_the_freeing_commit_is_made_by_the_reconcile(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 2, 300).await;
    let held = fill(&bk, &r, "19:00").await;
    let (e1, e2) = (
        join(&bk, &r, 2, "19:00", "19:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    let t =
        tablecast::store::Transition::new(held[0].id, Status::Held, Status::Released, Utc::now());
    s.transition(t).await.unwrap();
    assert_eq!(entry(s, e1).await.status, WaitStatus::Waiting);
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 1);
    assert_eq!(entry(s, e1).await.status, WaitStatus::Offered);
    assert_eq!(entry(s, e2).await.status, WaitStatus::Waiting);
    // Nothing more to repair.
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
}

/// A restaurant on UTC, open all day, with one table, and a walk-in of two seated on it at
/// `time` on [`date`] for `minutes` (written straight through the store: hours do not apply to
/// a walk-in, which is how a reservation runs past midnight).
async fn late_seating(
    s: &DynStore,
    name: &str,
    time: &str,
    minutes: i64,
) -> (Restaurant, Reservation) {
    let mut r = restaurant(name);
    r.timezone = chrono_tz::UTC;
    r.hours = vec![tablecast::domain::restaurant::HoursPeriod {
        days: r.hours[0].days.clone(),
        open: t("00:00"),
        close: t("24:00"),
    }];
    r.tables.truncate(1);
    r.validate().unwrap();
    let staff = format!("staff-{}", r.id);
    s.create_restaurant(&r, &staff, Utc::now()).await.unwrap();
    let at = chrono::NaiveTime::parse_from_str(time, "%H:%M").unwrap();
    let start = date().naive().and_time(at).and_utc();
    let now = Utc::now().trunc_subsecs(3);
    let seated = fixtures::reservation(&r, start, minutes, 2, Status::Seated, now);
    let (seated, _) = fixtures::won(s, fixtures::new(seated, &["t1"], 1, now)).await;
    (r, seated)
}

/// A late seating (a walk-in at 23:00, its turn to 00:30) ended early, straight through the
/// store as by an instance that crashed before offering: the time it freed past midnight is on
/// the next date, whose entry the reconcile offers it. It only looked at the reservations of
/// the entry's own date, and the freed time went public.
async fn the_reconcile_offers_the_next_dates_time_a_late_seating_freed(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let (r, seated) = late_seating(s, "Minuit", "23:00", 90).await;
    let (start, next) = (seated.start, date().succ());
    let wanted = join_on(&bk, &r, next, 2, "00:00", "00:00").await;
    // A no-show marked ten days early: all of its time, 23:00–00:30, freed.
    let ended = tablecast::store::Transition {
        end: Some(start),
        ..tablecast::store::Transition::new(seated.id, Status::Seated, Status::NoShow, Utc::now())
    };
    s.transition(ended).await.unwrap();
    assert_eq!(entry(s, wanted).await.status, WaitStatus::Waiting);
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 1);
    let e = offered(s, wanted).await;
    assert_eq!(e.offer.unwrap().time, t("00:00"));
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
}

/// A reservation that ended (completed, no-show) freed only the rest of its booked time: the
/// reconcile offers that, as the release loop would have, and never a start that was public all
/// along. It used to count every ended reservation as freeing twelve hours past its end, and
/// offered an entry waiting for 21:00, free the whole time, after any completion.
async fn the_reconcile_offers_only_what_an_early_end_freed(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 1, 300).await;
    let held = hold(&bk, &r, "19:00", 2).await;
    let guest = Guest {
        name: "Bo".into(),
        email: None,
        phone: None,
    };
    bk.confirm(held.id, guest, None, None).await.unwrap();
    // 21:00 is free (the 19:00 turn ends at 20:30); 19:00 is not.
    let (public, wanted) = (
        join(&bk, &r, 2, "21:00", "21:00").await,
        join(&bk, &r, 2, "19:00", "19:00").await,
    );
    bk.set_status(held.id, Status::Seated).await.unwrap();
    // The end of its time (a no-show, ten days early: all of it) committed straight through the
    // store, as by an instance that crashed before offering it.
    let t = tablecast::store::Transition {
        end: Some(held.start),
        ..tablecast::store::Transition::new(held.id, Status::Seated, Status::NoShow, Utc::now())
    };
    s.transition(t).await.unwrap();
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 1);
    offered(s, wanted).await;
    assert_eq!(entry(s, public).await.status, WaitStatus::Waiting);
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
    assert_eq!(entry(s, public).await.status, WaitStatus::Waiting);
    // One that ended on time freed nothing: completed at its own end, nothing is offered, not
    // even the start right after it, free all along. (Another restaurant like the first.)
    let r = Restaurant {
        id: Uuid::new_v4(),
        ..r
    };
    s.create_restaurant(&r, "staff-2", Utc::now())
        .await
        .unwrap();
    let early = hold(&bk, &r, "18:00", 2).await;
    let guest = Guest {
        name: "Cy".into(),
        email: None,
        phone: None,
    };
    bk.confirm(early.id, guest, None, None).await.unwrap();
    let next = join(&bk, &r, 2, "19:30", "20:00").await;
    bk.set_status(early.id, Status::Seated).await.unwrap();
    let t = tablecast::store::Transition {
        end: Some(early.end),
        ..tablecast::store::Transition::new(early.id, Status::Seated, Status::Completed, Utc::now())
    };
    s.transition(t).await.unwrap();
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
    assert_eq!(entry(s, next).await.status, WaitStatus::Waiting);
    // Nor once the turns grow longer (its end now looks early against them): it ended where it
    // was booked to.
    bk.patch_restaurant(
        r.id,
        tablecast::booking::RestaurantPatch {
            turn_minutes: Some(
                serde_json::from_value(serde_json::json!([{"max_party": null, "minutes": 150}]))
                    .unwrap(),
            ),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(bk.reconcile_waitlist().await.unwrap(), 0);
    assert_eq!(entry(s, next).await.status, WaitStatus::Waiting);
}

/// The freeing write may say whether anyone waits on its dates (`None`: it did not look); the
/// release skips its offer pass on `Some(false)`, so that must never be said wrongly.
async fn a_status_change_never_says_nobody_waits_while_an_entry_does(b: &Backend) {
    let s = &b.store;
    let bk = booking(s);
    let r = created(s, 2, 300).await;
    let release = |held: &Reservation| {
        tablecast::store::Transition::new(held.id, Status::Held, Status::Released, Utc::now())
    };
    let waiting = |o: tablecast::store::TransitionOutcome| match o {
        tablecast::store::TransitionOutcome::Done { waiting, .. } => waiting,
        other => panic!("expected done, got {other:?}"),
    };
    let first = hold(&bk, &r, "19:00", 2).await;
    // SQLite looks, in the transition's own transaction; DynamoDB does not (`None`).
    let looks = b.sqlite_url().is_some();
    let nobody = waiting(s.transition(release(&first)).await.unwrap());
    assert_eq!(nobody, looks.then_some(false), "no entry yet");
    let held = fill(&bk, &r, "19:00").await;
    join(&bk, &r, 2, "19:00", "19:00").await;
    let someone = waiting(s.transition(release(&held[0])).await.unwrap());
    assert_eq!(someone, looks.then_some(true), "an entry waits on the date");
    // A late seating (21:00 to 01:00) ended at 21:30 freed time on the next date, where the
    // shortened reservation no longer reaches: an entry waiting there is looked for too.
    let (r, seated) = late_seating(s, "Tard", "21:00", 240).await;
    join_on(&bk, &r, date().succ(), 2, "00:00", "00:30").await;
    let ended = tablecast::store::Transition {
        end: Some(seated.start + Duration::minutes(30)),
        ..tablecast::store::Transition::new(
            seated.id,
            Status::Seated,
            Status::Completed,
            Utc::now(),
        )
    };
    let late = waiting(s.transition(ended).await.unwrap());
    assert_eq!(late, looks.then_some(true), "an entry waits past midnight");
}
