//! Bad input, table-driven: every case answers its problem and changes nothing.
use crate::kit::api::*;
use crate::kit::app::*;
use crate::problem::{assert_problem, error_fields};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Admin,
    Staff,
    Holder,
}

enum Body {
    None,
    Json(Value),
    Raw(String, Option<&'static str>),
}

struct Case {
    method: Method,
    path: String,
    who: Who,
    body: Body,
    idempotency_key: Option<String>,
    status: u16,
    problem: &'static str,
    field: Option<&'static str>,
}

fn case(
    method: Method,
    path: impl Into<String>,
    who: Who,
    body: Body,
    status: u16,
    problem: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        who,
        body,
        idempotency_key: None,
        status,
        problem,
        field: None,
    }
}

impl Case {
    /// A `validation` problem whose `errors` name this field.
    fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    fn key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }
}

fn raw_json(s: &str) -> Body {
    Body::Raw(s.to_owned(), Some("application/json"))
}

/// Everything a bad request could have touched.
async fn snapshot(app: &TestApp, rid: &str, date: &str, hold_id: &str) -> Value {
    let get = |path: String| async move {
        let res = app.send(Method::GET, &path, Some(ADMIN), None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json::<Value>().await.unwrap()
    };
    json!({
        "restaurants": get("/v1/restaurants".into()).await,
        "restaurant": get(format!("/v1/restaurants/{rid}")).await,
        "availability_2": app.availability(rid, date, 2).await,
        "availability_6": app.availability(rid, date, 6).await,
        "staff_list": app.staff_list(rid, ADMIN, date).await,
        "hold": get(format!("/v1/reservations/{hold_id}")).await,
    })
}

fn restaurant_with(member: &str, value: Value) -> Body {
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body[member] = value;
    Body::Json(body)
}

const EVERY_DAY: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[tokio::test]
async fn bad_requests_answer_their_problem_and_change_nothing() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let (rid, date, closed) = (f.id.clone(), date_in(3), date_in(10));
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/restaurants/{rid}"),
            Some(&f.staff),
            Some(json!({"closed_dates": [closed]})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let hold: Value = app
        .hold(&rid, &date, "19:00", 2)
        .await
        .json()
        .await
        .unwrap();
    let (hold_id, hold_token) = (
        hold["id"].as_str().unwrap().to_owned(),
        hold["token"].as_str().unwrap().to_owned(),
    );
    let before = snapshot(&app, &rid, &date, &hold_id).await;

    let holds = format!("/v1/restaurants/{rid}/holds");
    let confirm = format!("/v1/reservations/{hold_id}/confirm");
    let reservation = format!("/v1/reservations/{hold_id}");
    let walk_ins = format!("/v1/restaurants/{rid}/walk-ins");
    let restaurant = format!("/v1/restaurants/{rid}");
    let table = |t: &str| format!("/v1/restaurants/{rid}/tables/{t}");
    let avail = |q: &str| format!("/v1/restaurants/{rid}/availability?{q}");
    let unknown = "0b6a1d2e-8f8c-4a57-9a43-3c1f5a0e9d11";
    let hold_body = |time: &str, party: Value| {
        Body::Json(json!({"date": date, "time": time, "party_size": party}))
    };
    let hold_on = |d: &str| Body::Json(json!({"date": d, "time": "19:00", "party_size": 2}));
    let guest = Body::Json(json!({"guest": {"name": "Ada"}}));
    let too_big = format!(
        r#"{{"date": "{date}", "time": "19:00", "party_size": 2, "pad": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let hours =
        |open: &str, close: &str| json!([{"days": EVERY_DAY, "open": open, "close": close}]);
    use Who::*;

    let cases = vec![
        // Malformed JSON.
        case(Method::POST, &holds, Nobody, raw_json(r#"{"date": "2027-01-01", "time": "#), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, raw_json("not json"), 400, "bad-request"),
        case(Method::POST, "/v1/restaurants", Admin, raw_json("{]"), 400, "bad-request"),
        case(Method::PUT, table("t1"), Staff, raw_json(r#"{"max_party": 2,}"#), 400, "bad-request"),
        // Members of the wrong JSON type.
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!("two")), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(2.5)), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(null)), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": 20261205, "time": "19:00", "party_size": 2})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "time": "19:00", "party_size": 2, "table_id": 7})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!([date, "19:00", 2])), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": 42}})), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": "Ada"})), 400, "bad-request"),
        case(Method::PATCH, &reservation, Staff, Body::Json(json!({"status": 5})), 400, "bad-request"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"max_party": "big"})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hold_seconds": "x"})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": [{"days": "mon", "open": "18:00", "close": "23:00"}]})), 400, "bad-request"),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"party_size": true})), 400, "bad-request"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("slot_minutes", json!("15")), 400, "bad-request"),
        // An array where an object is expected, at any depth (serde reads one positionally).
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"pacing": [30, 10, 3]})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"combinations": [["c", ["t1", "t2"], 1, 4]]})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": [[EVERY_DAY, "10:00", "12:00"]]})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"turn_minutes": [[null, 90]]})), 400, "bad-request"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("tables", json!([["t9", "T9", 1, 2, null]])), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": ["Ada", "ada@example.com"]})), 400, "bad-request"),
        // Missing members.
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "party_size": 2})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "time": "19:00"})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"time": "19:00", "party_size": 2})), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({})), 400, "bad-request"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"email": "ada@example.com"}})), 400, "bad-request"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"label": "No size"})), 400, "bad-request"),
        case(Method::POST, "/v1/restaurants", Admin, Body::Json(json!({"timezone": "Europe/Paris"})), 400, "bad-request"),
        case(Method::PATCH, &reservation, Staff, Body::Json(json!({})), 400, "bad-request"),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"table_id": "t1"})), 400, "bad-request"),
        case(Method::GET, avail("party_size=2"), Nobody, Body::None, 400, "bad-request"),
        case(Method::GET, avail(&format!("date={date}")), Nobody, Body::None, 400, "bad-request"),
        case(Method::GET, format!("/v1/restaurants/{rid}/reservations"), Staff, Body::None, 400, "bad-request"),
        // Strings not in their stated form.
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": "2026-13-01", "time": "19:00", "party_size": 2})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": "2027-1-05", "time": "19:00", "party_size": 2})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, hold_body("25:00", json!(2)), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, hold_body("7pm", json!(2)), 400, "bad-request"),
        case(Method::GET, avail("date=2026-13-01&party_size=2"), Nobody, Body::None, 400, "bad-request"),
        case(Method::GET, avail(&format!("date={date}&party_size=two")), Nobody, Body::None, 400, "bad-request"),
        case(Method::GET, format!("/v1/restaurants/{rid}/reservations?date=2026-13-01"), Staff, Body::None, 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"closed_dates": ["2026-13-01"]})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": hours("25:00", "26:00")})), 400, "bad-request"),
        // `24:00` is only a close: as an opening it is not in its stated form.
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": hours("24:00", "24:00")})), 400, "bad-request"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("hours", hours("24:00", "24:00")), 400, "bad-request"),
        // Tables change through their own endpoints: any `tables` member, `null` too, is refused.
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"tables": []})), 422, "validation").field("tables"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"tables": null})), 422, "validation").field("tables"),
        case(Method::PUT, table("a.b"), Staff, Body::Json(json!({"max_party": 2})), 400, "bad-request"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "no such!"})), 400, "bad-request"),
        // Non-UUID ids in paths.
        case(Method::GET, "/v1/restaurants/not-a-uuid", Nobody, Body::None, 400, "bad-request"),
        case(Method::GET, "/v1/restaurants/not-a-uuid/availability?date=2027-01-01&party_size=2", Nobody, Body::None, 400, "bad-request"),
        case(Method::POST, "/v1/restaurants/not-a-uuid/holds", Nobody, hold_on(&date), 400, "bad-request"),
        case(Method::GET, "/v1/reservations/123", Admin, Body::None, 400, "bad-request"),
        case(Method::POST, "/v1/reservations/nope/confirm", Admin, guest, 400, "bad-request"),
        case(Method::DELETE, "/v1/reservations/nope", Admin, Body::None, 400, "bad-request"),
        // Party sizes out of range.
        // A line break in a name or label would split the header of every mail it signs.
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"name": "Chez Rust\r\nBcc: evil@attacker.test"})), 422, "validation").field("name"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"label": "T\n9", "max_party": 2})), 422, "validation").field("label"),
        // An area is shown wherever its table is, to anyone: small, and free of control characters.
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"area": "x".repeat(101), "max_party": 2})), 422, "validation").field("area"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"area": "\u{0}terrace", "max_party": 2})), 422, "validation").field("area"),
        case(Method::POST, "/v1/restaurants", Admin, Body::Json(json!({"name": "Big", "timezone": "Europe/Paris", "tables": [{"id": "t1", "max_party": 2, "area": "\u{202e}x".repeat(40)}]})), 422, "validation").field("tables[0].area"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(0)), 422, "validation").field("party_size"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(101)), 422, "validation").field("party_size"),
        // Integers past 64 bits are still integers: out of range, not of the wrong type.
        case(Method::POST, &holds, Nobody, raw_json(&format!(r#"{{"date": "{date}", "time": "19:00", "party_size": 9223372036854775808}}"#)), 422, "validation").field("party_size"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hold_seconds": 1e30})), 422, "validation").field("hold_seconds"),
        case(Method::PATCH, &restaurant, Staff, raw_json(r#"{"slot_minutes": 18446744073709551616}"#), 422, "validation").field("slot_minutes"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(-3)), 422, "validation").field("party_size"),
        case(Method::GET, avail(&format!("date={date}&party_size=0")), Nobody, Body::None, 422, "validation").field("party_size"),
        // Past 64 bits is still an integer: out of range, as in a JSON body.
        case(Method::GET, avail(&format!("date={date}&party_size=18446744073709551616")), Nobody, Body::None, 422, "validation").field("party_size"),
        case(Method::GET, avail(&format!("date={date}&party_size=-18446744073709551616")), Nobody, Body::None, 422, "validation").field("party_size"),
        case(Method::GET, avail(&format!("date={date}&party_size=101")), Nobody, Body::None, 422, "validation").field("party_size"),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"party_size": 101})), 422, "validation").field("party_size"),
        // Starts that parse but are not bookable.
        case(Method::POST, &holds, Nobody, hold_body("19:07", json!(2)), 422, "validation").field("time"),
        case(Method::POST, &holds, Nobody, hold_body("17:00", json!(2)), 422, "validation").field("time"),
        case(Method::POST, &holds, Nobody, hold_body("22:00", json!(2)), 422, "validation").field("time"),
        case(Method::POST, &holds, Nobody, hold_body("23:00", json!(2)), 422, "validation").field("time"),
        case(Method::POST, &holds, Nobody, hold_on(&date_in(-1)), 422, "validation").field("date"),
        case(Method::POST, &holds, Nobody, hold_on(&date_in(731)), 422, "validation").field("date"),
        case(Method::POST, &holds, Nobody, hold_on(&closed), 422, "validation").field("date"),
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "time": "19:00", "party_size": 5, "table_id": "t1"})), 422, "validation").field("table_id"),
        case(Method::POST, &holds, Nobody, hold_body("19:00", json!(7)), 422, "validation").field("party_size"),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"party_size": 7})), 422, "validation").field("party_size"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada", "email": "nope"}})), 422, "validation").field("guest.email"),
        // Addresses most relays cannot send to: a domain literal, and non-ASCII (SMTPUTF8).
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada", "email": "ada@[127.0.0.1]"}})), 422, "validation").field("guest.email"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada", "email": "ada@exämple.com"}})), 422, "validation").field("guest.email"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada", "email": "adä@example.com"}})), 422, "validation").field("guest.email"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": " "}})), 422, "validation").field("guest.name"),
        // A name that shows nothing, or breaks the mail's lines.
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "\u{200B}"}})), 422, "validation").field("guest.name"),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada\u{2028}Bcc"}})), 422, "validation").field("guest.name"),
        case(Method::PATCH, &reservation, Staff, Body::Json(json!({"status": "dancing"})), 422, "validation").field("status"),
        case(Method::PATCH, &reservation, Staff, Body::Json(json!({"status": "confirmed"})), 422, "validation").field("status"),
        case(Method::PATCH, &reservation, Staff, Body::Json(json!({"status": "seated"})), 409, "invalid-transition"),
        // Unknown things.
        case(Method::POST, &holds, Nobody, Body::Json(json!({"date": date, "time": "19:00", "party_size": 2, "table_id": "zz"})), 404, "not-found"),
        case(Method::DELETE, table("zz"), Staff, Body::None, 404, "not-found"),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"party_size": 2, "table_id": "zz"})), 404, "not-found"),
        case(Method::GET, format!("/v1/restaurants/{unknown}"), Nobody, Body::None, 404, "not-found"),
        case(Method::GET, format!("/v1/restaurants/{unknown}/availability?date={date}&party_size=2"), Nobody, Body::None, 404, "not-found"),
        case(Method::POST, format!("/v1/restaurants/{unknown}/holds"), Nobody, hold_on(&date), 404, "not-found"),
        case(Method::PATCH, format!("/v1/restaurants/{unknown}"), Admin, Body::Json(json!({"name": "X"})), 404, "not-found"),
        case(Method::GET, format!("/v1/restaurants/{unknown}/reservations?date={date}"), Admin, Body::None, 404, "not-found"),
        case(Method::GET, format!("/v1/reservations/{unknown}"), Admin, Body::None, 404, "not-found"),
        case(Method::GET, "/v1/nothing", Nobody, Body::None, 404, "not-found"),
        case(Method::GET, format!("/v1/restaurants/{rid}/nothing"), Nobody, Body::None, 404, "not-found"),
        case(Method::POST, "/v2/restaurants", Admin, Body::Json(json!({})), 404, "not-found"),
        // Wrong methods.
        case(Method::DELETE, "/v1/restaurants", Admin, Body::None, 405, "method-not-allowed"),
        case(Method::PUT, &holds, Nobody, hold_on(&date), 405, "method-not-allowed"),
        case(Method::GET, &walk_ins, Staff, Body::None, 405, "method-not-allowed"),
        case(Method::POST, &reservation, Admin, Body::Json(json!({})), 405, "method-not-allowed"),
        case(Method::DELETE, &restaurant, Admin, Body::None, 405, "method-not-allowed"),
        case(Method::POST, "/healthz", Nobody, Body::None, 405, "method-not-allowed"),
        // Bodies over 64 KiB, and bodies that are not JSON.
        case(Method::POST, &holds, Nobody, raw_json(&too_big), 413, "payload-too-large"),
        case(Method::POST, &confirm, Holder, raw_json(&too_big), 413, "payload-too-large"),
        case(Method::POST, "/v1/restaurants", Admin, raw_json(&too_big), 413, "payload-too-large"),
        case(Method::POST, &holds, Nobody, Body::Raw(json!({"date": date, "time": "19:00", "party_size": 2}).to_string(), Some("text/plain")), 415, "unsupported-media-type"),
        case(Method::POST, &holds, Nobody, Body::Raw(format!("date={date}&time=19:00&party_size=2"), Some("application/x-www-form-urlencoded")), 415, "unsupported-media-type"),
        case(Method::POST, &holds, Nobody, Body::Raw(json!({"date": date, "time": "19:00", "party_size": 2}).to_string(), None), 415, "unsupported-media-type"),
        case(Method::POST, &confirm, Holder, Body::Raw(json!({"guest": {"name": "Ada"}}).to_string(), Some("text/plain")), 415, "unsupported-media-type"),
        // Only `application/json` is JSON here, not its cousins.
        case(Method::POST, &holds, Nobody, Body::Raw(json!({"date": date, "time": "19:00", "party_size": 2}).to_string(), Some("text/json")), 415, "unsupported-media-type"),
        case(Method::POST, &holds, Nobody, Body::Raw(json!({"date": date, "time": "19:00", "party_size": 2}).to_string(), Some("application/merge-patch+json")), 415, "unsupported-media-type"),
        case(Method::PATCH, &restaurant, Staff, Body::Raw(json!({"name": "X"}).to_string(), Some("application/problem+json")), 415, "unsupported-media-type"),
        // Restaurant settings that break the rules, at creation and by PATCH.
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("slot_minutes", json!(7)), 422, "validation").field("slot_minutes"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("slot_minutes", json!(90)), 422, "validation").field("slot_minutes"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("turn_minutes", json!([{"max_party": 2, "minutes": 90}, {"max_party": 2, "minutes": 100}, {"max_party": null, "minutes": 150}])), 422, "validation").field("turn_minutes"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("turn_minutes", json!([{"max_party": 2, "minutes": 90}, {"max_party": 8, "minutes": 150}])), 422, "validation").field("turn_minutes"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("hours", hours("23:00", "18:00")), 422, "validation").field("hours[0]"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("hours", hours("18:00", "18:00")), 422, "validation").field("hours[0]"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("hours", hours("18:10", "23:00")), 422, "validation").field("hours[0]"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("timezone", json!("Mars/Olympus_Mons")), 422, "validation").field("timezone"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("hold_seconds", json!(0)), 422, "validation").field("hold_seconds"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("booking_horizon_days", json!(731)), 422, "validation").field("booking_horizon_days"),
        case(Method::POST, "/v1/restaurants", Admin, restaurant_with("tables", json!([{"id": "t1", "max_party": 2}, {"id": "t1", "max_party": 4}])), 422, "validation").field("tables"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"slot_minutes": 7})), 422, "validation").field("slot_minutes"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"turn_minutes": [{"max_party": 4, "minutes": 120}]})), 422, "validation").field("turn_minutes"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": hours("22:00", "19:00")})), 422, "validation").field("hours[0]"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"timezone": "Europe/Nowhere"})), 422, "validation").field("timezone"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"min_party": 5, "max_party": 2})), 422, "validation").field("min_party"),
        case(Method::PUT, table("t9"), Staff, Body::Json(json!({"max_party": 101})), 422, "validation").field("max_party"),
        // `null` for a member a PATCH replaces is the wrong JSON type (only `pacing` takes it).
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"name": null})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"timezone": null})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"slot_minutes": null})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"hours": null})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"closed_dates": null})), 400, "bad-request"),
        case(Method::PATCH, &restaurant, Staff, Body::Json(json!({"combinations": null})), 400, "bad-request"),
        // Idempotency keys outside 1–255 characters.
        case(Method::POST, &holds, Nobody, hold_body("20:00", json!(2)), 400, "bad-request").key("k".repeat(256)),
        case(Method::POST, &holds, Nobody, hold_body("20:00", json!(2)), 400, "bad-request").key(String::new()),
        case(Method::POST, &confirm, Holder, Body::Json(json!({"guest": {"name": "Ada"}})), 400, "bad-request").key("k".repeat(256)),
        case(Method::POST, &walk_ins, Staff, Body::Json(json!({"party_size": 2})), 400, "bad-request").key("k".repeat(256)),
    ];

    for c in cases {
        let context = format!("{} {}", c.method, c.path);
        let token = match c.who {
            Who::Nobody => None,
            Who::Admin => Some(ADMIN),
            Who::Staff => Some(f.staff.as_str()),
            Who::Holder => Some(hold_token.as_str()),
        };
        let mut req = app.req(c.method.clone(), &c.path, token);
        if let Some(k) = &c.idempotency_key {
            req = req.header("Idempotency-Key", k.as_str());
        }
        req = match c.body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(s, content_type) => {
                let req = req.body(s);
                match content_type {
                    Some(ct) => req.header(reqwest::header::CONTENT_TYPE, ct),
                    None => req,
                }
            }
        };
        let res = req.send().await.expect("request sent");
        let problem = assert_problem(res, c.status, c.problem, &context).await;
        if let Some(field) = c.field {
            let fields = error_fields(&problem);
            assert!(
                fields.iter().any(|f| f == field),
                "{context}: `{field}` not in {fields:?}"
            );
        }
        let after = snapshot(&app, &rid, &date, &hold_id).await;
        assert_eq!(after, before, "{context} changed something");
    }
}

#[tokio::test]
async fn every_broken_setting_is_listed_in_one_answer() {
    let app = TestApp::spawn().await;
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["slot_minutes"] = json!(7);
    body["turn_minutes"] = json!([{"max_party": 2, "minutes": 90}]);
    body["hours"] = json!([{"days": EVERY_DAY, "open": "23:00", "close": "18:00"}]);
    let res = app
        .send(Method::POST, "/v1/restaurants", Some(ADMIN), Some(body))
        .await;
    let problem = assert_problem(res, 422, "validation", "broken settings").await;
    let fields = error_fields(&problem);
    for f in ["slot_minutes", "turn_minutes", "hours[0]"] {
        assert!(fields.iter().any(|x| x == f), "`{f}` not in {fields:?}");
    }
    let list: Value = app
        .send(Method::GET, "/v1/restaurants", None, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["restaurants"], json!([]), "nothing was created");
    // Members that cannot be read at all (an unknown timezone, a number past its type) are
    // listed with every rule the rest breaks, not alone.
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2, "area": "x".repeat(101)}]));
    body["name"] = json!("");
    body["timezone"] = json!("Mars/Base");
    body["slot_minutes"] = json!(65536);
    body["turn_minutes"] = json!([{"max_party": 2, "minutes": 90}]);
    let res = app
        .send(Method::POST, "/v1/restaurants", Some(ADMIN), Some(body))
        .await;
    let problem = assert_problem(res, 422, "validation", "unreadable settings").await;
    let fields = error_fields(&problem);
    for f in [
        "timezone",
        "slot_minutes",
        "name",
        "turn_minutes",
        "tables[0].area",
    ] {
        assert!(fields.iter().any(|x| x == f), "`{f}` not in {fields:?}");
    }
    assert_eq!(
        fields.iter().filter(|x| *x == "slot_minutes").count(),
        1,
        "each field once: {fields:?}"
    );
    // Every rule a readable member breaks, twice on one field too; nothing said of what could
    // not be read but its being unreadable (no duplicate turn rule made of two placeholders).
    let mut body = restaurant_body(json!([{"id": "t1", "max_party": 2}]));
    body["timezone"] = json!("Mars/Base");
    body["hours"] = json!([{"days": EVERY_DAY, "open": "19:07", "close": "18:00"}]);
    body["combinations"] = json!([{"id": "c", "tables": ["a", "zz", "yy"], "max_party": 4}]);
    body["turn_minutes"] = json!([{"max_party": -1, "minutes": 90}, {"max_party": -2, "minutes": 90}, {"max_party": null, "minutes": 90}]);
    let res = app
        .send(Method::POST, "/v1/restaurants", Some(ADMIN), Some(body))
        .await;
    let problem = assert_problem(res, 422, "validation", "unreadable turns").await;
    let fields = error_fields(&problem);
    let count = |f: &str| fields.iter().filter(|x| *x == f).count();
    assert_eq!(
        count("hours[0]"),
        2,
        "off the grid, and open after close: {problem}"
    );
    assert!(
        count("combinations[0].tables") >= 2,
        "each unknown table: {problem}"
    );
    assert_eq!(count("turn_minutes[0].max_party"), 1, "{problem}");
    assert_eq!(count("turn_minutes[1].max_party"), 1, "{problem}");
    assert_eq!(
        count("turn_minutes"),
        0,
        "no rule of placeholders: {problem}"
    );
}

/// DynamoDB: a combination whose tables cannot be held together for its longest turn in one
/// transaction is named by its place in the request (validation sorts combinations by id, and
/// the error named the sorted place), and is listed with every other broken rule (it was left
/// out when another combination named a missing table). Also through PATCH.
#[tokio::test]
async fn a_combination_too_long_for_one_dynamodb_write_is_named_by_its_place_in_the_request() {
    let Some(backend) = Backend::dynamo("bad_input::a_combination_too_long_on_dynamodb") else {
        return;
    };
    let app = TestApp::spawn_on(backend).await;
    let tables = json!((1..=6)
        .map(|i| json!({"id": format!("t{i}"), "max_party": 2}))
        .collect::<Vec<_>>());
    let long = json!({"id": "z6", "tables": ["t1", "t2", "t3", "t4", "t5", "t6"],
                      "min_party": 7, "max_party": 12});
    let mut body = restaurant_body(tables.clone());
    body["turn_minutes"] = json!([{"max_party": null, "minutes": 200}]);
    for (second, expected) in [
        (
            json!({"id": "a2", "tables": ["t1", "t2"], "max_party": 4}),
            vec!["combinations[0]"],
        ),
        (
            json!({"id": "a2", "tables": ["t1", "t9"], "max_party": 4}),
            vec!["combinations[0]", "combinations[1].tables"],
        ),
    ] {
        body["combinations"] = json!([long, second]);
        let res = app
            .send(
                Method::POST,
                "/v1/restaurants",
                Some(ADMIN),
                Some(body.clone()),
            )
            .await;
        let problem = assert_problem(res, 422, "validation", "too long").await;
        let mut fields = error_fields(&problem);
        fields.sort();
        assert_eq!(fields, expected, "{problem}");
    }
    body["combinations"] = json!([]);
    let res = app
        .send(Method::POST, "/v1/restaurants", Some(ADMIN), Some(body))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let path = format!(
        "/v1/restaurants/{}",
        created["restaurant"]["id"].as_str().unwrap()
    );
    let second = json!({"id": "a2", "tables": ["t1", "t2"], "max_party": 4});
    let res = app
        .send(
            Method::PATCH,
            &path,
            Some(ADMIN),
            Some(json!({"combinations": [long, second]})),
        )
        .await;
    let problem = assert_problem(res, 422, "validation", "too long, patched").await;
    assert_eq!(error_fields(&problem), vec!["combinations[0]"], "{problem}");
}

#[tokio::test]
async fn availability_of_an_unbookable_date_is_200_with_no_slots() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    for (date, party) in [(date_in(-1), 2), (date_in(731), 2), (date_in(3), 7)] {
        let a = app.availability(&f.id, &date, party).await;
        assert_eq!(a["slots"], json!([]), "{date} for {party}");
    }
}

/// A hold body padded with an unknown member to exactly `len` bytes.
fn padded_hold(date: &str, len: usize) -> String {
    let head = format!(r#"{{"date":"{date}","time":"19:00","party_size":2,"pad":""#);
    let tail = r#""}"#;
    format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
}

#[tokio::test]
async fn a_body_of_exactly_64_kib_is_read_and_one_byte_more_is_413() {
    let app = TestApp::spawn().await;
    let f = app.standard_restaurant().await;
    let date = date_in(3);
    let post = |body: String| {
        app.req(
            Method::POST,
            &format!("/v1/restaurants/{}/holds", f.id),
            None,
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
    };
    let over = post(padded_hold(&date, 64 * 1024 + 1)).await.unwrap();
    assert_problem(over, 413, "payload-too-large", "64 KiB + 1").await;
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        3
    );

    let at_limit = post(padded_hold(&date, 64 * 1024)).await.unwrap();
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    assert_eq!(
        free_at(&app.availability(&f.id, &date, 2).await, "19:00"),
        2
    );
}
