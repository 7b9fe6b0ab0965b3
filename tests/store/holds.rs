use crate::backend::Backend;
use crate::fixtures::*;
use chrono::Duration;
use futures_util::future::join_all;
use std::sync::Arc;
use tablecast::domain::reservation::Status;
use tablecast::store::{IdemBegin, IdemRecord, InsertOutcome, RenderAnswer, TokenOwner};

contract!(
    a_hold_takes_the_first_free_candidate_and_loses_when_none_is_free,
    a_hold_at_a_stale_revision_is_stale_and_writes_nothing,
    an_expired_hold_frees_its_table_by_condition_before_any_sweep,
    overlap_is_decided_to_the_minute_for_walk_ins_off_the_grid,
    of_many_concurrent_holds_for_one_table_exactly_one_wins,
    reservations_are_read_back_by_id_by_date_and_in_the_day_view,
    a_hold_token_names_its_reservation,
    a_day_view_read_again_shows_every_change_since,
    holds_queued_together_are_each_decided_whatever_path_each_takes,
    the_staff_list_orders_a_tie_of_start_and_table_by_when_each_was_made,
);

async fn a_hold_takes_the_first_free_candidate_and_loses_when_none_is_free(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Premier").await;
    let try_ =
        |tables: &'static [&'static str]| new(hold_at(&r, at(19, 0), 90), tables, 1, morning());
    let (a, _) = won(s, try_(&["t1", "t2"])).await;
    assert_eq!(a.table_id, table("t1"));
    assert!(is_lost(&insert(s, try_(&["t1"])).await));
    let (b2, _) = won(s, try_(&["t1", "t2"])).await;
    assert_eq!(b2.table_id, table("t2"));
    assert!(is_lost(&insert(s, try_(&["t1", "t2"])).await));
    // Other times on the same tables are untouched.
    let later = new(hold_at(&r, at(20, 30), 90), &["t1"], 1, morning());
    assert_eq!(won(s, later).await.0.table_id, table("t1"));
}

async fn a_hold_at_a_stale_revision_is_stale_and_writes_nothing(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Périmé").await;
    let out = insert(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 7, morning())).await;
    assert!(matches!(out, InsertOutcome::Stale), "{out:?}");
    assert!(s.reservations_on(r.id, day()).await.unwrap().is_empty());
    won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
}

async fn an_expired_hold_frees_its_table_by_condition_before_any_sweep(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Expiré").await;
    let (first, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning())).await;
    let expiry = first.expires_at.unwrap();
    // One millisecond before expiry it still holds the table; at expiry it does not.
    let early = new(
        hold_at(&r, at(19, 30), 60),
        &["t1"],
        1,
        expiry - Duration::milliseconds(1),
    );
    assert!(is_lost(&insert(s, early).await));
    let second = reservation(&r, at(19, 30), 60, 2, Status::Held, expiry);
    let (second, _) = won(s, new(second, &["t1"], 1, expiry)).await;
    assert_eq!(second.table_id, table("t1"));
    // A third claim over the second hold's time loses: only the expired one was free.
    let third = new(hold_at(&r, at(19, 0), 45), &["t1"], 1, expiry);
    assert!(is_lost(&insert(s, third).await));
}

async fn overlap_is_decided_to_the_minute_for_walk_ins_off_the_grid(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Minute").await;
    let now = morning();
    let walk_in = reservation(&r, at(19, 7), 53, 2, Status::Seated, now);
    let (w, _) = won(s, new(walk_in, &["t1"], 1, now)).await;
    assert_eq!((w.start, w.end, w.expires_at), (at(19, 7), at(20, 0), None));
    // Touching at either end is not an overlap; one shared minute is.
    won(s, new(hold_at(&r, at(20, 0), 90), &["t1"], 1, now)).await;
    won(s, new(hold_at(&r, at(18, 7), 60), &["t1"], 1, now)).await;
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 59), 1), &["t1"], 1, now)).await
    ));
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(19, 6), 2), &["t1"], 1, now)).await
    ));
    assert!(is_lost(
        &insert(s, new(hold_at(&r, at(17, 0), 300), &["t1"], 1, now)).await
    ));
}

async fn of_many_concurrent_holds_for_one_table_exactly_one_wins(b: &Backend) {
    let other = b.another_instance().await;
    let r = created(&b.store, "Course").await;
    let attempts = (0..60).map(|i| {
        let store = if i % 2 == 0 { &b.store } else { &other };
        let start = at(19, 0) + Duration::minutes(i % 4 * 15);
        insert(store, new(hold_at(&r, start, 90), &["t3"], 1, morning()))
    });
    let outcomes = join_all(attempts).await;
    let wins = outcomes
        .iter()
        .filter(|o| matches!(o, InsertOutcome::Won { .. }))
        .count();
    let losses = outcomes.iter().filter(|o| is_lost(o)).count();
    assert_eq!((wins, losses), (1, 59), "{outcomes:?}");
    assert_eq!(b.store.reservations_on(r.id, day()).await.unwrap().len(), 1);
}

async fn reservations_are_read_back_by_id_by_date_and_in_the_day_view(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Lecture").await;
    let now = morning();
    // The day before, a late walk-in running past midnight UTC, with everything a row can
    // carry: a guest (with a quote to escape), notes.
    let mut eve = reservation(
        &r,
        at(23, 0) - Duration::days(1),
        150,
        2,
        Status::Seated,
        now,
    );
    eve.guest = Some(tablecast::domain::reservation::Guest {
        name: "Zoë \"Z\" Ørsted".into(),
        email: Some("zoe@example.com".into()),
        phone: Some("+33 1 23 45 67 89".into()),
    });
    eve.notes = "window seat, 🎂".into();
    let (eve, _) = won(s, new(eve, &["t2"], 1, now)).await;
    let (late, _) = won(s, new(hold_at(&r, at(20, 0), 90), &["t2"], 1, now)).await;
    let (early_t2, _) = won(s, new(hold_at(&r, at(18, 0), 90), &["t2"], 1, now)).await;
    let (early_t1, _) = won(s, new(hold_at(&r, at(18, 0), 90), &["t1"], 1, now)).await;

    assert_eq!(s.reservation(late.id).await.unwrap(), Some(late.clone()));
    assert_eq!(s.reservation(uuid::Uuid::new_v4()).await.unwrap(), None);
    let ids =
        |v: Vec<tablecast::domain::Reservation>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.reservations_on(r.id, day()).await.unwrap()),
        [early_t1.id, early_t2.id, late.id]
    );
    let view = s.day(r.id, day()).await.unwrap();
    // Whole, field for field, from each read.
    assert_eq!(view.reservations[0], eve);
    assert_eq!(view.reservations[3], late);
    assert_eq!(s.reservation(eve.id).await.unwrap().as_ref(), Some(&eve));
    assert_eq!(
        s.reservations_on(r.id, day().pred()).await.unwrap(),
        std::slice::from_ref(&eve)
    );
    assert_eq!(
        ids(view.reservations.clone()),
        [eve.id, early_t1.id, early_t2.id, late.id]
    );
    let next = s.day(r.id, day().succ()).await.unwrap();
    assert_eq!(
        ids(next.reservations.clone()),
        [early_t1.id, early_t2.id, late.id]
    );
}

/// Read again and again (SQLite answers an unchanged date from its last read): each read
/// shows every change made since the one before, on the date or on the day before.
async fn a_day_view_read_again_shows_every_change_since(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Relecture").await;
    let now = morning();
    let ids =
        |v: &tablecast::store::DayView| v.reservations.iter().map(|x| x.id).collect::<Vec<_>>();
    let empty = s.day(r.id, day()).await.unwrap();
    assert!(empty.reservations.is_empty());
    let (h, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t1"], 1, now)).await;
    let one = s.day(r.id, day()).await.unwrap();
    assert_eq!(ids(&one), [h.id]);
    assert!(one.version > empty.version);
    let again = s.day(r.id, day()).await.unwrap();
    assert_eq!(
        (again.version, &again.reservations),
        (one.version, &one.reservations)
    );
    // The day before, an evening that ends before midnight: in this date's view, though this
    // date's version need not move.
    let (eve, _) = won(
        s,
        new(
            hold_at(&r, at(19, 0) - Duration::days(1), 90),
            &["t2"],
            1,
            now,
        ),
    )
    .await;
    assert_eq!(ids(&s.day(r.id, day()).await.unwrap()), [eve.id, h.id]);
    // Details of a shown reservation.
    let guest = tablecast::domain::reservation::Guest {
        name: "Ada".into(),
        email: None,
        phone: None,
    };
    let confirm = tablecast::store::Transition {
        guest: Some(guest.clone()),
        notes: Some("by the window".into()),
        ..transition(h.id, Status::Held, Status::Confirmed, now)
    };
    s.transition(confirm).await.unwrap();
    let shown = s.day(r.id, day()).await.unwrap();
    let h2 = shown.reservations.iter().find(|x| x.id == h.id).unwrap();
    assert_eq!(
        (h2.status, h2.guest.as_ref(), h2.notes.as_str()),
        (Status::Confirmed, Some(&guest), "by the window")
    );
    // Released: gone from the view.
    s.transition(transition(eve.id, Status::Held, Status::Released, now))
        .await
        .unwrap();
    assert_eq!(ids(&s.day(r.id, day()).await.unwrap()), [h.id]);
    // Another date is its own view.
    assert!(s
        .day(r.id, day().succ())
        .await
        .unwrap()
        .reservations
        .iter()
        .all(|x| x.id != eve.id));
}

async fn a_hold_token_names_its_reservation(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Jeton").await;
    let n = new(hold_at(&r, at(19, 0), 90), &["t1"], 1, morning());
    let token = n.token_hash.clone().unwrap();
    let (h, _) = won(s, n).await;
    assert_eq!(
        s.token_owner(&token).await.unwrap(),
        Some(TokenOwner::Reservation {
            restaurant_id: r.id,
            reservation_id: h.id
        })
    );
    // A walk-in has no token.
    let mut w = new(
        reservation(&r, at(21, 0), 60, 2, Status::Seated, morning()),
        &["t2"],
        1,
        morning(),
    );
    w.token_hash = None;
    won(s, w).await;
}

/// Holds that reach the store together (on SQLite: one group commit, its plain holds decided on
/// the connection's own handle) are each decided as if alone, whatever path each takes: plain
/// wins, a contested table, a stale revision, a table still taken, a table whose hold expired
/// unswept (decided statement by statement), an idempotent hold (its answer recorded).
async fn holds_queued_together_are_each_decided_whatever_path_each_takes(b: &Backend) {
    let s = &b.store;
    let mut r = restaurant("Tous ensemble");
    for i in 4..=11 {
        r.tables.push(tablecast::domain::Table {
            id: table(&format!("t{i}")),
            label: format!("T{i}"),
            min_party: 1,
            max_party: 4,
            area: None,
        });
    }
    r.validate().unwrap();
    s.create_restaurant(&r, "staff-together", morning())
        .await
        .unwrap();
    let (lapsed, _) = won(s, new(hold_at(&r, at(19, 0), 90), &["t9"], 1, morning())).await;
    let now = lapsed.expires_at.unwrap();
    // Holds made at `now`, expiring after it.
    let hold_now = || reservation(&r, at(19, 0), 90, 2, Status::Held, now);
    let (taken, _) = won(s, new(hold_now(), &["t11"], 1, now)).await;
    let render: RenderAnswer =
        Arc::new(|x: &tablecast::domain::Reservation| (201, x.id.to_string()));
    assert_eq!(
        s.idem_begin("together", "fp", now).await.unwrap(),
        IdemBegin::Fresh
    );
    let hold = |t: &'static str, revision: u64| new(hold_now(), &[t], revision, now);
    let mut holds: Vec<_> = ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t7", "t9", "t11"]
        .into_iter()
        .map(|t| hold(t, 1))
        .collect();
    holds.push(hold("t8", 7));
    let mut keyed = hold("t10", 1);
    keyed.idem = Some(IdemRecord {
        key: "together".into(),
        render,
    });
    holds.push(keyed);
    let outs = join_all(holds.into_iter().map(|n| s.insert_reservation(n))).await;
    let outs: Vec<InsertOutcome> = outs.into_iter().map(Result::unwrap).collect();
    let won_on = |i: usize| match &outs[i] {
        InsertOutcome::Won { reservation, .. } => Some(reservation.table_id.clone()),
        _ => None,
    };
    for (i, t) in ["t1", "t2", "t3", "t4", "t5", "t6"].iter().enumerate() {
        assert_eq!(won_on(i), Some(table(t)), "{t}: {:?}", outs[i]);
    }
    // One of the two holds on t7.
    assert_eq!(
        (won_on(6).is_some() as u8) + (won_on(7).is_some() as u8),
        1,
        "{:?} / {:?}",
        outs[6],
        outs[7]
    );
    assert!(is_lost(&outs[6]) || is_lost(&outs[7]));
    assert_eq!(
        won_on(8),
        Some(table("t9")),
        "over the lapsed hold: {:?}",
        outs[8]
    );
    assert!(is_lost(&outs[9]), "t11 is taken: {:?}", outs[9]);
    assert!(matches!(outs[10], InsertOutcome::Stale), "{:?}", outs[10]);
    let keyed = match &outs[11] {
        InsertOutcome::Won { reservation, .. } => reservation.clone(),
        other => panic!("the keyed hold: {other:?}"),
    };
    assert_eq!(keyed.table_id, table("t10"));
    assert_eq!(
        s.idem_begin("together", "fp", now).await.unwrap(),
        IdemBegin::Replay {
            status: 201,
            body: keyed.id.to_string()
        }
    );
    // What the store holds: the lapsed hold marked expired (or past its expiry), the taken one,
    // and exactly the ten winners, one per table.
    let live: Vec<_> = s
        .reservations_on(r.id, day())
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.status == Status::Held && x.expires_at.unwrap() > now)
        .collect();
    let mut tables: Vec<String> = live.iter().map(|x| x.table_id.to_string()).collect();
    tables.sort();
    assert_eq!(
        tables,
        ["t1", "t10", "t11", "t2", "t3", "t4", "t5", "t6", "t7", "t9"],
        "{live:?}"
    );
    assert!(live.iter().any(|x| x.id == taken.id));
}

/// On SQLite, a hold whose script fails part-way through the group commit (here: its token's
/// hash is already taken, after its reservation row was written) is rolled back alone: the
/// holds queued with it are decided as usual, and nothing of it stays.
#[tokio::test]
async fn sqlite_a_hold_that_fails_inside_the_group_commit_is_rolled_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("alone.db").display());
    let s: tablecast::store::DynStore = Arc::new(
        tablecast::store::sqlite::SqliteStore::open(&url)
            .await
            .unwrap(),
    );
    let r = created(&s, "Seul").await;
    let hold = |t: &str| new(hold_at(&r, at(19, 0), 90), &[t], 1, morning());
    let a = hold("t1");
    let mut b = hold("t2");
    b.token_hash = a.token_hash.clone();
    let (a, b, c) = tokio::join!(
        s.insert_reservation(a),
        s.insert_reservation(b),
        s.insert_reservation(hold("t3"))
    );
    let is_won = |o: &tablecast::store::StoreResult<InsertOutcome>| {
        matches!(o, Ok(InsertOutcome::Won { .. }))
    };
    // Whichever of the two with one token came second failed; the other and the third won.
    assert!(is_won(&a) ^ is_won(&b), "{a:?} / {b:?}");
    assert!(a.is_err() ^ b.is_err(), "{a:?} / {b:?}");
    assert!(is_won(&c), "{c:?}");
    let failed_table = if is_won(&a) { "t2" } else { "t1" };
    let day = s.reservations_on(r.id, day()).await.unwrap();
    let mut tables: Vec<String> = day.iter().map(|x| x.table_id.to_string()).collect();
    tables.sort();
    let mut want = vec!["t1", "t2", "t3"];
    want.retain(|t| *t != failed_table);
    assert_eq!(tables, want, "nothing of the failed hold stays");
    // The writer goes on: the failed hold's table is free.
    won(&s, hold(failed_table)).await;
}

async fn the_staff_list_orders_a_tie_of_start_and_table_by_when_each_was_made(b: &Backend) {
    let s = &b.store;
    let r = created(s, "Égalité").await;
    // Three holds of t1 at 19:00, each taken once the one before had expired.
    let mut ids = Vec::new();
    let mut now = morning();
    for _ in 0..3 {
        let h = reservation(&r, at(19, 0), 90, 2, Status::Held, now);
        let (h, _) = won(s, new(h, &["t1"], 1, now)).await;
        now = h.expires_at.unwrap() + Duration::seconds(1);
        ids.push(h.id);
    }
    assert_eq!(
        ids_on(s, r.id).await,
        ids,
        "the oldest first, on every store"
    );
}
