//! Reads and writes every other module builds on: consistent gets and queries with retries,
//! transactions, and the version of a restaurant/date.
use super::errors::{read, write, Written};
use super::items::{counter_from, restaurant_from, Counter, RestaurantItem, WIDE_STEP};
use super::keys::*;
use super::DynamoStore;
use crate::domain::LocalDate;
use crate::store::{StoreError, StoreResult, Versions};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use uuid::Uuid;

pub fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::internal("cannot build a DynamoDB request", e)
}

impl DynamoStore {
    pub(super) async fn get(&self, (pk, sk): (String, String)) -> StoreResult<Option<Item>> {
        let k = key(pk, sk);
        read(|| {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(k.clone()))
                .consistent_read(true)
                .send()
        })
        .await
        .map(|out| out.item)
    }

    /// Every item of `pk` whose sort key lies in `[lo, hi]`, read with strong consistency.
    pub(super) async fn query_range(&self, pk: &str, lo: &str, hi: &str) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = read(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", s(pk))
                    .expression_attribute_values(":lo", s(lo))
                    .expression_attribute_values(":hi", s(hi))
                    .set_exclusive_start_key(start.clone())
                    .send()
            })
            .await?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    pub(super) async fn query_prefix(&self, pk: &str, prefix: &str) -> StoreResult<Vec<Item>> {
        self.query_range(pk, prefix, &format!("{prefix}~")).await
    }

    /// One `TransactWriteItems`; throttling and conflicts are retried, the rest is the caller's.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Written<()>> {
        if items.len() > 100 {
            return Err(StoreError::Internal(
                format!(
                    "a transaction of {} items is over DynamoDB's limit of 100",
                    items.len()
                )
                .into(),
            ));
        }
        write(|| {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
        })
        .await
        .map(|w| match w {
            Written::Done(_) => Written::Done(()),
            Written::Condition => Written::Condition,
            Written::Canceled(r) => Written::Canceled(r),
            Written::Unknown(m) => Written::Unknown(m),
        })
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> StoreResult<TransactWriteItem> {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(c) = condition {
            b = b
                .condition_expression(c)
                .expression_attribute_names("#pk", PK);
        }
        Ok(TransactWriteItem::builder()
            .put(b.build().map_err(build_err)?)
            .build())
    }

    pub(super) fn update(
        &self,
        k: (String, String),
        expr: &str,
        condition: Option<&str>,
        e: &Expr,
    ) -> StoreResult<TransactWriteItem> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(k.0, k.1)))
            .update_expression(expr)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    /// The restaurant still has `revision` and no live fence (a guarded settings change).
    pub(super) fn restaurant_check(
        &self,
        rid: Uuid,
        revision: u64,
        now_ms: i64,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let cond = format!(
            "{rev} = {r} AND (attribute_not_exists({f}) OR {f} < {now})",
            rev = e.name("rev"),
            r = e.value(n(revision)),
            f = e.name("fence_until"),
            now = e.value(n(now_ms)),
        );
        let c = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(restaurant_pk(rid), META_SK)))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().condition_check(c).build())
    }

    pub(super) async fn restaurant_item(&self, rid: Uuid) -> StoreResult<Option<RestaurantItem>> {
        self.get((restaurant_pk(rid), META_SK.to_owned()))
            .await?
            .as_ref()
            .map(restaurant_from)
            .transpose()
    }

    pub(super) async fn counters(&self, rid: Uuid, date: LocalDate) -> StoreResult<Vec<Counter>> {
        let prefix = format!("{}C#", date_prefix(date));
        self.query_prefix(&restaurant_pk(rid), &prefix)
            .await?
            .iter()
            .map(counter_from)
            .collect()
    }

    /// A date's version now: the restaurant-wide floor plus every table's changes that date.
    pub(super) async fn version(&self, rid: Uuid, date: LocalDate) -> StoreResult<u64> {
        let (counters, restaurant) =
            tokio::try_join!(self.counters(rid, date), self.restaurant_item(rid))?;
        Ok(version_of(
            restaurant.map_or(0, |r| r.wide),
            date,
            &counters,
        ))
    }

    /// The versions to publish after a committed change. Reading them can fail after the write
    /// succeeded; the change is then still answered as done (the live layer reloads the date
    /// whatever number it is given), with the version reported as 0.
    pub(super) async fn versions_after(&self, rid: Uuid, date: LocalDate) -> Versions {
        let version = self.version(rid, date).await.unwrap_or_else(|e| {
            tracing::warn!(error = %format!("{e:#}"), %rid, %date, "committed, but cannot read the new version");
            0
        });
        Versions {
            dates: vec![(date, version)],
            wide: None,
        }
    }
}

pub fn version_of(wide: u64, date: LocalDate, counters: &[Counter]) -> u64 {
    wide * WIDE_STEP
        + counters
            .iter()
            .filter(|c| c.date == date)
            .map(|c| c.changes)
            .sum::<u64>()
}

/// A counter bump for the change that writes `reservation` for the `writes`-th time; `gone`
/// when that change moves the reservation out of the day's key range.
pub fn counter_bump(
    store: &DynamoStore,
    r: &crate::domain::Reservation,
    writes: u64,
    ttl: Option<i64>,
    gone: bool,
) -> StoreResult<TransactWriteItem> {
    let mut e = Expr::default();
    let mut sets = vec![
        format!("{} = {}", e.name("lr"), e.value(s(r.id.to_string()))),
        format!("{} = {}", e.name("lw"), e.value(n(writes))),
    ];
    let mut removes = Vec::new();
    match ttl {
        Some(t) => sets.push(format!("{} = {}", e.name("lt"), e.value(n(t)))),
        None => removes.push(e.name("lt")),
    }
    if gone {
        sets.push(format!(
            "{} = {}",
            e.name("lg"),
            e.value(AttributeValue::Bool(true))
        ));
    } else {
        removes.push(e.name("lg"));
    }
    let mut expr = format!(
        "ADD {c} {one} SET {sets}",
        c = e.name("n"),
        one = e.value(n(1)),
        sets = sets.join(", "),
    );
    if !removes.is_empty() {
        expr.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    store.update(
        (
            restaurant_pk(r.restaurant_id),
            counter_sk(r.date, &r.table_id),
        ),
        &expr,
        None,
        &e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LocalDate;

    #[test]
    fn a_version_is_the_wide_floor_plus_the_dates_counters_only() {
        let d = LocalDate::parse("2026-12-05").unwrap();
        let c = |date: LocalDate, changes| Counter {
            date,
            changes,
            last: Uuid::nil(),
            last_writes: 1,
            last_ttl: None,
            last_gone: false,
        };
        let cs = [c(d, 3), c(d, 4), c(d.pred(), 100)];
        assert_eq!(version_of(2, d, &cs), 2 * WIDE_STEP + 7);
        assert!(version_of(3, d, &[]) > version_of(2, d, &cs));
    }
}
