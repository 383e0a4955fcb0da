//! Schema migrations, embedded in the binary: one folder per database, same names in both.

use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConnection;

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A fixed key for the PostgreSQL advisory lock that serialises migrations between instances
/// ("notifmig" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6e6f_7469_666d_6967;

pub type MigrationError = Box<dyn std::error::Error + Send + Sync>;

/// Applies every pending migration and returns the versions applied.
///
/// On PostgreSQL, instances that start together queue on an advisory lock, so exactly one of them
/// migrates and the others find nothing left to do.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    match conn {
        DbConnection::Postgres(pg) => {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
            let result = applied(pg.run_pending_migrations(POSTGRES));
            let unlock =
                pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            let versions = result?;
            unlock?;
            Ok(versions)
        }
        DbConnection::Sqlite(sqlite) => applied(sqlite.run_pending_migrations(SQLITE)),
    }
}

/// Whether some migration is not applied yet (a dry run of `import` does not apply them).
pub fn has_pending(conn: &mut DbConnection) -> Result<bool, MigrationError> {
    match conn {
        DbConnection::Postgres(pg) => pg.has_pending_migration(POSTGRES),
        DbConnection::Sqlite(sqlite) => sqlite.has_pending_migration(SQLITE),
    }
}

fn applied(
    result: Result<Vec<diesel::migration::MigrationVersion<'_>>, MigrationError>,
) -> Result<Vec<String>, MigrationError> {
    Ok(result?.into_iter().map(|v| v.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use diesel::migration::MigrationSource;

    use super::*;

    fn versions(source: EmbeddedMigrations) -> Vec<String> {
        MigrationSource::<diesel::pg::Pg>::migrations(&source)
            .unwrap()
            .iter()
            .map(|m| m.name().version().to_string())
            .collect()
    }

    /// diesel knows a migration by the date before the first underscore: two folders with one
    /// date would be one migration, and the second would never run.
    #[test]
    fn every_migration_has_its_own_version_on_both_databases() {
        let postgres = versions(POSTGRES);
        let mut unique = postgres.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), postgres.len(), "{postgres:?}");
        let names = |source: EmbeddedMigrations| -> Vec<String> {
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&source)
                .unwrap()
                .iter()
                .map(|m| m.name().to_string())
                .collect()
        };
        assert_eq!(names(POSTGRES), names(SQLITE), "mirrored folders");
    }
}
