//! The clients' rate buckets on SQLite (see `store::rate`): one row per client holding the
//! instant its bucket is full again, in a database of its own beside the store, opened without
//! `fsync` (`synchronous=OFF`) and shared through SQLite's locking by every instance on the
//! file. A take is one statement: the upsert moves the instant only while the bucket has a
//! token, so concurrent takes never overdraw it.
use super::rows::db;
use crate::store::rate::Bucket;
use crate::store::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::time::Duration;

/// `full_us`: the instant the bucket is full again, in microseconds of Unix time. The table's
/// name carries its unit: a file made by a build that kept milliseconds (`rate_buckets`) has
/// that table dropped, which only refills its buckets.
const SCHEMA: &[&str] = &[
    "DROP TABLE IF EXISTS rate_buckets",
    "CREATE TABLE IF NOT EXISTS rate_buckets_us (
        client  TEXT PRIMARY KEY,
        full_us INTEGER NOT NULL
    ) WITHOUT ROWID",
];

/// Takes a token: inserts a full bucket less one, or moves the instant of a bucket that still
/// has one (`?2` now, `?3` the interval, `?4` the tolerance). No row back: no token.
const TAKE_SQL: &str = "INSERT INTO rate_buckets_us (client, full_us) VALUES (?1, ?2 + ?3)
    ON CONFLICT (client) DO UPDATE SET full_us = max(full_us, ?2) + ?3
      WHERE max(full_us, ?2) - ?2 <= ?4
    RETURNING full_us";

/// Opens the buckets' database beside the store's file (`store.db` → `store.db.limits`), or
/// in memory for an in-memory store.
pub(super) async fn open(store: &SqliteConnectOptions, memory: bool) -> anyhow::Result<SqlitePool> {
    let opts = if memory {
        SqliteConnectOptions::new().in_memory(true)
    } else {
        let mut path = store.get_filename().as_os_str().to_owned();
        path.push(".limits");
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
    };
    let opts = opts
        .synchronous(SqliteSynchronous::Off)
        // A take is microseconds of work: a lock held longer is a fault, and the request is
        // let through (`Limits::take_hold_token`) rather than kept waiting.
        .busy_timeout(Duration::from_millis(250));
    // Instances starting together on a fresh file race to set its journal mode, which SQLite
    // answers "database is locked" without waiting: the loser tries again.
    let mut tries = 0;
    loop {
        match connect(opts.clone()).await {
            Ok(pool) => return Ok(pool),
            Err(e) if tries < 5 => {
                tries += 1;
                tracing::debug!(error = %e, "opening the rate buckets again");
                tokio::time::sleep(Duration::from_millis(50 * tries)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn connect(opts: SqliteConnectOptions) -> anyhow::Result<SqlitePool> {
    // One connection: a take is one short statement with no `fsync`, and connections of one
    // pool opening together would race for the journal mode too. In memory, the database is
    // its one connection anyway.
    let pool = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .min_connections(1)
        // Takes queue for the one connection: behind a lock that outlasts the busy timeout,
        // each gives up this soon and is let through, rather than waiting its turn to fail.
        .acquire_timeout(Duration::from_millis(250))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(opts)
        .await?;
    for statement in SCHEMA {
        sqlx::query(statement).execute(&pool).await?;
    }
    Ok(pool)
}

pub(super) async fn take(
    pool: &SqlitePool,
    client: &str,
    bucket: Bucket,
    now: DateTime<Utc>,
) -> StoreResult<Option<i64>> {
    let now = micros(now);
    let taken = sqlx::query(TAKE_SQL)
        .bind(client)
        .bind(now)
        .bind(bucket.every_us)
        .bind(bucket.tolerance_us())
        .fetch_optional(pool)
        .await
        .map_err(db("take a rate token"))?;
    if taken.is_some() {
        return Ok(None);
    }
    // Refused: how long until a token, from the bucket as it is now.
    let full: Option<i64> = sqlx::query("SELECT full_us FROM rate_buckets_us WHERE client = ?1")
        .bind(client)
        .fetch_optional(pool)
        .await
        .map_err(db("read a rate bucket"))?
        .map(|row| row.get(0));
    Ok(Some(bucket.take(full, now).err().unwrap_or(1).max(1)))
}

pub(super) async fn forget(
    pool: &SqlitePool,
    now: DateTime<Utc>,
    limit: u32,
) -> StoreResult<usize> {
    let gone = sqlx::query(
        "DELETE FROM rate_buckets_us WHERE client IN
           (SELECT client FROM rate_buckets_us WHERE full_us <= ?1 LIMIT ?2)",
    )
    .bind(micros(now))
    .bind(i64::from(limit))
    .execute(pool)
    .await
    .map_err(db("forget full rate buckets"))?;
    Ok(usize::try_from(gone.rows_affected()).unwrap_or(usize::MAX))
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}
