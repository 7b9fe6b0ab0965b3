//! The API over real HTTP, and the restaurant fixtures the tests create through it.
use chrono::{Duration, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// A client of one tablecast base URL (an instance, or nginx in front of several).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    /// The admin token restaurants are created with.
    pub admin: String,
}

/// A restaurant created through the API, with its staff token.
pub struct Fixture {
    pub id: String,
    pub staff: String,
    pub body: Value,
}

impl Api {
    pub fn new(base: &str, admin: &str) -> Api {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        Api {
            base: base.to_owned(),
            http,
            admin: admin.to_owned(),
        }
    }

    /// The same client (and connection pool) for another base URL.
    pub fn at(&self, base: &str) -> Api {
        Api {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut r = self.req(method, path, token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("request sent")
    }

    /// The status of a GET, 0 when nothing answers.
    pub async fn status(&self, path: &str) -> u16 {
        self.req(Method::GET, path, None)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    pub async fn create_restaurant(&self, body: Value) -> Fixture {
        let res = self
            .send(
                Method::POST,
                "/v1/restaurants",
                Some(&self.admin),
                Some(body),
            )
            .await;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::CREATED, "create restaurant: {v}");
        Fixture {
            id: v["restaurant"]["id"].as_str().unwrap().to_owned(),
            staff: v["staff_token"].as_str().unwrap().to_owned(),
            body: v["restaurant"].clone(),
        }
    }

    /// Tables t1 (1–2), t2 (1–4), t3 (2–6).
    pub async fn standard_restaurant(&self) -> Fixture {
        self.create_restaurant(restaurant_body(json!([
            {"id": "t1", "min_party": 1, "max_party": 2},
            {"id": "t2", "min_party": 1, "max_party": 4},
            {"id": "t3", "min_party": 2, "max_party": 6},
        ])))
        .await
    }

    /// The restaurant `rid` as `GET /v1/restaurants/{rid}` answers it.
    pub async fn restaurant(&self, rid: &str) -> Value {
        self.send(Method::GET, &format!("/v1/restaurants/{rid}"), None, None)
            .await
            .json()
            .await
            .unwrap()
    }

    pub async fn availability(&self, rid: &str, date: &str, party: u32) -> Value {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/restaurants/{rid}/availability?date={date}&party_size={party}"),
                None,
                None,
            )
            .await;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "availability: {v}");
        v
    }

    /// A hold whose transport error is the caller's to handle.
    pub async fn try_hold(
        &self,
        rid: &str,
        date: &str,
        time: &str,
        party: u32,
    ) -> reqwest::Result<StatusCode> {
        let body = json!({"date": date, "time": time, "party_size": party});
        let path = format!("/v1/restaurants/{rid}/holds");
        let res = self.req(Method::POST, &path, None).json(&body).send().await;
        res.map(|r| r.status())
    }

    pub async fn hold(&self, rid: &str, date: &str, time: &str, party: u32) -> Response {
        self.send(
            Method::POST,
            &format!("/v1/restaurants/{rid}/holds"),
            None,
            Some(json!({"date": date, "time": time, "party_size": party})),
        )
        .await
    }

    /// A hold that must be granted: the body that answered it (the reservation, with its token).
    pub async fn held(&self, rid: &str, date: &str, time: &str, party: u32) -> Value {
        let res = self.hold(rid, date, time, party).await;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "hold at {time} on {date}: {body}"
        );
        serde_json::from_str(&body).expect("a hold's JSON body")
    }

    /// [`Api::waitlist_entry`] of a join's answer (its `id` and `token`).
    pub async fn waitlist_entry_of(&self, joined: &Value) -> Value {
        let (id, token) = (joined["id"].as_str(), joined["token"].as_str());
        self.waitlist_entry(id.unwrap(), token.unwrap()).await
    }

    /// A waitlist entry as its token holder reads it; it must be there.
    pub async fn waitlist_entry(&self, id: &str, token: &str) -> Value {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/waitlist/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "the waitlist entry {id}");
        res.json().await.unwrap()
    }

    pub async fn confirm(&self, id: &str, token: &str) -> Response {
        self.send(
            Method::POST,
            &format!("/v1/reservations/{id}/confirm"),
            Some(token),
            Some(json!({"guest": {"name": "Ada", "email": "ada@example.com"}})),
        )
        .await
    }

    pub async fn get_reservation(&self, id: &str, token: &str) -> Response {
        self.send(
            Method::GET,
            &format!("/v1/reservations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn delete_reservation(&self, id: &str, token: &str) -> Response {
        self.send(
            Method::DELETE,
            &format!("/v1/reservations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    /// Releases a hold (the body that answered it) with its own token; fails unless `204`.
    pub async fn release_hold(&self, hold: &Value) {
        let res = self
            .delete_reservation(
                hold["id"].as_str().expect("hold id"),
                hold["token"].as_str().expect("hold token"),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "release of {hold}");
    }

    pub async fn set_status(&self, id: &str, token: &str, status: &str) -> Response {
        self.send(
            Method::PATCH,
            &format!("/v1/reservations/{id}"),
            Some(token),
            Some(json!({"status": status})),
        )
        .await
    }

    pub async fn staff_list(&self, rid: &str, token: &str, date: &str) -> Value {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/restaurants/{rid}/reservations?date={date}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

// ---------- fixtures ----------

/// The fixtures' timezone.
pub const PARIS: &str = "Europe/Paris";

/// A local date `days` ahead of today in Paris (the fixtures' timezone).
pub fn date_in(days: i64) -> String {
    date_in_zone(PARIS, days)
}

/// A local date `days` ahead of today in `tz`.
pub fn date_in_zone(tz: &str, days: i64) -> String {
    let tz: chrono_tz::Tz = tz.parse().unwrap();
    (Utc::now().with_timezone(&tz).date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// A fixed-offset zone where it is now about noon (so that no local midnight falls inside a
/// test), and the time there now, as a UTC instant shifted by its offset (read its fields, not
/// its zone).
pub fn zone_at_noon() -> (String, chrono::DateTime<Utc>) {
    zone_at(12)
}

/// A fixed-offset zone where it is now `hour` o'clock, and the time there now (as for
/// [`zone_at_noon`]).
pub fn zone_at(hour: i64) -> (String, chrono::DateTime<Utc>) {
    use chrono::Timelike;
    let now = Utc::now();
    let mut offset = hour - i64::from(now.hour());
    // Fixed-offset zones run from UTC−12 to UTC+14; a day more or less gives the same hour.
    if offset > 14 {
        offset -= 24;
    } else if offset < -12 {
        offset += 24;
    }
    let tz = match offset {
        0 => "UTC".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    (tz, now + Duration::hours(offset))
}

/// `body` open all day, every day, in `tz`.
pub fn open_all_day_in(mut body: Value, tz: &str) -> Value {
    body["timezone"] = json!(tz);
    body["hours"] = json!([{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "00:00", "close": "24:00"}]);
    body
}

/// A restaurant open every day 18:00–23:00 in Paris, default turns, 2-year horizon.
pub fn restaurant_body(tables: Value) -> Value {
    json!({
        "name": "Chez Test", "timezone": PARIS, "booking_horizon_days": 730,
        "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "23:00"}],
        "tables": tables,
    })
}

/// `tables` tables t00, t01, … seating up to 4.
pub fn many_tables(tables: usize) -> Value {
    json!((0..tables)
        .map(|i| json!({"id": format!("t{i:02}"), "max_party": 4}))
        .collect::<Vec<_>>())
}

/// Slot `time` → `available_tables` from an availability body.
pub fn free_at(avail: &Value, time: &str) -> u64 {
    avail["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["time"] == time)
        .unwrap_or_else(|| panic!("no slot {time}"))["available_tables"]
        .as_u64()
        .unwrap()
}

/// Every occupying reservation pair sharing a table must not overlap (a reservation on a
/// combination occupies each of its `table_ids`).
pub fn assert_no_overlap(reservations: &[Value]) {
    let live: Vec<&Value> = reservations
        .iter()
        .filter(|r| {
            !matches!(
                r["status"].as_str().unwrap(),
                "released" | "cancelled" | "expired"
            )
        })
        // A completion or no-show before its start ends where it starts: it occupies nothing.
        .filter(|r| r["start"].as_str() < r["end"].as_str())
        .collect();
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            let tables = |r: &Value| -> Vec<Value> {
                r["table_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![r["table_id"].clone()])
            };
            if tables(a).iter().any(|t| tables(b).contains(t)) {
                let overlap = a["start"].as_str() < b["end"].as_str()
                    && b["start"].as_str() < a["end"].as_str();
                assert!(!overlap, "double booking: {a} and {b}");
            }
        }
    }
}
