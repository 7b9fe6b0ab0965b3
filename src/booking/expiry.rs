//! Planned expiry: the instants at which holds this instance wrote run out, so the sweeper runs
//! then rather than at its next tick. An expired hold's time is free to every read and write at
//! once, and only the sweep offers it to the waitlist: the shorter that gap, the smaller the
//! chance that a diner takes, in between, capacity a waiting entry should have been offered
//! first (a lapsed offer's cascade included).
//!
//! Only this instance's writes are planned (each instance plans its own); the sweeper's tick
//! still covers every hold, those of an instance that stopped included.
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

/// At most this many instants are kept; past it, a hold waits for the sweeper's tick (its
/// expiry is then at most one tick late, as before plans existed).
const MAX_PLANNED: usize = 100_000;

#[derive(Default)]
pub(crate) struct Plan {
    due: Mutex<BinaryHeap<Reverse<DateTime<Utc>>>>,
    /// Wakes the sweeper to look at the plan again (an instant earlier than it sleeps to).
    changed: tokio::sync::Notify,
}

impl Plan {
    /// Plans a sweep at `at`.
    pub(crate) fn add(&self, at: DateTime<Utc>) {
        let mut due = self.due.lock().expect("expiry plan");
        if due.len() >= MAX_PLANNED {
            return;
        }
        let earlier = due.peek().is_none_or(|Reverse(first)| at < *first);
        due.push(Reverse(at));
        drop(due);
        if earlier {
            self.changed.notify_one();
        }
    }

    /// The earliest planned instant.
    pub(crate) fn next(&self) -> Option<DateTime<Utc>> {
        self.due.lock().expect("expiry plan").peek().map(|r| r.0)
    }

    /// Forgets every instant up to `now` (the sweep about to run covers them); whether any was.
    pub(crate) fn take_due(&self, now: DateTime<Utc>) -> bool {
        let mut due = self.due.lock().expect("expiry plan");
        let mut any = false;
        while due.peek().is_some_and(|Reverse(at)| *at <= now) {
            due.pop();
            any = true;
        }
        any
    }

    /// Resolves when an instant earlier than the earliest one was planned.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_plan_yields_its_instants_in_order_and_forgets_the_due_ones() {
        let plan = Plan::default();
        let t0 = Utc::now();
        assert_eq!(plan.next(), None);
        plan.add(t0 + Duration::seconds(5));
        plan.add(t0 + Duration::seconds(1));
        plan.add(t0 + Duration::seconds(3));
        assert_eq!(plan.next(), Some(t0 + Duration::seconds(1)));
        assert!(!plan.take_due(t0));
        assert!(plan.take_due(t0 + Duration::seconds(3)));
        assert_eq!(plan.next(), Some(t0 + Duration::seconds(5)));
        assert!(plan.take_due(t0 + Duration::seconds(9)));
        assert_eq!(plan.next(), None);
    }
}
