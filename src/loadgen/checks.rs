//! The invariant checks every scenario ends with, on reservations read back through the staff
//! API: no table in two overlapping occupying reservations (a combined reservation occupies each
//! of its `table_ids`), and no pacing window above its limits.
use serde_json::Value;
use std::collections::BTreeMap;

/// Reservations that occupy their tables: not released, cancelled or expired, and not empty
/// (a completion or no-show before its start ends where it starts and occupies nothing).
pub fn occupying(reservations: &[Value]) -> Vec<&Value> {
    reservations
        .iter()
        .filter(|r| {
            !matches!(
                r["status"].as_str(),
                Some("released" | "cancelled" | "expired")
            )
        })
        .filter(|r| r["start"].as_str() < r["end"].as_str())
        .collect()
}

/// The tables a reservation occupies: its `table_ids`, or its `table_id` alone (a server
/// without combinations).
pub fn tables_of(r: &Value) -> Vec<&str> {
    match r["table_ids"].as_array() {
        Some(ids) if !ids.is_empty() => ids.iter().filter_map(Value::as_str).collect(),
        _ => r["table_id"].as_str().into_iter().collect(),
    }
}

/// Pairs of occupying reservations that share a table and overlap in time: must be empty.
pub fn double_bookings(reservations: &[Value]) -> Vec<(String, String)> {
    let live = occupying(reservations);
    let mut out = Vec::new();
    for (i, a) in live.iter().enumerate() {
        let ta = tables_of(a);
        for b in &live[i + 1..] {
            if tables_of(b).iter().any(|t| ta.contains(t))
                && a["start"].as_str() < b["end"].as_str()
                && b["start"].as_str() < a["end"].as_str()
            {
                out.push((a["id"].to_string(), b["id"].to_string()));
            }
        }
    }
    out
}

/// One pacing window's count, from the reservations read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub covers: u64,
    pub parties: u64,
}

/// Counts per window (`HH:MM` of its local start) of the reservations pacing counts: `held`
/// (the staff list already reads a lapsed hold as `expired`), `confirmed`, `seated`,
/// `completed` and `no_show`, each in the window holding its local `time`.
pub fn pacing_counts(reservations: &[Value], window_minutes: u32) -> BTreeMap<String, Window> {
    let mut out: BTreeMap<String, Window> = BTreeMap::new();
    let w = window_minutes.max(1);
    for r in reservations {
        if !matches!(
            r["status"].as_str(),
            Some("held" | "confirmed" | "seated" | "completed" | "no_show")
        ) {
            continue;
        }
        let Some(minutes) = r["time"].as_str().and_then(minutes_of) else {
            continue;
        };
        let start = minutes / w * w;
        let e = out
            .entry(format!("{:02}:{:02}", start / 60, start % 60))
            .or_default();
        e.covers += r["party_size"].as_u64().unwrap_or(0);
        e.parties += 1;
    }
    out
}

/// Windows above the restaurant's `pacing` limits (`null` pacing: none), as `HH:MM` with the
/// count. Staff walk-ins count but are never refused, so a day with walk-ins may go over; the
/// load generator takes none.
pub fn pacing_overruns(reservations: &[Value], pacing: &Value) -> Vec<(String, Window)> {
    let Some(w) = pacing["window_minutes"].as_u64() else {
        return Vec::new();
    };
    let max_covers = pacing["max_covers"].as_u64();
    let max_parties = pacing["max_parties"].as_u64();
    pacing_counts(reservations, w as u32)
        .into_iter()
        .filter(|(_, c)| {
            max_covers.is_some_and(|m| c.covers > m) || max_parties.is_some_and(|m| c.parties > m)
        })
        .collect()
}

fn minutes_of(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(id: &str, tables: &[&str], start: &str, end: &str, status: &str) -> Value {
        json!({"id": id, "table_id": tables[0], "table_ids": tables, "start": start, "end": end,
               "status": status, "time": &start[11..16], "party_size": 2})
    }

    #[test]
    fn a_combination_collides_with_each_of_its_member_tables() {
        let a = res(
            "a",
            &["t3", "t4"],
            "2026-12-05T18:00:00Z",
            "2026-12-05T20:00:00Z",
            "held",
        );
        let b = res(
            "b",
            &["t4"],
            "2026-12-05T19:00:00Z",
            "2026-12-05T20:30:00Z",
            "confirmed",
        );
        let c = res(
            "c",
            &["t5"],
            "2026-12-05T19:00:00Z",
            "2026-12-05T20:30:00Z",
            "confirmed",
        );
        let d = res(
            "d",
            &["t3"],
            "2026-12-05T20:00:00Z",
            "2026-12-05T21:00:00Z",
            "held",
        );
        let e = res(
            "e",
            &["t3"],
            "2026-12-05T18:00:00Z",
            "2026-12-05T19:00:00Z",
            "released",
        );
        let pairs = double_bookings(&[a, b, c, d, e]);
        assert_eq!(pairs, vec![("\"a\"".into(), "\"b\"".into())]);
    }

    #[test]
    fn a_reservation_without_table_ids_occupies_its_table_id() {
        let a = json!({"id": "a", "table_id": "t1", "start": "1", "end": "3", "status": "held"});
        let b = json!({"id": "b", "table_id": "t1", "start": "2", "end": "4", "status": "held"});
        assert_eq!(double_bookings(&[a, b]).len(), 1);
    }

    #[test]
    fn pacing_counts_live_reservations_in_the_window_of_their_time() {
        let mut list = vec![
            res(
                "a",
                &["t1"],
                "2026-12-05T19:00:00Z",
                "2026-12-05T20:00:00Z",
                "held",
            ),
            res(
                "b",
                &["t2"],
                "2026-12-05T19:10:00Z",
                "2026-12-05T20:00:00Z",
                "no_show",
            ),
            res(
                "c",
                &["t3"],
                "2026-12-05T19:15:00Z",
                "2026-12-05T20:00:00Z",
                "confirmed",
            ),
            res(
                "d",
                &["t4"],
                "2026-12-05T19:05:00Z",
                "2026-12-05T20:00:00Z",
                "expired",
            ),
            res(
                "e",
                &["t5"],
                "2026-12-05T19:05:00Z",
                "2026-12-05T20:00:00Z",
                "cancelled",
            ),
        ];
        list[0]["party_size"] = json!(6);
        let counts = pacing_counts(&list, 15);
        assert_eq!(
            counts["19:00"],
            Window {
                covers: 8,
                parties: 2
            }
        );
        assert_eq!(
            counts["19:15"],
            Window {
                covers: 2,
                parties: 1
            }
        );
        let pacing = json!({"window_minutes": 15, "max_covers": 8, "max_parties": null});
        assert!(pacing_overruns(&list, &pacing).is_empty());
        let pacing = json!({"window_minutes": 15, "max_covers": null, "max_parties": 1});
        let over = pacing_overruns(&list, &pacing);
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].0, "19:00");
        assert!(pacing_overruns(&list, &Value::Null).is_empty());
    }
}
