//! Pure code of a channel's in-memory day: whether a committed change fits the version the
//! channel holds, and applying its after-image. No I/O, no async.
//!
//! A date's version is a sum of parts (one part on SQLite; the restaurant-wide floor and each
//! change counter on DynamoDB). A change names, per date, each part it moved from `from` to
//! `to` (and the parts it was made against, `from == to`). A channel applies a change only when
//! it holds every named part at exactly `from`: then the change's after-image takes it to
//! exactly the state a fresh read at the new version returns. A part already at or past a
//! moved part's `to` means the channel has the change (from a read, or applied before): it is
//! ignored. Anything else is a gap: a change in between has not arrived (yet), or the version
//! moved in a way only a read can tell.
use crate::booking::{Change, Image};
use crate::domain::{Cause, LocalDate, Reservation, Status, WaitlistEntry};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// How a change fits a channel's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Exactly the next: apply its image.
    Apply,
    /// Already in the channel's state (a duplicate, or older than its last read): ignore it.
    Seen,
    /// A change before it is missing: wait a moment for it, then read.
    Later,
    /// Only a read can tell what it did (no image, no exact step, a restaurant-wide change).
    Read,
}

/// The parts of one date's version, as last read and since advanced by applied changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts(HashMap<String, u64>);

impl Parts {
    pub fn of(read: &[(String, u64)]) -> Self {
        Parts(read.iter().cloned().collect())
    }

    fn get(&self, part: &str) -> u64 {
        self.0.get(part).copied().unwrap_or(0)
    }

    /// The date's version: the sum of its parts.
    pub fn version(&self) -> u64 {
        self.0.values().sum()
    }
}

/// How `change` fits a channel of `date` holding `parts`.
pub fn fit(change: &Change, date: LocalDate, parts: &Parts) -> Fit {
    if change.image.is_none() || change.wide_version.is_some() {
        return Fit::Read;
    }
    let mut steps = change.steps.iter().filter(|s| s.date == date).peekable();
    if steps.peek().is_none() {
        return Fit::Read;
    }
    let steps: Vec<_> = steps.collect();
    if steps
        .iter()
        .any(|s| s.from < s.to && parts.get(&s.part) >= s.to)
    {
        return Fit::Seen;
    }
    if steps.iter().all(|s| parts.get(&s.part) == s.from) {
        Fit::Apply
    } else if steps
        .iter()
        .all(|s| parts.get(&s.part) <= s.from && (s.from < s.to || parts.get(&s.part) == s.from))
    {
        // Only moved parts are behind: the changes before it may still come. (A part it was
        // only made against, such as the restaurant-wide floor, is a read's business.)
        Fit::Later
    } else {
        Fit::Read
    }
}

/// What a channel keeps beside its day while a view shows it: the date's waitlist (in queue
/// order) and its cancelled reservations (the floor's).
#[derive(Default)]
pub struct Extras<'a> {
    pub waitlist: Option<&'a mut Vec<WaitlistEntry>>,
    pub cancelled: Option<&'a mut Vec<Reservation>>,
}

impl Extras<'_> {
    fn reborrow(&mut self) -> Extras<'_> {
        Extras {
            waitlist: self.waitlist.as_deref_mut(),
            cancelled: self.cancelled.as_deref_mut(),
        }
    }
}

/// Applies a change that [`fit`]s with [`Fit::Apply`]: its image to the day (the reservations
/// of `date` and of the day before, released, expired and cancelled ones left out, as a read
/// returns them) and to what the channel keeps beside it ([`Extras`]); then its steps to
/// `parts`.
pub fn apply(
    change: &Change,
    date: LocalDate,
    parts: &mut Parts,
    day: &mut Vec<Reservation>,
    extras: Extras<'_>,
) {
    if let Some(image) = change.image.as_deref() {
        apply_image(image, date, day, extras);
    }
    for s in change.steps.iter().filter(|s| s.date == date) {
        parts.0.insert(s.part.clone(), s.to);
    }
}

/// What a frame coalescing two runs of changes (`a` committed before `b`) says of them: the
/// newest commit time, and the cause of the last change that was not the waitlist's alone —
/// a hold folded with a join in one frame is `held`, whatever came last.
pub fn merge(
    a: Option<(Cause, DateTime<Utc>)>,
    b: Option<(Cause, DateTime<Utc>)>,
) -> Option<(Cause, DateTime<Utc>)> {
    match (a, b) {
        (Some((ca, ta)), Some((cb, tb))) => {
            let cause = if cb == Cause::Waitlist { ca } else { cb };
            Some((cause, ta.max(tb)))
        }
        (a, b) => b.or(a),
    }
}

/// Applies every change of `ahead` that fits, in version order, and drops those already in;
/// leaves the ones still waiting for a change before them. Returns the cause and commit time
/// the frame of the changes applied carries (`merge`), and whether a change needs a read of the
/// store.
pub fn settle(
    ahead: &mut Vec<Arc<Change>>,
    date: LocalDate,
    parts: &mut Parts,
    day: &mut Vec<Reservation>,
    mut extras: Extras<'_>,
) -> (Option<(Cause, DateTime<Utc>)>, bool) {
    let (mut last, mut read) = (None, false);
    // Changes arrive in the order their requests published them, not the order they committed
    // in. Ordered by where they start (on each part a later change starts where the one before
    // it ended), a burst settles in one pass whatever its length; passes repeat until one
    // applies nothing.
    ahead.sort_by_cached_key(|c| {
        c.steps
            .iter()
            .filter(|s| s.date == date)
            .map(|s| s.from)
            .sum::<u64>()
    });
    loop {
        let mut progress = false;
        let mut kept = Vec::new();
        for c in std::mem::take(ahead) {
            match fit(&c, date, parts) {
                Fit::Later => kept.push(c),
                Fit::Seen => progress = true,
                Fit::Read => read = true,
                Fit::Apply => {
                    apply(&c, date, parts, day, extras.reborrow());
                    last = merge(last, Some((c.cause, c.at)));
                    progress = true;
                }
            }
        }
        *ahead = kept;
        if !progress {
            return (last, read);
        }
    }
}

fn apply_image(image: &Image, date: LocalDate, day: &mut Vec<Reservation>, extras: Extras<'_>) {
    for r in &image.reservations {
        if r.date == date || r.date == date.pred() {
            crate::store::place_in_day(day, r);
        }
    }
    if let Some(cancelled) = extras.cancelled {
        // A cancelled reservation never changes again: it joins the list once, in its place.
        for r in image.reservations.iter().filter(|r| r.date == date) {
            if r.status == Status::Cancelled && !cancelled.iter().any(|x| x.id == r.id) {
                let at =
                    cancelled.partition_point(|x| (x.start, &x.table_id) <= (r.start, &r.table_id));
                cancelled.insert(at, r.clone());
            }
        }
    }
    let Some(waitlist) = extras.waitlist else {
        return;
    };
    let mut moved = false;
    for e in image.entries.iter().filter(|e| e.date == date) {
        match waitlist.iter_mut().find(|x| x.id == e.id) {
            Some(x) => *x = e.clone(),
            None => waitlist.push(e.clone()),
        }
        moved = true;
    }
    if moved {
        waitlist.sort_by_key(|e| e.queue_key());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::Step;
    use crate::domain::{Cause, Status};
    use chrono::Utc;
    use std::sync::Arc;
    use uuid::Uuid;

    fn date() -> LocalDate {
        LocalDate::parse("2026-12-05").unwrap()
    }

    fn held(at: &str) -> Reservation {
        let r = super::super::view::tests::restaurant_with(&[("t1", 2)]);
        super::super::view::tests::held(&r, "t1", date(), at, Utc::now())
    }

    fn change(r: &Reservation, steps: &[(&str, u64, u64)]) -> Change {
        Change {
            restaurant_id: Uuid::nil(),
            cause: Cause::Held,
            at: Utc::now(),
            dates: vec![(date(), steps.last().map_or(0, |s| s.2))],
            wide_version: None,
            steps: steps
                .iter()
                .map(|(p, f, t)| Step {
                    date: date(),
                    part: (*p).into(),
                    from: *f,
                    to: *t,
                })
                .collect(),
            image: Some(Arc::new(Image {
                reservations: vec![r.clone()],
                entries: vec![],
            })),
        }
    }

    /// `place_in_day` finds a reservation's earlier version among those with its start and
    /// table, and leaves the day as sorting every version that is kept would.
    #[test]
    fn a_change_takes_the_place_of_its_earlier_version_among_those_of_its_start_and_table() {
        let r = super::super::view::tests::restaurant_with(&[("t1", 2), ("t2", 2)]);
        let at = |table: &str, time: &str| {
            super::super::view::tests::held(&r, table, date(), time, Utc::now())
        };
        // A no-show marked at its start ends there: a new hold may start at its time.
        let mut cancelled = at("t1", "19:00");
        cancelled.status = Status::NoShow;
        cancelled.end = cancelled.start;
        let mut day = vec![
            at("t2", "18:00"),
            cancelled.clone(),
            at("t2", "19:00"),
            at("t1", "20:00"),
        ];
        let ids = |day: &[Reservation]| day.iter().map(|x| x.id).collect::<Vec<_>>();
        // A new hold at 19:00 on t1 goes after the no-show there, before t2's.
        let new = at("t1", "19:00");
        crate::store::place_in_day(&mut day, &new);
        assert_eq!(
            ids(&day)[1..4],
            [cancelled.id, new.id, day[3].id],
            "after those with its start and table"
        );
        assert_eq!(day[3].table_id.as_str(), "t2");
        // Its confirmed version replaces it; no copy is left.
        let mut confirmed = new.clone();
        confirmed.status = Status::Confirmed;
        crate::store::place_in_day(&mut day, &confirmed);
        assert_eq!(day.len(), 5);
        assert_eq!(day.iter().filter(|x| x.id == new.id).count(), 1);
        assert_eq!(day[2].status, Status::Confirmed);
        // The cancelled one changing again stays among its equals, and a released hold leaves.
        crate::store::place_in_day(&mut day, &cancelled);
        assert_eq!(day.len(), 5);
        let mut released = at("t1", "20:00");
        released.id = day[4].id;
        released.status = Status::Released;
        crate::store::place_in_day(&mut day, &released);
        assert_eq!(day.len(), 4);
        assert!(day.is_sorted_by_key(|x| (x.start, x.table_id.clone())));
        // A released hold the day never had changes nothing.
        let mut stranger = at("t2", "18:00");
        stranger.status = Status::Released;
        crate::store::place_in_day(&mut day, &stranger);
        assert_eq!(day.len(), 4);
    }

    #[test]
    fn the_next_version_applies_a_duplicate_is_seen_and_a_gap_waits() {
        let parts = Parts::of(&[(String::new(), 5)]);
        let r = held("19:00");
        assert_eq!(fit(&change(&r, &[("", 5, 6)]), date(), &parts), Fit::Apply);
        assert_eq!(fit(&change(&r, &[("", 4, 5)]), date(), &parts), Fit::Seen);
        assert_eq!(fit(&change(&r, &[("", 2, 3)]), date(), &parts), Fit::Seen);
        assert_eq!(fit(&change(&r, &[("", 6, 7)]), date(), &parts), Fit::Later);
        // One commit that raised the date twice (an offer on SQLite) is still the next one.
        assert_eq!(fit(&change(&r, &[("", 5, 7)]), date(), &parts), Fit::Apply);
        let mut no_image = change(&r, &[("", 5, 6)]);
        no_image.image = None;
        assert_eq!(fit(&no_image, date(), &parts), Fit::Read);
        let mut no_step = change(&r, &[("", 5, 6)]);
        no_step.steps.clear();
        assert_eq!(fit(&no_step, date(), &parts), Fit::Read);
    }

    #[test]
    fn parts_of_a_summed_version_fit_one_by_one_against_the_wide_floor() {
        let parts = Parts::of(&[("^".into(), 1000), ("t1".into(), 3), ("t2".into(), 7)]);
        assert_eq!(parts.version(), 1010);
        let r = held("19:00");
        let on_t2 = [("^", 1000, 1000), ("t2", 7, 8)];
        assert_eq!(fit(&change(&r, &on_t2), date(), &parts), Fit::Apply);
        // A counter never seen before starts at 0.
        let on_t3 = [("^", 1000, 1000), ("t3", 0, 1)];
        assert_eq!(fit(&change(&r, &on_t3), date(), &parts), Fit::Apply);
        // Made against a settings change the channel has not read: read.
        let newer_wide = [("^", 2000, 2000), ("t2", 7, 8)];
        assert_eq!(fit(&change(&r, &newer_wide), date(), &parts), Fit::Read);
        // Its counter moved past the channel's: the channel already has it.
        let old = [("^", 1000, 1000), ("t1", 2, 3)];
        assert_eq!(fit(&change(&r, &old), date(), &parts), Fit::Seen);
    }

    #[test]
    fn a_coalesced_frame_names_the_last_change_that_was_not_the_waitlist_alone_at_the_newest_commit(
    ) {
        let base = Utc::now();
        let t = |s: i64| base + chrono::Duration::seconds(s);
        let (join, hold, join2) = (
            (Cause::Waitlist, t(1)),
            (Cause::Held, t(2)),
            (Cause::Waitlist, t(3)),
        );
        // A join, a hold, a join: the frame is the hold's, at the last join's commit.
        let folded = [join, hold, join2]
            .into_iter()
            .fold(None, |acc, c| merge(acc, Some(c)));
        assert_eq!(folded, Some((Cause::Held, t(3))));
        // The waitlist alone stays `waitlist`; a later reservation change wins.
        assert_eq!(
            merge(Some(join), Some(join2)),
            Some((Cause::Waitlist, t(3)))
        );
        assert_eq!(
            merge(Some(hold), Some((Cause::Released, t(1)))),
            Some((Cause::Released, t(2)))
        );
        assert_eq!(merge(None, Some(join)), Some(join));
        assert_eq!(merge(Some(hold), None), Some(hold));
    }

    #[test]
    fn a_burst_settles_whatever_order_it_was_published_in_and_a_gap_stays_ahead() {
        let mut parts = Parts::of(&[(String::new(), 0)]);
        let times = ["19:00", "18:00", "20:00", "12:00", "21:30", "13:15"];
        let holds: Vec<_> = times.iter().map(|t| held(t)).collect();
        // Versions 1..=6 for the six holds, published in a scrambled order, and version 8
        // whose 7 never came.
        let mut ahead: Vec<Arc<Change>> = [3usize, 5, 0, 4, 1, 2]
            .iter()
            .map(|&i| Arc::new(change(&holds[i], &[("", i as u64, i as u64 + 1)])))
            .collect();
        let gap = Arc::new(change(&held("22:00"), &[("", 7, 8)]));
        ahead.insert(2, gap.clone());
        let mut day = Vec::new();
        let (last, read) = settle(&mut ahead, date(), &mut parts, &mut day, Extras::default());
        assert_eq!(parts.version(), 6);
        assert!(last.is_some());
        assert!(!read);
        assert_eq!(ahead.len(), 1);
        assert!(Arc::ptr_eq(&ahead[0], &gap));
        // The day holds all six, ordered by start as a read returns them.
        let mut want = holds.clone();
        want.sort_by_key(|r| r.start);
        assert_eq!(day, want);
        // A duplicate is dropped; the gap's change applies once 7 arrives.
        ahead.push(Arc::new(change(&holds[0], &[("", 0, 1)])));
        ahead.push(Arc::new(change(&held("23:00"), &[("", 6, 7)])));
        settle(&mut ahead, date(), &mut parts, &mut day, Extras::default());
        assert!(ahead.is_empty());
        assert_eq!(parts.version(), 8);
        assert_eq!(day.len(), 8);
        assert!(day.is_sorted_by_key(|r| r.start));
    }

    #[test]
    fn an_image_upserts_reservations_and_drops_released_ones() {
        let mut parts = Parts::of(&[(String::new(), 5)]);
        let (a, b) = (held("19:00"), held("20:00"));
        let mut day = vec![a.clone()];
        apply(
            &change(&b, &[("", 5, 6)]),
            date(),
            &mut parts,
            &mut day,
            Extras::default(),
        );
        assert_eq!(day.len(), 2);
        assert_eq!(parts.version(), 6);
        let mut released = a.clone();
        released.status = Status::Released;
        apply(
            &change(&released, &[("", 6, 7)]),
            date(),
            &mut parts,
            &mut day,
            Extras::default(),
        );
        assert_eq!(day, vec![b.clone()]);
        let mut confirmed = b.clone();
        confirmed.status = Status::Confirmed;
        apply(
            &change(&confirmed, &[("", 7, 8)]),
            date(),
            &mut parts,
            &mut day,
            Extras::default(),
        );
        assert_eq!(day, vec![confirmed]);
        assert_eq!(parts.version(), 8);
    }

    /// A cancellation leaves the day, as a read leaves it out, and joins the cancelled list
    /// the floor keeps (once, in start order), when one is kept.
    #[test]
    fn a_cancelled_reservation_leaves_the_day_for_the_floors_list() {
        let mut parts = Parts::of(&[(String::new(), 1)]);
        let (a, b) = (held("19:00"), held("21:00"));
        let mut day = vec![a.clone(), b.clone()];
        let (mut x, mut y) = (a.clone(), b.clone());
        (x.status, y.status) = (Status::Cancelled, Status::Cancelled);
        let mut cancelled = Vec::new();
        for (c, step) in [(&y, ("", 1, 2)), (&x, ("", 2, 3)), (&x, ("", 3, 4))] {
            let extras = Extras {
                waitlist: None,
                cancelled: Some(&mut cancelled),
            };
            apply(&change(c, &[step]), date(), &mut parts, &mut day, extras);
        }
        assert!(day.is_empty(), "{day:?}");
        assert_eq!(cancelled, vec![x.clone(), y]);
        // Without a floor nothing is kept.
        let mut day = vec![a];
        apply(
            &change(&x, &[("", 4, 5)]),
            date(),
            &mut parts,
            &mut day,
            Extras::default(),
        );
        assert!(day.is_empty());
    }
}
