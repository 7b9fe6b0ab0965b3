//! SDK errors matched by type, and the only retries the store makes.
//!
//! The SDK's own retries are off: a conditional write retried blindly after a timeout could be
//! answered "condition failed" by its own first attempt. Here, throttling and transaction
//! conflicts (which DynamoDB guarantees were not applied) are retried with bounded, jittered
//! exponential back-off ([`RETRIES`]; a hold, whose items may be hot, uses [`Contention`], a
//! budget of time rather than of tries); reads are also retried after a timeout or a 5xx; a
//! write whose outcome is unknown goes back to its caller, which reads back what happened.
use crate::store::{BoxError, StoreError, StoreResult};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemError, get_item::GetItemError, put_item::PutItemError,
    query::QueryError, transact_write_items::TransactWriteItemsError, update_item::UpdateItemError,
};
use aws_sdk_dynamodb::types::CancellationReason;
use backon::{ExponentialBuilder, Retryable};
use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

/// Why a transaction item was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    None,
    ConditionalCheckFailed,
    TransactionConflict,
    Throttled,
    Other,
}

impl Reason {
    /// Cancellation reasons carry their kind as a code from a closed list in the API reference.
    pub fn of(r: &CancellationReason) -> Reason {
        match r.code() {
            None | Some("None") => Reason::None,
            Some("ConditionalCheckFailed") => Reason::ConditionalCheckFailed,
            Some("TransactionConflict") => Reason::TransactionConflict,
            Some("ThrottlingError") | Some("ProvisionedThroughputExceeded") => Reason::Throttled,
            Some(_) => Reason::Other,
        }
    }
}

/// The cancellation reasons of a transaction refused for a retry (`Fault::Retry`), one per
/// item in item order; empty when the refusal was not a cancellation (throttling, a
/// transaction in progress).
pub fn retry_reasons(cause: &BoxError) -> Vec<Reason> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match cause.downcast_ref::<SdkError<TransactWriteItemsError, HttpResponse>>() {
        Some(SdkError::ServiceError(se)) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(e) => {
                e.cancellation_reasons().iter().map(Reason::of).collect()
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// What a failed call means for its caller, decided from its type alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The write's condition did not hold: nothing was written.
    Condition,
    /// A condition of the transaction failed; one reason per item, in item order.
    Canceled(Vec<Reason>),
    /// Throttled or in conflict with another transaction: nothing was written; try again.
    Retry,
    /// The call may or may not have taken effect (timeout, 5xx, lost connection).
    Unknown,
    Fatal,
}

impl Verdict {
    fn from_reasons(reasons: Vec<Reason>) -> Verdict {
        if reasons.contains(&Reason::ConditionalCheckFailed) {
            Verdict::Canceled(reasons)
        } else if reasons
            .iter()
            .any(|r| matches!(r, Reason::TransactionConflict | Reason::Throttled))
        {
            Verdict::Retry
        } else {
            Verdict::Fatal
        }
    }

    /// The fault, keeping the SDK error as the cause where the caller may report it.
    fn with(self, cause: impl Into<BoxError>) -> Fault {
        match self {
            Verdict::Condition => Fault::Condition,
            Verdict::Canceled(r) => Fault::Canceled(r),
            Verdict::Retry => Fault::Retry(cause.into()),
            Verdict::Unknown => Fault::Unknown(cause.into()),
            Verdict::Fatal => Fault::Fatal(cause.into()),
        }
    }
}

/// A failed call: its verdict and, where it is an error to report, the SDK error itself.
#[derive(Debug)]
pub enum Fault {
    Condition,
    Canceled(Vec<Reason>),
    Retry(BoxError),
    Unknown(BoxError),
    Fatal(BoxError),
}

/// The verdicts an operation's modelled errors stand for (`None`: decided by the HTTP status).
pub trait OpFault {
    fn op_fault(&self) -> Option<Verdict>;
}

macro_rules! throttles {
    ($t:ident, $e:expr) => {
        match $e {
            $t::ProvisionedThroughputExceededException(_)
            | $t::RequestLimitExceeded(_)
            | $t::ThrottlingException(_) => return Some(Verdict::Retry),
            $t::InternalServerError(_) => return Some(Verdict::Unknown),
            _ => {}
        }
    };
}

impl OpFault for GetItemError {
    fn op_fault(&self) -> Option<Verdict> {
        throttles!(GetItemError, self);
        None
    }
}

impl OpFault for QueryError {
    fn op_fault(&self) -> Option<Verdict> {
        throttles!(QueryError, self);
        None
    }
}

macro_rules! single_write {
    ($t:ident) => {
        impl OpFault for $t {
            fn op_fault(&self) -> Option<Verdict> {
                throttles!($t, self);
                match self {
                    $t::ConditionalCheckFailedException(_) => Some(Verdict::Condition),
                    $t::TransactionConflictException(_)
                    | $t::ReplicatedWriteConflictException(_) => Some(Verdict::Retry),
                    _ => None,
                }
            }
        }
    };
}

single_write!(PutItemError);
single_write!(UpdateItemError);
single_write!(DeleteItemError);

impl OpFault for TransactWriteItemsError {
    fn op_fault(&self) -> Option<Verdict> {
        throttles!(TransactWriteItemsError, self);
        match self {
            TransactWriteItemsError::TransactionCanceledException(e) => Some(
                Verdict::from_reasons(e.cancellation_reasons().iter().map(Reason::of).collect()),
            ),
            TransactWriteItemsError::TransactionInProgressException(_) => Some(Verdict::Retry),
            _ => None,
        }
    }
}

pub fn fault<E>(e: SdkError<E, HttpResponse>) -> Fault
where
    E: OpFault + std::error::Error + Send + Sync + 'static,
{
    let verdict = match &e {
        SdkError::ConstructionFailure(_) => Verdict::Fatal,
        SdkError::TimeoutError(_) => Verdict::Unknown,
        SdkError::DispatchFailure(d) if d.is_user() => Verdict::Fatal,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Verdict::Unknown,
        SdkError::ServiceError(se) => match se.err().op_fault() {
            Some(v) => v,
            None if se.raw().status().is_server_error() => Verdict::Unknown,
            None => Verdict::Fatal,
        },
        _ => Verdict::Unknown,
    };
    verdict.with(e)
}

/// How many times a write whose outcome stayed unknown is sent again before giving up.
pub const UNKNOWN_RESENDS: usize = 3;

/// The store's retries: at most 7 waits, from 5 ms doubling to at most 200 ms, each stretched
/// by a random 0–100 % (backon's jitter), so under a second and a half in all.
pub const RETRIES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(5))
    .with_max_delay(Duration::from_millis(200))
    .with_max_times(7)
    .with_jitter();

/// How long one hold keeps trying while other transactions keep it from committing (conflicts
/// on a hot window item, table or client item, or throttling): long enough for any burst of
/// contenders on a healthy table to be decided, short enough to answer a person.
pub const CONTENTION_BUDGET: Duration = Duration::from_secs(6);
const CONTENTION_MIN: Duration = Duration::from_millis(4);
const CONTENTION_MAX: Duration = Duration::from_millis(250);

/// The pauses of one contended write, budgeted by time rather than by count: each waits a random
/// time up to a ceiling that starts at 4 ms and doubles per pause up to 250 ms ("full jitter",
/// so contenders spread out instead of colliding again in step).
#[derive(Debug)]
pub struct Contention {
    deadline: tokio::time::Instant,
    ceiling: Duration,
}

impl Default for Contention {
    fn default() -> Self {
        Contention::within(CONTENTION_BUDGET)
    }
}

impl Contention {
    pub fn within(budget: Duration) -> Contention {
        Contention {
            deadline: tokio::time::Instant::now() + budget,
            ceiling: CONTENTION_MIN,
        }
    }

    /// Waits before the next try after contention; `false` once the budget is spent.
    pub async fn pause(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        let ceiling = self.ceiling.as_micros() as u64;
        let wait = Duration::from_micros(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            ceiling / 8..=ceiling,
        ));
        self.ceiling = (self.ceiling * 2).min(CONTENTION_MAX);
        tokio::time::sleep(wait.min(self.deadline - now)).await;
        true
    }

    /// A short random pause after another contender committed (progress was made): no growth.
    pub async fn yield_to_winner(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        let wait = Duration::from_micros(rand::Rng::gen_range(
            &mut rand::thread_rng(),
            0..=CONTENTION_MIN.as_micros() as u64,
        ));
        tokio::time::sleep(wait).await;
        true
    }
}

/// Giving up on a write whose outcome stayed unknown; `last` is the SDK error of its last try.
pub fn unknown_outcome(
    context: impl Into<Cow<'static, str>>,
    last: Option<BoxError>,
) -> StoreError {
    match last {
        Some(e) => StoreError::unavailable(context, e),
        None => StoreError::Unavailable(context.into().into()),
    }
}

/// Why a call gave up after its retries.
pub const THROTTLED: &str = "DynamoDB kept throttling the call or refusing it for a conflict";

/// The store error a fault left after the retries stands for.
fn gave_up(f: Fault) -> StoreError {
    match f {
        Fault::Retry(e) => StoreError::unavailable(THROTTLED, e),
        Fault::Unknown(e) => StoreError::unavailable("DynamoDB gave no answer", e),
        Fault::Fatal(e) => StoreError::internal("DynamoDB refused the call", e),
        Fault::Condition | Fault::Canceled(_) => {
            StoreError::Internal("DynamoDB failed a condition where none was set".into())
        }
    }
}

/// A read, retried on throttling, timeouts and 5xx.
pub async fn read<T, E, F, Fut>(mut call: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: OpFault + std::error::Error + Send + Sync + 'static,
{
    let attempt = || {
        let sent = call();
        async move { sent.await.map_err(fault) }
    };
    attempt
        .retry(RETRIES)
        .when(|f| matches!(f, Fault::Retry(_) | Fault::Unknown(_)))
        .await
        .map_err(gave_up)
}

/// The outcome of a conditional write once throttling and conflicts are retried away.
#[derive(Debug)]
pub enum Written<T> {
    Done(T),
    Condition,
    Canceled(Vec<Reason>),
    /// It may have been applied: read back before deciding. Holds the SDK error.
    Unknown(BoxError),
}

pub async fn write<T, E, F, Fut>(mut call: F) -> StoreResult<Written<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: OpFault + std::error::Error + Send + Sync + 'static,
{
    // Only throttling and conflicts (never applied) are retried; every other answer is final.
    let attempt = || {
        let sent = call();
        async move {
            match sent.await.map_err(fault) {
                Ok(v) => Ok(Written::Done(v)),
                Err(Fault::Condition) => Ok(Written::Condition),
                Err(Fault::Canceled(r)) => Ok(Written::Canceled(r)),
                Err(Fault::Unknown(e)) => Ok(Written::Unknown(e)),
                Err(f) => Err(f),
            }
        }
    };
    attempt
        .retry(RETRIES)
        .when(|f| matches!(f, Fault::Retry(_)))
        .await
        .map_err(gave_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn cancellation_reasons_keep_item_order_and_a_failed_condition_wins() {
        let rs: Vec<Reason> = ["None", "TransactionConflict", "ConditionalCheckFailed"]
            .map(reason)
            .iter()
            .map(Reason::of)
            .collect();
        assert_eq!(
            rs,
            [
                Reason::None,
                Reason::TransactionConflict,
                Reason::ConditionalCheckFailed
            ]
        );
        assert_eq!(Verdict::from_reasons(rs.clone()), Verdict::Canceled(rs));
    }

    #[test]
    fn conflicts_and_throttling_alone_are_retried_and_other_reasons_are_fatal() {
        assert_eq!(
            Verdict::from_reasons(vec![Reason::None, Reason::TransactionConflict]),
            Verdict::Retry
        );
        assert_eq!(
            Verdict::from_reasons(vec![Reason::Throttled]),
            Verdict::Retry
        );
        assert_eq!(Verdict::from_reasons(vec![Reason::Other]), Verdict::Fatal);
    }

    #[test]
    fn retries_give_up_after_seven_bounded_waits() {
        let delays: Vec<Duration> = RETRIES.build().collect();
        assert_eq!(delays.len(), 7);
        assert!(delays[0] >= Duration::from_millis(5), "{delays:?}");
        assert!(
            delays.iter().all(|d| *d < Duration::from_millis(400)),
            "{delays:?}"
        );
        assert!(delays.iter().sum::<Duration>() < Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn contention_pauses_grow_with_jitter_and_stop_at_the_time_budget() {
        let start = tokio::time::Instant::now();
        let mut c = Contention::within(Duration::from_millis(600));
        let mut pauses = 0;
        let mut last = start;
        while c.pause().await {
            let now = tokio::time::Instant::now();
            // A busy machine may wake a sleeper late: only the ceiling's order is checked.
            assert!(now - last <= CONTENTION_MAX * 4, "{:?}", now - last);
            last = now;
            pauses += 1;
        }
        let spent = tokio::time::Instant::now() - start;
        assert!(spent >= Duration::from_millis(600), "{spent:?}");
        assert!(pauses >= 4, "{pauses}");
    }
}
