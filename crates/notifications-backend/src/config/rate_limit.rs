//! `backend.rateLimit`, as Backstage's backend reads it: `true` for the defaults, or a map of
//! `window`, `incomingRequestLimit`, `ipAllowList`, `skipSuccessfulRequests`,
//! `skipFailedRequests`, with `global` and per-plugin (`plugin.<id>`) rules. Counts live in this
//! process's memory (`store: {type: memory}`); Redis is refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::coerce::{Bool, Positive, secs, via};
use super::duration::FixedDuration;
use super::error::{ConfigError, parse_at};

/// The plugins this service serves: their `plugin.<id>` rules apply to their routes.
const RATE_LIMITED_PLUGINS: [&str; 2] = ["notifications", "signals"];

/// The limits in force. Without `backend.rateLimit` there are none, as in Backstage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The rule for every request (but health and metrics); `None` with `global: false`.
    pub global: Option<RateLimitRule>,
    /// `plugin.notifications` and `plugin.signals`, counted apart from the global rule.
    pub plugins: BTreeMap<String, RateLimitRule>,
}

/// One limiter: at most `limit` requests per caller in each `window`, which starts at the
/// caller's first request (express-rate-limit's memory store).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct RateLimitRule {
    #[serde(default = "secs::<60>", deserialize_with = "window")]
    pub window: Duration,
    #[serde(
        rename = "incomingRequestLimit",
        default = "five",
        deserialize_with = "via::<Positive, _>"
    )]
    pub limit: u32,
    /// Clients at these addresses are never limited (by default the loopback ones).
    #[serde(default = "loopback", deserialize_with = "addresses")]
    pub ip_allow_list: Vec<IpAddr>,
    /// Answers below 400 do not count.
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    pub skip_successful_requests: bool,
    /// Answers of 400 and above do not count.
    #[serde(default, deserialize_with = "via::<Bool, _>")]
    pub skip_failed_requests: bool,
    // `passOnStoreError` is accepted and has no use: the memory store cannot fail.
}

/// A zero window would limit nothing (every request opens a new one), and the counts' cache
/// refuses a time to live beyond 1,000 years: both are configuration errors.
fn window<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);
    let window = FixedDuration::deserialize(deserializer)?.0;
    if window.is_zero() {
        return Err(serde::de::Error::custom("must be longer than zero"));
    }
    if window > LONGEST {
        return Err(serde::de::Error::custom("must be at most 365 days"));
    }
    Ok(window)
}

fn five() -> u32 {
    5
}

fn loopback() -> Vec<IpAddr> {
    vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
}

fn addresses<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpAddr>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|a| {
            // Peers are compared in canonical form: `::ffff:10.0.0.1` is 10.0.0.1.
            a.trim()
                .parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| serde::de::Error::custom(format!("{a:?} is not an IP address")))
        })
        .collect()
}

impl Default for RateLimitRule {
    fn default() -> Self {
        Self {
            window: secs::<60>(),
            limit: five(),
            ip_allow_list: loopback(),
            skip_successful_requests: false,
            skip_failed_requests: false,
        }
    }
}

/// The keys beside the rule's own.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct Scopes {
    /// Checked only: memory is the one store.
    #[serde(rename = "store")]
    _store: Option<Store>,
    #[serde(default = "yes", deserialize_with = "via::<Bool, _>")]
    global: bool,
    #[serde(default)]
    plugin: BTreeMap<String, Value>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    expecting = "a map with type: memory"
)]
enum Store {
    Memory,
}

/// `backend.rateLimit` at `key`.
pub(super) fn read(value: Option<Value>, key: &str) -> Result<RateLimitConfig, ConfigError> {
    let value = match value {
        None | Some(Value::Null | Value::Bool(false)) => return Ok(RateLimitConfig::default()),
        Some(Value::Bool(true)) => {
            return Ok(RateLimitConfig {
                global: Some(RateLimitRule::default()),
                plugins: BTreeMap::new(),
            });
        }
        Some(value) => value,
    };
    if value.pointer("/store/type").and_then(Value::as_str) == Some("redis") {
        return Err(ConfigError::invalid(
            &format!("{key}.store"),
            "Redis is not supported: counts are kept in this process's memory (type: memory)",
        ));
    }
    let mut map = value.clone();
    if let Some(map) = map.as_object_mut() {
        map.remove("plugin");
    }
    let scopes: Scopes = parse_at(value, key)?;
    let global = if scopes.global {
        Some(parse_at(map, key)?)
    } else {
        None
    };
    let mut plugins = BTreeMap::new();
    // Other plugins' rules in a shared app-config are theirs.
    for (plugin, rule) in scopes.plugin {
        if RATE_LIMITED_PLUGINS.contains(&plugin.as_str()) {
            let rule = parse_at(rule, &format!("{key}.plugin.{plugin}"))?;
            plugins.insert(plugin, rule);
        }
    }
    Ok(RateLimitConfig { global, plugins })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn read(yaml: &str) -> Result<RateLimitConfig, String> {
        Config::from_yaml_str(&format!("backend: {{rateLimit: {yaml}}}"))
            .map(|config| config.backend.rate_limit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_backstage_defaults_with_true() {
        assert_eq!(
            Config::default().backend.rate_limit,
            RateLimitConfig::default()
        );
        assert_eq!(RateLimitConfig::default().global, None);
        let rule = read("true").unwrap().global.unwrap();
        assert_eq!(rule.window, Duration::from_secs(60));
        assert_eq!(rule.limit, 5);
        assert_eq!(rule.ip_allow_list, loopback());
        assert!(!rule.skip_successful_requests && !rule.skip_failed_requests);
    }

    #[test]
    fn a_map_sets_the_global_rule_and_this_service_plugins() {
        let config = read(
            "{window: {minutes: 2}, incomingRequestLimit: '10', ipAllowList: ['10.0.0.1', \
             '0:0:0:0:0:0:0:1'], skipFailedRequests: true, passOnStoreError: true, \
             store: {type: memory}, plugin: {notifications: {incomingRequestLimit: 3}, \
             catalog: {incomingRequestLimit: x}}}",
        )
        .unwrap();
        let global = config.global.unwrap();
        assert_eq!(global.window, Duration::from_secs(120));
        assert_eq!(global.limit, 10);
        assert_eq!(
            global.ip_allow_list,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                Ipv6Addr::LOCALHOST.into()
            ]
        );
        assert!(global.skip_failed_requests);
        // Other plugins' rules are theirs, even malformed.
        assert_eq!(config.plugins.keys().collect::<Vec<_>>(), ["notifications"]);
        assert_eq!(config.plugins["notifications"].limit, 3);
        let config = read("{global: false, plugin: {signals: {window: 1000}}}").unwrap();
        assert_eq!(config.global, None);
        assert_eq!(config.plugins["signals"].window, Duration::from_secs(1));
    }

    #[test]
    fn windows_of_zero_or_beyond_a_year_are_refused() {
        for (window, reason) in [
            ("0", "must be longer than zero"),
            ("{weeks: 60000}", "must be at most 365 days"),
        ] {
            let error = read(&format!("{{window: {window}}}")).unwrap_err();
            assert!(error.contains("backend.rateLimit.window"), "{error}");
            assert!(error.contains(reason), "{error}");
        }
        let mapped = read("{ipAllowList: ['::ffff:10.0.0.1']}").unwrap();
        assert_eq!(
            mapped.global.unwrap().ip_allow_list,
            vec!["10.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn errors_name_the_key() {
        assert!(
            read("{store: {type: redis, connection: 'redis://x'}}")
                .unwrap_err()
                .starts_with(
                    "invalid configuration at backend.rateLimit.store: Redis is not supported"
                )
        );
        assert!(
            read("{ipAllowList: [localhost]}")
                .unwrap_err()
                .contains("backend.rateLimit.ipAllowList: \"localhost\" is not an IP address")
        );
        assert!(
            read("{incomingRequestLimit: 0}")
                .unwrap_err()
                .starts_with("invalid configuration at backend.rateLimit.incomingRequestLimit")
        );
        assert!(
            read("{plugin: {notifications: {window: 1 fortnight}}}")
                .unwrap_err()
                .starts_with(
                    "invalid configuration at backend.rateLimit.plugin.notifications.window"
                )
        );
    }
}
