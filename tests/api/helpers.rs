#![allow(dead_code)]
use chrono::{Duration, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tablecast::config::ServeArgs;
use tablecast::startup::Application;
use tempfile::TempDir;

pub const ADMIN: &str = "test-admin-token";

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub db_url: String,
    _dir: TempDir,
}

/// A restaurant created through the API, with its staff token.
pub struct Fixture {
    pub id: String,
    pub staff: String,
    pub body: Value,
}

/// A local date `days` ahead of today in Paris (the fixtures' timezone).
pub fn date_in(days: i64) -> String {
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    (Utc::now().with_timezone(&paris).date_naive() + Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// A restaurant open every day 18:00–23:00 in Paris, default turns, 2-year horizon.
pub fn restaurant_body(tables: Value) -> Value {
    json!({
        "name": "Chez Test", "timezone": "Europe/Paris", "booking_horizon_days": 730,
        "hours": [{"days": ["mon","tue","wed","thu","fri","sat","sun"], "open": "18:00", "close": "23:00"}],
        "tables": tables,
    })
}

/// The store a `TestApp` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh, uniquely named table in DynamoDB Local.
    Dynamo,
}

impl Backend {
    /// DynamoDB when it is configured. Without `AWS_ENDPOINT_URL_DYNAMODB` the test skips (and
    /// says so), unless `TABLECAST_REQUIRE_SERVICES` is set (as under `infra/test.sh`): then it fails.
    pub fn dynamo(test: &str) -> Option<Backend> {
        if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
            return Some(Backend::Dynamo);
        }
        assert!(
            std::env::var_os("TABLECAST_REQUIRE_SERVICES").is_none(),
            "{test}: DynamoDB Local is required but AWS_ENDPOINT_URL_DYNAMODB is not set \
             (run `source infra/dynamodb-local.sh` or infra/test.sh)"
        );
        eprintln!("skipped {test}: no DynamoDB endpoint (AWS_ENDPOINT_URL_DYNAMODB unset)");
        None
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_on(backend: Backend) -> TestApp {
        Self::spawn_on_with(backend, |_| {}).await
    }

    /// Spawns with adjusted settings (e.g. short heartbeats).
    pub async fn spawn_with(adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
        Self::spawn_on_with(Backend::Sqlite, adjust).await
    }

    pub async fn spawn_on_with(backend: Backend, adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let db_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            Backend::Dynamo => format!("dynamodb://api-{}", uuid::Uuid::new_v4().simple()),
        };
        let mut args = ServeArgs::for_tests(&db_url, ADMIN);
        adjust(&mut args);
        let app = Application::build(args).await.expect("app builds");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            db_url,
            _dir: dir,
        }
    }

    pub fn req(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let mut r = self
            .client
            .request(method, format!("{}{}", self.base, path));
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

    pub async fn create_restaurant(&self, body: Value) -> Fixture {
        let res = self
            .send(Method::POST, "/v1/restaurants", Some(ADMIN), Some(body))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "create restaurant");
        let v: Value = res.json().await.unwrap();
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

    pub async fn availability(&self, rid: &str, date: &str, party: u32) -> Value {
        let res = self
            .send(
                Method::GET,
                &format!("/v1/restaurants/{rid}/availability?date={date}&party_size={party}"),
                None,
                None,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
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

/// Every occupying reservation pair on one table must not overlap.
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
            if a["table_id"] == b["table_id"] {
                let overlap = a["start"].as_str() < b["end"].as_str()
                    && b["start"].as_str() < a["end"].as_str();
                assert!(!overlap, "double booking: {a} and {b}");
            }
        }
    }
}

/// Waits for a condition, failing after the deadline.
pub async fn eventually<F, Fut>(deadline: std::time::Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = std::time::Instant::now() + deadline;
    loop {
        if f().await {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
