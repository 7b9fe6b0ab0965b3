//! Reads and writes every other module builds on: consistent gets and queries with retries,
//! transactions, and the version of a restaurant/date.
use super::errors::{read, write, Written};
use super::items::{counter_from, restaurant_from, Counter, RestaurantItem, WIDE_STEP};
use super::keys::*;
use super::DynamoStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{Step, StoreError, StoreResult, Versions};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use std::collections::BTreeSet;
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

    /// The restaurant-wide version and every counter of `dates` and of the days before them.
    async fn counters_of(
        &self,
        rid: Uuid,
        dates: &[LocalDate],
    ) -> StoreResult<(u64, Vec<Counter>)> {
        let read: BTreeSet<LocalDate> = dates.iter().flat_map(|d| [d.pred(), *d]).collect();
        let (counters, restaurant) = tokio::try_join!(
            futures_util::future::try_join_all(read.into_iter().map(|d| self.counters(rid, d))),
            self.restaurant_item(rid)
        )?;
        Ok((restaurant.map_or(0, |r| r.wide), counters.concat()))
    }

    /// The versions to publish after a committed change to `dates`, read back after the
    /// commit, with the exact step of each date where the read shows it: `mine` names the
    /// change's own counter write (the item it wrote and that item's write count); a counter
    /// that still names it holds the count this change left, so its part moved from one less to
    /// that. A counter written again since names another write: that date gets no step (a live
    /// view reads it). Reading can fail after the write succeeded; the change is then still
    /// answered as done, with the versions reported as 0 and no step.
    pub(super) async fn versions_after(
        &self,
        rid: Uuid,
        dates: &[LocalDate],
        mine: Option<(Uuid, u64)>,
    ) -> Versions {
        let (wide, counters) = match self.counters_of(rid, dates).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), %rid, ?dates, "committed, but cannot read the new versions");
                return Versions {
                    dates: dates.iter().map(|d| (*d, 0)).collect(),
                    ..Versions::default()
                };
            }
        };
        let mut out = Versions::default();
        for d in dates {
            out.dates.push((*d, version_of(wide, *d, &counters)));
            let Some(mine) = mine else { continue };
            let moved: Vec<Step> = counters
                .iter()
                .filter(|c| (c.last, c.last_writes) == mine)
                .filter_map(|c| {
                    let (part, to) = if c.date == *d {
                        (c.table.clone(), c.changes)
                    } else if c.date.succ() == *d {
                        (format!("<{}", c.table), c.next_changes)
                    } else {
                        return None;
                    };
                    (to > 0).then(|| Step {
                        date: *d,
                        part,
                        from: to - 1,
                        to,
                    })
                })
                .collect();
            if moved.is_empty() {
                continue;
            }
            // The restaurant-wide floor the change was made against: a view that missed a
            // settings change is behind on it and reads.
            out.steps.push(Step {
                date: *d,
                part: WIDE_PART.to_owned(),
                from: wide * WIDE_STEP,
                to: wide * WIDE_STEP,
            });
            out.steps.extend(moved);
        }
        out
    }
}

/// The part of a date's version that is the restaurant-wide floor.
pub const WIDE_PART: &str = "^";

/// The parts a date's version sums ([`version_of`]): the wide floor, each counter of the date
/// by its table, and each counter of the day before that counts past midnight, as `<table`.
pub fn parts_of(wide: u64, date: LocalDate, counters: &[Counter]) -> Vec<(String, u64)> {
    let mut parts = vec![(WIDE_PART.to_owned(), wide * WIDE_STEP)];
    for c in counters {
        if c.date == date {
            parts.push((c.table.clone(), c.changes));
        } else if c.date.succ() == date && c.next_changes > 0 {
            parts.push((format!("<{}", c.table), c.next_changes));
        }
    }
    parts
}

/// A date's version: `wide × WIDE_STEP`, plus the changes of its tables (`n` of its counters),
/// plus the changes of the day before's reservations that may run past midnight (`nx` of that
/// day's counters, which the date's `Query` covers with their reservations).
pub fn version_of(wide: u64, date: LocalDate, counters: &[Counter]) -> u64 {
    wide * WIDE_STEP
        + counters
            .iter()
            .map(|c| {
                if c.date == date {
                    c.changes
                } else if c.date.succ() == date {
                    c.next_changes
                } else {
                    0
                }
            })
            .sum::<u64>()
}

/// The dates whose versions a change of a reservation from `before` to `after` raises: those
/// either may run into (a shortened `end` frees the next date's time too), own date first.
pub fn dates_touched(before: &Reservation, after: &Reservation) -> Vec<LocalDate> {
    let mut dates = before.dates_spanned();
    dates.extend(after.dates_spanned());
    dates.sort();
    dates.dedup();
    dates
}

/// A counter bump for the change that writes `reservation` for the `writes`-th time; `gone`
/// when that change moves the reservation out of the day's key range. It raises the version of
/// every date in `dates` (the reservation's own, and the next when it may run past midnight)
/// with this one item: `n` counts for the counter's date, `nx` for the next. The next date's
/// `Query` covers this counter and the reservation it names, so its torn-read check holds
/// there as on the own date; a counter item of the next date naming this reservation would
/// look torn to the `Query` of the date after, which covers that counter but not this
/// reservation.
pub fn counter_bump(
    store: &DynamoStore,
    r: &Reservation,
    writes: u64,
    ttl: Option<i64>,
    gone: bool,
    dates: &[LocalDate],
) -> StoreResult<TransactWriteItem> {
    let mut e = Expr::default();
    let mut adds = vec![format!("{} {}", e.name("n"), e.value(n(1)))];
    if dates.contains(&r.date.succ()) {
        adds.push(format!("{} {}", e.name("nx"), e.value(n(1))));
    }
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
        "ADD {adds} SET {sets}",
        adds = adds.join(", "),
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
        let c = |date: LocalDate, changes, next_changes| Counter {
            date,
            table: "t1".into(),
            changes,
            next_changes,
            last: Uuid::nil(),
            last_writes: 1,
            last_ttl: None,
            last_gone: false,
        };
        let cs = [c(d, 3, 0), c(d, 4, 0), c(d.pred(), 100, 0)];
        assert_eq!(version_of(2, d, &cs), 2 * WIDE_STEP + 7);
        assert!(version_of(3, d, &[]) > version_of(2, d, &cs));
        // The day before's changes that may run past midnight count for the date too; its own
        // past-midnight changes count for the next date, never for the one before.
        let cs = [c(d, 3, 2), c(d.pred(), 100, 5), c(d.pred().pred(), 9, 9)];
        assert_eq!(version_of(0, d, &cs), 3 + 5);
        assert_eq!(version_of(0, d.succ(), &cs), 2);
        assert_eq!(version_of(0, d.pred(), &cs), 100 + 9);
    }

    #[test]
    fn a_change_touches_the_dates_either_side_of_it_may_run_into() {
        use crate::domain::reservation::Status;
        use crate::domain::{TableId, WallTime};
        use chrono::{Duration, TimeZone, Utc};
        let d = LocalDate::parse("2026-12-05").unwrap();
        let late = |minutes| {
            let start = Utc.with_ymd_and_hms(2026, 12, 5, 21, 30, 0).unwrap();
            Reservation {
                id: Uuid::nil(),
                restaurant_id: Uuid::nil(),
                table_id: TableId::parse("t1").unwrap(),
                table_ids: vec![TableId::parse("t1").unwrap()],
                combination_id: None,
                date: d,
                time: WallTime::parse("21:30").unwrap(),
                start,
                end: start + Duration::minutes(minutes),
                party_size: 2,
                status: Status::Seated,
                expires_at: None,
                guest: None,
                notes: String::new(),
                created_at: start,
                updated_at: start,
            }
        };
        let (long, short) = (late(180), late(30));
        assert_eq!(dates_touched(&long, &long), [d, d.succ()]);
        assert_eq!(dates_touched(&short, &short), [d]);
        assert_eq!(
            dates_touched(&long, &short),
            [d, d.succ()],
            "shortened: the next date's time is freed"
        );
    }
}
