//! `notifications.processors.webhook`: processors that POST each delivery to an HTTP endpoint,
//! signed with HMAC-SHA256 (beyond upstream, which has no webhook processor).

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use notifications_common::NotificationSeverity;
use notifications_node::NotificationProcessorFilters;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;
use url::Url;

use super::coerce::{HttpUrl, LongSecret, via};
use super::duration::AtLeast;
use super::error::{ConfigError, parse_at};
use super::secret::Secret;

/// The key the webhooks are read from, for error messages.
const KEY: &str = "notifications.processors.webhook";

/// Headers a webhook sets itself; configuring them is refused.
pub const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "x-notifications-delivery",
    "x-notifications-timestamp",
    "x-notifications-signature",
];

pub const DEFAULT_NAME: &str = "Webhook";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MIN_SECRET_LEN: usize = 16;

/// One webhook (one processor, one channel).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, expecting = "a map")]
pub struct WebhookConfig {
    /// `name`: the processor's name and channel id in users' settings.
    #[serde(default = "default_name", deserialize_with = "name")]
    pub name: String,
    /// `url`: where deliveries are POSTed.
    #[serde(deserialize_with = "via::<HttpUrl, _>")]
    pub url: Url,
    /// `secret`: the HMAC-SHA256 key of the signature header.
    #[serde(deserialize_with = "via::<LongSecret<MIN_SECRET_LEN>, _>")]
    pub secret: Secret<String>,
    /// `timeout`: for each request, connection included.
    #[serde(default = "default_timeout", deserialize_with = "via::<AtLeast<1>, _>")]
    pub timeout: Duration,
    /// `headers`: extra request headers (sorted by name).
    #[serde(default, deserialize_with = "headers")]
    pub headers: Vec<(String, String)>,
    /// `filter`: which notifications the webhook receives.
    #[serde(rename = "filter", default, deserialize_with = "filters")]
    pub filters: NotificationProcessorFilters,
}

/// A webhook's URL (whose path may be its credential, as Slack's are) and extra headers may
/// carry credentials: only where it goes is shown.
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("host", &self.url.host_str())
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("filters", &self.filters)
            .finish()
    }
}

fn default_name() -> String {
    DEFAULT_NAME.to_owned()
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// The webhooks of `notifications.processors` (the raw value of that key); none when
/// `webhook` is absent or null.
pub fn webhooks(processors: &Value) -> Result<Vec<WebhookConfig>, ConfigError> {
    let value = match processors.get("webhook") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => value.clone(),
    };
    let hooks: Vec<WebhookConfig> = parse_at(value, KEY)?;
    let mut names = HashSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        if !names.insert(hook.name.to_lowercase()) {
            return Err(ConfigError::invalid(
                &format!("{KEY}[{i}].name"),
                format!(
                    "{:?} is used by another webhook; names must differ (ignoring case)",
                    hook.name
                ),
            ));
        }
    }
    Ok(hooks)
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(de::Error::custom(
            "must be non-empty printable ASCII (it is sent in a header)",
        ));
    }
    if name.eq_ignore_ascii_case(notifications_common::WEB_CHANNEL) {
        return Err(de::Error::custom(
            "Web is the inbox channel; choose another name",
        ));
    }
    Ok(name)
}

#[derive(Deserialize)]
#[serde(
    remote = "NotificationProcessorFilters",
    rename_all = "camelCase",
    deny_unknown_fields,
    expecting = "a map"
)]
struct WebhookFilter {
    #[serde(default)]
    min_severity: Option<NotificationSeverity>,
    #[serde(default)]
    max_severity: Option<NotificationSeverity>,
    #[serde(default)]
    included_topics: Option<Vec<String>>,
    #[serde(default)]
    excluded_topics: Vec<String>,
}

fn filters<'de, D: Deserializer<'de>>(d: D) -> Result<NotificationProcessorFilters, D::Error> {
    let filters = WebhookFilter::deserialize(d)?;
    if let (Some(min), Some(max)) = (filters.min_severity, filters.max_severity)
        && !max.at_least(min)
    {
        return Err(de::Error::custom(
            "minSeverity is more severe than maxSeverity: nothing would pass",
        ));
    }
    Ok(filters)
}

/// Extra headers: valid names and values, none of those the webhook sets itself.
fn headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let map = serde_json::Map::<String, Value>::deserialize(d)?;
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        let value = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(de::Error::custom(format!(
                    "header {name}: expected a string"
                )));
            }
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(de::Error::custom(format!(
                "{name:?} is not a valid header name"
            )));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(de::Error::custom(format!(
                "{name} is set by the webhook itself"
            )));
        }
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            return Err(de::Error::custom(format!(
                "header {name}: the value is not a valid header value"
            )));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn read(yaml: &str) -> Result<Vec<WebhookConfig>, String> {
        let config = Config::from_yaml_str(yaml).map_err(|e| e.to_string())?;
        webhooks(&config.notifications.processors).map_err(|e| e.to_string())
    }

    const SECRET: &str = "0123456789abcdef";

    #[test]
    fn full_and_defaults() {
        assert_eq!(read("").unwrap(), vec![]);
        assert_eq!(
            read("notifications: {processors: {email: {}}}").unwrap(),
            vec![]
        );
        let hooks = read(&format!(
            "notifications: {{processors: {{webhook: [
                {{url: 'https://hooks.example.com/n', secret: {SECRET}}},
                {{name: Ops, url: 'http://ops/h', secret: {SECRET}, timeout: 2s,
                  headers: {{X-Team: platform, X-N: 1}},
                  filter: {{minSeverity: high, maxSeverity: critical, includedTopics: [a], excludedTopics: [b]}}}}
            ]}}}}"
        ))
        .unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].name, "Webhook");
        assert_eq!(hooks[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(hooks[0].filters, NotificationProcessorFilters::default());
        assert_eq!(hooks[1].name, "Ops");
        assert_eq!(hooks[1].url.as_str(), "http://ops/h");
        assert_eq!(hooks[1].timeout, Duration::from_secs(2));
        assert_eq!(
            hooks[1].headers,
            vec![
                ("X-N".to_owned(), "1".to_owned()),
                ("X-Team".to_owned(), "platform".to_owned())
            ]
        );
        assert_eq!(
            hooks[1].filters,
            NotificationProcessorFilters {
                min_severity: Some(NotificationSeverity::High),
                max_severity: Some(NotificationSeverity::Critical),
                excluded_topics: vec!["b".into()],
                included_topics: Some(vec!["a".into()]),
            }
        );
        assert!(!format!("{:?}", hooks[0]).contains(SECRET));
    }

    #[test]
    fn errors_name_the_key() {
        let err = |yaml: &str| read(yaml).unwrap_err();
        assert!(
            err("notifications: {processors: {webhook: [{url: 'ftp://x', secret: 0123456789abcdef}]}}")
                .starts_with("invalid configuration at notifications.processors.webhook[0].url: expected an http or https URL")
        );
        let short = err(
            "notifications: {processors: {webhook: [{url: 'http://x', secret: 0123456789abcdef}, {name: B, url: 'http://x', secret: short}]}}",
        );
        assert!(
            short.starts_with(
                "invalid configuration at notifications.processors.webhook[1].secret: must be at least 16 bytes"
            ),
            "{short}"
        );
        assert!(!short.contains("short\""), "{short}");
        assert!(
            err("notifications: {processors: {webhook: [{url: 'http://x'}]}}")
                .starts_with("invalid configuration at notifications.processors.webhook[0]: missing field `secret`")
        );
        assert_eq!(
            err(
                "notifications: {processors: {webhook: [{url: 'http://x', secret: 0123456789abcdef}, {url: 'http://y', secret: 0123456789abcdef}]}}"
            ),
            "invalid configuration at notifications.processors.webhook[1].name: \"Webhook\" is used by another webhook; names must differ (ignoring case)"
        );
        assert!(
            err("notifications: {processors: {webhook: [{url: 'http://x', secret: 0123456789abcdef, headers: {X-Notifications-Signature: x}}]}}")
                .starts_with("invalid configuration at notifications.processors.webhook[0].headers: X-Notifications-Signature is set by the webhook itself")
        );
        assert!(
            err("notifications: {processors: {webhook: [{url: 'http://x', secret: 0123456789abcdef, filter: {minSeverity: urgent}}]}}")
                .starts_with("invalid configuration at notifications.processors.webhook[0].filter.minSeverity")
        );
        assert!(
            err("notifications: {processors: {webhook: {url: 'http://x'}}}")
                .starts_with("invalid configuration at notifications.processors.webhook: invalid type: map, expected a sequence")
        );
        assert!(
            err("notifications: {processors: {webhook: [{url: 'http://x', secret: 0123456789abcdef, filter: {minSeverity: critical, maxSeverity: low}}]}}")
                .starts_with("invalid configuration at notifications.processors.webhook[0].filter: minSeverity")
        );
    }
}
