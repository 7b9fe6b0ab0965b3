//! The app in-process on port 0, on a fresh SQLite file or a fresh DynamoDB Local table.
use super::api::Api;
use super::services::{require, Service};
use std::ops::Deref;
use tablecast::config::ServeArgs;
use tablecast::startup::Application;
use tempfile::TempDir;

pub const ADMIN: &str = "test-admin-token";

/// A fresh, uniquely named DynamoDB table: `<prefix>-<uuid>`.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
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
    /// DynamoDB Local, by [`require`]: `None` when `test` skips.
    pub fn dynamo(test: &str) -> Option<Backend> {
        require(Service::DynamoDbLocal, test).map(|_| Backend::Dynamo)
    }
}

/// The app serving on a port of its own; the API client derefs from it.
pub struct TestApp {
    pub api: Api,
    pub port: u16,
    pub db_url: String,
    _dir: TempDir,
}

impl Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
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
            Backend::Dynamo => format!("dynamodb://{}", unique_table("api")),
        };
        let mut args = ServeArgs::for_tests(&db_url, ADMIN);
        adjust(&mut args);
        let app = Application::build(args).await.expect("app builds");
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            api: Api::new(&format!("http://127.0.0.1:{port}"), ADMIN),
            port,
            db_url,
            _dir: dir,
        }
    }

    /// A second instance in-process on this one's store (default test settings): its API.
    pub async fn another_on_the_same_store(&self) -> Api {
        let other = Application::build(ServeArgs::for_tests(&self.db_url, ADMIN))
            .await
            .expect("a second instance on the same store");
        let api = self.at(&format!("http://127.0.0.1:{}", other.port()));
        tokio::spawn(other.run_until_stopped());
        api
    }
}

/// Moves reservation `id` `days` days back in the SQLite file of `store` (`sqlite://…`), its
/// date with it, as if that time had passed (a server reads a reservation from there).
pub async fn move_back(store: &str, id: &str, days: i64) {
    use sqlx::Connection as _;
    let mut db = sqlx::SqliteConnection::connect(store).await.unwrap();
    let moved = sqlx::query(
        "UPDATE reservations SET date = date(date, ?1), start_ms = start_ms - ?2, \
         end_ms = end_ms - ?2 WHERE id = ?3",
    )
    .bind(format!("-{days} days"))
    .bind(days * 86_400_000)
    .bind(id)
    .execute(&mut db)
    .await
    .unwrap();
    assert_eq!(moved.rows_affected(), 1, "{id}");
}
