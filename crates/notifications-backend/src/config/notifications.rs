//! `notifications`: the plugin's own section, as upstream's `config.d.ts` describes it.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use notifications_common::{ChannelSetting, NotificationSettings, OriginSetting, TopicSetting};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::auth::Key;
use super::catalog::CatalogConfig;
use super::coerce::{Bool, Coerced, Positive, default_from_fields, int, millis, via};
use super::delivery::DeliveryConfig;
use super::duration::{ConfigDuration, FixedDuration, RetentionSetting};
use super::janus::JanusConfig;
use super::preferences::PreferencesConfig;
use super::secret::Secret;
use super::signals::SignalsConfig;
use super::web::WebConfig;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct NotificationsConfig {
    /// `notifications.defaultSettings`: what users get until they change their settings.
    #[serde(default, deserialize_with = "via::<RawSettings, _>")]
    pub default_settings: NotificationSettings,
    /// `notifications.retention`; `None` keeps notifications forever (Backstage's default: a
    /// year).
    #[serde(default = "one_year", deserialize_with = "via::<RetentionSetting, _>")]
    pub retention: Option<ConfigDuration>,
    /// `notifications.concurrencyLimit`, accepted for compatibility.
    #[serde(default = "int::<10>", deserialize_with = "via::<Positive, _>")]
    pub concurrency_limit: u32,
    /// `notifications.throttleInterval`, accepted for compatibility.
    #[serde(default = "millis::<50>", deserialize_with = "via::<FixedDuration, _>")]
    pub throttle_interval: Duration,
    /// `notifications.processors` as written (`Null` when absent), for the processors to read.
    #[serde(default)]
    pub processors: ProcessorOptions,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub signals: SignalsConfig,
    #[serde(default)]
    pub preferences: PreferencesConfig,
    #[serde(default)]
    pub web: WebConfig,
    /// `notifications.metrics.enabled`: serve `GET /metrics`.
    #[serde(default, deserialize_with = "metrics_enabled")]
    pub metrics: bool,
    /// `notifications.legacyJanus` and `notifications.externalCallerSecret`.
    #[serde(rename = "legacyJanus", default)]
    pub janus: JanusConfig,
    /// `notifications.userTokenKeys`: decoded HS256 secrets that sign and verify user tokens
    /// (the `token --user` command's) and nothing else. Unlike `backend.auth.keys`, which
    /// senders hold, these stay with the service. Empty: the generated `user-key` file.
    #[serde(default, deserialize_with = "via::<Vec<Key>, _>")]
    pub user_token_keys: Vec<Secret<Vec<u8>>>,
}

default_from_fields!(NotificationsConfig);

fn one_year() -> Option<ConfigDuration> {
    Some(ConfigDuration::one_year())
}

fn metrics_enabled<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(expecting = "a map with enabled")]
    struct Metrics {
        #[serde(default, deserialize_with = "via::<Bool, _>")]
        enabled: bool,
    }
    Metrics::deserialize(d).map(|m| m.enabled)
}

/// The processors' options, read by each processor. `Debug` shows the processors' names only:
/// their options hold secrets (webhook keys, SMTP passwords).
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct ProcessorOptions(Value);

impl Deref for ProcessorOptions {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

impl PartialEq<Value> for ProcessorOptions {
    fn eq(&self, other: &Value) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for ProcessorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.0.as_object().map(|m| m.keys().collect::<Vec<_>>());
        f.debug_list().entries(names.unwrap_or_default()).finish()
    }
}

// The settings types of `notifications_common` read the wire format, where `origins` is
// required and booleans are booleans; configuration needs defaults and string coercion.

#[derive(Deserialize)]
#[serde(expecting = "a map with channels")]
struct RawSettings {
    #[serde(default)]
    channels: Vec<RawChannel>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id, enabled and origins")]
struct RawChannel {
    id: String,
    #[serde(default, deserialize_with = "via::<Option<Bool>, _>")]
    enabled: Option<bool>,
    #[serde(default)]
    origins: Vec<RawOrigin>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id, enabled and topics")]
struct RawOrigin {
    id: String,
    #[serde(deserialize_with = "via::<Bool, _>")]
    enabled: bool,
    topics: Option<Vec<RawTopic>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with id and enabled")]
struct RawTopic {
    id: String,
    #[serde(deserialize_with = "via::<Bool, _>")]
    enabled: bool,
}

impl Coerced for RawSettings {
    type Value = NotificationSettings;

    fn value(self) -> NotificationSettings {
        let topic = |RawTopic { id, enabled }| TopicSetting { id, enabled };
        let origin = |o: RawOrigin| OriginSetting {
            id: o.id,
            enabled: o.enabled,
            topics: o.topics.map(|t| t.into_iter().map(topic).collect()),
        };
        let channel = |c: RawChannel| ChannelSetting {
            id: c.id,
            enabled: c.enabled,
            origins: c.origins.into_iter().map(origin).collect(),
        };
        NotificationSettings {
            channels: self.channels.into_iter().map(channel).collect(),
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
        assert_eq!(config.retention, Some(ConfigDuration::one_year()));
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
            Some(ConfigDuration::one_year())
        );
        assert_eq!(
            retention("notifications: {retention: {days: 30, hours: 12}}").unwrap(),
            Some(ConfigDuration {
                days: 30,
                hours: 12,
                ..ConfigDuration::default()
            })
        );
        assert_eq!(
            retention("notifications: {retention: P1Y2M}").unwrap(),
            Some(ConfigDuration {
                years: 1,
                months: 2,
                ..ConfigDuration::default()
            })
        );
        assert_eq!(
            retention("notifications: {retention: 2 weeks}").unwrap(),
            Some(ConfigDuration {
                days: 14,
                ..ConfigDuration::default()
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
