//! The two backends every contract test runs against, each fresh per test.
use crate::kit::app::unique_table;
use crate::kit::{require, Service};
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
        require(Service::DynamoDbLocal, test)?;
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

    /// The DynamoDB table of this backend, to read raw items.
    pub fn dynamo_table(&self) -> Option<&str> {
        match &self.kind {
            Kind::Dynamo { table } => Some(table),
            Kind::Sqlite { .. } => None,
        }
    }

    /// A second instance over the same data, as another process would open it.
    pub async fn another_instance(&self) -> DynStore {
        match &self.kind {
            Kind::Sqlite { url, .. } => Arc::new(SqliteStore::open(url).await.unwrap()),
            Kind::Dynamo { table } => Arc::new(DynamoStore::connect(table).await.unwrap()),
        }
    }
}
