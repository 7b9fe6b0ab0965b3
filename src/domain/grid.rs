//! The bookable-start grid (docs/http-api.md, "Bookable starts").
use super::time::{boundary_instant, local_date_of, start_instant, LocalDate, WallTime};
use super::{FieldError, PartySize, Restaurant};
use chrono::{DateTime, Datelike, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub time: WallTime,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Why a date can have no bookable start at all (past, beyond the horizon, closed), before
/// looking at hours.
pub fn date_error(r: &Restaurant, date: LocalDate, now: DateTime<Utc>) -> Option<FieldError> {
    date_rejection(r, date, now)
}

/// Why a date has no bookable starts at all, before looking at hours.
fn date_rejection(r: &Restaurant, date: LocalDate, now: DateTime<Utc>) -> Option<FieldError> {
    let today = local_date_of(r.tz(), now);
    if date < today {
        return Some(FieldError::new("date", "is in the past"));
    }
    let horizon = today.naive() + chrono::Days::new(u64::from(r.booking_horizon_days));
    if date.naive() > horizon {
        return Some(FieldError::new(
            "date",
            format!(
                "is beyond the booking horizon of {} days",
                r.booking_horizon_days
            ),
        ));
    }
    if r.is_closed(date) {
        return Some(FieldError::new(
            "date",
            "the restaurant is closed on that date",
        ));
    }
    None
}

/// The opening of `date`'s weekday as disjoint spans `(open, close)`, in order: periods of one
/// weekday that overlap or touch count as their union (12:00–14:00 and 13:00–16:00 are one span,
/// 12:00–16:00, so a turn may start in one and end in the other).
fn spans(r: &Restaurant, date: LocalDate) -> Vec<(WallTime, WallTime)> {
    let weekday = date.naive().weekday();
    let mut periods: Vec<(WallTime, WallTime)> = r
        .hours
        .iter()
        .filter(|h| h.days.iter().any(|d| d.0 == weekday) && h.open < h.close)
        .map(|h| (h.open, h.close))
        .collect();
    periods.sort();
    // Touching is measured in instants: a close inside a DST gap is the first instant after
    // it, so 00:00–02:30 and 03:00–05:00 touch on a day whose 02:00–03:00 does not exist.
    let at = |t: WallTime| boundary_instant(r.tz(), date, t);
    let mut spans: Vec<(WallTime, WallTime)> = Vec::with_capacity(periods.len());
    for (open, close) in periods {
        match spans.last_mut() {
            Some(last) if open <= last.1 || at(open) <= at(last.1) => last.1 = last.1.max(close),
            _ => spans.push((open, close)),
        }
    }
    spans
}

/// `now` rounded up onto the restaurant's slot grid: the first instant at or after `now` whose
/// wall time on the restaurant's clock is a multiple of `slot_minutes` from local midnight
/// (either occurrence of an ambiguous wall time; none inside a DST gap), or the next local
/// midnight.
pub fn ceil_to_grid(r: &Restaurant, now: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::TimeZone;
    let tz = r.tz();
    let date = local_date_of(tz, now);
    let step = u16::try_from(r.slot_minutes.clamp(1, 1440)).unwrap_or(1440);
    (0..1440u16)
        .step_by(usize::from(step))
        .flat_map(|m| {
            let local = super::time::naive_at(date, WallTime::from_minutes(m));
            let found = tz.from_local_datetime(&local);
            [found.earliest(), found.latest()]
        })
        .flatten()
        .map(|d| d.with_timezone(&Utc))
        // The earliest, not the first in wall-clock order: during the first pass of a repeated
        // hour, a slot of the second pass comes earlier in that order but later in time.
        .filter(|t| *t >= now)
        .min()
        .unwrap_or_else(|| boundary_instant(tz, date.succ(), WallTime::from_minutes(0)))
}

/// The start at minute `m` of `date` in the span `(open, close)`, if it is on the grid, its turn
/// ends by the span's close and it is still ahead of `now`.
fn start_in(
    r: &Restaurant,
    date: LocalDate,
    (open, close): (WallTime, WallTime),
    m: u16,
    turn: chrono::Duration,
    now: DateTime<Utc>,
) -> Option<Slot> {
    let (o, c) = (open.minutes(), close.minutes());
    if m < o || m >= c || u32::from(m).checked_rem(r.slot_minutes) != Some(0) {
        return None;
    }
    let time = WallTime::from_minutes(m);
    let start = start_instant(r.tz(), date, time)?;
    let end = start + turn;
    (end <= boundary_instant(r.tz(), date, close) && start > now).then_some(Slot {
        time,
        start,
        end,
    })
}

/// Whether `date` may have a bookable start for a party of `p` at all: false for a past date,
/// one beyond the horizon, a closed date, or a party no seating option takes. Then there is
/// nothing to look up in the date's reservations.
pub fn may_have_starts(r: &Restaurant, date: LocalDate, p: PartySize, now: DateTime<Utc>) -> bool {
    date_rejection(r, date, now).is_none() && r.seats(p)
}

/// Every bookable start for a party on a date, in order.
pub fn bookable_starts(
    r: &Restaurant,
    date: LocalDate,
    p: PartySize,
    now: DateTime<Utc>,
) -> Vec<Slot> {
    if !may_have_starts(r, date, p, now) {
        return Vec::new();
    }
    let turn = r.turn(p);
    let Some(step) = usize::try_from(r.slot_minutes).ok().filter(|s| *s > 0) else {
        return Vec::new();
    };
    let mut starts = BTreeMap::new();
    for span in spans(r, date) {
        for m in (span.0.minutes()..span.1.minutes()).step_by(step) {
            if let Some(slot) = start_in(r, date, span, m, turn, now) {
                starts.insert(m, slot);
            }
        }
    }
    starts.into_values().collect()
}

/// The bookable start at `time` (one of `bookable_starts`, found without listing them).
fn bookable_start(
    r: &Restaurant,
    date: LocalDate,
    p: PartySize,
    time: WallTime,
    now: DateTime<Utc>,
) -> Option<Slot> {
    let turn = r.turn(p);
    spans(r, date)
        .into_iter()
        .find_map(|span| start_in(r, date, span, time.minutes(), turn, now))
}

/// The bookable start at `time`, or the rule it breaks.
pub fn check_start(
    r: &Restaurant,
    date: LocalDate,
    time: WallTime,
    p: PartySize,
    now: DateTime<Utc>,
) -> Result<Slot, FieldError> {
    if !r.seats(p) {
        return Err(FieldError::new(
            "party_size",
            "no table or combination fits a party of this size",
        ));
    }
    if let Some(e) = date_rejection(r, date, now) {
        return Err(e);
    }
    if u32::from(time.minutes()).checked_rem(r.slot_minutes) != Some(0) {
        return Err(FieldError::new(
            "time",
            format!("is not on the {}-minute grid", r.slot_minutes),
        ));
    }
    if let Some(slot) = bookable_start(r, date, p, time, now) {
        return Ok(slot);
    }
    match start_instant(r.tz(), date, time) {
        None => Err(FieldError::new(
            "time",
            "does not exist on that date (DST change)",
        )),
        Some(s) if s <= now => Err(FieldError::new("time", "has already passed")),
        Some(_) => Err(FieldError::new(
            "time",
            "is not a bookable start within opening hours for this party size",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::restaurant::tests::paris;
    use crate::domain::time::fmt_slot_instant;
    use chrono::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn ceil_to_grid_rounds_up_onto_local_slots() {
        let mut r = paris();
        r.validate().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 12, 5, 18, 7, 30).unwrap();
        assert_eq!(
            ceil_to_grid(&r, t),
            Utc.with_ymd_and_hms(2026, 12, 5, 18, 15, 0).unwrap()
        );
        let on = Utc.with_ymd_and_hms(2026, 12, 5, 18, 15, 0).unwrap();
        assert_eq!(ceil_to_grid(&r, on), on);
        // Past the day's last slot: the next local midnight (Paris is UTC+1 in December).
        let late = Utc.with_ymd_and_hms(2026, 12, 5, 22, 50, 0).unwrap();
        assert_eq!(
            ceil_to_grid(&r, late),
            Utc.with_ymd_and_hms(2026, 12, 5, 23, 0, 0).unwrap()
        );
    }

    #[test]
    fn ceil_to_grid_follows_the_wall_clock_across_a_dst_shift() {
        // Lord Howe moves 30 minutes: on 2027-10-03 02:00 local becomes 02:30. With an hourly
        // grid, 03:10 local (16:10Z, UTC+11) rounds up to 04:00 local (17:00Z), not to the hour
        // of real time elapsed since midnight (03:30 local).
        let mut r = paris();
        r.timezone = chrono_tz::Australia::Lord_Howe;
        r.slot_minutes = 60;
        r.validate().unwrap();
        let t = Utc.with_ymd_and_hms(2027, 10, 2, 16, 10, 0).unwrap();
        assert_eq!(
            ceil_to_grid(&r, t),
            Utc.with_ymd_and_hms(2027, 10, 2, 17, 0, 0).unwrap()
        );
        // New York falls back on 2027-11-07 (01:00–02:00 twice, 15-minute grid): 01:10 of
        // the second pass (06:10Z) rounds to 01:15 of that pass (06:15Z).
        r.timezone = chrono_tz::America::New_York;
        r.slot_minutes = 15;
        r.validate().unwrap();
        let second = Utc.with_ymd_and_hms(2027, 11, 7, 6, 10, 0).unwrap();
        assert_eq!(
            ceil_to_grid(&r, second),
            Utc.with_ymd_and_hms(2027, 11, 7, 6, 15, 0).unwrap()
        );
        // 01:10 of the first pass (05:10Z, EDT) rounds to 01:15 of that pass (05:15Z), not to
        // 01:00 of the second (06:00Z).
        let first = Utc.with_ymd_and_hms(2027, 11, 7, 5, 10, 0).unwrap();
        assert_eq!(
            ceil_to_grid(&r, first),
            Utc.with_ymd_and_hms(2027, 11, 7, 5, 15, 0).unwrap()
        );
        // Lord Howe's repeated half hour (2027-04-04, 02:00 +11 becomes 01:30 +10:30): 01:40
        // of the first pass (14:40Z) rounds to 01:45 of it (14:45Z).
        r.timezone = chrono_tz::Australia::Lord_Howe;
        r.validate().unwrap();
        let half = Utc.with_ymd_and_hms(2027, 4, 3, 14, 40, 0).unwrap();
        assert_eq!(
            ceil_to_grid(&r, half),
            Utc.with_ymd_and_hms(2027, 4, 3, 14, 45, 0).unwrap()
        );
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }
    fn d(s: &str) -> LocalDate {
        LocalDate::parse(s).unwrap()
    }
    fn p(n: i64) -> PartySize {
        PartySize::new(n).unwrap()
    }
    fn times(v: &[Slot]) -> Vec<String> {
        v.iter().map(|s| s.time.to_string()).collect()
    }

    #[test]
    fn a_plain_evening_offers_starts_that_end_by_close() {
        let mut r = paris();
        r.validate().unwrap();
        let v = bookable_starts(&r, d("2026-12-05"), p(2), now());
        assert_eq!(v.first().unwrap().time.to_string(), "18:00");
        assert_eq!(v.last().unwrap().time.to_string(), "21:30");
        assert_eq!(v.len(), 15);
        assert_eq!(fmt_slot_instant(v[4].start), "2026-12-05T18:00:00Z");
        assert_eq!(fmt_slot_instant(v[4].end), "2026-12-05T19:30:00Z");
    }

    #[test]
    fn periods_of_one_day_that_overlap_or_touch_count_as_their_union() {
        for (a, b) in [
            (("12:00", "14:00"), ("13:00", "16:00")),
            (("12:00", "14:00"), ("14:00", "16:00")),
        ] {
            let mut r = paris();
            let period = |(open, close): (&str, &str)| {
                let mut h = r.hours[0].clone();
                h.open = WallTime::parse(open).unwrap();
                h.close = WallTime::parse(close).unwrap();
                h
            };
            r.hours = vec![period(b), period(a)];
            r.validate().unwrap();
            let v = bookable_starts(&r, d("2026-12-05"), p(2), now());
            // 12:00–16:00 with a 90-minute turn: every quarter from 12:00 to 14:30, 12:45 (in
            // neither period alone) included.
            let want: Vec<String> = (0..11)
                .map(|i| WallTime::from_minutes(12 * 60 + 15 * i).to_string())
                .collect();
            assert_eq!(times(&v), want, "{a:?} + {b:?}");
            let at = WallTime::parse("12:45").unwrap();
            assert_eq!(
                check_start(&r, d("2026-12-05"), at, p(2), now())
                    .unwrap()
                    .time,
                at
            );
        }
    }

    #[test]
    fn closed_past_and_beyond_horizon_dates_have_no_starts() {
        let mut r = paris();
        r.booking_horizon_days = 30;
        r.validate().unwrap();
        assert!(bookable_starts(&r, d("2026-12-25"), p(2), now()).is_empty());
        assert!(bookable_starts(&r, d("2026-11-27"), p(2), now()).is_empty());
        assert!(bookable_starts(&r, d("2026-12-29"), p(2), now()).is_empty());
        assert!(!bookable_starts(&r, d("2026-12-28"), p(2), now()).is_empty());
        assert!(bookable_starts(&r, d("2026-12-05"), p(5), now()).is_empty());
    }

    #[test]
    fn spring_forward_skips_the_gap_and_counts_real_minutes() {
        let mut r = paris();
        r.hours[0].open = WallTime::parse("01:00").unwrap();
        r.hours[0].close = WallTime::parse("05:00").unwrap();
        r.validate().unwrap();
        let v = bookable_starts(&r, d("2027-03-28"), p(2), now());
        // 02:00–02:45 do not exist; 01:00 + 90 real minutes ends 03:30 local.
        assert!(!times(&v).iter().any(|t| t.starts_with("02:")));
        assert_eq!(fmt_slot_instant(v[0].end), "2027-03-28T01:30:00Z");
        // close 05:00 local = 03:00Z; the last start ends there: 03:30 local (01:30Z).
        assert_eq!(v.last().unwrap().time.to_string(), "03:30");
    }

    #[test]
    fn fall_back_uses_the_first_occurrence_of_repeated_times() {
        let mut r = paris();
        r.hours[0].open = WallTime::parse("01:00").unwrap();
        r.hours[0].close = WallTime::parse("04:00").unwrap();
        r.validate().unwrap();
        let v = bookable_starts(&r, d("2027-10-31"), p(2), now());
        let s0230 = v.iter().find(|s| s.time.to_string() == "02:30").unwrap();
        assert_eq!(fmt_slot_instant(s0230.start), "2027-10-31T00:30:00Z");
        // 04:00 local is 03:00Z; 02:45 (first occurrence, 00:45Z) + 90 min = 02:15Z fits, 03:00 (02:00Z) does not.
        assert_eq!(v.last().unwrap().time.to_string(), "02:45");
    }

    #[test]
    fn new_york_spring_forward_has_no_2am_starts() {
        let mut r = paris();
        r.timezone = "America/New_York".parse().unwrap();
        r.hours[0].open = WallTime::parse("00:00").unwrap();
        r.hours[0].close = WallTime::parse("24:00").unwrap();
        r.validate().unwrap();
        let v = bookable_starts(&r, d("2027-03-14"), p(2), now());
        assert!(!times(&v).iter().any(|t| t.starts_with("02:")));
        // the day has 23 real hours: last start is 22:30 local ending at midnight.
        assert_eq!(v.last().unwrap().time.to_string(), "22:30");
    }

    #[test]
    fn periods_that_meet_across_a_dst_gap_count_as_one() {
        // 2027-03-14 in New York: 02:00–03:00 does not exist, so a 02:30 close is 03:00 EDT,
        // the instant the 03:00 period opens. 00:00–02:30 + 03:00–05:00 is 00:00–05:00.
        let mut r = paris();
        r.timezone = "America/New_York".parse().unwrap();
        let mut late = r.hours[0].clone();
        r.hours[0].open = WallTime::parse("00:00").unwrap();
        r.hours[0].close = WallTime::parse("02:30").unwrap();
        late.open = WallTime::parse("03:00").unwrap();
        late.close = WallTime::parse("05:00").unwrap();
        r.hours.push(late);
        r.validate().unwrap();
        let mut whole = r.clone();
        whole.hours.truncate(1);
        whole.hours[0].close = WallTime::parse("05:00").unwrap();
        let day = d("2027-03-14");
        let split = bookable_starts(&r, day, p(2), now());
        assert_eq!(
            times(&split),
            times(&bookable_starts(&whole, day, p(2), now()))
        );
        // 01:00 with a 90-minute turn ends at 03:30 EDT, across the meeting point.
        assert!(
            times(&split).contains(&"01:00".to_string()),
            "{:?}",
            times(&split)
        );
    }

    #[test]
    fn check_start_names_the_broken_rule() {
        let mut r = paris();
        r.validate().unwrap();
        let e = check_start(
            &r,
            d("2026-12-05"),
            WallTime::parse("19:07").unwrap(),
            p(2),
            now(),
        );
        assert_eq!(e.unwrap_err().field, "time");
        let e = check_start(
            &r,
            d("2026-12-05"),
            WallTime::parse("22:00").unwrap(),
            p(2),
            now(),
        );
        assert!(e.unwrap_err().message.contains("opening hours"));
        let e = check_start(
            &r,
            d("2026-12-05"),
            WallTime::parse("19:00").unwrap(),
            p(9),
            now(),
        );
        assert_eq!(e.unwrap_err().field, "party_size");
        assert!(check_start(
            &r,
            d("2026-12-05"),
            WallTime::parse("19:00").unwrap(),
            p(2),
            now()
        )
        .is_ok());
    }

    fn arb_tz() -> impl Strategy<Value = chrono_tz::Tz> {
        prop::sample::select(vec![
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "America/Santiago",
            "Pacific/Chatham",
            "UTC",
            "Europe/London",
        ])
        .prop_map(|s| s.parse().unwrap())
    }

    proptest! {
        #[test]
        fn every_start_lies_on_the_grid_within_hours_and_ends_by_close(
            tz in arb_tz(),
            day in 0u64..700,
            slot in prop::sample::select(vec![5u32, 10, 15, 20, 30, 60]),
            open_slots in 0u16..40,
            len_slots in 1u16..60,
            party in 1i64..8,
        ) {
            let mut r = paris();
            r.timezone = tz;
            r.slot_minutes = slot;
            r.booking_horizon_days = 730;
            let open = (open_slots * slot as u16).min(1440 - slot as u16);
            let close = (open + len_slots * slot as u16).min(1440);
            r.hours[0].open = WallTime::from_minutes(open);
            r.hours[0].close = WallTime::from_minutes(close);
            r.tables[1].max_party = 8;
            r.closed_dates.clear();
            r.validate().unwrap();
            // A date after the local today of the zone: from Chatham (UTC+13:45) the UTC date
            // can already be today, with its early starts past.
            let date = LocalDate::from_naive(local_date_of(tz, now()).naive() + chrono::Days::new(day + 1));
            let v = bookable_starts(&r, date, p(party), now());
            let close_i = boundary_instant(tz, date, WallTime::from_minutes(close));
            let mut prev: Option<Slot> = None;
            for s in &v {
                prop_assert_eq!(u32::from(s.time.minutes()) % slot, 0);
                prop_assert!(s.time.minutes() >= open && s.time.minutes() < close);
                prop_assert!(s.end <= close_i);
                prop_assert_eq!(s.end - s.start, r.turn(p(party)));
                prop_assert_eq!(local_date_of(tz, s.start), date);
                prop_assert_eq!(crate::domain::time::local_time_of(tz, s.start), s.time);
                if let Some(pr) = prev {
                    prop_assert!(pr.time < s.time && pr.start < s.start);
                }
                prev = Some(*s);
            }
            // Every existing grid time that fits is offered: nothing is lost.
            for m in (open..close).step_by(slot as usize) {
                let t = WallTime::from_minutes(m);
                if let Some(st) = start_instant(tz, date, t) {
                    let fits = st + r.turn(p(party)) <= close_i;
                    prop_assert_eq!(fits, v.iter().any(|s| s.time == t));
                }
            }
            // `check_start` finds a start without listing them: at every minute of the day
            // it accepts exactly the listed starts, with the same slot.
            for m in 0..1440u16 {
                let t = WallTime::from_minutes(m);
                let listed = v.iter().find(|s| s.time == t).copied();
                prop_assert_eq!(check_start(&r, date, t, p(party), now()).ok(), listed);
            }
        }
    }
}
