//! Restaurants: creation with their staff token, the listing, and guarded settings changes.
use super::rows::{db, ms, to_doc, OCCUPYING_SQL};
use super::SqliteStore;
use crate::domain::Restaurant;
use crate::store::{
    Guard, ReplaceOutcome, RestaurantSummary, StoreError, StoreResult, StoredRestaurant, Versions,
};
use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

impl SqliteStore {
    /// This instance's parsed copy of the restaurant's settings, if it has one.
    pub(super) fn parsed(&self, id: Uuid) -> Option<std::sync::Arc<StoredRestaurant>> {
        self.parsed
            .lock()
            .expect("parsed restaurants")
            .get(&id)
            .cloned()
    }

    /// Keeps `stored` as this instance's copy unless it has a newer one: a slower read of an
    /// older revision never replaces a newer one.
    fn remember(&self, id: Uuid, stored: std::sync::Arc<StoredRestaurant>) {
        let mut all = self.parsed.lock().expect("parsed restaurants");
        if all.get(&id).is_none_or(|k| k.revision < stored.revision) {
            all.insert(id, stored);
        }
    }

    pub(super) async fn revision(
        tx: &mut Transaction<'_, Sqlite>,
        rid: &str,
    ) -> StoreResult<Option<u64>> {
        let v: Option<i64> = sqlx::query_scalar("SELECT revision FROM restaurants WHERE id = ?")
            .bind(rid)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db("read restaurant revision"))?;
        Ok(v.map(|v| v as u64))
    }

    pub(super) async fn create_restaurant_(
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
        .map_err(db("insert restaurant"))?;
        sqlx::query("INSERT INTO tokens (hash, restaurant_id) VALUES (?, ?)")
            .bind(staff_token_hash)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db("insert staff token"))?;
        tx.commit().await.map_err(db("commit new restaurant"))
    }

    pub(super) async fn list_restaurants_(&self) -> StoreResult<Vec<RestaurantSummary>> {
        let rows = sqlx::query("SELECT doc FROM restaurants ORDER BY created_ms, id")
            .fetch_all(&self.reader)
            .await
            .map_err(db("list restaurants"))?;
        rows.iter()
            .map(|row| {
                let doc: String = row.try_get("doc").map_err(db("list restaurants"))?;
                let r: Restaurant =
                    serde_json::from_str(&doc).map_err(|e| StoreError::corrupt("restaurant", e))?;
                Ok(RestaurantSummary {
                    id: r.id,
                    name: r.name,
                    timezone: r.timezone.name().to_owned(),
                })
            })
            .collect()
    }

    /// The restaurant as last committed. Its settings document is parsed once per revision: the
    /// read asks for the document only when the revision differs from the parsed one kept here
    /// (another instance over the same file may have changed it), so a read of an unchanged
    /// restaurant is one small row.
    pub(super) async fn restaurant_(&self, id: Uuid) -> StoreResult<Option<StoredRestaurant>> {
        let known = self.parsed(id);
        let row: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT revision, CASE WHEN revision IS ?2 THEN NULL ELSE doc END
             FROM restaurants WHERE id = ?1",
        )
        .bind(id.to_string())
        .bind(known.as_ref().map(|k| k.revision as i64))
        .fetch_optional(&self.reader)
        .await
        .map_err(db("read restaurant"))?;
        let Some((revision, doc)) = row else {
            return Ok(None);
        };
        let stored = match (doc, known) {
            (None, Some(known)) if known.revision == revision as u64 => known,
            (None, _) => {
                return Err(StoreError::corrupt(
                    "restaurant",
                    "a row without its document",
                ))
            }
            (Some(doc), _) => {
                let parsed = std::sync::Arc::new(StoredRestaurant {
                    restaurant: serde_json::from_str(&doc)
                        .map_err(|e| StoreError::corrupt("restaurant", e))?,
                    revision: revision as u64,
                });
                self.remember(id, parsed.clone());
                parsed
            }
        };
        Ok(Some(StoredRestaurant::clone(&stored)))
    }

    pub(super) async fn replace_restaurant_(
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
        let blocked: i64 = match &guard {
            Guard::None => 0,
            Guard::NoLiveFuture { table, now } => sqlx::query_scalar(&live_on_table_sql())
                .bind(&rid)
                .bind(ms(*now))
                .bind(earliest_live_date(*now))
                .bind(table.as_ref().map(|t| t.as_str().to_owned()))
                .fetch_one(&mut *tx)
                .await
                .map_err(db("check live reservations of a table"))?,
            Guard::PartiesWithin {
                table,
                min,
                max,
                now,
            } => sqlx::query_scalar(&parties_on_table_sql())
                .bind(&rid)
                .bind(ms(*now))
                .bind(earliest_live_date(*now))
                .bind(table.as_str())
                .bind(i64::from(*min))
                .bind(i64::from(*max))
                .fetch_one(&mut *tx)
                .await
                .map_err(db("check parties on a table"))?,
        };
        if blocked > 0 {
            return Ok(ReplaceOutcome::Blocked);
        }
        let wide: i64 = sqlx::query_scalar(
            "UPDATE restaurants SET doc = ?2, name = ?3, revision = revision + 1,
               wide_version = MAX(wide_version, COALESCE((SELECT version FROM day_versions
                 WHERE restaurant_id = ?1 ORDER BY version DESC LIMIT 1), 0)) + 1
             WHERE id = ?1 RETURNING wide_version",
        )
        .bind(&rid)
        .bind(to_doc(r)?)
        .bind(&r.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("write restaurant settings"))?;
        let _ = now;
        tx.commit()
            .await
            .map_err(db("commit restaurant settings"))?;
        // This instance's copy follows its own change at once (another instance's change is
        // caught by the revision: see `restaurant_for_insert`).
        self.remember(
            r.id,
            std::sync::Arc::new(StoredRestaurant {
                restaurant: r.clone(),
                revision: expected_revision + 1,
            }),
        );
        Ok(ReplaceOutcome::Done(Versions {
            dates: Vec::new(),
            wide: Some(wide as u64),
            steps: Vec::new(),
        }))
    }
}

/// The live (occupying, a hold only until it expires) reservations of restaurant ?1 that end
/// after ?2, read from `reservations_pacing` from date ?3 on (`earliest_live_date`), so a
/// settings guard never reads a past date's history.
fn live_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM reservations WHERE restaurant_id = ?1 AND date >= ?3
           AND end_ms > ?2 AND status IN {OCCUPYING_SQL}
           AND (status <> 'held' OR expires_ms > ?2)"
    )
}

/// The settings guard of a table's removal (or, ?4 null, of every table: a change of time
/// zone): its live reservations, a combination's included (it is on every member table). One
/// ended at its start (a no-show) takes no table, but keeps its local date and time.
pub(super) fn live_on_table_sql() -> String {
    format!(
        "{} AND (?4 IS NULL OR end_ms > start_ms AND (table_id = ?4 OR EXISTS
           (SELECT 1 FROM json_each(COALESCE(table_ids, '[]')) WHERE value = ?4)))",
        live_sql()
    )
}

/// The settings guard of a table's party range: its live single-table reservations of a party
/// outside [?5, ?6].
pub(super) fn parties_on_table_sql() -> String {
    format!(
        "{} AND end_ms > start_ms AND table_id = ?4 AND combination_id IS NULL
           AND (party_size < ?5 OR party_size > ?6)",
        live_sql()
    )
}

/// No reservation that ends after `now` starts on an earlier local date than this: it lasts at
/// most 12 hours, so it starts after `now` − 12 h, whose local date in any time zone (UTC−12 to
/// UTC+14) is on or after the UTC date of `now` − 2 days.
fn earliest_live_date(now: DateTime<Utc>) -> String {
    (now - chrono::Duration::days(2))
        .date_naive()
        .format("%Y-%m-%d")
        .to_string()
}
