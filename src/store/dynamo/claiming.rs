//! The tables this instance's holds are writing right now, with the minutes they claim.
//!
//! Holds of one instance that read the same day see the same best free option. Sent together,
//! all but one lose it, read again and try the next, round after round: n holds for n equally
//! good tables took n rounds. So a hold passes over an option that another hold of this instance
//! is claiming for overlapping minutes, while it has another free one, and each takes the next
//! best in the first round. If only such options are left, it tries them as before.
//!
//! Only a speed-up: the conditional writes still decide, and instances still race one another
//! through them. The tie rule (best fit, then the smallest table id) holds among the winners:
//! the hold claiming the smaller id takes it. The one exception is a claim that then fails for a
//! reason of its own (its client's slot, a stale revision, its time budget): the table it was
//! claiming stays free while a hold that passed over it took the next one.
use crate::domain::TableId;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

#[derive(Debug)]
struct Span {
    id: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// When the claim committed, on the clock of [`Inner::seq`]; `None` while in flight.
    won: Option<u64>,
}

#[derive(Debug, Default)]
struct Inner {
    tables: HashMap<(Uuid, TableId), Vec<Span>>,
    /// The reads in progress, by the tick they began at: how many began then.
    reads: BTreeMap<u64, usize>,
    /// A clock of reads, claims and wins.
    seq: u64,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Forgets the won claims that every read in progress began after: those reads see them.
    fn forget_seen(&mut self) {
        let oldest = self.reads.keys().next().copied().unwrap_or(u64::MAX);
        self.tables.retain(|_, spans| {
            spans.retain(|s| s.won.is_none_or(|w| w > oldest));
            !spans.is_empty()
        });
    }
}

#[derive(Debug, Default)]
pub struct Claiming(Mutex<Inner>);

/// A read of the day in progress: what it cannot show yet is what was won after it began.
#[must_use]
pub struct Read<'a> {
    claiming: &'a Claiming,
    began: u64,
}

/// One claim being written; it ends when this drops, or is kept as won by [`Mark::won`] for
/// the reads that began before it committed.
#[must_use]
pub struct Mark<'a> {
    claiming: &'a Claiming,
    keys: Vec<(Uuid, TableId)>,
    id: u64,
    /// Won: kept for the reads that began before, not removed on drop.
    kept: bool,
}

impl Claiming {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Begins a read of the day: call before sending it.
    pub fn read(&self) -> Read<'_> {
        let mut inner = self.lock();
        let began = inner.tick();
        *inner.reads.entry(began).or_default() += 1;
        Read {
            claiming: self,
            began,
        }
    }

    /// Whether another hold of this instance is claiming one of `tables` of restaurant `rid`
    /// for minutes overlapping `[start, end)`, or won one since `read` began.
    pub fn claimed(
        &self,
        read: &Read<'_>,
        rid: Uuid,
        tables: &[TableId],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> bool {
        let inner = self.lock();
        tables.iter().any(|t| {
            inner.tables.get(&(rid, t.clone())).is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s.won.is_none_or(|w| w > read.began) && s.start < end && start < s.end)
            })
        })
    }

    /// Marks `tables` as claimed over `[start, end)` until the mark drops.
    pub fn mark(
        &self,
        rid: Uuid,
        tables: &[TableId],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Mark<'_> {
        let keys: Vec<(Uuid, TableId)> = tables.iter().map(|t| (rid, t.clone())).collect();
        let mut inner = self.lock();
        let id = inner.tick();
        for k in &keys {
            inner.tables.entry(k.clone()).or_default().push(Span {
                id,
                start,
                end,
                won: None,
            });
        }
        Mark {
            claiming: self,
            keys,
            id,
            kept: false,
        }
    }
}

impl Mark<'_> {
    /// The claim committed: reads that began before now still pass over its tables.
    pub fn won(mut self) {
        let mut inner = self.claiming.lock();
        let at = inner.tick();
        for k in &self.keys {
            for s in inner.tables.get_mut(k).into_iter().flatten() {
                if s.id == self.id {
                    s.won = Some(at);
                }
            }
        }
        inner.forget_seen();
        self.kept = true;
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut inner = self.claiming.lock();
        for k in &self.keys {
            if let Some(spans) = inner.tables.get_mut(k) {
                spans.retain(|s| s.id != self.id);
                if spans.is_empty() {
                    inner.tables.remove(k);
                }
            }
        }
    }
}

impl Drop for Read<'_> {
    fn drop(&mut self) {
        let mut inner = self.claiming.lock();
        if let Some(n) = inner.reads.get_mut(&self.began) {
            *n -= 1;
            if *n == 0 {
                inner.reads.remove(&self.began);
            }
        }
        inner.forget_seen();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ids(names: &[&str]) -> Vec<TableId> {
        names.iter().map(|n| TableId::parse(n).unwrap()).collect()
    }

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, h, 0, 0).unwrap()
    }

    #[test]
    fn a_claim_covers_its_tables_and_overlapping_minutes_until_it_ends() {
        let c = Claiming::default();
        let (rid, other) = (Uuid::new_v4(), Uuid::new_v4());
        let read = c.read();
        let mark = c.mark(rid, &ids(&["t1", "t2"]), at(18), at(20));
        assert!(c.claimed(&read, rid, &ids(&["t2"]), at(19), at(21)));
        assert!(c.claimed(&read, rid, &ids(&["t3", "t1"]), at(17), at(19)));
        // Back to back is not overlapping; another restaurant's t1 is another table.
        assert!(!c.claimed(&read, rid, &ids(&["t1"]), at(20), at(22)));
        assert!(!c.claimed(&read, other, &ids(&["t1"]), at(18), at(20)));
        let second = c.mark(rid, &ids(&["t1"]), at(20), at(22));
        drop(mark);
        assert!(!c.claimed(&read, rid, &ids(&["t1", "t2"]), at(18), at(20)));
        assert!(c.claimed(&read, rid, &ids(&["t1"]), at(21), at(23)));
        drop(second);
        drop(read);
        assert!(
            c.lock().tables.is_empty(),
            "nothing is kept for ended claims"
        );
    }

    #[test]
    fn a_won_claim_is_passed_over_by_the_reads_that_began_before_it_only() {
        let c = Claiming::default();
        let rid = Uuid::new_v4();
        let before = c.read();
        let mark = c.mark(rid, &ids(&["t1"]), at(18), at(20));
        let during = c.read();
        mark.won();
        let after = c.read();
        // `before` and `during` may not show the win: they pass over t1.
        assert!(c.claimed(&before, rid, &ids(&["t1"]), at(18), at(20)));
        assert!(c.claimed(&during, rid, &ids(&["t1"]), at(18), at(20)));
        // A read that began after the commit shows it (or its release since): not passed over.
        assert!(!c.claimed(&after, rid, &ids(&["t1"]), at(18), at(20)));
        drop(before);
        assert!(c.claimed(&during, rid, &ids(&["t1"]), at(18), at(20)));
        drop(during);
        assert!(
            c.lock().tables.is_empty(),
            "forgotten once every older read ended"
        );
        drop(after);
    }
}
