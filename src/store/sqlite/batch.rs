//! Group commit: holds, walk-ins and status changes queued while the writer is busy are decided
//! in one `BEGIN IMMEDIATE` transaction, each inside its own savepoint, and made durable by one
//! commit (one fsync). Every answer waits for that commit, so a 2xx still means durable.
use super::decide::{insert_in, offer_in, record_answer, transition_in};
use super::fast::{self, Verdict};
use super::raw::{self, Script};
use super::reads::Days;
use super::savepoint::{close_savepoint, savepoint};
use crate::domain::Reservation;
use crate::domain::Seating;
use crate::store::Versions;
use crate::store::{as_stored, Step};
use crate::store::{
    InsertOutcome, NewOffer, NewReservation, OfferOutcome, StoreError, StoreResult, Transition,
    TransitionOutcome,
};
use sqlx::sqlite::{LockedSqliteHandle, SqlitePool};
use sqlx::{Sqlite, Transaction};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
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
    /// A transition, then (if done) the offer of what it freed, each in its own savepoint of
    /// the same transaction: no hold can come between them.
    TransitionOffering(Box<Transition>, Box<NewOffer>, OfferingReply),
}

type Offering = (TransitionOutcome, Option<OfferOutcome>);
type OfferingReply = oneshot::Sender<StoreResult<Offering>>;

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
    TransitionOffering(OfferingReply, Box<StoreResult<Offering>>),
}

/// Starts the writer on a thread of its own: it runs the hold scripts itself (`raw.rs`), and that
/// work, page reads and WAL writes included, must not hold up a worker of the runtime that
/// serves requests. The thread ends when every sender is gone.
pub fn spawn(pool: SqlitePool, days: Arc<Mutex<Days>>) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || rt.block_on(run(pool, rx, days)))?;
    Ok(tx)
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>, days: Arc<Mutex<Days>>) {
    let mut kept = Kept::default();
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        commit(&pool, jobs, &mut kept, &days).await;
    }
    kept.finalize(&pool).await;
}

/// The hold scripts (with and without their closing `RELEASE`), prepared on the writer's
/// connection at first use and kept from one group commit to the next: preparing them, which
/// compiles the triggers into the `INSERT`, took about a tenth of the writer's time when it was
/// done per group commit.
///
/// They are run only while the group commit holds the connection's handle (a script borrows
/// it), and finalized, holding it again, when the writer stops (`finalize`). In between, sqlx
/// uses the connection for other writes; SQLite allows that beside prepared statements that are
/// reset, as these are after every run. SQLite refuses to close a connection that still has
/// statements (sqlx uses `sqlite3_close`), and sqlx then panics on the connection's own thread
/// and the connection stays open, never freed. The writer's pool closes its one connection:
/// with the pool itself, and this thread holds a clone of the pool until after `finalize`; when
/// the ping sqlx runs on the connection's return fails, which means its thread died; or when
/// that return is cut short by a runtime shutting down, at the end of the process. In the last
/// two cases the pool opens another connection and the writer prepares the scripts again on it
/// (`for_connection`); the old one is never freed, so its address cannot come back.
#[derive(Default)]
struct Kept {
    db: Option<NonNull<libsqlite3_sys::sqlite3>>,
    scripts: [Option<Script>; 2],
}

impl Kept {
    /// The scripts, for the connection `db`, whose handle the caller holds.
    fn for_connection(&mut self, db: NonNull<libsqlite3_sys::sqlite3>) -> &mut [Option<Script>; 2] {
        if self.db != Some(db) {
            // Finalizing needs the old connection's handle, which is not ours to take.
            self.forget();
            self.db = Some(db);
        }
        &mut self.scripts
    }

    /// Lets go of the scripts without finalizing them: they stay with their connection.
    fn forget(&mut self) {
        self.scripts
            .iter_mut()
            .filter_map(Option::take)
            .for_each(std::mem::forget);
    }

    /// The script `release` (or not), prepared on the lent connection if it is not yet. It
    /// borrows the handle: it cannot run once the handle is given back.
    fn script<'a>(
        &'a mut self,
        handle: &'a mut LockedSqliteHandle<'_>,
        release: bool,
    ) -> Result<&'a mut Script, raw::RawError> {
        let db = handle.as_raw_handle();
        let slot = &mut self.for_connection(db)[usize::from(release)];
        if slot.is_none() {
            // SAFETY: prepared and run while the handle is held; dropped only by `finalize`,
            // which holds it again, or forgotten.
            *slot = Some(unsafe { Script::prepare(db, fast::script_sql(release)) }?);
        }
        Ok(slot.as_mut().expect("prepared"))
    }

    /// Finalizes the scripts, holding the handle of the connection they were prepared on.
    async fn finalize(mut self, pool: &SqlitePool) {
        let Some(db) = self.db else { return };
        if let Ok(mut conn) = pool.acquire().await {
            if let Ok(mut handle) = conn.lock_handle().await {
                if handle.as_raw_handle() == db {
                    self.scripts = [None, None];
                }
            }
        }
    }
}

impl Drop for Kept {
    /// Scripts still here could not be finalized safely (see `finalize`): they are left to the
    /// connection, which then cannot close (sqlx panics on its thread if it tries).
    fn drop(&mut self) {
        self.forget();
    }
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
        None => savepoint(tx).await.map_err(Arc::new),
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
    kept: &mut Kept,
    written: &mut Written,
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
            for (new, reply) in run.by_ref() {
                let release = new.idem.is_none();
                let script = match kept.script(&mut handle, release) {
                    Ok(s) => s,
                    Err(e) => {
                        let e = Arc::new(sqlx::Error::Protocol(e.to_string()));
                        done.push(Done::Insert(reply, unavailable(NOT_RUN, &e)));
                        broken = Some(e);
                        break;
                    }
                };
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
                    Ok(Verdict::Won(seating, versions)) => {
                        let reservation = fast::seated(new.reservation, &seating);
                        written.push((as_stored(reservation.clone()), versions.steps.clone()));
                        Ok(InsertOutcome::Won {
                            reservation,
                            versions,
                        })
                    }
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
                if recorded.is_ok() {
                    written.push((as_stored(reservation.clone()), versions.steps.clone()));
                }
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

/// What a group commit wrote that a day view can take without a read, in the order it was
/// written: each reservation as the commit left it, with the steps it made to its dates'
/// versions. Holds the script decided (which mark nothing expired on the way) and status
/// changes; not what is decided statement by statement, nor offers.
type Written = Vec<(Reservation, Vec<Step>)>;

async fn commit(pool: &SqlitePool, jobs: Vec<Job>, kept: &mut Kept, days: &Mutex<Days>) {
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
                    Job::TransitionOffering(_, _, r) => drop(r.send(unavailable(WHY, &e))),
                }
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(jobs.len());
    let mut written = Written::new();
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
                    None => broken = insert_run(&mut tx, run, &mut done, kept, &mut written).await,
                }
            }
            Job::Transition(t, reply) => {
                let out = transition_job(&mut tx, *t, opened, &mut broken, &mut written).await;
                done.push(Done::Transition(reply, out));
            }
            Job::TransitionOffering(t, o, reply) => {
                let out = offering_job(&mut tx, *t, *o, opened, &mut broken, &mut written).await;
                done.push(Done::TransitionOffering(reply, Box::new(out)));
            }
            Job::Offer(o, reply) => {
                let out = offer_job(&mut tx, *o, opened, &mut broken).await;
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
    // Before the answers: a client's next read after its answer finds the day current.
    if committed.is_ok() && !written.is_empty() {
        days.lock().expect("days").absorb(written);
    }
    for d in done {
        match (d, &committed) {
            (Done::Insert(r, out), Ok(())) => drop(r.send(out)),
            (Done::Transition(r, out), Ok(())) => drop(r.send(out)),
            (Done::Offer(r, out), Ok(())) => drop(r.send(out)),
            (Done::Offer(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
            (Done::Insert(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
            (Done::Transition(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
            (Done::TransitionOffering(r, out), Ok(())) => drop(r.send(*out)),
            (Done::TransitionOffering(r, _), Err((why, e))) => drop(r.send(unavailable(why, e))),
        }
    }
}

/// Ends the savepoint a job `opened` (if it did): kept, or rolled back. A failure to end it
/// breaks the whole transaction.
async fn end_job(
    tx: &mut Transaction<'_, Sqlite>,
    opened: &Result<(), Shared>,
    keep: bool,
    broken: &mut Option<Shared>,
) {
    if opened.is_ok() {
        if let Err(e) = close_savepoint(tx, keep).await {
            *broken = Some(Arc::new(e));
        }
    }
}

/// A transition in the savepoint `opened` for it: kept when done, rolled back otherwise; what it
/// wrote goes to `written`.
async fn transition_job(
    tx: &mut Transaction<'_, Sqlite>,
    t: Transition,
    opened: Result<(), Shared>,
    broken: &mut Option<Shared>,
    written: &mut Written,
) -> StoreResult<TransitionOutcome> {
    let out = match &opened {
        Ok(()) => transition_in(tx, t).await,
        Err(e) => unavailable(NOT_RUN, e),
    };
    let keep = matches!(out, Ok(TransitionOutcome::Done { .. }));
    end_job(tx, &opened, keep, broken).await;
    if let Ok(done) = &out {
        note_written(written, done);
    }
    out
}

/// What a kept transition wrote, for the day views (`Written`).
fn note_written(written: &mut Written, out: &TransitionOutcome) {
    if let TransitionOutcome::Done {
        reservation,
        versions,
        ..
    } = out
    {
        written.push((as_stored(reservation.clone()), versions.steps.clone()));
    }
}

/// A transition and its planned offer in the savepoint `opened` for both, the offer in one of
/// its own inside it. Not offered, the offer is left to the caller's usual pass after the
/// commit; or, when the transition asks for its offer or nothing, the transition is rolled back
/// too and answered `Conflict(None)`, so that the caller plans again (its entry was offered
/// elsewhere meanwhile, say) before anyone can hold what it would free.
async fn offering_job(
    tx: &mut Transaction<'_, Sqlite>,
    t: Transition,
    o: NewOffer,
    opened: Result<(), Shared>,
    broken: &mut Option<Shared>,
    written: &mut Written,
) -> StoreResult<(TransitionOutcome, Option<OfferOutcome>)> {
    let or_nothing = t.offer_or_nothing;
    let out = match &opened {
        Ok(()) => transition_in(tx, t).await,
        Err(e) => unavailable(NOT_RUN, e),
    };
    let Ok(done @ TransitionOutcome::Done { .. }) = out else {
        end_job(tx, &opened, false, broken).await;
        return out.map(|t| (t, None));
    };
    let inner = open_savepoint(tx, broken).await;
    let offered = offer_job(tx, o, inner, broken).await;
    let made = matches!(offered, Ok(OfferOutcome::Offered { .. }));
    let keep = made || !or_nothing;
    end_job(tx, &opened, keep, broken).await;
    if !keep {
        return Ok((TransitionOutcome::Conflict(None), offered.ok()));
    }
    note_written(written, &done);
    Ok((done, offered.ok()))
}

/// An offer in the savepoint `opened` for it: kept when made, rolled back otherwise.
async fn offer_job(
    tx: &mut Transaction<'_, Sqlite>,
    o: NewOffer,
    opened: Result<(), Shared>,
    broken: &mut Option<Shared>,
) -> StoreResult<OfferOutcome> {
    let out = match &opened {
        Ok(()) => offer_in(tx, o).await,
        Err(e) => unavailable(NOT_RUN, e),
    };
    let keep = matches!(out, Ok(OfferOutcome::Offered { .. }));
    end_job(tx, &opened, keep, broken).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::{Reservation, Status};
    use crate::domain::time::WallTime;
    use crate::domain::{LocalDate, TableId};
    use crate::store::sqlite::SqliteStore;
    use chrono::{TimeZone, Utc};
    use std::ffi::CStr;
    use uuid::Uuid;

    /// How many statements prepared on the writer's connection are the hold script's `INSERT`.
    async fn kept_inserts(pool: &SqlitePool) -> usize {
        let mut conn = pool.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut n = 0;
        // SAFETY: the handle is held; statements are only listed and their SQL read.
        unsafe {
            let mut s = libsqlite3_sys::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !s.is_null() {
                let sql = CStr::from_ptr(libsqlite3_sys::sqlite3_sql(s)).to_string_lossy();
                n += usize::from(sql.contains("json_extract(c.value, '$.t[0]')"));
                s = libsqlite3_sys::sqlite3_next_stmt(db, s);
            }
        }
        n
    }

    /// A hold at a restaurant that does not exist: the script runs and answers `Stale`.
    fn hold_nowhere() -> NewReservation {
        let at = Utc.with_ymd_and_hms(2030, 1, 2, 19, 0, 0).unwrap();
        let t1 = TableId::parse("t1").unwrap();
        NewReservation {
            reservation: Reservation {
                id: Uuid::new_v4(),
                restaurant_id: Uuid::new_v4(),
                table_id: t1.clone(),
                table_ids: vec![t1.clone()],
                combination_id: None,
                date: LocalDate::parse("2030-01-02").unwrap(),
                time: WallTime::parse("19:00").unwrap(),
                start: at,
                end: at + chrono::Duration::minutes(90),
                party_size: 2,
                status: Status::Held,
                expires_at: Some(at),
                guest: None,
                notes: String::new(),
                created_at: at,
                updated_at: at,
            },
            candidates: vec![Seating::single(&t1)],
            pacing: None,
            restaurant_revision: 1,
            token_hash: None,
            now: at,
            cap: None,
            idem: None,
        }
    }

    /// The writer prepares the hold script once and keeps it across group commits; when it
    /// stops, it finalizes it (sqlx would panic closing a connection that still had it).
    #[tokio::test]
    async fn the_hold_script_is_kept_across_group_commits_and_finalized_when_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let pool = store.writer.clone();
        let (jobs, rx) = mpsc::channel(4);
        let drive = async {
            for commit in 0..2 {
                let (reply, answer) = oneshot::channel();
                jobs.send(Job::Insert(Box::new(hold_nowhere()), reply))
                    .await
                    .unwrap();
                let out = answer.await.unwrap();
                assert!(matches!(out, Ok(InsertOutcome::Stale)), "{commit}: {out:?}");
                assert_eq!(kept_inserts(&pool).await, 1, "after group commit {commit}");
            }
            drop(jobs);
        };
        tokio::join!(run(pool.clone(), rx, Arc::default()), drive);
        assert_eq!(
            kept_inserts(&pool).await,
            0,
            "finalized when the writer stopped"
        );
        pool.close().await;
    }
}
