//! SDK errors matched by type, and the only retries the store makes.
//!
//! The SDK's own retries are off: a conditional write retried blindly after a timeout could be
//! answered "condition failed" by its own first attempt. Here, throttling and transaction
//! conflicts (which DynamoDB guarantees were not applied) are retried with bounded, jittered
//! exponential back-off; reads are also retried after a timeout or a 5xx; a write whose outcome
//! is unknown goes back to its caller, which reads back what happened.
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::{
    delete_item::DeleteItemError, get_item::GetItemError, put_item::PutItemError,
    query::QueryError, transact_write_items::TransactWriteItemsError, update_item::UpdateItemError,
};
use aws_sdk_dynamodb::types::CancellationReason;
use rand::Rng;
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

/// What a failed call means for its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The write's condition did not hold: nothing was written.
    Condition,
    /// A condition of the transaction failed; one reason per item, in item order.
    Canceled(Vec<Reason>),
    /// Throttled or in conflict with another transaction: nothing was written; try again.
    Retry(String),
    /// The call may or may not have taken effect (timeout, 5xx, lost connection).
    Unknown(String),
    Fatal(String),
}

impl Fault {
    fn from_reasons(reasons: Vec<Reason>) -> Fault {
        if reasons.contains(&Reason::ConditionalCheckFailed) {
            Fault::Canceled(reasons)
        } else if reasons
            .iter()
            .any(|r| matches!(r, Reason::TransactionConflict | Reason::Throttled))
        {
            Fault::Retry(format!("transaction cancelled: {reasons:?}"))
        } else {
            Fault::Fatal(format!("transaction cancelled: {reasons:?}"))
        }
    }
}

/// The faults an operation's modelled errors stand for (`None`: decided by the HTTP status).
pub trait OpFault {
    fn op_fault(&self) -> Option<Fault>;
}

macro_rules! throttles {
    ($t:ident, $e:expr) => {
        match $e {
            $t::ProvisionedThroughputExceededException(_)
            | $t::RequestLimitExceeded(_)
            | $t::ThrottlingException(_) => return Some(Fault::Retry("throttled".into())),
            $t::InternalServerError(_) => {
                return Some(Fault::Unknown("internal server error".into()))
            }
            _ => {}
        }
    };
}

impl OpFault for GetItemError {
    fn op_fault(&self) -> Option<Fault> {
        throttles!(GetItemError, self);
        None
    }
}

impl OpFault for QueryError {
    fn op_fault(&self) -> Option<Fault> {
        throttles!(QueryError, self);
        None
    }
}

macro_rules! single_write {
    ($t:ident) => {
        impl OpFault for $t {
            fn op_fault(&self) -> Option<Fault> {
                throttles!($t, self);
                match self {
                    $t::ConditionalCheckFailedException(_) => Some(Fault::Condition),
                    $t::TransactionConflictException(_)
                    | $t::ReplicatedWriteConflictException(_) => {
                        Some(Fault::Retry("conflicts with a transaction".into()))
                    }
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
    fn op_fault(&self) -> Option<Fault> {
        throttles!(TransactWriteItemsError, self);
        match self {
            TransactWriteItemsError::TransactionCanceledException(e) => Some(Fault::from_reasons(
                e.cancellation_reasons().iter().map(Reason::of).collect(),
            )),
            TransactWriteItemsError::TransactionInProgressException(_) => {
                Some(Fault::Retry("transaction in progress".into()))
            }
            _ => None,
        }
    }
}

pub fn fault<E>(e: SdkError<E, HttpResponse>) -> Fault
where
    E: OpFault + std::error::Error + 'static,
{
    let shown = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::ConstructionFailure(_) => Fault::Fatal(shown),
        SdkError::TimeoutError(_) => Fault::Unknown(shown),
        SdkError::DispatchFailure(d) if d.is_user() => Fault::Fatal(shown),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Fault::Unknown(shown),
        SdkError::ServiceError(se) => match se.err().op_fault() {
            Some(f) => f,
            None if se.raw().status().is_server_error() => Fault::Unknown(shown),
            None => Fault::Fatal(shown),
        },
        _ => Fault::Unknown(shown),
    }
}

/// Bounded exponential back-off with full jitter.
#[derive(Debug, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub const ATTEMPTS: u32 = 8;
    const BASE_MS: u64 = 10;
    const CAP_MS: u64 = 400;

    /// Waits before the next attempt; `false` when the attempts are used up.
    pub async fn pause(&mut self) -> bool {
        if self.attempt + 1 >= Self::ATTEMPTS {
            return false;
        }
        let ceiling = (Self::BASE_MS << self.attempt).min(Self::CAP_MS);
        let ms = rand::thread_rng().gen_range(0..=ceiling);
        self.attempt += 1;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        true
    }
}

/// A read, retried on throttling, timeouts and 5xx.
pub async fn read<T, E, F, Fut>(mut call: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: OpFault + std::error::Error + 'static,
{
    let mut backoff = Backoff::default();
    loop {
        match call().await.map_err(fault) {
            Ok(v) => return Ok(v),
            Err(Fault::Retry(m) | Fault::Unknown(m)) => {
                if !backoff.pause().await {
                    return Err(StoreError::Unavailable(m));
                }
            }
            Err(f) => return Err(StoreError::Internal(format!("{f:?}"))),
        }
    }
}

/// The outcome of a conditional write once throttling and conflicts are retried away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    Done(T),
    Condition,
    Canceled(Vec<Reason>),
    /// It may have been applied: read back before deciding.
    Unknown(String),
}

pub async fn write<T, E, F, Fut>(mut call: F) -> StoreResult<Written<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: OpFault + std::error::Error + 'static,
{
    let mut backoff = Backoff::default();
    loop {
        match call().await.map_err(fault) {
            Ok(v) => return Ok(Written::Done(v)),
            Err(Fault::Condition) => return Ok(Written::Condition),
            Err(Fault::Canceled(r)) => return Ok(Written::Canceled(r)),
            Err(Fault::Unknown(m)) => return Ok(Written::Unknown(m)),
            Err(Fault::Retry(m)) => {
                if !backoff.pause().await {
                    return Err(StoreError::Unavailable(m));
                }
            }
            Err(Fault::Fatal(m)) => return Err(StoreError::Internal(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Fault::from_reasons(rs.clone()), Fault::Canceled(rs));
    }

    #[test]
    fn conflicts_and_throttling_alone_are_retried_and_other_reasons_are_fatal() {
        assert!(matches!(
            Fault::from_reasons(vec![Reason::None, Reason::TransactionConflict]),
            Fault::Retry(_)
        ));
        assert!(matches!(
            Fault::from_reasons(vec![Reason::Throttled]),
            Fault::Retry(_)
        ));
        assert!(matches!(
            Fault::from_reasons(vec![Reason::Other]),
            Fault::Fatal(_)
        ));
    }

    #[tokio::test]
    async fn backoff_gives_up_after_its_attempts() {
        let mut b = Backoff::default();
        let mut pauses = 0;
        while b.pause().await {
            pauses += 1;
        }
        assert_eq!(pauses, Backoff::ATTEMPTS - 1);
    }
}
