//! The day view and reservation lookups, from the readers. A day's rows are read on the reader
//! connection's own handle (`raw.rs`): through sqlx each row would be a message from the
//! connection's thread and a wake-up of the task, which for a busy date's thousand rows cost
//! more than the query.
use super::raw::{Script, Value};
use super::rows::{db, reservation_columns, row_to_reservation, RawRow, OCCUPYING_SQL, SHOWN_SQL};
use super::SqliteStore;
use crate::domain::{LocalDate, Reservation};
use crate::store::{DayView, Step, StoreError, StoreResult};
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
/// then the live reservations of the date and the day before (those that occupy a table);
/// released, expired and cancelled ones occupy nothing and are never read here (the floor reads
/// a date's cancelled ones apart: `cancelled_sql`). A day without reservations is one row of
/// the versions alone. The predicate keeps the read on the partial index of live reservations
/// (`reservations_pacing`), whatever the history. Same parameters.
pub(super) fn day_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT v.version, v.pred_version, {} FROM ({VERSIONS_SQL}) AS v
         LEFT JOIN reservations AS x ON x.restaurant_id = ?1 AND x.date IN (?2, ?3)
           AND x.status IN {OCCUPYING_SQL}
         ORDER BY x.start_ms, x.table_id",
            reservation_columns("x")
        )
    })
}

/// The cancelled reservations of a date, for the floor: searched in the partial index of what
/// is shown (the date's live and business records), never among its dead holds. ?1 restaurant,
/// ?2 date.
pub(super) fn cancelled_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {} FROM reservations AS x WHERE x.restaurant_id = ?1 AND x.date = ?2
               AND x.{SHOWN_SQL} AND x.status = 'cancelled'
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
    /// The writer's last commits, oldest first (`absorb`): a view read while they were made
    /// catches up with them when it is kept.
    recent: std::collections::VecDeque<(Reservation, Vec<Step>)>,
    /// Whole-day reads offered to the cache (a test's count of what was not a hit).
    #[cfg(test)]
    offered: usize,
}

const MAX_CACHED: usize = 100_000;
/// The writer's commits kept for views still being read: a read takes milliseconds, the
/// writer commits a few thousand holds a second at most.
const RECENT: usize = 1024;

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
        // A read that began before the writer took a commit into the cached view ends with an
        // older snapshot than the view: the view stays (versions never go down).
        if self
            .views
            .get(&key)
            .is_some_and(|c| c.view.version >= view.version && c.pred_version >= pred_version)
        {
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
        // The writer's commits since the read's snapshot, as far as they follow on from it.
        self.catch_up(key);
    }

    /// Takes the writer's commits, in the order they were made (each a reservation as it left
    /// it and the exact steps it made to its dates' versions), into the views they follow on
    /// from: a view whose date (or day before) a commit stepped from exactly the version the
    /// view holds gets the reservation and the new version, and is then where a read after the
    /// commit would put it. The last commits are kept (`RECENT`), so that a view read while
    /// they were made takes them when it is kept (`put`). A view a commit does not follow on
    /// from stays as it is: the versions check of its next read tells it is behind, and the
    /// day is read again.
    pub(super) fn absorb(&mut self, commits: Vec<(Reservation, Vec<Step>)>) {
        let mut keys = Vec::new();
        for c in commits {
            let rid = c.0.restaurant_id;
            keys.extend(
                c.1.iter()
                    .flat_map(|s| [(rid, s.date), (rid, s.date.succ())]),
            );
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(c);
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            self.catch_up(key);
        }
    }

    /// Applies to the view of `key` every kept commit that follows on from it. One pass is
    /// enough: they are kept in the order they were committed, so each comes after every commit
    /// it follows on from.
    fn catch_up(&mut self, key: (Uuid, LocalDate)) {
        let (rid, date) = key;
        let Some(cached) = self.views.get_mut(&key) else {
            return;
        };
        let before = cached.view.reservations.len();
        for (r, steps) in self.recent.iter().filter(|(r, _)| r.restaurant_id == rid) {
            let own = steps.iter().find(|s| s.date == date);
            let pred = steps.iter().find(|s| s.date == date.pred());
            let fits = (own.is_some() || pred.is_some())
                && own.is_none_or(|s| cached.view.version == s.from)
                && pred.is_none_or(|s| cached.pred_version as u64 == s.from);
            if !fits {
                continue;
            }
            let view = Arc::make_mut(&mut cached.view);
            if r.date == date || r.date == date.pred() {
                crate::store::place_in_day(&mut view.reservations, r);
            }
            if let Some(s) = own {
                view.version = s.to;
                view.parts = vec![(String::new(), s.to)];
            }
            if let Some(s) = pred {
                cached.pred_version = s.to as i64;
            }
        }
        self.reservations = self.reservations + cached.view.reservations.len() - before;
    }

    /// Forgets every view (rows were deleted without a version: retention).
    pub(super) fn clear(&mut self) {
        self.views.clear();
        self.recent.clear();
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
             ORDER BY x.start_ms, x.table_id, x.created_ms, x.id",
            reservation_columns("x")
        )
    })
}

/// The parameters of `VERSIONS_SQL` and `day_sql`: ?1 restaurant, ?2 the day before, ?3 the
/// date.
fn day_params(restaurant_id: Uuid, date: LocalDate) -> [Value; 3] {
    [
        restaurant_id.to_string().into(),
        date.pred().to_string().into(),
        date.to_string().into(),
    ]
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
        let values = day_params(restaurant_id, date);
        // The cached view while its versions are the date's, or every row.
        enum Read {
            Cached(Arc<DayView>),
            Rows(Vec<Vec<Value>>),
        }
        let (read, generation) = self
            .read_raw_with(READ, |run| {
                // Looked up once a reader is ours: a request that queued for one compares the
                // view as it is now, which the writer may have brought up to date meanwhile.
                let (cached, generation) = self.days.lock().expect("days").get(&key);
                if let Some((v, p, view)) = cached {
                    if versions(&run(VERSIONS_SQL, &values)?)? == Some((v, p)) {
                        return Ok((Read::Cached(view), generation));
                    }
                }
                run(day_sql(), &values).map(|rows| (Read::Rows(rows), generation))
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
        let what = "list reservations of a date";
        self.reservations_of_date(what, date_sql(), restaurant_id, date)
            .await
    }

    pub(super) async fn day_version_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<u64> {
        let values = day_params(restaurant_id, date);
        let rows = self
            .read_raw("read a day's version", VERSIONS_SQL, &values)
            .await?;
        Ok(versions(&rows)?.map_or(0, |(v, _)| v as u64))
    }

    pub(super) async fn cancelled_on_(
        &self,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let what = "read a date's cancelled reservations";
        self.reservations_of_date(what, cancelled_sql(), restaurant_id, date)
            .await
    }

    /// The reservations `sql` reads of one restaurant (?1) and date (?2), in its order.
    async fn reservations_of_date(
        &self,
        context: &'static str,
        sql: &str,
        restaurant_id: Uuid,
        date: LocalDate,
    ) -> StoreResult<Vec<Reservation>> {
        let values = [restaurant_id.to_string().into(), date.to_string().into()];
        let rows = self.read_raw(context, sql, &values).await?;
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
    use crate::store::{InsertOutcome, NewReservation, Store, Transition, TransitionOutcome};
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
    async fn hold(store: &SqliteStore, r: &Restaurant, date: LocalDate, t: usize) -> Uuid {
        hold_at(store, r, date, t, 19 * 60).await
    }

    /// Holds table `t` from `minutes` past midnight UTC on `date`, for 90 minutes.
    async fn hold_at(
        store: &SqliteStore,
        r: &Restaurant,
        date: LocalDate,
        t: usize,
        minutes: u16,
    ) -> Uuid {
        let now: DateTime<Utc> = Utc::now();
        let table = TableId::parse(&format!("t{t}")).unwrap();
        let reservation = held(r.id, date, t, minutes);
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
        let id = new.reservation.id;
        let won = store.insert_reservation(new).await.unwrap();
        assert!(matches!(won, InsertOutcome::Won { .. }), "{won:?}");
        id
    }

    /// A hold of table `t` of restaurant `rid` from `minutes` past midnight UTC on `date`, for
    /// 90 minutes, as a read returns it.
    fn held(rid: Uuid, date: LocalDate, t: usize, minutes: u16) -> Reservation {
        let now: DateTime<Utc> = Utc::now();
        let table = TableId::parse(&format!("t{t}")).unwrap();
        let start = date.naive().and_hms_opt(0, 0, 0).unwrap().and_utc()
            + chrono::Duration::minutes(i64::from(minutes));
        crate::store::as_stored(Reservation {
            id: Uuid::new_v4(),
            restaurant_id: rid,
            table_id: table.clone(),
            table_ids: vec![table.clone()],
            combination_id: None,
            date,
            time: WallTime::from_minutes(minutes),
            start,
            end: start + chrono::Duration::minutes(90),
            party_size: 2,
            status: Status::Held,
            expires_at: Some(now + chrono::Duration::seconds(300)),
            guest: None,
            notes: String::new(),
            created_at: now,
            updated_at: now,
        })
    }

    /// A restaurant of `n` two-seat tables `t0`…, created in `store`.
    async fn restaurant_of(store: &SqliteStore, n: usize) -> Restaurant {
        let mut r = paris();
        r.tables = (0..n)
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
        r
    }

    /// The day as a read of every row returns it, the cache set aside.
    async fn fresh(store: &SqliteStore, rid: Uuid, date: LocalDate) -> Arc<DayView> {
        store.days.lock().unwrap().clear();
        store.day_(rid, date).await.unwrap()
    }

    #[tokio::test]
    async fn an_unchanged_date_is_answered_from_its_versions_whatever_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/days.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        let r = restaurant_of(&store, 60).await;
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
        // Changed by this store's writer: the cached view took each hold, no read of the day.
        let again = store.day_(r.id, date).await.unwrap();
        assert_eq!(again.reservations.len(), 60);
        assert!(again.version > first.version);
        assert_eq!(offered(), 1);
        // Set aside, the cache is a read of every row.
        let read = fresh(&store, r.id, date).await;
        assert_eq!(offered(), 2);
        assert_eq!(read.reservations, again.reservations);
        assert_eq!(read.version, again.version);
        assert!(Arc::ptr_eq(&read, &store.day_(r.id, date).await.unwrap()));
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

    #[tokio::test]
    async fn the_writers_commits_keep_a_cached_day_as_a_read_would_find_it_and_others_force_a_read()
    {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/days.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        let r = restaurant_of(&store, 6).await;
        let date = LocalDate::from_naive(Utc::now().date_naive() + chrono::Days::new(3));
        let offered = || store.days.lock().unwrap().offered;
        let a = hold(&store, &r, date, 0).await;
        hold(&store, &r, date, 1).await;
        // Cached: the date and the next one (whose view shows the day before).
        store.day_(r.id, date).await.unwrap();
        store.day_(r.id, date.succ()).await.unwrap();
        assert_eq!(offered(), 2);
        // Holds (one across midnight, into the next date's view), a confirm and a release.
        let late = hold_at(&store, &r, date, 2, 23 * 60).await;
        hold_at(&store, &r, date, 3, 12 * 60).await;
        let now = Utc::now();
        let done = store
            .transition(Transition::new(a, Status::Held, Status::Confirmed, now))
            .await
            .unwrap();
        assert!(matches!(done, TransitionOutcome::Done { .. }), "{done:?}");
        let done = store
            .transition(Transition::new(late, Status::Held, Status::Released, now))
            .await
            .unwrap();
        assert!(matches!(done, TransitionOutcome::Done { .. }), "{done:?}");
        let cached = store.day_(r.id, date).await.unwrap();
        let next = store.day_(r.id, date.succ()).await.unwrap();
        assert_eq!(offered(), 2, "both views answered without a read");
        assert_eq!(cached.reservations.len(), 3);
        for (view, d) in [(cached, date), (next, date.succ())] {
            let read = fresh(&store, r.id, d).await;
            assert_eq!(view.reservations, read.reservations, "{d}");
            assert_eq!(
                (view.version, view.parts.clone()),
                (read.version, read.parts.clone())
            );
            store.days.lock().unwrap().clear();
        }
        // Another process on the same file (another instance): its writes are not this writer's;
        // the versions tell, and the day is read.
        store.day_(r.id, date).await.unwrap();
        let before = offered();
        let other = SqliteStore::open(&url).await.unwrap();
        hold(&other, &r, date, 4).await;
        let seen = store.day_(r.id, date).await.unwrap();
        assert_eq!(offered(), before + 1, "read after another process's write");
        assert_eq!(seen.reservations.len(), 4);
        // And this store's next hold, on a view read after it, is taken in again.
        hold(&store, &r, date, 5).await;
        assert_eq!(store.day_(r.id, date).await.unwrap().reservations.len(), 5);
        assert_eq!(offered(), before + 1);
    }

    #[test]
    fn a_view_read_while_the_writer_committed_catches_up_as_far_as_the_commits_follow_on() {
        let rid = Uuid::new_v4();
        let date = LocalDate::parse("2026-12-05").unwrap();
        let key = (rid, date);
        let step = |from: u64| {
            vec![Step {
                date,
                part: String::new(),
                from,
                to: from + 1,
            }]
        };
        let (a, b, c) = (
            held(rid, date, 0, 19 * 60),
            held(rid, date, 1, 18 * 60),
            held(rid, date, 2, 20 * 60),
        );
        let mut days = Days::default();
        let (_, generation) = days.get(&key);
        // Committed while a read at version 5 was under way: 5 → 6 (a), 6 → 7 (b).
        days.absorb(vec![(a.clone(), step(5)), (b.clone(), step(6))]);
        assert!(days.get(&key).0.is_none(), "nothing cached to take them");
        days.put(key, 0, Arc::new(view_at(5, Vec::new())), generation);
        let (kept, _) = days.get(&key);
        let (v, _, view) = kept.unwrap();
        assert_eq!(v, 7);
        // Ordered by start, as a read returns them.
        assert_eq!(view.reservations, vec![b.clone(), a.clone()]);
        assert_eq!(days.reservations, 2);
        // A read at 6 that ends now is older than the view: the view stays.
        days.put(key, 0, Arc::new(view_at(6, vec![a.clone()])), generation);
        assert_eq!(days.get(&key).0.unwrap().0, 7);
        // A commit that does not follow on (8 → 9: 7 → 8 was not the writer's to hand over)
        // leaves the view at 7, for the next read's versions to find behind.
        days.absorb(vec![(c.clone(), step(8))]);
        assert_eq!(days.get(&key).0.unwrap().0, 7);
        // The read at 8 catches up with it.
        days.put(
            key,
            0,
            Arc::new(view_at(8, vec![b.clone(), a.clone()])),
            generation,
        );
        let (v, _, view) = days.get(&key).0.unwrap();
        assert_eq!(v, 9);
        assert_eq!(view.reservations, vec![b, a, c]);
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
        // A read that ends after the view moved past it does not take its place.
        days.put(key, 3, view(7), after);
        assert_eq!(days.get(&key).0.map(|(v, _, _)| v), Some(8));
        days.put(key, 4, view(8), after);
        assert_eq!(days.get(&key).0.map(|(v, p, _)| (v, p)), Some((8, 4)));
    }
}
