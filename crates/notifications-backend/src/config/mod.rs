//! Configuration in Backstage's app-config style.
//!
//! YAML files are merged (later files win), `${VAR}` substitutions and `$env`/`$file`
//! directives are resolved, `APP_CONFIG_*` environment variables override the result, and the
//! keys this service reads are parsed into [`Config`]. Other keys are ignored, so a whole
//! Backstage `app-config.yaml` can be reused; those in this service's own sections are reported
//! by [`Config::load_checked`] (see `unknown.rs`), for a warning.
//!
//! Each section is a struct that derives `Deserialize`: a field is declared once, with its
//! default (`#[serde(default = ...)]`, of which `Default` is made) and the way it is read
//! (`deserialize_with`, see `coerce.rs`) beside it. Only sections whose shape depends on a value
//! (`backend.database`'s client, `externalAccess`'s type) or on another section (`discovery`)
//! are read in two steps, so that errors still name the key.

mod auth;
mod catalog;
mod coerce;
mod cors;
mod database;
mod delivery;
mod discovery;
mod duration;
mod email;
mod error;
mod https;
mod janus;
mod key_lines;
mod notifications;
mod pg_connection;
mod preferences;
mod rate_limit;
mod secret;
mod signals;
mod slack;
pub(crate) mod source;
mod unknown;
mod web;
mod webhook;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Unexpected, Visitor, value::MapAccessDeserializer};
use serde_json::{Map, Value};
use url::Url;

pub use auth::{AuthConfig, ExternalAccess, JwksAccess};
pub use catalog::{BackstageCatalogConfig, CatalogConfig, CatalogLocation, RemoteCatalogConfig};
pub use cors::CorsConfig;
pub use database::{DatabaseConfig, PLUGIN_ID, PostgresConfig, SqliteLocation};
pub use delivery::DeliveryConfig;
pub use discovery::Discovery;
pub use duration::{ConfigDuration, parse_duration};
pub use email::{BroadcastReceiver, EmailConfig, EmailTransport, Newline, SmtpConfig};
pub use error::ConfigError;
pub use https::HttpsCertificate;
pub use janus::{ApiSide, DenyRule, JanusConfig, JanusMount};
pub use notifications::{NotificationsConfig, ProcessorOptions};
pub use pg_connection::{PgTlsMaterial, encode as libpq_encode};
pub use preferences::PreferencesConfig;
pub use rate_limit::{RateLimitConfig, RateLimitRule};
pub use secret::{Secret, loggable_url};
pub use signals::SignalsConfig;
pub use slack::{BroadcastRoute, SLACK_CHANNEL, SlackConfig, slack_configs};
pub use unknown::UnknownKey;
pub use web::{TrustedProxy, WebConfig};
pub use webhook::{WebhookConfig, webhooks};

use auth::RawAuth;
use coerce::{HttpUrl, UInt, default_from_fields, via};
use database::{RawDatabase, UPSTREAM_PLUGIN_ID};
use discovery::RawDiscovery;
use error::parse_at;
use janus::CallerSecret;
use key_lines::KeyLines;
use source::{Env, Keep};

const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 7007;

/// The whole configuration; [`Config::default`] is what an empty configuration gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub app: AppConfig,
    pub backend: BackendConfig,
    pub notifications: NotificationsConfig,
    /// `discovery`: where other plugins (`auth`, callers of plugin tokens...) are reached.
    pub discovery: Discovery,
    /// `catalog`: Backstage's catalog locations, read for recipients beside
    /// `notifications.catalog`.
    pub catalog: BackstageCatalogConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct AppConfig {
    /// `app.baseUrl`: where the Backstage frontend lives.
    #[serde(default = "app_url", deserialize_with = "via::<HttpUrl, _>")]
    pub base_url: Url,
}

default_from_fields!(AppConfig);

#[expect(clippy::expect_used, reason = "a constant, checked by the tests")]
fn app_url() -> Url {
    Url::parse("http://localhost:3000").expect("the default URL is valid")
}

#[expect(clippy::expect_used, reason = "a constant, checked by the tests")]
fn backend_url() -> Url {
    Url::parse("http://localhost:7007").expect("the default URL is valid")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// `backend.baseUrl`: where this service is reached.
    pub base_url: Url,
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// `backend.cors`; none sends no CORS headers.
    pub cors: Option<CorsConfig>,
    /// `backend.https`; none serves plain HTTP.
    pub https: Option<HttpsCertificate>,
    /// `backend.rateLimit`; off by default.
    pub rate_limit: RateLimitConfig,
}

/// `backend` as written: the database and external access are read once their kind is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct RawBackend {
    #[serde(default = "backend_url", deserialize_with = "via::<HttpUrl, _>")]
    base_url: Url,
    #[serde(default)]
    listen: ListenConfig,
    database: Option<RawDatabase>,
    #[serde(default)]
    auth: RawAuth,
    cors: Option<CorsConfig>,
    /// `true` or a map: read by `https::read`.
    https: Option<Value>,
    /// `true` or a map: read by `rate_limit::read`.
    rate_limit: Option<Value>,
}

default_from_fields!(RawBackend);

/// `backend.listen`. Port 0 asks the OS for a free port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    pub host: String,
    pub port: u16,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            base_url: backend_url(),
            listen: ListenConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            cors: None,
            https: None,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let backend = BackendConfig::default();
        Self {
            app: AppConfig::default(),
            discovery: Discovery::new(&backend.base_url),
            backend,
            notifications: NotificationsConfig::default(),
            catalog: BackstageCatalogConfig::default(),
        }
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
        }
    }
}

impl Config {
    /// `notifications.processors.email`, when the e-mail processor is configured; the error
    /// names the failing key.
    pub fn email_processor(&self) -> Result<Option<EmailConfig>, ConfigError> {
        match self.notifications.processors.get("email") {
            None | Some(Value::Null) => Ok(None),
            Some(value) => parse_at(value.clone(), "notifications.processors.email").map(Some),
        }
    }

    /// Loads and merges YAML files (later files win), applies substitutions from the process
    /// environment and `APP_CONFIG_*` overrides, and validates.
    pub fn load(files: &[PathBuf]) -> Result<Config, ConfigError> {
        Self::load_checked(files).map(|(config, _)| config)
    }

    /// [`Config::load`], and the keys in the files and `APP_CONFIG_*` variables that this
    /// service ignores in its own sections (see `unknown.rs`). Errors name the file and line
    /// that set the bad value, when a file does.
    pub fn load_checked(files: &[PathBuf]) -> Result<(Config, Vec<UnknownKey>), ConfigError> {
        // Skips variables that are not UTF-8, on which `vars()` would panic.
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self::load_checked_with_env(files, &|name| std::env::var(name).ok(), &vars)
    }

    /// [`Config::load`] with an explicit environment: `env` looks up `${VAR}` and `$env`
    /// references; `app_config_env` holds environment variables as `(name, value)` pairs, of
    /// which those named `APP_CONFIG_*` override the files.
    pub fn load_with_env(
        files: &[PathBuf],
        env: &dyn Fn(&str) -> Option<String>,
        app_config_env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        Self::load_checked_with_env(files, env, app_config_env).map(|(config, _)| config)
    }

    fn load_checked_with_env(
        files: &[PathBuf],
        env: &dyn Fn(&str) -> Option<String>,
        app_config_env: &[(String, String)],
    ) -> Result<(Config, Vec<UnknownKey>), ConfigError> {
        let mut merged = Value::Object(Map::new());
        let mut unknown = Vec::new();
        let mut written = Vec::new();
        for file in files {
            let document = source::load_file(file, &READ_KEYS, env)?;
            source::merge(&mut merged, document.value);
            unknown.extend(document.unknown);
            written.push((file.display().to_string(), document.lines));
        }
        let overrides = source::overrides(app_config_env)?;
        let origin = "APP_CONFIG_* variables";
        unknown.extend(unknown::find_in_json(&overrides, origin));
        // JSON is YAML: the overrides' keys, to tell when they are what set a bad value.
        written.push((origin.to_owned(), KeyLines::of(&overrides.to_string())));
        source::merge(&mut merged, overrides);
        // The processors' options are read when they are set up, after loading: checked here
        // too, so that their errors are found before start-up and named with their line.
        let config = Self::from_value(merged).and_then(|config| {
            config.email_processor()?;
            slack_configs(&config.notifications.processors)?;
            webhooks(&config.notifications.processors)?;
            Ok(config)
        });
        let config = config.map_err(|err| match err {
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                written: key_lines::written(&written, &key).map(|(file, line)| match file {
                    file if file == origin => file.to_owned(),
                    file => format!("{file}:{line}"),
                }),
                key,
                message,
            },
            err => err,
        })?;
        Ok((config, unknown))
    }

    /// One YAML document, with `${VAR}` from the process environment and `$file` paths relative
    /// to the working directory; no `APP_CONFIG_*` overrides. For tests.
    pub fn from_yaml_str(yaml: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_str_with_env(yaml, &|name| std::env::var(name).ok())
    }

    fn from_yaml_str_with_env(yaml: &str, env: Env<'_>) -> Result<Config, ConfigError> {
        let value = source::parse_document(yaml, "<yaml string>", Path::new(""), &READ_KEYS, env)?;
        Self::from_value(value)
    }

    fn from_value(value: Value) -> Result<Config, ConfigError> {
        // A sibling of `legacyJanus` that belongs to it.
        let caller_secret = value
            .pointer("/notifications/externalCallerSecret")
            .cloned();
        let raw: RawConfig = parse_at(value, "")?;
        let mut notifications = raw.notifications;
        if let Some(secret) = caller_secret {
            let key = "notifications.externalCallerSecret";
            notifications.janus.external_caller_secret = parse_at::<CallerSecret>(secret, key)?.0;
        }
        let backend = raw.backend;
        Ok(Config {
            discovery: raw
                .discovery
                .into_discovery("discovery", &backend.base_url)?,
            app: raw.app,
            backend: BackendConfig {
                database: match backend.database {
                    Some(database) => database.into_config("backend.database", PLUGIN_ID)?,
                    None => DatabaseConfig::default(),
                },
                auth: backend.auth.into_config("backend.auth")?,
                base_url: backend.base_url,
                listen: backend.listen,
                cors: backend.cors,
                https: https::read(backend.https, "backend.https")?,
                rate_limit: rate_limit::read(backend.rate_limit, "backend.rateLimit")?,
            },
            notifications,
            catalog: raw.catalog,
        })
    }
}

/// The `backend.database` block of other app-config files (a Backstage's, merged as Backstage
/// merges them, with `${VAR}` from the process environment), read as Backstage reads it for
/// upstream's notifications plugin: the database `import` copies from. Nothing else in the files
/// is read.
pub fn load_database_block(files: &[PathBuf]) -> Result<DatabaseConfig, ConfigError> {
    const DATABASE_ONLY: Keep = Keep::Only(&[(
        "backend",
        Keep::Only(&[(
            "database",
            Keep::Only(&[
                ("client", Keep::All),
                ("connection", Keep::All),
                ("knexConfig", Keep::All),
                ("prefix", Keep::All),
                ("schemaPrefix", Keep::All),
                ("pluginDivisionMode", Keep::All),
                ("ensureExists", Keep::All),
                ("ensureSchemaExists", Keep::All),
                ("role", Keep::All),
                ("plugin", Keep::Only(&[(UPSTREAM_PLUGIN_ID, Keep::All)])),
            ]),
        )]),
    )]);
    let env = |name: &str| std::env::var(name).ok();
    let mut merged = Value::Object(Map::new());
    for file in files {
        source::merge(
            &mut merged,
            source::load_file(file, &DATABASE_ONLY, &env)?.value,
        );
    }
    match merged.pointer("/backend/database") {
        Some(block) => upstream_database_block(block.clone(), "backend.database"),
        None => Err(ConfigError::invalid(
            "backend.database",
            "missing: the files name no database",
        )),
    }
}

/// A `database` block on its own, read as Backstage reads `backend.database` for upstream's
/// notifications plugin (a database named by neither block nor URL is
/// `backstage_plugin_notifications`); `key` names it in errors.
pub fn upstream_database_block(block: Value, key: &str) -> Result<DatabaseConfig, ConfigError> {
    parse_at::<RawDatabase>(block, key)?.into_config(key, UPSTREAM_PLUGIN_ID)
}

/// The keys this service reads; keep in step with the sections' structs. Everything else is
/// dropped from each file before substitution, so that the `${VAR}`s and `$file`s of other
/// plugins in a shared Backstage app-config need not resolve here. A key missing from this list
/// never reaches its parser, which that key's tests notice.
const READ_KEYS: Keep = Keep::Only(&[
    ("app", Keep::Only(&[("baseUrl", Keep::All)])),
    (
        "backend",
        Keep::Only(&[
            ("baseUrl", Keep::All),
            ("listen", Keep::All),
            (
                "database",
                Keep::Only(&[
                    ("client", Keep::All),
                    ("connection", Keep::All),
                    ("knexConfig", Keep::All),
                    ("prefix", Keep::All),
                    ("schemaPrefix", Keep::All),
                    ("pluginDivisionMode", Keep::All),
                    ("ensureExists", Keep::All),
                    ("ensureSchemaExists", Keep::All),
                    ("role", Keep::All),
                    // Only this service's block: other plugins' need not resolve here.
                    ("plugin", Keep::Only(&[(PLUGIN_ID, Keep::All)])),
                ]),
            ),
            (
                "auth",
                Keep::Only(&[("keys", Keep::All), ("externalAccess", Keep::All)]),
            ),
            ("cors", Keep::All),
            ("https", Keep::All),
            ("rateLimit", Keep::All),
        ]),
    ),
    ("notifications", Keep::All),
    ("discovery", Keep::Only(&[("endpoints", Keep::All)])),
    ("catalog", Keep::Only(&[("locations", Keep::All)])),
]);

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map")]
struct RawConfig {
    app: AppConfig,
    backend: RawBackend,
    notifications: NotificationsConfig,
    discovery: RawDiscovery,
    catalog: BackstageCatalogConfig,
}

/// `backend.listen`: `{host, port}` or Backstage's string forms `"7007"`, `":7007"` and
/// `"0.0.0.0:7007"`. An empty host means the default one.
impl<'de> Deserialize<'de> for ListenConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Parts {
            host: Option<String>,
            port: Option<UInt<u16>>,
        }

        fn listen(host: Option<String>, port: Option<u16>) -> ListenConfig {
            ListenConfig {
                host: host
                    .filter(|host| !host.is_empty())
                    .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
                port: port.unwrap_or(DEFAULT_PORT),
            }
        }

        struct ListenVisitor;

        impl<'de> Visitor<'de> for ListenVisitor {
            type Value = ListenConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with host and port, or a string \"<port>\" or \"<host>:<port>\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ListenConfig, E> {
                let (host, port) = v.split_once(':').unwrap_or(("", v));
                // A second `:` (an IPv6 address) leaves a port that does not parse, as in
                // Backstage.
                match port.trim().parse() {
                    Ok(port) => Ok(listen(Some(host.trim().to_owned()), Some(port))),
                    Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }

            // `APP_CONFIG_backend_listen=7007` yields a number.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ListenConfig, E> {
                let port = u16::try_from(v)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))?;
                Ok(listen(None, Some(port)))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ListenConfig, A::Error> {
                let parts = Parts::deserialize(MapAccessDeserializer::new(map))?;
                Ok(listen(parts.host, parts.port.map(|p| p.0)))
            }
        }

        deserializer.deserialize_any(ListenVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("8080".into()),
            "PG_HOST" => Some("db.internal".into()),
            _ => None,
        }
    }

    fn parse(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str_with_env(yaml, &env)
    }

    fn error(yaml: &str) -> String {
        parse(yaml).unwrap_err().to_string()
    }

    fn listen(yaml_value: &str) -> Result<ListenConfig, String> {
        parse(&format!("backend: {{listen: {yaml_value}}}"))
            .map(|config| config.backend.listen)
            .map_err(|err| err.to_string())
    }

    fn at(host: &str, port: u16) -> Result<ListenConfig, String> {
        Ok(ListenConfig {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn passwords_in_urls_are_masked_for_logs() {
        let url = |s: &str| loggable_url(&Url::parse(s).unwrap());
        assert_eq!(
            url("https://u:secret@h.example/api"),
            "https://u:***@h.example/api"
        );
        assert_eq!(url("https://h.example/api"), "https://h.example/api");
    }

    #[test]
    fn an_empty_configuration_gives_the_defaults() {
        let config = Config::from_yaml_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.app.base_url.as_str(), "http://localhost:3000/");
        assert_eq!(config.backend.base_url.as_str(), "http://localhost:7007/");
        assert_eq!(
            config.backend.listen,
            ListenConfig {
                host: "127.0.0.1".into(),
                port: 7007
            }
        );
        assert_eq!(
            config.backend.database,
            DatabaseConfig::Sqlite { location: None }
        );
        assert_eq!(config.backend.auth, AuthConfig::default());
        assert_eq!(
            config.notifications.retention,
            Some(ConfigDuration::one_year())
        );
        assert_eq!(
            Config::load_with_env(&[], &env, &[]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn listen_forms() {
        assert_eq!(listen("{host: 0.0.0.0, port: 7008}"), at("0.0.0.0", 7008));
        assert_eq!(listen("{port: '7007'}"), at("127.0.0.1", 7007));
        assert_eq!(listen("{port: '${PORT}'}"), at("127.0.0.1", 8080));
        assert_eq!(listen("{host: ''}"), at("127.0.0.1", 7007));
        assert_eq!(listen("{port: 0}"), at("127.0.0.1", 0));
        assert_eq!(listen("':7007'"), at("127.0.0.1", 7007));
        assert_eq!(listen("'7007'"), at("127.0.0.1", 7007));
        assert_eq!(listen("7007"), at("127.0.0.1", 7007));
        assert_eq!(listen("0.0.0.0:7009"), at("0.0.0.0", 7009));
        assert_eq!(listen("'localhost:0'"), at("localhost", 0));
        assert_eq!(
            listen("{port: 70000}"),
            Err("invalid configuration at backend.listen.port: invalid value: integer `70000`, expected u16".into())
        );
        for bad in ["'::1:7007'", "'host:'", "'host:port'", "70000", "[7007]"] {
            let err = listen(bad).unwrap_err();
            assert!(
                err.starts_with("invalid configuration at backend.listen: invalid"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn base_urls_must_be_http() {
        let config = parse("app: {baseUrl: 'https://backstage.example.com'}\nbackend: {baseUrl: 'http://notifications:7007'}").unwrap();
        assert_eq!(
            config.app.base_url.as_str(),
            "https://backstage.example.com/"
        );
        assert_eq!(
            config.backend.base_url.as_str(),
            "http://notifications:7007/"
        );
        assert!(
            error("app: {baseUrl: 'localhost:3000'}")
                .starts_with("invalid configuration at app.baseUrl: expected an http or https URL")
        );
        assert!(
            error("backend: {baseUrl: '/api'}")
                .starts_with("invalid configuration at backend.baseUrl: invalid URL")
        );
    }

    #[test]
    fn wrong_shapes_name_the_key() {
        assert_eq!(
            error("backend: 5"),
            "invalid configuration at backend: invalid type: integer `5`, expected a map"
        );
        assert_eq!(
            error("backend: {auth: {keys: {secret: x}}}"),
            "invalid configuration at backend.auth.keys: invalid type: map, expected a sequence"
        );
    }

    #[test]
    fn unset_variables_fail_where_they_are_read() {
        assert_eq!(
            error(
                "backend:\n  database:\n    client: pg\n    connection:\n      host: ${PG_HOST}\n      password: ${PG_PASSWORD}\n"
            ),
            "<yaml string>:6: backend.database.connection.password: environment variable PG_PASSWORD is not set"
        );
    }

    /// A production app-config of a Backstage app, with the sections of other plugins; their
    /// unset variables and missing files do not matter here.
    const BACKSTAGE_APP_CONFIG: &str = r#"
app:
  title: Scaffolded Backstage App
  baseUrl: https://backstage.example.com
organization:
  name: My Company
backend:
  baseUrl: https://backstage.example.com
  listen:
    port: ${PORT}
    host: 0.0.0.0
  csp:
    connect-src: ["'self'", 'http:', 'https:']
  cors:
    origin: ${CORS_ORIGIN:-https://backstage.example.com}
    methods: [GET, HEAD, PATCH, POST, PUT, DELETE]
    credentials: true
  database:
    client: pg
    connection:
      host: ${PG_HOST}
      port: ${POSTGRES_PORT:-5432}
      user: ${POSTGRES_USER:-backstage}
      password: ${POSTGRES_PASSWORD:-}
    plugin:
      catalog:
        connection:
          password: ${CATALOG_DB_PASSWORD}
  reading:
    allow:
      - host: example.com
  auth:
    dangerouslyDisableDefaultAuthPolicy: false
    keys:
      - secret: c2VjcmV0LXNlY3JldC1zZWNyZXQ=
    externalAccess:
      - type: static
        options:
          token: ci-token-0123456789
          subject: ci
          accessRestrictions:
            - plugin: notifications
integrations:
  github:
    - host: github.com
      token: ${GITHUB_TOKEN}
auth:
  environment: production
  providers:
    github:
      production:
        clientId: ${AUTH_GITHUB_CLIENT_ID}
        clientSecret: { $file: /run/secrets/github-client-secret }
proxy:
  endpoints:
    /pagerduty:
      target: https://api.pagerduty.com
      headers:
        Authorization: Token token=${PAGERDUTY_TOKEN}
catalog:
  rules:
    - allow: [Component, System, API, Resource, Location]
  locations:
    - type: file
      target: ../../examples/entities.yaml
    - type: url
      target: https://github.com/backstage/backstage/blob/master/packages/catalog-model/examples/all.yaml
      rules: [{allow: [User, Group]}]
scaffolder: {}
techdocs:
  builder: local
  generator: {runIn: docker}
  publisher: {type: local}
kubernetes:
  serviceLocatorMethod: {type: multiTenant}
  clusterLocatorMethods:
    - type: config
      clusters:
        - {url: 'https://k8s:6443', name: main, authProvider: serviceAccount, 200: weird}
notifications:
  retention: {days: 90}
  processors:
    email:
      transportConfig:
        transport: smtp
        hostname: smtp.example.com
"#;

    #[test]
    fn a_full_backstage_app_config_is_accepted() {
        let config = parse(BACKSTAGE_APP_CONFIG).unwrap();
        assert_eq!(
            config.app.base_url.as_str(),
            "https://backstage.example.com/"
        );
        assert_eq!(
            config.backend.listen,
            ListenConfig {
                host: "0.0.0.0".into(),
                port: 8080
            }
        );
        let DatabaseConfig::Postgres(postgres) = &config.backend.database else {
            panic!("expected PostgreSQL: {:?}", config.backend.database);
        };
        assert_eq!(
            postgres.url,
            "postgres://backstage:@db.internal:5432/backstage_plugin_notifications_service"
        );
        assert_eq!(config.backend.auth.keys, [b"secret-secret-secret".to_vec()]);
        let cors = config.backend.cors.as_ref().expect("cors is read");
        assert!(cors.allows("https://backstage.example.com") && cors.credentials);
        assert_eq!(
            config.backend.auth.external_access,
            [ExternalAccess::Static {
                token: "ci-token-0123456789".into(),
                subject: "ci".into()
            }]
        );
        assert_eq!(
            config.notifications.retention,
            Some(ConfigDuration {
                days: 90,
                ..ConfigDuration::default()
            })
        );
        assert_eq!(
            config.notifications.processors["email"]["transportConfig"]["hostname"],
            "smtp.example.com"
        );
    }

    #[test]
    fn unknown_keys_name_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("app-config.yaml");
        let local = dir.path().join("app-config.local.yaml");
        std::fs::write(
            &base,
            "catalog: {rules: []}\nnotifications: {retention: false}\n",
        )
        .unwrap();
        std::fs::write(&local, "notifications: {retenton: false}\n").unwrap();
        let overrides = [(
            "APP_CONFIG_notifications_retenshun".to_owned(),
            "false".to_owned(),
        )];
        let (_, unknown) =
            Config::load_checked_with_env(&[base, local.clone()], &env, &overrides).unwrap();
        assert_eq!(
            unknown,
            [
                UnknownKey {
                    origin: local.display().to_string(),
                    line: Some(1),
                    key: "notifications.retenton".into(),
                    suggestion: Some("retention"),
                },
                UnknownKey {
                    origin: "APP_CONFIG_* variables".into(),
                    line: None,
                    key: "notifications.retenshun".into(),
                    suggestion: Some("retention"),
                }
            ]
        );
    }

    #[test]
    fn upstream_s_database_is_found_as_backstage_finds_it() {
        let url = |block: Value| match upstream_database_block(block, "backend.database") {
            Ok(DatabaseConfig::Postgres(pg)) => pg.url,
            other => panic!("{other:?}"),
        };
        let host = serde_json::json!({"host": "db", "user": "u"});
        assert_eq!(
            url(serde_json::json!({"client": "pg", "connection": host})),
            "postgres://u@db:5432/backstage_plugin_notifications"
        );
        assert_eq!(
            url(serde_json::json!({"client": "pg", "connection": host, "prefix": "bs_"})),
            "postgres://u@db:5432/bs_notifications"
        );
        // Upstream's own block is read, and this service's is not.
        let plugin = serde_json::json!({
            "notifications": {"connection": {"database": "theirs"}},
            "notifications_service": {"connection": {"database": "ours"}},
        });
        assert_eq!(
            url(serde_json::json!({"client": "pg", "connection": host, "plugin": plugin})),
            "postgres://u@db:5432/theirs"
        );
        let sqlite =
            serde_json::json!({"client": "better-sqlite3", "connection": {"directory": "/bs"}});
        assert!(matches!(
            upstream_database_block(sqlite, "backend.database"),
            Ok(DatabaseConfig::Sqlite { location: Some(SqliteLocation::File(path)) })
                if path == Path::new("/bs/notifications.sqlite")
        ));
    }

    #[test]
    fn files_merge_in_order_and_overrides_win() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("app-config.yaml");
        let production = dir.path().join("app-config.production.yaml");
        std::fs::write(
            &base,
            "backend:\n  listen: {host: 0.0.0.0, port: 7007}\n  auth:\n    keys: [{secret: AQEBAQEBAQEBAQEBAQEBAQ==}, {secret: AgICAgICAgICAgICAgICAg==}]\nnotifications: {concurrencyLimit: 3}\n",
        )
        .unwrap();
        std::fs::write(
            &production,
            "backend:\n  listen: {port: '${PORT}'}\n  auth:\n    keys: [{secret: {$file: key.txt}}]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("key.txt"), "BwcHBwcHBwcHBwcHBwcHBw==\n").unwrap();
        let files = [base.clone(), production.clone()];

        let config = Config::load_with_env(&files, &env, &[]).unwrap();
        assert_eq!(
            config.backend.listen,
            ListenConfig {
                host: "0.0.0.0".into(),
                port: 8080
            }
        );
        assert_eq!(
            config.backend.auth.keys,
            [vec![7; 16]],
            "lists are replaced, not concatenated"
        );
        assert_eq!(config.notifications.concurrency_limit, 3);

        let overrides = [
            (
                "APP_CONFIG_backend_listen_port".to_owned(),
                "9090".to_owned(),
            ),
            (
                "APP_CONFIG_notifications_retention".to_owned(),
                "false".to_owned(),
            ),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let config = Config::load_with_env(&files, &env, &overrides).unwrap();
        assert_eq!(
            config.backend.listen,
            ListenConfig {
                host: "0.0.0.0".into(),
                port: 9090
            }
        );
        assert_eq!(config.notifications.retention, None);

        let missing = dir.path().join("missing.yaml");
        let err = Config::load_with_env(&[base, missing.clone()], &env, &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Read { file, .. } if *file == missing),
            "{err}"
        );

        std::fs::write(&production, "backend:\n  listen: [\n").unwrap();
        let err = Config::load_with_env(&files, &env, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: invalid YAML: ", production.display())),
            "{err}"
        );
        assert!(err.contains("line "), "{err}");

        let bad = [(
            "APP_CONFIG_backend_listen_port".to_owned(),
            "70000".to_owned(),
        )];
        assert_eq!(
            Config::load_with_env(&[], &env, &bad)
                .unwrap_err()
                .to_string(),
            "APP_CONFIG_* variables: invalid configuration at backend.listen.port: invalid value: integer `70000`, expected u16"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = parse(concat!(
            "backend:\n  database:\n    client: pg\n    connection: {user: u, password: pg-SECRET-pw}\n",
            "  auth:\n    keys: [{secret: a2V5LVNFQ1JFVC1TRUNSRVQ=}]\n    externalAccess:\n",
            "      - {type: static, options: {token: tok-SECRET-value, subject: s}}\n",
            "      - {type: legacy, options: {secret: bGVnYWN5LVNFQ1JFVC1TRUNSRVQ=}}\n",
            "notifications:\n  processors:\n    webhook: [{url: 'http://h', secret: hook-SECRET-0123456789}]\n",
        ))
        .unwrap();
        let debug = format!("{config:?}\n{config:#?}");
        for secret in ["SECRET", "a2V5", "bGVnYWN5"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }
}
