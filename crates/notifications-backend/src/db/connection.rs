//! One connection type for both databases, and how the pool opens connections.

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;

/// A connection to whichever database the configuration names. Code written against it runs on
/// both; code that must differ matches on the variant (see `per_backend!`).
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which database a pool talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Runs `$body` with `$conn` bound to the concrete connection, once per database: for the few
/// statements whose SQL or diesel support differs (upserts, dynamic queries).
macro_rules! per_backend {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::db::DbConnection::Postgres($conn) => $body,
            $crate::db::DbConnection::Sqlite($conn) => $body,
        }
    };
}
pub(crate) use per_backend;

/// Where new pool connections go.
#[derive(Clone, Debug)]
pub enum Target {
    /// A file path, or `:memory:`.
    Sqlite(String),
    Postgres {
        url: String,
        session: PgSession,
    },
}

/// What every PostgreSQL connection sets first, as Backstage's knex clients do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgSession {
    /// `backend.database.role`: `SET ROLE`, so that what is created belongs to that role.
    pub role: Option<String>,
    /// The search path (`pluginDivisionMode: schema`); `None`: the server's default.
    pub schema: Option<String>,
}

impl PgSession {
    /// The statements, after [`PG_SESSION`]'s. Set per session rather than as connection
    /// parameters, which poolers such as PgBouncer refuse.
    pub fn sql(&self) -> String {
        let mut sql = String::new();
        if let Some(role) = &self.role {
            sql.push_str(&format!("SET ROLE {};", quote_identifier(role)));
        }
        if let Some(schema) = &self.schema {
            sql.push_str(&format!("SET search_path TO {};", quote_identifier(schema)));
        }
        sql
    }
}

impl Target {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }
}

/// Opens pool connections for a [`Target`], preparing each SQLite connection.
#[derive(Debug)]
pub struct ConnectionManager {
    target: Target,
}

diesel::define_sql_function! {
    /// SQLite's built-in `lower` folds ASCII only; replacing it with Unicode folding makes
    /// case-insensitive search behave as on PostgreSQL.
    fn lower(text: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Per connection: the busy timeout makes writers queue for the lock instead of failing with
/// "database is locked"; foreign keys make status rows follow their broadcast.
const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";
/// Once per database file, before the pool opens: WAL lets readers proceed beside the writer. It
/// is a property of the file, and switching needs the file to itself.
const SQLITE_FILE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;";
const SQLITE_MEMORY_PRAGMAS: &str = "PRAGMA foreign_keys = ON;";
/// Per PostgreSQL connection: cached statements keep one plan. Our statements are written to
/// walk indexes whatever their parameters, but with a bound LIMIT PostgreSQL rates some generic
/// plans dearer than a plan for the values at hand and then plans again on every execution
/// (0.4-2.7 ms each for an inbox page: a tenth of the throughput). Statements whose best plan
/// does depend on the values (a search) are not cached, so they are still planned for them.
const PG_SESSION: &str = "SET plan_cache_mode = force_generic_plan";

impl ConnectionManager {
    pub fn new(target: Target) -> Self {
        Self { target }
    }

    /// Prepares the database itself, once, before connections are pooled.
    pub fn prepare(&self) -> diesel::ConnectionResult<()> {
        match &self.target {
            Target::Sqlite(path) if path != ":memory:" => SqliteConnection::establish(path)?
                .batch_execute(SQLITE_FILE_PRAGMAS)
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string())),
            _ => Ok(()),
        }
    }

    pub fn establish(&self) -> diesel::ConnectionResult<DbConnection> {
        match &self.target {
            Target::Postgres { url, session } => {
                let mut conn = establish_postgres(url)?;
                conn.batch_execute(&format!("{PG_SESSION}; {}", session.sql()))
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Postgres(conn))
            }
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                let pragmas = if path == ":memory:" {
                    SQLITE_MEMORY_PRAGMAS
                } else {
                    SQLITE_PRAGMAS
                };
                let prepare = |conn: &mut SqliteConnection| {
                    conn.batch_execute(pragmas)?;
                    lower_utils::register_impl(conn, |text: Option<String>| {
                        text.map(|t| t.to_lowercase())
                    })
                };
                prepare(&mut conn)
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

/// `name` as a PostgreSQL identifier, whatever it holds.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How long libpq waits for a server that does not answer (its minimum). Without it an
/// unreachable host holds a connection attempt for as long as the OS retries (minutes).
const PG_CONNECT_TIMEOUT_SECONDS: u32 = 2;

/// Connects to PostgreSQL, with [`PG_CONNECT_TIMEOUT_SECONDS`] unless the URL sets its own.
pub fn establish_postgres(url: &str) -> diesel::ConnectionResult<PgConnection> {
    if url.contains("connect_timeout=") {
        return PgConnection::establish(url);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    PgConnection::establish(&format!(
        "{url}{separator}connect_timeout={PG_CONNECT_TIMEOUT_SECONDS}"
    ))
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish()
            .map_err(diesel::r2d2::Error::ConnectionError)
    }

    /// Checked at every check-out, without a round trip: a PostgreSQL connection whose server
    /// closed it (a restart, an administrator) has its socket at end-of-file, which libpq's
    /// non-blocking read (`PQconsumeInput`, behind `notifications_iter`) reports. The first read
    /// may only take the server's farewell message, so there are two. Pooled connections never
    /// LISTEN, so nothing is taken from them. SQLite cannot lose its file.
    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        match conn {
            DbConnection::Postgres(c) => {
                for _ in 0..2 {
                    if let Some(Err(e)) = c.notifications_iter().next() {
                        return Err(diesel::r2d2::Error::QueryError(e));
                    }
                }
                Ok(())
            }
            DbConnection::Sqlite(_) => Ok(()),
        }
    }

    /// A connection that failed mid-transaction, or whose server closed it, is not given back.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        conn.is_broken() || self.is_valid(conn).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_statements_quote_their_names() {
        assert_eq!(PgSession::default().sql(), "");
        let session = PgSession {
            role: Some("owner".into()),
            schema: Some("bs_\"x".into()),
        };
        assert_eq!(
            session.sql(),
            "SET ROLE \"owner\";SET search_path TO \"bs_\"\"x\";"
        );
    }
}
