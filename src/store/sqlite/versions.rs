//! Versions of a restaurant/date, raised in the transaction of every change.
use super::rows::db;
use crate::domain::LocalDate;
use crate::store::{StoreResult, Versions};
use sqlx::{Sqlite, Transaction};

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
    .map_err(db("raise date version"))?;
    Ok(v as u64)
}

pub(super) async fn bump_dates(
    tx: &mut Transaction<'_, Sqlite>,
    rid: &str,
    dates: impl IntoIterator<Item = LocalDate>,
) -> StoreResult<Versions> {
    let mut ds: Vec<LocalDate> = dates.into_iter().collect();
    ds.sort();
    ds.dedup();
    let mut out = Versions::default();
    for d in ds {
        let v = bump_day(tx, rid, d).await?;
        out.dates.push((d, v));
        // The date read `max(version, wide)` just before this statement and `v` after it, in
        // this one transaction: its one part moved by exactly one.
        out.steps.push(crate::store::Step {
            date: d,
            part: String::new(),
            from: v - 1,
            to: v,
        });
    }
    Ok(out)
}

/// Adds the dates of `more`, raised later in the same transaction, to `v` (the later version
/// of a date wins; a date raised twice moved by two in this one commit, from the first step's
/// `from` to the second's `to`).
pub(super) fn merge(v: &mut Versions, more: Versions) {
    for (d, n) in more.dates {
        match v.dates.iter_mut().find(|(x, _)| *x == d) {
            Some(slot) => slot.1 = slot.1.max(n),
            None => v.dates.push((d, n)),
        }
    }
    v.dates.sort();
    for s in more.steps {
        match v
            .steps
            .iter_mut()
            .find(|x| x.date == s.date && x.part == s.part)
        {
            Some(x) => {
                x.from = x.from.min(s.from);
                x.to = x.to.max(s.to);
            }
            None => v.steps.push(s),
        }
    }
}
