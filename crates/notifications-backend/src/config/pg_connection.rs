//! A PostgreSQL `connection` as Backstage takes it (a URL, or a knex/node-postgres map), merged
//! with a plugin's own and turned into a libpq connection URL.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor, value::MapAccessDeserializer};
use serde_json::Value;

use super::coerce::{Bool, UInt};
use super::error::{ConfigError, parse_at};
use super::secret::Secret;

pub(super) const PG_CONNECTION_FORMS: &str =
    "a postgres:// URL or a map with host, port, user, password and database";

/// A `connection` as written.
pub(super) enum PgConnection {
    /// Kept as given (libpq reads more of a URL than a map can say: several hosts, any
    /// parameter), but for the database, which the division mode may set.
    Url(PgUrl),
    Map(PgMap),
}

pub(super) struct PgUrl {
    /// Scheme and authority: `postgres://user:password@host:port`.
    head: String,
    database: Option<String>,
    /// `?…` or empty.
    query: String,
}

/// A knex/node-postgres connection map.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub(super) struct PgMap {
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
    /// `connection`, which sits at `key`.
    pub(super) fn parse(connection: Value, key: &str) -> Result<Self, ConfigError> {
        match connection {
            Value::String(url) => PgUrl::parse(&url, key).map(Self::Url),
            Value::Object(_) => parse_at(connection, key).map(Self::Map),
            _ => Err(ConfigError::invalid(
                key,
                format!("expected {PG_CONNECTION_FORMS}"),
            )),
        }
    }

    /// A plugin's `connection` (at `key`) over the base one, as Backstage spreads the one map
    /// over the other. A plugin's URL replaces the base connection; over a base URL a plugin's
    /// map may only name the database.
    pub(super) fn merge(
        base: Option<Self>,
        plugin: Option<Self>,
        key: &str,
    ) -> Result<Option<Self>, ConfigError> {
        Ok(match (base, plugin) {
            (base, None) => base,
            (None, plugin) | (Some(_), plugin @ Some(Self::Url(_))) => plugin,
            (Some(Self::Map(base)), Some(Self::Map(plugin))) => Some(Self::Map(PgMap {
                host: plugin.host.or(base.host),
                port: plugin.port.or(base.port),
                user: plugin.user.or(base.user),
                password: plugin.password.or(base.password),
                database: plugin.database.or(base.database),
                ssl: plugin.ssl.or(base.ssl),
                _connection_string: None,
            })),
            (Some(Self::Url(mut base)), Some(Self::Map(plugin))) => {
                let PgMap {
                    host: None,
                    port: None,
                    user: None,
                    password: None,
                    ssl: None,
                    database,
                    ..
                } = plugin
                else {
                    return Err(ConfigError::invalid(
                        key,
                        "over a base connection given as a URL only `database` can be set; give backend.database.connection as a map, or this one as a URL",
                    ));
                };
                base.database = database.or(base.database);
                Some(Self::Url(base))
            }
        })
    }

    /// The database the connection names, if it names one.
    pub(super) fn database(&self) -> Option<&str> {
        match self {
            Self::Url(url) => url.database.as_deref(),
            Self::Map(map) => map.database.as_deref(),
        }
    }

    /// The certificates and key of a map's `ssl` (a URL names its files itself).
    pub(super) fn tls_material(&self) -> PgTlsMaterial {
        match self {
            Self::Url(_) => PgTlsMaterial::default(),
            Self::Map(map) => map.ssl.clone().map(Ssl::into_material).unwrap_or_default(),
        }
    }

    /// A libpq URL for `database` (`None`: libpq's default, the role's name).
    pub(super) fn into_url(self, database: Option<&str>) -> String {
        match self {
            Self::Url(PgUrl { head, query, .. }) => match database {
                Some(database) => format!("{head}/{}{query}", encode(database)),
                None => format!("{head}{query}"),
            },
            Self::Map(map) => map.into_url(database),
        }
    }
}

impl PgUrl {
    /// Errors do not quote the URL: it may hold a password.
    fn parse(url: &str, key: &str) -> Result<Self, ConfigError> {
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
        Ok(Self {
            head: head.to_owned(),
            database: Some(database).filter(|name| !name.is_empty()),
            query: query.to_owned(),
        })
    }
}

impl PgMap {
    fn into_url(self, database: Option<&str>) -> String {
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
        url.push_str(&format!(":{port}"));
        if let Some(database) = database {
            url.push_str(&format!("/{}", encode(database)));
        }
        if let Some(ssl) = &self.ssl {
            url.push_str(&format!("?sslmode={}", ssl.sslmode()));
        }
        url
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

/// Percent-encodes everything but letters, digits and `*-._`, which libpq decodes back (in a
/// URL's host, path or parameter values).
pub fn encode(text: &str) -> String {
    // `+` stands for a space in form encoding but not in libpq; a literal `+` was already
    // encoded as `%2B`.
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Certificates and a key given as node-postgres takes them (`ssl.ca`, `ssl.cert`, `ssl.key`:
/// PEM text, or `$file` to read one). libpq reads them from files only: `server::storage`
/// writes them into the data directory before connecting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgTlsMaterial {
    /// The certificate authorities the server's certificate must chain to.
    pub ca: Option<String>,
    /// A client certificate, with `key`.
    pub cert: Option<String>,
    pub key: Option<Secret<String>>,
}

impl PgTlsMaterial {
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// node-postgres's `ssl`: a boolean or TLS options.
#[derive(Clone)]
struct Ssl {
    mode: SslMode,
    material: PgTlsMaterial,
}

#[derive(Clone, Copy)]
enum SslMode {
    Disabled,
    /// Encrypted, without checking the server certificate (`rejectUnauthorized: false`).
    Unverified,
    /// Node's default for TLS options: the certificate and host name are checked.
    Verified,
}

impl Ssl {
    fn sslmode(&self) -> &'static str {
        match self.mode {
            SslMode::Disabled => "disable",
            SslMode::Unverified => "require",
            SslMode::Verified => "verify-full",
        }
    }

    /// What libpq is to be given: as Node, a connection that does not check the server's
    /// certificate does not read `ca` either (libpq would check against it).
    fn into_material(self) -> PgTlsMaterial {
        match self.mode {
            SslMode::Disabled => PgTlsMaterial::default(),
            SslMode::Unverified => PgTlsMaterial {
                ca: None,
                ..self.material
            },
            SslMode::Verified => self.material,
        }
    }
}

/// PEM text, alone or (Node takes `ca` as a list too) several.
struct Pem(String);

impl<'de> Deserialize<'de> for Pem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "PEM text, or a list of them")]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let text = match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(text) => text,
            OneOrMany::Many(texts) => texts.join("\n"),
        };
        if !text.contains("-----BEGIN ") {
            return Err(de::Error::custom(
                "expected PEM text (-----BEGIN ...); to read a file, write {$file: path}",
            ));
        }
        Ok(Self(text))
    }
}

impl<'de> Deserialize<'de> for Ssl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The TLS options this service honours.
        #[derive(Deserialize)]
        struct Options {
            #[serde(rename = "rejectUnauthorized")]
            reject_unauthorized: Option<Bool>,
            ca: Option<Pem>,
            cert: Option<Pem>,
            key: Option<Pem>,
        }

        struct SslVisitor;

        impl<'de> Visitor<'de> for SslVisitor {
            type Value = Ssl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean or a map like {rejectUnauthorized: false}")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Ssl, E> {
                let mode = if v {
                    SslMode::Unverified
                } else {
                    SslMode::Disabled
                };
                Ok(Ssl {
                    mode,
                    material: PgTlsMaterial::default(),
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ssl, E> {
                let enabled = Bool::deserialize(de::value::StrDeserializer::<E>::new(v))?;
                self.visit_bool(enabled.0)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ssl, A::Error> {
                let options = Options::deserialize(MapAccessDeserializer::new(map))?;
                if options.cert.is_some() != options.key.is_some() {
                    return Err(de::Error::custom(
                        "a client certificate needs both `cert` and `key`",
                    ));
                }
                Ok(Ssl {
                    mode: match options.reject_unauthorized {
                        Some(Bool(false)) => SslMode::Unverified,
                        _ => SslMode::Verified,
                    },
                    material: PgTlsMaterial {
                        ca: options.ca.map(|pem| pem.0),
                        cert: options.cert.map(|pem| pem.0),
                        key: options.key.map(|pem| Secret(pem.0)),
                    },
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
