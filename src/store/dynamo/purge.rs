//! Retention: deletes dead holds (and held ones long past their expiry) with their pointers,
//! tokens, and whatever cells and slot they still hold, and old idempotency records. Found
//! through the sparse `retention` and `due` indexes, oldest first, never by `Scan`.
use super::cells::{claim_value, minutes, CELL_MINUTES};
use super::errors::{read, write, Reason, Written};
use super::io::counter_bump;
use super::items::*;
use super::keys::*;
use super::DynamoStore;
use crate::domain::reservation::Status;
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use std::collections::BTreeMap;

/// How many deletions one purge has in flight at once: a background job, kept gentle.
const PURGE_CONCURRENCY: usize = 4;
/// The most index entries one query of one shard asks for.
const PAGE: u32 = 100;

impl DynamoStore {
    pub(super) async fn purge_(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let before_ms = before.timestamp_millis();
        let page = limit.min(PAGE);
        let gc = (0..GC_SHARDS)
            .map(|k| self.aged(GC_INDEX, GC_PK, GC_AT, format!("GC#{k}"), before_ms, page));
        let due = (0..DUE_SHARDS).map(|k| {
            self.aged(
                DUE_INDEX,
                DUE_PK,
                DUE_AT,
                format!("DUE#{k}"),
                before_ms,
                page,
            )
        });
        let (gc, due) = tokio::try_join!(
            futures_util::future::try_join_all(gc),
            futures_util::future::try_join_all(due)
        )?;
        let mut found: Vec<(i64, Item)> = gc.into_iter().chain(due).flatten().collect();
        found.sort_by_key(|(at, _)| *at);
        found.truncate(limit as usize);
        let results: Vec<StoreResult<bool>> = stream::iter(found)
            .map(|(_, item)| self.purge_one(item, before_ms))
            .buffer_unordered(PURGE_CONCURRENCY)
            .collect()
            .await;
        let mut gone = 0;
        for r in results {
            gone += usize::from(r?);
        }
        if gone < limit as usize {
            gone += self.purge_wait_days(before, limit as usize - gone).await?;
        }
        Ok(gone)
    }

    /// Entries of one index shard older than `before_ms`, with their age, oldest first.
    async fn aged(
        &self,
        index: &str,
        pk: &str,
        at: &str,
        shard: String,
        before_ms: i64,
        page: u32,
    ) -> StoreResult<Vec<(i64, Item)>> {
        let out = read(|| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#p = :p AND #a < :before")
                .expression_attribute_names("#p", pk)
                .expression_attribute_names("#a", at)
                .expression_attribute_values(":p", s(&shard))
                .expression_attribute_values(":before", n(before_ms))
                .limit(page as i32)
                .send()
        })
        .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| Ok((get_n::<i64>(&item, at)?, item)))
            .collect()
    }

    /// Deletes one record found by the indexes; `false` when it changed meanwhile.
    async fn purge_one(&self, item: Item, before_ms: i64) -> StoreResult<bool> {
        let pk = get_s(&item, PK)?;
        if pk.starts_with("W#") {
            // A finished waitlist entry.
            let cur = super::wait_items::entry_from(&item)?;
            return self.purge_entry(&cur, Some(before_ms)).await;
        }
        if pk.starts_with("I#") {
            let k = (pk.to_owned(), get_s(&item, SK)?.to_owned());
            let w = write(|| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(k.0.clone(), k.1.clone())))
                    .condition_expression("#c < :before")
                    .expression_attribute_names("#c", "created_ms")
                    .expression_attribute_values(":before", n(before_ms))
                    .send()
            })
            .await?;
            return Ok(matches!(w, Written::Done(_)));
        }
        let cur = reservation_from(&item)?;
        let r = &cur.reservation;
        let mut e = Expr::default();
        let mut cond = format!(
            "{st} = {status} AND {wc} = {w}",
            st = e.name("status"),
            status = e.value(s(r.status.as_str())),
            wc = e.name("wc"),
            w = e.value(n(cur.writes)),
        );
        let held = r.status == Status::Held;
        if held {
            // Long expired, yet never swept: purged where it lies, in the day's range.
            cond.push_str(&format!(
                " AND {x} < {before}",
                x = e.name("exp_ms"),
                before = e.value(n(before_ms))
            ));
        } else if !is_dead(r.status) {
            return Ok(false);
        }
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                restaurant_pk(r.restaurant_id),
                reservation_sk_of(r),
            )))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(super::io::build_err)?;
        // Its mailed link tokens go first: the reservation is dead either way, and a link
        // token left behind would outlive it.
        self.forget_link_tokens(r.id).await?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.delete(pointer_key(r.id))?,
        ];
        if let Some(h) = &cur.token_hash {
            items.push(self.delete(token_key(h))?);
        }
        if held {
            // It leaves the day: its counter says so, and the versions of its dates rise.
            let dates = r.dates_spanned();
            items.push(counter_bump(self, r, cur.writes + 1, None, true, &dates)?);
        }
        match self.transact(items).await? {
            Written::Done(()) => {}
            Written::Canceled(reasons)
                if reasons.first() == Some(&Reason::ConditionalCheckFailed) =>
            {
                return Ok(false)
            }
            Written::Canceled(reasons) => {
                return Err(StoreError::Internal(
                    format!("purge cancelled for another reason: {reasons:?}").into(),
                ))
            }
            // Found again by the next purge if it did not land.
            Written::Condition | Written::Unknown(_) => return Ok(false),
        }
        // A released hold gave its minutes and slot back when released; an expired one left
        // them to lapse. Clear what still names it, each item only if it still does.
        if let Some(e) = r.expires_at {
            let mine = claim_value(Some(e.timestamp_millis()), r.id);
            if let Some(slot) = &cur.slot {
                self.clear_if_mine(client_key(&slot.client), &[slot_attr(slot.index)], &mine)
                    .await?;
            }
            let mut cells: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for m in minutes(r.start, r.end) {
                cells
                    .entry(m.div_euclid(CELL_MINUTES))
                    .or_default()
                    .push(format!("m{}", m.rem_euclid(CELL_MINUTES)));
            }
            for table in &r.table_ids {
                for (cell, attrs) in &cells {
                    let k = (cell_pk(r.restaurant_id, table), cell_sk(*cell));
                    self.clear_if_mine(k, attrs, &mine).await?;
                }
            }
        }
        Ok(true)
    }

    /// Deletes every mailed link token of reservation `id` (see `link_key`), each token before
    /// its record, so a failure midway leaves a record the next purge finds again.
    async fn forget_link_tokens(&self, id: uuid::Uuid) -> StoreResult<()> {
        let (pk, _) = link_key(id, "");
        let records = self.query_prefix(&pk, "K#").await?;
        for record in &records {
            let sk = get_s(record, SK)?.to_owned();
            let hash = sk.strip_prefix("K#").unwrap_or(&sk).to_owned();
            for k in [token_key(&hash), (pk.clone(), sk.clone())] {
                write(|| {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key(k.0.clone(), k.1.clone())))
                        .send()
                })
                .await?;
            }
        }
        Ok(())
    }

    fn delete(&self, (pk, sk): (String, String)) -> StoreResult<TransactWriteItem> {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(super::io::build_err)?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }

    /// Removes `attrs` of an existing item if each is absent or still `mine`; else leaves the
    /// item alone (another claim holds one of them, which is the point of lapsing by expiry).
    async fn clear_if_mine(
        &self,
        k: (String, String),
        attrs: &[String],
        mine: &str,
    ) -> StoreResult<()> {
        let mut e = Expr::default();
        let v = e.value(s(mine));
        let mut conds = vec![format!("attribute_exists({})", e.name(PK))];
        let mut removes = Vec::new();
        for a in attrs {
            let p = e.name(a);
            conds.push(format!("(attribute_not_exists({p}) OR {p} = {v})"));
            removes.push(p);
        }
        let expr = format!("REMOVE {}", removes.join(", "));
        let cond = conds.join(" AND ");
        // Best effort: an unknown outcome or a failed condition leaves only an expired value.
        let _ = write(|| {
            self.conditional_update(key(k.0.clone(), k.1.clone()), &expr, &cond, &e)
                .send()
        })
        .await?;
        Ok(())
    }
}
