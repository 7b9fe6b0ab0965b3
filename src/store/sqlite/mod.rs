//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, one writer connection, every
//! decision in one `BEGIN IMMEDIATE` transaction, and a trigger that makes overlap unwritable.
use super::*;
use rows::db;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::mpsc;

mod batch;
mod decide;
mod fast;
mod idempotency;
mod outbox;
mod rate;
mod raw;
mod reads;
mod reservations;
mod restaurants;
mod retention;
mod rows;
mod savepoint;
mod tokens;
mod versions;
mod waitlist;
mod waitlist_mail;
mod waitlist_tx;

/// The statements on a request path (holds, day views, settings guards), by name, as run: what
/// the plan tests give to `EXPLAIN QUERY PLAN`. Numbered parameters, any values.
#[doc(hidden)]
pub fn request_path_sql() -> Vec<(&'static str, String)> {
    vec![
        ("expire blocking holds", decide::expire_blocking_sql()),
        ("busy tables (writer)", decide::busy_tables_sql()),
        ("day view", reads::day_sql().to_owned()),
        (
            "cancelled of a date (floor)",
            reads::cancelled_sql().to_owned(),
        ),
        ("pacing window", decide::pacing_count_sql()),
        (
            "live holds of a client",
            decide::LIVE_HOLDS_OF_CLIENT_SQL.to_owned(),
        ),
        (
            "settings guard: live reservations of a table",
            restaurants::live_on_table_sql(),
        ),
        (
            "settings guard: parties on a table",
            restaurants::parties_on_table_sql(),
        ),
    ]
}

/// The statements of the script that decides a hold (`fast.rs`) without its savepoint: what the
/// plan tests give to `EXPLAIN QUERY PLAN`.
#[doc(hidden)]
pub fn hold_script_sql() -> Vec<String> {
    fast::script_sql(true)
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.starts_with("SAVEPOINT") && !s.starts_with("RELEASE"))
        .map(str::to_owned)
        .collect()
}

/// The waitlist's statements, by name: what the plan tests give to `EXPLAIN QUERY PLAN`.
#[doc(hidden)]
pub fn waitlist_sql() -> Vec<(&'static str, String)> {
    waitlist_tx::statements()
}

/// The retention statements, by name: what the plan tests give to `EXPLAIN QUERY PLAN`.
#[doc(hidden)]
pub fn retention_sql() -> Vec<(&'static str, String)> {
    vec![
        ("dead holds", retention::DEAD_HOLDS_SQL.to_owned()),
        (
            "tokens of dead holds",
            retention::DEAD_TOKENS_SQL.to_owned(),
        ),
        (
            "dead reservations",
            retention::DEAD_RESERVATIONS_SQL.to_owned(),
        ),
        (
            "old waitlist entries",
            retention::OLD_ENTRIES_SQL.to_owned(),
        ),
        (
            "old idempotency records",
            retention::OLD_IDEMPOTENCY_SQL.to_owned(),
        ),
    ]
}

/// The outbox statements, by name: what the plan tests give to `EXPLAIN QUERY PLAN`.
#[doc(hidden)]
pub fn outbox_sql() -> Vec<(&'static str, String)> {
    vec![
        ("claim due mail", outbox::CLAIM_SQL.to_owned()),
        ("count pending mail", outbox::PENDING_SQL.to_owned()),
        ("purge settled mail", outbox::PURGE_SQL.to_owned()),
    ]
}

/// Configures SQLite for the whole process (memory statistics off, see `raw::quiet_allocator`).
/// `SqliteStore::open` does it too; a program calls this first so that no other thread can be
/// opening a connection at that moment, which SQLite's configuration call does not allow.
pub fn configure_process() {
    raw::quiet_allocator();
}

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Holds, walk-ins and status changes go through the group-commit writer.
    jobs: mpsc::Sender<batch::Job>,
    /// Each restaurant's settings as last parsed, with their revision (see `restaurant_`).
    parsed: Parsed,
    /// Each date's day view as last read, with its versions (see `reads::day_`), kept current
    /// with the writer's own commits (`reads::Days::absorb`).
    days: Arc<std::sync::Mutex<reads::Days>>,
    /// The clients' rate buckets (`rate.rs`), in a database file of their own beside the store
    /// (`…db.limits`), shared by every instance on the store and written without `fsync`: a
    /// bucket lost to a crash is a full bucket, and a hold never waits for a durable commit of
    /// its client's rate.
    limits: SqlitePool,
}

type Parsed = std::sync::Mutex<std::collections::HashMap<Uuid, std::sync::Arc<StoredRestaurant>>>;

/// An exclusive advisory lock (`flock`) on the file at `path` (made when missing), held until
/// the file is dropped; waits for another process's.
async fn lock_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the migration lock {}: {e}", path.display()))?;
    Ok(tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await??)
}

impl SqliteStore {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        raw::quiet_allocator();
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Full)
            // Every hold's savepoint copies the pages it changes to a statement journal: in
            // memory, not a temporary file written with a system call per page.
            .pragma("temp_store", "memory")
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // Instances (or `migrate` runs) starting together on a fresh file each applied the
        // first migrations, and all but one failed ("table restaurants already exists"). They
        // open the file (its first connection turns it to WAL) and migrate one at a time,
        // under an exclusive advisory lock on a file beside the database, `<file>.lock`: each
        // applies what the ones before it did not. Not on the database file itself: closing
        // any handle of it drops every `fcntl` lock this process holds on it, SQLite's
        // included, and another process's last close would then delete the write-ahead log
        // this one still writes to.
        let migrating = if memory {
            None
        } else {
            let mut lock = opts.get_filename().as_os_str().to_owned();
            lock.push(".lock");
            Some(lock_file(std::path::Path::new(&lock)).await?)
        };
        // A pool pings a connection before lending it by default: one more round trip to the
        // connection's thread per acquire, for an embedded database whose connections do not
        // drop. Neither pool does.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        drop(migrating);
        // An in-memory database lives in one connection, so it reads through the writer.
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone().read_only(true))
                .await?
        };
        let days = Arc::default();
        let jobs = batch::spawn(writer.clone(), Arc::clone(&days))?;
        let limits = rate::open(&opts, memory).await?;
        Ok(Self {
            writer,
            reader,
            jobs,
            parsed: Parsed::default(),
            days,
            limits,
        })
    }

    async fn batch(&self, job: batch::Job) -> StoreResult<()> {
        self.jobs
            .send(job)
            .await
            // The queue closes only when the writer task is gone; its error holds nothing more.
            .map_err(|_| StoreError::Internal("the writer stopped".into()))
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("begin write transaction"))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(db("ping"))?;
        Ok(())
    }

    async fn take_rate_token(
        &self,
        client: &str,
        bucket: crate::store::rate::Bucket,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        rate::take(&self.limits, client, bucket, now).await
    }

    async fn forget_full_buckets(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        rate::forget(&self.limits, now, limit).await
    }

    async fn create_restaurant(
        &self,
        r: &Restaurant,
        staff_token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.create_restaurant_(r, staff_token_hash, now).await
    }

    async fn list_restaurants(&self) -> StoreResult<Vec<RestaurantSummary>> {
        self.list_restaurants_().await
    }

    async fn restaurant(&self, id: Uuid) -> StoreResult<Option<StoredRestaurant>> {
        self.restaurant_(id).await
    }

    async fn restaurant_for_insert(
        &self,
        id: Uuid,
    ) -> StoreResult<Option<std::sync::Arc<StoredRestaurant>>> {
        match self.parsed(id) {
            // The writer's script checks its revision (`Stale`: the caller reads again).
            Some(k) => Ok(Some(k)),
            None => Ok(self.restaurant_(id).await?.map(std::sync::Arc::new)),
        }
    }

    async fn replace_restaurant(
        &self,
        r: &Restaurant,
        expected_revision: u64,
        guard: Guard,
        now: DateTime<Utc>,
    ) -> StoreResult<ReplaceOutcome> {
        self.replace_restaurant_(r, expected_revision, guard, now)
            .await
    }

    async fn day(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<Arc<DayView>> {
        self.day_(restaurant_id, date).await
    }

    async fn day_version(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<u64> {
        self.day_version_(restaurant_id, date).await
    }

    async fn cancelled_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        self.cancelled_on_(restaurant_id, date).await
    }

    async fn reservations_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        self.reservations_on_(restaurant_id, date).await
    }

    async fn reservation(&self, id: Uuid) -> StoreResult<Option<Reservation>> {
        self.reservation_(id).await
    }

    async fn insert_reservation(&self, new: NewReservation) -> StoreResult<InsertOutcome> {
        self.insert_reservation_(new).await
    }

    async fn transition(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        self.transition_(t).await
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>> {
        self.expire_due_(now, limit).await
    }

    async fn token_owner(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        self.token_owner_(hash).await
    }

    async fn idem_begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin> {
        self.idem_begin_(key, fingerprint, now).await
    }

    async fn idem_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        self.idem_finish_(key, status, body).await
    }

    async fn idem_abort(&self, key: &str) -> StoreResult<()> {
        self.idem_abort_(key).await
    }

    async fn purge(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<usize> {
        self.purge_(before, limit).await
    }

    async fn join_waitlist(&self, new: NewEntry) -> StoreResult<JoinOutcome> {
        self.join_waitlist_(new).await
    }

    async fn waitlist_entry(&self, id: Uuid) -> StoreResult<Option<WaitlistEntry>> {
        self.waitlist_entry_(id).await
    }

    async fn waitlist_entry_by_token(&self, hash: &str) -> StoreResult<Option<WaitlistEntry>> {
        self.waitlist_entry_by_token_(hash).await
    }

    async fn waitlist_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<WaitlistEntry>> {
        self.waitlist_on_(restaurant_id, date).await
    }

    async fn waiting_days(&self, from: LocalDate, limit: u32) -> StoreResult<Vec<WaitingDay>> {
        self.waiting_days_(from, limit).await
    }

    async fn transition_offering(
        &self,
        t: Transition,
        o: NewOffer,
    ) -> StoreResult<(TransitionOutcome, Option<OfferOutcome>)> {
        self.transition_offering_(t, o).await
    }

    async fn offer(&self, o: NewOffer) -> StoreResult<OfferOutcome> {
        self.offer_(o).await
    }

    async fn leave_waitlist(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<LeaveOutcome> {
        Ok(self.leave_waitlist_(id, now, None).await?.0)
    }

    async fn leave_waitlist_offering(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        o: NewOffer,
    ) -> StoreResult<(LeaveOutcome, Option<OfferOutcome>)> {
        self.leave_waitlist_(id, now, Some(o)).await
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// A hold's savepoint journals the pages it changes; on disk that is a system call per
    /// page, in the writer's critical path.
    #[tokio::test]
    async fn the_writer_keeps_its_statement_journals_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let (mode,): (i64,) = sqlx::query_as("PRAGMA temp_store")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(mode, 2, "temp_store is MEMORY (2)");
    }
}
