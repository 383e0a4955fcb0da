//! Start-up's first step: the database (and schema), created if missing, opened and migrated,
//! unless it holds upstream's tables.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use super::StartError;
use crate::config::{DatabaseConfig, PostgresConfig, SqliteLocation};
use crate::db::{
    Db, DbError, PgSession, PoolOptions, Target, establish_postgres, quote_identifier,
};
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
    let applied = db.migrate().await.map_err(|e| match e {
        DbError::UpstreamTables(_) => StartError::Database {
            what: what.clone(),
            message: e.to_string(),
        },
        e => StartError::Migration(e.to_string()),
    })?;
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
            Target::Postgres {
                url: pg.url.clone(),
                session: session(pg),
            },
            pg.describe(),
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
    let config = &super::postgres_tls::with_tls_files(config, data_dir)?;
    let (target, what) = database_target(config, data_dir)?;
    let mut options = PoolOptions::for_target(&target);
    if let DatabaseConfig::Postgres(pg) = config {
        if let Some(max) = pg.pool_max {
            options.max_size = max.max(1);
        }
        if pg.pool_min.is_some() {
            options.min_idle = pg.pool_min;
        }
        prepare_postgres(pg).await?;
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

/// As Backstage does before it hands a plugin its database: creates the database and, in
/// schema mode, the schema when they are missing and `ensureExists` allows; otherwise says
/// which is missing.
async fn prepare_postgres(pg: &PostgresConfig) -> Result<(), StartError> {
    let pg = pg.clone();
    tokio::task::spawn_blocking(move || {
        let failed = |message: String| StartError::Database {
            what: pg.describe(),
            message,
        };
        let mut conn = match establish_postgres(&pg.url) {
            Ok(conn) => conn,
            Err(e) if is_missing_database(&e.to_string()) => {
                let database = match (&pg.database, pg.create_database) {
                    (Some(database), true) => database,
                    (Some(_), false) => {
                        return Err(failed(format!(
                            "{}; it is not created because backend.database.ensureExists is false: create it, or let this service do so",
                            e.to_string().trim_end()
                        )));
                    }
                    (None, _) => return Err(failed(e.to_string())),
                };
                create_database(&pg.url, &session(&pg), database).map_err(failed)?;
                establish_postgres(&pg.url).map_err(|e| failed(e.to_string()))?
            }
            Err(e) => return Err(failed(e.to_string())),
        };
        if let Some(schema) = &pg.schema {
            set_session(&mut conn, &session(&pg)).map_err(failed)?;
            ensure_schema(&mut conn, schema, pg.role.as_deref(), pg.create_schema)
                .map_err(failed)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StartError::Database {
        what: "PostgreSQL".into(),
        message: e.to_string(),
    })?
}

/// libpq's `database "x" does not exist` (not a missing role's).
fn is_missing_database(message: &str) -> bool {
    message.contains("database \"") && message.contains("\" does not exist")
}

/// Creates `database` through the server's `postgres` database (when the role may), as the
/// configured `role` when there is one.
fn create_database(url: &str, session: &PgSession, database: &str) -> Result<(), String> {
    let mut maintenance_url = url::Url::parse(url).map_err(|e| e.to_string())?;
    maintenance_url.set_path("/postgres");
    let mut conn = establish_postgres(maintenance_url.as_str()).map_err(|e| e.to_string())?;
    set_session(&mut conn, session)?;
    match conn.batch_execute(&format!("CREATE DATABASE {}", quote_identifier(database))) {
        Ok(()) => {
            tracing::info!(database, "created the PostgreSQL database");
            Ok(())
        }
        // Another instance created it at the same moment.
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(e) => Err(format!("it does not exist and cannot be created: {e}")),
    }
}

/// What every connection to `pg` sets first.
fn session(pg: &PostgresConfig) -> PgSession {
    PgSession {
        role: pg.role.clone(),
        schema: pg.schema.clone(),
    }
}

/// Sets `session` on a connection of a one-off task, so that it acts as the pool's do.
fn set_session(conn: &mut PgConnection, session: &PgSession) -> Result<(), String> {
    let sql = session.sql();
    if sql.is_empty() {
        return Ok(());
    }
    conn.batch_execute(&sql).map_err(|e| e.to_string())
}

/// Creates `schema` if it is missing and `create` allows, owned by `role` as Backstage does.
/// Looked up first: creating needs the right to create in the database even when the schema is
/// there.
fn ensure_schema(
    conn: &mut PgConnection,
    schema: &str,
    role: Option<&str>,
    create: bool,
) -> Result<(), String> {
    use diesel::RunQueryDsl;
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text};

    let exists = diesel::select(
        sql::<Bool>("EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ")
            .bind::<Text, _>(schema)
            .sql(")"),
    )
    .get_result::<bool>(conn)
    .map_err(|e| e.to_string())?;
    if exists {
        return Ok(());
    }
    if !create {
        return Err(format!(
            "schema {schema} does not exist, and it is not created because backend.database.ensureExists is false: create it, or let this service do so"
        ));
    }
    let owner = role
        .map(|role| format!(" AUTHORIZATION {}", quote_identifier(role)))
        .unwrap_or_default();
    match conn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}{owner}",
        quote_identifier(schema)
    )) {
        Ok(()) => {
            tracing::info!(schema, "created the PostgreSQL schema");
            Ok(())
        }
        Err(e) => Err(format!(
            "schema {schema} does not exist and cannot be created: {e}"
        )),
    }
}
