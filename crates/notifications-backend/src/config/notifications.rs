//! `notifications`: the plugin's own section, as upstream's `config.d.ts` describes it.

use std::time::Duration;

use notifications_common::{ChannelSetting, NotificationSettings, OriginSetting, TopicSetting};
use serde::Deserialize;
use serde_json::Value;

use super::auth::RawKey;
use super::catalog::CatalogConfig;
use super::coerce::{Bool, Positive};
use super::delivery::DeliveryConfig;
use super::duration::{FixedDuration, Retention, RetentionSetting};
use super::janus::{CallerSecret, JanusConfig};
use super::signals::SignalsConfig;

#[derive(Clone, PartialEq)]
pub struct NotificationsConfig {
    /// `notifications.defaultSettings`: what users get until they change their settings.
    pub default_settings: NotificationSettings,
    /// `notifications.retention`; `None` keeps notifications forever.
    pub retention: Option<Retention>,
    /// `notifications.concurrencyLimit`, accepted for compatibility.
    pub concurrency_limit: u32,
    /// `notifications.throttleInterval`, accepted for compatibility.
    pub throttle_interval: Duration,
    /// `notifications.processors` as written (`Null` when absent), for the processors to read.
    pub processors: Value,
    pub catalog: CatalogConfig,
    pub delivery: DeliveryConfig,
    pub signals: SignalsConfig,
    /// `notifications.metrics.enabled`: serve `GET /metrics`.
    pub metrics: bool,
    /// `notifications.legacyJanus` and `notifications.externalCallerSecret`.
    pub janus: JanusConfig,
    /// `notifications.userTokenKeys`: decoded HS256 secrets that sign and verify user tokens
    /// (the `token --user` command's) and nothing else. Unlike `backend.auth.keys`, which
    /// senders hold, these stay with the service. Empty: the generated `user-key` file.
    pub user_token_keys: Vec<Vec<u8>>,
}

/// `processors` is shown by key only: processors' options hold secrets (webhook keys, SMTP
/// passwords).
impl std::fmt::Debug for NotificationsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let processors: Vec<&String> = self
            .processors
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        f.debug_struct("NotificationsConfig")
            .field("default_settings", &self.default_settings)
            .field("retention", &self.retention)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("throttle_interval", &self.throttle_interval)
            .field("processors", &processors)
            .field("catalog", &self.catalog)
            .field("delivery", &self.delivery)
            .field("signals", &self.signals)
            .field("janus", &self.janus)
            .field("user_token_keys", &vec!["***"; self.user_token_keys.len()])
            .finish()
    }
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            default_settings: NotificationSettings::default(),
            retention: Some(Retention::one_year()),
            concurrency_limit: 10,
            throttle_interval: Duration::from_millis(50),
            processors: Value::Null,
            catalog: CatalogConfig::default(),
            delivery: DeliveryConfig::default(),
            signals: SignalsConfig::default(),
            metrics: false,
            janus: JanusConfig::default(),
            user_token_keys: Vec::new(),
        }
    }
}

/// `notifications` as written.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
pub(super) struct RawNotifications {
    default_settings: RawSettings,
    retention: Option<RetentionSetting>,
    concurrency_limit: Option<Positive>,
    throttle_interval: Option<FixedDuration>,
    processors: Value,
    catalog: CatalogConfig,
    delivery: DeliveryConfig,
    signals: SignalsConfig,
    metrics: RawMetrics,
    legacy_janus: JanusConfig,
    external_caller_secret: Option<CallerSecret>,
    user_token_keys: Vec<RawKey>,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map with enabled")]
struct RawMetrics {
    enabled: Option<Bool>,
}

impl From<RawNotifications> for NotificationsConfig {
    fn from(raw: RawNotifications) -> Self {
        let defaults = Self::default();
        Self {
            default_settings: raw.default_settings.into(),
            retention: raw.retention.map_or(defaults.retention, |r| r.0),
            concurrency_limit: raw
                .concurrency_limit
                .map_or(defaults.concurrency_limit, |n| n.0),
            throttle_interval: raw
                .throttle_interval
                .map_or(defaults.throttle_interval, |d| d.0),
            processors: raw.processors,
            catalog: raw.catalog,
            delivery: raw.delivery,
            signals: raw.signals,
            metrics: raw.metrics.enabled.is_some_and(|b| b.0),
            janus: raw.legacy_janus.with_secret(raw.external_caller_secret),
            user_token_keys: raw
                .user_token_keys
                .into_iter()
                .map(RawKey::into_secret)
                .collect(),
        }
    }
}

// The settings types of `notifications_common` read the wire format, where `origins` is
// required and booleans are booleans; configuration needs defaults and string coercion.

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map with channels")]
struct RawSettings {
    channels: Vec<RawChannel>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id, enabled and origins")]
struct RawChannel {
    id: String,
    enabled: Option<Bool>,
    #[serde(default)]
    origins: Vec<RawOrigin>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id, enabled and topics")]
struct RawOrigin {
    id: String,
    enabled: Bool,
    topics: Option<Vec<RawTopic>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id and enabled")]
struct RawTopic {
    id: String,
    enabled: Bool,
}

impl From<RawSettings> for NotificationSettings {
    fn from(raw: RawSettings) -> Self {
        let topic = |t: RawTopic| TopicSetting {
            id: t.id,
            enabled: t.enabled.0,
        };
        let origin = |o: RawOrigin| OriginSetting {
            id: o.id,
            enabled: o.enabled.0,
            topics: o
                .topics
                .map(|topics| topics.into_iter().map(topic).collect()),
        };
        Self {
            channels: raw
                .channels
                .into_iter()
                .map(|c| ChannelSetting {
                    id: c.id,
                    enabled: c.enabled.map(|e| e.0),
                    origins: c.origins.into_iter().map(origin).collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::{Config, ConfigError};

    fn notifications(yaml: &str) -> Result<NotificationsConfig, ConfigError> {
        Config::from_yaml_str(yaml).map(|config| config.notifications)
    }

    fn error(yaml: &str) -> String {
        notifications(yaml).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let config = notifications("notifications: {}\n").unwrap();
        assert_eq!(config, NotificationsConfig::default());
        assert_eq!(config.retention, Some(Retention::one_year()));
        assert_eq!(config.default_settings.channels, []);
        assert_eq!(config.concurrency_limit, 10);
        assert_eq!(config.throttle_interval, Duration::from_millis(50));
        assert_eq!(config.processors, Value::Null);
    }

    #[test]
    fn default_settings() {
        let config = notifications(concat!(
            "notifications:\n  defaultSettings:\n    channels:\n",
            "      - id: Web\n        origins:\n",
            "          - id: plugin:catalog\n            enabled: false\n",
            "            topics: [{id: entity-updated, enabled: 'true'}]\n",
            "          - {id: plugin:scaffolder, enabled: true}\n",
            "      - {id: Email, enabled: false}\n",
        ))
        .unwrap();
        assert_eq!(
            config.default_settings,
            NotificationSettings {
                channels: vec![
                    ChannelSetting {
                        id: "Web".into(),
                        enabled: None,
                        origins: vec![
                            OriginSetting {
                                id: "plugin:catalog".into(),
                                enabled: false,
                                topics: Some(vec![TopicSetting {
                                    id: "entity-updated".into(),
                                    enabled: true
                                }]),
                            },
                            OriginSetting {
                                id: "plugin:scaffolder".into(),
                                enabled: true,
                                topics: None
                            },
                        ],
                    },
                    ChannelSetting {
                        id: "Email".into(),
                        enabled: Some(false),
                        origins: vec![]
                    },
                ],
            }
        );
        assert_eq!(
            error("notifications: {defaultSettings: {channels: [{id: Web, origins: [{id: o}]}]}}"),
            "invalid configuration at notifications.defaultSettings.channels[0].origins[0]: missing field `enabled`"
        );
    }

    #[test]
    fn retention() {
        let retention = |yaml: &str| notifications(yaml).map(|n| n.retention);
        assert_eq!(
            retention("notifications: {retention: false}").unwrap(),
            None
        );
        assert_eq!(
            retention("notifications: {}").unwrap(),
            Some(Retention::one_year())
        );
        assert_eq!(
            retention("notifications: {retention: {days: 30, hours: 12}}").unwrap(),
            Some(Retention {
                days: 30,
                hours: 12,
                ..Retention::default()
            })
        );
        assert_eq!(
            retention("notifications: {retention: P1Y2M}").unwrap(),
            Some(Retention {
                years: 1,
                months: 2,
                ..Retention::default()
            })
        );
        assert_eq!(
            retention("notifications: {retention: 2 weeks}").unwrap(),
            Some(Retention {
                days: 14,
                ..Retention::default()
            })
        );
        assert!(error("notifications: {retention: true}").starts_with(
            "invalid configuration at notifications.retention: invalid value: boolean `true`"
        ));
        assert!(
            error("notifications: {retention: {days: 0}}")
                .starts_with("invalid configuration at notifications.retention: the retention must be longer than zero")
        );
        assert_eq!(
            error("notifications: {retention: {days: x}}"),
            "invalid configuration at notifications.retention.days: invalid value: string \"x\", expected u32"
        );
        assert!(
            error("notifications: {retention: P1.5D}")
                .starts_with("invalid configuration at notifications.retention: invalid duration \"P1.5D\": fractional")
        );
    }

    #[test]
    fn limits_and_processors() {
        let config = notifications(concat!(
            "notifications:\n  concurrencyLimit: '4'\n  throttleInterval: {seconds: 1}\n",
            "  processors:\n    email:\n      transportConfig: {transport: smtp, hostname: mail}\n",
        ))
        .unwrap();
        assert_eq!(config.concurrency_limit, 4);
        assert_eq!(config.throttle_interval, Duration::from_secs(1));
        assert_eq!(
            config.processors,
            json!({"email": {"transportConfig": {"transport": "smtp", "hostname": "mail"}}})
        );
        assert_eq!(
            error("notifications: {concurrencyLimit: 0}"),
            "invalid configuration at notifications.concurrencyLimit: must be at least 1"
        );
        assert!(error("notifications: {throttleInterval: P1M}").starts_with(
            "invalid configuration at notifications.throttleInterval: months and years"
        ));
    }
}
