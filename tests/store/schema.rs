//! `tablecast migrate --store dynamodb://T` creates the table once and is idempotent.
use crate::kit::app::unique_table;
use crate::kit::{require, Service};
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::types::{BillingMode, TableStatus, TimeToLiveStatus};
use std::process::Command;

fn migrate(table: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tablecast"))
        .args(["migrate", "--store", &format!("dynamodb://{table}")])
        .output()
        .expect("tablecast runs")
}

#[tokio::test]
async fn migrate_creates_an_on_demand_table_with_ttl_and_is_idempotent() {
    if require(
        Service::DynamoDbLocal,
        "schema::migrate_creates_an_on_demand_table_with_ttl_and_is_idempotent",
    )
    .is_none()
    {
        return;
    }
    let table = unique_table("migrate");
    for run in 0..2 {
        let out = migrate(&table);
        assert!(
            out.status.success(),
            "run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    }
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let d = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(d.table_status(), Some(&TableStatus::Active));
    assert_eq!(
        d.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    assert!(d
        .global_secondary_indexes()
        .iter()
        .any(|g| g.index_name() == Some("due")));
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl_s"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn a_table_name_dynamodb_would_refuse_is_an_error_before_any_call() {
    let out = migrate("no spaces allowed");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a DynamoDB table name"));
}
