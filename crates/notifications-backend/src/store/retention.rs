//! Deleting notifications that saw no activity for the retention period.

use time::OffsetDateTime;

use super::{Store, StoreResult};
use crate::db::{Bind, DbConnection, DbError, Sql};

/// Serialises cleaners of several instances on one PostgreSQL ("notifcln" in ASCII).
const CLEANER_LOCK_KEY: i64 = 0x6e6f_7469_6663_6c6e;

/// Rows deleted per transaction: other writers get their turn between batches.
const DELETE_BATCH: i64 = 5000;

impl Store {
    /// Deletes user notifications and broadcasts (with their status rows) whose last activity
    /// (update, else creation) is at or before `cutoff`, and the records of deliveries that
    /// ended (delivered or failed) by then; returns how many notifications were deleted.
    /// On PostgreSQL a second instance cleaning at the same time stops and returns what it did.
    pub async fn delete_inactive_since(&self, cutoff: OffsetDateTime) -> StoreResult<u64> {
        let mut deleted = 0;
        // Finished deliveries always have `updated`; the condition uses their index.
        for (table, inactive) in [
            ("notification", "COALESCE(updated, created) <= "),
            ("broadcast", "COALESCE(updated, created) <= "),
            (
                "delivery",
                "status IN ('delivered', 'failed') AND updated <= ",
            ),
        ] {
            loop {
                let batch = self
                    .db
                    .write(move |conn| delete_batch(conn, table, inactive, cutoff))
                    .await?;
                let Some(batch) = batch else {
                    return Ok(deleted);
                };
                if table != "delivery" {
                    deleted += batch;
                }
                if batch < DELETE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

/// One batch, in the caller's short transaction; `None` when another instance holds the cleaner
/// lock. `inactive` is the condition, up to the cutoff time.
fn delete_batch(
    conn: &mut DbConnection,
    table: &str,
    inactive: &str,
    cutoff: OffsetDateTime,
) -> Result<Option<u64>, DbError> {
    if !take_cleaner_lock(conn)? {
        return Ok(None);
    }
    let mut sql = Sql::new(&format!(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {inactive}"
    ));
    sql.bind(Bind::Timestamp(cutoff))
        .limit(DELETE_BATCH)
        .push(")");
    Ok(Some(sql.execute(conn)? as u64))
}

fn take_cleaner_lock(conn: &mut DbConnection) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    match conn {
        DbConnection::Postgres(_) => {
            let rows: Vec<Locked> = Sql::new(&format!(
                "SELECT pg_try_advisory_xact_lock({CLEANER_LOCK_KEY}) AS locked"
            ))
            .load(conn)?;
            Ok(rows.first().is_some_and(|row| row.locked))
        }
        // SQLite's write transaction is already exclusive.
        DbConnection::Sqlite(_) => Ok(true),
    }
}
