//! `notifications.processors.slack`: an array, one Slack processor per entry (upstream's keys,
//! plus `name` and `apiUrl`).

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;
use url::Url;

use super::coerce::{HttpUrl, Positive, int, secs, via};
use super::duration::AtLeast;
use super::error::{ConfigError, parse_at};
use super::secret::Secret;

/// The channel id (and processor name) of the first entry, as upstream names every entry.
pub const SLACK_CHANNEL: &str = "SlackNotificationProcessor";
const KEY: &str = "notifications.processors.slack";

/// One entry of `notifications.processors.slack`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map with a token")]
pub struct SlackConfig {
    /// `name` (ours): the processor's name and settings channel. Default: `SlackNotificationProcessor`
    /// for the first entry, `SlackNotificationProcessor-<n>` for the n-th (n ≥ 2).
    #[serde(default, deserialize_with = "not_blank")]
    pub name: String,
    /// `token`: the bot token.
    #[serde(deserialize_with = "token")]
    pub token: Secret<String>,
    /// `broadcastChannels` (deprecated upstream): broadcasts that match no route go here.
    #[serde(default)]
    pub broadcast_channels: Vec<String>,
    /// `broadcastRoutes`.
    #[serde(default)]
    pub broadcast_routes: Vec<BroadcastRoute>,
    /// `username`: posts under this name (needs the `chat:write.customize` scope).
    #[serde(default)]
    pub username: Option<String>,
    /// `concurrencyLimit` calls to Slack per `throttleInterval`.
    #[serde(default = "int::<10>", deserialize_with = "via::<Positive, _>")]
    pub concurrency_limit: u32,
    #[serde(default = "secs::<60>", deserialize_with = "via::<AtLeast<1>, _>")]
    pub throttle_interval: Duration,
    /// `apiUrl` (ours): Slack's Web API, `https://slack.com/api` by default. It ends with `/`:
    /// methods are joined onto it (`<apiUrl>/chat.postMessage`).
    #[serde(default = "slack_api", deserialize_with = "api_url")]
    pub api_url: Url,
}

/// An entry of `broadcastRoutes`: broadcasts of this origin and/or topic go to `channels`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(expecting = "a map with a channel and an optional origin and topic")]
pub struct BroadcastRoute {
    pub origin: Option<String>,
    pub topic: Option<String>,
    #[serde(rename = "channel", deserialize_with = "channels")]
    pub channels: Vec<String>,
}

fn not_blank<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if name.trim().is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(name)
}

fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
    let token = Secret::<String>::deserialize(d)?;
    if token.trim().is_empty() {
        return Err(de::Error::custom("must not be empty"));
    }
    Ok(token)
}

#[expect(clippy::expect_used, reason = "a constant, checked by the tests")]
fn slack_api() -> Url {
    Url::parse("https://slack.com/api/").expect("the default URL is valid")
}

fn api_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let mut url = HttpUrl::deserialize(d)?.0;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn channels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a channel (string) or a list of channels")]
    enum Channels {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Channels::deserialize(d)? {
        Channels::One(c) => vec![c],
        Channels::Many(c) => c,
    })
}

/// The Slack processors' configurations from `notifications.processors` (empty without a
/// `slack` key). Errors name the key.
pub fn slack_configs(processors: &Value) -> Result<Vec<SlackConfig>, ConfigError> {
    let raw = match processors.get("slack") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(value) => value.clone(),
    };
    let mut configs: Vec<SlackConfig> = parse_at(raw, KEY)?;
    let mut seen: Vec<&str> = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter_mut().enumerate() {
        if config.name.is_empty() {
            config.name = match i {
                0 => SLACK_CHANNEL.to_owned(),
                _ => format!("{SLACK_CHANNEL}-{}", i + 1),
            };
        }
    }
    for (i, config) in configs.iter().enumerate() {
        let name = &config.name;
        if seen.contains(&name.as_str()) {
            return Err(ConfigError::invalid(
                &format!("{KEY}[{i}].name"),
                format!("{name:?} is the name of an earlier entry; each needs its own"),
            ));
        }
        seen.push(name);
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
