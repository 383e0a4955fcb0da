//! `notifications.processors.email`: the e-mail processor, with upstream's keys
//! (`plugins/notifications-backend-module-email/config.d.ts`).

use std::time::Duration;

use notifications_common::NotificationSeverity;
use notifications_node::NotificationProcessorFilters;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::coerce::{Bool, Positive, UInt, int, millis, secs, via};
use super::duration::FixedDuration;
use super::secret::Secret;

/// The e-mail processor's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct EmailConfig {
    /// `transportConfig`: how mail leaves this service.
    #[serde(rename = "transportConfig")]
    pub transport: EmailTransport,
    /// `sender`: the `From` address (`Name <address>` or a bare address).
    #[serde(deserialize_with = "address")]
    pub sender: String,
    /// `replyTo`: the `Reply-To` address.
    #[serde(default, deserialize_with = "optional_address")]
    pub reply_to: Option<String>,
    /// `concurrencyLimit`: at most this many mails start per `throttleInterval`.
    #[serde(default = "int::<2>", deserialize_with = "via::<Positive, _>")]
    pub concurrency_limit: u32,
    /// `throttleInterval`.
    #[serde(
        default = "millis::<100>",
        deserialize_with = "via::<FixedDuration, _>"
    )]
    pub throttle_interval: Duration,
    /// `broadcastConfig`: who gets broadcasts (nobody when absent, as upstream).
    #[serde(rename = "broadcastConfig", default)]
    pub broadcast: BroadcastReceiver,
    /// `cache.ttl` (1 hour): how long users' addresses are reused; zero: not cached.
    #[serde(
        rename = "cache",
        default = "secs::<3600>",
        deserialize_with = "cache_ttl"
    )]
    pub cache_ttl: Duration,
    /// `filter`: which notifications are mailed.
    #[serde(default, with = "EmailFilter")]
    pub filter: NotificationProcessorFilters,
    /// `allowedEmailDomains`: only addresses of these domains (exact, case-insensitive), lower-cased.
    #[serde(default, deserialize_with = "lower_case")]
    pub allowed_email_domains: Option<Vec<String>>,
    /// `allowlistEmailAddresses`: addresses always allowed; alone, the only ones allowed.
    #[serde(default, deserialize_with = "lower_case")]
    pub allowlist_email_addresses: Option<Vec<String>>,
    /// `denylistEmailAddresses`: addresses never mailed (applied last).
    #[serde(default, deserialize_with = "lower_case")]
    pub denylist_email_addresses: Option<Vec<String>>,
}

/// `transportConfig.transport` and its options.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpConfig {
    pub hostname: String,
    pub port: u16,
    /// `secure`: TLS from the start (implicit TLS, usually port 465).
    pub secure: bool,
    /// `requireTls`: STARTTLS is required; without it, STARTTLS is used when offered.
    pub require_tls: bool,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
}

/// `transportConfig.newline` of sendmail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newline {
    Unix,
    Windows,
}

/// `broadcastConfig.receiver`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BroadcastReceiver {
    #[default]
    None,
    /// Every user of the catalog that has an e-mail address.
    Users,
    /// `receiverEmails`.
    Config(Vec<String>),
}

/// An address lettre can send from (`Name <a@b.c>` or `a@b.c`).
fn address<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<lettre::message::Mailbox>()
        .map_err(|e| de::Error::custom(format!("invalid e-mail address {text:?}: {e}")))?;
    Ok(text)
}

fn optional_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    address(d).map(Some)
}

fn lower_case<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    Ok(Some(list.iter().map(|a| a.trim().to_lowercase()).collect()))
}

fn cache_ttl<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(expecting = "a map")]
    struct Cache {
        #[serde(default = "secs::<3600>", deserialize_with = "via::<FixedDuration, _>")]
        ttl: Duration,
    }
    Cache::deserialize(d).map(|c| c.ttl)
}

#[derive(Deserialize)]
#[serde(
    remote = "NotificationProcessorFilters",
    rename_all = "camelCase",
    expecting = "a map"
)]
struct EmailFilter {
    #[serde(default, deserialize_with = "severity")]
    min_severity: Option<NotificationSeverity>,
    #[serde(default, deserialize_with = "severity")]
    max_severity: Option<NotificationSeverity>,
    #[serde(default)]
    excluded_topics: Vec<String>,
    #[serde(default)]
    included_topics: Option<Vec<String>>,
}

/// Case-insensitive, as upstream.
fn severity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NotificationSeverity>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(de::Error::custom)
}

impl<'de> Deserialize<'de> for BroadcastReceiver {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", expecting = "a map with receiver")]
        struct RawBroadcast {
            receiver: String,
            #[serde(default)]
            receiver_emails: Vec<String>,
        }
        let raw = RawBroadcast::deserialize(deserializer)?;
        match raw.receiver.as_str() {
            "none" => Ok(Self::None),
            "users" => Ok(Self::Users),
            "config" => Ok(Self::Config(raw.receiver_emails)),
            other => Err(de::Error::custom(format!(
                "unknown broadcast receiver {other:?}: expected none, users or config"
            ))),
        }
    }
}

/// `transportConfig` as written: which keys matter depends on `transport`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with transport")]
struct RawTransport {
    transport: String,
    hostname: Option<String>,
    port: Option<UInt<u16>>,
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    secure: bool,
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    require_tls: bool,
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    allow_credentials_without_tls: bool,
    username: Option<String>,
    password: Option<Secret<String>>,
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
                    (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => (Some(u), Some(p)),
                    _ => (None, None),
                };
                // Opportunistic STARTTLS gives the login away to whoever strips the server's
                // STARTTLS offer: with credentials, TLS must be certain, unless the operator
                // says otherwise in so many words.
                if username.is_some()
                    && !raw.secure
                    && !raw.require_tls
                    && !raw.allow_credentials_without_tls
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
                    secure: raw.secure,
                    require_tls: raw.require_tls,
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
