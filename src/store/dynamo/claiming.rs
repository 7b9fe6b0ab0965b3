//! The tables this instance's holds are writing right now, with the minutes they claim.
//!
//! Holds of one instance that read the same day see the same best free option. Sent together,
//! all but one lose it, read again and try the next, round after round: n holds for n equally
//! good tables took n rounds. So a hold picks the first option, in order of fit, that no other
//! hold of this instance is claiming for overlapping minutes (or won since the hold's read
//! began, which that read may not show), and marks it in the same step; if every free option
//! is so claimed, it takes the first one only being claimed (that claim may still fail), else
//! the first. Each takes the next best in the first round. An offer keeping its freed table
//! takes its options in order of fit, whatever is claimed.
//!
//! Only a speed-up: the conditional writes still decide, and instances still race one another
//! through them. The tie rule (best fit, then the smallest table id) holds among the winners.
//! The exception is a claim that then fails without taking its table (another instance's
//! transaction, its client's slot, a stale revision, its time budget, its client gone): the
//! table it was claiming stays free while a hold that passed over it took the next one.
use crate::domain::TableId;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use uuid::Uuid;

type Key = (Uuid, TableId);

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
    tables: HashMap<Key, Vec<Span>>,
    /// The won claims still kept, oldest win first: `(won, id, tables)`.
    won: VecDeque<(u64, u64, Vec<Key>)>,
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

    fn remove(&mut self, keys: &[Key], id: u64) {
        for k in keys {
            if let Some(spans) = self.tables.get_mut(k) {
                spans.retain(|s| s.id != id);
                if spans.is_empty() {
                    self.tables.remove(k);
                }
            }
        }
    }

    /// Forgets the won claims that every read in progress began after: those reads show them.
    fn forget_seen(&mut self) {
        let oldest = self.reads.keys().next().copied().unwrap_or(u64::MAX);
        while self.won.front().is_some_and(|(w, _, _)| *w < oldest) {
            if let Some((_, id, keys)) = self.won.pop_front() {
                self.remove(&keys, id);
            }
        }
    }

    /// How taken `tables` look over `[start, end)` to the read that began at `began`: 0 free,
    /// 1 another hold is claiming one of them (it may still fail), 2 another hold won one
    /// since that read began (the read may not show it; taken unless released since).
    fn claimed(
        &self,
        began: u64,
        rid: Uuid,
        tables: &[TableId],
        span: (DateTime<Utc>, DateTime<Utc>),
    ) -> u8 {
        let (start, end) = span;
        let spans = tables
            .iter()
            .filter_map(|t| self.tables.get(&(rid, t.clone())))
            .flatten()
            .filter(|s| s.start < end && start < s.end);
        spans
            .map(|s| match s.won {
                None => 1,
                Some(w) if w > began => 2,
                Some(_) => 0,
            })
            .max()
            .unwrap_or(0)
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
    keys: Vec<Key>,
    id: u64,
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

    /// Picks the first of `options` (in order of fit) whose tables no other hold of this
    /// instance is claiming over minutes overlapping `span`, or won since `read` began; when
    /// every option is so claimed, the first only being claimed (that claim may fail), then
    /// the first; when `avoid` is false, the first. Marks the pick's tables as claimed in the
    /// same step, so two holds never pick the same option together.
    pub fn pick(
        &self,
        read: &Read<'_>,
        rid: Uuid,
        options: &[(usize, &[TableId])],
        span: (DateTime<Utc>, DateTime<Utc>),
        avoid: bool,
    ) -> Option<(usize, Mark<'_>)> {
        let mut inner = self.lock();
        let &(i, tables) = if avoid {
            options
                .iter()
                .min_by_key(|(_, tables)| inner.claimed(read.began, rid, tables, span))?
        } else {
            options.first()?
        };
        let id = inner.tick();
        let keys: Vec<Key> = tables.iter().map(|t| (rid, t.clone())).collect();
        for k in &keys {
            inner.tables.entry(k.clone()).or_default().push(Span {
                id,
                start: span.0,
                end: span.1,
                won: None,
            });
        }
        Some((
            i,
            Mark {
                claiming: self,
                keys,
                id,
            },
        ))
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
        inner
            .won
            .push_back((at, self.id, std::mem::take(&mut self.keys)));
        inner.forget_seen();
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        // A won mark gave its tables to `Inner::won` (its keys are empty now).
        if !self.keys.is_empty() {
            self.claiming.lock().remove(&self.keys, self.id);
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

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, h, 0, 0).unwrap()
    }

    /// Options 0, 1, 2, … each on the tables named (`"t1+t2"` is a combination).
    fn options(names: &[&str]) -> Vec<Vec<TableId>> {
        names
            .iter()
            .map(|n| n.split('+').map(|t| TableId::parse(t).unwrap()).collect())
            .collect()
    }

    /// The index `pick` takes among `tables` over `from..to` o'clock, and its mark.
    fn pick<'c>(
        c: &'c Claiming,
        read: &Read<'_>,
        rid: Uuid,
        tables: &[Vec<TableId>],
        (from, to): (u32, u32),
        avoid: bool,
    ) -> (usize, Mark<'c>) {
        let opts: Vec<(usize, &[TableId])> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.as_slice()))
            .collect();
        c.pick(read, rid, &opts, (at(from), at(to)), avoid).unwrap()
    }

    #[test]
    fn a_pick_passes_over_options_claimed_for_overlapping_minutes_while_another_is_left() {
        let c = Claiming::default();
        let (rid, other) = (Uuid::new_v4(), Uuid::new_v4());
        let read = c.read();
        let three = options(&["t1", "t2", "t3"]);
        let (a, mark_a) = pick(&c, &read, rid, &three, (18, 20), true);
        let (b, mark_b) = pick(&c, &read, rid, &three, (19, 21), true);
        assert_eq!((a, b), (0, 1), "the second takes the next best");
        // Back to back is not overlapping; another restaurant's t1 is another table.
        assert_eq!(pick(&c, &read, rid, &three, (20, 22), true).0, 0);
        assert_eq!(pick(&c, &read, other, &three, (18, 20), true).0, 0);
        // A combination is claimed when one of its members is.
        let combos = options(&["t2+t4", "t5+t6"]);
        assert_eq!(pick(&c, &read, rid, &combos, (18, 20), true).0, 1);
        // Every option claimed: the first, as if nothing were claimed; and an offer keeping its
        // table (`avoid` false) takes the first whatever is claimed.
        let two = options(&["t1", "t2"]);
        assert_eq!(pick(&c, &read, rid, &two, (18, 20), true).0, 0);
        assert_eq!(pick(&c, &read, rid, &three, (18, 20), false).0, 0);
        drop(mark_a);
        assert_eq!(
            pick(&c, &read, rid, &three, (18, 20), true).0,
            0,
            "t1 is free again"
        );
        drop((mark_b, read));
        assert!(
            c.lock().tables.is_empty(),
            "nothing is kept for ended claims"
        );
        assert!(c
            .pick(&c.read(), rid, &[], (at(18), at(20)), true)
            .is_none());
    }

    #[test]
    fn a_won_claim_is_passed_over_by_the_reads_that_began_before_it_only() {
        let c = Claiming::default();
        let rid = Uuid::new_v4();
        let two = options(&["t1", "t2"]);
        let before = c.read();
        let (_, mark) = pick(&c, &before, rid, &two, (18, 20), true);
        let during = c.read();
        mark.won();
        let after = c.read();
        // `before` and `during` may not show the win: they pass over t1.
        let taken = |read: &Read<'_>| pick(&c, read, rid, &two, (18, 20), true).0;
        assert_eq!(taken(&before), 1);
        assert_eq!(taken(&during), 1);
        // A read that began after the commit shows it (or its release since): not passed over.
        assert_eq!(taken(&after), 0);
        drop(before);
        assert_eq!(taken(&during), 1);
        drop(during);
        assert!(
            c.lock().tables.is_empty(),
            "forgotten once every older read ended"
        );
        assert!(c.lock().won.is_empty());
        drop(after);
        // With no read in progress a win is forgotten at once.
        let read = c.read();
        let (_, mark) = pick(&c, &read, rid, &two, (18, 20), true);
        drop(read);
        mark.won();
        assert!(c.lock().tables.is_empty() && c.lock().won.is_empty());
    }

    #[test]
    fn among_claimed_options_one_only_being_claimed_goes_before_one_won_since_the_read() {
        let c = Claiming::default();
        let rid = Uuid::new_v4();
        let two = options(&["t1", "t2"]);
        let read = c.read();
        let (_, won) = pick(&c, &read, rid, &two, (18, 20), true);
        won.won();
        let (second, _in_flight) = pick(&c, &read, rid, &two, (18, 20), true);
        assert_eq!(second, 1);
        // t1 was won since the read began (taken), t2 is only being claimed (may still fail).
        assert_eq!(pick(&c, &read, rid, &two, (18, 20), true).0, 1);
    }

    #[test]
    fn holds_picking_at_once_on_several_threads_take_distinct_options() {
        let c = Claiming::default();
        let rid = Uuid::new_v4();
        let names: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let opts = options(&names);
        let barrier = std::sync::Barrier::new(8);
        let picked: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let read = c.read();
                        barrier.wait();
                        let (i, mark) = pick(&c, &read, rid, &opts, (18, 20), true);
                        // Keep the mark until every thread has picked.
                        barrier.wait();
                        drop(mark);
                        i
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let distinct: std::collections::BTreeSet<usize> = picked.iter().copied().collect();
        assert_eq!(distinct.len(), 8, "{picked:?}");
    }
}
