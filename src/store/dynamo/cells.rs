//! Occupancy cells: the items whose conditional writes make an overlap on a table unwritable.
//!
//! A table's time is cut into UTC cells of [`CELL_MINUTES`]; a cell item holds one attribute per
//! occupied minute (`m0`…`m14`) whose value names the owner and until when the claim holds:
//! `{expiry_ms:016}{reservation id}` (a hold's `expires_at`, or [`NEVER`] for everything else).
//! Claiming a minute is conditional on it being absent or expired (`value < "{now_ms:016}~"` —
//! the zero-padded prefix makes string order the order of expiry), so expired holds are free by
//! condition and two claims of one minute cannot both commit. Every other change to a minute is
//! conditional on it still holding the owner's exact value.
use super::keys::{cell_pk, cell_sk, key, n, s, Expr, TTL};
use crate::domain::TableId;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const CELL_MINUTES: i64 = 15;
/// The expiry of a claim that never expires (anything but a hold).
pub const NEVER: i64 = 9_999_999_999_999_999;
/// Cells are removed by TTL this long after their time has passed; no booking can start there.
const CELL_TTL_AFTER_S: i64 = 7 * 86_400;

/// Minutes `[floor(start), ceil(end))` as minute numbers since the epoch.
pub fn minutes(start: DateTime<Utc>, end: DateTime<Utc>) -> std::ops::Range<i64> {
    let a = start.timestamp_millis().div_euclid(60_000);
    let b = (end.timestamp_millis() + 59_999).div_euclid(60_000);
    a..b.max(a)
}

pub fn claim_value(expires_ms: Option<i64>, id: Uuid) -> String {
    format!("{:016}{}", expires_ms.unwrap_or(NEVER), id.simple())
}

/// Compares above every claim that expired at or before `now`.
pub fn now_key(now: DateTime<Utc>) -> String {
    format!("{:016}~", now.timestamp_millis())
}

/// What happens to one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Take it if free or expired.
    Claim(String),
    /// Change the owner's value (a hold confirmed).
    Retag { from: String, to: String },
    /// Give it up, if still ours (or the cell was already removed by TTL).
    Free(String),
    /// Take it if free, expired, or held by exactly `keep`: a freed minute kept for one planned
    /// waitlist offer (see [`keep_ops`]).
    ClaimOver { value: String, keep: String },
}

/// A planned offer's keep: freed minutes carry it instead of going free, so that no claim but
/// that offer's ([`Op::ClaimOver`]) takes them before it is written; it lapses at `until` like a
/// hold, whatever happens to the offer.
pub fn keep_value(until: DateTime<Utc>, entry: Uuid) -> String {
    format!(
        "{}~kept",
        claim_value(Some(until.timestamp_millis()), entry)
    )
}

/// `ops` with every minute given up handed to `keep` instead.
pub fn keep_ops(ops: &mut [(u8, Op)], keep: &str) {
    for (_, op) in ops.iter_mut() {
        if let Op::Free(v) = op {
            *op = Op::Retag {
                from: std::mem::take(v),
                to: keep.to_owned(),
            };
        }
    }
}

/// `ops` with every claim also taking a minute `keep` holds.
pub fn over_keep(ops: &mut [(u8, Op)], keep: &str) {
    for (_, op) in ops.iter_mut() {
        if let Op::Claim(v) = op {
            *op = Op::ClaimOver {
                value: std::mem::take(v),
                keep: keep.to_owned(),
            };
        }
    }
}

/// One minute's claim before and after a change.
pub type Claim = Option<String>;

/// The per-minute operations turning `before` into `after`, grouped by cell.
pub fn diff(
    before: Option<(std::ops::Range<i64>, String)>,
    after: Option<(std::ops::Range<i64>, String)>,
) -> BTreeMap<i64, Vec<(u8, Op)>> {
    let mut all: BTreeMap<i64, (Claim, Claim)> = BTreeMap::new();
    if let Some((r, v)) = &before {
        for m in r.clone() {
            all.entry(m).or_default().0 = Some(v.clone());
        }
    }
    if let Some((r, v)) = &after {
        for m in r.clone() {
            all.entry(m).or_default().1 = Some(v.clone());
        }
    }
    let mut cells: BTreeMap<i64, Vec<(u8, Op)>> = BTreeMap::new();
    for (m, pair) in all {
        let op = match pair {
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => Op::Retag { from: a, to: b },
            (Some(a), None) => Op::Free(a),
            (None, Some(b)) => Op::Claim(b),
            (None, None) => continue,
        };
        place(&mut cells, m, op);
    }
    cells
}

/// Files `op` on minute `m` under its cell, at its offset there.
pub fn place(cells: &mut BTreeMap<i64, Vec<(u8, Op)>>, m: i64, op: Op) {
    let (cell, offset) = (m.div_euclid(CELL_MINUTES), m.rem_euclid(CELL_MINUTES) as u8);
    cells.entry(cell).or_default().push((offset, op));
}

/// One conditional update of a cell item applying `ops`.
pub fn update(
    table_name: &str,
    rid: Uuid,
    table: &TableId,
    cell: i64,
    ops: &[(u8, Op)],
    now: DateTime<Utc>,
) -> Result<TransactWriteItem, aws_sdk_dynamodb::error::BuildError> {
    let mut e = Expr::default();
    let (mut sets, mut removes, mut conds) = (Vec::new(), Vec::new(), Vec::new());
    let mut now_p = None;
    for (offset, op) in ops {
        let a = e.name(&format!("m{offset}"));
        match op {
            Op::Claim(v) => {
                let now_p = now_p
                    .get_or_insert_with(|| e.value(s(now_key(now))))
                    .clone();
                sets.push(format!("{a} = {}", e.value(s(v))));
                conds.push(format!("(attribute_not_exists({a}) OR {a} < {now_p})"));
            }
            Op::ClaimOver { value, keep } => {
                let now_p = now_p
                    .get_or_insert_with(|| e.value(s(now_key(now))))
                    .clone();
                sets.push(format!("{a} = {}", e.value(s(value))));
                conds.push(format!(
                    "(attribute_not_exists({a}) OR {a} < {now_p} OR {a} = {})",
                    e.value(s(keep))
                ));
            }
            Op::Retag { from, to } => {
                conds.push(format!("{a} = {}", e.value(s(from))));
                sets.push(format!("{a} = {}", e.value(s(to))));
            }
            Op::Free(v) => {
                conds.push(format!(
                    "(attribute_not_exists({a}) OR {a} = {})",
                    e.value(s(v))
                ));
                removes.push(a);
            }
        }
    }
    let ttl_s = (cell + 1) * CELL_MINUTES * 60 + CELL_TTL_AFTER_S;
    sets.push(format!("{} = {}", e.name(TTL), e.value(n(ttl_s))));
    let mut expr = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    let u = Update::builder()
        .table_name(table_name)
        .set_key(Some(key(cell_pk(rid, table), cell_sk(cell))))
        .update_expression(expr)
        .condition_expression(conds.join(" AND "))
        .set_expression_attribute_names(e.names())
        .set_expression_attribute_values(e.values())
        .build()?;
    Ok(TransactWriteItem::builder().update(u).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_kept_minute_is_retagged_for_one_offer_whose_claim_alone_may_take_it() {
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 18, 0, 0).unwrap();
        let keep = keep_value(now + chrono::Duration::seconds(10), Uuid::nil());
        assert!(keep.as_str() > now_key(now).as_str(), "live while kept");
        assert!(
            keep.as_str() < now_key(now + chrono::Duration::seconds(11)).as_str(),
            "then free"
        );
        let mut freed = vec![(0, Op::Free("r".into())), (1, Op::Claim("x".into()))];
        keep_ops(&mut freed, &keep);
        assert_eq!(
            freed[0].1,
            Op::Retag {
                from: "r".into(),
                to: keep.clone()
            }
        );
        assert_eq!(
            freed[1].1,
            Op::Claim("x".into()),
            "only what is given up is kept"
        );
        let mut offer = vec![(0, Op::Claim("o".into()))];
        over_keep(&mut offer, &keep);
        assert_eq!(
            offer[0].1,
            Op::ClaimOver {
                value: "o".into(),
                keep: keep.clone()
            }
        );
        let item = update(
            "t",
            Uuid::nil(),
            &TableId::parse("t1").unwrap(),
            7,
            &offer,
            now,
        )
        .unwrap();
        let u = item.update().unwrap();
        let cond = u.condition_expression().unwrap();
        assert!(
            cond.contains("attribute_not_exists") && cond.matches(" OR ").count() == 2,
            "{cond}"
        );
        let values = u.expression_attribute_values().unwrap();
        assert!(values.values().any(|v| v.as_s().is_ok_and(|s| *s == keep)));
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, h, m, 0).unwrap()
    }

    #[test]
    fn minutes_cover_the_half_open_interval_rounded_outwards() {
        let r = minutes(at(18, 0), at(20, 30));
        assert_eq!(r.end - r.start, 150);
        let partial = minutes(at(18, 0) + chrono::Duration::seconds(30), at(18, 1));
        assert_eq!(partial.end - partial.start, 1);
        assert!(minutes(at(18, 0), at(18, 0)).is_empty());
    }

    #[test]
    fn claim_values_order_by_expiry_and_compare_with_now() {
        let id = Uuid::new_v4();
        let now = at(18, 0);
        let expired = claim_value(Some(now.timestamp_millis()), id);
        let live = claim_value(Some(now.timestamp_millis() + 1), id);
        assert!(expired < now_key(now), "a hold expiring at now is expired");
        assert!(live > now_key(now));
        assert!(claim_value(None, id) > now_key(at(23, 59)));
    }

    #[test]
    fn a_new_claim_takes_every_minute_and_a_release_frees_them() {
        let r = minutes(at(19, 0), at(20, 30));
        let claim = diff(None, Some((r.clone(), "v".into())));
        assert_eq!(claim.len(), 6, "90 minutes on 15-minute cells");
        assert!(claim.values().all(|ops| ops.len() == 15));
        let free = diff(Some((r, "v".into())), None);
        assert!(free
            .values()
            .flatten()
            .all(|(_, op)| *op == Op::Free("v".into())));
    }

    #[test]
    fn a_walk_in_off_the_grid_shares_cells_only_at_its_edges() {
        let c = diff(None, Some((minutes(at(19, 7), at(19, 52)), "v".into())));
        let offsets: Vec<(i64, usize)> = c.iter().map(|(k, v)| (*k, v.len())).collect();
        assert_eq!(offsets.iter().map(|(_, n)| n).sum::<usize>(), 45);
        assert_eq!(offsets.first().unwrap().1, 8);
        assert_eq!(offsets.last().unwrap().1, 7);
    }

    #[test]
    fn confirming_retags_and_shrinking_frees_only_the_tail() {
        let r = minutes(at(19, 0), at(21, 0));
        let c = diff(Some((r.clone(), "h".into())), Some((r.clone(), "c".into())));
        assert!(c
            .values()
            .flatten()
            .all(|(_, op)| matches!(op, Op::Retag { .. })));
        let s = diff(
            Some((r, "c".into())),
            Some((minutes(at(19, 0), at(19, 45)), "c".into())),
        );
        let freed: usize = s.values().map(Vec::len).sum();
        assert_eq!(freed, 75);
        assert!(s
            .values()
            .flatten()
            .all(|(_, op)| *op == Op::Free("c".into())));
    }

    #[test]
    fn a_twelve_hour_reservation_fits_one_transaction() {
        let c = diff(None, Some((minutes(at(6, 7), at(18, 7)), "v".into())));
        assert!(c.len() <= 49, "{}", c.len());
    }

    #[test]
    fn a_cell_update_conditions_each_minute() {
        let ops = vec![
            (0, Op::Claim("a".into())),
            (1, Op::Free("b".into())),
            (
                2,
                Op::Retag {
                    from: "c".into(),
                    to: "d".into(),
                },
            ),
        ];
        let t = TableId::parse("t1").unwrap();
        let w = update("tbl", Uuid::nil(), &t, 7, &ops, at(18, 0)).unwrap();
        let u = w.update().unwrap();
        assert!(u.update_expression().contains("REMOVE"));
        assert_eq!(
            u.condition_expression().unwrap().matches(" AND ").count(),
            2
        );
    }
}
