//! Storage plumbing: one connection type for SQLite and PostgreSQL, the pool, migrations, and a
//! way to run blocking diesel work off the async executor.

mod connection;
pub mod deferred_indexes;
pub mod listen;
pub mod migrations;
mod pool;
mod sql;
pub mod sql_types;
mod transaction;
mod upstream;
mod writer;

use std::time::Duration;

pub(crate) use connection::per_backend;
pub use connection::{
    Backend, ConnectionManager, DbConnection, PgSession, Target, establish_postgres,
    quote_identifier,
};
use pool::Pool;
pub use pool::{PoolStats, Pooled};
pub use sql::{Bind, Sql};
pub use transaction::write_transaction;

/// SQLite connections are local and never go away: a wait means a busy machine, worth waiting
/// out.
const SQLITE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// With PostgreSQL down, a request is answered 503 after this wait rather than hang, and the pool
/// retries connecting at least every half of it, so the first request once the database is back
/// succeeds within about this long. Under load a healthy pool hands out connections in
/// milliseconds.
const POSTGRES_CONNECTION_TIMEOUT: Duration = Duration::from_millis(750);

/// How long the start waits for the database's first connection.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Pool sizes and waits.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: u32,
    pub min_idle: Option<u32>,
    /// How long a request waits for a free connection before it is refused (503). The pool
    /// also retries failed connection attempts at most half this apart, so it bounds how long
    /// after a database outage the first request succeeds.
    pub connection_timeout: Duration,
}

impl PoolOptions {
    /// Defaults that suit the target: an in-memory SQLite database is one connection that must
    /// never be closed (closing it loses the data).
    pub fn for_target(target: &Target) -> Self {
        let (max_size, connection_timeout) = match target {
            Target::Sqlite(path) if path == ":memory:" => (1, SQLITE_CONNECTION_TIMEOUT),
            Target::Sqlite(_) => (8, SQLITE_CONNECTION_TIMEOUT),
            Target::Postgres { .. } => (10, POSTGRES_CONNECTION_TIMEOUT),
        };
        Self {
            max_size,
            // Connections beyond the first are opened as requests need them.
            min_idle: Some(1),
            connection_timeout,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection available: {0}")]
    Unavailable(#[from] r2d2::Error),
    #[error("database task failed: {0}")]
    Task(String),
    /// The database holds the tables of Backstage's own notifications plugin (the reason).
    #[error(
        "it holds the tables of Backstage's own notifications plugin ({0}). This service keeps its data in tables of the same names and leaves those untouched: point backend.database at a database of its own (by default backstage_plugin_{id}, or schema {id} with pluginDivisionMode: schema), and copy upstream's data into it with `notifications-backend import`",
        id = crate::config::PLUGIN_ID
    )]
    UpstreamTables(String),
    /// No connection to write with: SQLite's writer could not get one or start a transaction,
    /// or (copied to each write of a group) the pool had none.
    #[error("no database connection to write with: {0}")]
    NoConnection(String),
}

impl DbError {
    /// Whether the database was unreachable, busy or full rather than the statement wrong: the
    /// caller's to retry later (503), and no reason to suspect any one write of a group.
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as Diesel};
        match self {
            Self::Unavailable(_) | Self::NoConnection(_) => true,
            Self::Query(Diesel::DatabaseError(kind, info)) => {
                let message = info.message();
                matches!(
                    kind,
                    DatabaseErrorKind::SerializationFailure
                        | DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand
                )
                    // SQLite: a writer that waited out busy_timeout; PostgreSQL: a deadlock victim.
                    || message.contains("database is locked")
                    || message.contains("deadlock detected")
                    // PostgreSQL restarted or the connection was cut: the pool replaces it.
                    || message.contains("no connection to the server")
                    || message.contains("server closed the connection")
                    || message.contains("terminating connection")
                    // A full disk (SQLite; PostgreSQL): nothing was written, the operator must act.
                    || message.contains("database or disk is full")
                    || message.contains("No space left on device")
            }
            Self::Query(_) | Self::Task(_) | Self::UpstreamTables(_) => false,
        }
    }

    /// The same failure again, classified as the original (a full disk stays a database error,
    /// an unreachable database stays transient): for each write of a group that failed as one.
    pub fn duplicate(&self) -> Self {
        use diesel::result::Error as Diesel;
        match self {
            Self::Query(Diesel::DatabaseError(kind, info)) => Self::Query(Diesel::DatabaseError(
                *kind,
                Box::new(info.message().to_owned()),
            )),
            Self::Query(other) => Self::Task(other.to_string()),
            Self::Unavailable(e) => Self::NoConnection(e.to_string()),
            Self::Task(m) => Self::Task(m.clone()),
            Self::UpstreamTables(m) => Self::UpstreamTables(m.clone()),
            Self::NoConnection(m) => Self::NoConnection(m.clone()),
        }
    }
}

/// A pool of connections to the configured database.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    /// SQLite only: the one writer of the process.
    writer: Option<writer::Writer>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the pool (and at least one connection, so a bad address fails here, not later).
    pub fn open(target: Target, options: &PoolOptions) -> Result<Self, DbError> {
        let backend = target.backend();
        let in_memory = matches!(&target, Target::Sqlite(p) if p == ":memory:");
        let mut builder = r2d2::Pool::builder()
            .max_size(options.max_size)
            .min_idle(options.min_idle)
            .connection_timeout(options.connection_timeout)
            // Cheap: no round trip (see `ConnectionManager::is_valid`).
            .test_on_check_out(true);
        if in_memory {
            builder = builder
                .idle_timeout(None)
                .max_lifetime(None)
                .min_idle(Some(1));
        }
        let manager = ConnectionManager::new(target.clone());
        if let Err(e) = manager.prepare() {
            // The pool's own connection attempts report the cause (with retries) below.
            tracing::debug!("preparing the database failed: {e}");
        }
        // Requests wait at most `connection_timeout` for a connection; the first one, at start-up,
        // may take longer (a remote server, TLS, a cold cache) without failing the start.
        let pool = builder.build_unchecked(manager);
        drop(pool.get_timeout(options.connection_timeout.max(START_TIMEOUT))?);
        let writer = match backend {
            Backend::Sqlite => Some(
                writer::Writer::start(if in_memory {
                    writer::Source::Pool(pool.clone())
                } else {
                    writer::Source::own(ConnectionManager::new(target))
                })
                .map_err(|e| DbError::NoConnection(format!("could not start its thread: {e}")))?,
            ),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool: Pool::new(pool),
            backend,
            writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pooled connection, for a thread of its own that does blocking work (waits at most the
    /// pool's connection timeout).
    pub fn pooled(&self) -> Result<Pooled, DbError> {
        self.pool.get()
    }

    /// The pool's size, connections in use and callers waiting, for the metrics.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The most connections the pool opens.
    pub fn max_connections(&self) -> u32 {
        self.pool.max_size()
    }

    /// Runs blocking diesel work on tokio's blocking pool with a pooled connection.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        // Log lines of the work carry the request's id.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            span.in_scope(|| f(&mut conn))
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` in a write transaction: on SQLite through the process's one writer, grouped with
    /// other writes into one commit (see `writer`); on PostgreSQL on a pooled connection.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(f).await,
            None => self.run(move |conn| write_transaction(conn, f)).await,
        }
    }

    /// Applies pending migrations; returns the versions applied. Refuses, before anything is
    /// written, a database that holds upstream's tables. Makes first any index an interrupted
    /// import left dropped.
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        self.run(|conn| {
            if let Some(reason) = upstream::upstream_tables(conn)? {
                return Err(DbError::UpstreamTables(reason));
            }
            // A later migration may expect them.
            deferred_indexes::restore(conn)?;
            migrations::run_pending(conn)
                .map_err(|e| DbError::Task(format!("migration failed: {e}")))
        })
        .await
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1").map_err(DbError::from)
        })
        .await
    }
}
