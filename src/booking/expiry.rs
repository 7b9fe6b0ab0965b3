//! Planned expiry: the instants at which holds this instance wrote run out, so the sweeper runs
//! then rather than at its next tick. An expired hold's time is free to every read and write at
//! once, and only the sweep offers it to the waitlist: the shorter that gap, the smaller the
//! chance that a diner takes, in between, capacity a waiting entry should have been offered
//! first (a lapsed offer's cascade included).
//!
//! Each plan is kept by reservation: a hold confirmed or released before it runs out (its next
//! after-image is not `held`) is forgotten, so only holds that may still expire make the sweeper
//! run. Only this instance's writes are planned (each instance plans its own); the sweeper's
//! tick still covers every hold, those of an instance that stopped included.
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use uuid::Uuid;

/// At most this many holds are planned; past it, a hold waits for the sweeper's tick (its
/// expiry is then at most one tick late, as before plans existed).
const MAX_PLANNED: usize = 100_000;

#[derive(Default)]
struct Planned {
    by_time: BTreeSet<(DateTime<Utc>, Uuid)>,
    by_id: HashMap<Uuid, DateTime<Utc>>,
}

#[derive(Default)]
pub(crate) struct Plan {
    planned: Mutex<Planned>,
    /// Wakes the sweeper to look at the plan again (an instant earlier than it sleeps to).
    changed: tokio::sync::Notify,
}

impl Plan {
    fn lock(&self) -> std::sync::MutexGuard<'_, Planned> {
        self.planned.lock().expect("expiry plan")
    }

    /// Plans a sweep when the hold `id` runs out, at `at` (replacing an earlier plan of it).
    pub(crate) fn add(&self, id: Uuid, at: DateTime<Utc>) {
        let mut p = self.lock();
        match p.by_id.get(&id).copied() {
            Some(old) => {
                p.by_time.remove(&(old, id));
            }
            None if p.by_id.len() >= MAX_PLANNED => return,
            None => {}
        }
        let earlier = p.by_time.first().is_none_or(|(first, _)| at < *first);
        p.by_id.insert(id, at);
        p.by_time.insert((at, id));
        drop(p);
        if earlier {
            self.changed.notify_one();
        }
    }

    /// Forgets the plan of `id`: it is no longer a hold that can expire.
    pub(crate) fn forget(&self, id: Uuid) {
        let mut p = self.lock();
        if let Some(at) = p.by_id.remove(&id) {
            p.by_time.remove(&(at, id));
        }
    }

    /// The earliest planned instant.
    pub(crate) fn next(&self) -> Option<DateTime<Utc>> {
        self.lock().by_time.first().map(|(at, _)| *at)
    }

    /// Forgets every plan up to `now`: the sweep about to run covers them.
    pub(crate) fn take_due(&self, now: DateTime<Utc>) {
        let mut p = self.lock();
        while let Some(&(at, id)) = p.by_time.first() {
            if at > now {
                break;
            }
            p.by_time.pop_first();
            p.by_id.remove(&id);
        }
    }

    /// Resolves when a hold was planned that runs out before every one planned so far.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_plan_yields_its_instants_in_order_and_forgets_the_due_and_the_settled() {
        let plan = Plan::default();
        let t0 = Utc::now();
        let at = |s| t0 + Duration::seconds(s);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(plan.next(), None);
        plan.add(a, at(5));
        plan.add(b, at(1));
        plan.add(c, at(3));
        assert_eq!(plan.next(), Some(at(1)));
        // `b` confirmed before it ran out: no sweep for it.
        plan.forget(b);
        assert_eq!(plan.next(), Some(at(3)));
        // A hold planned again (a new expiry) keeps only its latest instant.
        plan.add(c, at(4));
        plan.take_due(t0);
        assert_eq!(plan.next(), Some(at(4)));
        plan.take_due(at(4));
        assert_eq!(plan.next(), Some(at(5)));
        plan.take_due(at(9));
        assert_eq!(plan.next(), None);
        // Nothing is left behind in either index.
        let p = plan.lock();
        assert!(p.by_id.is_empty() && p.by_time.is_empty());
    }
}
