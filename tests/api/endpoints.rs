//! Every endpoint of docs/http-api.md (but the live socket and the web apps) on its happy path.
mod combinations;
mod holds;
mod ops;
mod pacing;
mod reservations;
mod restaurants;
mod staff;

use crate::kit::api::*;
use crate::kit::app::*;
use crate::kit::wait::eventually;
use crate::problem::assert_problem;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

async fn json_body(res: Response, status: StatusCode, what: &str) -> Value {
    let got = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Takes a hold that must succeed; returns the reservation and its token.
async fn held(app: &TestApp, rid: &str, body: Value) -> (Value, String) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(body),
        )
        .await;
    let v = json_body(res, StatusCode::CREATED, "hold").await;
    let token = v["token"].as_str().expect("token").to_owned();
    (v, token)
}

async fn confirmed(
    app: &TestApp,
    rid: &str,
    date: &str,
    time: &str,
    table: &str,
) -> (String, String) {
    let (r, token) = held(
        app,
        rid,
        json!({"date": date, "time": time, "party_size": 2, "table_id": table}),
    )
    .await;
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(app.confirm(&id, &token).await.status(), StatusCode::OK);
    (id, token)
}

/// The UTC instant of a Paris wall time, in the `start`/`end` wire form.
fn paris(date: &str, time: &str) -> String {
    let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let local = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap()
        .and_time(NaiveTime::parse_from_str(time, "%H:%M").unwrap());
    tz.from_local_datetime(&local)
        .earliest()
        .unwrap()
        .with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn instant(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not an instant: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn times(avail: &Value) -> Vec<String> {
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["time"].as_str().unwrap().to_owned())
        .collect()
}

/// One table `t1` for parties of 1–2, open 18:00–23:00 daily, with the given turns.
async fn one_table_restaurant(app: &TestApp, turns: Option<Value>) -> Fixture {
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    if let Some(t) = turns {
        body["turn_minutes"] = t;
    }
    app.create_restaurant(body).await
}
