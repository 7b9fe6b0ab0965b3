//! DST days over the API: gap times are not offered, repeated times use their first occurrence,
//! and turns are real elapsed minutes.
//!
//! The dates and instants below are written against the 2027 transitions; each test runs them on
//! the first year whose four transitions are all at least [`LEAD_DAYS`] ahead (see [`dst_days`]).
//! The UTC offsets around a transition are the same every year, so only the dates move.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::problem::{assert_problem, error_fields};
use chrono::{Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// How many days ahead of today a transition must be for its tests to run on it.
const LEAD_DAYS: i64 = 2;

/// One transition: its 2027 date, which the literals are written against, and its date in the
/// year the tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transition {
    written: NaiveDate,
    actual: NaiveDate,
}

impl Transition {
    /// The transition's local date in the test year.
    fn date(self) -> String {
        self.actual.format("%Y-%m-%d").to_string()
    }

    /// `literal`, a date (`2027-03-27`) or UTC instant (`2027-03-27T23:00:00Z`) written against
    /// the 2027 transition, moved by the days from it to the test year's transition.
    fn at(self, literal: &str) -> String {
        let (date, rest) = literal.split_at(10);
        let date: NaiveDate = date.parse().unwrap_or_else(|e| panic!("{literal}: {e}"));
        assert!(
            (date - self.written).num_days().abs() <= 1,
            "{literal} is not next to the {} transition",
            self.written
        );
        format!(
            "{}{rest}",
            (date + (self.actual - self.written)).format("%Y-%m-%d")
        )
    }
}

/// The four transitions the tests use, in one year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DstDays {
    paris_spring: Transition,
    paris_fall: Transition,
    new_york_spring: Transition,
    new_york_fall: Transition,
}

impl DstDays {
    fn for_year(year: i32) -> DstDays {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let (paris_spring, paris_fall) = transitions(chrono_tz::Europe::Paris, year, 1, 2);
        let (ny_spring, ny_fall) = transitions(chrono_tz::America::New_York, year, -5, -4);
        let t = |written, actual| Transition { written, actual };
        DstDays {
            paris_spring: t(day(2027, 3, 28), paris_spring),
            paris_fall: t(day(2027, 10, 31), paris_fall),
            new_york_spring: t(day(2027, 3, 14), ny_spring),
            new_york_fall: t(day(2027, 11, 7), ny_fall),
        }
    }

    fn all(self) -> [Transition; 4] {
        [
            self.paris_spring,
            self.paris_fall,
            self.new_york_spring,
            self.new_york_fall,
        ]
    }
}

/// The local dates in `year` on which `tz` springs forward from UTC`standard` to UTC`summer`
/// (hours) and falls back, as the tz database has them: the days whose local noon has another
/// offset than the day before's.
fn transitions(tz: Tz, year: i32, standard: i32, summer: i32) -> (NaiveDate, NaiveDate) {
    let offset_at_noon = |d: NaiveDate| {
        let noon = tz
            .from_local_datetime(&d.and_hms_opt(12, 0, 0).unwrap())
            .single()
            .unwrap_or_else(|| panic!("{tz}: noon on {d} is not one instant"));
        noon.offset().fix().local_minus_utc()
    };
    let (standard, summer) = (standard * 3600, summer * 3600);
    let (mut spring, mut fall) = (vec![], vec![]);
    let jan_1 = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
    for d in jan_1.iter_days().take_while(|d| d.year() == year) {
        let change = (offset_at_noon(d.pred_opt().unwrap()), offset_at_noon(d));
        if change == (standard, summer) {
            spring.push(d);
        } else if change == (summer, standard) {
            fall.push(d);
        } else {
            assert_eq!(change.0, change.1, "{tz} on {d}: unexpected offset change");
        }
    }
    match (&spring[..], &fall[..]) {
        (&[spring], &[fall]) => (spring, fall),
        _ => panic!("{tz} in {year}: spring forward on {spring:?}, fall back on {fall:?}"),
    }
}

/// The first year, from `today`'s on, whose four transitions are all at least [`LEAD_DAYS`]
/// after `today`.
fn dst_year(today: NaiveDate) -> i32 {
    (today.year()..)
        .find(|&y| {
            DstDays::for_year(y)
                .all()
                .iter()
                .all(|t| (t.actual - today).num_days() >= LEAD_DAYS)
        })
        .unwrap()
}

/// The transitions the tests run on: those of [`dst_year`] for today (UTC).
fn dst_days() -> DstDays {
    DstDays::for_year(dst_year(Utc::now().date_naive()))
}

#[test]
fn dst_year_is_the_first_with_all_four_transitions_far_enough_ahead() {
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    for (today, year) in [
        ("2026-11-28", 2027),
        ("2027-03-12", 2027),
        ("2027-03-13", 2028),
        ("2027-06-01", 2028),
        ("2028-03-10", 2028),
        ("2028-03-11", 2029),
        ("2028-03-20", 2029),
    ] {
        assert_eq!(dst_year(day(today)), year, "today {today}");
    }
    let dates = |year| DstDays::for_year(year).all().map(|t| t.date());
    assert_eq!(
        dates(2027),
        ["2027-03-28", "2027-10-31", "2027-03-14", "2027-11-07"]
    );
    assert_eq!(
        dates(2028),
        ["2028-03-26", "2028-10-29", "2028-03-12", "2028-11-05"]
    );
    assert_eq!(
        dates(2029),
        ["2029-03-25", "2029-10-28", "2029-03-11", "2029-11-04"]
    );
    // The tz database agrees with the rules: Paris the last Sundays of March and October,
    // New York the second Sunday of March and the first of November.
    let sunday =
        |y, m, week: u8| NaiveDate::from_weekday_of_month_opt(y, m, chrono::Weekday::Sun, week);
    let last_sunday = |y, m| sunday(y, m, 5).or_else(|| sunday(y, m, 4)).unwrap();
    for y in 2026..=2040 {
        let d = DstDays::for_year(y);
        assert_eq!(d.paris_spring.actual, last_sunday(y, 3), "{y}");
        assert_eq!(d.paris_fall.actual, last_sunday(y, 10), "{y}");
        assert_eq!(d.new_york_spring.actual, sunday(y, 3, 2).unwrap(), "{y}");
        assert_eq!(d.new_york_fall.actual, sunday(y, 11, 1).unwrap(), "{y}");
    }
    // Whatever today is, the chosen transitions are ahead and within the 730-day horizon, with a
    // day to spare for the restaurant's local date being a day behind UTC.
    let mut today = day("2026-01-01");
    while today < day("2031-01-01") {
        for t in DstDays::for_year(dst_year(today)).all() {
            let ahead = (t.actual - today).num_days();
            assert!((LEAD_DAYS..=729).contains(&ahead), "today {today}: {t:?}");
        }
        today = today.succ_opt().unwrap();
    }
    // Literals move with their transition, the day before included.
    let d = DstDays::for_year(2029);
    assert_eq!(
        d.paris_spring.at("2027-03-27T23:00:00Z"),
        "2029-03-24T23:00:00Z"
    );
    assert_eq!(d.paris_fall.at("2027-10-30"), "2029-10-27");
    assert_eq!(
        d.new_york_fall.at("2027-11-07T05:30:00Z"),
        "2029-11-04T05:30:00Z"
    );
    assert_eq!(
        DstDays::for_year(2027).paris_spring.at("2027-03-28"),
        "2027-03-28"
    );
}

/// Open every day `open`–`close` in `timezone`; tables t1 (1–2) and t2 (1–4).
async fn night_restaurant(app: &TestApp, timezone: &str, open: &str, close: &str) -> Fixture {
    app.create_restaurant(json!({
        "name": "Night Owl", "timezone": timezone, "booking_horizon_days": 730,
        "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": open, "close": close}],
        "tables": [{"id": "t1", "max_party": 2}, {"id": "t2", "max_party": 4}],
    }))
    .await
}

fn slots(avail: &Value) -> Vec<(String, String, String)> {
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap().to_owned();
            (field("time"), field("start"), field("end"))
        })
        .collect()
}

/// Slots written against the 2027 transition `t`, moved to the test year.
fn expected(t: Transition, rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(time, s, e)| (time.to_string(), t.at(s), t.at(e)))
        .collect()
}

async fn assert_gap_hold_is_422(app: &TestApp, rid: &str, date: &str, time: &str) {
    let before = app.availability(rid, date, 2).await;
    let p = assert_problem(app.hold(rid, date, time, 2).await, 422, "validation", time).await;
    assert!(error_fields(&p).contains(&"time".to_owned()), "{p}");
    assert_eq!(
        app.availability(rid, date, 2).await,
        before,
        "nothing was held"
    );
}

#[tokio::test]
async fn paris_spring_forward_offers_no_gap_starts_and_counts_real_minutes() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "Europe/Paris", "01:00", "05:00").await;
    let t = dst_days().paris_spring;
    let date = &t.date();
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(
            t,
            &[
                ("01:00", "2027-03-28T00:00:00Z", "2027-03-28T01:30:00Z"),
                ("01:15", "2027-03-28T00:15:00Z", "2027-03-28T01:45:00Z"),
                ("01:30", "2027-03-28T00:30:00Z", "2027-03-28T02:00:00Z"),
                ("01:45", "2027-03-28T00:45:00Z", "2027-03-28T02:15:00Z"),
                ("03:00", "2027-03-28T01:00:00Z", "2027-03-28T02:30:00Z"),
                ("03:15", "2027-03-28T01:15:00Z", "2027-03-28T02:45:00Z"),
                ("03:30", "2027-03-28T01:30:00Z", "2027-03-28T03:00:00Z"),
            ],
        )
    );
    let four: Vec<String> = slots(&app.availability(&f.id, date, 4).await)
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        four,
        ["01:00", "01:15", "01:30", "01:45", "03:00"],
        "120 real minutes end by 05:00 CEST"
    );

    let h = app.held(&f.id, date, "01:45", 2).await;
    assert_eq!(
        (h["start"].as_str(), h["end"].as_str()),
        (
            Some(t.at("2027-03-28T00:45:00Z").as_str()),
            Some(t.at("2027-03-28T02:15:00Z").as_str())
        )
    );
    assert_eq!(h["table_id"], "t1");
    let after = app.availability(&f.id, date, 2).await;
    assert_eq!(
        free_at(&after, "03:30"),
        1,
        "01:45 + 90 real minutes is 04:15 CEST, past 03:30"
    );
}

#[tokio::test]
async fn paris_spring_forward_rejects_a_hold_at_a_time_that_does_not_exist() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "Europe/Paris", "01:00", "05:00").await;
    let date = &dst_days().paris_spring.date();
    for time in ["02:00", "02:30", "02:45"] {
        assert_gap_hold_is_422(&app, &f.id, date, time).await;
    }
}

#[tokio::test]
async fn paris_opening_and_closing_inside_the_gap_mean_the_first_instant_after_it() {
    let app = TestApp::spawn().await;
    let early = night_restaurant(&app, "Europe/Paris", "00:00", "02:30").await;
    let t = dst_days().paris_spring;
    let date = &t.date();
    let a = app.availability(&early.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(
            t,
            &[
                ("00:00", "2027-03-27T23:00:00Z", "2027-03-28T00:30:00Z"),
                ("00:15", "2027-03-27T23:15:00Z", "2027-03-28T00:45:00Z"),
                ("00:30", "2027-03-27T23:30:00Z", "2027-03-28T01:00:00Z"),
            ],
        ),
        "close 02:30 is 03:00 CEST (01:00Z)"
    );
    let late = night_restaurant(&app, "Europe/Paris", "02:30", "06:00").await;
    let times: Vec<String> = slots(&app.availability(&late.id, date, 2).await)
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        times,
        ["03:00", "03:15", "03:30", "03:45", "04:00", "04:15", "04:30"]
    );
}

#[tokio::test]
async fn paris_fall_back_uses_the_first_occurrence_of_repeated_times() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "Europe/Paris", "01:00", "04:00").await;
    let t = dst_days().paris_fall;
    let date = &t.date();
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(
            t,
            &[
                ("01:00", "2027-10-30T23:00:00Z", "2027-10-31T00:30:00Z"),
                ("01:15", "2027-10-30T23:15:00Z", "2027-10-31T00:45:00Z"),
                ("01:30", "2027-10-30T23:30:00Z", "2027-10-31T01:00:00Z"),
                ("01:45", "2027-10-30T23:45:00Z", "2027-10-31T01:15:00Z"),
                ("02:00", "2027-10-31T00:00:00Z", "2027-10-31T01:30:00Z"),
                ("02:15", "2027-10-31T00:15:00Z", "2027-10-31T01:45:00Z"),
                ("02:30", "2027-10-31T00:30:00Z", "2027-10-31T02:00:00Z"),
                ("02:45", "2027-10-31T00:45:00Z", "2027-10-31T02:15:00Z"),
            ],
        ),
        "close 04:00 CET is 03:00Z; 03:00 CET (02:00Z) + 90 minutes is too late"
    );

    let h = app.held(&f.id, date, "02:30", 2).await;
    assert_eq!(h["start"], t.at("2027-10-31T00:30:00Z"));
    assert_eq!(h["end"], t.at("2027-10-31T02:00:00Z"));
    assert_eq!((&h["date"], &h["time"]), (&json!(date), &json!("02:30")));

    let first = app.held(&f.id, date, "01:00", 2).await;
    assert_eq!(first["start"], t.at("2027-10-30T23:00:00Z"));
    let on_date = app.staff_list(&f.id, &f.staff, date).await;
    assert_eq!(
        on_date["reservations"].as_array().unwrap().len(),
        2,
        "both belong to the local date"
    );
    let day_before = app.staff_list(&f.id, &f.staff, &t.at("2027-10-30")).await;
    assert_eq!(day_before["reservations"], json!([]));
}

#[tokio::test]
async fn new_york_spring_forward_offers_no_gap_starts_and_counts_real_minutes() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "America/New_York", "01:00", "05:00").await;
    let t = dst_days().new_york_spring;
    let date = &t.date();
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(a["timezone"], "America/New_York");
    assert_eq!(
        slots(&a),
        expected(
            t,
            &[
                ("01:00", "2027-03-14T06:00:00Z", "2027-03-14T07:30:00Z"),
                ("01:15", "2027-03-14T06:15:00Z", "2027-03-14T07:45:00Z"),
                ("01:30", "2027-03-14T06:30:00Z", "2027-03-14T08:00:00Z"),
                ("01:45", "2027-03-14T06:45:00Z", "2027-03-14T08:15:00Z"),
                ("03:00", "2027-03-14T07:00:00Z", "2027-03-14T08:30:00Z"),
                ("03:15", "2027-03-14T07:15:00Z", "2027-03-14T08:45:00Z"),
                ("03:30", "2027-03-14T07:30:00Z", "2027-03-14T09:00:00Z"),
            ],
        )
    );
    for time in ["02:00", "02:30"] {
        assert_gap_hold_is_422(&app, &f.id, date, time).await;
    }
    let h = app.held(&f.id, date, "01:45", 2).await;
    assert_eq!(
        h["end"],
        t.at("2027-03-14T08:15:00Z"),
        "04:15 EDT: 90 real minutes after 01:45 EST"
    );
    assert_eq!(free_at(&app.availability(&f.id, date, 2).await, "03:30"), 1);
}

#[tokio::test]
async fn new_york_fall_back_uses_the_first_occurrence_of_repeated_times() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "America/New_York", "00:00", "03:00").await;
    let t = dst_days().new_york_fall;
    let date = &t.date();
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(
            t,
            &[
                ("00:00", "2027-11-07T04:00:00Z", "2027-11-07T05:30:00Z"),
                ("00:15", "2027-11-07T04:15:00Z", "2027-11-07T05:45:00Z"),
                ("00:30", "2027-11-07T04:30:00Z", "2027-11-07T06:00:00Z"),
                ("00:45", "2027-11-07T04:45:00Z", "2027-11-07T06:15:00Z"),
                ("01:00", "2027-11-07T05:00:00Z", "2027-11-07T06:30:00Z"),
                ("01:15", "2027-11-07T05:15:00Z", "2027-11-07T06:45:00Z"),
                ("01:30", "2027-11-07T05:30:00Z", "2027-11-07T07:00:00Z"),
                ("01:45", "2027-11-07T05:45:00Z", "2027-11-07T07:15:00Z"),
            ],
        ),
        "close 03:00 EST is 08:00Z; 02:00 EST (07:00Z) + 90 minutes is too late"
    );
    let h = app.held(&f.id, date, "01:30", 2).await;
    assert_eq!(
        h["start"],
        t.at("2027-11-07T05:30:00Z"),
        "01:30 EDT, not EST"
    );
    assert_eq!(h["end"], t.at("2027-11-07T07:00:00Z"));
}
