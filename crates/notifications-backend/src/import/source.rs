//! Upstream's database, read only: its four tables as upstream 0.6.x's knex migrations made them,
//! read in batches in key order (so that a batch ends where the next begins, whatever the size of
//! the tables), every value as text, to be checked and converted row by row.

use std::path::Path;

use diesel::QueryableByName;
use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;

use super::ImportError;
use crate::config::{DatabaseConfig, SqliteLocation};
use crate::db::{Bind, ConnectionManager, DbConnection, PgSession, Sql, Target};

/// The columns `import` reads from each of upstream's tables (0.6.x: after `addTopic`).
const TABLES: [(&str, &[&str]); 4] = [
    (
        "notification",
        &[
            "id",
            "user",
            "title",
            "description",
            "severity",
            "link",
            "origin",
            "scope",
            "topic",
            "icon",
            "created",
            "updated",
            "read",
            "saved",
        ],
    ),
    (
        "broadcast",
        &[
            "id",
            "title",
            "description",
            "severity",
            "link",
            "origin",
            "scope",
            "topic",
            "icon",
            "created",
            "updated",
        ],
    ),
    (
        "broadcast_user_status",
        &["broadcast_id", "user", "read", "saved"],
    ),
    (
        "user_settings",
        &[
            "user",
            "channel",
            "origin",
            "topic",
            "enabled",
            "settings_key_hash",
        ],
    ),
];

/// What a notification and a broadcast share, as stored upstream.
#[derive(Debug, QueryableByName)]
pub struct UpstreamContent {
    #[diesel(sql_type = Nullable<Text>)]
    pub title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub severity: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub link: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub origin: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub scope: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub created: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub updated: Option<String>,
}

#[derive(Debug, QueryableByName)]
pub struct UpstreamNotification {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub user: Option<String>,
    #[diesel(embed)]
    pub content: UpstreamContent,
    #[diesel(sql_type = Nullable<Text>)]
    pub read: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub saved: Option<String>,
}

#[derive(Debug, QueryableByName)]
pub struct UpstreamBroadcast {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(embed)]
    pub content: UpstreamContent,
}

#[derive(Debug, QueryableByName)]
pub struct UpstreamMark {
    #[diesel(sql_type = Text)]
    pub broadcast_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub user: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub read: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub saved: Option<String>,
}

#[derive(Debug, QueryableByName)]
pub struct UpstreamSetting {
    #[diesel(sql_type = Text)]
    pub settings_key_hash: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub user: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub channel: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub origin: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub topic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub enabled: Option<String>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
}

/// A read-only connection to upstream's database.
pub struct Source {
    conn: DbConnection,
}

impl Source {
    /// Connects, read only: a SQLite file is opened read-only (and must exist), a PostgreSQL
    /// session is made read-only. Times are read in UTC.
    pub fn open(config: &DatabaseConfig) -> Result<Self, ImportError> {
        let target = match config {
            DatabaseConfig::Sqlite {
                location: Some(SqliteLocation::File(path)),
            } => {
                if !path.is_file() {
                    return Err(ImportError::Source(format!(
                        "SQLite file {} does not exist",
                        path.display()
                    )));
                }
                Target::Sqlite(read_only_uri(path))
            }
            DatabaseConfig::Sqlite { .. } => {
                return Err(ImportError::Source(
                    "a SQLite source must name its file (an in-memory database holds nothing)"
                        .into(),
                ));
            }
            DatabaseConfig::Postgres(pg) => Target::Postgres {
                url: pg.url.clone(),
                session: PgSession {
                    role: pg.role.clone(),
                    schema: pg.schema.clone(),
                },
            },
        };
        let mut conn = ConnectionManager::new(target)
            .establish()
            .map_err(|e| ImportError::Source(e.to_string()))?;
        if let DbConnection::Postgres(pg) = &mut conn {
            pg.batch_execute(
                // The times are read as text: ISO, whatever the server's or role's DateStyle.
                "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO'; \
                 SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            )
            .map_err(|e| ImportError::Source(e.to_string()))?;
        }
        Ok(Self { conn })
    }

    /// Checks that the four tables are upstream's, with the columns read.
    pub fn check_schema(&mut self) -> Result<(), ImportError> {
        for (table, wanted) in TABLES {
            let columns = table_columns(&mut self.conn, table).map_err(source_error)?;
            if columns.is_empty() {
                return Err(ImportError::Source(format!(
                    "it has no table {table}: not a database of upstream's notifications backend"
                )));
            }
            if columns.iter().any(|c| c == "user_ref") {
                return Err(ImportError::Source(format!(
                    "its table {table} is this service's own, not upstream's: \
                     the source must be the database upstream's notifications backend used"
                )));
            }
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|w| !columns.iter().any(|c| c == w))
                .collect();
            if !missing.is_empty() {
                return Err(ImportError::Source(format!(
                    "its table {table} lacks the column(s) {}: not upstream 0.6.x's schema \
                     (start upstream's backend 0.6 once to migrate it, then import)",
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The rows of `table`.
    pub fn count(&mut self, table: &str) -> Result<u64, ImportError> {
        let rows = Sql::new(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .load::<Count>(&mut self.conn)
            .map_err(source_error)?;
        Ok(rows.first().map_or(0, |c| c.n.max(0).unsigned_abs()))
    }

    /// Up to `limit` notifications after the id `after`, by id.
    pub fn notifications(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UpstreamNotification>, ImportError> {
        let columns = format!(
            "{}, {}, {}, {}, {}",
            text("id"),
            text("\"user\""),
            self.content_columns(),
            self.instant("read"),
            self.instant("saved")
        );
        self.after("notification", &columns, "id", after, limit)
    }

    /// Up to `limit` broadcasts after the id `after`, by id.
    pub fn broadcasts(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UpstreamBroadcast>, ImportError> {
        let columns = format!("{}, {}", text("id"), self.content_columns());
        self.after("broadcast", &columns, "id", after, limit)
    }

    /// The marks on the broadcasts with ids from `first` to `last`.
    pub fn marks(&mut self, first: &str, last: &str) -> Result<Vec<UpstreamMark>, ImportError> {
        let mut sql = Sql::new(&format!(
            "SELECT {}, {}, {}, {} FROM broadcast_user_status WHERE broadcast_id >= ",
            text("broadcast_id"),
            text("\"user\""),
            self.instant("read"),
            self.instant("saved")
        ));
        sql.bind(self.id_bind(first))
            .push(" AND broadcast_id <= ")
            .bind(self.id_bind(last))
            .push(" ORDER BY broadcast_user_status.broadcast_id");
        sql.load(&mut self.conn).map_err(source_error)
    }

    /// Up to `limit` settings after the key `after`, by upstream's settings key.
    pub fn settings(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UpstreamSetting>, ImportError> {
        let columns = [
            "settings_key_hash",
            "\"user\"",
            "channel",
            "origin",
            "topic",
            "enabled",
        ]
        .map(text)
        .join(", ");
        let mut sql = Sql::new(&format!("SELECT {columns} FROM user_settings"));
        if let Some(after) = after {
            sql.push(" WHERE settings_key_hash > ")
                .bind(Bind::Text(after.to_owned()));
        }
        sql.push(" ORDER BY settings_key_hash").limit(limit);
        sql.load(&mut self.conn).map_err(source_error)
    }

    fn after<T>(
        &mut self,
        table: &str,
        columns: &str,
        key: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<T>, ImportError>
    where
        T: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
    {
        // Qualified: in ORDER BY the bare name would be the text alias of the select list,
        // whose order no index gives (a sort of the whole table for every batch).
        let mut sql = Sql::new(&format!("SELECT {columns} FROM {table}"));
        if let Some(after) = after {
            sql.push(&format!(" WHERE {table}.{key} > "))
                .bind(self.id_bind(after));
        }
        sql.push(&format!(" ORDER BY {table}.{key}")).limit(limit);
        sql.load(&mut self.conn).map_err(source_error)
    }

    fn content_columns(&self) -> String {
        let mut columns: Vec<String> = [
            "title",
            "description",
            "severity",
            "link",
            "origin",
            "scope",
            "topic",
            "icon",
        ]
        .map(text)
        .to_vec();
        columns.push(self.instant("created"));
        columns.push(self.instant("updated"));
        columns.join(", ")
    }

    /// A time column as text: `2024-12-05 12:00:00.123456`, in UTC, on PostgreSQL (the
    /// timestamp's own output, about a third cheaper than `to_char`); on SQLite as knex stored
    /// it, milliseconds since the epoch (or `CURRENT_TIMESTAMP`'s text).
    fn instant(&self, column: &str) -> String {
        match self.conn {
            DbConnection::Postgres(_) => {
                format!("CAST({column} AT TIME ZONE 'UTC' AS TEXT) AS {column}")
            }
            DbConnection::Sqlite(_) => text(column),
        }
    }

    /// An id compared with upstream's `uuid` column on PostgreSQL, its text on SQLite.
    fn id_bind(&self, id: &str) -> Bind {
        match (&self.conn, uuid::Uuid::parse_str(id)) {
            (DbConnection::Postgres(_), Ok(uuid)) => Bind::Uuid(uuid),
            _ => Bind::Text(id.to_owned()),
        }
    }
}

fn text(column: &str) -> String {
    format!("CAST({column} AS TEXT) AS {column}")
}

fn source_error(e: diesel::result::Error) -> ImportError {
    ImportError::Source(e.to_string())
}

/// The column names of `table` (none when it does not exist), as the connection sees it (on
/// PostgreSQL, in its search path).
pub fn table_columns(conn: &mut DbConnection, table: &str) -> diesel::QueryResult<Vec<String>> {
    let mut sql = match conn {
        DbConnection::Postgres(_) => Sql::new(
            "SELECT CAST(attname AS TEXT) AS name FROM pg_attribute \
             WHERE attnum > 0 AND NOT attisdropped AND attrelid = to_regclass(",
        ),
        DbConnection::Sqlite(_) => Sql::new("SELECT name FROM pragma_table_info("),
    };
    sql.bind(Bind::Text(table.to_owned())).push(")");
    Ok(sql
        .load::<Column>(conn)?
        .into_iter()
        .map(|c| c.name)
        .collect())
}

/// SQLite's URI for a read-only open of `path` (`%`, `?` and `#` escaped).
fn read_only_uri(path: &Path) -> String {
    let path = path.to_string_lossy();
    let escaped = path
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{escaped}?mode=ro")
}
