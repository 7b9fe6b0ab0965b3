//! Upgrading a SQLite store written before combinations keeps its data valid: every occupying
//! reservation keeps blocking its table, and reads back as on one table.
use crate::fixtures::*;
use std::sync::Arc;
use tablecast::domain::reservation::Status;
use tablecast::store::sqlite::SqliteStore;
use tablecast::store::{DynStore, InsertOutcome};

#[tokio::test]
async fn reservations_written_before_combinations_keep_their_tables_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let r = restaurant("Ancien");
    {
        // The schema as it was: every migration before 0003.
        let opts: sqlx::sqlite::SqliteConnectOptions = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let mut old = sqlx::migrate!("./migrations");
        let before: Vec<_> = old
            .migrations
            .iter()
            .filter(|m| m.version < 3)
            .cloned()
            .collect();
        assert_eq!(before.len(), 2);
        old.migrations = before.into();
        old.run(&pool).await.unwrap();
        let doc = serde_json::to_string(&r).unwrap();
        sqlx::query("INSERT INTO restaurants (id, name, doc, revision, wide_version, created_ms) VALUES (?, ?, ?, 1, 1, 0)")
            .bind(r.id.to_string())
            .bind(&r.name)
            .bind(doc)
            .execute(&pool)
            .await
            .unwrap();
        let start = at(19, 0).timestamp_millis();
        for (id, status, table) in [("a", "confirmed", "t1"), ("b", "released", "t2")] {
            sqlx::query(
                "INSERT INTO reservations (id, restaurant_id, table_id, date, time, start_ms,
                   end_ms, party_size, status, expires_ms, guest, notes, created_ms, updated_ms)
                 VALUES (?, ?, ?, ?, '19:00', ?, ?, 2, ?, NULL, NULL, '', 0, 0)",
            )
            .bind(format!(
                "00000000-0000-4000-8000-00000000000{}",
                if id == "a" { 1 } else { 2 }
            ))
            .bind(r.id.to_string())
            .bind(table)
            .bind(day().to_string())
            .bind(start)
            .bind(start + 90 * 60_000)
            .bind(status)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let s: DynStore = Arc::new(SqliteStore::open(&url).await.expect("upgrades"));
    let rows = s.reservations_on(r.id, day()).await.unwrap();
    assert_eq!(rows.len(), 2);
    for x in &rows {
        assert_eq!(x.table_ids, std::slice::from_ref(&x.table_id));
        assert_eq!(x.combination_id, None);
    }
    // The confirmed one still blocks t1, alone or inside a combination; the released one
    // blocks nothing.
    assert!(is_lost(
        &insert(&s, new(hold_at(&r, at(19, 30), 90), &["t1"], 1, morning())).await
    ));
    let party = reservation(&r, at(19, 30), 90, 3, Status::Held, morning());
    let out = insert(
        &s,
        new_on(party, vec![combo("c12", &["t1", "t2"])], morning()),
    )
    .await;
    assert!(is_lost(&out), "{out:?}");
    let (t2, _) = won(&s, new(hold_at(&r, at(19, 30), 90), &["t2"], 1, morning())).await;
    assert_eq!(t2.table_ids, [table("t2")]);
    assert!(matches!(
        insert(&s, new(hold_at(&r, at(21, 0), 90), &["t1"], 1, morning())).await,
        InsertOutcome::Won { .. }
    ));
}
