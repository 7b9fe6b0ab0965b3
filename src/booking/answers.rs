//! Availability answers kept while they stay true. A search is a pure function of the
//! restaurant's settings, the date's day view and `now`; with the first two unchanged (the
//! settings' revision, the view's version and parts) the answer changes only at its first listed
//! start or at the first expiry of a hold in the view (`availability::valid_until`). Until then
//! the searches of a date and party size share one computation, where each counted every
//! option's tables over every start.
use crate::domain::availability::SlotCount;
use crate::domain::LocalDate;
use crate::store::DayView;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Past this many restaurant/date/party answers the cache starts over.
const MAX_ENTRIES: usize = 4096;

/// What an answer was computed from.
#[derive(Clone, PartialEq, Eq)]
struct Basis {
    revision: u64,
    version: u64,
    parts: Vec<(String, u64)>,
}

struct Answer {
    basis: Basis,
    /// The `now` it was computed at: a clock that stepped back is not served it.
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    slots: Arc<Vec<SlotCount>>,
}

type Key = (Uuid, LocalDate, u32);

#[derive(Default)]
pub(super) struct Answers(Mutex<HashMap<Key, Answer>>);

impl Answers {
    /// The answer for `key` computed from the same settings and view, if `now` lies between the
    /// moment it was computed and the first one it may change at.
    pub(super) fn get(
        &self,
        key: Key,
        revision: u64,
        day: &DayView,
        now: DateTime<Utc>,
    ) -> Option<Arc<Vec<SlotCount>>> {
        let all = self.0.lock().expect("answers");
        let a = all.get(&key)?;
        (a.since <= now
            && now < a.until
            && a.basis.revision == revision
            && a.basis.version == day.version
            && a.basis.parts == day.parts)
            .then(|| Arc::clone(&a.slots))
    }

    /// Keeps `slots`, computed at `since` from `revision` and `day`, until `until`.
    pub(super) fn put(
        &self,
        key: Key,
        revision: u64,
        day: &DayView,
        (since, until): (DateTime<Utc>, DateTime<Utc>),
        slots: Arc<Vec<SlotCount>>,
    ) {
        let mut all = self.0.lock().expect("answers");
        if all.len() >= MAX_ENTRIES && !all.contains_key(&key) {
            all.clear();
        }
        let basis = Basis {
            revision,
            version: day.version,
            parts: day.parts.clone(),
        };
        all.insert(
            key,
            Answer {
                basis,
                since,
                until,
                slots,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(version: u64, parts: &[(&str, u64)]) -> DayView {
        DayView {
            version,
            reservations: Vec::new(),
            parts: parts.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn an_answer_is_found_only_from_the_same_settings_and_view_and_before_it_may_change() {
        let answers = Answers::default();
        let key = (Uuid::new_v4(), LocalDate::parse("2026-12-05").unwrap(), 2);
        let t0 = DateTime::parse_from_rfc3339("2026-12-05T17:00:00Z")
            .unwrap()
            .to_utc();
        let until = t0 + chrono::Duration::minutes(5);
        let v = day(7, &[("", 7)]);
        assert!(answers.get(key, 1, &v, t0).is_none());
        let slots = Arc::new(Vec::new());
        answers.put(key, 1, &v, (t0, until), Arc::clone(&slots));
        let hit = answers.get(key, 1, &v, until - chrono::Duration::milliseconds(1));
        assert!(hit.is_some_and(|s| Arc::ptr_eq(&s, &slots)));
        assert!(answers.get(key, 1, &v, t0).is_some());
        assert!(
            answers.get(key, 1, &v, until).is_none(),
            "at its first start or expiry"
        );
        let before = t0 - chrono::Duration::milliseconds(1);
        assert!(
            answers.get(key, 1, &v, before).is_none(),
            "a clock stepped back"
        );
        assert!(answers.get(key, 2, &v, t0).is_none(), "settings changed");
        assert!(
            answers.get(key, 1, &day(8, &[("", 8)]), t0).is_none(),
            "the date changed"
        );
        // DynamoDB: the same sum from other parts is another view.
        answers.put(
            key,
            1,
            &day(7, &[("a", 3), ("b", 4)]),
            (t0, until),
            Arc::clone(&slots),
        );
        assert!(answers
            .get(key, 1, &day(7, &[("a", 4), ("b", 3)]), t0)
            .is_none());
        let other = (key.0, key.1, 3);
        assert!(answers
            .get(other, 1, &day(7, &[("a", 3), ("b", 4)]), t0)
            .is_none());
    }
}
