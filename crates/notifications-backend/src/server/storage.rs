//! Start-up's first step: the database, created if missing, opened and migrated.

use std::path::Path;

use super::StartError;
use crate::config::{DatabaseConfig, PostgresConfig, SqliteLocation};
use crate::db::{Db, PoolOptions, Target};
use crate::private_files;

/// The SQLite file used when the configuration names no database.
pub const DEFAULT_SQLITE_FILE: &str = "notifications.sqlite";

/// Opens the configured database and applies pending migrations. Returns the pool and a
/// description of the database for logs (never a password).
pub(super) async fn open_storage(
    config: &DatabaseConfig,
    data_dir: &Path,
) -> Result<(Db, String), StartError> {
    let (db, what) = open_database(config, data_dir, None).await?;
    let applied = db
        .migrate()
        .await
        .map_err(|e| StartError::Migration(e.to_string()))?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "applied database migrations");
    }
    Ok((db, what))
}

/// Where the configured database lives, and a description of it for logs (never a password).
fn database_target(
    config: &DatabaseConfig,
    data_dir: &Path,
) -> Result<(Target, String), StartError> {
    let ensure_dir = |dir: &Path| {
        private_files::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.to_owned(),
            source,
        })
    };
    // Created here, before SQLite would create it with its own default mode (0644).
    let ensure_file = |file: &Path| {
        private_files::ensure_file(file).map_err(|e| StartError::Database {
            what: format!("SQLite {}", file.display()),
            message: e.to_string(),
        })
    };
    Ok(match config {
        DatabaseConfig::Sqlite { location: None } => {
            ensure_dir(data_dir)?;
            let path = data_dir.join(DEFAULT_SQLITE_FILE);
            ensure_file(&path)?;
            (
                Target::Sqlite(path.to_string_lossy().into_owned()),
                format!("SQLite {}", path.display()),
            )
        }
        DatabaseConfig::Sqlite {
            location: Some(SqliteLocation::Memory),
        } => (Target::Sqlite(":memory:".into()), "SQLite in memory".into()),
        DatabaseConfig::Sqlite {
            location: Some(SqliteLocation::File(path)),
        } => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                ensure_dir(parent)?;
            }
            ensure_file(path)?;
            (
                Target::Sqlite(path.to_string_lossy().into_owned()),
                format!("SQLite {}", path.display()),
            )
        }
        DatabaseConfig::Postgres(pg) => (
            Target::Postgres(pg.url.clone()),
            format!("PostgreSQL database {}", pg.database),
        ),
    })
}

/// Opens (creating it if needed) the configured database, as `serve` and `migrate` both do.
/// `max_connections` caps the pool (a one-off command needs one). Returns the pool and a
/// description of the database for logs (never a password).
pub async fn open_database(
    config: &DatabaseConfig,
    data_dir: &Path,
    max_connections: Option<u32>,
) -> Result<(Db, String), StartError> {
    let (target, what) = database_target(config, data_dir)?;
    let mut options = PoolOptions::for_target(&target);
    if let DatabaseConfig::Postgres(pg) = config {
        if let Some(max) = pg.pool_max {
            options.max_size = max.max(1);
        }
        if pg.pool_min.is_some() {
            options.min_idle = pg.pool_min;
        }
        create_postgres_database_if_missing(pg).await?;
    }
    if let Some(max) = max_connections {
        options.max_size = options.max_size.min(max);
        options.min_idle = options.min_idle.map(|m| m.min(max));
    }
    let failed = |message: String| StartError::Database {
        what: what.clone(),
        message,
    };
    let db = tokio::task::spawn_blocking(move || Db::open(target, &options))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    Ok((db, what))
}

/// Backstage creates a plugin's database when it is missing; so do we (when the role may).
async fn create_postgres_database_if_missing(pg: &PostgresConfig) -> Result<(), StartError> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;

    let pg = pg.clone();
    tokio::task::spawn_blocking(move || {
        let failed = |message: String| StartError::Database {
            what: format!("PostgreSQL database {}", pg.database),
            message,
        };
        match PgConnection::establish(&pg.url) {
            Ok(_) => return Ok(()),
            Err(e) if !e.to_string().contains("does not exist") => {
                return Err(failed(e.to_string()));
            }
            Err(_) => {}
        }
        let mut maintenance_url = url::Url::parse(&pg.url).map_err(|e| failed(e.to_string()))?;
        maintenance_url.set_path("/postgres");
        let mut conn =
            PgConnection::establish(maintenance_url.as_str()).map_err(|e| failed(e.to_string()))?;
        let name = pg.database.replace('"', "\"\"");
        match conn.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
            Ok(()) => {
                tracing::info!(database = %pg.database, "created the PostgreSQL database");
                Ok(())
            }
            // Another instance created it at the same moment.
            Err(e) if e.to_string().contains("already exists") => Ok(()),
            Err(e) => Err(failed(format!(
                "it does not exist and cannot be created: {e}"
            ))),
        }
    })
    .await
    .map_err(|e| StartError::Database {
        what: "PostgreSQL".into(),
        message: e.to_string(),
    })?
}
