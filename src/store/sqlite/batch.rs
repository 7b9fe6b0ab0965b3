//! Group commit: holds, walk-ins and status changes queued while the writer is busy are decided
//! in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, and made durable by one
//! commit (one fsync). Every answer waits for that commit, so a 2xx still means durable.
use super::reservations::{insert_in, transition_in};
use super::rows::internal;
use crate::store::{
    InsertOutcome, NewReservation, StoreError, StoreResult, Transition, TransitionOutcome,
};
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

/// At most this many decisions share one commit.
const MAX_BATCH: usize = 256;
const QUEUE: usize = 8192;

pub enum Job {
    Insert(NewReservation, oneshot::Sender<StoreResult<InsertOutcome>>),
    Transition(Transition, oneshot::Sender<StoreResult<TransitionOutcome>>),
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

fn unavailable<T>(why: &str) -> StoreResult<T> {
    Err(StoreError::Unavailable(why.to_owned()))
}

async fn commit(pool: &SqlitePool, jobs: Vec<Job>) {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let why = internal(e).to_string();
            for job in jobs {
                match job {
                    Job::Insert(_, r) => drop(r.send(unavailable(&why))),
                    Job::Transition(_, r) => drop(r.send(unavailable(&why))),
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(jobs.len());
    let mut broken = false;
    for job in jobs {
        let opened = !broken && sqlx::query("SAVEPOINT job").execute(&mut *tx).await.is_ok();
        match job {
            Job::Insert(new, reply) => {
                let out = if opened {
                    insert_in(&mut tx, new).await
                } else {
                    unavailable("writer failed")
                };
                let keep = matches!(out, Ok(InsertOutcome::Won { .. }));
                broken |= opened && close_savepoint(&mut tx, keep).await.is_err();
                done.push(Done::Insert(reply, out));
            }
            Job::Transition(t, reply) => {
                let out = if opened {
                    transition_in(&mut tx, t).await
                } else {
                    unavailable("writer failed")
                };
                let keep = matches!(out, Ok(TransitionOutcome::Done { .. }));
                broken |= opened && close_savepoint(&mut tx, keep).await.is_err();
                done.push(Done::Transition(reply, out));
            }
        }
    }
    // Nothing is acknowledged before the commit that makes it durable.
    let committed = if broken {
        Err("writer failed".to_owned())
    } else {
        tx.commit().await.map_err(|e| internal(e).to_string())
    };
    for d in done {
        match (d, &committed) {
            (Done::Insert(r, out), Ok(())) => drop(r.send(out)),
            (Done::Transition(r, out), Ok(())) => drop(r.send(out)),
            (Done::Insert(r, _), Err(why)) => drop(r.send(unavailable(why))),
            (Done::Transition(r, _), Err(why)) => drop(r.send(unavailable(why))),
        }
    }
}
