//! Input never crashes the domain: arbitrary settings go through validation, and for every
//! restaurant that passes, arbitrary requests go through the grid, availability and holds.
use super::availability::{alternatives, availability};
use super::grid::{bookable_starts, check_start};
use super::restaurant::{Day, HoursPeriod, TurnRule};
use super::table::Table;
use super::{LocalDate, PartySize, Restaurant, TableId, WallTime};
use chrono::{Days, Utc, Weekday};
use proptest::prelude::*;

/// Mostly plausible values, sometimes anything: most restaurants pass validation and reach the
/// grid, and the extremes still meet validation.
fn num(plausible: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = u32> {
    prop_oneof![12 => plausible, 1 => any::<u32>()]
}

fn arb_turns() -> impl Strategy<Value = Vec<TurnRule>> {
    (
        prop::collection::vec(
            (num(1..=100), num(1..=600)).prop_map(|(m, minutes)| TurnRule {
                max_party: Some(m),
                minutes,
            }),
            0..3,
        ),
        prop::option::weighted(0.9, num(1..=720)),
    )
        .prop_map(|(mut v, catch_all)| {
            if let Some(minutes) = catch_all {
                v.push(TurnRule {
                    max_party: None,
                    minutes,
                });
            }
            v
        })
}

fn arb_hours() -> impl Strategy<Value = Vec<HoursPeriod>> {
    prop::collection::vec(
        (
            prop::collection::vec(0u8..7, 1..7),
            prop_oneof![3 => (0u16..=22).prop_map(|h| h * 60), 1 => (0u16..=288).prop_map(|m| m * 5)],
            prop_oneof![3 => (1u16..=6).prop_map(|h| h * 60), 1 => (0u16..=288).prop_map(|m| m * 5)],
        )
            .prop_map(|(days, open, len)| (days, open, (open + len).min(1440)))
            .prop_map(|(days, open, close)| HoursPeriod {
                days: days
                    .into_iter()
                    .map(|d| Day(Weekday::try_from(d).expect("0..7")))
                    .collect(),
                open: WallTime::from_minutes(open),
                close: WallTime::from_minutes(close),
            }),
        0..3,
    )
}

fn arb_tables() -> impl Strategy<Value = Vec<Table>> {
    prop::collection::vec((num(1..=2), num(2..=12)), 0..4).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (min_party, max_party))| Table {
                id: TableId::parse(&format!("t{i}")).expect("valid id"),
                label: format!("T{i}"),
                min_party,
                max_party,
                area: None,
            })
            .collect()
    })
}

fn arb_pacing() -> impl Strategy<Value = Option<super::Pacing>> {
    prop::option::of(
        (
            prop_oneof![
                10 => prop::sample::select(vec![5u32, 10, 15, 20, 30, 60]),
                1 => any::<u32>(),
            ],
            prop::option::of(num(1..=40)),
            prop::option::of(num(1..=8)),
        )
            .prop_map(|(window_minutes, max_covers, max_parties)| super::Pacing {
                window_minutes,
                max_covers,
                max_parties,
            }),
    )
}

fn arb_restaurant() -> impl Strategy<Value = Restaurant> {
    (
        prop_oneof![
            10 => prop::sample::select(vec![5u32, 10, 15, 20, 30, 60]),
            1 => any::<u32>(),
            1 => Just(65_536u32),
        ],
        num(1..=3600),
        num(1..=730),
        arb_turns(),
        arb_hours(),
        arb_tables(),
        prop::sample::select(vec![
            "Europe/Paris",
            "America/New_York",
            "Asia/Kathmandu",
            "UTC",
        ]),
        arb_pacing(),
    )
        .prop_map(
            |(slot, hold, horizon, turns, hours, tables, tz, pacing)| Restaurant {
                id: uuid::Uuid::nil(),
                name: "Arbitrary".into(),
                timezone: tz.parse().expect("known zone"),
                slot_minutes: slot,
                hold_seconds: hold,
                offer_seconds: 120,
                booking_horizon_days: horizon,
                turn_minutes: turns,
                hours,
                closed_dates: vec![],
                // Every pair of neighbouring tables may be joined.
                combinations: tables
                    .windows(2)
                    .enumerate()
                    .map(|(i, w)| super::Combination {
                        id: TableId::parse(&format!("c{i}")).expect("valid id"),
                        tables: vec![w[0].id.clone(), w[1].id.clone()],
                        min_party: w[0].min_party.min(100),
                        max_party: w[0].max_party.saturating_add(w[1].max_party).min(100),
                    })
                    .collect(),
                tables,
                pacing,
            },
        )
}

static VALID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_settings_and_requests_never_panic(
        mut r in arb_restaurant(),
        day in -3i64..1000,
        minute in 0u16..1440,
        party in 1i64..=100,
    ) {
        if r.validate().is_err() {
            return Ok(());
        }
        VALID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Utc::now();
        let today = now.date_naive();
        let Some(d) = (if day >= 0 {
            today.checked_add_days(Days::new(day as u64))
        } else {
            today.checked_sub_days(Days::new(day.unsigned_abs()))
        }) else {
            return Ok(());
        };
        let date = LocalDate::from_naive(d);
        let p = PartySize::new(party).expect("1..=100");
        let time = WallTime::from_minutes(minute);
        let starts = bookable_starts(&r, date, p, now);
        let slots = availability(&r, date, p, now, &[]);
        prop_assert_eq!(starts.len(), slots.len());
        if let Ok(slot) = check_start(&r, date, time, p, now) {
            prop_assert!(starts.iter().any(|s| s.time == slot.time));
            let _ = alternatives(&slots, slot.start);
        }
    }
}

#[test]
fn most_arbitrary_restaurants_reach_the_grid() {
    // Runs the property above once more and checks that it does not only test validation.
    VALID.store(0, std::sync::atomic::Ordering::Relaxed);
    arbitrary_settings_and_requests_never_panic();
    let valid = VALID.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        valid > 50,
        "only {valid} of 512 arbitrary restaurants were valid"
    );
}

#[test]
fn a_slot_of_65536_minutes_is_a_validation_error_not_a_crash() {
    let mut r = Restaurant {
        id: uuid::Uuid::nil(),
        name: "Big slot".into(),
        timezone: chrono_tz::UTC,
        slot_minutes: 65_536,
        hold_seconds: 300,
        offer_seconds: 120,
        booking_horizon_days: 60,
        turn_minutes: super::restaurant::default_turns(),
        hours: vec![HoursPeriod {
            days: vec![Day(Weekday::Mon)],
            open: WallTime::parse("18:00").unwrap(),
            close: WallTime::parse("23:00").unwrap(),
        }],
        closed_dates: vec![],
        tables: vec![],
        combinations: vec![],
        pacing: None,
    };
    let errs = r.validate().unwrap_err();
    assert!(errs.iter().any(|e| e.field == "slot_minutes"), "{errs:?}");
}
