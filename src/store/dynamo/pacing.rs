//! Pacing windows: one item per restaurant, date and window through which the paced holds of
//! that window decide one at a time.
//!
//! The item `P#{rid}`/`{date}#{start}#{end}` carries a version `v` and one attribute
//! `h{reservation id}` = `{expires_ms:016}{party}` (a hold's expiry, or [`NEVER`] for anything
//! else) per reservation written into the window that the day's `Query` may not show yet. A
//! paced hold reads the item first, then the day (strongly consistent, untorn), and counts:
//!
//! - the reservations of the day whose date is the hold's and whose local `time` lies in the
//!   window and that count at `now` (a hold only until its `expires_at`), and
//! - the entries of the item whose reservation the day did not show, while unexpired.
//!
//! If one more party fits, the hold `Put`s the item in its own `TransactWriteItems`, conditional
//! on the version it read (or on its absence): it keeps the unexpired entries the day did not
//! show, drops the others (the day carries them, or they lapsed), adds its own and raises the
//! version. Of concurrent holds into one window exactly one write per version commits; the
//! others read again and decide on the new count, so the window never passes its limits.
//! Anything that changes the count without a hold's decision raises the version too, in its own
//! transaction: a walk-in adds its entry (never refused), a release or cancel removes the
//! reservation's entry. An expired hold stops counting at its `expires_at` by the arithmetic
//! above, with no write and no sweeper.
//!
//! A hold that left out a hold it saw expired (held, `expires_at` passed, not yet swept) marks
//! it lapsed in the item (`x{id}` = its expiry), so an instance whose clock runs a little behind
//! cannot confirm that hold into the count afterwards: a confirm of a paced hold checks that
//! its window does not mark it lapsed, as its minutes are checked against a taker. Marks older
//! than [`LAPSE_KEPT_MS`] are dropped by the next hold. That confirm also raises the version:
//! a hold that read the window before it, and counted the hold as expired, must not commit
//! after it on the version it read (two parties where one fits).
//!
//! Reading the item before the day is what makes the count exact: a reservation committed
//! before the item was read has its entry there or is shown by the day (an item once visible to
//! a strongly consistent read stays so), and one committed after it raised the version, so the
//! hold's condition fails. Reservations written while the restaurant was not paced have no
//! entry; the day shows them.
use super::cells::NEVER;
use super::items::opt_n;
use super::keys::*;
use super::DynamoStore;
use crate::domain::pacing::{PaceCount, Window};
use crate::domain::reservation::Status;
use crate::domain::{LocalDate, Reservation};
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

const VERSION: &str = "v";
/// How long a window keeps the mark of a hold it counted as expired: far above the clock skew
/// between instances, far below a hold's life.
pub const LAPSE_KEPT_MS: i64 = 60_000;
/// A window item is kept this long after the end of the last reservation written into it.
const WINDOW_TTL_AFTER_S: i64 = 7 * 86_400;

/// One reservation counted by a window item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// A hold's `expires_at`, or [`NEVER`].
    pub expires_ms: i64,
    pub party: u32,
}

/// A window item as read: `version` is `None` when it does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowItem {
    pub version: Option<u64>,
    pub entries: BTreeMap<Uuid, Entry>,
    /// Holds a decision counted as expired, with their expiry.
    pub lapsed: BTreeMap<Uuid, i64>,
    pub ttl: Option<i64>,
}

pub fn entry_attr(id: Uuid) -> String {
    format!("h{}", id.simple())
}

pub fn lapsed_attr(id: Uuid) -> String {
    format!("x{}", id.simple())
}

pub fn entry_of(r: &Reservation) -> Entry {
    let expires_ms = match (r.status, r.expires_at) {
        (Status::Held, Some(e)) => e.timestamp_millis(),
        _ => NEVER,
    };
    Entry {
        expires_ms,
        party: r.party_size,
    }
}

fn entry_value(e: &Entry) -> String {
    format!("{:016}{}", e.expires_ms, e.party)
}

fn parse_entry(v: &str) -> Option<Entry> {
    let (x, p) = (v.get(..16)?, v.get(16..)?);
    Some(Entry {
        expires_ms: x.parse().ok()?,
        party: p.parse().ok()?,
    })
}

fn ttl_of(r: &Reservation) -> i64 {
    r.end.timestamp() + WINDOW_TTL_AFTER_S
}

pub fn window_from(item: Option<&Item>) -> StoreResult<WindowItem> {
    let Some(item) = item else {
        return Ok(WindowItem::default());
    };
    let (mut entries, mut lapsed) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in item {
        let bad =
            || StoreError::corrupt("pacing entry", format!("attribute `{k}` is not an entry"));
        if let Some(hex) = k.strip_prefix('h') {
            let id = Uuid::try_parse(hex).map_err(|_| bad())?;
            let entry = match v {
                AttributeValue::S(v) => parse_entry(v).ok_or_else(bad)?,
                _ => return Err(bad()),
            };
            entries.insert(id, entry);
        } else if let Some(hex) = k.strip_prefix('x') {
            let id = Uuid::try_parse(hex).map_err(|_| bad())?;
            let at = match v {
                AttributeValue::N(v) => v.parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            lapsed.insert(id, at);
        }
    }
    Ok(WindowItem {
        version: Some(opt_n(item, VERSION)?.unwrap_or(0)),
        entries,
        lapsed,
        ttl: opt_n(item, TTL)?,
    })
}

/// What a paced hold decides with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// The window's count at `now`.
    pub count: PaceCount,
    /// The entries its write keeps: unexpired, and not shown by the day.
    pub kept: BTreeMap<Uuid, Entry>,
    /// The holds it counted as expired (recent ones), marked lapsed by its write.
    pub lapsed: BTreeMap<Uuid, i64>,
}

/// The count of `window` on `date` at `now`, from the window item and the day read after it.
pub fn tally(
    item: &WindowItem,
    day: &[Reservation],
    date: LocalDate,
    window: &Window,
    now: DateTime<Utc>,
) -> Tally {
    let seen: HashSet<Uuid> = day.iter().map(|r| r.id).collect();
    let mut count = PaceCount::default();
    for r in day
        .iter()
        .filter(|r| r.date == date && window.contains(r.time) && r.occupies_at(now))
    {
        count.add(r.party_size);
    }
    let now_ms = now.timestamp_millis();
    let kept: BTreeMap<Uuid, Entry> = item
        .entries
        .iter()
        .filter(|(id, e)| !seen.contains(id) && e.expires_ms > now_ms)
        .map(|(id, e)| (*id, *e))
        .collect();
    for e in kept.values() {
        count.add(e.party);
    }
    // Holds left out as expired, by the day or by their entry, still recent enough to matter.
    let recent = |at: i64| at <= now_ms && at > now_ms - LAPSE_KEPT_MS;
    let expired_in_day = day.iter().filter_map(|r| {
        let at = r.expires_at?.timestamp_millis();
        (r.status == Status::Held && r.date == date && window.contains(r.time) && recent(at))
            .then_some((r.id, at))
    });
    let expired_entries = item
        .entries
        .iter()
        .filter(|(id, e)| !seen.contains(id) && recent(e.expires_ms))
        .map(|(id, e)| (*id, e.expires_ms));
    let lapsed = item
        .lapsed
        .iter()
        .map(|(id, at)| (*id, *at))
        .filter(|(_, at)| recent(*at))
        .chain(expired_in_day)
        .chain(expired_entries)
        .collect();
    Tally {
        count,
        kept,
        lapsed,
    }
}

/// How a reservation is written into its window.
#[derive(Debug, Clone, Copy)]
pub enum WindowWrite<'a> {
    /// A paced hold: the whole item, conditional on the version read.
    Decide {
        read: &'a WindowItem,
        tally: &'a Tally,
    },
    /// A walk-in: counted, never refused.
    Count,
}

impl DynamoStore {
    pub(super) async fn window_item(
        &self,
        rid: Uuid,
        date: LocalDate,
        window: &Window,
    ) -> StoreResult<WindowItem> {
        let item = self.get(window_key(rid, date, window)).await?;
        window_from(item.as_ref())
    }

    /// The write that counts `r` in `window`.
    pub(super) fn window_write(
        &self,
        r: &Reservation,
        window: &Window,
        how: WindowWrite<'_>,
    ) -> StoreResult<TransactWriteItem> {
        let (pk, sk) = window_key(r.restaurant_id, r.date, window);
        let mine = entry_value(&entry_of(r));
        match how {
            WindowWrite::Decide { read, tally } => {
                let mut item = key(pk, sk);
                item.insert(VERSION.into(), n(read.version.map_or(1, |v| v + 1)));
                item.insert(TTL.into(), n(read.ttl.unwrap_or(0).max(ttl_of(r))));
                for (id, e) in &tally.kept {
                    item.insert(entry_attr(*id), s(entry_value(e)));
                }
                for (id, at) in &tally.lapsed {
                    item.insert(lapsed_attr(*id), n(at));
                }
                item.insert(entry_attr(r.id), s(mine));
                let mut e = Expr::default();
                let cond = match read.version {
                    None => format!("attribute_not_exists({})", e.name(PK)),
                    Some(v) => format!("{} = {}", e.name(VERSION), e.value(n(v))),
                };
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(cond)
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(super::io::build_err)?;
                Ok(TransactWriteItem::builder().put(put).build())
            }
            WindowWrite::Count => {
                let mut e = Expr::default();
                let ttl = e.name(TTL);
                let expr = format!(
                    "SET {a} = {v}, {ttl} = if_not_exists({ttl}, {t}) ADD {ver} {one}",
                    a = e.name(&entry_attr(r.id)),
                    v = e.value(s(mine)),
                    t = e.value(n(ttl_of(r))),
                    ver = e.name(VERSION),
                    one = e.value(n(1)),
                );
                self.update((pk, sk), &expr, None, &e)
            }
        }
    }

    /// The confirm of a paced hold: on condition that no decision of its window counted it as
    /// expired, it raises the window's version. A hold that read the window before this commit
    /// and counted the confirmed hold as expired (its `now` past the hold's expiry, this
    /// confirm's just before it) then fails its version condition and decides again on a
    /// fresh read, which shows the booking; a hold that wrote first marked it lapsed, and this
    /// condition fails. Either way exactly one of the two counts in the window.
    pub(super) fn window_confirm(
        &self,
        r: &Reservation,
        window_sk: &str,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let ttl = e.name(TTL);
        let expr = format!(
            "SET {ttl} = if_not_exists({ttl}, {t}) ADD {ver} {one}",
            t = e.value(n(ttl_of(r))),
            ver = e.name(VERSION),
            one = e.value(n(1)),
        );
        let cond = format!("attribute_not_exists({})", e.name(&lapsed_attr(r.id)));
        self.update(
            (window_pk(r.restaurant_id), window_sk.to_owned()),
            &expr,
            Some(&cond),
            &e,
        )
    }

    /// Takes a reservation out of the window item it was counted in (a release or a cancel),
    /// raising the version so no hold decides on a count read before it.
    pub(super) fn window_remove(
        &self,
        r: &Reservation,
        window_sk: &str,
    ) -> StoreResult<TransactWriteItem> {
        let mut e = Expr::default();
        let ttl = e.name(TTL);
        let expr = format!(
            "REMOVE {a} SET {ttl} = if_not_exists({ttl}, {t}) ADD {ver} {one}",
            a = e.name(&entry_attr(r.id)),
            t = e.value(n(ttl_of(r))),
            ver = e.name(VERSION),
            one = e.value(n(1)),
        );
        self.update(
            (window_pk(r.restaurant_id), window_sk.to_owned()),
            &expr,
            None,
            &e,
        )
    }
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;
