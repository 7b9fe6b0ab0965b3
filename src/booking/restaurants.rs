use super::*;
use crate::domain::restaurant::{validate_area, validate_table, HoursPeriod, TurnRule};
use crate::domain::Table;
use crate::domain::{Combination, Pacing, TableId};
use crate::store::{Guard, ReplaceOutcome};
use chrono_tz::Tz;

/// The members of a restaurant that `PATCH` may replace.
#[derive(Debug, Clone, Default)]
pub struct RestaurantPatch {
    pub name: Option<String>,
    pub timezone: Option<Tz>,
    pub slot_minutes: Option<u32>,
    pub hold_seconds: Option<u32>,
    pub offer_seconds: Option<u32>,
    pub booking_horizon_days: Option<u32>,
    pub turn_minutes: Option<Vec<TurnRule>>,
    pub hours: Option<Vec<HoursPeriod>>,
    pub closed_dates: Option<Vec<LocalDate>>,
    /// Replaces every combination.
    pub combinations: Option<Vec<Combination>>,
    /// `Some(None)`: pacing off.
    pub pacing: Option<Option<Pacing>>,
}

/// How long a settings change keeps starting new attempts while other changes of the
/// restaurant go first (an attempt under way runs to its end).
const CHANGE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a settings change waits for the offers of what it freed before it answers.
const OFFERS_BEFORE_ANSWER: std::time::Duration = std::time::Duration::from_secs(2);

/// The ids of `r`'s combinations in the order they were given, before validation sorts them.
fn combination_order(r: &Restaurant) -> Vec<TableId> {
    r.combinations.iter().map(|c| c.id.clone()).collect()
}

impl Booking {
    /// Creates a restaurant; returns it with its staff token (shown only now).
    #[tracing::instrument(name = "booking.create_restaurant", skip_all, fields(restaurant = %r.id))]
    pub async fn create_restaurant(
        &self,
        mut r: Restaurant,
    ) -> BookingResult<(Restaurant, String)> {
        let order = combination_order(&r);
        let mut errs = r.validate().err().unwrap_or_default();
        if errs.iter().all(|e| e.field != "name") {
            errs.extend(r.name_errors());
        }
        errs.extend(r.area_errors());
        errs.extend(self.claimable(&r, &order, &errs));
        if !errs.is_empty() {
            return Err(BookingError::Validation(errs));
        }
        let token = crate::token::generate();
        self.store
            .create_restaurant(&r, &crate::token::hash(&token), Self::now())
            .await?;
        Ok((r, token))
    }

    /// The settings the store could not book: a combination whose tables, held for the longest
    /// turn of a party it seats, need more than the store's one atomic write holds (DynamoDB:
    /// 100 items). Left in, it would be listed by availability and never held. Each is named by
    /// its place in the request (`order`: validation sorted them by id); combinations and turns
    /// already refused (`errs`) are not measured.
    fn claimable(
        &self,
        r: &Restaurant,
        order: &[TableId],
        errs: &[crate::domain::FieldError],
    ) -> Vec<crate::domain::FieldError> {
        // A field refused itself, or any part of it (`turn_minutes[1].minutes`).
        let refused = |field: &str| {
            errs.iter().any(|e| {
                e.field
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
            })
        };
        if refused("turn_minutes") || errs.iter().any(|e| e.field == "combinations") {
            return Vec::new();
        }
        r.combinations
            .iter()
            .filter_map(|c| {
                let i = order.iter().position(|id| id == &c.id)?;
                if refused(&format!("combinations[{i}]")) {
                    return None;
                }
                let limit = self.store.longest_claim_minutes(c.tables.len())?;
                let turn = (c.min_party..=c.max_party)
                    .filter_map(|p| crate::domain::PartySize::new(i64::from(p)).ok())
                    .map(|p| r.turn(p).num_minutes())
                    .max()?;
                (turn > i64::from(limit)).then(|| {
                    crate::domain::FieldError::new(
                        format!("combinations[{i}]"),
                        format!(
                            "its {} tables can be held together for at most {limit} minutes on \
                             this store (one DynamoDB transaction), and a party it seats takes \
                             {turn}: use fewer tables or a shorter turn",
                            c.tables.len()
                        ),
                    )
                })
            })
            .collect()
    }

    pub async fn list_restaurants(&self) -> BookingResult<Vec<crate::store::RestaurantSummary>> {
        Ok(self.store.list_restaurants().await?)
    }

    /// Applies a change to a freshly read restaurant and writes it if the guard still holds.
    async fn change_restaurant<F>(
        &self,
        id: Uuid,
        conflict: &str,
        mut change: F,
    ) -> BookingResult<Restaurant>
    where
        F: FnMut(&mut Restaurant) -> BookingResult<Guard>,
    {
        let started = std::time::Instant::now();
        for attempt in 0.. {
            if attempt > 0 {
                // Another change holds the restaurant (on DynamoDB a change fences it while it
                // writes) or moved its revision: wait a little, jittered, then read it again,
                // as long as the budget lasts. Retrying at once, eight times within a few
                // milliseconds, refused most of eight staff edits made together.
                let cap = 20u64 << attempt.min(4);
                let pause = std::time::Duration::from_millis(rand::Rng::gen_range(
                    &mut rand::thread_rng(),
                    5..=cap,
                ));
                if started.elapsed() + pause >= CHANGE_BUDGET {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
            let stored = self.load(id).await?;
            let before = stored.restaurant.clone();
            let mut r = stored.restaurant;
            let guard = change(&mut r)?;
            let order = combination_order(&r);
            let mut errs = r.validate().err().unwrap_or_default();
            if r.name != before.name && errs.iter().all(|e| e.field != "name") {
                errs.extend(r.name_errors());
            }
            // Only a change of what a claim's size depends on is measured: a restaurant whose
            // combinations were refused later (made before the check) still takes its other
            // changes.
            if r.combinations != before.combinations || r.turn_minutes != before.turn_minutes {
                errs.extend(self.claimable(&r, &order, &errs));
            }
            if !errs.is_empty() {
                return Err(BookingError::Validation(errs));
            }
            let now = Self::now();
            match self
                .store
                .replace_restaurant(&r, stored.revision, guard, now)
                .await?
            {
                ReplaceOutcome::Done(v) => {
                    // Settings and tables: every view is recomputed from a fresh read.
                    self.publish(id, Cause::Changed, now, v, None);
                    // New hours, turns, tables, combinations or pacing may free capacity: it is
                    // offered before the change is answered (waited for at most
                    // `OFFERS_BEFORE_ANSWER`), so a client acting on the answer does not find
                    // it free while an entry is owed it.
                    let offers = self.offer_settings_change(before, r.clone());
                    if tokio::time::timeout(OFFERS_BEFORE_ANSWER, offers)
                        .await
                        .is_err()
                    {
                        tracing::warn!(
                            "the offers of a settings change are taking over \
                             {OFFERS_BEFORE_ANSWER:?}; the change is answered first"
                        );
                    }
                    return Ok(r);
                }
                ReplaceOutcome::Blocked => return Err(BookingError::Conflict(conflict.to_owned())),
                ReplaceOutcome::Stale => continue,
            }
        }
        Err(BookingError::Conflict(
            "the restaurant is being changed concurrently; try again".into(),
        ))
    }

    #[tracing::instrument(name = "booking.patch_restaurant", skip_all, fields(restaurant = %id))]
    pub async fn patch_restaurant(
        &self,
        id: Uuid,
        patch: RestaurantPatch,
    ) -> BookingResult<Restaurant> {
        self.change_restaurant(
            id,
            "the timezone cannot change while live future reservations exist",
            |r| {
                let p = patch.clone();
                let tz_changes = p.timezone.is_some_and(|tz| tz != r.timezone);
                if let Some(v) = p.name {
                    r.name = v;
                }
                if let Some(v) = p.timezone {
                    r.timezone = v;
                }
                if let Some(v) = p.slot_minutes {
                    r.slot_minutes = v;
                }
                if let Some(v) = p.hold_seconds {
                    r.hold_seconds = v;
                }
                if let Some(v) = p.offer_seconds {
                    r.offer_seconds = v;
                }
                if let Some(v) = p.booking_horizon_days {
                    r.booking_horizon_days = v;
                }
                if let Some(v) = p.turn_minutes {
                    r.turn_minutes = v;
                }
                if let Some(v) = p.hours {
                    r.hours = v;
                }
                if let Some(v) = p.closed_dates {
                    r.closed_dates = v;
                }
                if let Some(v) = p.combinations {
                    r.combinations = v;
                }
                if let Some(v) = p.pacing {
                    r.pacing = v;
                }
                Ok(if tz_changes {
                    Guard::NoLiveFuture {
                        table: None,
                        now: Self::now(),
                    }
                } else {
                    Guard::None
                })
            },
        )
        .await
    }

    /// Creates or replaces a table. Returns it and whether it was created.
    #[tracing::instrument(name = "booking.put_table", skip_all, fields(restaurant = %id, table = %table.id))]
    pub async fn put_table(&self, id: Uuid, table: Table) -> BookingResult<(Table, bool)> {
        validate_table(&table)
            .and_then(|()| validate_area(&table))
            .map_err(BookingError::from)?;
        let mut created = false;
        self.change_restaurant(
            id,
            "a live future reservation on this table does not fit the new party sizes",
            |r| {
                let t = table.clone();
                let guard = match r.tables.iter_mut().find(|x| x.id == t.id) {
                    Some(existing) => {
                        created = false;
                        *existing = t.clone();
                        Guard::PartiesWithin {
                            table: t.id.clone(),
                            min: t.min_party,
                            max: t.max_party,
                            now: Self::now(),
                        }
                    }
                    None => {
                        created = true;
                        r.tables.push(t);
                        Guard::None
                    }
                };
                Ok(guard)
            },
        )
        .await?;
        Ok((table, created))
    }

    #[tracing::instrument(name = "booking.delete_table", skip(self), fields(restaurant = %id))]
    pub async fn delete_table(&self, id: Uuid, table: &TableId) -> BookingResult<()> {
        self.change_restaurant(id, "the table has live future reservations", |r| {
            let before = r.tables.len();
            r.tables.retain(|t| &t.id != table);
            if r.tables.len() == before {
                return Err(BookingError::NotFound("table"));
            }
            if let Some(c) = r.combinations.iter().find(|c| c.tables.contains(table)) {
                return Err(BookingError::Conflict(format!(
                    "the combination `{}` names this table; change the combinations first",
                    c.id
                )));
            }
            Ok(Guard::NoLiveFuture {
                table: Some(table.clone()),
                now: Self::now(),
            })
        })
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::{Change, Publish};
    use crate::domain::restaurant::tests::paris;
    use crate::metrics::Metrics;
    use std::sync::Arc;

    struct Nobody;
    impl Publish for Nobody {
        fn publish(&self, _: Change) {}
    }

    /// A name stored before its rules (a zero-width space alone) leaves the restaurant
    /// changeable; a new name must follow them.
    #[tokio::test]
    async fn a_name_from_before_its_rules_does_not_stop_other_changes_but_a_new_one_follows_them() {
        let store: crate::store::DynStore = Arc::new(
            crate::store::sqlite::SqliteStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let b = Booking::new(store.clone(), Arc::new(Nobody), Metrics::new());
        let old = Restaurant {
            name: "\u{200B}".into(),
            ..paris()
        };
        store
            .create_restaurant(&old, "staff", chrono::Utc::now())
            .await
            .unwrap();
        let hold_seconds = RestaurantPatch {
            hold_seconds: Some(600),
            ..Default::default()
        };
        let r = b.patch_restaurant(old.id, hold_seconds).await.unwrap();
        assert_eq!((r.name.as_str(), r.hold_seconds), ("\u{200B}", 600));
        let renamed = |name: &str| RestaurantPatch {
            name: Some(name.into()),
            ..Default::default()
        };
        for bad in ["\u{FEFF}", "Chez\u{2028}Rust", "\u{202E}tsuR"] {
            let err = b.patch_restaurant(old.id, renamed(bad)).await.unwrap_err();
            assert!(
                matches!(err, BookingError::Validation(_)),
                "{bad:?}: {err:?}"
            );
        }
        let r = b.patch_restaurant(old.id, renamed("Chez Rust")).await;
        assert_eq!(r.unwrap().name, "Chez Rust");
    }
}
