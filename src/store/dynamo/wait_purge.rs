//! Retention of the waitlist: finished entries (`lapsed`, `left`) found through the sparse
//! `retention` index by their last change, and every entry but a booked one of a past date
//! found through the `WAITLIST` day list, each deleted with its pointer and token. Never a
//! `Scan`. A booked entry is kept: its token reads the confirmed reservation it became.
use super::errors::Written;
use super::keys::*;
use super::wait_items::*;
use super::DynamoStore;
use crate::domain::waitlist::WaitStatus;
use crate::domain::LocalDate;
use crate::store::StoreResult;
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

impl DynamoStore {
    /// Deletes an entry with its pointer and token, conditional on its write count (and, with
    /// `finished_before`, on it being finished before then): `false` when it moved meanwhile.
    pub(super) async fn purge_entry(
        &self,
        cur: &StoredEntry,
        finished_before: Option<i64>,
    ) -> StoreResult<bool> {
        let e = &cur.entry;
        if let Some(before) = finished_before {
            if !is_finished(e.status) || e.updated_at.timestamp_millis() >= before {
                return Ok(false);
            }
        }
        let mut x = Expr::default();
        let cond = format!("{} = {}", x.name("wc"), x.value(n(cur.writes)));
        let (pk, sk) = entry_key(e.restaurant_id, e.date, e.id);
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(super::io::build_err)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.delete_item(entry_pointer_key(e.id))?,
            self.delete_item(entry_token_key(&cur.token_hash))?,
        ];
        // A failed condition or an unknown outcome: found again by the next purge.
        Ok(matches!(self.transact(items).await?, Written::Done(())))
    }

    pub(super) fn delete_item(&self, (pk, sk): (String, String)) -> StoreResult<TransactWriteItem> {
        let d = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(super::io::build_err)?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }

    /// Deletes, at most `limit` at a time, the entries of waitlist days before `before`'s UTC
    /// date but the booked ones, then each day so emptied from the day list (unless a join came
    /// meanwhile). Returns how many went.
    pub(super) async fn purge_wait_days(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<usize> {
        let cut = LocalDate::from_naive(before.date_naive());
        // Every day key sorts as `{date}#…`: those before `cut` are below `{cut}#`.
        let days = self
            .query_range(WAIT_DAYS_PK, "0", &format!("{}#~", cut.pred()))
            .await?;
        let mut gone = 0;
        for day in &days {
            let (date, rid) = wait_day_from(day)?;
            let joins = wait_day_joins(day)?;
            let queue = self.stored_queue(rid, date).await?;
            let mut all = true;
            for cur in queue
                .iter()
                .filter(|c| c.entry.status != WaitStatus::Booked)
            {
                if gone >= limit {
                    return Ok(gone);
                }
                if self.purge_entry(cur, None).await? {
                    gone += 1;
                } else {
                    all = false;
                }
            }
            if all {
                let mut x = Expr::default();
                let cond = format!(
                    "attribute_not_exists({j}) OR {j} = {v}",
                    j = x.name("j"),
                    v = x.value(n(joins))
                );
                // A day a join reached meanwhile stays (its condition fails); the next purge
                // sees it again.
                let _ = super::errors::write(|| {
                    self.client
                        .delete_item()
                        .table_name(self.table())
                        .set_key(Some(key(WAIT_DAYS_PK, day_sk(date, rid))))
                        .condition_expression(&cond)
                        .set_expression_attribute_names(x.names())
                        .set_expression_attribute_values(x.values())
                        .send()
                })
                .await?;
            }
        }
        Ok(gone)
    }
}

fn day_sk(date: LocalDate, rid: uuid::Uuid) -> String {
    wait_day_key(date, rid).1
}
