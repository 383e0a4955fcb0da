//! `notifications.processors.email`: the e-mail processor, with upstream's keys
//! (`plugins/notifications-backend-module-email/config.d.ts`).

use std::fmt;
use std::time::Duration;

use notifications_common::NotificationSeverity;
use notifications_node::NotificationProcessorFilters;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::coerce::{Bool, Positive, SecretString, UInt};
use super::duration::FixedDuration;

/// The e-mail processor's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    /// `transportConfig`: how mail leaves this service.
    pub transport: EmailTransport,
    /// `sender`: the `From` address (`Name <address>` or a bare address).
    pub sender: String,
    /// `replyTo`: the `Reply-To` address.
    pub reply_to: Option<String>,
    /// `concurrencyLimit` (default 2): at most this many mails start per `throttleInterval`.
    pub concurrency_limit: u32,
    /// `throttleInterval` (default 100 ms).
    pub throttle_interval: Duration,
    /// `broadcastConfig`: who gets broadcasts (nobody when absent, as upstream).
    pub broadcast: BroadcastReceiver,
    /// `cache.ttl` (default 1 hour): how long users' addresses are reused; zero: not cached.
    pub cache_ttl: Duration,
    /// `filter`: which notifications are mailed.
    pub filter: NotificationProcessorFilters,
    /// `allowedEmailDomains`: only addresses of these domains (exact, case-insensitive), lower-cased.
    pub allowed_email_domains: Option<Vec<String>>,
    /// `allowlistEmailAddresses`: addresses always allowed; alone, the only ones allowed.
    pub allowlist_email_addresses: Option<Vec<String>>,
    /// `denylistEmailAddresses`: addresses never mailed (applied last).
    pub denylist_email_addresses: Option<Vec<String>>,
}

/// `transportConfig.transport` and its options.
#[derive(Clone, PartialEq, Eq)]
pub enum EmailTransport {
    Smtp(SmtpConfig),
    Sendmail {
        path: String,
        newline: Newline,
    },
    /// Mails are rendered and logged, not sent (for debugging).
    Stream,
}

/// `transportConfig` for `transport: smtp`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub hostname: String,
    pub port: u16,
    /// `secure`: TLS from the start (implicit TLS, usually port 465).
    pub secure: bool,
    /// `requireTls`: STARTTLS is required; without it, STARTTLS is used when offered.
    pub require_tls: bool,
    pub username: Option<String>,
    /// Never logged nor shown by `Debug`.
    pub password: Option<String>,
}

/// `transportConfig.newline` of sendmail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newline {
    Unix,
    Windows,
}

/// `broadcastConfig.receiver`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BroadcastReceiver {
    None,
    /// Every user of the catalog that has an e-mail address.
    Users,
    /// `receiverEmails`.
    Config(Vec<String>),
}

impl fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(smtp) => smtp.fmt(f),
            Self::Sendmail { path, newline } => f
                .debug_struct("Sendmail")
                .field("path", path)
                .field("newline", newline)
                .finish(),
            Self::Stream => f.write_str("Stream"),
        }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smtp")
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("secure", &self.secure)
            .field("require_tls", &self.require_tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl<'de> Deserialize<'de> for EmailConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEmail::deserialize(deserializer)?;
        let lower = |list: Option<Vec<String>>| {
            list.map(|l| l.iter().map(|a| a.trim().to_lowercase()).collect())
        };
        Ok(Self {
            transport: raw.transport_config,
            sender: raw.sender.0,
            reply_to: raw.reply_to.map(|a| a.0),
            concurrency_limit: raw.concurrency_limit.map_or(2, |n| n.0),
            throttle_interval: raw
                .throttle_interval
                .map_or(Duration::from_millis(100), |d| d.0),
            broadcast: raw
                .broadcast_config
                .map_or(BroadcastReceiver::None, |b| b.0),
            cache_ttl: raw
                .cache
                .and_then(|c| c.ttl)
                .map_or(Duration::from_secs(3600), |d| d.0),
            filter: raw.filter.map(RawFilter::into_filters).unwrap_or_default(),
            allowed_email_domains: lower(raw.allowed_email_domains),
            allowlist_email_addresses: lower(raw.allowlist_email_addresses),
            denylist_email_addresses: lower(raw.denylist_email_addresses),
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct RawEmail {
    transport_config: EmailTransport,
    sender: Address,
    reply_to: Option<Address>,
    concurrency_limit: Option<Positive>,
    throttle_interval: Option<FixedDuration>,
    broadcast_config: Option<Broadcast>,
    cache: Option<RawCache>,
    filter: Option<RawFilter>,
    allowed_email_domains: Option<Vec<String>>,
    allowlist_email_addresses: Option<Vec<String>>,
    denylist_email_addresses: Option<Vec<String>>,
}

/// An address lettre can send from (`Name <a@b.c>` or `a@b.c`).
struct Address(String);

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<lettre::message::Mailbox>()
            .map_err(|e| de::Error::custom(format!("invalid e-mail address {text:?}: {e}")))?;
        Ok(Self(text))
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a map")]
struct RawCache {
    ttl: Option<FixedDuration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct RawFilter {
    min_severity: Option<Severity>,
    max_severity: Option<Severity>,
    excluded_topics: Option<Vec<String>>,
    included_topics: Option<Vec<String>>,
}

impl RawFilter {
    fn into_filters(self) -> NotificationProcessorFilters {
        NotificationProcessorFilters {
            min_severity: self.min_severity.map(|s| s.0),
            max_severity: self.max_severity.map(|s| s.0),
            excluded_topics: self.excluded_topics.unwrap_or_default(),
            included_topics: self.included_topics,
        }
    }
}

struct Severity(NotificationSeverity);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(Self).map_err(de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with receiver")]
struct RawBroadcast {
    receiver: String,
    receiver_emails: Option<Vec<String>>,
}

struct Broadcast(BroadcastReceiver);

impl<'de> Deserialize<'de> for Broadcast {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawBroadcast::deserialize(deserializer)?;
        Ok(Self(match raw.receiver.as_str() {
            "none" => BroadcastReceiver::None,
            "users" => BroadcastReceiver::Users,
            "config" => BroadcastReceiver::Config(raw.receiver_emails.unwrap_or_default()),
            other => {
                return Err(de::Error::custom(format!(
                    "unknown broadcast receiver {other:?}: expected none, users or config"
                )));
            }
        }))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with transport")]
struct RawTransport {
    transport: String,
    hostname: Option<String>,
    port: Option<UInt<u16>>,
    secure: Option<Bool>,
    require_tls: Option<Bool>,
    allow_credentials_without_tls: Option<Bool>,
    username: Option<String>,
    password: Option<SecretString>,
    path: Option<String>,
    newline: Option<String>,
}

impl<'de> Deserialize<'de> for EmailTransport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawTransport::deserialize(deserializer)?;
        match raw.transport.as_str() {
            "smtp" => {
                let hostname = raw
                    .hostname
                    .filter(|h| !h.trim().is_empty())
                    .ok_or_else(|| de::Error::custom("the smtp transport needs a hostname"))?;
                let port = raw
                    .port
                    .ok_or_else(|| de::Error::custom("the smtp transport needs a port"))?
                    .0;
                // As upstream: credentials are used only when both are given.
                let (username, password) = match (raw.username, raw.password) {
                    (Some(u), Some(p)) if !u.is_empty() && !p.0.is_empty() => (Some(u), Some(p.0)),
                    _ => (None, None),
                };
                let secure = raw.secure.is_some_and(|b| b.0);
                let require_tls = raw.require_tls.is_some_and(|b| b.0);
                // Opportunistic STARTTLS gives the login away to whoever strips the server's
                // STARTTLS offer: with credentials, TLS must be certain, unless the operator
                // says otherwise in so many words.
                if username.is_some()
                    && !secure
                    && !require_tls
                    && !raw.allow_credentials_without_tls.is_some_and(|b| b.0)
                {
                    return Err(de::Error::custom(
                        "with a username and password, TLS is required: set secure: true \
                         (implicit TLS, usually port 465) or requireTls: true (STARTTLS); to send \
                         them without TLS anyway, set allowCredentialsWithoutTls: true",
                    ));
                }
                Ok(Self::Smtp(SmtpConfig {
                    hostname: hostname.trim().to_owned(),
                    port,
                    secure,
                    require_tls,
                    username,
                    password,
                }))
            }
            "sendmail" => Ok(Self::Sendmail {
                path: raw.path.unwrap_or_else(|| "/usr/sbin/sendmail".to_owned()),
                newline: match raw.newline.as_deref() {
                    None | Some("unix") => Newline::Unix,
                    Some("windows") => Newline::Windows,
                    Some(other) => {
                        return Err(de::Error::custom(format!(
                            "unknown newline {other:?}: expected unix or windows"
                        )));
                    }
                },
            }),
            "stream" => Ok(Self::Stream),
            "ses" | "azure" => Err(de::Error::custom(format!(
                "the {} transport is not supported by this service: use smtp, sendmail or stream",
                raw.transport
            ))),
            other => Err(de::Error::custom(format!(
                "unknown transport {other:?}: expected smtp, sendmail or stream"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn email(yaml: &str) -> Result<Option<EmailConfig>, String> {
        Config::from_yaml_str(yaml)
            .and_then(|c| c.email_processor())
            .map_err(|e| e.to_string())
    }

    const SMTP: &str = "transportConfig: {transport: smtp, hostname: mail.example.com, port: 587}";

    #[test]
    fn absent_and_defaults() {
        assert_eq!(email("").unwrap(), None);
        assert_eq!(email("notifications: {processors: {}}").unwrap(), None);
        let config = email(&format!(
            "notifications: {{processors: {{email: {{{SMTP}, sender: a@example.com}}}}}}"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            config,
            EmailConfig {
                transport: EmailTransport::Smtp(SmtpConfig {
                    hostname: "mail.example.com".into(),
                    port: 587,
                    secure: false,
                    require_tls: false,
                    username: None,
                    password: None,
                }),
                sender: "a@example.com".into(),
                reply_to: None,
                concurrency_limit: 2,
                throttle_interval: Duration::from_millis(100),
                broadcast: BroadcastReceiver::None,
                cache_ttl: Duration::from_secs(3600),
                filter: NotificationProcessorFilters::default(),
                allowed_email_domains: None,
                allowlist_email_addresses: None,
                denylist_email_addresses: None,
            }
        );
    }

    #[test]
    fn all_keys() {
        let config = email(concat!(
            "notifications:\n  processors:\n    email:\n",
            "      transportConfig: {transport: smtp, hostname: mail, port: '465', secure: true, requireTls: 'yes', username: u, password: s3cret}\n",
            "      sender: 'Backstage <noreply@example.com>'\n      replyTo: help@example.com\n",
            "      concurrencyLimit: 5\n      throttleInterval: {seconds: 1}\n",
            "      broadcastConfig: {receiver: config, receiverEmails: [a@example.com]}\n",
            "      cache: {ttl: 5m}\n",
            "      filter: {minSeverity: high, maxSeverity: Critical, excludedTopics: [x], includedTopics: [y]}\n",
            "      allowedEmailDomains: [Example.COM]\n      allowlistEmailAddresses: [' Boss@Else.org']\n      denylistEmailAddresses: [No@Example.com]\n",
        ))
        .unwrap()
        .unwrap();
        let EmailTransport::Smtp(smtp) = &config.transport else {
            panic!("smtp expected")
        };
        assert!(smtp.secure && smtp.require_tls && smtp.port == 465);
        assert_eq!(smtp.password.as_deref(), Some("s3cret"));
        assert!(!format!("{config:?}").contains("s3cret"), "{config:?}");
        assert_eq!(config.reply_to.as_deref(), Some("help@example.com"));
        assert_eq!(config.concurrency_limit, 5);
        assert_eq!(config.throttle_interval, Duration::from_secs(1));
        assert_eq!(
            config.broadcast,
            BroadcastReceiver::Config(vec!["a@example.com".into()])
        );
        assert_eq!(config.cache_ttl, Duration::from_secs(300));
        assert_eq!(
            config.filter,
            NotificationProcessorFilters {
                min_severity: Some(NotificationSeverity::High),
                max_severity: Some(NotificationSeverity::Critical),
                excluded_topics: vec!["x".into()],
                included_topics: Some(vec!["y".into()]),
            }
        );
        assert_eq!(
            config.allowed_email_domains,
            Some(vec!["example.com".into()])
        );
        assert_eq!(
            config.allowlist_email_addresses,
            Some(vec!["boss@else.org".into()])
        );
        assert_eq!(
            config.denylist_email_addresses,
            Some(vec!["no@example.com".into()])
        );
    }

    #[test]
    fn credentials_need_tls_unless_explicitly_allowed_without() {
        let smtp = |keys: &str| {
            email(&format!(
                "notifications: {{processors: {{email: {{transportConfig: {{transport: smtp, hostname: mail, port: 587, {keys}}}, sender: a@example.com}}}}}}"
            ))
        };
        let err = smtp("username: u, password: s3cret").unwrap_err();
        assert!(
            err.starts_with(
                "invalid configuration at notifications.processors.email.transportConfig: with a \
                 username and password, TLS is required: set secure: true"
            ),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        for ok in [
            "username: u, password: s3cret, secure: true",
            "username: u, password: s3cret, requireTls: true",
            "username: u, password: s3cret, allowCredentialsWithoutTls: true",
            // No credentials (both are needed to log in): opportunistic STARTTLS, as upstream.
            "username: u",
            "",
        ] {
            assert!(smtp(ok).is_ok(), "{ok}: {:?}", smtp(ok));
        }
    }

    #[test]
    fn other_transports() {
        let transport = |t: &str| {
            email(&format!(
                "notifications: {{processors: {{email: {{transportConfig: {t}, sender: a@example.com}}}}}}"
            ))
            .map(|c| c.unwrap().transport)
        };
        assert_eq!(
            transport("{transport: sendmail}").unwrap(),
            EmailTransport::Sendmail {
                path: "/usr/sbin/sendmail".into(),
                newline: Newline::Unix
            }
        );
        assert_eq!(
            transport("{transport: sendmail, path: /bin/sm, newline: windows}").unwrap(),
            EmailTransport::Sendmail {
                path: "/bin/sm".into(),
                newline: Newline::Windows
            }
        );
        assert_eq!(
            transport("{transport: stream}").unwrap(),
            EmailTransport::Stream
        );
        assert_eq!(
            transport("{transport: ses, region: eu-west-1}").unwrap_err(),
            "invalid configuration at notifications.processors.email.transportConfig: the ses transport is not supported by this service: use smtp, sendmail or stream"
        );
        assert_eq!(
            transport("{transport: smtp, port: 25}").unwrap_err(),
            "invalid configuration at notifications.processors.email.transportConfig: the smtp transport needs a hostname"
        );
        assert_eq!(
            transport("{transport: smtp, hostname: h}").unwrap_err(),
            "invalid configuration at notifications.processors.email.transportConfig: the smtp transport needs a port"
        );
        assert!(
            transport("{transport: pigeon}")
                .unwrap_err()
                .contains("unknown transport \"pigeon\"")
        );
        // A password of the wrong type is not echoed.
        let err =
            transport("{transport: smtp, hostname: h, port: 25, password: 123456789}").unwrap_err();
        assert!(!err.contains("123456789"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let error = |rest: &str| {
            email(&format!(
                "notifications: {{processors: {{email: {{{SMTP}, {rest}}}}}}}"
            ))
            .unwrap_err()
        };
        assert_eq!(
            error("replyTo: a@example.com"),
            "invalid configuration at notifications.processors.email: missing field `sender`"
        );
        assert!(error("sender: 'not an address'").starts_with(
            "invalid configuration at notifications.processors.email.sender: invalid e-mail address"
        ));
        assert!(
            error("sender: a@example.com, filter: {minSeverity: huge}").starts_with(
                "invalid configuration at notifications.processors.email.filter.minSeverity: unknown severity"
            )
        );
        assert_eq!(
            error("sender: a@example.com, broadcastConfig: {receiver: all}"),
            "invalid configuration at notifications.processors.email.broadcastConfig: unknown broadcast receiver \"all\": expected none, users or config"
        );
        assert_eq!(
            error("sender: a@example.com, concurrencyLimit: 0"),
            "invalid configuration at notifications.processors.email.concurrencyLimit: must be at least 1"
        );
        assert!(
            error("sender: a@example.com, cache: {ttl: P1M}")
                .starts_with("invalid configuration at notifications.processors.email.cache.ttl")
        );
    }
}
