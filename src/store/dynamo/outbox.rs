//! The outbox on DynamoDB: a record `M#{id}`/`M` is put by the decision's own
//! `TransactWriteItems`. Pending records sit in the sparse `due` index under `MAIL#{shard}`
//! (keyed by when they are next due), settled ones under `MAILDONE#{shard}` (by when they were
//! settled) for retention: partitions the sweeper and the hold retention never query. A claim
//! is a conditional update of `due_at` from the instant read to the lease's end, so of several
//! instances exactly one claims a due record; settling is conditional on that lease.
use super::errors::{read, write, Written};
use super::items::{get_n, get_s};
use super::keys::*;
use super::DynamoStore;
use crate::domain::Reservation;
use crate::store::outbox::{from_snapshot, snapshot};
use crate::store::{
    MailIntent, MailKind, Outbox, OutboxRecord, Settle, StoreError, StoreResult, TokenOwner,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, Select, TransactWriteItem};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use uuid::Uuid;

/// Mail spreads over this many index partitions, as held reservations do.
const MAIL_SHARDS: u8 = 4;
const PENDING: &str = "pending";

fn mail_key(id: Uuid) -> (String, String) {
    (format!("M#{id}"), "M".into())
}

fn shard(id: Uuid) -> u8 {
    id.as_bytes()[15] % MAIL_SHARDS
}

fn pending_pk(id: Uuid) -> String {
    format!("MAIL#{}", shard(id))
}

fn settled_pk(id: Uuid) -> String {
    format!("MAILDONE#{}", shard(id))
}

fn record_from(item: &Item) -> StoreResult<OutboxRecord> {
    let id = get_s(item, "id")?;
    let kind = get_s(item, "kind")?;
    Ok(OutboxRecord {
        id: Uuid::parse_str(id).map_err(|e| StoreError::corrupt("mail record", e))?,
        kind: MailKind::parse(kind)
            .ok_or_else(|| StoreError::corrupt("mail record", format!("kind `{kind}`")))?,
        to: get_s(item, "to")?.to_owned(),
        reservation: from_snapshot(get_s(item, "res")?)?,
        created_at: DateTime::from_timestamp_millis(get_n(item, "created_ms")?)
            .ok_or_else(|| StoreError::corrupt("mail record", "created_ms"))?,
        attempts: get_n(item, "attempts")?,
        lease_ms: get_n(item, DUE_AT)?,
    })
}

impl DynamoStore {
    /// The `Put` of a mail record, for the decision's own transaction.
    pub(super) fn mail_put(
        &self,
        mail: &MailIntent,
        decided: &Reservation,
        now: DateTime<Utc>,
    ) -> StoreResult<TransactWriteItem> {
        let (pk, sk) = mail_key(mail.id);
        let mut item = key(pk, sk);
        let now_ms = now.timestamp_millis();
        for (k, v) in [
            ("id", s(mail.id.to_string())),
            ("kind", s(mail.kind.as_str())),
            ("to", s(&mail.to)),
            ("res", s(snapshot(decided)?)),
            ("st", s(PENDING)),
            ("attempts", n(0)),
            ("created_ms", n(now_ms)),
            (DUE_PK, s(pending_pk(mail.id))),
            (DUE_AT, n(now_ms)),
        ] {
            item.insert(k.into(), v);
        }
        self.put(item, Some("attribute_not_exists(#pk)"))
    }

    async fn due_mail(&self, shard: u8, now_ms: i64, limit: u32) -> StoreResult<Vec<Item>> {
        let out = read(|| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#p = :p AND #a <= :now")
                .expression_attribute_names("#p", DUE_PK)
                .expression_attribute_names("#a", DUE_AT)
                .expression_attribute_values(":p", s(format!("MAIL#{shard}")))
                .expression_attribute_values(":now", n(now_ms))
                .limit(limit.clamp(1, 1000) as i32)
                .send()
        })
        .await?;
        Ok(out.items.unwrap_or_default())
    }

    /// Claims one record seen due at `seen_ms`; `None` when another claimer was first.
    async fn claim_one(
        &self,
        id: Uuid,
        seen_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<Option<OutboxRecord>> {
        let (pk, sk) = mail_key(id);
        let mut e = Expr::default();
        let (at, st, att) = (e.name(DUE_AT), e.name("st"), e.name("attempts"));
        let (lease, one, seen, pending) = (
            e.value(n(lease_ms)),
            e.value(n(1)),
            e.value(n(seen_ms)),
            e.value(s(PENDING)),
        );
        let update = format!("SET {at} = {lease}, {att} = {att} + {one}");
        let cond = format!("{st} = {pending} AND {at} = {seen}");
        let w = write(|| {
            self.conditional_update(key(pk.clone(), sk.clone()), &update, &cond, &e)
                .return_values(ReturnValue::AllNew)
                .send()
        })
        .await?;
        match w {
            Written::Done(out) => match out.attributes.as_ref().map(record_from).transpose() {
                Ok(r) => Ok(r),
                // One record that cannot be read must not block the others: it is given up.
                Err(e) => {
                    tracing::error!(mail = %id, error = format!("{e:#}"), "mail: unreadable outbox record given up");
                    self.give_up(id, lease_ms).await?;
                    Ok(None)
                }
            },
            // Unknown: if it landed, the lease lapses and the record falls due again.
            _ => Ok(None),
        }
    }
}

impl DynamoStore {
    /// Marks a record this claim holds as failed, without reading it.
    async fn give_up(&self, id: Uuid, lease_ms: i64) -> StoreResult<()> {
        let (pk, sk) = mail_key(id);
        let mut e = Expr::default();
        let (at, st, dpk) = (e.name(DUE_AT), e.name("st"), e.name(DUE_PK));
        let update = format!(
            "SET {st} = {}, {dpk} = {}, {at} = {}",
            e.value(s("failed")),
            e.value(s(settled_pk(id))),
            e.value(n(chrono::Utc::now().timestamp_millis())),
        );
        let cond = format!(
            "{st} = {} AND {at} = {}",
            e.value(s(PENDING)),
            e.value(n(lease_ms))
        );
        write(|| {
            self.conditional_update(key(pk.clone(), sk.clone()), &update, &cond, &e)
                .send()
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Outbox for DynamoStore {
    async fn outbox_claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRecord>> {
        let now_ms = now.timestamp_millis();
        let shards = futures_util::future::try_join_all(
            (0..MAIL_SHARDS).map(|k| self.due_mail(k, now_ms, limit)),
        )
        .await?;
        let mut due: Vec<(i64, Uuid)> = Vec::new();
        for item in shards.into_iter().flatten() {
            let id = Uuid::parse_str(get_s(&item, "id")?)
                .map_err(|e| StoreError::corrupt("mail record", e))?;
            due.push((get_n(&item, DUE_AT)?, id));
        }
        due.sort();
        due.truncate(limit as usize);
        let lease_ms = lease_until.timestamp_millis();
        let claimed: Vec<StoreResult<Option<OutboxRecord>>> = stream::iter(due)
            .map(|(seen, id)| self.claim_one(id, seen, lease_ms))
            .buffer_unordered(4)
            .collect()
            .await;
        let mut out = Vec::new();
        for c in claimed {
            out.extend(c?);
        }
        out.sort_by_key(|r| r.created_at);
        Ok(out)
    }

    async fn outbox_settle(
        &self,
        record: &OutboxRecord,
        settle: Settle,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (pk, sk) = mail_key(record.id);
        let mut e = Expr::default();
        let (at, st) = (e.name(DUE_AT), e.name("st"));
        let (lease, pending) = (e.value(n(record.lease_ms)), e.value(s(PENDING)));
        let update = match settle {
            Settle::RetryAt(t) => format!("SET {at} = {}", e.value(n(t.timestamp_millis()))),
            Settle::Sent | Settle::Failed => {
                let state = if settle == Settle::Sent {
                    "sent"
                } else {
                    "failed"
                };
                let dpk = e.name(DUE_PK);
                format!(
                    "SET {st} = {}, {dpk} = {}, {at} = {}",
                    e.value(s(state)),
                    e.value(s(settled_pk(record.id))),
                    e.value(n(now.timestamp_millis())),
                )
            }
        };
        let cond = format!("{st} = {pending} AND {at} = {lease}");
        let w = write(|| {
            self.conditional_update(key(pk.clone(), sk.clone()), &update, &cond, &e)
                .send()
        })
        .await?;
        Ok(match w {
            Written::Done(_) => true,
            Written::Condition | Written::Canceled(_) => false,
            Written::Unknown(_) => {
                // Read back: settled as asked means it landed.
                let item = self.get(mail_key(record.id)).await?;
                item.is_some_and(|i| match settle {
                    Settle::RetryAt(_) => false,
                    _ => get_s(&i, "st").is_ok_and(|s| s != PENDING),
                })
            }
        })
    }

    async fn outbox_pending(&self) -> StoreResult<u64> {
        let mut total = 0u64;
        for k in 0..MAIL_SHARDS {
            let mut start = None;
            loop {
                let out = read(|| {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name(DUE_INDEX)
                        .key_condition_expression("#p = :p")
                        .expression_attribute_names("#p", DUE_PK)
                        .expression_attribute_values(":p", s(format!("MAIL#{k}")))
                        .select(Select::Count)
                        .set_exclusive_start_key(start.clone())
                        .send()
                })
                .await?;
                total += u64::try_from(out.count).unwrap_or(0);
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(total)
    }

    async fn add_reservation_token(
        &self,
        hash: &str,
        restaurant_id: Uuid,
        reservation_id: Uuid,
    ) -> StoreResult<()> {
        let item = super::items::token_item(
            hash,
            &TokenOwner::Reservation {
                restaurant_id,
                reservation_id,
            },
            None,
        );
        // Its record under the reservation first, so the purge that deletes the reservation
        // finds the token; a record whose token never landed is deleted with it, harmlessly.
        let (pk, sk) = link_key(reservation_id, hash);
        let record =
            std::collections::HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))]);
        for item in [record, item] {
            let w = write(|| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .send()
            })
            .await?;
            if !matches!(w, Written::Done(_)) {
                return Err(StoreError::Unavailable(
                    "adding a link token did not land".into(),
                ));
            }
        }
        Ok(())
    }

    async fn outbox_purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        let before_ms = before.timestamp_millis();
        let mut gone = 0;
        for k in 0..MAIL_SHARDS {
            if gone >= limit as usize {
                break;
            }
            let out = read(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(DUE_INDEX)
                    .key_condition_expression("#p = :p AND #a < :before")
                    .expression_attribute_names("#p", DUE_PK)
                    .expression_attribute_names("#a", DUE_AT)
                    .expression_attribute_values(":p", s(format!("MAILDONE#{k}")))
                    .expression_attribute_values(":before", n(before_ms))
                    .limit((limit as usize - gone).clamp(1, 1000) as i32)
                    .send()
            })
            .await?;
            for item in out.items.unwrap_or_default() {
                let (pk, sk) = (get_s(&item, PK)?.to_owned(), get_s(&item, SK)?.to_owned());
                let w = write(|| {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .set_key(Some(key(pk.clone(), sk.clone())))
                        .condition_expression("#s <> :p AND #a < :before")
                        .expression_attribute_names("#s", "st")
                        .expression_attribute_names("#a", DUE_AT)
                        .expression_attribute_values(":p", s(PENDING))
                        .expression_attribute_values(":before", n(before_ms))
                        .send()
                })
                .await?;
                gone += usize::from(matches!(w, Written::Done(_)));
            }
        }
        Ok(gone)
    }
}
