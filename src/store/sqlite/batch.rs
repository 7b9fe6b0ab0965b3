//! Group commit: holds, walk-ins and status changes queued while the writer is busy are decided
//! in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, and made durable by one
//! commit (one fsync). Every answer waits for that commit, so a 2xx still means durable.
use super::decide::{insert_in, record_answer, transition_in};
use super::fast::{self, Verdict};
use super::waitlist::offer_in;
use crate::store::{
    InsertOutcome, NewOffer, NewReservation, OfferOutcome, StoreError, StoreResult, Transition,
    TransitionOutcome,
};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// At most this many decisions share one commit.
const MAX_BATCH: usize = 256;
const QUEUE: usize = 8192;

pub enum Job {
    Insert(
        Box<NewReservation>,
        oneshot::Sender<StoreResult<InsertOutcome>>,
    ),
    Transition(
        Box<Transition>,
        oneshot::Sender<StoreResult<TransitionOutcome>>,
    ),
    /// A waitlist offer: the hold and the entry's `waiting → offered` in one savepoint.
    Offer(Box<NewOffer>, oneshot::Sender<StoreResult<OfferOutcome>>),
}

enum Done {
    Insert(
        oneshot::Sender<StoreResult<InsertOutcome>>,
        StoreResult<InsertOutcome>,
    ),
    Transition(
        oneshot::Sender<StoreResult<TransitionOutcome>>,
        StoreResult<TransitionOutcome>,
    ),
    Offer(
        oneshot::Sender<StoreResult<OfferOutcome>>,
        StoreResult<OfferOutcome>,
    ),
}

pub fn spawn(pool: SqlitePool) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, rx));
    tx
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        commit(&pool, jobs).await;
    }
}

/// Ends a job's savepoint: kept when it wrote, rolled back when it lost or failed.
async fn close_savepoint(tx: &mut Transaction<'_, Sqlite>, keep: bool) -> Result<(), sqlx::Error> {
    if !keep {
        sqlx::query("ROLLBACK TO job").execute(&mut **tx).await?;
    }
    sqlx::query("RELEASE job").execute(&mut **tx).await?;
    Ok(())
}

/// One failure shared by every job it fails (errors are not `Clone`; an `Arc` of one is an error).
type Shared = Arc<sqlx::Error>;

fn unavailable<T>(context: &'static str, cause: &Shared) -> StoreResult<T> {
    Err(StoreError::unavailable(context, Arc::clone(cause)))
}

/// Opens a job's savepoint unless the transaction is already broken.
async fn open_savepoint(
    tx: &mut Transaction<'_, Sqlite>,
    broken: &Option<Shared>,
) -> Result<(), Shared> {
    match broken {
        Some(e) => Err(Arc::clone(e)),
        None => match sqlx::query("SAVEPOINT job").execute(&mut **tx).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Arc::new(e)),
        },
    }
}

/// A hold or walk-in: decided by `fast::decide` in one round trip when it can, else statement
/// by statement (`decide::insert_in`) in the same savepoint. Returns the outcome and, when a
/// savepoint could not be closed, the error that breaks the whole transaction.
async fn insert_job(
    tx: &mut Transaction<'_, Sqlite>,
    new: NewReservation,
) -> (StoreResult<InsertOutcome>, Option<Shared>) {
    let closed = |r: Result<(), sqlx::Error>| r.err().map(Arc::new);
    // An idempotent answer is rendered from the seating taken: it is recorded after the script,
    // which then leaves the savepoint open.
    let release = new.idem.is_none();
    let verdict = match fast::decide(tx, &new, release).await {
        Ok(v) => v,
        // The savepoint may be open: whatever the script wrote goes.
        Err(e) => return (Err(e), closed(close_savepoint(tx, false).await)),
    };
    let lost = match verdict {
        Verdict::Won(seating, versions) => {
            let reservation = fast::seated(new.reservation, &seating);
            let Some(idem) = &new.idem else {
                return (
                    Ok(InsertOutcome::Won {
                        reservation,
                        versions,
                    }),
                    None,
                );
            };
            let recorded = record_answer(tx, idem, &reservation).await;
            let broke = closed(close_savepoint(tx, recorded.is_ok()).await);
            let out = recorded.map(|()| InsertOutcome::Won {
                reservation,
                versions,
            });
            return (out, broke);
        }
        Verdict::Lost => InsertOutcome::Lost { seen: None },
        Verdict::Paced => InsertOutcome::Paced { seen: None },
        Verdict::OverCap => InsertOutcome::OverCap,
        Verdict::Stale => InsertOutcome::Stale,
        Verdict::Slow => {
            if release {
                if let Err(e) = sqlx::query("SAVEPOINT job").execute(&mut **tx).await {
                    let e = Arc::new(e);
                    return (unavailable(NOT_RUN, &e), Some(e));
                }
            }
            let out = insert_in(tx, new).await;
            let keep = matches!(out, Ok(InsertOutcome::Won { .. }));
            return (out, closed(close_savepoint(tx, keep).await));
        }
    };
    // Nothing was written; an open savepoint is only released.
    let broke = if release {
        None
    } else {
        closed(close_savepoint(tx, true).await)
    };
    (Ok(lost), broke)
}

const NOT_RUN: &str = "the group commit failed before this write";

async fn commit(pool: &SqlitePool, jobs: Vec<Job>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let e = Arc::new(e);
            const WHY: &str = "cannot begin the group commit";
            for job in jobs {
                match job {
                    Job::Insert(_, r) => drop(r.send(unavailable(WHY, &e))),
                    Job::Transition(_, r) => drop(r.send(unavailable(WHY, &e))),
                    Job::Offer(_, r) => drop(r.send(unavailable(WHY, &e))),
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(jobs.len());
    let mut broken: Option<Shared> = None;
    for job in jobs {
        // A hold opens its own savepoint, in the one round trip that decides it.
        let opened = match &job {
            Job::Insert(..) => Ok(()),
            _ => open_savepoint(&mut tx, &broken).await,
        };
        match job {
            Job::Insert(new, reply) => {
                let out = match &broken {
                    Some(e) => unavailable(NOT_RUN, e),
                    None => {
                        let (out, broke) = insert_job(&mut tx, *new).await;
                        broken = broke;
                        out
                    }
                };
                done.push(Done::Insert(reply, out));
            }
            Job::Transition(t, reply) => {
                let out = match &opened {
                    Ok(()) => transition_in(&mut tx, *t).await,
                    Err(e) => unavailable(NOT_RUN, e),
                };
                let keep = matches!(out, Ok(TransitionOutcome::Done { .. }));
                if opened.is_ok() {
                    if let Err(e) = close_savepoint(&mut tx, keep).await {
                        broken = Some(Arc::new(e));
                    }
                }
                done.push(Done::Transition(reply, out));
            }
            Job::Offer(o, reply) => {
                let out = match &opened {
                    Ok(()) => offer_in(&mut tx, *o).await,
                    Err(e) => unavailable(NOT_RUN, e),
                };
                let keep = matches!(out, Ok(OfferOutcome::Offered { .. }));
                if opened.is_ok() {
                    if let Err(e) = close_savepoint(&mut tx, keep).await {
                        broken = Some(Arc::new(e));
                    }
                }
                done.push(Done::Offer(reply, out));
            }
        }
    }
    // Nothing is acknowledged before the commit that makes it durable.
    let committed = match broken {
        Some(e) => Err(("the group commit broke", e)),
        None => tx
            .commit()
            .await
            .map_err(|e| ("the group commit failed", Arc::new(e))),
    };
    for d in done {
        match (d, &committed) {
            (Done::Insert(r, out), Ok(())) => drop(r.send(out)),
            (Done::Transition(r, out), Ok(())) => drop(r.send(out)),
            (Done::Offer(r, out), Ok(())) => drop(r.send(out)),
            (Done::Offer(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
            (Done::Insert(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
            (Done::Transition(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
        }
    }
}
