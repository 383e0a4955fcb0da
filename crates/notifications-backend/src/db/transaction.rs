//! Write transactions that behave the same on both databases.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error as DieselError;

use super::DbConnection;

/// Runs `f` in a transaction that takes the write lock up front.
///
/// On SQLite a plain `BEGIN` starts as a reader and fails with "database is locked" when it later
/// writes after another connection committed; `BEGIN IMMEDIATE` waits for the lock (busy_timeout)
/// instead. PostgreSQL needs nothing special.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    begin_write(conn)?;
    match f(conn) {
        // A failed COMMIT is rolled back by diesel's transaction manager itself.
        Ok(value) => DbConnection::commit_transaction(conn)
            .map(|()| value)
            .map_err(E::from),
        Err(error) => {
            // The original error is what the caller needs; a failed rollback is only logged (the
            // pool discards the broken connection).
            if let Err(rollback) = DbConnection::rollback_transaction(conn) {
                tracing::warn!("rollback failed: {rollback}");
            }
            Err(error)
        }
    }
}

/// `BEGIN IMMEDIATE` on SQLite (see [`write_transaction`]), `BEGIN` on PostgreSQL.
pub(super) fn begin_write(conn: &mut DbConnection) -> Result<(), DieselError> {
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction(c),
    }
}
