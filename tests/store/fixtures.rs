#![allow(dead_code)]
use chrono::{DateTime, Duration, TimeZone, Utc};
use tablecast::domain::reservation::Status;
use tablecast::domain::{LocalDate, Reservation, Restaurant, Seating, TableId, WallTime};
use tablecast::store::{
    DynStore, InsertOutcome, NewReservation, Transition, TransitionOutcome, Versions,
};
use uuid::Uuid;

/// The day every contract test books on (far enough ahead that nothing about it expires).
pub fn day() -> LocalDate {
    LocalDate::parse("2030-06-15").unwrap()
}

/// An instant on [`day`] (UTC).
pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 15, h, m, 0).unwrap()
}

/// When the requests of a test are made: the morning of [`day`].
pub fn morning() -> DateTime<Utc> {
    at(9, 0)
}

pub fn table(id: &str) -> TableId {
    TableId::parse(id).unwrap()
}

/// Tables t1 (1–2), t2 (1–4), t3 (2–6), open every day 18:00–23:00 in Paris.
pub fn restaurant(name: &str) -> Restaurant {
    let mut r: Restaurant = serde_json::from_value(serde_json::json!({
        "id": Uuid::new_v4(), "name": name, "timezone": "Europe/Paris",
        "slot_minutes": 15, "hold_seconds": 300, "booking_horizon_days": 730,
        "turn_minutes": [{"max_party": 2, "minutes": 90}, {"max_party": 4, "minutes": 120},
                         {"max_party": null, "minutes": 150}],
        "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "23:00"}],
        "closed_dates": [],
        "tables": [{"id": "t1", "label": "T1", "min_party": 1, "max_party": 2},
                   {"id": "t2", "label": "T2", "min_party": 1, "max_party": 4},
                   {"id": "t3", "label": "T3", "min_party": 2, "max_party": 6}],
    }))
    .unwrap();
    r.validate().unwrap();
    r
}

pub async fn created(store: &DynStore, name: &str) -> Restaurant {
    let r = restaurant(name);
    store
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    r
}

/// A reservation of `r` over `[start, start + minutes)` on the date of `start`.
pub fn reservation(
    r: &Restaurant,
    start: DateTime<Utc>,
    minutes: i64,
    party: u32,
    status: Status,
    now: DateTime<Utc>,
) -> Reservation {
    let date = LocalDate::from_naive(start.date_naive());
    Reservation {
        id: Uuid::new_v4(),
        restaurant_id: r.id,
        table_id: table("t1"),
        table_ids: vec![table("t1")],
        combination_id: None,
        date,
        time: WallTime::from_minutes(
            (start.time().signed_duration_since(chrono::NaiveTime::MIN)).num_minutes() as u16,
        ),
        start,
        end: start + Duration::minutes(minutes),
        party_size: party,
        status,
        expires_at: (status == Status::Held).then(|| now + Duration::seconds(300)),
        guest: None,
        notes: String::new(),
        created_at: now,
        updated_at: now,
    }
}

pub fn hold_at(r: &Restaurant, start: DateTime<Utc>, minutes: i64) -> Reservation {
    reservation(r, start, minutes, 2, Status::Held, morning())
}

pub fn new(res: Reservation, tables: &[&str], revision: u64, now: DateTime<Utc>) -> NewReservation {
    NewReservation {
        reservation: res,
        candidates: tables.iter().map(|t| Seating::single(&table(t))).collect(),
        pacing: None,
        restaurant_revision: revision,
        token_hash: Some(format!("tok-{}", Uuid::new_v4())),
        now,
        cap: None,
        idem: None,
    }
}

pub async fn insert(store: &DynStore, n: NewReservation) -> InsertOutcome {
    store.insert_reservation(n).await.unwrap()
}

/// Inserts and expects a win.
pub async fn won(store: &DynStore, n: NewReservation) -> (Reservation, Versions) {
    match insert(store, n).await {
        InsertOutcome::Won {
            reservation,
            versions,
        } => (reservation, versions),
        other => panic!("expected a win, got {other:?}"),
    }
}

pub fn is_lost(o: &InsertOutcome) -> bool {
    matches!(o, InsertOutcome::Lost { .. })
}

pub fn transition(id: Uuid, from: Status, to: Status, now: DateTime<Utc>) -> Transition {
    Transition::new(id, from, to, now)
}

/// The reservation a transition left, which must have been done.
pub fn done(o: TransitionOutcome) -> Reservation {
    match o {
        TransitionOutcome::Done { reservation, .. } => reservation,
        other => panic!("expected the change done, got {other:?}"),
    }
}

/// The ids the staff list of [`day`] shows, in its order.
pub async fn ids_on(store: &DynStore, restaurant_id: Uuid) -> Vec<Uuid> {
    store
        .reservations_on(restaurant_id, day())
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id)
        .collect()
}

/// The version `versions` gives `date`.
pub fn version_of(v: &Versions, date: LocalDate) -> u64 {
    v.dates
        .iter()
        .find(|(d, _)| *d == date)
        .unwrap_or_else(|| panic!("no version for {date} in {v:?}"))
        .1
}

/// A combination of `tables` named `id`, as the store claims it.
pub fn combo(id: &str, tables: &[&str]) -> Seating {
    let mut tables: Vec<TableId> = tables.iter().map(|t| table(t)).collect();
    tables.sort();
    Seating {
        combination: Some(table(id)),
        tables,
    }
}

/// A new reservation whose candidates are seating options (tables and combinations).
pub fn new_on(res: Reservation, options: Vec<Seating>, now: DateTime<Utc>) -> NewReservation {
    NewReservation {
        candidates: options,
        ..new(res, &[], 1, now)
    }
}

/// The pacing check of the `minutes`-long window starting at `hh:mm`.
pub fn window(
    hh: u16,
    mm: u16,
    minutes: u16,
    max_covers: Option<u32>,
    max_parties: Option<u32>,
    enforce: bool,
) -> tablecast::store::PacingCheck {
    tablecast::store::PacingCheck {
        window: tablecast::domain::pacing::Window {
            start: WallTime::from_minutes(hh * 60 + mm),
            end: WallTime::from_minutes(hh * 60 + mm + minutes),
        },
        max_covers,
        max_parties,
        enforce,
    }
}

/// The tables of [`restaurant`], plus t4 (2–6) and the combination c34 (t3+t4, 5–10), stored.
pub async fn combined(store: &DynStore, name: &str) -> Restaurant {
    let mut r = restaurant(name);
    r.tables.push(tablecast::domain::Table {
        id: table("t4"),
        label: "T4".into(),
        min_party: 2,
        max_party: 6,
        area: None,
    });
    r.combinations = vec![tablecast::domain::Combination {
        id: table("c34"),
        tables: vec![table("t3"), table("t4")],
        min_party: 5,
        max_party: 10,
    }];
    r.validate().unwrap();
    store
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    r
}

/// A restaurant with `n` tables `p001…` (1–4 guests each) and `pacing`, stored.
pub async fn paced_with_tables(
    store: &DynStore,
    name: &str,
    n: usize,
    pacing: tablecast::domain::Pacing,
) -> Restaurant {
    let mut r = restaurant(name);
    r.pacing = Some(pacing);
    r.tables = (1..=n)
        .map(|i| tablecast::domain::Table {
            id: table(&format!("p{i:03}")),
            label: format!("P{i}"),
            min_party: 1,
            max_party: 4,
            area: None,
        })
        .collect();
    r.validate().unwrap();
    store
        .create_restaurant(&r, &format!("staff-{}", r.id), morning())
        .await
        .unwrap();
    r
}

pub fn is_paced(o: &InsertOutcome) -> bool {
    matches!(o, InsertOutcome::Paced { .. })
}

/// A `Booking` on `store` whose changes go nowhere (no hub, no bus).
pub fn booking(store: &DynStore) -> tablecast::booking::Booking {
    struct Quiet;
    impl tablecast::booking::Publish for Quiet {
        fn publish(&self, _: tablecast::booking::Change) {}
    }
    tablecast::booking::Booking::new(
        store.clone(),
        std::sync::Arc::new(Quiet),
        tablecast::metrics::Metrics::new(),
    )
}

/// Stores `r` straight through the store (as a restaurant stored before a rule it breaks), and
/// shows that its other settings still change: a rename through `Booking` succeeds. Returns that
/// `Booking`.
pub async fn stored_before_and_renamed(
    store: &DynStore,
    r: &Restaurant,
    staff: &str,
) -> tablecast::booking::Booking {
    store.create_restaurant(r, staff, morning()).await.unwrap();
    let bk = booking(store);
    let renamed = bk
        .patch_restaurant(
            r.id,
            tablecast::booking::RestaurantPatch {
                name: Some("Après".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Après");
    bk
}
