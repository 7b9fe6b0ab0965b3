use super::*;
use crate::domain::restaurant::tests::paris;
use chrono::TimeZone;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap()
}

fn hold() -> StoredReservation {
    let expires = at(10, 5) + chrono::Duration::milliseconds(123);
    StoredReservation {
        reservation: Reservation {
            id: Uuid::new_v4(),
            restaurant_id: Uuid::new_v4(),
            table_id: TableId::parse("t-1_a").unwrap(),
            table_ids: vec![TableId::parse("t-1_a").unwrap()],
            combination_id: None,
            date: LocalDate::parse("2026-12-05").unwrap(),
            time: WallTime::parse("19:00").unwrap(),
            start: at(18, 0),
            end: at(20, 0),
            party_size: 4,
            status: Status::Held,
            expires_at: Some(expires),
            guest: None,
            notes: String::new(),
            created_at: at(10, 0) + chrono::Duration::milliseconds(7),
            updated_at: at(10, 0) + chrono::Duration::milliseconds(7),
        },
        writes: 1,
        stamp: "s1".into(),
        token_hash: Some("abc".into()),
        ttl: Some(expires.timestamp() + HOLD_TTL_AFTER_S),
        slot: Some(Slot {
            client: "c-1".into(),
            index: 3,
        }),
        window: Some("2026-12-05#19:00#19:15".into()),
        entry: Some(Uuid::new_v4()),
    }
}

#[test]
fn a_released_hold_lives_outside_the_day_and_carries_its_retention_entry() {
    let mut h = hold();
    h.reservation.status = Status::Released;
    h.reservation.expires_at = None;
    let item = reservation_item(&h).unwrap();
    assert_eq!(
        get_s(&item, SK).unwrap(),
        dead_sk(h.reservation.date, h.reservation.id)
    );
    assert!(!item.contains_key(DUE_PK));
    assert_eq!(
        get_n::<i64>(&item, GC_AT).unwrap(),
        h.reservation.updated_at.timestamp_millis()
    );
    assert!(get_s(&item, GC_PK).unwrap().starts_with("GC#"));
    assert_eq!(reservation_from(&item).unwrap(), h);
}

#[test]
fn a_hold_round_trips_with_its_ttl_and_due_index_entry() {
    let h = hold();
    let item = reservation_item(&h).unwrap();
    assert_eq!(reservation_from(&item).unwrap(), h);
    let exp = h.reservation.expires_at.unwrap();
    assert_eq!(
        get_n::<i64>(&item, TTL).unwrap(),
        exp.timestamp() + HOLD_TTL_AFTER_S
    );
    assert_eq!(get_n::<i64>(&item, DUE_AT).unwrap(), exp.timestamp_millis());
    assert_eq!(get_s(&item, DUE_PK).unwrap(), due_pk(h.reservation.id));
    assert_eq!(
        get_s(&item, SK).unwrap(),
        reservation_sk(h.reservation.date, h.reservation.id)
    );
}

#[test]
fn a_confirmed_reservation_round_trips_with_its_guest_and_no_ttl() {
    let mut c = hold();
    c.reservation.status = Status::Confirmed;
    c.reservation.expires_at = None;
    c.reservation.guest = Some(Guest {
        name: "Ada".into(),
        email: Some("ada@example.com".into()),
        phone: None,
    });
    c.reservation.notes = "window, please".into();
    c.writes = 2;
    c.token_hash = None;
    c.ttl = None;
    let item = reservation_item(&c).unwrap();
    assert!(!item.contains_key(TTL) && !item.contains_key(DUE_PK));
    assert_eq!(reservation_from(&item).unwrap(), c);
}

#[test]
fn a_combined_reservation_round_trips_with_its_members_combination_and_window() {
    let mut c = hold();
    let (t3, t4) = (TableId::parse("t3").unwrap(), TableId::parse("t4").unwrap());
    c.reservation.table_id = t3.clone();
    c.reservation.table_ids = vec![t3, t4];
    c.reservation.combination_id = Some(TableId::parse("c34").unwrap());
    let item = reservation_item(&c).unwrap();
    assert_eq!(get_s(&item, "table").unwrap(), "t3");
    assert_eq!(get_s(&item, "combo").unwrap(), "c34");
    assert_eq!(get_s(&item, "pw").unwrap(), "2026-12-05#19:00#19:15");
    assert_eq!(reservation_from(&item).unwrap(), c);
}

#[test]
fn a_reservation_written_before_combinations_reads_as_on_its_one_table() {
    let mut h = hold();
    h.window = None;
    let mut item = reservation_item(&h).unwrap();
    assert!(!item.contains_key("tables") && !item.contains_key("combo"));
    assert!(!item.contains_key("pw"));
    let back = reservation_from(&item).unwrap();
    assert_eq!(back.reservation.table_ids, [h.reservation.table_id.clone()]);
    assert_eq!(back.reservation.combination_id, None);
    item.insert("tables".into(), AttributeValue::L(vec![]));
    assert!(
        reservation_from(&item).is_err(),
        "an empty member list is corrupt"
    );
}

#[test]
fn a_reservation_item_with_a_bad_status_is_corrupt_not_a_panic() {
    let mut item = reservation_item(&hold()).unwrap();
    item.insert("status".into(), s("gone"));
    assert!(matches!(
        reservation_from(&item),
        Err(StoreError::Internal(_))
    ));
    item.remove("status");
    assert!(reservation_from(&item).is_err());
}

#[test]
fn a_restaurant_round_trips_with_revision_wide_version_and_fence() {
    let mut r = paris();
    r.validate().unwrap();
    let ri = RestaurantItem {
        stored: StoredRestaurant {
            restaurant: r,
            revision: 3,
        },
        wide: 7,
        created_ms: 1_700_000_000_000,
        fence_until_ms: Some(1_700_000_005_000),
    };
    let item = restaurant_item(&ri).unwrap();
    assert_eq!(restaurant_from(&item).unwrap(), ri);
    let unfenced = RestaurantItem {
        fence_until_ms: None,
        ..ri
    };
    assert_eq!(
        restaurant_from(&restaurant_item(&unfenced).unwrap()).unwrap(),
        unfenced
    );
}

#[test]
fn a_directory_entry_carries_id_name_and_timezone() {
    let mut r = paris();
    r.validate().unwrap();
    let item = directory_item(&r, 42);
    assert_eq!(
        directory_from(&item).unwrap(),
        RestaurantSummary {
            id: r.id,
            name: r.name.clone(),
            timezone: "Europe/Paris".into()
        }
    );
    assert_eq!(get_s(&item, SK).unwrap(), directory_sk(42, r.id));
}

#[test]
fn a_pointer_round_trips() {
    let p = Pointer {
        id: Uuid::new_v4(),
        restaurant_id: Uuid::new_v4(),
        date: LocalDate::parse("2026-12-05").unwrap(),
        ttl: Some(99),
        dead: false,
        cancelled: false,
    };
    assert_eq!(pointer_from(p.id, &pointer_item(&p)).unwrap(), p);
    assert_eq!(p.target().1, reservation_sk(p.date, p.id));
    let d = Pointer {
        dead: true,
        ..p.clone()
    };
    assert_eq!(pointer_from(d.id, &pointer_item(&d)).unwrap(), d);
    assert_eq!(d.target().1, dead_sk(d.date, d.id));
    let c = Pointer {
        cancelled: true,
        ..p
    };
    assert_eq!(pointer_from(c.id, &pointer_item(&c)).unwrap(), c);
    assert_eq!(c.target().1, cancelled_sk(c.date, c.id));
}

#[test]
fn tokens_round_trip_for_staff_and_reservations() {
    let staff = TokenOwner::Staff {
        restaurant_id: Uuid::new_v4(),
    };
    let res = TokenOwner::Reservation {
        restaurant_id: Uuid::new_v4(),
        reservation_id: Uuid::new_v4(),
    };
    assert_eq!(token_from(&token_item("h", &staff, None)).unwrap(), staff);
    let item = token_item("h", &res, Some(5));
    assert_eq!(token_from(&item).unwrap(), res);
    assert_eq!(get_n::<i64>(&item, TTL).unwrap(), 5);
}

#[test]
fn a_counter_is_read_with_its_date_from_the_key() {
    let d = LocalDate::parse("2026-12-05").unwrap();
    let t = TableId::parse("t1").unwrap();
    let last = Uuid::new_v4();
    let mut item = key(restaurant_pk(Uuid::nil()), counter_sk(d, &t));
    item.insert("n".into(), n(12));
    item.insert("lr".into(), s(last.to_string()));
    item.insert("lw".into(), n(3));
    let want = Counter {
        date: d,
        table: "t1".into(),
        changes: 12,
        next_changes: 0,
        last,
        last_writes: 3,
        last_ttl: None,
        last_gone: false,
    };
    assert_eq!(counter_from(&item).unwrap(), want, "no `nx`: none");
    item.insert("nx".into(), n(4));
    assert_eq!(
        counter_from(&item).unwrap(),
        Counter {
            next_changes: 4,
            ..want
        }
    );
}

#[test]
fn idempotency_records_round_trip_in_flight_and_done_with_a_day_of_ttl() {
    let fly = IdemRecord {
        fingerprint: "fp".into(),
        answer: None,
        created_ms: 1_700_000_000_000,
    };
    let item = idem_item("k", &fly);
    assert_eq!(idem_from(&item).unwrap(), fly);
    assert_eq!(get_n::<i64>(&item, GC_AT).unwrap(), fly.created_ms);
    assert_eq!(
        get_n::<i64>(&item, TTL).unwrap(),
        1_700_000_000 + IDEM_TTL_S
    );
    let done = IdemRecord {
        answer: Some((201, "{\"id\":1}".into())),
        ..fly
    };
    assert_eq!(idem_from(&idem_item("k", &done)).unwrap(), done);
}
