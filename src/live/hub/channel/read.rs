//! How a channel keeps its day: applying each change that is the next version, reading the
//! store when one is not (and at subscribe and reconcile), counting every read.
use super::super::apply::{self, Parts};
use super::super::view::View;
use super::Channel;
use crate::domain::{Cause, Reservation, WaitlistEntry};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a change that is ahead of the channel's version waits for the ones before it (they
/// may come by another path: this instance's own commits and the bus race each other) before
/// the channel reads the store instead.
pub(super) const GAP_WAIT: Duration = Duration::from_millis(50);

/// What a read of `what` gave, or `None` (said in the log) when it failed.
fn loaded<T>(read: crate::store::StoreResult<T>, what: &str) -> Option<T> {
    read.inspect_err(|e| {
        tracing::warn!(
            error = format!("{e:#}"),
            "live channel cannot load its {what}"
        )
    })
    .ok()
}

/// What a read takes besides the day.
#[derive(Debug, Clone, Copy)]
pub(in crate::live::hub) struct Also {
    pub waitlist: bool,
    pub cancelled: bool,
}

/// How many reservations gone from the day reconcile reads again for the newest change; past
/// them (a burst of releases lost together), the change's time is inferred.
const GONE_READS: usize = 8;

/// How long those reads may take together: the channel serves nobody meanwhile.
const GONE_WITHIN: Duration = Duration::from_millis(500);

/// Why the hub reads the store (a label of `tablecast_hub_store_reads_total`).
#[derive(Debug, Clone, Copy)]
pub(in crate::live::hub) enum Why {
    Subscribe,
    Change,
    Reconcile,
    Repair,
}

impl Why {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Why::Subscribe => "subscribe",
            Why::Change => "change",
            Why::Reconcile => "reconcile",
            Why::Repair => "repair",
        }
    }
}

impl Channel {
    pub(super) fn counted(&self, kind: &str, why: Why) {
        self.hub.0.metrics.hub_store_read(kind, why.as_str());
    }

    /// The newest change between `old` and what the channel shows now, as a cause and its
    /// commit time (`view::latest_change_knowing`). The reservations gone from the day (at
    /// most [`GONE_READS`]; more, and the time is inferred without reading them) are read again,
    /// together and within [`GONE_WITHIN`], for what became of them and when: a day read leaves
    /// released, expired and cancelled ones out, and reconcile stamped such a change with the
    /// time of its read. A read that fails or is late leaves them all to the inference.
    pub(super) async fn newest_change(
        &self,
        old: &[Reservation],
        why: Why,
    ) -> Option<(Cause, DateTime<Utc>)> {
        let shown = self.shown();
        let still: std::collections::HashSet<uuid::Uuid> = shown.iter().map(|r| r.id).collect();
        let gone: Vec<uuid::Uuid> = old
            .iter()
            .filter(|o| !still.contains(&o.id))
            .map(|o| o.id)
            .collect();
        let mut known = Vec::new();
        if !gone.is_empty() && gone.len() <= GONE_READS {
            let store = self.hub.0.store.clone();
            for _ in &gone {
                self.counted("reservation", why);
            }
            let reads =
                futures_util::future::join_all(gone.iter().map(|id| store.reservation(*id)));
            match tokio::time::timeout(GONE_WITHIN, reads).await {
                Ok(read) => match read.into_iter().collect::<Result<Vec<_>, _>>() {
                    Ok(read) => known = read.into_iter().flatten().collect(),
                    Err(e) => tracing::warn!(
                        error = format!("{e:#}"),
                        "live channel cannot read a reservation gone from its day"
                    ),
                },
                Err(_) => {
                    tracing::warn!("live channel's read of reservations gone from its day is late")
                }
            }
        }
        super::super::view::latest_change_knowing(old, &shown, &known, Utc::now())
    }

    pub(super) fn keeps_waitlist(&self) -> bool {
        self.groups.keys().any(|v| v.needs_waitlist())
    }

    /// Whether a floor watches: it lists the date's cancelled reservations, which no other view
    /// reads.
    pub(super) fn keeps_cancelled(&self) -> bool {
        self.groups.contains_key(&View::Floor)
    }

    /// Reads the day (and the restaurant when asked, and the waitlist and the cancelled
    /// reservations while a view shows them) from the store; true when it moved.
    pub(super) async fn reload(&mut self, with_restaurant: bool, why: Why) -> bool {
        let extras = Also {
            waitlist: self.keeps_waitlist(),
            cancelled: self.keeps_cancelled(),
        };
        self.read(with_restaurant, extras, why).await
    }

    #[tracing::instrument(name = "hub.reload", skip(self), fields(restaurant = %self.key.0, date = %self.key.1))]
    pub(super) async fn read(&mut self, with_restaurant: bool, also: Also, why: Why) -> bool {
        let store = self.hub.0.store.clone();
        if with_restaurant || self.restaurant.is_none() {
            self.counted("restaurant", why);
            match store.restaurant(self.key.0).await {
                Ok(Some(r)) => self.restaurant = Some(r.restaurant),
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "live channel cannot load its restaurant"
                    );
                    return false;
                }
            }
        }
        type Read = (
            Arc<crate::store::DayView>,
            Option<Vec<WaitlistEntry>>,
            Option<Vec<Reservation>>,
        );
        let mut read: Option<Read> = None;
        // The waitlist and the cancelled reservations are further reads: they must be of the
        // same version as the day, or a change between them would be applied again over a newer
        // entry (or missed). Read the day again after them until all agree (a few times;
        // reconcile repairs the rest).
        for _ in 0..3 {
            self.counted("day", why);
            let day = match store.day(self.key.0, self.key.1).await {
                Ok(day) => day,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "live channel cannot load its day");
                    break;
                }
            };
            if matches!(&read, Some((d, _, _)) if d.version == day.version) {
                break;
            }
            let waitlist = if also.waitlist {
                self.counted("waitlist", why);
                loaded(store.waitlist_on(self.key.0, self.key.1).await, "waitlist")
            } else {
                None
            };
            let cancelled = if also.cancelled {
                self.counted("cancelled", why);
                let c = store.cancelled_on(self.key.0, self.key.1).await;
                loaded(c, "cancelled reservations")
            } else {
                None
            };
            read = Some((day, waitlist, cancelled));
            if !also.waitlist && !also.cancelled {
                break;
            }
        }
        let Some((day, waitlist, cancelled)) = read else {
            return false;
        };
        // A read is never behind what was applied: every applied change committed before it.
        let newer = day.version > self.version;
        if newer || with_restaurant || day.version == self.version {
            self.version = self.version.max(day.version);
            self.parts = Parts::of(&day.parts);
            self.day = day.reservations.clone();
            if let Some(w) = waitlist {
                self.waitlist = w;
            }
            if let Some(c) = cancelled {
                self.cancelled = c;
            }
        }
        newer || with_restaurant
    }

    /// Applies every queued change that fits the version, in version order, and drops those
    /// already in. Returns the cause and commit time of the last one applied, and whether a
    /// change needs a read of the store.
    pub(super) fn settle(&mut self) -> (Option<(Cause, DateTime<Utc>)>, bool) {
        let date = self.key.1;
        let (waitlist, cancelled) = (self.keeps_waitlist(), self.keeps_cancelled());
        let extras = apply::Extras {
            waitlist: waitlist.then_some(&mut self.waitlist),
            cancelled: cancelled.then_some(&mut self.cancelled),
        };
        let (last, read) = apply::settle(
            &mut self.ahead,
            date,
            &mut self.parts,
            &mut self.day,
            extras,
        );
        if last.is_some() {
            self.version = self.version.max(self.parts.version());
        }
        if self.ahead.is_empty() {
            self.ahead_since = None;
        } else {
            self.ahead_since.get_or_insert_with(Instant::now);
        }
        (last, read)
    }

    /// Takes what publishers queued, applies what fits and reads the store when something
    /// does not (at once for a change without image, after `GAP_WAIT` for a gap), then fans
    /// out once.
    pub(super) async fn on_changes(&mut self, gap_expired: bool) {
        let p = std::mem::take(&mut *self.shared.pending.lock().expect("pending lock"));
        let newest = p.changes.last().map(|c| (c.cause, c.at));
        self.ahead.extend(p.changes);
        if self.restaurant.is_none() {
            // Not loaded yet: the first subscription reads everything.
            self.ahead.clear();
            self.ahead_since = None;
            return;
        }
        let before = self.version;
        let (mut last, mut read) = self.settle();
        read |= p.read || p.wide;
        read |= gap_expired && self.ahead_since.is_some_and(|t| t.elapsed() >= GAP_WAIT);
        if read {
            let why = if p.read && !p.wide {
                Why::Repair
            } else {
                Why::Change
            };
            // What the read is about to cover: the changes still waiting for one before them
            // (a gap) say what happened and when, in commit order.
            let mut queued: Vec<_> = self.ahead.iter().collect();
            queued.sort_by_key(|c| c.at);
            let queued = queued
                .into_iter()
                .fold(None, |acc, c| apply::merge(acc, Some((c.cause, c.at))));
            // Nothing says it (a repair): the difference the read makes to the day does.
            let before_read = (last.is_none() && queued.is_none() && newest.is_none() && !p.wide)
                .then(|| self.shown());
            self.reload(p.wide, why).await;
            // Whatever the read covers is in; whatever is newer still applies.
            let (applied, _) = self.settle();
            last = apply::merge(apply::merge(last, queued), applied);
            if let Some(old) = before_read.filter(|_| last.is_none()) {
                last = self.newest_change(&old, why).await;
            }
            self.ahead.clear();
            self.ahead_since = None;
        }
        if self.version > before || p.wide {
            let (cause, at) = last
                .or(newest)
                .or(p.cause.zip(p.at))
                .unwrap_or((Cause::Changed, Utc::now()));
            self.fan_out(cause, at, p.wide);
        }
    }
}
