//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, one writer connection, every
//! decision in one `BEGIN IMMEDIATE` transaction, and a trigger that makes overlap unwritable.
use super::*;
use crate::domain::reservation::Guest;
use crate::domain::time::WallTime;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::str::FromStr;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

mod batch;

/// Longest a reservation can last (12 h): bounds overlap scans, as the schema's trigger does.
const MAX_SPAN_MS: i64 = 43_200_000;
/// An idempotency record still in flight after this long belongs to a crashed request.
const IDEM_STALE_MS: i64 = 60_000;
const IDEM_TTL_MS: i64 = 24 * 3600 * 1000;

const OCCUPYING_SQL: &str = "('held','confirmed','seated','completed','no_show')";

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Holds, walk-ins and status changes go through the group-commit writer.
    jobs: mpsc::Sender<batch::Job>,
}

fn internal(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        e => StoreError::Internal(e.to_string()),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Internal(format!("bad instant {v}")))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Internal(format!("corrupt {what} in store"))
}

fn row_to_reservation(row: &SqliteRow) -> StoreResult<Reservation> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(internal);
    let guest: Option<String> = row.try_get("guest").map_err(internal)?;
    let expires: Option<i64> = row.try_get("expires_ms").map_err(internal)?;
    Ok(Reservation {
        id: Uuid::parse_str(&get_s("id")?).map_err(|_| corrupt("id"))?,
        restaurant_id: Uuid::parse_str(&get_s("restaurant_id")?).map_err(|_| corrupt("id"))?,
        table_id: TableId::parse(&get_s("table_id")?).map_err(|_| corrupt("table id"))?,
        date: LocalDate::parse(&get_s("date")?).map_err(|_| corrupt("date"))?,
        time: WallTime::parse(&get_s("time")?).map_err(|_| corrupt("time"))?,
        start: from_ms(row.try_get("start_ms").map_err(internal)?)?,
        end: from_ms(row.try_get("end_ms").map_err(internal)?)?,
        party_size: row.try_get::<i64, _>("party_size").map_err(internal)? as u32,
        status: Status::parse(&get_s("status")?).ok_or_else(|| corrupt("status"))?,
        expires_at: expires.map(from_ms).transpose()?,
        guest: guest
            .map(|g| serde_json::from_str::<Guest>(&g).map_err(|_| corrupt("guest")))
            .transpose()?,
        notes: get_s("notes")?,
        created_at: from_ms(row.try_get("created_ms").map_err(internal)?)?,
        updated_at: from_ms(row.try_get("updated_ms").map_err(internal)?)?,
    })
}

fn to_doc(r: &Restaurant) -> StoreResult<String> {
    serde_json::to_string(r).map_err(|e| StoreError::Internal(e.to_string()))
}

/// Raises the version of one restaurant/date above both its own and the restaurant-wide floor.
async fn bump_day(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    date: LocalDate,
) -> StoreResult<u64> {
    let v: i64 = sqlx::query_scalar(
        "INSERT INTO day_versions (restaurant_id, date, version)
         VALUES (?1, ?2, (SELECT wide_version FROM restaurants WHERE id = ?1) + 1)
         ON CONFLICT (restaurant_id, date) DO UPDATE SET version =
           MAX(version, (SELECT wide_version FROM restaurants WHERE id = ?1)) + 1
         RETURNING version",
    )
    .bind(rid)
    .bind(date.to_string())
    .fetch_one(&mut **tx)
    .await
    .map_err(internal)?;
    Ok(v as u64)
}

async fn bump_dates(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    dates: impl IntoIterator<Item = LocalDate>,
) -> StoreResult<Versions> {
    let mut ds: Vec<LocalDate> = dates.into_iter().collect();
    ds.sort();
    ds.dedup();
    let mut out = Versions::default();
    for d in ds {
        out.dates.push((d, bump_day(tx, rid, d).await?));
    }
    Ok(out)
}

/// Marks expired holds on the given tables overlapping `[start, end)` so their time can be taken.
async fn expire_blocking_holds(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    tables: &[TableId],
    start: i64,
    end: i64,
    now: i64,
) -> StoreResult<Vec<LocalDate>> {
    let mut dates = Vec::new();
    for t in tables {
        let rows: Vec<String> = sqlx::query_scalar(
            "UPDATE reservations SET status = 'expired', updated_ms = ?5
             WHERE restaurant_id = ?1 AND table_id = ?2 AND status = 'held' AND expires_ms <= ?5
               AND start_ms > ?3 - 43200000 AND start_ms < ?4 AND end_ms > ?3
             RETURNING date",
        )
        .bind(rid)
        .bind(t.as_str())
        .bind(start)
        .bind(end)
        .bind(now)
        .fetch_all(&mut **tx)
        .await
        .map_err(internal)?;
        for d in rows {
            dates.push(LocalDate::parse(&d).map_err(|_| corrupt("date"))?);
        }
    }
    Ok(dates)
}

/// One hold or walk-in inside the writer's transaction: the first free candidate is claimed.
async fn insert_in(
    tx: &mut Transaction<'_, Sqlite>,
    new: NewReservation,
) -> StoreResult<InsertOutcome> {
    let NewReservation {
        mut reservation,
        candidates,
        restaurant_revision,
        token_hash,
        now,
    } = new;
    let rid = reservation.restaurant_id.to_string();
    let (start, end, now_ms) = (ms(reservation.start), ms(reservation.end), ms(now));
    if SqliteStore::revision(tx, &rid).await? != Some(restaurant_revision) {
        return Ok(InsertOutcome::Stale);
    }
    let mut touched = expire_blocking_holds(tx, &rid, &candidates, start, end, now_ms).await?;
    let q = format!(
        "SELECT DISTINCT table_id FROM reservations
         WHERE restaurant_id = ? AND start_ms > ? AND start_ms < ? AND end_ms > ?
           AND end_ms > start_ms AND status IN {OCCUPYING_SQL}"
    );
    let busy: Vec<String> = sqlx::query_scalar(&q)
        .bind(&rid)
        .bind(start - MAX_SPAN_MS)
        .bind(end)
        .bind(start)
        .fetch_all(&mut **tx)
        .await
        .map_err(internal)?;
    let Some(table) = candidates
        .iter()
        .find(|t| !busy.iter().any(|b| b == t.as_str()))
    else {
        return Ok(InsertOutcome::Lost);
    };
    reservation.table_id = table.clone();
    sqlx::query(
        "INSERT INTO reservations (id, restaurant_id, table_id, date, time, start_ms, end_ms,
           party_size, status, expires_ms, guest, notes, created_ms, updated_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(reservation.id.to_string())
    .bind(&rid)
    .bind(table.as_str())
    .bind(reservation.date.to_string())
    .bind(reservation.time.to_string())
    .bind(start)
    .bind(end)
    .bind(i64::from(reservation.party_size))
    .bind(reservation.status.as_str())
    .bind(reservation.expires_at.map(ms))
    .bind(
        reservation
            .guest
            .as_ref()
            .map(|g| serde_json::to_string(g).unwrap_or_default()),
    )
    .bind(&reservation.notes)
    .bind(ms(reservation.created_at))
    .bind(ms(reservation.updated_at))
    .execute(&mut **tx)
    .await
    .map_err(internal)?;
    if let Some(h) = token_hash {
        sqlx::query("INSERT INTO tokens (hash, restaurant_id, reservation_id) VALUES (?, ?, ?)")
            .bind(h)
            .bind(&rid)
            .bind(reservation.id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(internal)?;
    }
    touched.push(reservation.date);
    let versions = bump_dates(tx, &rid, touched).await?;
    Ok(InsertOutcome::Won {
        reservation,
        versions,
    })
}

/// One conditional status change inside the writer's transaction.
async fn transition_in(
    tx: &mut Transaction<'_, Sqlite>,
    t: Transition,
) -> StoreResult<TransitionOutcome> {
    let now = ms(t.now);
    let row = sqlx::query(
        "UPDATE reservations SET status = ?3,
           expires_ms = CASE WHEN ?3 = 'held' THEN expires_ms ELSE NULL END,
           guest = COALESCE(?4, guest), notes = COALESCE(?5, notes),
           end_ms = COALESCE(?6, end_ms), updated_ms = ?7
         WHERE id = ?1 AND status = ?2 AND (status <> 'held' OR expires_ms > ?7)
         RETURNING *",
    )
    .bind(t.id.to_string())
    .bind(t.from.as_str())
    .bind(t.to.as_str())
    .bind(
        t.guest
            .as_ref()
            .map(|g| serde_json::to_string(g).unwrap_or_default()),
    )
    .bind(t.notes.as_deref())
    .bind(t.end.map(ms))
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .map_err(internal)?;
    let Some(row) = row else {
        let cur = sqlx::query("SELECT * FROM reservations WHERE id = ?")
            .bind(t.id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(internal)?;
        return Ok(TransitionOutcome::Conflict(
            cur.as_ref().map(row_to_reservation).transpose()?,
        ));
    };
    let reservation = row_to_reservation(&row)?;
    let versions = bump_dates(
        tx,
        &reservation.restaurant_id.to_string(),
        [reservation.date],
    )
    .await?;
    Ok(TransitionOutcome::Done {
        reservation,
        versions,
    })
}

impl SqliteStore {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let memory = url.contains(":memory:");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        // An in-memory database lives in one connection, so it reads through the writer.
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.read_only(true))
                .await?
        };
        let jobs = batch::spawn(writer.clone());
        Ok(Self {
            writer,
            reader,
            jobs,
        })
    }

    async fn batch(&self, job: batch::Job) -> StoreResult<()> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Internal("writer stopped".into()))
    }

    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(internal)
    }

    /// Whether every candidate table holds a live reservation over `[start, end)` in the last
    /// committed state (a hold past `expires_at` is free).
    async fn all_taken(
        &self,
        rid: &str,
        candidates: &[TableId],
        start: i64,
        end: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let q = format!(
            "SELECT DISTINCT table_id FROM reservations
             WHERE restaurant_id = ? AND start_ms > ? AND start_ms < ? AND end_ms > ?
               AND end_ms > start_ms AND status IN {OCCUPYING_SQL}
               AND (status <> 'held' OR expires_ms > ?)"
        );
        let busy: Vec<String> = sqlx::query_scalar(&q)
            .bind(rid)
            .bind(start - MAX_SPAN_MS)
            .bind(end)
            .bind(start)
            .bind(now)
            .fetch_all(&self.reader)
            .await
            .map_err(internal)?;
        Ok(candidates
            .iter()
            .all(|t| busy.iter().any(|b| b == t.as_str())))
    }

    async fn revision(tx: &mut Transaction<'_, Sqlite>, rid: &str) -> StoreResult<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT revision FROM restaurants WHERE id = ?")
            .bind(rid)
            .fetch_optional(&mut **tx)
            .await
            .map_err(internal)?;
        Ok(v.map(|v| v as u64))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn create_restaurant(
        &self,
        r: &Restaurant,
        staff_token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let id = r.id.to_string();
        sqlx::query(
            "INSERT INTO restaurants (id, name, doc, revision, wide_version, created_ms)
             VALUES (?, ?, ?, 1, 1, ?)",
        )
        .bind(&id)
        .bind(&r.name)
        .bind(to_doc(r)?)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        sqlx::query("INSERT INTO tokens (hash, restaurant_id) VALUES (?, ?)")
            .bind(staff_token_hash)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn list_restaurants(&self) -> StoreResult<Vec<RestaurantSummary>> {
        let rows = sqlx::query("SELECT doc FROM restaurants ORDER BY created_ms, id")
            .fetch_all(&self.reader)
            .await
            .map_err(internal)?;
        rows.iter()
            .map(|row| {
                let doc: String = row.try_get("doc").map_err(internal)?;
                let r: Restaurant =
                    serde_json::from_str(&doc).map_err(|_| corrupt("restaurant"))?;
                Ok(RestaurantSummary {
                    id: r.id,
                    name: r.name,
                    timezone: r.timezone.name().to_owned(),
                })
            })
            .collect()
    }

    async fn restaurant(&self, id: Uuid) -> StoreResult<Option<StoredRestaurant>> {
        let row = sqlx::query("SELECT doc, revision FROM restaurants WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(internal)?;
        row.map(|row| {
            let doc: String = row.try_get("doc").map_err(internal)?;
            let revision: i64 = row.try_get("revision").map_err(internal)?;
            Ok(StoredRestaurant {
                restaurant: serde_json::from_str(&doc).map_err(|_| corrupt("restaurant"))?,
                revision: revision as u64,
            })
        })
        .transpose()
    }

    async fn replace_restaurant(
        &self,
        r: &Restaurant,
        expected_revision: u64,
        guard: Guard,
        now: DateTime<Utc>,
    ) -> StoreResult<ReplaceOutcome> {
        let mut tx = self.begin_write().await?;
        let rid = r.id.to_string();
        if Self::revision(&mut tx, &rid).await? != Some(expected_revision) {
            return Ok(ReplaceOutcome::Stale);
        }
        let live = format!(
            "SELECT COUNT(*) FROM reservations WHERE restaurant_id = ?1 AND end_ms > ?2
               AND status IN {OCCUPYING_SQL} AND (status <> 'held' OR expires_ms > ?2)"
        );
        let blocked: i64 = match &guard {
            Guard::None => 0,
            Guard::NoLiveFuture { table, now } => {
                let q = format!("{live} AND (?3 IS NULL OR table_id = ?3)");
                sqlx::query_scalar(&q)
                    .bind(&rid)
                    .bind(ms(*now))
                    .bind(table.as_ref().map(|t| t.as_str().to_owned()))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(internal)?
            }
            Guard::PartiesWithin {
                table,
                min,
                max,
                now,
            } => {
                let q =
                    format!("{live} AND table_id = ?3 AND (party_size < ?4 OR party_size > ?5)");
                sqlx::query_scalar(&q)
                    .bind(&rid)
                    .bind(ms(*now))
                    .bind(table.as_str())
                    .bind(i64::from(*min))
                    .bind(i64::from(*max))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(internal)?
            }
        };
        if blocked > 0 {
            return Ok(ReplaceOutcome::Blocked);
        }
        let wide: i64 = sqlx::query_scalar(
            "UPDATE restaurants SET doc = ?2, name = ?3, revision = revision + 1,
               wide_version = MAX(wide_version,
                 (SELECT COALESCE(MAX(version), 0) FROM day_versions WHERE restaurant_id = ?1)) + 1
             WHERE id = ?1 RETURNING wide_version",
        )
        .bind(&rid)
        .bind(to_doc(r)?)
        .bind(&r.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
        let _ = now;
        tx.commit().await.map_err(internal)?;
        Ok(ReplaceOutcome::Done(Versions {
            dates: Vec::new(),
            wide: Some(wide as u64),
        }))
    }

    async fn day(&self, restaurant_id: Uuid, date: LocalDate) -> StoreResult<DayView> {
        // One read transaction: WAL gives it a single snapshot for version and rows.
        let mut tx = self.reader.begin().await.map_err(internal)?;
        let rid = restaurant_id.to_string();
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(r.wide_version, COALESCE(d.version, 0)) FROM restaurants r
             LEFT JOIN day_versions d ON d.restaurant_id = r.id AND d.date = ?2
             WHERE r.id = ?1",
        )
        .bind(&rid)
        .bind(date.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        let rows = sqlx::query(
            "SELECT * FROM reservations WHERE restaurant_id = ? AND date IN (?, ?)
             ORDER BY start_ms, table_id",
        )
        .bind(&rid)
        .bind(date.pred().to_string())
        .bind(date.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(DayView {
            version: version.unwrap_or(0) as u64,
            reservations: rows
                .iter()
                .map(row_to_reservation)
                .collect::<StoreResult<_>>()?,
        })
    }

    async fn reservations_on(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let rows = sqlx::query(
            "SELECT * FROM reservations WHERE restaurant_id = ? AND date = ?
             ORDER BY start_ms, table_id",
        )
        .bind(restaurant_id.to_string())
        .bind(date.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(internal)?;
        rows.iter().map(row_to_reservation).collect()
    }

    async fn reservation(&self, id: Uuid) -> StoreResult<Option<Reservation>> {
        let row = sqlx::query("SELECT * FROM reservations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(internal)?;
        row.as_ref().map(row_to_reservation).transpose()
    }

    async fn insert_reservation(&self, new: NewReservation) -> StoreResult<InsertOutcome> {
        let rid = new.reservation.restaurant_id.to_string();
        let (start, end) = (ms(new.reservation.start), ms(new.reservation.end));
        // A hold never waits on another: when a committed snapshot already shows every
        // candidate taken, the loser is answered from a reader without queueing for the writer.
        if self
            .all_taken(&rid, &new.candidates, start, end, ms(new.now))
            .await?
        {
            return Ok(InsertOutcome::Lost);
        }
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Insert(new, reply)).await?;
        answer
            .await
            .map_err(|_| StoreError::Internal("writer stopped".into()))?
    }

    async fn transition(&self, t: Transition) -> StoreResult<TransitionOutcome> {
        let (reply, answer) = oneshot::channel();
        self.batch(batch::Job::Transition(t, reply)).await?;
        answer
            .await
            .map_err(|_| StoreError::Internal("writer stopped".into()))?
    }

    async fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<(Reservation, Versions)>> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "UPDATE reservations SET status = 'expired', updated_ms = ?1
             WHERE id IN (SELECT id FROM reservations WHERE status = 'held' AND expires_ms <= ?1
                          ORDER BY expires_ms LIMIT ?2)
             RETURNING *",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
        let mut out = Vec::new();
        for row in &rows {
            let r = row_to_reservation(row)?;
            let v = bump_dates(&mut tx, &r.restaurant_id.to_string(), [r.date]).await?;
            out.push((r, v));
        }
        tx.commit().await.map_err(internal)?;
        Ok(out)
    }

    async fn token_owner(&self, hash: &str) -> StoreResult<Option<TokenOwner>> {
        let row = sqlx::query("SELECT restaurant_id, reservation_id FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(internal)?;
        row.map(|row| {
            let rid: String = row.try_get("restaurant_id").map_err(internal)?;
            let res: Option<String> = row.try_get("reservation_id").map_err(internal)?;
            let restaurant_id = Uuid::parse_str(&rid).map_err(|_| corrupt("token"))?;
            Ok(match res {
                None => TokenOwner::Staff { restaurant_id },
                Some(r) => TokenOwner::Reservation {
                    restaurant_id,
                    reservation_id: Uuid::parse_str(&r).map_err(|_| corrupt("token"))?,
                },
            })
        })
        .transpose()
    }

    async fn idem_begin(
        &self,
        key: &str,
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdemBegin> {
        let mut tx = self.begin_write().await?;
        let now = ms(now);
        let row = sqlx::query(
            "SELECT fingerprint, state, status, body, created_ms FROM idempotency WHERE key = ?",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(internal)?;
        if let Some(row) = row {
            let created: i64 = row.try_get("created_ms").map_err(internal)?;
            let state: String = row.try_get("state").map_err(internal)?;
            let fp: String = row.try_get("fingerprint").map_err(internal)?;
            let expired = now - created > IDEM_TTL_MS;
            let abandoned = state == "in_flight" && now - created > IDEM_STALE_MS;
            if !expired && !abandoned {
                if fp != fingerprint {
                    return Ok(IdemBegin::Mismatch);
                }
                if state == "in_flight" {
                    return Ok(IdemBegin::InFlight);
                }
                let status: i64 = row.try_get("status").map_err(internal)?;
                let body: String = row.try_get("body").map_err(internal)?;
                return Ok(IdemBegin::Replay {
                    status: status as u16,
                    body,
                });
            }
        }
        sqlx::query(
            "INSERT INTO idempotency (key, fingerprint, state, created_ms) VALUES (?1, ?2, 'in_flight', ?3)
             ON CONFLICT (key) DO UPDATE SET fingerprint = ?2, state = 'in_flight', status = NULL,
               body = NULL, created_ms = ?3",
        )
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        Ok(IdemBegin::Fresh)
    }

    async fn idem_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        sqlx::query("UPDATE idempotency SET state = 'done', status = ?, body = ? WHERE key = ?")
            .bind(i64::from(status))
            .bind(body)
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(internal)?;
        Ok(())
    }

    async fn idem_abort(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency WHERE key = ? AND state = 'in_flight'")
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(internal)?;
        Ok(())
    }
}
