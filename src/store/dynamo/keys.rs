//! Primary keys of every item kind, and a builder for expressions with placeholder names.
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

pub fn counter_sk(date: LocalDate, table: &TableId) -> String {
    format!("D#{date}#C#{table}")
}

/// Finds a reservation's restaurant and date from its id alone.
pub fn pointer_key(id: Uuid) -> (String, String) {
    (format!("X#{id}"), "X".into())
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
