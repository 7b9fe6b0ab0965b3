//! The two backends every contract test runs against, each fresh per test.
use std::sync::Arc;
use tablecast::store::dynamo::DynamoStore;
use tablecast::store::sqlite::SqliteStore;
use tablecast::store::DynStore;
use tempfile::TempDir;

pub struct Backend {
    pub store: DynStore,
    kind: Kind,
}

enum Kind {
    Sqlite { _dir: TempDir, url: String },
    Dynamo { table: String },
}

/// Whether DynamoDB Local is configured. Without an endpoint a DynamoDB test skips (and says
/// so) unless `TABLECAST_REQUIRE_SERVICES` is set, as under `infra/test.sh`: then it fails.
pub fn dynamo_configured(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("TABLECAST_REQUIRE_SERVICES").is_none(),
        "{test}: DynamoDB Local is required (TABLECAST_REQUIRE_SERVICES is set) but \
         AWS_ENDPOINT_URL_DYNAMODB is not: run `source infra/dynamodb-local.sh` or infra/test.sh"
    );
    eprintln!("skipped {test}: no DynamoDB endpoint (AWS_ENDPOINT_URL_DYNAMODB unset)");
    false
}

pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

impl Backend {
    pub async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store: DynStore = Arc::new(SqliteStore::open(&url).await.expect("sqlite opens"));
        Backend {
            store,
            kind: Kind::Sqlite { _dir: dir, url },
        }
    }

    /// A fresh, uniquely named table in DynamoDB Local; `None` when the test is skipped.
    pub async fn dynamo(test: &str) -> Option<Backend> {
        if !dynamo_configured(test) {
            return None;
        }
        let table = unique_table("contract");
        let store: DynStore = Arc::new(
            DynamoStore::connect(&table)
                .await
                .expect("DynamoDB Local answers and the table is created"),
        );
        Some(Backend {
            store,
            kind: Kind::Dynamo { table },
        })
    }

    /// A second instance over the same data, as another process would open it.
    pub async fn another_instance(&self) -> DynStore {
        match &self.kind {
            Kind::Sqlite { url, .. } => Arc::new(SqliteStore::open(url).await.unwrap()),
            Kind::Dynamo { table } => Arc::new(DynamoStore::connect(table).await.unwrap()),
        }
    }
}
