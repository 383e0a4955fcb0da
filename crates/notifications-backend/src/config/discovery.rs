//! `discovery`: where other Backstage plugins are reached, with the semantics of Backstage's
//! `HostDiscovery`: `<backend.baseUrl>/api/<pluginId>` unless an entry of `discovery.endpoints`
//! names the plugin (or `*`). A later entry wins over an earlier one for the same plugin.
//!
//! Only internal URLs are resolved (this service calls plugins, it hands no URLs to browsers):
//! a target `{internal, external}` contributes its `internal` part, and none without one.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::coerce::parse_http_url;
use super::error::ConfigError;

/// Any plugin not named by an entry of its own.
const ANY_PLUGIN: &str = "*";
/// Stands for a plugin id when a target is checked at load time.
const SAMPLE_PLUGIN_ID: &str = "plugin-id";

/// Resolves plugin ids to base URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// `<backend.baseUrl without trailing slashes>/api/{{pluginId}}`
    fallback: String,
    /// Plugin id (or `*`) → URL template.
    targets: BTreeMap<String, String>,
}

impl Discovery {
    /// The discovery of a configuration without `discovery.endpoints`.
    pub fn new(backend_base_url: &Url) -> Self {
        Self {
            fallback: format!(
                "{}/api/{{{{pluginId}}}}",
                backend_base_url.as_str().trim_end_matches('/')
            ),
            targets: BTreeMap::new(),
        }
    }

    /// The base URL of a plugin's API, e.g. `http://localhost:7007/api/catalog`.
    ///
    /// Every target was checked at load time with a well-formed plugin id (`[a-z0-9_-]`, as
    /// Backstage's ids are). An id that still makes no URL (odd characters where a template puts
    /// the id in the host name) gets the `backend.baseUrl` fallback.
    pub fn base_url(&self, plugin_id: &str) -> Url {
        let template = self
            .targets
            .get(plugin_id)
            .or_else(|| self.targets.get(ANY_PLUGIN))
            .unwrap_or(&self.fallback);
        Url::parse(&substitute(template, plugin_id)).unwrap_or_else(|_| {
            #[expect(
                clippy::expect_used,
                reason = "the fallback is a valid URL with an encoded id in its path"
            )]
            Url::parse(&substitute(&self.fallback, plugin_id))
                .expect("a valid base URL with an encoded id in its path is a URL")
        })
    }
}

/// `discovery` as written.
#[derive(Default, Deserialize)]
#[serde(default, expecting = "a map")]
pub(super) struct RawDiscovery {
    endpoints: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(expecting = "a map with target and plugins")]
struct RawEndpoint {
    target: Target,
    plugins: Vec<String>,
}

/// A URL template, or `{internal, external}` of which only `internal` matters here.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "a URL string, or a map with internal and/or external"
)]
enum Target {
    Both(String),
    Split { internal: Option<String> },
}

impl RawDiscovery {
    /// `key` is where this section sits (`discovery`).
    pub(super) fn into_discovery(
        self,
        key: &str,
        backend_base_url: &Url,
    ) -> Result<Discovery, ConfigError> {
        let mut discovery = Discovery::new(backend_base_url);
        for (i, endpoint) in self.endpoints.into_iter().enumerate() {
            let target_key = format!("{key}.endpoints[{i}].target");
            let (template, template_key) = match endpoint.target {
                Target::Both(url) => (url, target_key),
                Target::Split {
                    internal: Some(url),
                } => (url, format!("{target_key}.internal")),
                Target::Split { internal: None } => continue,
            };
            check_template(&template, &template_key)?;
            for plugin in endpoint.plugins {
                discovery.targets.insert(plugin, template.clone());
            }
        }
        Ok(discovery)
    }
}

/// A template must give an http(s) URL once a plugin id is put in.
fn check_template(template: &str, key: &str) -> Result<(), ConfigError> {
    if template.contains("+srv://") {
        return Err(ConfigError::invalid(
            key,
            format!("SRV targets are not supported, got {template:?}; give an http or https URL"),
        ));
    }
    parse_http_url(template, &substitute(template, SAMPLE_PLUGIN_ID))
        .map(drop)
        .map_err(|message| ConfigError::invalid(key, message))
}

/// Replaces every `{{pluginId}}` (spaces allowed inside the braces) with the URI-component
/// encoded id, as Backstage does.
fn substitute(template: &str, plugin_id: &str) -> String {
    let encoded = encode_uri_component(plugin_id);
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let inner = after.trim_start();
        match inner
            .strip_prefix("pluginId")
            .map(str::trim_start)
            .and_then(|s| s.strip_prefix("}}"))
        {
            Some(tail) => {
                out.push_str(&encoded);
                rest = tail;
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn discovery(yaml: &str) -> Result<super::Discovery, String> {
        Config::from_yaml_str(yaml)
            .map(|config| config.discovery)
            .map_err(|err| err.to_string())
    }

    fn url(yaml: &str, plugin: &str) -> String {
        discovery(yaml).unwrap().base_url(plugin).to_string()
    }

    #[test]
    fn plugins_live_under_the_backend_base_url_by_default() {
        assert_eq!(url("", "catalog"), "http://localhost:7007/api/catalog");
        assert_eq!(
            url(
                "backend: {baseUrl: 'https://backstage.example.com/'}",
                "auth"
            ),
            "https://backstage.example.com/api/auth"
        );
        assert_eq!(
            url(
                "backend: {baseUrl: 'https://example.com/backstage'}",
                "auth"
            ),
            "https://example.com/backstage/api/auth"
        );
    }

    #[test]
    fn endpoints_override_per_plugin_then_star() {
        let yaml = r#"
backend: {baseUrl: 'http://backstage:7007'}
discovery:
  endpoints:
    - target: 'http://internal.example.com/secure/api/{{ pluginId }}'
      plugins: ['*']
    - target: 'http://catalog.example.com/api'
      plugins: [catalog]
    - target: {internal: 'http://{{pluginId}}-backend:7007/api/{{pluginId}}', external: 'https://x'}
      plugins: [auth, search]
    - target: {external: 'https://public.example.com/api/{{pluginId}}'}
      plugins: [scaffolder]
    - target: 'http://search.example.com/{{pluginId}}'
      plugins: [search]
"#;
        assert_eq!(url(yaml, "catalog"), "http://catalog.example.com/api");
        assert_eq!(url(yaml, "auth"), "http://auth-backend:7007/api/auth");
        assert_eq!(url(yaml, "search"), "http://search.example.com/search");
        assert_eq!(
            url(yaml, "scaffolder"),
            "http://internal.example.com/secure/api/scaffolder",
            "an external-only target leaves the internal resolution alone"
        );
        assert_eq!(
            url(yaml, "my plugin"),
            "http://internal.example.com/secure/api/my%20plugin"
        );
    }

    #[test]
    fn bad_endpoints_name_the_key() {
        let err = |yaml: &str| discovery(yaml).unwrap_err();
        assert_eq!(
            err("discovery: {endpoints: [{target: 'ftp://x/{{pluginId}}', plugins: [a]}]}"),
            "invalid configuration at discovery.endpoints[0].target: expected an http or https URL, got \"ftp://x/{{pluginId}}\""
        );
        assert!(
            err("discovery: {endpoints: [{target: {internal: '/api'}, plugins: [a]}]}")
                .starts_with(
                    "invalid configuration at discovery.endpoints[0].target.internal: invalid URL"
                )
        );
        assert!(
            err("discovery: {endpoints: [{target: {internal: 'http+srv://x/api'}, plugins: [a]}]}")
                .contains("SRV targets are not supported")
        );
        assert_eq!(
            err("discovery: {endpoints: [{target: 'http://x'}]}"),
            "invalid configuration at discovery.endpoints[0]: missing field `plugins`"
        );
        assert!(
            err("discovery: {endpoints: [{target: 5, plugins: [a]}]}")
                .starts_with("invalid configuration at discovery.endpoints[0].target: ")
        );
    }
}
