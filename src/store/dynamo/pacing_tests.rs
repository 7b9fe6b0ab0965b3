use super::*;
use crate::domain::{TableId, WallTime};
use chrono::{Duration, TimeZone};

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap()
}

fn seven() -> Window {
    Window {
        start: WallTime::parse("19:00").unwrap(),
        end: WallTime::parse("19:15").unwrap(),
    }
}

fn res(time: &str, party: u32, status: Status, expires: Option<DateTime<Utc>>) -> Reservation {
    Reservation {
        id: Uuid::new_v4(),
        restaurant_id: Uuid::nil(),
        table_id: TableId::parse("t1").unwrap(),
        table_ids: vec![TableId::parse("t1").unwrap()],
        combination_id: None,
        date: LocalDate::parse("2026-12-05").unwrap(),
        time: WallTime::parse(time).unwrap(),
        start: at(18, 0),
        end: at(19, 30),
        party_size: party,
        status,
        expires_at: expires,
        guest: None,
        notes: String::new(),
        created_at: at(9, 0),
        updated_at: at(9, 0),
    }
}

#[test]
fn an_entry_round_trips_through_its_item() {
    let h = res("19:05", 3, Status::Held, Some(at(9, 5)));
    let mut item = key("P#x", "d");
    item.insert(VERSION.into(), n(4));
    item.insert(entry_attr(h.id), s(entry_value(&entry_of(&h))));
    item.insert(TTL.into(), n(77));
    let w = window_from(Some(&item)).unwrap();
    assert_eq!(w.version, Some(4));
    assert_eq!(w.ttl, Some(77));
    assert_eq!(
        w.entries[&h.id],
        Entry {
            expires_ms: at(9, 5).timestamp_millis(),
            party: 3
        }
    );
    assert_eq!(window_from(None).unwrap().version, None);
    item.insert("hnot-a-uuid".into(), s("x"));
    assert!(window_from(Some(&item)).is_err());
}

#[test]
fn the_count_joins_the_day_and_the_unseen_unexpired_entries() {
    let now = at(9, 0);
    let live = res("19:00", 2, Status::Held, Some(now + Duration::minutes(5)));
    let lapsed = res("19:05", 4, Status::Held, Some(now));
    let confirmed = res("19:10", 3, Status::Confirmed, None);
    let cancelled = res("19:10", 5, Status::Cancelled, None);
    let other_window = res("19:15", 6, Status::Confirmed, None);
    let day = vec![
        live.clone(),
        lapsed.clone(),
        confirmed.clone(),
        cancelled.clone(),
        other_window,
    ];
    // Entries: one the day shows (dropped), one it does not (kept), one expired (dropped).
    let unseen = res("19:01", 1, Status::Held, Some(now + Duration::seconds(1)));
    let gone = res("19:02", 7, Status::Held, Some(now));
    let item = WindowItem {
        version: Some(3),
        entries: [&live, &unseen, &gone, &cancelled]
            .iter()
            .map(|r| (r.id, entry_of(r)))
            .collect(),
        lapsed: [(Uuid::from_u128(1), now.timestamp_millis() - LAPSE_KEPT_MS)].into(),
        ttl: None,
    };
    let t = tally(&item, &day, live.date, &seven(), now);
    assert_eq!(
        t.count,
        PaceCount {
            covers: 2 + 3 + 1,
            parties: 3
        }
    );
    assert_eq!(t.kept.keys().collect::<Vec<_>>(), [&unseen.id]);
    // The holds left out as expired are marked; an old mark is dropped.
    let mut marked: Vec<Uuid> = t.lapsed.keys().copied().collect();
    let mut want = vec![lapsed.id, gone.id];
    marked.sort();
    want.sort();
    assert_eq!(marked, want);
    // A walk-in's entry never expires.
    assert_eq!(entry_of(&confirmed).expires_ms, NEVER);
}
