//! `notifications.processors.slack`: an array, one Slack processor per entry (upstream's keys,
//! plus `name` and `apiUrl`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::coerce::{HttpUrl, Positive, SecretString};
use super::duration::FixedDuration;
use super::error::{ConfigError, parse_at};

/// The channel id (and processor name) of the first entry, as upstream names every entry.
pub const SLACK_CHANNEL: &str = "SlackNotificationProcessor";
const DEFAULT_API_URL: &str = "https://slack.com/api";
const KEY: &str = "notifications.processors.slack";

/// One entry of `notifications.processors.slack`.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// `name` (ours): the processor's name and settings channel. Default: `SlackNotificationProcessor`
    /// for the first entry, `SlackNotificationProcessor-<n>` for the n-th (n ≥ 2).
    pub name: String,
    /// `token`: the bot token (secret: never logged nor shown in errors).
    pub token: String,
    /// `broadcastChannels` (deprecated upstream): broadcasts that match no route go here.
    pub broadcast_channels: Vec<String>,
    /// `broadcastRoutes`.
    pub broadcast_routes: Vec<BroadcastRoute>,
    /// `username`: posts under this name (needs the `chat:write.customize` scope).
    pub username: Option<String>,
    /// `concurrencyLimit` (default 10) calls to Slack per `throttleInterval` (default 1 minute).
    pub concurrency_limit: u32,
    pub throttle_interval: Duration,
    /// `apiUrl` (ours): Slack's Web API, `https://slack.com/api` by default.
    pub api_url: Url,
}

impl fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackConfig")
            .field("name", &self.name)
            .field("token", &"***")
            .field("broadcast_channels", &self.broadcast_channels)
            .field("broadcast_routes", &self.broadcast_routes)
            .field("username", &self.username)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("throttle_interval", &self.throttle_interval)
            .field("api_url", &self.api_url.as_str())
            .finish()
    }
}

/// An entry of `broadcastRoutes`: broadcasts of this origin and/or topic go to `channels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastRoute {
    pub origin: Option<String>,
    pub topic: Option<String>,
    pub channels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with a token")]
struct RawSlack {
    name: Option<String>,
    token: SecretString,
    #[serde(default)]
    broadcast_channels: Vec<String>,
    #[serde(default)]
    broadcast_routes: Vec<RawRoute>,
    username: Option<String>,
    concurrency_limit: Option<Positive>,
    throttle_interval: Option<FixedDuration>,
    api_url: Option<HttpUrl>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with a channel and an optional origin and topic")]
struct RawRoute {
    origin: Option<String>,
    topic: Option<String>,
    channel: Channels,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a channel (string) or a list of channels")]
enum Channels {
    One(String),
    Many(Vec<String>),
}

/// The Slack processors' configurations from `notifications.processors` (empty without a
/// `slack` key). Errors name the key.
pub fn slack_configs(processors: &Value) -> Result<Vec<SlackConfig>, ConfigError> {
    let raw = match processors.get("slack") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => value.clone(),
    };
    let entries: Vec<RawSlack> = parse_at(raw, KEY)?;
    let mut configs: Vec<SlackConfig> = Vec::with_capacity(entries.len());
    for (i, raw) in entries.into_iter().enumerate() {
        let name = match raw.name {
            Some(name) if name.trim().is_empty() => {
                return Err(ConfigError::invalid(
                    &format!("{KEY}[{i}].name"),
                    "must not be empty",
                ));
            }
            Some(name) => name,
            None if i == 0 => SLACK_CHANNEL.to_owned(),
            None => format!("{SLACK_CHANNEL}-{}", i + 1),
        };
        if configs.iter().any(|c| c.name == name) {
            return Err(ConfigError::invalid(
                &format!("{KEY}[{i}].name"),
                format!("{name:?} is the name of an earlier entry; each needs its own"),
            ));
        }
        if raw.token.0.trim().is_empty() {
            return Err(ConfigError::invalid(
                &format!("{KEY}[{i}].token"),
                "must not be empty",
            ));
        }
        let mut api_url = raw.api_url.map_or_else(
            || Url::parse(DEFAULT_API_URL).expect("the default URL is valid"),
            |u| u.0,
        );
        // Methods are joined onto it: `<apiUrl>/chat.postMessage`.
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        configs.push(SlackConfig {
            name,
            token: raw.token.0,
            broadcast_channels: raw.broadcast_channels,
            broadcast_routes: raw
                .broadcast_routes
                .into_iter()
                .map(|r| BroadcastRoute {
                    origin: r.origin,
                    topic: r.topic,
                    channels: match r.channel {
                        Channels::One(c) => vec![c],
                        Channels::Many(c) => c,
                    },
                })
                .collect(),
            username: raw.username,
            concurrency_limit: raw.concurrency_limit.map_or(10, |n| n.0),
            throttle_interval: raw
                .throttle_interval
                .map_or(Duration::from_secs(60), |d| d.0)
                .max(Duration::from_millis(1)),
            api_url,
        });
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Vec<SlackConfig>, String> {
        slack_configs(&json!({ "slack": v })).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_names_and_routes() {
        assert!(slack_configs(&Value::Null).unwrap().is_empty());
        let configs = parse(json!([
            {"token": "xoxb-1", "broadcastRoutes": [
                {"origin": "plugin:a", "channel": "C1"},
                {"topic": "t", "channel": ["C2", "C3"]}
            ]},
            {"token": "xoxb-2", "apiUrl": "http://127.0.0.1:9/api", "throttleInterval": "2s",
             "concurrencyLimit": 3, "username": "bot", "broadcastChannels": ["C9"]},
            {"token": "xoxb-3", "name": "Slack-ops"}
        ]))
        .unwrap();
        assert_eq!(configs[0].name, "SlackNotificationProcessor");
        assert_eq!(configs[0].concurrency_limit, 10);
        assert_eq!(configs[0].throttle_interval, Duration::from_secs(60));
        assert_eq!(configs[0].api_url.as_str(), "https://slack.com/api/");
        assert_eq!(configs[0].broadcast_routes[1].channels, ["C2", "C3"]);
        assert_eq!(configs[1].name, "SlackNotificationProcessor-2");
        assert_eq!(configs[1].api_url.as_str(), "http://127.0.0.1:9/api/");
        assert_eq!(configs[1].throttle_interval, Duration::from_secs(2));
        assert_eq!(configs[1].concurrency_limit, 3);
        assert_eq!(configs[2].name, "Slack-ops");
        assert!(
            !format!("{:?}", configs[0]).contains("xoxb"),
            "token hidden"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse(json!([{"username": "x"}])).unwrap_err();
        assert!(err.contains("notifications.processors.slack[0]"), "{err}");
        assert!(err.contains("token"), "{err}");
        let err = parse(json!([{"token": 5}])).unwrap_err();
        assert!(
            err.starts_with("invalid configuration at notifications.processors.slack[0].token"),
            "{err}"
        );
        let err = parse(json!([{"token": "t", "broadcastRoutes": [{"origin": "o"}]}])).unwrap_err();
        assert!(
            err.contains("notifications.processors.slack[0].broadcastRoutes[0]"),
            "{err}"
        );
        let err =
            parse(json!([{"token": "t", "name": "A"}, {"token": "u", "name": "A"}])).unwrap_err();
        assert!(err.contains("slack[1].name"), "{err}");
        let err = parse(json!({"token": "t"})).unwrap_err();
        assert!(err.contains("notifications.processors.slack"), "{err}");
        let err = parse(json!([{"token": "t", "apiUrl": "ftp://x"}])).unwrap_err();
        assert!(err.contains("slack[0].apiUrl"), "{err}");
    }
}
