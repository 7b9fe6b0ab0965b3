//! Backend-specific schema checks. DynamoDB: `tablecast migrate --store dynamodb://T` creates
//! the table once and is idempotent. SQLite: every request-path statement, and the overlap
//! triggers, are answered from the partial indexes of live rows, never by scanning history.
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

/// Instances starting together on a table nobody made yet all start: each may find TTL off and
/// ask for it after another already turned it on, which DynamoDB refuses ("TimeToLive is
/// already enabled"); that instance used to exit with the refusal.
#[tokio::test]
async fn migrations_started_together_on_a_new_table_all_succeed() {
    if require(
        Service::DynamoDbLocal,
        "schema::migrations_started_together_on_a_new_table_all_succeed",
    )
    .is_none()
    {
        return;
    }
    for round in 0..3 {
        let table = unique_table("together");
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let table = table.clone();
                std::thread::spawn(move || migrate(&table))
            })
            .collect();
        for (i, run) in runs.into_iter().enumerate() {
            let out = run.join().unwrap();
            assert!(
                out.status.success(),
                "round {round}, migration {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[tokio::test]
async fn a_table_name_dynamodb_would_refuse_is_an_error_before_any_call() {
    let out = migrate("no spaces allowed");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a DynamoDB table name"));
}

/// The plan SQLite makes for `sql`, one detail line per step.
/// A fresh, migrated SQLite file (kept while the directory lives) and a pool on it.
async fn migrated() -> (tempfile::TempDir, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("plan.db").display());
    let _store = tablecast::store::sqlite::SqliteStore::open(&url)
        .await
        .expect("sqlite opens and migrates");
    (dir, sqlx::SqlitePool::connect(&url).await.unwrap())
}

async fn plan(pool: &sqlx::SqlitePool, sql: &str) -> Vec<String> {
    use sqlx::Row;
    sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("cannot plan {sql}: {e}"))
        .iter()
        .map(|row| row.get::<String, _>("detail"))
        .collect()
}

/// The lines of `plan` that read reservations or their tables: each must search a live index
/// (no scan, no index over every status) with an equality on the restaurant and on `key`, or
/// look one reservation up by its primary key.
fn assert_live(name: &str, plan: &[String], index: &str, key: &str) {
    let reads: Vec<&String> = plan
        .iter()
        .filter(|l| l.contains("reservation") || l.starts_with("SCAN r"))
        .collect();
    assert!(
        !reads.is_empty(),
        "{name}: no read of reservations in {plan:?}"
    );
    assert!(
        reads.iter().any(|l| l.contains(index)),
        "{name}: does not read {index}: {plan:?}"
    );
    for l in reads {
        let by_key =
            l.starts_with("SEARCH reservations USING INDEX sqlite_autoindex_reservations_1 (id=?)");
        assert!(
            by_key
                || (l.starts_with("SEARCH")
                    && l.contains(&format!("USING INDEX {index} (restaurant_id=? AND {key}"))),
            "{name}: `{l}` does not search {index} by restaurant and {key}; plan: {plan:?}"
        );
    }
}

#[tokio::test]
async fn sqlite_request_paths_and_triggers_read_only_live_partial_indexes() {
    let (_dir, pool) = migrated().await;

    for (name, sql) in tablecast::store::sqlite::request_path_sql() {
        let p = plan(&pool, &sql).await;
        if name == "day view" {
            // Live reservations only: no cancelled one, however many the date has.
            assert_live(name, &p, "reservations_pacing", "date=?");
        } else if name == "cancelled of a date (floor)" {
            assert_live(name, &p, "reservations_shown_by_day", "date=?");
        } else if name == "pacing window" {
            assert_live(
                name,
                &p,
                "reservations_pacing",
                "date=? AND time>? AND time<?",
            );
        } else if name.starts_with("settings guard") {
            // Live reservations from the earliest date a live one can have: no past date.
            assert_live(name, &p, "reservations_pacing", "date>?");
        } else if name == "live holds of a client" {
            assert!(
                p.iter().all(|l| l.starts_with("SEARCH")
                    && l.contains(
                        "INDEX reservations_live_holds_by_client (client_key=? AND expires_ms>?)"
                    )),
                "{name}: {p:?}"
            );
        } else {
            // Table decisions read the rows of occupying reservations' tables.
            assert_live(
                name,
                &p,
                "reservation_tables_by_table",
                "table_id=? AND start_ms>? AND start_ms<?",
            );
        }
    }

    // The overlap trigger's EXISTS, as written in the schema, with NEW.* as parameters.
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%SELECT 1 FROM%'
         ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    for (name, sql) in triggers {
        let from = sql.find("SELECT 1 FROM").expect("an EXISTS subquery");
        let to = sql.rfind(");").expect("the end of the EXISTS");
        let mut body = sql[from..to].to_owned();
        for col in ["restaurant_id", "table_id", "start_ms", "end_ms", "id"] {
            body = body.replace(&format!("NEW.{col}"), "?");
        }
        let p = plan(&pool, &body).await;
        assert_live(
            &name,
            &p,
            "reservation_tables_by_table",
            "table_id=? AND start_ms>? AND start_ms<?",
        );
    }

    // Retention batches and the mail sender read their own indexes too: no statement scans a
    // table, so sent mail never slows the sender down.
    let statements = tablecast::store::sqlite::retention_sql()
        .into_iter()
        .chain(tablecast::store::sqlite::outbox_sql());
    for (name, sql) in statements {
        let p = plan(&pool, &sql).await;
        assert!(
            p.iter().all(|l| !l.starts_with("SCAN ")
                || l.contains("json_each")
                || l.starts_with("SCAN (subquery")
                // The partial index of pending mail holds nothing else: counting it is the depth.
                || l == "SCAN outbox USING COVERING INDEX outbox_due"),
            "{name}: {p:?}"
        );
    }
}

/// The script that decides a hold: every statement searches an
/// index, none scans a table (only the JSON lists of candidates, member tables and dates are
/// scanned).
#[tokio::test]
async fn sqlite_hold_script_searches_indexes_only() {
    let (_dir, pool) = migrated().await;
    let statements = tablecast::store::sqlite::hold_script_sql();
    assert_eq!(statements.len(), 6, "{statements:?}");
    for sql in statements {
        let p = plan(&pool, &sql).await;
        for l in &p {
            // A temporary b-tree (an `ORDER BY` not answered by the scan, a `RETURNING`
            // buffer) is a b-tree and its page cache made and freed on every hold.
            assert!(!l.contains("TEMP B-TREE"), "`{l}`: {p:?}\n{sql}");
            assert!(
                !l.starts_with("SCAN ")
                    || l.starts_with("SCAN c VIRTUAL TABLE")
                    || l.starts_with("SCAN d VIRTUAL TABLE")
                    || l.starts_with("SCAN m VIRTUAL TABLE")
                    || l.starts_with("SCAN json_each VIRTUAL TABLE")
                    || l == "SCAN CONSTANT ROW",
                "`{l}` scans: {p:?}\n{sql}"
            );
            if l.contains("reservation_tables") || l.contains(" r ") {
                assert!(
                    l.contains("reservation_tables_by_table (restaurant_id=? AND table_id=? AND start_ms>? AND start_ms<?)"),
                    "`{l}` does not search the table's time range: {p:?}"
                );
            }
        }
    }
}

/// Every waitlist statement searches an index of the waitlist: none scans it.
#[tokio::test]
async fn sqlite_waitlist_statements_search_their_indexes() {
    let (_dir, pool) = migrated().await;
    for (name, sql) in tablecast::store::sqlite::waitlist_sql() {
        let p = plan(&pool, &sql).await;
        assert!(
            p.iter().any(|l| l.starts_with("SEARCH waitlist USING")),
            "{name}: {p:?}"
        );
        assert!(
            !p.iter().any(|l| l.starts_with("SCAN waitlist")),
            "{name}: {p:?}"
        );
    }
}
