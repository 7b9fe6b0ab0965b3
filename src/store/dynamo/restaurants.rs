//! Restaurants: creation, the listing, and settings changes guarded by revision and by a short
//! fence on the restaurant and on each of its tables (see [`super::fence`]).
use super::errors::UNKNOWN_RESENDS;
use super::errors::{unknown_outcome, write, Written};
use super::fence::Unfence;
use super::items::*;
use super::keys::*;
use super::DynamoStore;
use crate::domain::{LocalDate, Reservation, Restaurant, TableId};
use crate::store::{
    Guard, ReplaceOutcome, RestaurantSummary, StoreError, StoreResult, StoredRestaurant,
    TokenOwner, Versions,
};
use chrono::{DateTime, Duration, Utc};

/// How long a guarded settings change may hold new holds off while it checks reservations.
const FENCE_MS: i64 = 5_000;

/// Whether `r` stops the change `guard` describes (as the SQLite store decides it).
pub fn blocks(guard: &Guard, r: &Reservation) -> bool {
    let live = |now: DateTime<Utc>| r.occupies_at(now) && r.end > now;
    // One ended at its start (a no-show) takes no table, but keeps its local date and time.
    let takes_table = r.start < r.end;
    match guard {
        Guard::None => false,
        // A reservation on a combination is on each of its member tables.
        Guard::NoLiveFuture { table, now } => {
            live(*now) && table.as_ref().is_none_or(|t| takes_table && r.uses(t))
        }
        // Only a reservation on the table alone must fit the table's party range.
        Guard::PartiesWithin {
            table,
            min,
            max,
            now,
        } => {
            live(*now)
                && takes_table
                && r.combination_id.is_none()
                && *table == r.table_id
                && !(*min..=*max).contains(&r.party_size)
        }
    }
}

/// The ids of a restaurant's tables.
fn table_ids(r: &Restaurant) -> Vec<TableId> {
    r.tables.iter().map(|t| t.id.clone()).collect()
}

impl DynamoStore {
    pub(super) async fn create_restaurant_(
        &self,
        r: &Restaurant,
        staff_token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let created_ms = now.timestamp_millis();
        let item = RestaurantItem {
            stored: StoredRestaurant {
                restaurant: r.clone(),
                revision: 1,
            },
            wide: 1,
            created_ms,
            fence_until_ms: None,
        };
        let staff = TokenOwner::Staff {
            restaurant_id: r.id,
        };
        let items = vec![
            self.put(restaurant_item(&item)?, Some("attribute_not_exists(#pk)"))?,
            self.put(directory_item(r, created_ms), None)?,
            self.put(
                token_item(staff_token_hash, &staff, None),
                Some("attribute_not_exists(#pk)"),
            )?,
        ];
        let (mut last, mut created) = (None, false);
        for _ in 0..=UNKNOWN_RESENDS {
            match self.transact(items.clone()).await? {
                Written::Done(()) => {
                    created = true;
                    break;
                }
                Written::Unknown(e) => {
                    last = Some(e);
                    if let Some(got) = self.restaurant_item(r.id).await? {
                        if got.created_ms == created_ms {
                            created = true;
                            break;
                        }
                    }
                }
                Written::Condition | Written::Canceled(_) => {
                    return Err(StoreError::Internal(
                        format!("restaurant {} or its staff token already exists", r.id).into(),
                    ))
                }
            }
        }
        if !created {
            return Err(unknown_outcome(
                "creating the restaurant had an unknown outcome",
                last,
            ));
        }
        // Its tables' own items, at revision 1 (a table without one is settled by its first hold).
        self.create_tables(r.id, &table_ids(r), 1).await;
        Ok(())
    }

    pub(super) async fn list_restaurants_(&self) -> StoreResult<Vec<RestaurantSummary>> {
        self.query_range(DIRECTORY_PK, "0", "9~")
            .await?
            .iter()
            .map(directory_from)
            .collect()
    }

    pub(super) async fn replace_restaurant_(
        &self,
        r: &Restaurant,
        expected: u64,
        guard: Guard,
        now: DateTime<Utc>,
    ) -> StoreResult<ReplaceOutcome> {
        let Some(cur) = self.restaurant_item(r.id).await? else {
            return Ok(ReplaceOutcome::Stale);
        };
        if cur.stored.revision != expected {
            return Ok(ReplaceOutcome::Stale);
        }
        // Every change takes the restaurant's fence, then fences every table it may touch:
        // holds check only their own table (see `fence`).
        let until = Utc::now().timestamp_millis() + FENCE_MS;
        if !self.take_fence(r, expected, until).await? {
            return Ok(ReplaceOutcome::Stale);
        }
        let mut tables = table_ids(&cur.stored.restaurant);
        tables.extend(table_ids(r));
        tables.sort();
        tables.dedup();
        let lift = |tables: Vec<TableId>| async move {
            let lifted: Vec<_> = tables.into_iter().map(|t| (t, Unfence::Lift)).collect();
            self.unfence_tables(r.id, &lifted, until).await;
            self.lift_fence(r, until).await
        };
        match self.fence_tables(r.id, &tables, expected, until).await {
            Ok(true) => {}
            Ok(false) => {
                lift(tables).await?;
                return Ok(ReplaceOutcome::Stale);
            }
            Err(e) => {
                lift(tables).await?;
                return Err(e);
            }
        }
        // Holds that checked a table before its fence have committed (DynamoDB refuses the
        // fence while a transaction holds the item); later ones fail their check.
        let mut blocked = false;
        if guard != Guard::None {
            let from = LocalDate::from_naive((now - Duration::days(2)).date_naive());
            let future = match self.untorn(r.id, &date_prefix(from), "D#~").await {
                Ok(items) => items.reservations,
                Err(e) => {
                    lift(tables).await?;
                    return Err(e);
                }
            };
            blocked = future.iter().any(|s| blocks(&guard, &s.reservation));
        }
        if blocked || Utc::now().timestamp_millis() + 500 > until {
            lift(tables).await?;
            return Ok(if blocked {
                ReplaceOutcome::Blocked
            } else {
                ReplaceOutcome::Stale
            });
        }
        let out = self.commit_settings(r, &cur, until).await;
        match &out {
            Ok(ReplaceOutcome::Done(_)) => {
                let next = cur.stored.revision + 1;
                let kept = table_ids(r);
                let after: Vec<_> = tables
                    .into_iter()
                    .map(|t| {
                        let how = if kept.contains(&t) {
                            Unfence::At(next)
                        } else {
                            Unfence::Delete
                        };
                        (t, how)
                    })
                    .collect();
                self.unfence_tables(r.id, &after, until).await;
            }
            Ok(_) => lift(tables).await?,
            // Unknown: left fenced; the next hold of each table settles it.
            Err(_) => {}
        }
        out
    }

    async fn take_fence(&self, r: &Restaurant, expected: u64, until: i64) -> StoreResult<bool> {
        let k = key(restaurant_pk(r.id), META_SK);
        let mut e = Expr::default();
        let (f, rev) = (e.name("fence_until"), e.name("rev"));
        let expr = format!("SET {f} = {}", e.value(n(until)));
        let cond = format!(
            "{rev} = {} AND (attribute_not_exists({f}) OR {f} < {})",
            e.value(n(expected)),
            e.value(n(Utc::now().timestamp_millis()))
        );
        let mut last = None;
        for _ in 0..=UNKNOWN_RESENDS {
            let w = write(|| self.conditional_update(k.clone(), &expr, &cond, &e).send()).await?;
            match w {
                Written::Done(_) => return Ok(true),
                Written::Condition | Written::Canceled(_) => return Ok(false),
                Written::Unknown(why) => match self.restaurant_item(r.id).await? {
                    Some(c) if c.fence_until_ms == Some(until) => return Ok(true),
                    Some(c) if c.stored.revision == expected => last = Some(why),
                    _ => return Ok(false),
                },
            }
        }
        Err(unknown_outcome("cannot fence the restaurant", last))
    }

    async fn lift_fence(&self, r: &Restaurant, until: i64) -> StoreResult<()> {
        let k = key(restaurant_pk(r.id), META_SK);
        let mut e = Expr::default();
        let f = e.name("fence_until");
        let expr = format!("REMOVE {f}");
        let cond = format!("{f} = {}", e.value(n(until)));
        // Not lifted (unknown outcome, or taken over): it lapses by itself within FENCE_MS.
        let _ = write(|| self.conditional_update(k.clone(), &expr, &cond, &e).send()).await?;
        Ok(())
    }

    /// Writes the new settings with the next revision and a raised restaurant-wide version, on
    /// the change's own fence.
    async fn commit_settings(
        &self,
        r: &Restaurant,
        cur: &RestaurantItem,
        until: i64,
    ) -> StoreResult<ReplaceOutcome> {
        let next = RestaurantItem {
            stored: StoredRestaurant {
                restaurant: r.clone(),
                revision: cur.stored.revision + 1,
            },
            wide: cur.wide + 1,
            created_ms: cur.created_ms,
            fence_until_ms: None,
        };
        let mut e = Expr::default();
        let rev = e.name("rev");
        let f = e.name("fence_until");
        let cond = format!(
            "{rev} = {} AND {f} = {}",
            e.value(n(cur.stored.revision)),
            e.value(n(until))
        );
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.table)
            .set_item(Some(restaurant_item(&next)?))
            .condition_expression(cond)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(super::io::build_err)?;
        let items = vec![
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
            self.put(directory_item(r, cur.created_ms), None)?,
        ];
        let done = ReplaceOutcome::Done(Versions {
            dates: Vec::new(),
            wide: Some(next.wide * WIDE_STEP),
            steps: Vec::new(),
        });
        let mut last = None;
        for _ in 0..=UNKNOWN_RESENDS {
            match self.transact(items.clone()).await? {
                Written::Done(()) => return Ok(done),
                Written::Canceled(_) | Written::Condition => return Ok(ReplaceOutcome::Stale),
                Written::Unknown(why) => match self.restaurant_item(r.id).await? {
                    Some(c)
                        if c.stored.revision == next.stored.revision
                            && c.stored.restaurant == *r =>
                    {
                        return Ok(done)
                    }
                    Some(c) if c.stored.revision == cur.stored.revision => last = Some(why),
                    _ => return Ok(ReplaceOutcome::Stale),
                },
            }
        }
        Err(unknown_outcome(
            "changing the restaurant had an unknown outcome",
            last,
        ))
    }
}
