//! `notifications.web`: how people sign in to the web inbox the binary serves (beyond
//! upstream): one-time links from the command line, and a trusted authenticating proxy.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::coerce::{default_from_fields, secs, via};
use super::duration::AtLeast;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct WebConfig {
    /// `sessionTtl`: how long a sign-in lasts (the session cookie's expiry).
    #[serde(
        default = "secs::<604_800>",
        deserialize_with = "via::<AtLeast<60_000>, _>"
    )]
    pub session_ttl: Duration,
    /// `signInLinkTtl`: how long a link of `token --user ... --link` may be used (once); a
    /// day at most, for a link is a bearer secret until used.
    #[serde(default = "secs::<900>", deserialize_with = "link_ttl")]
    pub sign_in_link_ttl: Duration,
    /// `trustedProxy`: an authenticating proxy in front of the service; none by default.
    #[serde(default)]
    pub trusted_proxy: Option<TrustedProxy>,
}

default_from_fields!(WebConfig);

/// Requests from `addresses` that carry `header` are the user it names (`jane` is
/// `user:default/jane`, as Backstage's oauth2Proxy sign-in resolver reads oauth2-proxy's
/// `X-Forwarded-User`). From any other address, the header is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    expecting = "a map with header and addresses"
)]
pub struct TrustedProxy {
    /// `header`: the header naming the user.
    #[serde(default = "forwarded_user", deserialize_with = "header_name")]
    pub header: String,
    /// `addresses`: the proxy's addresses, or networks (`10.0.0.0/8`); at least one.
    #[serde(deserialize_with = "networks")]
    pub addresses: Vec<IpNet>,
    /// `namespace`: the namespace of the users it names.
    #[serde(default = "default_namespace", deserialize_with = "namespace")]
    pub namespace: String,
}

fn forwarded_user() -> String {
    "X-Forwarded-User".to_owned()
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn link_ttl<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let ttl = via::<AtLeast<60_000>, D>(deserializer)?;
    if ttl > Duration::from_secs(24 * 3600) {
        return Err(de::Error::custom(
            "a sign-in link is valid for a day at most",
        ));
    }
    Ok(ttl)
}

fn header_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    actix_web::http::header::HeaderName::try_from(text.as_str())
        .map(|_| text.clone())
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&text), &"a header name"))
}

fn namespace<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() || text.contains(['/', ':']) || text.len() > 63 {
        return Err(de::Error::invalid_value(
            de::Unexpected::Str(&text),
            &"a namespace name (`default`)",
        ));
    }
    Ok(text)
}

fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    if texts.is_empty() {
        return Err(de::Error::invalid_length(0, &"at least one address"));
    }
    texts
        .iter()
        .map(|t| {
            let t = t.trim();
            t.parse::<IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    de::Error::invalid_value(
                        de::Unexpected::Str(t),
                        &"an IP address or network (10.0.0.0/8)",
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_values() {
        let read = |yaml: &str| Config::from_yaml_str(yaml).map(|c| c.notifications.web);
        let defaults = read("").unwrap();
        assert_eq!(defaults, WebConfig::default());
        assert_eq!(defaults.session_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(defaults.sign_in_link_ttl, Duration::from_secs(900));
        assert_eq!(defaults.trusted_proxy, None);
        let web = read(
            "notifications: {web: {sessionTtl: 8h, signInLinkTtl: 5m, trustedProxy: \
             {addresses: ['127.0.0.1', '10.0.0.0/8', '::1']}}}",
        )
        .unwrap();
        assert_eq!(web.session_ttl, Duration::from_secs(8 * 3600));
        let proxy = web.trusted_proxy.unwrap();
        assert_eq!(proxy.header, "X-Forwarded-User");
        assert_eq!(proxy.namespace, "default");
        assert_eq!(proxy.addresses.len(), 3);
        assert!(proxy.addresses[1].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));
        for bad in [
            "notifications: {web: {trustedProxy: {addresses: []}}}",
            "notifications: {web: {signInLinkTtl: 2d}}",
            "notifications: {web: {trustedProxy: {addresses: ['proxy.internal']}}}",
            "notifications: {web: {trustedProxy: {header: X-User}}}",
            "notifications: {web: {trustedProxy: {header: 'X User', addresses: ['::1']}}}",
            "notifications: {web: {trustedProxy: {namespace: 'a/b', addresses: ['::1']}}}",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
