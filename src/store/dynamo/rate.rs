//! The clients' rate buckets on DynamoDB (see `store::rate`): one item per client,
//! `L#{client}`, holding the instant its bucket is full again (`full_us`, µs of Unix time). A take is a conditional
//! `UpdateItem`: a full bucket (none, or full again by now) starts from now, one ahead of now
//! moves one interval later while within the burst; a failed condition reads the item to tell
//! an empty bucket from one that filled meanwhile. TTL removes a bucket an hour after it is
//! full again (a bucket not kept is full). A client whose requests come so fast that DynamoDB
//! throttles its bucket item is refused for a second: throttling is not a fault the limit
//! steps aside for, or flooding would switch it off.
use super::errors::{write, Written, THROTTLED};
use super::items::opt_n;
use super::keys::{key, n, Expr, TTL};
use super::DynamoStore;
use crate::store::rate::Bucket;
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};

/// How often one take tries before it asks the client to come back in a moment.
const ATTEMPTS: usize = 4;

/// The wait told to a client whose bucket item DynamoDB throttles.
const THROTTLED_WAIT_US: i64 = 1_000_000;

pub fn rate_key(client: &str) -> (String, String) {
    (format!("L#{client}"), "L".into())
}

impl DynamoStore {
    pub(super) async fn take_rate_token_(
        &self,
        client: &str,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        match self.take(client, bucket, now).await {
            // Throttled (or in conflict) past the retries: this client's item is that busy.
            // Any other failure (no answer, a refusal) is the store's: the caller lets it through.
            Err(StoreError::Unavailable(c)) if c.context() == THROTTLED => {
                Ok(Some(THROTTLED_WAIT_US))
            }
            other => other,
        }
    }

    async fn take(
        &self,
        client: &str,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let now = now.timestamp_micros();
        let (pk, sk) = rate_key(client);
        // Past any instant a take may leave, by an hour.
        let ttl = (now + bucket.tolerance_us() + bucket.every_us) / 1_000_000 + 3600;
        for _ in 0..ATTEMPTS {
            // A full bucket starts one interval from now.
            let mut e = Expr::default();
            let (full, t) = (e.name("full_us"), e.name(TTL));
            let set = format!(
                "SET {full} = {}, {t} = {}",
                e.value(n(now + bucket.every_us)),
                e.value(n(ttl))
            );
            let cond = format!(
                "attribute_not_exists({full}) OR {full} <= {}",
                e.value(n(now))
            );
            let k = key(pk.clone(), sk.clone());
            match write(|| self.conditional_update(k.clone(), &set, &cond, &e).send()).await? {
                // An unknown outcome may have taken it: the client is not charged twice.
                Written::Done(_) | Written::Unknown(_) => return Ok(None),
                Written::Condition | Written::Canceled(_) => {}
            }
            // One ahead of now moves one interval later while it has a token.
            let mut e = Expr::default();
            let (full, t) = (e.name("full_us"), e.name(TTL));
            let set = format!(
                "SET {full} = {full} + {}, {t} = {}",
                e.value(n(bucket.every_us)),
                e.value(n(ttl))
            );
            let cond = format!(
                "{full} > {} AND {full} <= {}",
                e.value(n(now)),
                e.value(n(now + bucket.tolerance_us()))
            );
            match write(|| self.conditional_update(k.clone(), &set, &cond, &e).send()).await? {
                Written::Done(_) | Written::Unknown(_) => return Ok(None),
                Written::Condition | Written::Canceled(_) => {}
            }
            // No token, or the bucket filled (or went) meanwhile: read it to tell which.
            let item = self.get((pk.clone(), sk.clone())).await?;
            let at: Option<i64> = match &item {
                Some(i) => opt_n(i, "full_us")?,
                None => None,
            };
            if let Err(wait) = bucket.take(at, now) {
                return Ok(Some(wait.max(1)));
            }
        }
        Ok(Some(1))
    }
}
