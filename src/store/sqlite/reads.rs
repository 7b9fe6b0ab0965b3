//! The day view and reservation lookups, from the readers. A day's rows are read on the reader
//! connection's own handle (`raw.rs`): through sqlx each row would be a message from the
//! connection's thread and a wake-up of the task, which for a busy date's thousand rows cost
//! more than the query.
use super::raw::{Script, Value};
use super::rows::{db, reservation_columns, row_to_reservation, RawRow, SHOWN_SQL};
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{DayView, StoreError, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// A date's version and the day before's, each the restaurant-wide floor or the date's own,
/// whichever is higher: one row, none without the restaurant. Parameters: ?1 restaurant, ?2 the
/// day before, ?3 the date. On its own it checks a cached view: while both versions are those
/// the view was read at, the view is unchanged (every write to a row it shows raises the
/// version of each date the row spans), and it takes a fraction of the day statement's prepare.
const VERSIONS_SQL: &str = "SELECT MAX(o.wide_version, COALESCE(d.version, 0)) AS version,
            MAX(o.wide_version, COALESCE(p.version, 0)) AS pred_version
     FROM restaurants AS o
     LEFT JOIN day_versions AS d ON d.restaurant_id = o.id AND d.date = ?3
     LEFT JOIN day_versions AS p ON p.restaurant_id = o.id AND p.date = ?2
     WHERE o.id = ?1";

/// A day view in one statement (one snapshot): the two versions (`VERSIONS_SQL`) on every row,
/// then the reservations of the date and the day before, all but released and expired holds,
/// which occupy nothing and which no view lists (the floor does list cancelled ones); a day
/// without reservations is one row of the versions alone. The predicate keeps the read on the
/// partial index of what is shown, whatever the history. Same parameters.
pub(super) fn day_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT v.version, v.pred_version, {} FROM ({VERSIONS_SQL}) AS v
         LEFT JOIN reservations AS x ON x.restaurant_id = ?1 AND x.date IN (?2, ?3)
           AND x.{SHOWN_SQL}
         ORDER BY x.start_ms, x.table_id",
            reservation_columns("x")
        )
    })
}

/// The two versions at the head of the first row (of `VERSIONS_SQL` or `day_sql`); `None`
/// without the restaurant.
fn versions(rows: &[Vec<Value>]) -> StoreResult<Option<(i64, i64)>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    match (first.first(), first.get(1)) {
        (Some(Value::Int(v)), Some(Value::Int(p))) => Ok(Some((*v, *p))),
        other => Err(StoreError::corrupt(
            "read a day's versions",
            format!("the versions are {other:?}"),
        )),
    }
}

/// A day view as last read, with the day before's version it was read at.
pub(super) struct CachedDay {
    pred_version: i64,
    view: Arc<DayView>,
}

/// The last view read of each restaurant date, so that a read of an unchanged date sends only
/// its versions. Bounded by the reservations it holds: past `MAX_CACHED` it starts over.
#[derive(Default)]
pub(super) struct Days {
    views: HashMap<(Uuid, LocalDate), CachedDay>,
    reservations: usize,
    /// Raised by every `clear`: a view read before the clear (its snapshot may still show the
    /// rows retention deleted) is not kept after it.
    generation: u64,
    /// Whole-day reads offered to the cache (a test's count of what was not a hit).
    #[cfg(test)]
    offered: usize,
}

const MAX_CACHED: usize = 100_000;

impl Days {
    /// The cached view of `key` with its versions, and the generation it was found in.
    fn get(&self, key: &(Uuid, LocalDate)) -> (Option<(i64, i64, Arc<DayView>)>, u64) {
        let view = self
            .views
            .get(key)
            .map(|c| (c.view.version as i64, c.pred_version, Arc::clone(&c.view)));
        (view, self.generation)
    }

    /// Keeps `view`, read in `generation`, unless the cache was cleared since.
    fn put(
        &mut self,
        key: (Uuid, LocalDate),
        pred_version: i64,
        view: Arc<DayView>,
        generation: u64,
    ) {
        #[cfg(test)]
        {
            self.offered += 1;
        }
        if generation != self.generation {
            return;
        }
        if self.reservations + view.reservations.len() > MAX_CACHED {
            self.views.clear();
            self.reservations = 0;
        }
        self.reservations += view.reservations.len();
        if let Some(old) = self.views.insert(key, CachedDay { pred_version, view }) {
            self.reservations -= old.view.reservations.len();
        }
    }

    /// Forgets every view (rows were deleted without a version: retention).
    pub(super) fn clear(&mut self) {
        self.views.clear();
        self.reservations = 0;
        self.generation += 1;
    }
}

/// Every reservation of a date, whatever its status (the staff list). ?1 restaurant, ?2 date.
fn date_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {} FROM reservations AS x WHERE x.restaurant_id = ?1 AND x.date = ?2
             ORDER BY x.start_ms, x.table_id",
            reservation_columns("x")
        )
    })
}

/// A view at `version`, which on SQLite is one part.
fn view_at(version: u64, reservations: Vec<Reservation>) -> DayView {
    DayView {
        version,
        parts: vec![(String::new(), version)],
        reservations,
    }
}

impl SqliteStore {
    /// Runs the one-statement `sql` on a reader's own handle; its rows.
    async fn read_raw(
        &self,
        context: &'static str,
        sql: &str,
        values: &[Value],
    ) -> StoreResult<Vec<Vec<Value>>> {
        self.read_raw_with(context, |run| run(sql, values)).await
    }

    /// Lends `reads` a way to run one-statement SQL on a reader's own handle, the same
    /// connection for every statement it runs. No transaction spans them: each statement is a
    /// snapshot of its own (`day_` relies on versions that never go down, not on one snapshot).
    async fn read_raw_with<T>(
        &self,
        context: &'static str,
        reads: impl FnOnce(
            &mut dyn FnMut(&str, &[Value]) -> StoreResult<Vec<Vec<Value>>>,
        ) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.reader.acquire().await.map_err(db(context))?;
        let mut handle = conn.lock_handle().await.map_err(db(context))?;
        let db = handle.as_raw_handle();
        let mut run = |sql: &str, values: &[Value]| {
            // SAFETY: the handle is held until after `reads` returns, and the script is dropped
            // at the end of this statement.
            unsafe { Script::prepare(db, sql) }
                .and_then(|mut script| script.run(values))
                .map_err(|e| StoreError::internal(context, e))
        };
        let out = reads(&mut run);
        drop(handle);
        out
    }

    pub(super) async fn day_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Arc<DayView>> {
        const READ: &str = "read a day";
        let key = (restaurant_id, date);
        let (cached, generation) = self.days.lock().expect("days").get(&key);
        let values = [
            restaurant_id.to_string().into(),
            date.pred().to_string().into(),
            date.to_string().into(),
        ];
        // The cached view while its versions are the date's, or every row.
        enum Read {
            Cached(Arc<DayView>),
            Rows(Vec<Vec<Value>>),
        }
        let read = self
            .read_raw_with(READ, |run| {
                if let Some((v, p, view)) = cached {
                    if versions(&run(VERSIONS_SQL, &values)?)? == Some((v, p)) {
                        return Ok(Read::Cached(view));
                    }
                }
                run(day_sql(), &values).map(Read::Rows)
            })
            .await?;
        let rows = match read {
            Read::Cached(view) => return Ok(view),
            Read::Rows(rows) => rows,
        };
        let Some((version, pred_version)) = versions(&rows)? else {
            // No such restaurant.
            return Ok(Arc::new(view_at(0, Vec::new())));
        };
        let mut reservations = Vec::with_capacity(rows.len());
        for row in &rows {
            // The left join's row of a day without reservations has no id.
            if !matches!(row.get(2), None | Some(Value::Null)) {
                reservations.push(row_to_reservation(&RawRow { values: row, at: 2 })?);
            }
        }
        let view = Arc::new(view_at(version as u64, reservations));
        self.days
            .lock()
            .expect("days")
            .put(key, pred_version, Arc::clone(&view), generation);
        Ok(view)
    }

    pub(super) async fn reservations_on_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let values = [restaurant_id.to_string().into(), date.to_string().into()];
        let rows = self
            .read_raw("list reservations of a date", date_sql(), &values)
            .await?;
        rows.iter()
            .map(|row| row_to_reservation(&RawRow { values: row, at: 0 }))
            .collect()
    }

    pub(super) async fn reservation_(&self, id: Uuid) -> StoreResult<Option<Reservation>> {
        let row = sqlx::query("SELECT * FROM reservations WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(db("read reservation"))?;
        row.as_ref().map(row_to_reservation).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reservation::Status;
    use crate::domain::restaurant::tests::paris;
    use crate::domain::{Restaurant, Seating, TableId, WallTime};
    use crate::store::{InsertOutcome, NewReservation, Store};
    use chrono::{DateTime, Utc};

    /// The virtual machine steps of one run of `sql` (the versions alone, or the whole day)
    /// and the rows it returned.
    async fn steps(store: &SqliteStore, sql: &str, rid: Uuid, date: LocalDate) -> (usize, i64) {
        let mut conn = store.reader.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        // SAFETY: the handle is held until the script is dropped, at the end of this function.
        let mut script = unsafe { Script::prepare(handle.as_raw_handle(), sql) }.unwrap();
        let values = [
            rid.to_string().into(),
            date.pred().to_string().into(),
            date.to_string().into(),
        ];
        let rows = script.run(&values).unwrap();
        (rows.len(), script.vm_steps())
    }

    /// Holds table `t` from 19:00 UTC to 20:30 on `date`.
    async fn hold(store: &SqliteStore, r: &Restaurant, date: LocalDate, t: usize) {
        let now: DateTime<Utc> = Utc::now();
        let table = TableId::parse(&format!("t{t}")).unwrap();
        let start = date.naive().and_hms_opt(19, 0, 0).unwrap().and_utc();
        let reservation = Reservation {
            id: Uuid::new_v4(),
            restaurant_id: r.id,
            table_id: table.clone(),
            table_ids: vec![table.clone()],
            combination_id: None,
            date,
            time: WallTime::from_minutes(19 * 60),
            start,
            end: start + chrono::Duration::minutes(90),
            party_size: 2,
            status: Status::Held,
            expires_at: Some(now + chrono::Duration::seconds(300)),
            guest: None,
            notes: String::new(),
            created_at: now,
            updated_at: now,
        };
        let new = NewReservation {
            reservation,
            candidates: vec![Seating::single(&table)],
            pacing: None,
            restaurant_revision: 1,
            token_hash: None,
            now,
            cap: None,
            idem: None,
        };
        let won = store.insert_reservation(new).await.unwrap();
        assert!(matches!(won, InsertOutcome::Won { .. }), "{won:?}");
    }

    #[tokio::test]
    async fn an_unchanged_date_is_answered_from_its_versions_whatever_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/days.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        let mut r = paris();
        r.tables = (0..60)
            .map(|i| {
                let mut t = r.tables[1].clone();
                t.id = TableId::parse(&format!("t{i}")).unwrap();
                t.label = format!("T{i}");
                t
            })
            .collect();
        r.validate().unwrap();
        store
            .create_restaurant(&r, "staff", Utc::now())
            .await
            .unwrap();
        let date = LocalDate::from_naive(Utc::now().date_naive() + chrono::Days::new(3));
        for t in 0..5 {
            hold(&store, &r, date, t).await;
        }
        let offered = || store.days.lock().unwrap().offered;
        let first = store.day_(r.id, date).await.unwrap();
        assert_eq!(first.reservations.len(), 5);
        assert_eq!(offered(), 1);
        // Unchanged: the cached view itself, and no read of the day.
        assert!(Arc::ptr_eq(&first, &store.day_(r.id, date).await.unwrap()));
        assert_eq!(offered(), 1);
        let (few, few_versions) = steps(&store, VERSIONS_SQL, r.id, date).await;
        let (_, few_day) = steps(&store, day_sql(), r.id, date).await;
        for t in 5..60 {
            hold(&store, &r, date, t).await;
        }
        // Changed: a read of every row.
        let again = store.day_(r.id, date).await.unwrap();
        assert_eq!(again.reservations.len(), 60);
        assert!(again.version > first.version);
        assert_eq!(offered(), 2);
        assert!(Arc::ptr_eq(&again, &store.day_(r.id, date).await.unwrap()));
        assert_eq!(offered(), 2);
        let (many, many_versions) = steps(&store, VERSIONS_SQL, r.id, date).await;
        let (_, many_day) = steps(&store, day_sql(), r.id, date).await;
        // One row: the restaurant's floor with the date's version (the day before has none).
        assert_eq!((few, many), (1, 1));
        assert!(
            many_day > few_day + 55,
            "a day read visits each row: {few_day} → {many_day}"
        );
        assert_eq!(
            many_versions, few_versions,
            "the versions cost the same whatever the date holds"
        );
    }

    #[test]
    fn a_view_read_before_a_clear_is_not_kept() {
        let key = (Uuid::new_v4(), LocalDate::parse("2026-12-05").unwrap());
        let view = |v: u64| Arc::new(view_at(v, Vec::new()));
        let mut days = Days::default();
        let (none, before) = days.get(&key);
        assert!(none.is_none());
        days.put(key, 3, view(7), before);
        let (kept, same) = days.get(&key);
        assert_eq!(kept.map(|(v, p, _)| (v, p)), Some((7, 3)));
        assert_eq!(same, before);
        // Retention clears while a read taken before it is under way: its view is not kept.
        days.clear();
        let (gone, after) = days.get(&key);
        assert!(gone.is_none());
        assert_ne!(after, before);
        days.put(key, 3, view(7), before);
        assert!(days.get(&key).0.is_none(), "a view from before the clear");
        days.put(key, 3, view(8), after);
        assert_eq!(days.get(&key).0.map(|(v, _, _)| v), Some(8));
    }
}
