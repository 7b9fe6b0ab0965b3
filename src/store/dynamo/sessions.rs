//! Tokens and idempotency records.
use super::errors::UNKNOWN_RESENDS;
use super::errors::{unknown_outcome, write, Written};
use super::items::*;
use super::keys::*;
use super::DynamoStore;
use crate::domain::Reservation;
use crate::store::{IdemBegin, StoreError, StoreResult, TokenOwner};
use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

/// The decision could not record its answer: another request under the same key already
/// recorded one (the in-flight marker was taken over), so this effect was not written.
pub fn idem_taken() -> StoreError {
    StoreError::Unavailable(
        "the idempotency key was answered by another request meanwhile; retry to replay it".into(),
    )
}

/// An idempotency record still in flight after this long belongs to a crashed request.
const IDEM_STALE_MS: i64 = 60_000;
const IDEM_TTL_MS: i64 = IDEM_TTL_S * 1000;

impl DynamoStore {
    /// The update, inside a decision's own transaction, that turns the request's in-flight
    /// marker into its final answer, rendered from the reservation as the write leaves it.
    ///
    /// Conditional on the marker still being in flight: `idem_begin` lets no request past a
    /// done record, so of all requests under one key at most one decision commits — a request
    /// whose stale marker was taken over by a retry cannot commit its effect beside the retry's.
    pub(super) fn idem_answer(
        &self,
        idem: &crate::store::IdemRecord,
        decided: &Reservation,
    ) -> StoreResult<TransactWriteItem> {
        let (status, body) = (idem.render)(decided);
        let mut e = Expr::default();
        let state = e.name("state");
        let expr = format!(
            "SET {state} = {done}, {st} = {code}, {b} = {text}",
            done = e.value(s("done")),
            st = e.name("status"),
            code = e.value(n(status)),
            b = e.name("body"),
            text = e.value(s(body)),
        );
        let cond = format!("{state} = {}", e.value(s("in_flight")));
        self.update(idem_key(&idem.key), &expr, Some(&cond), &e)
    }

    pub(super) async fn token_owner_(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        self.get(token_key(hash))
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
    }

    pub(super) async fn idem_begin_(
        &self,
        key_: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin> {
        let now_ms = now.timestamp_millis();
        let fresh = IdemRecord {
            fingerprint: fingerprint.to_owned(),
            answer: None,
            created_ms: now_ms,
        };
        let item = idem_item(key_, &fresh);
        let mut e = Expr::default();
        let (pk, c, st) = (e.name(PK), e.name("created_ms"), e.name("state"));
        // Absent, older than a day, or abandoned in flight: the key is free to use again.
        let cond = format!(
            "attribute_not_exists({pk}) OR {c} < {expired} OR ({st} = {fly} AND {c} < {stale})",
            expired = e.value(n(now_ms - IDEM_TTL_MS)),
            fly = e.value(s("in_flight")),
            stale = e.value(n(now_ms - IDEM_STALE_MS)),
        );
        // Once a send's outcome was unknown, a record equal to ours is that send's: a later
        // send meets it as a failed condition, and a read may come before it is seen.
        let mut sent_unknown = false;
        for _ in 0..=UNKNOWN_RESENDS {
            let w = write(|| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item.clone()))
                    .condition_expression(&cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .send()
            })
            .await?;
            match w {
                Written::Done(_) => return Ok(IdemBegin::Fresh),
                Written::Unknown(_) => sent_unknown = true,
                Written::Condition | Written::Canceled(_) => {}
            }
            let existing = self.get(idem_key(key_)).await?;
            let Some(rec) = existing.as_ref().map(idem_from).transpose()? else {
                continue; // aborted meanwhile, or an unknown write that did not land
            };
            if sent_unknown && rec == fresh {
                return Ok(IdemBegin::Fresh); // our own write, whose answer was lost
            }
            let expired = now_ms - rec.created_ms > IDEM_TTL_MS;
            let abandoned = rec.answer.is_none() && now_ms - rec.created_ms > IDEM_STALE_MS;
            if expired || abandoned {
                continue;
            }
            return Ok(if rec.fingerprint != fingerprint {
                IdemBegin::Mismatch
            } else {
                match rec.answer {
                    None => IdemBegin::InFlight,
                    Some((status, body)) => IdemBegin::Replay { status, body },
                }
            });
        }
        Err(StoreError::Unavailable(
            "the idempotency record keeps changing".into(),
        ))
    }

    pub(super) async fn idem_finish_(
        &self,
        key_: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        let mut e = Expr::default();
        let expr = format!(
            "SET {st} = {done}, {status} = {code}, {body} = {text}",
            st = e.name("state"),
            done = e.value(s("done")),
            status = e.name("status"),
            code = e.value(n(status)),
            body = e.name("body"),
            text = e.value(s(body)),
        );
        // The first final answer stays: one recorded with its decision is never overwritten.
        let cond = format!("{} = {}", e.name("state"), e.value(s("in_flight")));
        let k = idem_key(key_);
        // Setting the same answer twice is harmless, so an unknown outcome is simply sent again.
        let mut last = None;
        for _ in 0..=UNKNOWN_RESENDS {
            let w = write(|| {
                self.conditional_update(key(k.0.clone(), k.1.clone()), &expr, &cond, &e)
                    .send()
            })
            .await?;
            match w {
                Written::Unknown(e) => last = Some(e),
                _ => return Ok(()),
            }
        }
        Err(unknown_outcome("cannot record the idempotent answer", last))
    }

    pub(super) async fn idem_abort_(&self, key_: &str) -> StoreResult<()> {
        let k = idem_key(key_);
        let mut last = None;
        for _ in 0..=UNKNOWN_RESENDS {
            let w = write(|| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(k.0.clone(), k.1.clone())))
                    .condition_expression("#st = :fly")
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":fly", s("in_flight"))
                    .send()
            })
            .await?;
            match w {
                Written::Unknown(e) => last = Some(e),
                _ => return Ok(()),
            }
        }
        Err(unknown_outcome("cannot release the idempotency key", last))
    }
}
