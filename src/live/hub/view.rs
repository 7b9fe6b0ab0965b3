//! Pure view code of a channel: what one view shows at a version, and what changed between two
//! states of it. No I/O, no async.
use crate::domain::availability::{self, Availability};
use crate::domain::{Cause, LocalDate, PartySize, Reservation, Restaurant, Status};
use crate::wire::floor::{floor_tables, pacing_windows, FloorBody, PacingWindow};
use crate::wire::frames::{self, SnapshotData};
use crate::wire::WaitlistEntryView;
use crate::wire::{AvailabilityBody, FloorTable, SlotBody};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;

/// What a subscription watches on its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Party(PartySize),
    Floor,
    /// One waitlist entry of the date.
    Entry(uuid::Uuid),
}

impl View {
    /// Whether the view shows the date's waitlist (so the channel must read it).
    pub fn needs_waitlist(self) -> bool {
        matches!(self, View::Floor | View::Entry(_))
    }
}

/// One view's state at a version: what its subscribers were last sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub slots: Vec<SlotBody>,
    pub tables: Vec<FloorTable>,
    pub pacing: Vec<PacingWindow>,
    pub waitlist: Vec<WaitlistEntryView>,
    pub entry: Option<WaitlistEntryView>,
}

/// Computes a view of `day` (the reservations of the date and the day before) and its snapshot.
pub fn compute(
    r: &Restaurant,
    date: LocalDate,
    version: u64,
    day: &[Reservation],
    waitlist: &[WaitlistEntryView],
    view: View,
    now: DateTime<Utc>,
) -> (State, Arc<str>) {
    match view {
        View::Party(p) => {
            let slots = availability::availability(r, date, p, now, day);
            let body = AvailabilityBody::from(&Availability {
                restaurant: r.clone(),
                date,
                party_size: p,
                version,
                slots,
            });
            let state = State {
                slots: body.slots.clone(),
                ..State::default()
            };
            (
                state,
                frames::snapshot(version, SnapshotData::Availability(body)),
            )
        }
        View::Floor => {
            let tables = floor_tables(r, date, day, now);
            let pacing = pacing_windows(r, date, day, now);
            let waitlist = waitlist.to_vec();
            let state = State {
                tables: tables.clone(),
                pacing: pacing.clone(),
                waitlist: waitlist.clone(),
                ..State::default()
            };
            let body = FloorBody {
                tables,
                pacing,
                waitlist,
            };
            (state, frames::snapshot(version, SnapshotData::Floor(body)))
        }
        View::Entry(id) => {
            let entry = waitlist.iter().find(|e| e.id == id).cloned();
            let state = State {
                entry: entry.clone(),
                ..State::default()
            };
            (state, frames::snapshot(version, SnapshotData::Entry(entry)))
        }
    }
}

/// Until when a view's `state`, computed at `at` from `day`, stays what [`compute`] gives as
/// time passes and nothing is written: its first listed start (a start stops being listed once
/// it passes) and the first expiry after `at` of a hold in the day (a hold past its expiry is
/// free before any sweep); for a floor or an entry, a minute at most (what else they show moves
/// with the clock). `None`: for as long as nothing is written.
pub fn valid_until(
    view: View,
    state: &State,
    day: &[Reservation],
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let first_start = state
        .slots
        .iter()
        .filter_map(|s| s.start.parse::<DateTime<Utc>>().ok())
        .min();
    let first_expiry = availability::first_expiry_after(day, at);
    let clock = match view {
        View::Party(_) => None,
        View::Floor | View::Entry(_) => Some(at + chrono::Duration::minutes(1)),
    };
    [first_start, first_expiry, clock]
        .into_iter()
        .flatten()
        .min()
}

/// The update frame that takes subscribers from `old` to `new`, or `None` when nothing they see
/// changed: the slots whose count (free options or covers left) moved, or each changed table
/// whole with every pacing window of the date.
pub fn diff(
    view: View,
    old: &State,
    new: &State,
    version: u64,
    cause: Cause,
    at: DateTime<Utc>,
) -> Option<Arc<str>> {
    match view {
        View::Party(_) => {
            let changed: Vec<SlotBody> = new
                .slots
                .iter()
                .filter(|s| !old.slots.contains(s))
                .cloned()
                .collect();
            (!changed.is_empty()).then(|| frames::slots_update(version, cause, at, changed))
        }
        View::Floor => {
            let changed: Vec<FloorTable> = new
                .tables
                .iter()
                .filter(|t| !old.tables.contains(t))
                .cloned()
                .collect();
            (!changed.is_empty() || old.pacing != new.pacing || old.waitlist != new.waitlist).then(
                || {
                    frames::tables_update(
                        version,
                        cause,
                        at,
                        changed,
                        new.pacing.clone(),
                        new.waitlist.clone(),
                    )
                },
            )
        }
        View::Entry(_) => match (&old.entry, &new.entry) {
            (a, Some(b)) if a.as_ref() != Some(b) => {
                Some(frames::entry_update(version, cause, at, b.clone()))
            }
            _ => None,
        },
    }
}

/// The newest reservation change between two reads of a day, as a cause and its commit time.
/// Linear in the size of both reads. Day reads leave released and expired holds and cancelled
/// reservations out, so a hold that was in the first read and is gone from the second was
/// released, or expired (past its `expires_at` by `now`), and any other reservation gone from
/// it was cancelled; its commit time is not in the read, so `now` stands in for it. (A floor's
/// channel passes its cancelled reservations with each read: then a cancellation is a change
/// with its own commit time.)
pub fn latest_change(
    old: &[Reservation],
    new: &[Reservation],
    now: DateTime<Utc>,
) -> Option<(Cause, DateTime<Utc>)> {
    let seen: HashSet<(uuid::Uuid, DateTime<Utc>, Status)> =
        old.iter().map(|o| (o.id, o.updated_at, o.status)).collect();
    let changed = new
        .iter()
        .filter(|r| !seen.contains(&(r.id, r.updated_at, r.status)))
        .max_by_key(|r| r.updated_at)
        .map(|r| (cause_of(r), r.updated_at));
    changed.or_else(|| {
        let still: HashSet<uuid::Uuid> = new.iter().map(|r| r.id).collect();
        let gone: Vec<&Reservation> = old.iter().filter(|o| !still.contains(&o.id)).collect();
        if gone.is_empty() {
            return None;
        }
        if gone.iter().all(|o| o.status != Status::Held) {
            return Some((Cause::Cancelled, now));
        }
        let gone: Vec<&Reservation> = gone
            .into_iter()
            .filter(|o| o.status == Status::Held)
            .collect();
        let expired = gone.iter().all(|o| o.expires_at.is_some_and(|e| e <= now));
        Some((
            if expired {
                Cause::Expired
            } else {
                Cause::Released
            },
            now,
        ))
    })
}

/// The cause a reservation's last change had, read from its status.
fn cause_of(r: &Reservation) -> Cause {
    match r.status {
        Status::Held => Cause::Held,
        Status::Confirmed => Cause::Confirmed,
        Status::Released => Cause::Released,
        Status::Expired => Cause::Expired,
        Status::Cancelled => Cause::Cancelled,
        Status::Seated if r.created_at == r.updated_at => Cause::WalkIn,
        Status::Seated => Cause::Seated,
        Status::Completed => Cause::Completed,
        Status::NoShow => Cause::NoShow,
    }
}

/// [`latest_change`], knowing what became of the reservations gone from the day: `gone` holds
/// them as the store has them now (released, cancelled, expired, or a hold past its expiry not
/// swept yet, whose change is its `expires_at`), each with the commit time of its change. The
/// newest change of either kind wins, so a release after a hold is named with its own cause
/// and commit time, not the hold's, nor the time of the read. A gone reservation the store no
/// longer has (purged) is left to [`latest_change`]'s inference.
pub fn latest_change_knowing(
    old: &[Reservation],
    new: &[Reservation],
    gone: &[Reservation],
    now: DateTime<Utc>,
) -> Option<(Cause, DateTime<Utc>)> {
    let ended = gone
        .iter()
        .map(|r| match (r.status, r.expires_at) {
            (Status::Held, Some(x)) if x <= now => (Cause::Expired, x),
            _ => (cause_of(r), r.updated_at),
        })
        .max_by_key(|(_, at)| *at);
    // The rest of the changes: those of the day, and the gone ones the store did not have.
    let known: HashSet<uuid::Uuid> = gone.iter().map(|r| r.id).collect();
    let rest: Vec<Reservation> = old
        .iter()
        .filter(|o| !known.contains(&o.id))
        .cloned()
        .collect();
    match (ended, latest_change(&rest, new, now)) {
        (Some(e), Some(o)) => Some(if e.1 > o.1 { e } else { o }),
        (e, o) => e.or(o),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::restaurant::{default_turns, Day, HoursPeriod};
    use crate::domain::Table;
    use crate::domain::{TableId, WallTime};
    use chrono::{Duration, TimeZone};
    use serde_json::Value;

    /// A UTC restaurant (nil id) open 18:00–23:00 every day, 30-minute slots, with `tables`
    /// (id, largest party): the hub's tests build theirs from it too.
    pub(in crate::live::hub) fn restaurant_with(tables: &[(&str, u32)]) -> Restaurant {
        let table = |&(id, max): &(&str, u32)| Table {
            id: TableId::parse(id).unwrap(),
            label: id.to_uppercase(),
            min_party: 1,
            max_party: max,
            area: None,
        };
        Restaurant {
            id: uuid::Uuid::nil(),
            name: "Test".into(),
            timezone: chrono_tz::UTC,
            slot_minutes: 30,
            hold_seconds: 300,
            offer_seconds: 120,
            booking_horizon_days: 60,
            turn_minutes: default_turns(),
            hours: vec![HoursPeriod {
                days: (0u8..7)
                    .map(|i| Day(chrono::Weekday::try_from(i).unwrap()))
                    .collect(),
                open: WallTime::parse("18:00").unwrap(),
                close: WallTime::parse("23:00").unwrap(),
            }],
            closed_dates: vec![],
            tables: tables.iter().map(table).collect(),
            combinations: vec![],
            pacing: None,
        }
    }

    fn restaurant() -> Restaurant {
        restaurant_with(&[("t1", 2), ("t2", 4)])
    }

    /// A party of two held on `table` of `r` at `at` on `date`, for 90 minutes.
    pub(in crate::live::hub) fn held(
        r: &Restaurant,
        table: &str,
        date: LocalDate,
        at: &str,
        now: DateTime<Utc>,
    ) -> Reservation {
        let time = WallTime::parse(at).unwrap();
        let clock = chrono::NaiveTime::parse_from_str(at, "%H:%M").unwrap();
        let start = Utc.from_utc_datetime(&date.naive().and_time(clock));
        Reservation {
            id: uuid::Uuid::new_v4(),
            restaurant_id: r.id,
            table_id: TableId::parse(table).unwrap(),
            table_ids: vec![TableId::parse(table).unwrap()],
            combination_id: None,
            date,
            time,
            start,
            end: start + Duration::minutes(90),
            party_size: 2,
            status: Status::Held,
            expires_at: Some(now + Duration::minutes(5)),
            guest: None,
            notes: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn setup() -> (Restaurant, LocalDate, DateTime<Utc>) {
        let now = Utc::now();
        let date = LocalDate::from_naive(now.date_naive() + chrono::Days::new(3));
        (restaurant(), date, now)
    }

    #[test]
    fn a_hold_updates_exactly_the_slots_it_moved() {
        let (r, date, now) = setup();
        let p = View::Party(PartySize::new(2).unwrap());
        let (before, _) = compute(&r, date, 1, &[], &[], p, now);
        let day = vec![held(&r, "t1", date, "19:00", now)];
        let (after, _) = compute(&r, date, 2, &day, &[], p, now);
        let frame = diff(p, &before, &after, 2, Cause::Held, now).expect("a change");
        let v: Value = serde_json::from_str(&frames::close_shared(&frame, "\"a\"")).unwrap();
        let times: Vec<&str> = v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["time"].as_str().unwrap())
            .collect();
        // A 90-minute turn at 19:00 blocks the starts from 17:30+ to 20:00 on a 30-min grid.
        assert_eq!(times, ["18:00", "18:30", "19:00", "19:30", "20:00"]);
        assert!(v["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["available_tables"] == 1));
        assert_eq!(v["cause"], "held");
        assert_eq!(v["version"], 2);
    }

    #[test]
    fn a_view_stays_valid_until_its_first_start_or_hold_expiry_and_a_floor_a_minute() {
        let (r, date, now) = setup();
        let p = View::Party(PartySize::new(2).unwrap());
        let (quiet, _) = compute(&r, date, 1, &[], &[], p, now);
        let first = Utc.from_utc_datetime(&date.naive().and_hms_opt(18, 0, 0).unwrap());
        assert_eq!(
            valid_until(p, &quiet, &[], now),
            Some(first),
            "the first start"
        );
        let day = vec![held(&r, "t1", date, "19:00", now)];
        let expiry = day[0].expires_at.unwrap();
        let (state, _) = compute(&r, date, 2, &day, &[], p, now);
        assert_eq!(valid_until(p, &state, &day, now), Some(expiry.min(first)));
        // No start listed and no hold: nothing but a write changes it (no refresh at all).
        let closed = State::default();
        assert_eq!(valid_until(p, &closed, &[], now), None);
        let (floor, _) = compute(&r, date, 1, &[], &[], View::Floor, now);
        assert_eq!(
            valid_until(View::Floor, &floor, &[], now),
            Some(now + Duration::minutes(1))
        );
    }

    #[test]
    fn a_change_a_view_cannot_see_sends_it_nothing() {
        let (r, date, now) = setup();
        let p = View::Party(PartySize::new(4).unwrap());
        let (before, _) = compute(&r, date, 1, &[], &[], p, now);
        // t1 seats at most 2: a party of 4 never sees it.
        let day = vec![held(&r, "t1", date, "19:00", now)];
        let (after, _) = compute(&r, date, 2, &day, &[], p, now);
        assert_eq!(diff(p, &before, &after, 2, Cause::Held, now), None);
    }

    #[test]
    fn the_floor_sends_each_changed_table_whole() {
        let (r, date, now) = setup();
        let (before, _) = compute(&r, date, 1, &[], &[], View::Floor, now);
        let day = vec![held(&r, "t2", date, "20:00", now)];
        let (after, snap) = compute(&r, date, 2, &day, &[], View::Floor, now);
        let frame = diff(View::Floor, &before, &after, 2, Cause::Held, now).unwrap();
        let v: Value = serde_json::from_str(&frames::close_shared(&frame, "\"f\"")).unwrap();
        assert_eq!(v["tables"].as_array().unwrap().len(), 1);
        assert_eq!(v["tables"][0]["id"], "t2");
        assert_eq!(v["tables"][0]["reservations"][0]["time"], "20:00");
        let s: Value = serde_json::from_str(&frames::close_shared(&snap, "\"f\"")).unwrap();
        assert_eq!(s["data"]["tables"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn latest_change_names_the_newest_new_or_changed_reservation() {
        let (r, date, now) = setup();
        let a = held(&r, "t1", date, "19:00", now);
        let mut b = held(&r, "t2", date, "19:00", now + Duration::seconds(1));
        b.updated_at = now + Duration::seconds(1);
        let one = std::slice::from_ref(&a);
        assert_eq!(latest_change(one, one, now), None);
        assert_eq!(
            latest_change(one, &[a.clone(), b.clone()], now),
            Some((Cause::Held, b.updated_at))
        );
        let mut released = a.clone();
        released.status = Status::Released;
        released.updated_at = now + Duration::seconds(2);
        assert_eq!(
            latest_change(&[a.clone(), b.clone()], &[released.clone(), b.clone()], now),
            Some((Cause::Released, released.updated_at))
        );
    }

    #[test]
    fn a_hold_gone_from_the_day_was_released_or_expired() {
        let (r, date, now) = setup();
        let a = held(&r, "t1", date, "19:00", now);
        let b = held(&r, "t2", date, "20:00", now);
        let both = [a.clone(), b.clone()];
        // Day reads leave released and expired holds out: `a` is simply gone.
        assert_eq!(
            latest_change(&both, std::slice::from_ref(&b), now),
            Some((Cause::Released, now))
        );
        let later = a.expires_at.unwrap() + Duration::seconds(1);
        assert_eq!(
            latest_change(&both, std::slice::from_ref(&b), later),
            Some((Cause::Expired, later))
        );
    }

    /// Read again, a reservation gone from the day says what became of it and when: a release
    /// after a hold is the newest change, with its own commit time; a hold past its expiry that
    /// is not swept yet changed at its `expires_at`; one the store no longer has is inferred.
    #[test]
    fn a_gone_reservation_read_again_gives_its_own_cause_and_time() {
        let (r, date, now) = setup();
        let a = held(&r, "t1", date, "19:00", now);
        let b = held(&r, "t2", date, "20:00", now);
        let mut c = held(&r, "t3", date, "20:00", now + Duration::seconds(1));
        c.updated_at = now + Duration::seconds(1);
        let (old, new) = ([a.clone(), b.clone()], [b.clone(), c.clone()]);
        let mut released = a.clone();
        released.status = Status::Released;
        released.updated_at = now + Duration::seconds(2);
        let later = now + Duration::seconds(5);
        assert_eq!(
            latest_change_knowing(&old, &new, std::slice::from_ref(&released), later),
            Some((Cause::Released, released.updated_at))
        );
        // Released before the hold: the hold is the newest change.
        released.updated_at = now;
        assert_eq!(
            latest_change_knowing(&old, &new, std::slice::from_ref(&released), later),
            Some((Cause::Held, c.updated_at))
        );
        let lapsed = a.expires_at.unwrap() + Duration::seconds(1);
        assert_eq!(
            latest_change_knowing(
                &old,
                std::slice::from_ref(&b),
                std::slice::from_ref(&a),
                lapsed
            ),
            Some((Cause::Expired, a.expires_at.unwrap()))
        );
        assert_eq!(
            latest_change_knowing(&old, std::slice::from_ref(&b), &[], later),
            Some((Cause::Released, later))
        );
    }

    /// Day reads leave cancelled reservations out too: a confirmed one gone from the second
    /// read was cancelled; with the floor's cancelled list in the read, the cancellation is a
    /// change with its own commit time.
    #[test]
    fn a_booking_gone_from_the_day_was_cancelled() {
        let (r, date, now) = setup();
        let mut a = held(&r, "t1", date, "19:00", now);
        a.status = Status::Confirmed;
        let b = held(&r, "t2", date, "20:00", now);
        let both = [a.clone(), b.clone()];
        let later = now + Duration::seconds(5);
        assert_eq!(
            latest_change(&both, std::slice::from_ref(&b), later),
            Some((Cause::Cancelled, later))
        );
        let mut cancelled = a.clone();
        cancelled.status = Status::Cancelled;
        cancelled.updated_at = now + Duration::seconds(2);
        assert_eq!(
            latest_change(&both, &[cancelled.clone(), b], later),
            Some((Cause::Cancelled, cancelled.updated_at))
        );
    }
}
