//! `backend.database`: Backstage's database settings (its `DatabaseManager`'s conventions),
//! reduced to SQLite or a libpq connection URL, a schema and what to create.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use super::coerce::{Bool, Positive, UInt};
use super::error::{ConfigError, child_key, parse_at};
use super::pg_connection::{PG_CONNECTION_FORMS, PgConnection, PgTlsMaterial};
use super::secret::loggable_url as redact_url;

/// This service's plugin id in Backstage's database conventions: the default database is
/// `prefix` + this id, the schema (`pluginDivisionMode: schema`) is `schemaPrefix` + this id,
/// a SQLite `connection.directory` holds `<id>.sqlite`, and `backend.database.plugin.<id>` is
/// this service's own block. Not `notifications`: that is upstream's plugin, whose tables have
/// the same names as this service's and must never be mixed with them.
pub const PLUGIN_ID: &str = "notifications_service";

/// Upstream's notifications backend's plugin id: where `import` looks for its database.
pub const UPSTREAM_PLUGIN_ID: &str = "notifications";
/// Backstage's default `prefix`.
const DEFAULT_PREFIX: &str = "backstage_plugin_";

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
    /// The database `url` names; `None` (schema mode without one): libpq's default, the
    /// role's name.
    pub database: Option<String>,
    /// `pluginDivisionMode: schema`: this service's schema, every connection's search path.
    pub schema: Option<String>,
    /// Create the database when it is missing (`ensureExists`, and a database named).
    pub create_database: bool,
    /// Create the schema when it is missing (`ensureExists` or `ensureSchemaExists`).
    pub create_schema: bool,
    /// `role`: every connection `SET ROLE`s to it, so what is created belongs to it.
    pub role: Option<String>,
    pub pool_max: Option<u32>,
    pub pool_min: Option<u32>,
    /// Certificates and key given inline, for files `url` does not name yet.
    pub tls: PgTlsMaterial,
}

impl PostgresConfig {
    /// Which database and schema, for logs and errors (never a password).
    pub fn describe(&self) -> String {
        let database = match &self.database {
            Some(name) => format!("PostgreSQL database {name}"),
            None => "PostgreSQL (the role's default database)".to_owned(),
        };
        match &self.schema {
            Some(schema) => format!("{database}, schema {schema}"),
            None => database,
        }
    }
}

/// The password in `url` is masked.
impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("create_database", &self.create_database)
            .field("create_schema", &self.create_schema)
            .field("role", &self.role)
            .field("pool_max", &self.pool_max)
            .field("pool_min", &self.pool_min)
            .field("tls", &self.tls)
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
    /// Empty means the default, as in Backstage.
    prefix: Option<String>,
    schema_prefix: Option<String>,
    #[serde(default)]
    plugin_division_mode: DivisionMode,
    ensure_exists: Option<Bool>,
    ensure_schema_exists: Option<Bool>,
    role: Option<String>,
    #[serde(default)]
    plugin: Plugins,
}

/// `backend.database.plugin`, by plugin id. Only the block of the plugin being read is kept
/// (see `READ_KEYS`): the others need not resolve here.
#[derive(Default, Deserialize)]
#[serde(transparent)]
struct Plugins(BTreeMap<String, PluginDatabase>);

/// `backend.database.plugin.<id>`: what Backstage lets a plugin override.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct PluginDatabase {
    client: Option<Client>,
    connection: Option<Value>,
    knex_config: Option<KnexConfig>,
    ensure_exists: Option<Bool>,
    role: Option<String>,
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

#[derive(Clone, Copy, PartialEq, Eq)]
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

/// `pluginDivisionMode`: a database per plugin (Backstage's default) or a schema per plugin in
/// one database.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum DivisionMode {
    #[default]
    Database,
    Schema,
}

impl<'de> Deserialize<'de> for DivisionMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "database" => Ok(Self::Database),
            "schema" => Ok(Self::Schema),
            other => Err(de::Error::custom(format!(
                "unknown division mode {other:?} (expected database or schema)"
            ))),
        }
    }
}

impl RawDatabase {
    /// `key` is where this section sits (`backend.database`); `plugin_id` is the plugin whose
    /// database it gives: [`PLUGIN_ID`], or upstream's for `import`.
    pub(super) fn into_config(
        mut self,
        key: &str,
        plugin_id: &str,
    ) -> Result<DatabaseConfig, ConfigError> {
        let plugin_key = child_key(key, &format!("plugin.{plugin_id}"));
        let plugin = self.plugin.0.remove(plugin_id);
        let plugin_client = plugin.as_ref().and_then(|plugin| plugin.client);
        let client = plugin_client.unwrap_or(self.client);
        // As in Backstage, a plugin with a client of its own does not inherit the connection.
        let base_connection = self.connection.filter(|_| client == self.client);
        let (plugin_connection, plugin_knex, plugin_ensure, plugin_role) = match plugin {
            Some(plugin) => (
                plugin.connection,
                plugin.knex_config,
                plugin.ensure_exists,
                plugin.role,
            ),
            None => (None, None, None, None),
        };
        let connection_key = child_key(key, "connection");
        let plugin_connection_key = child_key(&plugin_key, "connection");
        match client {
            Client::Sqlite => {
                if self.plugin_division_mode == DivisionMode::Schema {
                    return Err(ConfigError::invalid(
                        &child_key(key, "pluginDivisionMode"),
                        "schema needs PostgreSQL (Backstage's SQLite driver refuses it too)",
                    ));
                }
                let base = base_connection
                    .map(|c| SqliteConnection::parse(c, &connection_key))
                    .transpose()?;
                let plugin = plugin_connection
                    .map(|c| SqliteConnection::parse(c, &plugin_connection_key))
                    .transpose()?;
                Ok(DatabaseConfig::Sqlite {
                    location: SqliteConnection::merge(base, plugin).location(plugin_id),
                })
            }
            Client::Postgres => {
                let base = base_connection
                    .map(|c| PgConnection::parse(c, &connection_key))
                    .transpose()?;
                let plugin = plugin_connection
                    .map(|c| PgConnection::parse(c, &plugin_connection_key))
                    .transpose()?;
                let connection = PgConnection::merge(base, plugin, &plugin_connection_key)?
                    .ok_or_else(|| {
                        let message = format!("required for PostgreSQL: {PG_CONNECTION_FORMS}");
                        ConfigError::invalid(&connection_key, message)
                    })?;
                let ensure_exists = plugin_ensure.or(self.ensure_exists).is_none_or(|b| b.0);
                let (database, schema) = match self.plugin_division_mode {
                    // Backstage drops the base connection's database in this mode (one
                    // database per plugin); this service is one plugin, so a database named
                    // there is the one an operator means.
                    DivisionMode::Database => {
                        let prefix = self.prefix.filter(|prefix| !prefix.is_empty());
                        let default = || {
                            format!("{}{plugin_id}", prefix.as_deref().unwrap_or(DEFAULT_PREFIX))
                        };
                        let database = connection.database().map_or_else(default, str::to_owned);
                        (Some(database), None)
                    }
                    DivisionMode::Schema => {
                        let schema_prefix = self.schema_prefix.unwrap_or_default();
                        let schema_prefix_key = child_key(key, "schemaPrefix");
                        if !schema_prefix.is_empty() && !is_identifier(&schema_prefix) {
                            return Err(ConfigError::invalid(
                                &schema_prefix_key,
                                "must start with a letter or underscore and hold only letters, digits and underscores",
                            ));
                        }
                        let schema = format!("{schema_prefix}{plugin_id}");
                        // PostgreSQL would cut a longer name short.
                        if schema.len() > 63 {
                            return Err(ConfigError::invalid(
                                &schema_prefix_key,
                                format!(
                                    "makes the schema name {schema:?} longer than PostgreSQL's 63 bytes"
                                ),
                            ));
                        }
                        (connection.database().map(str::to_owned), Some(schema))
                    }
                };
                let base_pool = self.knex_config.pool;
                let plugin_pool = plugin_knex.map(|knex| knex.pool).unwrap_or_default();
                let pool_min = plugin_pool.min.or(base_pool.min).map(|n| n.0);
                let pool_max = plugin_pool.max.or(base_pool.max).map(|n| n.0);
                if let (Some(min), Some(max)) = (pool_min, pool_max)
                    && min > max
                {
                    return Err(ConfigError::invalid(
                        &child_key(key, "knexConfig.pool"),
                        format!("min ({min}) must not exceed max ({max})"),
                    ));
                }
                let ensure_schema_exists = self.ensure_schema_exists.is_some_and(|b| b.0);
                Ok(DatabaseConfig::Postgres(PostgresConfig {
                    tls: connection.tls_material(),
                    url: connection.into_url(database.as_deref()),
                    create_database: ensure_exists && database.is_some(),
                    create_schema: schema.is_some() && (ensure_exists || ensure_schema_exists),
                    database,
                    schema,
                    role: plugin_role.or(self.role).filter(|role| !role.is_empty()),
                    pool_max,
                    pool_min,
                }))
            }
        }
    }
}

/// Backstage's rule for `schemaPrefix`, which keeps schema names plain identifiers.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A SQLite `connection`: `:memory:`, a file name, or `{filename, directory}` which Backstage
/// joins (a directory alone holds `<plugin id>.sqlite`).
#[derive(Default, Deserialize)]
#[serde(expecting = "a map")]
struct SqliteConnection {
    filename: Option<String>,
    directory: Option<PathBuf>,
}

impl SqliteConnection {
    fn parse(connection: Value, key: &str) -> Result<Self, ConfigError> {
        match connection {
            Value::String(name) if name.is_empty() => {
                Err(ConfigError::invalid(key, "must not be empty"))
            }
            Value::String(name) => Ok(Self {
                filename: Some(name),
                directory: None,
            }),
            Value::Object(_) => parse_at(connection, key),
            _ => Err(ConfigError::invalid(
                key,
                "expected \":memory:\", a file name, or a map with filename or directory",
            )),
        }
    }

    /// A plugin's keys over the base's, as Backstage merges them.
    fn merge(base: Option<Self>, plugin: Option<Self>) -> Self {
        let (base, plugin) = (base.unwrap_or_default(), plugin.unwrap_or_default());
        Self {
            filename: plugin.filename.or(base.filename),
            directory: plugin.directory.or(base.directory),
        }
    }

    fn location(self, plugin_id: &str) -> Option<SqliteLocation> {
        match (self.directory, self.filename) {
            (_, Some(name)) if name == ":memory:" => Some(SqliteLocation::Memory),
            (Some(directory), Some(name)) => Some(SqliteLocation::File(directory.join(name))),
            (Some(directory), None) => Some(SqliteLocation::File(
                directory.join(format!("{plugin_id}.sqlite")),
            )),
            (None, Some(name)) => Some(SqliteLocation::File(name.into())),
            (None, None) => None,
        }
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
                "/var/lib/bs/notifications_service.sqlite".into()
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
        assert_eq!(config.database.as_deref(), Some("notif db"));
        // libpq's multi-host URLs are kept as given.
        let config = postgres(
            "backend: {database: {client: postgres, connection: 'postgresql://h1:5432,h2:5433/n'}}",
        );
        assert_eq!(
            (config.url.as_str(), config.database.as_deref()),
            ("postgresql://h1:5432,h2:5433/n", Some("n"))
        );
    }

    #[test]
    fn postgres_url_without_database_gets_the_default() {
        for (given, expected) in [
            (
                "postgres://u:p@db:5432",
                "postgres://u:p@db:5432/backstage_plugin_notifications_service",
            ),
            (
                "postgres://db/",
                "postgres://db/backstage_plugin_notifications_service",
            ),
            (
                "postgresql://db?sslmode=require",
                "postgresql://db/backstage_plugin_notifications_service?sslmode=require",
            ),
        ] {
            let config = postgres(&format!(
                "backend: {{database: {{client: pg, connection: '{given}'}}}}"
            ));
            assert_eq!(config.url, expected);
            assert_eq!(
                config.database.as_deref(),
                Some("backstage_plugin_notifications_service")
            );
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
        assert_eq!(config.database.as_deref(), Some("notifications"));
        assert_eq!((config.pool_min, config.pool_max), (Some(1), Some(8)));

        let config = postgres("backend: {database: {client: pg, connection: {}}}");
        assert_eq!(
            config.url,
            "postgres://localhost:5432/backstage_plugin_notifications_service"
        );
        assert_eq!((config.pool_min, config.pool_max), (None, None));

        let config =
            postgres("backend: {database: {client: pg, connection: {host: '::1', user: u}}}");
        assert_eq!(
            config.url,
            "postgres://u@[::1]:5432/backstage_plugin_notifications_service"
        );
        let config =
            postgres("backend: {database: {client: pg, connection: {host: /var/run/postgresql}}}");
        assert_eq!(
            config.url,
            "postgres://%2Fvar%2Frun%2Fpostgresql:5432/backstage_plugin_notifications_service"
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
            "postgres://h:5432/backstage_plugin_notifications_service?sslmode=require"
        );
        assert_eq!(
            url("'true'"),
            "postgres://h:5432/backstage_plugin_notifications_service?sslmode=require"
        );
        assert_eq!(
            url("false"),
            "postgres://h:5432/backstage_plugin_notifications_service?sslmode=disable"
        );
        assert!(url("{rejectUnauthorized: false}").ends_with("?sslmode=require"));
        assert!(url("{rejectUnauthorized: true}").ends_with("?sslmode=verify-full"));
        assert!(url("{}").ends_with("?sslmode=verify-full"));

        // Certificates inline, as node-postgres takes them; written to files at start-up
        // (server::postgres_tls).
        let tls = |ssl: &str| {
            postgres(&format!(
                "backend: {{database: {{client: pg, connection: {{host: h, ssl: {ssl}}}}}}}"
            ))
        };
        let with_ca = tls("{ca: '-----BEGIN CERTIFICATE-----ca'}");
        assert_eq!(
            with_ca.tls.ca.as_deref(),
            Some("-----BEGIN CERTIFICATE-----ca")
        );
        assert!(with_ca.url.ends_with("?sslmode=verify-full"));
        let both = tls("{ca: ['-----BEGIN CERTIFICATE-----a', '-----BEGIN CERTIFICATE-----b']}");
        assert_eq!(
            both.tls.ca.as_deref(),
            Some("-----BEGIN CERTIFICATE-----a\n-----BEGIN CERTIFICATE-----b")
        );
        let client =
            tls("{cert: '-----BEGIN CERTIFICATE-----c', key: '-----BEGIN PRIVATE KEY-----k'}");
        assert_eq!(
            client.tls.cert.as_deref(),
            Some("-----BEGIN CERTIFICATE-----c")
        );
        assert_eq!(
            client.tls.key.as_ref().map(|k| k.expose().as_str()),
            Some("-----BEGIN PRIVATE KEY-----k")
        );
        assert!(
            !format!("{client:?}").contains("PRIVATE KEY"),
            "the key is not logged"
        );
        // As Node: not checking the server's certificate, `ca` is not read.
        let unchecked = tls("{rejectUnauthorized: false, ca: '-----BEGIN CERTIFICATE-----ca'}");
        assert_eq!(unchecked.tls.ca, None);
        assert!(unchecked.url.ends_with("?sslmode=require"));
        for (ssl, message) in [
            ("{ca: 'a file name'}", "ssl.ca: expected PEM text"),
            (
                "{cert: '-----BEGIN CERTIFICATE-----c'}",
                "ssl: a client certificate needs both `cert` and `key`",
            ),
        ] {
            let err = database(&format!(
                "backend: {{database: {{client: pg, connection: {{ssl: {ssl}}}}}}}"
            ))
            .unwrap_err();
            assert!(
                err.contains(&format!("backend.database.connection.{message}")),
                "{ssl}: {err}"
            );
        }
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
            debug
                .contains("postgres://u:***@localhost:5432/backstage_plugin_notifications_service"),
            "{debug}"
        );

        assert_eq!(
            redact_url("postgresql://u:p@h1,h2/db?sslmode=require&password=x&sslpassword=y"),
            "postgresql://u:***@h1,h2/db?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("nonsense"), "***");
    }

    #[test]
    fn prefix_names_the_default_database() {
        let config =
            postgres("backend: {database: {client: pg, prefix: acme_, connection: {host: h}}}");
        assert_eq!(config.url, "postgres://h:5432/acme_notifications_service");
        assert_eq!(
            config.database.as_deref(),
            Some("acme_notifications_service")
        );
        assert_eq!(config.schema, None);
        assert!(config.create_database && !config.create_schema);
        // Empty means the default, as in Backstage.
        let config =
            postgres("backend: {database: {client: pg, prefix: '', connection: 'postgres://h'}}");
        assert_eq!(
            config.url,
            "postgres://h/backstage_plugin_notifications_service"
        );
        // Never upstream's own database.
        let config = postgres("backend: {database: {client: pg, connection: 'postgres://h'}}");
        assert_ne!(
            config.database.as_deref(),
            Some("backstage_plugin_notifications")
        );
    }

    #[test]
    fn schema_mode_uses_the_named_database_and_a_schema_of_ours() {
        let config = postgres(
            "backend: {database: {client: pg, pluginDivisionMode: schema, connection: 'postgres://u@h/backstage'}}",
        );
        assert_eq!(config.url, "postgres://u@h/backstage");
        assert_eq!(config.database.as_deref(), Some("backstage"));
        assert_eq!(config.schema.as_deref(), Some("notifications_service"));
        assert!(config.create_database && config.create_schema);
        assert_eq!(
            config.describe(),
            "PostgreSQL database backstage, schema notifications_service"
        );
        // Without a database: libpq's default one, which is not created.
        let config = postgres(
            "backend: {database: {client: pg, pluginDivisionMode: schema, schemaPrefix: bs_, connection: {host: h, user: u}}}",
        );
        assert_eq!(config.url, "postgres://u@h:5432");
        assert_eq!(config.database, None);
        assert_eq!(config.schema.as_deref(), Some("bs_notifications_service"));
        assert!(!config.create_database && config.create_schema);
        assert_eq!(
            config.describe(),
            "PostgreSQL (the role's default database), schema bs_notifications_service"
        );
        let err = database(
            "backend: {database: {client: pg, pluginDivisionMode: schema, schemaPrefix: 'a-b', connection: {}}}",
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "invalid configuration at backend.database.schemaPrefix: must start with a letter"
            ),
            "{err}"
        );
        let err = database(
            "backend: {database: {client: pg, pluginDivisionMode: tables, connection: {}}}",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "invalid configuration at backend.database.pluginDivisionMode: unknown division mode \"tables\" (expected database or schema)"
        );
        let err =
            database("backend: {database: {client: better-sqlite3, pluginDivisionMode: schema}}")
                .unwrap_err();
        assert!(
            err.contains("pluginDivisionMode: schema needs PostgreSQL"),
            "{err}"
        );
    }

    #[test]
    fn ensure_exists() {
        let config = postgres(
            "backend: {database: {client: pg, ensureExists: false, connection: {host: h}}}",
        );
        assert!(!config.create_database);
        let config = postgres(
            "backend: {database: {client: pg, ensureExists: 'false', pluginDivisionMode: schema, connection: 'postgres://h/bs'}}",
        );
        assert!(!config.create_database && !config.create_schema);
        // ensureSchemaExists creates the schema only.
        let config = postgres(
            "backend: {database: {client: pg, ensureExists: false, ensureSchemaExists: true, pluginDivisionMode: schema, connection: 'postgres://h/bs'}}",
        );
        assert!(!config.create_database && config.create_schema);
        // A plugin's own setting wins.
        let config = postgres(
            "backend: {database: {client: pg, ensureExists: false, plugin: {notifications_service: {ensureExists: true}}, connection: {host: h}}}",
        );
        assert!(config.create_database);
    }

    #[test]
    fn plugin_block_overrides_the_base() {
        // Maps merge key by key; the plugin's database is used.
        let config = postgres(concat!(
            "backend:\n  database:\n    client: pg\n",
            "    connection: {host: h, user: base, password: pw, ssl: true}\n",
            "    knexConfig: {pool: {min: 1, max: 4}}\n",
            "    plugin:\n      notifications_service:\n",
            "        connection: {user: notif, database: mine}\n",
            "        knexConfig: {pool: {max: 9}}\n",
            "      notifications: {connection: {database: backstage_plugin_notifications}}\n",
        ));
        assert_eq!(
            config.url,
            "postgres://notif:pw@h:5432/mine?sslmode=require"
        );
        assert_eq!((config.pool_min, config.pool_max), (Some(1), Some(9)));
        // Over a base URL, the plugin may name the database.
        let config = postgres(
            "backend: {database: {client: pg, connection: 'postgres://u@h/x?sslmode=require', plugin: {notifications_service: {connection: {database: mine}}}}}",
        );
        assert_eq!(config.url, "postgres://u@h/mine?sslmode=require");
        let err = database(
            "backend: {database: {client: pg, connection: 'postgres://u@h/x', plugin: {notifications_service: {connection: {host: other}}}}}",
        )
        .unwrap_err();
        assert!(
            err.starts_with("invalid configuration at backend.database.plugin.notifications_service.connection: over a base connection given as a URL only `database` can be set"),
            "{err}"
        );
        // A plugin's URL replaces the base connection.
        let config = postgres(
            "backend: {database: {client: pg, connection: {host: h, ssl: true}, plugin: {notifications_service: {connection: 'postgres://o/db2'}}}}",
        );
        assert_eq!(config.url, "postgres://o/db2");
        // A client of its own does not inherit the base connection.
        assert_eq!(
            database(
                "backend: {database: {client: pg, connection: {host: h}, plugin: {notifications_service: {client: better-sqlite3, connection: {directory: /d}}}}}",
            ),
            Ok(DatabaseConfig::Sqlite {
                location: Some(SqliteLocation::File(
                    "/d/notifications_service.sqlite".into()
                ))
            })
        );
        assert_eq!(
            database(
                "backend: {database: {client: better-sqlite3, connection: {directory: /d}, plugin: {notifications_service: {connection: {filename: n.db}}}}}",
            ),
            Ok(DatabaseConfig::Sqlite {
                location: Some(SqliteLocation::File("/d/n.db".into()))
            })
        );
        // Errors in the plugin's block name its key.
        let err = database(
            "backend: {database: {client: pg, connection: {}, plugin: {notifications_service: {connection: {port: x}}}}}",
        )
        .unwrap_err();
        assert!(
            err.starts_with("invalid configuration at backend.database.plugin.notifications_service.connection.port"),
            "{err}"
        );
    }

    #[test]
    fn role() {
        let config = postgres("backend: {database: {client: pg, role: owner, connection: {}}}");
        assert_eq!(config.role.as_deref(), Some("owner"));
        let config = postgres(
            "backend: {database: {client: pg, role: owner, connection: {}, plugin: {notifications_service: {role: notif}}}}",
        );
        assert_eq!(config.role.as_deref(), Some("notif"));
    }
}
