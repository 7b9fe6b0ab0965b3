//! Primary keys of every item kind, and a builder for expressions with placeholder names.
//!
//! # Layout: what a request reads is bounded by live data
//!
//! | item | `pk` | `sk` | read by |
//! |---|---|---|---|
//! | live reservation (`held`, `confirmed`, `seated`, `completed`, `no_show`) | `R#{rid}` | `D#{date}#R#{id}` | the day's `Query` |
//! | cancelled reservation | `R#{rid}` | `CX#{date}#R#{id}` | the staff list and the floor of its date only |
//! | dead hold (`released`, `expired`) | `R#{rid}` | `E#{date}#R#{id}` | the staff list of its date and retention only |
//! | change counter (`n`, and `nx` for the next date) | `R#{rid}` | `D#{date}#C#{table}` | the day's `Query` (its date's and the next's) |
//! | table (settings revision `rev`, settings-change `fence`) | `O#{rid}#{table}` | `T` | the holds of that table (a `ConditionCheck`), settings changes |
//! | client's live-hold slots | `C#{client}` | `C` | the holds of that client only |
//! | client's rate bucket (`full`, the instant it is full again) | `L#{client}` | `L` | the hold and join requests of that client only (TTL) |
//! | pacing window (`v`, one `h{id}` per counted reservation not yet seen by the day's read) | `P#{rid}` | `{date}#{start}#{end}` | the paced holds of that window only |
//! | idempotency record | `I#{scope}` | `I` | its own requests, retention |
//! | waitlist entry | `W#{rid}` | `{date}#{id}` | its date's queue (`Query` of `{date}#`), its offers, leave, confirm and release |
//! | waitlist day (`j` joins, `idle`) | `WAITLIST` | `{date}#{rid}` | the reconcile loop, retention of past dates |
//!
//! - **Dead holds leave the day.** The day's `Query` (availability, live reloads, the hold's own
//!   candidate read) covers `D#{date-1}#` … `D#{date}#~`. A hold that is released or expired is
//!   *moved* to `E#{date}#R#{id}` in the very transaction that releases or expires it (a
//!   conditional `Delete` of the old key and a `Put` of the new one; its pointer `X#{id}` records
//!   the key it now lives at). A reservation that is cancelled moves the same way, to
//!   `CX#{date}#R#{id}`, where only the staff list and the floor (which list it) read it. So the
//!   day's read costs the live reservations of its dates (completed and no-show ones occupy
//!   their table until their end), never the churn of abandoned holds or cancellations.
//!   (A reservation cancelled before this layout stays under `D#`: the day's read drops it.) A hold that has expired but is not yet swept stays under `D#`
//!   for the ≤ 2 s until the sweeper moves it; it is free by condition meanwhile. The counter a
//!   move bumps carries `lg` ("its last reservation left the day"), so a read that no longer
//!   sees that reservation is not mistaken for a torn one.
//! - **Live-hold cap: one item per client.** `C#{client}` has up to `max` slot attributes
//!   `s0…s{max-1}`, each absent or `{expires_ms:016}{reservation id}` (the format of an occupancy
//!   claim). A hold claims one slot in its own `TransactWriteItems`, on condition that the slot
//!   is absent or its value sorts below `"{now_ms:016}~"`, so an expired hold's slot is free at
//!   once, by condition, without waiting for the sweeper. The reservation item records the client
//!   (`cl`) and slot (`slot`); confirm and release remove the slot in their own transaction
//!   (conditional on it still naming the reservation), expiry leaves it to lapse. Every live
//!   slot counts against `max`. Every claim also adds one to the item's `claims`; after the
//!   cap was lowered, a claim made while slots at or above the new `max` are live is also
//!   conditional on `claims` being as read, no other claim of the client in between
//!   (`insert::free_slots`). Holds of different clients share no item through the cap: there
//!   is no per-restaurant counter.
//! - **Retention without `Scan`.** The sparse `retention` index (`gc_pk` = one of 4 shards, `gc_at` =
//!   milliseconds) holds dead holds (by their last change) and idempotency records (by their
//!   creation); held reservations long past `expires_at` are found through the `due` index.
//!   Retention queries both, oldest first, and deletes in small batches.
use crate::domain::{LocalDate, TableId};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use uuid::Uuid;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// The TTL attribute (epoch seconds) of holds, their pointers and tokens, idempotency records
/// and past occupancy cells. Confirmed bookings never carry it.
pub const TTL: &str = "ttl_s";
/// The sparse index of held reservations by expiry that the sweeper queries.
pub const DUE_INDEX: &str = "due";
pub const DUE_PK: &str = "due_pk";
pub const DUE_AT: &str = "due_at";
/// Held reservations spread over this many index partitions: enough write throughput for the
/// index (each partition key takes 1,000 writes/s), few enough queries per sweep.
pub const DUE_SHARDS: u8 = 4;

/// The sparse retention index: dead holds by last change, idempotency records by creation.
pub const GC_INDEX: &str = "retention";
pub const GC_PK: &str = "gc_pk";
pub const GC_AT: &str = "gc_at";
pub const GC_SHARDS: u8 = 4;

pub const META_SK: &str = "META";
pub const DIRECTORY_PK: &str = "RESTAURANTS";

pub fn restaurant_pk(rid: Uuid) -> String {
    format!("R#{rid}")
}

/// The directory sorts by creation time, then id (as `GET /v1/restaurants` lists them).
pub fn directory_sk(created_ms: i64, rid: Uuid) -> String {
    format!("{created_ms:016}#{rid}")
}

pub fn date_prefix(date: LocalDate) -> String {
    format!("D#{date}#")
}

pub fn reservation_sk(date: LocalDate, id: Uuid) -> String {
    format!("D#{date}#R#{id}")
}

/// Where a released or expired hold lives: outside every day's `Query` range.
pub fn dead_sk(date: LocalDate, id: Uuid) -> String {
    format!("E#{date}#R#{id}")
}

pub fn dead_prefix(date: LocalDate) -> String {
    format!("E#{date}#R#")
}

/// Where a cancelled reservation lives: outside every day's `Query` range.
pub fn cancelled_sk(date: LocalDate, id: Uuid) -> String {
    format!("CX#{date}#R#{id}")
}

pub fn cancelled_prefix(date: LocalDate) -> String {
    format!("CX#{date}#R#")
}

/// The item of one client's live-hold slots.
pub fn client_key(client: &str) -> (String, String) {
    (format!("C#{client}"), "C".into())
}

/// The number of claims a client's item has counted (see `insert::Fence`).
pub const CLAIMS: &str = "claims";

pub fn slot_attr(index: u32) -> String {
    format!("s{index}")
}

/// The retention shard of an item, from any byte that is uniformly spread.
pub fn gc_pk(spread: u8) -> String {
    format!("GC#{}", spread % GC_SHARDS)
}

pub fn counter_sk(date: LocalDate, table: &TableId) -> String {
    format!("D#{date}#C#{table}")
}

/// Finds a reservation's restaurant and date from its id alone.
pub fn pointer_key(id: Uuid) -> (String, String) {
    (format!("X#{id}"), "X".into())
}

/// A mailed link token's record under its reservation's pointer partition: how the purge finds
/// every link token of a reservation (the token item itself is keyed by its hash alone).
pub fn link_key(reservation: Uuid, hash: &str) -> (String, String) {
    (pointer_key(reservation).0, format!("K#{hash}"))
}

pub fn token_key(hash: &str) -> (String, String) {
    (format!("K#{hash}"), "K".into())
}

pub fn idem_key(key: &str) -> (String, String) {
    (format!("I#{key}"), "I".into())
}

pub fn cell_pk(rid: Uuid, table: &TableId) -> String {
    format!("O#{rid}#{table}")
}

pub fn cell_sk(index: i64) -> String {
    format!("{index:012}")
}

/// The sort key of a table's own item in its occupancy partition: after every cell number.
pub const TABLE_SK: &str = "T";

/// A table's own item: the settings revision its holds are computed against, and the fence of
/// a settings change in progress (see `fence`).
pub fn table_key(rid: Uuid, table: &TableId) -> (String, String) {
    (cell_pk(rid, table), TABLE_SK.to_owned())
}

/// The item that counts one pacing window of a date: its own partition per restaurant, so the
/// day's `Query` never reads it and holds of other windows never write it.
pub fn window_key(
    rid: Uuid,
    date: LocalDate,
    window: &crate::domain::pacing::Window,
) -> (String, String) {
    (format!("P#{rid}"), window_sk(date, window))
}

pub fn window_sk(date: LocalDate, window: &crate::domain::pacing::Window) -> String {
    format!("{date}#{}#{}", window.start, window.end)
}

pub fn window_pk(rid: Uuid) -> String {
    format!("P#{rid}")
}

/// A waitlist entry: one partition per restaurant, sorted by date, so a date's queue is one
/// `Query` of `{date}#` (ordered by `created_ms` once read) and an offer, a confirm or a release
/// knows the entry's key from the restaurant, the date and the entry id alone.
pub fn entry_key(rid: Uuid, date: LocalDate, id: Uuid) -> (String, String) {
    (entry_pk(rid), format!("{}{id}", entry_day_prefix(date)))
}

pub fn entry_pk(rid: Uuid) -> String {
    format!("W#{rid}")
}

pub fn entry_day_prefix(date: LocalDate) -> String {
    format!("{date}#")
}

/// Finds an entry's restaurant and date from its id alone.
pub fn entry_pointer_key(id: Uuid) -> (String, String) {
    (format!("WX#{id}"), "X".into())
}

/// An entry's bearer token (its hash): apart from reservation and staff tokens.
pub fn entry_token_key(hash: &str) -> (String, String) {
    (format!("WK#{hash}"), "K".into())
}

/// The partition listing every restaurant/date that has (or had) a waitlist.
pub const WAIT_DAYS_PK: &str = "WAITLIST";

/// A restaurant/date with a waitlist, sorted by date: what the reconcile loop walks from
/// today on and what retention deletes once the date is past.
pub fn wait_day_key(date: LocalDate, rid: Uuid) -> (String, String) {
    (WAIT_DAYS_PK.to_owned(), format!("{date}#{rid}"))
}

/// The change counter a date's waitlist-only changes (join, leave) add to: inside the day's
/// range with the tables' counters, so they raise the date's version. No table id starts
/// with `~`.
pub fn wait_counter_sk(date: LocalDate) -> String {
    format!("D#{date}#C#~wl")
}

pub fn due_pk(id: Uuid) -> String {
    format!("DUE#{}", id.as_bytes()[15] % DUE_SHARDS)
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.into())),
        (SK.to_owned(), AttributeValue::S(sk.into())),
    ])
}

/// Placeholders for attribute names and values, so no reserved word can break an expression.
#[derive(Debug, Default, Clone)]
pub struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub fn name(&mut self, attr: &str) -> String {
        if let Some((p, _)) = self.names.iter().find(|(_, a)| a.as_str() == attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), attr.to_owned());
        p
    }

    pub fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_range_holds_its_counters_before_its_reservations_and_nothing_of_other_days() {
        let d = LocalDate::parse("2026-12-05").unwrap();
        let t = TableId::parse("t1").unwrap();
        let id = Uuid::nil();
        let (lo, hi) = (date_prefix(d.pred()), format!("{}~", date_prefix(d)));
        for sk in [
            counter_sk(d, &t),
            reservation_sk(d, id),
            reservation_sk(d.pred(), id),
        ] {
            assert!(lo <= sk && sk <= hi, "{sk}");
        }
        assert!(counter_sk(d, &t) < reservation_sk(d, id));
        assert!(reservation_sk(d.succ(), id) > hi);
        assert!(reservation_sk(d.pred().pred(), id) < lo);
        assert!(*META_SK > *hi);
        assert!(dead_sk(d, id) > hi && dead_sk(d.succ(), id) > hi);
        assert!(dead_sk(d, id).starts_with(&dead_prefix(d)));
        assert!(dead_sk(d.pred(), id) > format!("{}~", date_prefix(d.succ())));
        assert!(cancelled_sk(d, id) < lo && cancelled_sk(d.succ(), id) < lo);
        assert!(cancelled_sk(d, id).starts_with(&cancelled_prefix(d)));
        assert!(!cancelled_sk(d.succ(), id).starts_with(&cancelled_prefix(d)));
    }

    #[test]
    fn a_tables_own_item_sorts_after_every_cell_of_its_partition() {
        let t = TableId::parse("t1").unwrap();
        let rid = Uuid::nil();
        assert_eq!(table_key(rid, &t).0, cell_pk(rid, &t));
        assert!(cell_sk(i64::MAX / 1_000_000) < table_key(rid, &t).1);
    }

    #[test]
    fn the_next_days_range_holds_a_counter_with_its_reservations_and_the_day_after_neither() {
        // A counter's `nx` counts for the next date: every read of that date must also see the
        // reservations the counter names, or its torn-read check could not hold.
        let d = LocalDate::parse("2026-12-31").unwrap();
        let t = TableId::parse("t1").unwrap();
        let id = Uuid::nil();
        let range = |day: LocalDate| (date_prefix(day.pred()), format!("{}~", date_prefix(day)));
        let within = |sk: &str, (lo, hi): (String, String)| lo.as_str() <= sk && sk <= hi.as_str();
        for sk in [counter_sk(d, &t), reservation_sk(d, id)] {
            assert!(within(&sk, range(d.succ())), "{sk}");
            assert!(!within(&sk, range(d.succ().succ())), "{sk}");
        }
    }

    #[test]
    fn directory_keys_sort_by_creation_time_then_id() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        assert!(directory_sk(999, a) < directory_sk(1000, b));
        assert!(directory_sk(1000, b) < directory_sk(1000, a));
    }

    #[test]
    fn expression_placeholders_are_reused_for_a_name_and_fresh_for_each_value() {
        let mut e = Expr::default();
        let a = e.name("status");
        assert_eq!(e.name("status"), a);
        assert_ne!(e.value(s("x")), e.value(s("x")));
        assert_eq!(e.names().unwrap()[&a], "status");
        assert!(Expr::default().values().is_none());
    }

    #[test]
    fn due_shards_stay_in_range() {
        for i in 0..64u128 {
            let k = due_pk(Uuid::from_u128(i * 7919));
            let shard: u8 = k.trim_start_matches("DUE#").parse().unwrap();
            assert!(shard < DUE_SHARDS);
        }
    }
}
