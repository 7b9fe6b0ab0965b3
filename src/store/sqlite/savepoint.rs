//! The savepoint each job of a write transaction runs in, so that a job that loses or fails
//! rolls back only its own writes.
use sqlx::{Sqlite, Transaction};

/// Opens the savepoint a job's writes go in (closed by [`close_savepoint`]).
pub(super) async fn savepoint(tx: &mut Transaction<'_, Sqlite>) -> Result<(), sqlx::Error> {
    sqlx::query("SAVEPOINT job")
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// Closes the job's savepoint: its writes kept, or rolled back.
pub(super) async fn close_savepoint(
    tx: &mut Transaction<'_, Sqlite>,
    keep: bool,
) -> Result<(), sqlx::Error> {
    if !keep {
        sqlx::query("ROLLBACK TO job").execute(&mut **tx).await?;
    }
    sqlx::query("RELEASE job").execute(&mut **tx).await?;
    Ok(())
}
