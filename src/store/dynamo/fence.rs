//! Per-table fences: a settings change cannot race a hold, and holds share no item.
//!
//! Every table has its own item `O#{rid}#{table}`/`T` carrying `rev`, the restaurant revision
//! its holds must be computed against, and while a settings change is in progress `fence`.
//! A hold condition-checks only the item of the table it claims: `rev = r AND no fence`.
//! A settings change from revision `R`:
//!
//! 1. takes the restaurant's own fence (`fence_until` on `R#{rid}`/`META`, conditional on `rev
//!    = R`): settings changes exclude each other, and a crashed one lapses after a few seconds;
//! 2. fences every table of the old and new settings (`SET fence, rev = R`): a hold already
//!    holding that item has committed (DynamoDB refuses the write meanwhile), later ones fail;
//! 3. when guarded, reads the future reservations and may stop (lifting its fences);
//! 4. commits the restaurant item at `R + 1`, conditional on its own fence;
//! 5. unfences every table at `R + 1` (deletes the items of removed tables).
//!
//! Table fences never lapse by time: a hold that meets one while the restaurant carries no live
//! fence (the change committed and stopped before step 5, or died) settles the table to the
//! restaurant's revision in one transaction that also removes the lapsed restaurant fence, so a
//! change that outlived its fence can no longer commit.
use super::errors::UNKNOWN_RESENDS;
use super::errors::{unknown_outcome, write, Written};
use super::items::{get_n, opt_n};
use super::keys::*;
use super::DynamoStore;
use crate::domain::TableId;
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::Utc;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use rand::Rng;
use std::time::Duration;
use uuid::Uuid;

/// How many table items a settings change writes at once.
const TABLE_CONCURRENCY: usize = 8;

const REV: &str = "rev";
const FENCE: &str = "fence";

/// What a settings change does to a table's item when it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfence {
    /// Committed: the table is at the new revision.
    At(u64),
    /// Committed and the table is gone.
    Delete,
    /// Not committed: the table stays at its revision.
    Lift,
}

impl DynamoStore {
    /// The `ConditionCheck` of a hold: its table is at `revision` and not fenced.
    pub(super) fn table_check(
        &self,
        rid: Uuid,
        table: &TableId,
        revision: u64,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let cond = format!(
            "{rev} = {r} AND attribute_not_exists({f})",
            rev = e.name(REV),
            r = e.value(n(revision)),
            f = e.name(FENCE),
        );
        let (pk, sk) = table_key(rid, table);
        let c = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(super::io::build_err)?;
        Ok(TransactWriteItem::builder().condition_check(c).build())
    }

    /// The items of a new restaurant's tables, at its first revision. Best effort: a table
    /// without its item is settled by its first hold.
    pub(super) async fn create_tables(&self, rid: Uuid, tables: &[TableId], revision: u64) {
        let done = stream::iter(tables.iter().cloned().map(|t| async move {
            let mut e = Expr::default();
            let expr = format!("SET {} = {}", e.name(REV), e.value(n(revision)));
            let cond = format!("attribute_not_exists({})", e.name(PK));
            let k = key(table_key(rid, &t).0, TABLE_SK);
            write(|| self.conditional_update(k.clone(), &expr, &cond, &e).send())
                .await
                .map(|_| ())
        }))
        .buffer_unordered(TABLE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %format!("{e:#}"), %rid, "cannot write the restaurant's table items; holds will settle them");
        }
    }

    /// Step 2: fences `tables` at `revision` for the change whose fence lasts `until`. False when
    /// a table is already past `revision` (the restaurant moved on).
    pub(super) async fn fence_tables(
        &self,
        rid: Uuid,
        tables: &[TableId],
        revision: u64,
        until: i64,
    ) -> StoreResult<bool> {
        let all: Vec<bool> = stream::iter(tables.iter().cloned().map(|t| async move {
            let mut e = Expr::default();
            let (rev, f) = (e.name(REV), e.name(FENCE));
            let r = e.value(n(revision));
            let expr = format!("SET {f} = {}, {rev} = {r}", e.value(n(until)));
            let cond = format!("attribute_not_exists({rev}) OR {rev} <= {r}");
            let k = key(table_key(rid, &t).0, TABLE_SK);
            let mut last = None;
            // The write is idempotent: sent again while its outcome is unknown.
            for _ in 0..=UNKNOWN_RESENDS {
                match write(|| self.conditional_update(k.clone(), &expr, &cond, &e).send()).await? {
                    Written::Done(_) => return Ok(true),
                    Written::Condition | Written::Canceled(_) => return Ok(false),
                    Written::Unknown(why) => last = Some(why),
                }
            }
            Err(unknown_outcome("cannot fence a table", last))
        }))
        .buffer_unordered(TABLE_CONCURRENCY)
        .try_collect()
        .await?;
        Ok(all.into_iter().all(|x| x))
    }

    /// Step 5 (or the way back): ends the fence `until` on each table as `how` says. Best
    /// effort: a table left fenced is settled by the next hold that meets it.
    pub(super) async fn unfence_tables(
        &self,
        rid: Uuid,
        tables: &[(TableId, Unfence)],
        until: i64,
    ) {
        let done = stream::iter(tables.iter().cloned().map(|(t, how)| async move {
            let mut e = Expr::default();
            let f = e.name(FENCE);
            let cond = format!("{f} = {}", e.value(n(until)));
            let (pk, sk) = table_key(rid, &t);
            let item = match how {
                Unfence::Delete => {
                    let d = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .condition_expression(&cond)
                        .set_expression_attribute_names(e.names())
                        .set_expression_attribute_values(e.values())
                        .build()
                        .map_err(super::io::build_err)?;
                    TransactWriteItem::builder().delete(d).build()
                }
                Unfence::At(rev) => {
                    let expr = format!("SET {} = {} REMOVE {f}", e.name(REV), e.value(n(rev)));
                    self.update((pk, sk), &expr, Some(&cond), &e)?
                }
                Unfence::Lift => self.update((pk, sk), &format!("REMOVE {f}"), Some(&cond), &e)?,
            };
            // Sent again while unknown: once applied, its condition fails harmlessly.
            for _ in 0..=UNKNOWN_RESENDS {
                match self.transact(vec![item.clone()]).await? {
                    Written::Unknown(_) => continue,
                    _ => return Ok(()),
                }
            }
            Ok::<(), StoreError>(())
        }))
        .buffer_unordered(TABLE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await;
        if let Err(e) = done {
            tracing::warn!(error = %format!("{e:#}"), %rid, "cannot unfence every table; holds will settle them");
        }
    }

    /// After a hold's table check failed: whether sending it again at `revision` may now pass.
    /// A table fenced while the restaurant carries no live fence, or without its item, is
    /// settled to the restaurant's revision; a live settings change is given a moment.
    pub(super) async fn settle_table(
        &self,
        rid: Uuid,
        table: &TableId,
        revision: u64,
    ) -> StoreResult<bool> {
        let (pk, sk) = table_key(rid, table);
        let (item, restaurant) = tokio::try_join!(
            self.get((pk.clone(), sk.clone())),
            self.restaurant_item(rid)
        )?;
        let Some(restaurant) = restaurant else {
            return Ok(false);
        };
        let seen_fence: Option<i64> = item
            .as_ref()
            .map(|i| opt_n(i, FENCE))
            .transpose()?
            .flatten();
        let seen_rev: Option<u64> = match &item {
            Some(i) => Some(get_n(i, REV)?),
            None => None,
        };
        let cur = restaurant.stored.revision;
        if item.is_some() && seen_fence.is_none() {
            // Unfenced: the check failed on the revision, or a fence was lifted meanwhile.
            return Ok(seen_rev == Some(revision));
        }
        let now = Utc::now().timestamp_millis();
        if restaurant.fence_until_ms.is_some_and(|f| f >= now) {
            // A settings change is in progress: give it a moment before the caller re-reads.
            let ms = rand::thread_rng().gen_range(20..60);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return Ok(false);
        }
        if !restaurant
            .stored
            .restaurant
            .tables
            .iter()
            .any(|t| t.id == *table)
        {
            return Ok(false);
        }
        // No change holds the restaurant: settle the table at its revision, and make sure a
        // change whose fence lapsed cannot commit after this.
        let mut e = Expr::default();
        let (rev, rf) = (e.name(REV), e.name("fence_until"));
        let cur_v = e.value(n(cur));
        let restaurant_key = Some(key(restaurant_pk(rid), META_SK));
        let restaurant_item = match restaurant.fence_until_ms {
            None => {
                let c = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(restaurant_key)
                    .condition_expression(format!("{rev} = {cur_v} AND attribute_not_exists({rf})"))
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(super::io::build_err)?;
                TransactWriteItem::builder().condition_check(c).build()
            }
            Some(lapsed) => {
                let cond = format!("{rev} = {cur_v} AND {rf} = {}", e.value(n(lapsed)));
                let u = Update::builder()
                    .table_name(&self.table)
                    .set_key(restaurant_key)
                    .update_expression(format!("REMOVE {rf}"))
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(super::io::build_err)?;
                TransactWriteItem::builder().update(u).build()
            }
        };
        let mut e = Expr::default();
        let (rev, f) = (e.name(REV), e.name(FENCE));
        let expr = format!("SET {rev} = {} REMOVE {f}", e.value(n(cur)));
        let table_cond = match seen_fence {
            Some(fence) => format!("{f} = {}", e.value(n(fence))),
            None => format!("attribute_not_exists({})", e.name(PK)),
        };
        let table_item = self.update((pk, sk), &expr, Some(&table_cond), &e)?;
        let items = vec![restaurant_item, table_item];
        // Whatever the outcome, the caller's next attempt or re-read decides.
        let _ = self.transact(items).await?;
        Ok(cur == revision)
    }
}
