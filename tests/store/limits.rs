//! Limits and retention: the per-client live-hold cap and the idempotent answer are decided in
//! the hold's (or the transition's) own atomic write; `purge` deletes dead holds, their tokens
//! and old idempotency records, in bounded batches, and never a business record.
use crate::backend::Backend;
use crate::fixtures::*;
use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use std::sync::Arc;
use tablecast::domain::reservation::Status;
use tablecast::domain::{Reservation, Restaurant};
use tablecast::store::{
    DynStore, HoldCap, IdemBegin, IdemRecord, InsertOutcome, NewReservation, TokenOwner,
    TransitionOutcome,
};

contract!(
    of_twenty_concurrent_holds_from_one_client_with_a_cap_of_four_exactly_four_win,
    a_released_or_confirmed_hold_frees_a_cap_slot,
    an_expired_hold_frees_a_cap_slot_before_any_sweep,
    the_cap_is_per_client_and_holds_without_a_cap_are_unaffected,
    a_lowered_cap_counts_every_live_hold_of_the_client,
    a_winning_hold_records_its_idempotent_answer_in_the_same_write,
    a_done_transition_records_its_idempotent_answer_in_the_same_write,
    purge_deletes_old_dead_holds_their_tokens_and_old_idempotency_records_only,
    twenty_concurrent_rate_takes_of_one_client_get_its_burst_and_a_wait,
    holds_under_a_huge_cap_win_at_once,
    a_hold_under_a_cap_lowered_in_the_hundreds_is_decided,
);

/// A client that had 150 live holds under a cap of 200, then released the first 140, has ten
/// left, most of them in slots at or above 130; with its cap lowered to 130 it has room for
/// 120 more, and its next hold wins. On DynamoDB that claim was conditional on every other free
/// slot below the cap staying free, each named in the condition: past about 90 slots the
/// condition outgrew DynamoDB's 4 KB expression limit, and every such hold failed.
async fn a_hold_under_a_cap_lowered_in_the_hundreds_is_decided(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Foule", 150).await;
    let now = morning();
    let client = "client-many";
    let mut held = Vec::new();
    for i in 1..=150 {
        let hold = capped(hold_on(&r, &format!("t{i}"), now), client, 200);
        held.push(won(s, hold).await.0);
    }
    for h in &held[..140] {
        let release = transition(h.id, Status::Held, Status::Released, now);
        assert!(matches!(
            s.transition(release).await.unwrap(),
            TransitionOutcome::Done { .. }
        ));
    }
    let outcome = insert(s, capped(hold_on(&r, "t1", now), client, 130)).await;
    assert!(
        matches!(outcome, InsertOutcome::Won { .. }),
        "ten live holds under a cap of 130: {outcome:?}"
    );
    // The lowered cap still binds: eleven live holds leave room for one under a cap of 12.
    won(s, capped(hold_on(&r, "t2", now), client, 12)).await;
    let over = insert(s, capped(hold_on(&r, "t3", now), client, 12)).await;
    assert!(
        is_over_cap(&over),
        "twelve live holds under a cap of 12: {over:?}"
    );
}

/// The cap takes any `u32`, and a hold's cost does not grow with it: five concurrent holds of
/// one client under a cap of fifty million all win, in about the time five holds take under a
/// cap of five. DynamoDB listed every free slot below the cap on each hold (at 2^31: no
/// answer, a gigabyte of memory; here 7.8 s against 0.6 s in a test build).
async fn holds_under_a_huge_cap_win_at_once(b: &Backend) {
    let mut took = Vec::new();
    for (name, client, max) in [
        ("Cinq", "client-b", 5),
        ("Sans fin", "client-a", 50_000_000),
    ] {
        let r = with_tables(&b.store, name, 5).await;
        let attempts = (1..=5).map(|i| {
            insert(
                &b.store,
                capped(hold_on(&r, &format!("t{i}"), morning()), client, max),
            )
        });
        let started = std::time::Instant::now();
        let outcomes = join_all(attempts).await;
        took.push(started.elapsed());
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, InsertOutcome::Won { .. })),
            "{max}: {outcomes:?}"
        );
    }
    let limit = took[0] * 3 + std::time::Duration::from_millis(500);
    assert!(took[1] < limit, "{took:?}");
}

/// The rate bucket is decided by the store: of 20 concurrent takes by one client with a burst
/// of 6, exactly 6 get a token; the rest are told the wait (one interval: the bucket is empty
/// and full again six intervals from now). Another client has its own bucket, and a bucket
/// full again is forgotten (SQLite; DynamoDB leaves it to TTL) and gives its burst again.
async fn twenty_concurrent_rate_takes_of_one_client_get_its_burst_and_a_wait(b: &Backend) {
    use tablecast::store::rate::Bucket;
    let s = &b.store;
    let bucket = Bucket {
        every_us: 10_000_000,
        burst: 6,
    };
    let now = morning();
    let client = format!("client-{}", uuid::Uuid::new_v4());
    let takes = join_all((0..20).map(|_| s.take_rate_token(&client, bucket, now))).await;
    let waits: Vec<Option<i64>> = takes.into_iter().map(Result::unwrap).collect();
    assert_eq!(waits.iter().filter(|w| w.is_none()).count(), 6, "{waits:?}");
    assert!(
        waits.iter().flatten().all(|w| *w == 10_000_000),
        "one interval each: {waits:?}"
    );
    assert_eq!(
        s.take_rate_token("another", bucket, now).await.unwrap(),
        None
    );
    // One interval on, one token.
    let later = now + Duration::seconds(10);
    assert_eq!(
        s.take_rate_token(&client, bucket, later).await.unwrap(),
        None
    );
    assert!(s
        .take_rate_token(&client, bucket, later)
        .await
        .unwrap()
        .is_some());
    // Full again a minute on: forgotten where the store forgets, and a whole burst anyway.
    let idle = now + Duration::minutes(2);
    let forgotten = s.forget_full_buckets(idle, 100).await.unwrap();
    assert_eq!(forgotten, if b.sqlite_url().is_some() { 2 } else { 0 });
    for _ in 0..6 {
        assert_eq!(
            s.take_rate_token(&client, bucket, idle).await.unwrap(),
            None
        );
    }
    assert!(s
        .take_rate_token(&client, bucket, idle)
        .await
        .unwrap()
        .is_some());
}

/// A restaurant like the fixtures' one, with tables t1..=tN (parties 1–4).
async fn with_tables(store: &DynStore, name: &str, n: usize) -> Restaurant {
    let mut r = restaurant(name);
    r.tables = serde_json::from_value(serde_json::Value::Array(
        (1..=n)
            .map(|i| {
                serde_json::json!({"id": format!("t{i}"), "label": format!("T{i}"),
                                   "min_party": 1, "max_party": 4})
            })
            .collect(),
    ))
    .unwrap();
    r.validate().unwrap();
    store
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    r
}

fn capped(mut n: NewReservation, client: &str, max: u32) -> NewReservation {
    n.cap = Some(HoldCap {
        client: client.into(),
        max,
    });
    n
}

fn is_over_cap(o: &InsertOutcome) -> bool {
    matches!(o, InsertOutcome::OverCap)
}

/// A hold of `r` at 19:00 on `table`, asked at `now`.
fn hold_on(r: &Restaurant, table: &str, now: DateTime<Utc>) -> NewReservation {
    new(
        reservation(r, at(19, 0), 90, 2, Status::Held, now),
        &[table],
        1,
        now,
    )
}

async fn of_twenty_concurrent_holds_from_one_client_with_a_cap_of_four_exactly_four_win(
    b: &Backend,
) {
    let other = b.another_instance().await;
    let r = with_tables(&b.store, "Plafond", 20).await;
    let attempts = (1..=20).map(|i| {
        let store = if i % 2 == 0 { &b.store } else { &other };
        insert(
            store,
            capped(hold_on(&r, &format!("t{i}"), morning()), "client-a", 4),
        )
    });
    let outcomes = join_all(attempts).await;
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Won { .. }))
        .count();
    let over = outcomes.iter().filter(|o| is_over_cap(o)).count();
    assert_eq!((wins, over), (4, 16), "{outcomes:?}");
    let held = b.store.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(held.len(), 4, "{held:?}");
    // A fifth hold, asked later, is still over the cap.
    let late = capped(hold_on(&r, "t1", morning()), "client-a", 4);
    let late = insert(&b.store, late).await;
    assert!(is_over_cap(&late) || is_lost(&late), "{late:?}");
}

async fn a_released_or_confirmed_hold_frees_a_cap_slot(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Libéré", 5).await;
    let now = morning();
    let (h1, _) = won(s, capped(hold_on(&r, "t1", now), "client-b", 2)).await;
    let (h2, _) = won(s, capped(hold_on(&r, "t2", now), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t3", now), "client-b", 2)).await
    ));
    let later = now + Duration::seconds(10);
    let release = transition(h1.id, Status::Held, Status::Released, later);
    assert!(matches!(
        s.transition(release).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    let (h3, _) = won(s, capped(hold_on(&r, "t3", later), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t4", later), "client-b", 2)).await
    ));
    // A confirmed booking is no longer a live hold either.
    let confirm = transition(h2.id, Status::Held, Status::Confirmed, later);
    assert!(matches!(
        s.transition(confirm).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    won(s, capped(hold_on(&r, "t4", later), "client-b", 2)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t5", later), "client-b", 2)).await
    ));
    assert_eq!(
        s.reservation(h3.id).await.unwrap().unwrap().status,
        Status::Held
    );
}

async fn an_expired_hold_frees_a_cap_slot_before_any_sweep(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Échu", 3).await;
    let (h, _) = won(s, capped(hold_on(&r, "t1", morning()), "client-c", 1)).await;
    let expiry = h.expires_at.unwrap();
    let just_before = expiry - Duration::milliseconds(1);
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t2", just_before), "client-c", 1)).await
    ));
    // At expiry the hold is no longer live, though no sweeper has marked it.
    won(s, capped(hold_on(&r, "t2", expiry), "client-c", 1)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t3", expiry), "client-c", 1)).await
    ));
}

async fn the_cap_is_per_client_and_holds_without_a_cap_are_unaffected(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Chacun", 6).await;
    let now = morning();
    won(s, capped(hold_on(&r, "t1", now), "client-d", 1)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t2", now), "client-d", 1)).await
    ));
    // Another client, and holds without a cap (staff, limits off), are not counted against it.
    won(s, capped(hold_on(&r, "t2", now), "client-e", 1)).await;
    won(s, hold_on(&r, "t3", now)).await;
    won(s, hold_on(&r, "t4", now)).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t5", now), "client-d", 1)).await
    ));
    // Over all restaurants: the same client elsewhere is still at its cap.
    let elsewhere = with_tables(s, "Ailleurs", 2).await;
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&elsewhere, "t1", now), "client-d", 1)).await
    ));
    // A losing hold is a loss, whatever the cap.
    assert!(is_lost(
        &insert(s, capped(hold_on(&r, "t1", now), "client-f", 3)).await
    ));
    // A client at its cap hears about the cap first, whether or not its table is free: both
    // stores decide the cap before the table.
    assert!(is_over_cap(
        &insert(s, capped(hold_on(&r, "t1", now), "client-d", 1)).await
    ));
}

/// Holds of one client made under caps of 1, 2 and 3 (on DynamoDB they take slots s0, s1 and
/// s2), then the first released: with the cap now 2 the client is at it, as with a cap of 4
/// lowered to 2 after holds in s3, s1, s0, s2 and the release of s0 and s3. DynamoDB counted
/// only the live slots at or above the new cap (s2), offered s0 and gave a third live hold.
async fn a_lowered_cap_counts_every_live_hold_of_the_client(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Abaissé", 5).await;
    let now = morning();
    let (first, _) = won(s, capped(hold_on(&r, "t1", now), "client-l", 1)).await;
    won(s, capped(hold_on(&r, "t2", now), "client-l", 2)).await;
    won(s, capped(hold_on(&r, "t3", now), "client-l", 3)).await;
    let release = transition(first.id, Status::Held, Status::Released, now);
    assert!(matches!(
        s.transition(release).await.unwrap(),
        TransitionOutcome::Done { .. }
    ));
    let over = insert(s, capped(hold_on(&r, "t4", now), "client-l", 2)).await;
    assert!(
        is_over_cap(&over),
        "two live holds under a cap of 2: {over:?}"
    );
    // Under a cap of 3 there is room for one more, and then none.
    won(s, capped(hold_on(&r, "t4", now), "client-l", 3)).await;
    let over = insert(s, capped(hold_on(&r, "t5", now), "client-l", 3)).await;
    assert!(is_over_cap(&over), "{over:?}");
}

/// Holds of `client` on t1..t4 under caps of 1 to 4 (on DynamoDB they take s0 to s3), then the
/// first three released: one live hold, in s3.
async fn live_in_s3_only(store: &DynStore, r: &Restaurant, client: &str, now: DateTime<Utc>) {
    let mut early = Vec::new();
    for (i, max) in (1..=4).enumerate() {
        let t = format!("t{}", i + 1);
        early.push(won(store, capped(hold_on(r, &t, now), client, max)).await.0);
    }
    for h in &early[..3] {
        let release = transition(h.id, Status::Held, Status::Released, now);
        assert!(matches!(
            store.transition(release).await.unwrap(),
            TransitionOutcome::Done { .. }
        ));
    }
}

/// DynamoDB: a client with one live hold in s3 (claimed under a cap of 4) and its cap lowered
/// to 2 has room for one hold, though s0 and s1 are both free. A hold whose claim waits at a
/// gate while another hold of the client wins must not win too, whichever of the two slots
/// each picked: the claim is conditional on the client's claim count being as it read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_holds_racing_under_a_lowered_cap_with_room_for_one_win_once() {
    let Some((plain, faulty, faults)) = crate::faults::stores("limits::lowered_cap_race").await
    else {
        return;
    };
    let r = with_tables(&plain, "Course", 7).await;
    let now = morning();
    let client = "client-race";
    live_in_s3_only(&plain, &r, client, now).await;
    let gate = crate::faults::Gate::new();
    let client_pk = format!("C#{client}");
    faults.inject_where(
        crate::faults::TX,
        Some(&client_pk),
        None,
        crate::faults::Inject::Gated(gate.clone()),
        1,
    );
    let gated = tokio::spawn({
        let (faulty, n) = (faulty.clone(), capped(hold_on(&r, "t5", now), client, 2));
        async move { faulty.insert_reservation(n).await }
    });
    gate.arrived().await;
    won(&plain, capped(hold_on(&r, "t6", now), client, 2)).await;
    gate.open();
    let gated = gated.await.unwrap().unwrap();
    assert!(is_over_cap(&gated), "{gated:?}");
    // The gated claim was conditional on the claim count, whichever slot it claimed.
    let claim = faults
        .transactions()
        .into_iter()
        .find(|t| t.to_string().contains(&client_pk))
        .expect("the gated claim was sent");
    let slot_update = claim["TransactItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.to_string().contains(&client_pk))
        .unwrap()["Update"]
        .clone();
    let condition = slot_update["ConditionExpression"].as_str().unwrap();
    let claims = slot_update["ExpressionAttributeNames"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, v)| v.as_str() == Some("claims"))
        .map(|(k, _)| k.clone())
        .expect("the claim counts itself");
    assert!(condition.contains(&format!("{claims} = ")), "{slot_update}");
    let live = plain
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .iter()
        .filter(|x| x.status_at(now) == Status::Held)
        .count();
    assert_eq!(live, 2, "s3's hold and the winner");
}

/// DynamoDB: a fenced claim (the cap lowered under a live slot) whose first send commits
/// unanswered, is not found by the read that follows (injected), and whose resend is told of a
/// conflict, still settles as won: its own commit moved the client's claim count, which is no
/// other claim. It was taken for another hold's claim: the hold read the client's slots again,
/// found its own, and answered `OverCap`, its reservation committed and holding the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_claim_whose_first_send_lands_unanswered_wins() {
    let Some((plain, faulty, faults)) = crate::faults::stores("limits::fenced_claim_lands").await
    else {
        return;
    };
    let r = with_tables(&plain, "Repris", 6).await;
    let now = morning();
    let client = "client-resend";
    live_in_s3_only(&plain, &r, client, now).await;
    let hold = capped(hold_on(&r, "t5", now), client, 2);
    let (client_pk, pointer) = (format!("C#{client}"), format!("X#{}", hold.reservation.id));
    use crate::faults::Inject::{CommitThenTimeout, Conflict, StaleRead};
    for (op, has, what) in [
        (crate::faults::TX, &client_pk, CommitThenTimeout),
        ("GetItem", &pointer, StaleRead),
        (crate::faults::TX, &client_pk, Conflict),
    ] {
        faults.inject_where(op, Some(has), None, what, 1);
    }
    let outcome = faulty.insert_reservation(hold).await.unwrap();
    let InsertOutcome::Won { reservation, .. } = &outcome else {
        panic!("{outcome:?}");
    };
    let live: Vec<_> = plain
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.status_at(now) == Status::Held)
        .map(|x| x.id)
        .collect();
    assert_eq!(live.len(), 2, "s3's hold and this one: {live:?}");
    assert!(live.contains(&reservation.id));
}

/// An answer that names what was decided, as a handler's body would.
fn render() -> tablecast::store::RenderAnswer {
    Arc::new(|r: &Reservation| {
        (
            201,
            format!(
                "{{\"id\":\"{}\",\"table_id\":\"{}\",\"status\":\"{}\"}}",
                r.id,
                r.table_id.as_str(),
                r.status.as_str()
            ),
        )
    })
}

fn idem(key: &str) -> Option<IdemRecord> {
    Some(IdemRecord {
        key: key.into(),
        render: render(),
    })
}

async fn a_winning_hold_records_its_idempotent_answer_in_the_same_write(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Une fois", 2).await;
    let now = morning();
    assert_eq!(
        s.idem_begin("hold-key", "fp-1", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut n = capped(hold_on(&r, "t2", now), "client-g", 4);
    n.idem = idem("hold-key");
    let (h, _) = won(s, n).await;
    // No `idem_finish`: the record was written with the hold.
    let (status, body) = (render())(&h);
    assert_eq!(
        s.idem_begin("hold-key", "fp-1", now + Duration::seconds(1))
            .await
            .unwrap(),
        IdemBegin::Replay { status, body }
    );
    assert_eq!(
        s.idem_begin("hold-key", "fp-other", now + Duration::seconds(1))
            .await
            .unwrap(),
        IdemBegin::Mismatch
    );
    // A lost hold writes nothing: its marker is still in flight for the caller to finish.
    assert_eq!(
        s.idem_begin("lost-key", "fp-2", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut lost = hold_on(&r, "t2", now);
    lost.idem = idem("lost-key");
    assert!(is_lost(&insert(s, lost).await));
    assert_eq!(
        s.idem_begin("lost-key", "fp-2", now).await.unwrap(),
        IdemBegin::InFlight
    );
    // So does a hold over the cap.
    assert_eq!(
        s.idem_begin("cap-key", "fp-3", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut over = capped(hold_on(&r, "t1", now), "client-g", 1);
    over.idem = idem("cap-key");
    assert!(is_over_cap(&insert(s, over).await));
    assert_eq!(
        s.idem_begin("cap-key", "fp-3", now).await.unwrap(),
        IdemBegin::InFlight
    );
}

async fn a_done_transition_records_its_idempotent_answer_in_the_same_write(b: &Backend) {
    let s = &b.store;
    let r = with_tables(s, "Confirmé une fois", 1).await;
    let now = morning();
    let (h, _) = won(s, hold_on(&r, "t1", now)).await;
    let later = now + Duration::seconds(5);
    assert_eq!(
        s.idem_begin("confirm-key", "fp-c", later).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut confirm = transition(h.id, Status::Held, Status::Confirmed, later);
    confirm.idem = idem("confirm-key");
    let TransitionOutcome::Done { reservation: c, .. } = s.transition(confirm).await.unwrap()
    else {
        panic!("the confirm should be done");
    };
    let (status, body) = (render())(&c);
    assert!(body.contains("confirmed"), "{body}");
    assert_eq!(
        s.idem_begin("confirm-key", "fp-c", later).await.unwrap(),
        IdemBegin::Replay { status, body }
    );
    // A conflicting transition writes nothing.
    assert_eq!(
        s.idem_begin("again-key", "fp-d", later).await.unwrap(),
        IdemBegin::Fresh
    );
    let mut again = transition(h.id, Status::Held, Status::Confirmed, later);
    again.idem = idem("again-key");
    assert!(matches!(
        s.transition(again).await.unwrap(),
        TransitionOutcome::Conflict(Some(_))
    ));
    assert_eq!(
        s.idem_begin("again-key", "fp-d", later).await.unwrap(),
        IdemBegin::InFlight
    );
}

/// A hold on the first free table at `hour`:00, asked at `now` (so it expires at now + 5 min).
async fn hold_then(
    s: &DynStore,
    r: &Restaurant,
    hour: u32,
    now: DateTime<Utc>,
) -> (Reservation, String) {
    let n = new(
        reservation(r, at(hour, 0), 60, 2, Status::Held, now),
        &["t1", "t2", "t3"],
        1,
        now,
    );
    let token = n.token_hash.clone().unwrap();
    (won(s, n).await.0, token)
}

async fn purge_deletes_old_dead_holds_their_tokens_and_old_idempotency_records_only(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Mémoire courte").await;
    let m = |min: i64| morning() + Duration::minutes(min);
    // C: expired by the sweeper at 8:56 (it expired at 8:55).
    let (c, tc) = hold_then(s, &r, 18, m(-10)).await;
    assert_eq!(s.expire_due(m(-4), 10).await.unwrap().len(), 1);
    // A: released at 9:01. B: never touched, past `expires_at` (9:05) but still `held`.
    let (a, ta) = hold_then(s, &r, 19, m(0)).await;
    let (bb, tb) = hold_then(s, &r, 20, m(0)).await;
    s.transition(transition(a.id, Status::Held, Status::Released, m(1)))
        .await
        .unwrap();
    // D: confirmed at 9:01. E: confirmed, then cancelled at 9:02. Business records.
    let (d, td) = hold_then(s, &r, 21, m(0)).await;
    let (e, te) = hold_then(s, &r, 18, m(0)).await;
    for (id, from, to, at_) in [
        (d.id, Status::Held, Status::Confirmed, m(1)),
        (e.id, Status::Held, Status::Confirmed, m(1)),
        (e.id, Status::Confirmed, Status::Cancelled, m(2)),
    ] {
        assert!(matches!(
            s.transition(transition(id, from, to, at_)).await.unwrap(),
            TransitionOutcome::Done { .. }
        ));
    }
    // F: taken at 9:40 and released at 9:44, after the cut. G: taken at 9:40, live until 9:45.
    let (f, tf) = hold_then(s, &r, 19, m(40)).await;
    s.transition(transition(f.id, Status::Held, Status::Released, m(44)))
        .await
        .unwrap();
    let (g, tg) = hold_then(s, &r, 22, m(40)).await;
    // Mailed link tokens (an offer mail's, a confirmation's): two for A, one for D.
    for (hash, id) in [("link-a1", a.id), ("link-a2", a.id), ("link-d", d.id)] {
        s.add_reservation_token(hash, r.id, id).await.unwrap();
    }
    // Idempotency records: one from 9:00, one from 9:40.
    assert_eq!(
        s.idem_begin("old-key", "fp", m(0)).await.unwrap(),
        IdemBegin::Fresh
    );
    s.idem_finish("old-key", 201, "{}").await.unwrap();
    assert_eq!(
        s.idem_begin("new-key", "fp", m(40)).await.unwrap(),
        IdemBegin::Fresh
    );
    s.idem_finish("new-key", 201, "{}").await.unwrap();

    // The day view shows B (held, past its expiry): read now, it is read again after the purge.
    let shows = |v: &tablecast::store::DayView, id| v.reservations.iter().any(|x| x.id == id);
    assert!(shows(&s.day(r.id, day()).await.unwrap(), bb.id));
    // Nothing is older than 8:00.
    assert_eq!(s.purge(m(-60), 10).await.unwrap(), 0);
    // Cut at 9:30, two at a time: C, A, B and the old record go, in bounded calls.
    let cut = m(30);
    let mut total = 0;
    for call in 0.. {
        assert!(call < 10, "purge never finished");
        let n = s.purge(cut, 2).await.unwrap();
        assert!(n <= 2, "call {call} deleted {n} rows, more than its limit");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 4);
    let after = s.day(r.id, day()).await.unwrap();
    assert!(!shows(&after, bb.id), "a purged hold left the day view");
    assert!(shows(&after, g.id) && shows(&after, d.id));

    for (gone, token) in [
        (&c, &tc),
        (&a, &ta),
        (&a, &"link-a1".to_owned()),
        (&a, &"link-a2".to_owned()),
        (&bb, &tb),
    ] {
        assert_eq!(s.reservation(gone.id).await.unwrap(), None, "{gone:?}");
        assert_eq!(s.token_owner(token).await.unwrap(), None, "{gone:?}");
    }
    for (kept, token) in [
        (&d, &td),
        (&d, &"link-d".to_owned()),
        (&e, &te),
        (&f, &tf),
        (&g, &tg),
    ] {
        assert!(s.reservation(kept.id).await.unwrap().is_some(), "{kept:?}");
        assert_eq!(
            s.token_owner(token).await.unwrap(),
            Some(TokenOwner::Reservation {
                restaurant_id: r.id,
                reservation_id: kept.id
            })
        );
    }
    assert_eq!(
        s.token_owner(&format!("staff-{}", r.id)).await.unwrap(),
        Some(TokenOwner::Staff {
            restaurant_id: r.id
        })
    );
    let statuses: Vec<Status> = s
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .iter()
        .map(|x| x.status)
        .collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    // The old record is gone (a retry starts afresh); the newer one still replays.
    assert_eq!(
        s.idem_begin("old-key", "fp", m(50)).await.unwrap(),
        IdemBegin::Fresh
    );
    assert_eq!(
        s.idem_begin("new-key", "fp", m(50)).await.unwrap(),
        IdemBegin::Replay {
            status: 201,
            body: "{}".into()
        }
    );
}

/// A buckets file made by a build that counted milliseconds (table `rate_buckets`, column
/// `full_ms`) is taken over: that table goes, and buckets are counted again from full.
#[tokio::test]
async fn a_buckets_file_of_the_millisecond_build_is_taken_over() {
    use sqlx::Connection as _;
    use tablecast::store::rate::Bucket;
    use tablecast::store::Store as _;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let limits = format!("sqlite://{}.limits?mode=rwc", db.display());
    let mut old = sqlx::SqliteConnection::connect(&limits).await.unwrap();
    sqlx::query("CREATE TABLE rate_buckets (client TEXT PRIMARY KEY, full_ms INTEGER NOT NULL)")
        .execute(&mut old)
        .await
        .unwrap();
    sqlx::query("INSERT INTO rate_buckets VALUES ('c', 9999999999999)")
        .execute(&mut old)
        .await
        .unwrap();
    old.close().await.unwrap();
    let store = tablecast::store::sqlite::SqliteStore::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let one = Bucket {
        every_us: 60_000_000,
        burst: 1,
    };
    assert_eq!(
        store.take_rate_token("c", one, morning()).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_rate_token("c", one, morning()).await.unwrap(),
        Some(60_000_000)
    );
}
