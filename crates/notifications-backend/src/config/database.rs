//! `backend.database`: Backstage's knex-style database settings, reduced to SQLite or a libpq
//! connection URL for PostgreSQL.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor, value::MapAccessDeserializer};
use serde_json::Value;

use super::coerce::{Bool, Positive, UInt};
use super::error::{ConfigError, child_key, parse_at};
use super::secret::{Secret, loggable_url as redact_url};

/// The database Backstage would give this plugin: `backstage_plugin_` + the plugin id.
const DEFAULT_DATABASE: &str = "backstage_plugin_notifications";
/// The file a SQLite `connection.directory` holds, as Backstage names it.
const SQLITE_FILE: &str = "notifications.sqlite";
const PG_CONNECTION_FORMS: &str =
    "a postgres:// URL or a map with host, port, user, password and database";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// SQLite. `None` = the default file in the data directory (decided by the caller).
    Sqlite {
        location: Option<SqliteLocation>,
    },
    Postgres(PostgresConfig),
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self::Sqlite { location: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    Memory,
    File(PathBuf),
}

#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq connection URL, `postgres://user:password@host:port/database?params`.
    pub url: String,
    /// The database `url` names.
    pub database: String,
    pub pool_max: Option<u32>,
    pub pool_min: Option<u32>,
}

/// The password in `url` is masked.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("database", &self.database)
            .field("pool_max", &self.pool_max)
            .field("pool_min", &self.pool_min)
            .finish()
    }
}

/// `backend.database` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub(super) struct RawDatabase {
    client: Client,
    /// Read once the client is known.
    connection: Option<Value>,
    #[serde(default)]
    knex_config: KnexConfig,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map")]
struct KnexConfig {
    pool: Pool,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map")]
struct Pool {
    min: Option<UInt<u32>>,
    max: Option<Positive>,
}

enum Client {
    Sqlite,
    Postgres,
}

impl<'de> Deserialize<'de> for Client {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "better-sqlite3" | "sqlite3" | "sqlite" => Ok(Self::Sqlite),
            "pg" | "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(de::Error::custom(format!(
                "unsupported database client {other:?} (expected one of better-sqlite3, sqlite3, pg)"
            ))),
        }
    }
}

impl RawDatabase {
    /// `key` is where this section sits (`backend.database`).
    pub(super) fn into_config(self, key: &str) -> Result<DatabaseConfig, ConfigError> {
        let connection_key = child_key(key, "connection");
        match self.client {
            Client::Sqlite => Ok(DatabaseConfig::Sqlite {
                location: match self.connection {
                    Some(connection) => sqlite_location(connection, &connection_key)?,
                    None => None,
                },
            }),
            Client::Postgres => {
                let connection = self.connection.ok_or_else(|| {
                    let message = format!("required for PostgreSQL: {PG_CONNECTION_FORMS}");
                    ConfigError::invalid(&connection_key, message)
                })?;
                let (url, database) = postgres_url(connection, &connection_key)?;
                let pool = self.knex_config.pool;
                let pool_min = pool.min.map(|n| n.0);
                let pool_max = pool.max.map(|n| n.0);
                if let (Some(min), Some(max)) = (pool_min, pool_max)
                    && min > max
                {
                    return Err(ConfigError::invalid(
                        &child_key(key, "knexConfig.pool"),
                        format!("min ({min}) must not exceed max ({max})"),
                    ));
                }
                Ok(DatabaseConfig::Postgres(PostgresConfig {
                    url,
                    database,
                    pool_max,
                    pool_min,
                }))
            }
        }
    }
}

/// A SQLite `connection`: `:memory:`, a file name, or `{filename, directory}` which Backstage
/// joins (a directory alone holds `notifications.sqlite`).
fn sqlite_location(connection: Value, key: &str) -> Result<Option<SqliteLocation>, ConfigError> {
    #[derive(Deserialize)]
    #[serde(expecting = "a map")]
    struct Connection {
        filename: Option<String>,
        directory: Option<PathBuf>,
    }

    let file = |name: String| match name.as_str() {
        ":memory:" => SqliteLocation::Memory,
        _ => SqliteLocation::File(name.into()),
    };
    match connection {
        Value::String(name) if name.is_empty() => {
            Err(ConfigError::invalid(key, "must not be empty"))
        }
        Value::String(name) => Ok(Some(file(name))),
        Value::Object(_) => {
            let connection: Connection = parse_at(connection, key)?;
            Ok(match (connection.directory, connection.filename) {
                (Some(directory), Some(name)) => Some(SqliteLocation::File(directory.join(name))),
                (Some(directory), None) => Some(SqliteLocation::File(directory.join(SQLITE_FILE))),
                (None, Some(name)) => Some(file(name)),
                (None, None) => None,
            })
        }
        _ => Err(ConfigError::invalid(
            key,
            "expected \":memory:\", a file name, or a map with filename or directory",
        )),
    }
}

/// A PostgreSQL `connection` as a libpq URL and the database it names.
fn postgres_url(connection: Value, key: &str) -> Result<(String, String), ConfigError> {
    match connection {
        Value::String(url) => url_with_database(url, key),
        Value::Object(_) => Ok(parse_at::<PgConnection>(connection, key)?.into_url()),
        _ => Err(ConfigError::invalid(
            key,
            format!("expected {PG_CONNECTION_FORMS}"),
        )),
    }
}

/// Keeps a connection URL as given, adding the default database when it names none. Errors do
/// not quote the URL: it may hold a password.
fn url_with_database(url: String, key: &str) -> Result<(String, String), ConfigError> {
    let Some(rest) = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))
    else {
        return Err(ConfigError::invalid(
            key,
            "expected a URL starting with postgres:// or postgresql://",
        ));
    };
    // Parsed by hand rather than with `url::Url`, which rejects libpq's multi-host URLs.
    let authority_end = url.len() - rest.len() + rest.find(['/', '?']).unwrap_or(rest.len());
    let (head, tail) = url.split_at(authority_end);
    let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
    let database = percent_decode(path.strip_prefix('/').unwrap_or(path)).ok_or_else(|| {
        ConfigError::invalid(
            key,
            "the database name in the URL is not valid percent-encoding",
        )
    })?;
    if database.is_empty() {
        let url = format!("{head}/{DEFAULT_DATABASE}{query}");
        Ok((url, DEFAULT_DATABASE.to_owned()))
    } else {
        Ok((url, database))
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail
                .get(..2)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// A knex/node-postgres connection map.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct PgConnection {
    host: Option<String>,
    port: Option<UInt<u16>>,
    user: Option<String>,
    password: Option<Secret<String>>,
    database: Option<String>,
    ssl: Option<Ssl>,
    /// Recognised so that it fails loudly instead of being ignored in favour of `host`.
    #[serde(rename = "connectionString")]
    _connection_string: Option<NotSupportedYet>,
}

impl PgConnection {
    fn into_url(self) -> (String, String) {
        let mut url = String::from("postgres://");
        if self.user.is_some() || self.password.is_some() {
            url.push_str(&encode(self.user.as_deref().unwrap_or_default()));
            if let Some(password) = &self.password {
                url.push(':');
                url.push_str(&encode(password));
            }
            url.push('@');
        }
        let host = self.host.as_deref().unwrap_or("localhost");
        if host.contains(':') {
            url.push_str(&format!("[{host}]"));
        } else {
            // Also covers Unix socket directories, which libpq takes percent-encoded here.
            url.push_str(&encode(host));
        }
        let port = self.port.map_or(5432, |port| port.0);
        let database = self.database.unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        url.push_str(&format!(":{port}/{}", encode(&database)));
        if let Some(mode) = self.ssl.map(Ssl::sslmode) {
            url.push_str(&format!("?sslmode={mode}"));
        }
        (url, database)
    }
}

/// Percent-encodes everything but letters, digits and `*-._`, which libpq decodes back.
fn encode(text: &str) -> String {
    // `+` stands for a space in form encoding but not in libpq; a literal `+` was already
    // encoded as `%2B`.
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// node-postgres's `ssl`: a boolean or TLS options.
enum Ssl {
    Disabled,
    /// Encrypted, without checking the server certificate (`rejectUnauthorized: false`).
    Unverified,
    /// Node's default for TLS options: the certificate and host name are checked.
    Verified,
}

impl Ssl {
    fn sslmode(self) -> &'static str {
        match self {
            Self::Disabled => "disable",
            Self::Unverified => "require",
            Self::Verified => "verify-full",
        }
    }
}

impl<'de> Deserialize<'de> for Ssl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The TLS options this service can honour; certificate material fails loudly.
        #[derive(Deserialize)]
        struct Options {
            #[serde(rename = "rejectUnauthorized")]
            reject_unauthorized: Option<Bool>,
            #[serde(rename = "ca")]
            _ca: Option<NotSupportedYet>,
            #[serde(rename = "cert")]
            _cert: Option<NotSupportedYet>,
            #[serde(rename = "key")]
            _key: Option<NotSupportedYet>,
        }

        struct SslVisitor;

        impl<'de> Visitor<'de> for SslVisitor {
            type Value = Ssl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a map like {rejectUnauthorized: false}")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Ssl, E> {
                Ok(if v { Ssl::Unverified } else { Ssl::Disabled })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ssl, E> {
                let enabled = Bool::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                self.visit_bool(enabled.0)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ssl, A::Error> {
                let options = Options::deserialize(MapAccessDeserializer::new(map))?;
                Ok(match options.reject_unauthorized {
                    Some(Bool(false)) => Ssl::Unverified,
                    _ => Ssl::Verified,
                })
            }
        }

        deserializer.deserialize_any(SslVisitor)
    }
}

/// A knex setting with no libpq equivalent here yet. Deserializing it fails, so the error
/// names its key.
enum NotSupportedYet {}

impl<'de> Deserialize<'de> for NotSupportedYet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IgnoredAny)?;
        Err(de::Error::custom(
            "not supported yet; give `connection` as a postgres:// URL instead, with libpq's sslrootcert, sslcert and sslkey parameters for certificates",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn database(yaml: &str) -> Result<DatabaseConfig, String> {
        Config::from_yaml_str(yaml)
            .map(|config| config.backend.database)
            .map_err(|err| err.to_string())
    }

    fn postgres(yaml: &str) -> PostgresConfig {
        match database(yaml).unwrap() {
            DatabaseConfig::Postgres(config) => config,
            other => panic!("expected PostgreSQL, got {other:?}"),
        }
    }

    fn sqlite(yaml: &str) -> Option<SqliteLocation> {
        match database(yaml).unwrap() {
            DatabaseConfig::Sqlite { location } => location,
            other => panic!("expected SQLite, got {other:?}"),
        }
    }

    #[test]
    fn absent_section_is_default_sqlite() {
        assert_eq!(
            database("backend: {}\n"),
            Ok(DatabaseConfig::Sqlite { location: None })
        );
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(
            sqlite("backend: {database: {client: better-sqlite3}}"),
            None
        );
        assert_eq!(
            sqlite("backend: {database: {client: better-sqlite3, connection: ':memory:'}}"),
            Some(SqliteLocation::Memory)
        );
        assert_eq!(
            sqlite("backend: {database: {client: sqlite3, connection: /data/n.db}}"),
            Some(SqliteLocation::File("/data/n.db".into()))
        );
        assert_eq!(
            sqlite("backend: {database: {client: sqlite, connection: {filename: n.db}}}"),
            Some(SqliteLocation::File("n.db".into()))
        );
        assert_eq!(
            sqlite("backend: {database: {client: sqlite3, connection: {filename: ':memory:'}}}"),
            Some(SqliteLocation::Memory)
        );
        assert_eq!(
            sqlite(
                "backend: {database: {client: better-sqlite3, connection: {directory: /var/lib/bs}}}"
            ),
            Some(SqliteLocation::File(
                "/var/lib/bs/notifications.sqlite".into()
            ))
        );
        assert_eq!(
            sqlite(
                "backend: {database: {client: better-sqlite3, connection: {directory: /d, filename: x.db}}}"
            ),
            Some(SqliteLocation::File("/d/x.db".into()))
        );
        assert!(
            database("backend: {database: {client: sqlite3, connection: 5}}")
                .unwrap_err()
                .contains("backend.database.connection: expected")
        );
    }

    #[test]
    fn unsupported_client_names_the_key() {
        assert_eq!(
            database("backend: {database: {client: mysql}}").unwrap_err(),
            "invalid configuration at backend.database.client: unsupported database client \"mysql\" (expected one of better-sqlite3, sqlite3, pg)"
        );
        assert_eq!(
            database("backend: {database: {connection: ':memory:'}}").unwrap_err(),
            "invalid configuration at backend.database: missing field `client`"
        );
    }

    #[test]
    fn postgres_url_with_database() {
        let config = postgres(
            "backend: {database: {client: pg, connection: 'postgres://u:p%40ss@db:5432/notif%20db?sslmode=require'}}",
        );
        assert_eq!(
            config.url,
            "postgres://u:p%40ss@db:5432/notif%20db?sslmode=require"
        );
        assert_eq!(config.database, "notif db");
        // libpq's multi-host URLs are kept as given.
        let config = postgres(
            "backend: {database: {client: postgres, connection: 'postgresql://h1:5432,h2:5433/n'}}",
        );
        assert_eq!(
            (config.url.as_str(), config.database.as_str()),
            ("postgresql://h1:5432,h2:5433/n", "n")
        );
    }

    #[test]
    fn postgres_url_without_database_gets_the_default() {
        for (given, expected) in [
            (
                "postgres://u:p@db:5432",
                "postgres://u:p@db:5432/backstage_plugin_notifications",
            ),
            (
                "postgres://db/",
                "postgres://db/backstage_plugin_notifications",
            ),
            (
                "postgresql://db?sslmode=require",
                "postgresql://db/backstage_plugin_notifications?sslmode=require",
            ),
        ] {
            let config = postgres(&format!(
                "backend: {{database: {{client: pg, connection: '{given}'}}}}"
            ));
            assert_eq!(config.url, expected);
            assert_eq!(config.database, "backstage_plugin_notifications");
        }
    }

    #[test]
    fn postgres_url_must_be_postgres() {
        let err =
            database("backend: {database: {client: pg, connection: 'mysql://u:hunter2@h/db'}}")
                .unwrap_err();
        assert!(err.starts_with("invalid configuration at backend.database.connection: expected a URL starting with postgres://"), "{err}");
        assert!(!err.contains("hunter2"));
        let err = database("backend: {database: {client: pg, connection: 'postgres://h/%zz'}}")
            .unwrap_err();
        assert!(err.contains("percent-encoding"), "{err}");
    }

    #[test]
    fn postgres_connection_is_required() {
        assert!(
            database("backend: {database: {client: pg}}")
                .unwrap_err()
                .starts_with(
                    "invalid configuration at backend.database.connection: required for PostgreSQL"
                )
        );
    }

    #[test]
    fn postgres_object_is_turned_into_a_url() {
        let config = postgres(concat!(
            "backend:\n  database:\n    client: pg\n    connection:\n",
            "      host: db.internal\n      port: '5433'\n      user: svc@corp\n",
            "      password: 'p@ss:w/rd%?# +'\n      database: notifications\n",
            "    knexConfig: {pool: {min: 1, max: '8'}}\n",
        ));
        assert_eq!(
            config.url,
            "postgres://svc%40corp:p%40ss%3Aw%2Frd%25%3F%23%20%2B@db.internal:5433/notifications"
        );
        assert_eq!(config.database, "notifications");
        assert_eq!((config.pool_min, config.pool_max), (Some(1), Some(8)));

        let config = postgres("backend: {database: {client: pg, connection: {}}}");
        assert_eq!(
            config.url,
            "postgres://localhost:5432/backstage_plugin_notifications"
        );
        assert_eq!((config.pool_min, config.pool_max), (None, None));

        let config =
            postgres("backend: {database: {client: pg, connection: {host: '::1', user: u}}}");
        assert_eq!(
            config.url,
            "postgres://u@[::1]:5432/backstage_plugin_notifications"
        );
        let config =
            postgres("backend: {database: {client: pg, connection: {host: /var/run/postgresql}}}");
        assert_eq!(
            config.url,
            "postgres://%2Fvar%2Frun%2Fpostgresql:5432/backstage_plugin_notifications"
        );
    }

    #[test]
    fn postgres_ssl() {
        let url = |ssl: &str| {
            postgres(&format!(
                "backend: {{database: {{client: pg, connection: {{host: h, ssl: {ssl}}}}}}}"
            ))
            .url
        };
        assert_eq!(
            url("true"),
            "postgres://h:5432/backstage_plugin_notifications?sslmode=require"
        );
        assert_eq!(
            url("'true'"),
            "postgres://h:5432/backstage_plugin_notifications?sslmode=require"
        );
        assert_eq!(
            url("false"),
            "postgres://h:5432/backstage_plugin_notifications?sslmode=disable"
        );
        assert!(url("{rejectUnauthorized: false}").ends_with("?sslmode=require"));
        assert!(url("{rejectUnauthorized: true}").ends_with("?sslmode=verify-full"));
        assert!(url("{}").ends_with("?sslmode=verify-full"));

        let err =
            database("backend: {database: {client: pg, connection: {ssl: {ca: '-----BEGIN'}}}}")
                .unwrap_err();
        assert!(
            err.starts_with(
                "invalid configuration at backend.database.connection.ssl.ca: not supported yet"
            ),
            "{err}"
        );
        let err = database(
            "backend: {database: {client: pg, connection: {connectionString: 'postgres://x'}}}",
        )
        .unwrap_err();
        assert!(err.starts_with("invalid configuration at backend.database.connection.connectionString: not supported yet"), "{err}");
    }

    #[test]
    fn postgres_errors_name_the_key() {
        let err =
            database("backend: {database: {client: pg, connection: {port: 70000}}}").unwrap_err();
        assert_eq!(
            err,
            "invalid configuration at backend.database.connection.port: invalid value: integer `70000`, expected u16"
        );
        let err = database("backend: {database: {client: pg, connection: {password: 12345678}}}")
            .unwrap_err();
        assert!(
            err.starts_with(
                "invalid configuration at backend.database.connection.password: expected a string"
            ),
            "{err}"
        );
        assert!(!err.contains("12345678"));
        let err = database("backend: {database: {client: pg, connection: 'postgres://h/db', knexConfig: {pool: {min: 5, max: 2}}}}").unwrap_err();
        assert!(err.starts_with("invalid configuration at backend.database.knexConfig.pool: min (5) must not exceed max (2)"), "{err}");
        let err = database("backend: {database: {client: pg, connection: 'postgres://h/db', knexConfig: {pool: {max: 0}}}}").unwrap_err();
        assert_eq!(
            err,
            "invalid configuration at backend.database.knexConfig.pool.max: must be at least 1"
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let config = postgres(
            "backend: {database: {client: pg, connection: {user: u, password: hunter2-secret}}}",
        );
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("postgres://u:***@localhost:5432/backstage_plugin_notifications"),
            "{debug}"
        );

        assert_eq!(
            redact_url("postgresql://u:p@h1,h2/db?sslmode=require&password=x&sslpassword=y"),
            "postgresql://u:***@h1,h2/db?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("nonsense"), "***");
    }
}
