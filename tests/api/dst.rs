//! DST days over the API: gap times are not offered, repeated times use their first occurrence,
//! and turns are real elapsed minutes.
use crate::helpers::*;
use crate::problem::{assert_problem, error_fields};
use reqwest::StatusCode;
use serde_json::{json, Value};

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

fn expected(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(t, s, e)| (t.to_string(), s.to_string(), e.to_string()))
        .collect()
}

async fn hold_at(app: &TestApp, rid: &str, date: &str, time: &str) -> Value {
    let res = app.hold(rid, date, time, 2).await;
    assert_eq!(res.status(), StatusCode::CREATED, "hold at {time}");
    res.json().await.unwrap()
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
    let date = "2027-03-28";
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(&[
            ("01:00", "2027-03-28T00:00:00Z", "2027-03-28T01:30:00Z"),
            ("01:15", "2027-03-28T00:15:00Z", "2027-03-28T01:45:00Z"),
            ("01:30", "2027-03-28T00:30:00Z", "2027-03-28T02:00:00Z"),
            ("01:45", "2027-03-28T00:45:00Z", "2027-03-28T02:15:00Z"),
            ("03:00", "2027-03-28T01:00:00Z", "2027-03-28T02:30:00Z"),
            ("03:15", "2027-03-28T01:15:00Z", "2027-03-28T02:45:00Z"),
            ("03:30", "2027-03-28T01:30:00Z", "2027-03-28T03:00:00Z"),
        ])
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

    let h = hold_at(&app, &f.id, date, "01:45").await;
    assert_eq!(
        (h["start"].as_str(), h["end"].as_str()),
        (Some("2027-03-28T00:45:00Z"), Some("2027-03-28T02:15:00Z"))
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
    for time in ["02:00", "02:30", "02:45"] {
        assert_gap_hold_is_422(&app, &f.id, "2027-03-28", time).await;
    }
}

#[tokio::test]
async fn paris_opening_and_closing_inside_the_gap_mean_the_first_instant_after_it() {
    let app = TestApp::spawn().await;
    let early = night_restaurant(&app, "Europe/Paris", "00:00", "02:30").await;
    let a = app.availability(&early.id, "2027-03-28", 2).await;
    assert_eq!(
        slots(&a),
        expected(&[
            ("00:00", "2027-03-27T23:00:00Z", "2027-03-28T00:30:00Z"),
            ("00:15", "2027-03-27T23:15:00Z", "2027-03-28T00:45:00Z"),
            ("00:30", "2027-03-27T23:30:00Z", "2027-03-28T01:00:00Z"),
        ]),
        "close 02:30 is 03:00 CEST (01:00Z)"
    );
    let late = night_restaurant(&app, "Europe/Paris", "02:30", "06:00").await;
    let times: Vec<String> = slots(&app.availability(&late.id, "2027-03-28", 2).await)
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
    let date = "2027-10-31";
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(&[
            ("01:00", "2027-10-30T23:00:00Z", "2027-10-31T00:30:00Z"),
            ("01:15", "2027-10-30T23:15:00Z", "2027-10-31T00:45:00Z"),
            ("01:30", "2027-10-30T23:30:00Z", "2027-10-31T01:00:00Z"),
            ("01:45", "2027-10-30T23:45:00Z", "2027-10-31T01:15:00Z"),
            ("02:00", "2027-10-31T00:00:00Z", "2027-10-31T01:30:00Z"),
            ("02:15", "2027-10-31T00:15:00Z", "2027-10-31T01:45:00Z"),
            ("02:30", "2027-10-31T00:30:00Z", "2027-10-31T02:00:00Z"),
            ("02:45", "2027-10-31T00:45:00Z", "2027-10-31T02:15:00Z"),
        ]),
        "close 04:00 CET is 03:00Z; 03:00 CET (02:00Z) + 90 minutes is too late"
    );

    let h = hold_at(&app, &f.id, date, "02:30").await;
    assert_eq!(h["start"], "2027-10-31T00:30:00Z");
    assert_eq!(h["end"], "2027-10-31T02:00:00Z");
    assert_eq!((&h["date"], &h["time"]), (&json!(date), &json!("02:30")));

    let first = hold_at(&app, &f.id, date, "01:00").await;
    assert_eq!(first["start"], "2027-10-30T23:00:00Z");
    let on_date = app.staff_list(&f.id, &f.staff, date).await;
    assert_eq!(
        on_date["reservations"].as_array().unwrap().len(),
        2,
        "both belong to the local date"
    );
    let day_before = app.staff_list(&f.id, &f.staff, "2027-10-30").await;
    assert_eq!(day_before["reservations"], json!([]));
}

#[tokio::test]
async fn new_york_spring_forward_offers_no_gap_starts_and_counts_real_minutes() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "America/New_York", "01:00", "05:00").await;
    let date = "2027-03-14";
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(a["timezone"], "America/New_York");
    assert_eq!(
        slots(&a),
        expected(&[
            ("01:00", "2027-03-14T06:00:00Z", "2027-03-14T07:30:00Z"),
            ("01:15", "2027-03-14T06:15:00Z", "2027-03-14T07:45:00Z"),
            ("01:30", "2027-03-14T06:30:00Z", "2027-03-14T08:00:00Z"),
            ("01:45", "2027-03-14T06:45:00Z", "2027-03-14T08:15:00Z"),
            ("03:00", "2027-03-14T07:00:00Z", "2027-03-14T08:30:00Z"),
            ("03:15", "2027-03-14T07:15:00Z", "2027-03-14T08:45:00Z"),
            ("03:30", "2027-03-14T07:30:00Z", "2027-03-14T09:00:00Z"),
        ])
    );
    for time in ["02:00", "02:30"] {
        assert_gap_hold_is_422(&app, &f.id, date, time).await;
    }
    let h = hold_at(&app, &f.id, date, "01:45").await;
    assert_eq!(
        h["end"], "2027-03-14T08:15:00Z",
        "04:15 EDT: 90 real minutes after 01:45 EST"
    );
    assert_eq!(free_at(&app.availability(&f.id, date, 2).await, "03:30"), 1);
}

#[tokio::test]
async fn new_york_fall_back_uses_the_first_occurrence_of_repeated_times() {
    let app = TestApp::spawn().await;
    let f = night_restaurant(&app, "America/New_York", "00:00", "03:00").await;
    let date = "2027-11-07";
    let a = app.availability(&f.id, date, 2).await;
    assert_eq!(
        slots(&a),
        expected(&[
            ("00:00", "2027-11-07T04:00:00Z", "2027-11-07T05:30:00Z"),
            ("00:15", "2027-11-07T04:15:00Z", "2027-11-07T05:45:00Z"),
            ("00:30", "2027-11-07T04:30:00Z", "2027-11-07T06:00:00Z"),
            ("00:45", "2027-11-07T04:45:00Z", "2027-11-07T06:15:00Z"),
            ("01:00", "2027-11-07T05:00:00Z", "2027-11-07T06:30:00Z"),
            ("01:15", "2027-11-07T05:15:00Z", "2027-11-07T06:45:00Z"),
            ("01:30", "2027-11-07T05:30:00Z", "2027-11-07T07:00:00Z"),
            ("01:45", "2027-11-07T05:45:00Z", "2027-11-07T07:15:00Z"),
        ]),
        "close 03:00 EST is 08:00Z; 02:00 EST (07:00Z) + 90 minutes is too late"
    );
    let h = hold_at(&app, &f.id, date, "01:30").await;
    assert_eq!(h["start"], "2027-11-07T05:30:00Z", "01:30 EDT, not EST");
    assert_eq!(h["end"], "2027-11-07T07:00:00Z");
}
