//! Group commit: holds, walk-ins and status changes queued while the writer is busy are decided
//! in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, and made durable by one
//! commit (one fsync). Every answer waits for that commit, so a 2xx still means durable.
use super::decide::{insert_in, record_answer, transition_in};
use super::fast::{self, Verdict};
use super::raw::{self, Script};
use super::waitlist::offer_in;
use crate::domain::Seating;
use crate::store::Versions;
use crate::store::{
    InsertOutcome, NewOffer, NewReservation, OfferOutcome, StoreError, StoreResult, Transition,
    TransitionOutcome,
};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use std::ptr::NonNull;
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

/// Starts the writer on a thread of its own: it runs the hold scripts itself (`raw.rs`), and that
/// work, page reads and WAL writes included, must not hold up a worker of the runtime that
/// serves requests. The thread ends when every sender is gone.
pub fn spawn(pool: SqlitePool) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || rt.block_on(run(pool, rx)))?;
    Ok(tx)
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

type InsertReply = oneshot::Sender<StoreResult<InsertOutcome>>;

/// What a hold's script leaves to sqlx, after the handle is given back.
enum FollowUp {
    /// Won with an idempotency key: record the answer, then close the open savepoint.
    Record(Seating, Versions),
    /// Decide it statement by statement (`decide::insert_in`); the savepoint is open unless the
    /// script released it.
    Slow { released: bool },
}

/// Runs `sql` (a savepoint's end) on the lent handle.
fn exec(db: NonNull<libsqlite3_sys::sqlite3>, sql: &str) -> Result<(), raw::RawError> {
    // SAFETY: the caller holds the connection's `LockedSqliteHandle`; the script is dropped here.
    let mut script = unsafe { Script::prepare(db, sql) }?;
    script.run(&[]).map(drop)
}

/// A run of consecutive holds and walk-ins, decided in order. Their scripts run on the writer
/// connection's own handle, lent once for as many of them as can go without sqlx; what a
/// script leaves to sqlx (an idempotent answer to record, a decision statement by statement)
/// runs after the handle is given back, before the next hold. Returns the error that broke the
/// whole transaction, if one did (every hold of the run is answered either way).
async fn insert_run(
    tx: &mut Transaction<'_, Sqlite>,
    run: Vec<(Box<NewReservation>, InsertReply)>,
    done: &mut Vec<Done>,
) -> Option<Shared> {
    let mut run = run.into_iter();
    let mut broken = None;
    // Until every hold of the run is answered (a follow-up may have taken the last one).
    while !run.as_slice().is_empty() {
        let mut follow_up = None;
        {
            let mut handle = match tx.lock_handle().await {
                Ok(h) => h,
                Err(e) => {
                    broken = Some(Arc::new(e));
                    break;
                }
            };
            let db = handle.as_raw_handle();
            // Prepared on first use in this lending, finalized before the handle goes back.
            let mut scripts: [Option<Script>; 2] = [None, None];
            for (new, reply) in run.by_ref() {
                let release = new.idem.is_none();
                let slot = &mut scripts[usize::from(release)];
                if slot.is_none() {
                    // SAFETY: `handle` is held until the scripts are dropped, below.
                    match unsafe { Script::prepare(db, fast::script_sql(release)) } {
                        Ok(s) => *slot = Some(s),
                        Err(e) => {
                            let e = Arc::new(sqlx::Error::Protocol(e.to_string()));
                            done.push(Done::Insert(reply, unavailable(NOT_RUN, &e)));
                            broken = Some(e);
                            break;
                        }
                    }
                }
                let script = slot.as_mut().expect("prepared");
                let close = |keep: bool| {
                    let sql = if keep {
                        "RELEASE job"
                    } else {
                        "ROLLBACK TO job; RELEASE job"
                    };
                    exec(db, sql)
                        .err()
                        .map(|e| Arc::new(sqlx::Error::Protocol(e.to_string())))
                };
                let out = match fast::decide(script, &new) {
                    Ok(Verdict::Won(seating, versions)) if !release => {
                        follow_up = Some((new, reply, FollowUp::Record(seating, versions)));
                        break;
                    }
                    Ok(Verdict::Slow) => {
                        follow_up = Some((new, reply, FollowUp::Slow { released: release }));
                        break;
                    }
                    Ok(Verdict::Won(seating, versions)) => Ok(InsertOutcome::Won {
                        reservation: fast::seated(new.reservation, &seating),
                        versions,
                    }),
                    Ok(lost) => {
                        // Nothing was written; an open savepoint is only released.
                        if !release {
                            broken = close(true);
                        }
                        Ok(match lost {
                            Verdict::Paced(seen) => InsertOutcome::Paced { seen },
                            Verdict::Lost(seen) => InsertOutcome::Lost { seen },
                            Verdict::OverCap => InsertOutcome::OverCap,
                            Verdict::Stale => InsertOutcome::Stale,
                            Verdict::Won(..) | Verdict::Slow => unreachable!("answered above"),
                        })
                    }
                    // The savepoint may be open: whatever the script wrote goes.
                    Err(e) => {
                        broken = close(false);
                        Err(e)
                    }
                };
                done.push(Done::Insert(reply, out));
                if broken.is_some() {
                    break;
                }
            }
            drop(scripts);
            drop(handle);
        }
        let Some((new, reply, next)) = follow_up else {
            break;
        };
        let closed = |r: Result<(), sqlx::Error>| r.err().map(Arc::new);
        let new = *new;
        let out = match next {
            FollowUp::Record(seating, versions) => {
                let reservation = fast::seated(new.reservation, &seating);
                let idem = new.idem.as_ref().expect("keyed");
                let recorded = record_answer(tx, idem, &reservation).await;
                broken = closed(close_savepoint(tx, recorded.is_ok()).await);
                recorded.map(|()| InsertOutcome::Won {
                    reservation,
                    versions,
                })
            }
            FollowUp::Slow { released } => {
                let reopened = if released {
                    sqlx::query("SAVEPOINT job").execute(&mut **tx).await.err()
                } else {
                    None
                };
                match reopened {
                    Some(e) => {
                        let e = Arc::new(e);
                        broken = Some(Arc::clone(&e));
                        unavailable(NOT_RUN, &e)
                    }
                    None => {
                        let out = insert_in(tx, new).await;
                        let keep = matches!(out, Ok(InsertOutcome::Won { .. }));
                        broken = closed(close_savepoint(tx, keep).await);
                        out
                    }
                }
            }
        };
        done.push(Done::Insert(reply, out));
        if broken.is_some() {
            break;
        }
    }
    // What the break left unanswered never ran.
    if let Some(e) = &broken {
        for (_, reply) in run {
            done.push(Done::Insert(reply, unavailable(NOT_RUN, e)));
        }
    }
    broken
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
    let mut jobs = jobs.into_iter().peekable();
    while let Some(job) = jobs.next() {
        // A hold opens its own savepoint, in the script that decides it.
        let opened = match &job {
            Job::Insert(..) => Ok(()),
            _ => open_savepoint(&mut tx, &broken).await,
        };
        match job {
            Job::Insert(new, reply) => {
                // The holds queued behind this one go with it.
                let mut run = vec![(new, reply)];
                while let Some(Job::Insert(..)) = jobs.peek() {
                    if let Some(Job::Insert(new, reply)) = jobs.next() {
                        run.push((new, reply));
                    }
                }
                match &broken {
                    Some(e) => {
                        for (_, reply) in run {
                            done.push(Done::Insert(reply, unavailable(NOT_RUN, e)));
                        }
                    }
                    None => broken = insert_run(&mut tx, run, &mut done).await,
                }
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
