//! `notifications.catalog`: where groups, owners and users' e-mail addresses come from: entity
//! files read by this service (the default), or a Backstage catalog over HTTP (`remote`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::coerce::{HttpUrl, Positive, SecretString};
use super::duration::FixedDuration;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawCatalog")]
pub struct CatalogConfig {
    /// `notifications.catalog.files`: entity YAML files (`catalog-info.yaml` form), relative to
    /// the working directory. None: only user refs reach anybody.
    pub files: Vec<PathBuf>,
    /// `notifications.catalog.reloadInterval`: how often the files are checked for changes.
    pub reload_interval: Duration,
    /// `notifications.catalog.remote`: a Backstage catalog instead of files.
    pub remote: Option<RemoteCatalogConfig>,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            reload_interval: Duration::from_secs(5),
            remote: None,
        }
    }
}

/// A Backstage catalog backend reached over HTTP.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteCatalogConfig {
    /// `baseUrl`, e.g. `https://backstage.example.com/api/catalog`; `None`: where discovery
    /// says the `catalog` plugin is.
    pub base_url: Option<Url>,
    /// `token`: sent as `Authorization: Bearer`; a static `externalAccess` token of the
    /// Backstage deployment, say.
    pub token: Option<String>,
    /// `timeout`: for each catalog request, connection included.
    pub timeout: Duration,
    /// `cacheTtl`: how long an answer (an entity, or its absence) is reused.
    pub cache_ttl: Duration,
    /// `cacheSize`: at most this many entities are kept.
    pub cache_size: u32,
}

impl Default for RemoteCatalogConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            token: None,
            timeout: Duration::from_secs(5),
            cache_ttl: Duration::from_secs(60),
            cache_size: 10_000,
        }
    }
}

impl fmt::Debug for RemoteCatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCatalogConfig")
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_size", &self.cache_size)
            .finish()
    }
}

/// `notifications.catalog` as written.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
struct RawCatalog {
    files: Vec<PathBuf>,
    reload_interval: Option<FixedDuration>,
    remote: Option<RawRemote>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
struct RawRemote {
    base_url: Option<HttpUrl>,
    token: Option<SecretString>,
    timeout: Option<FixedDuration>,
    cache_ttl: Option<FixedDuration>,
    cache_size: Option<Positive>,
}

impl TryFrom<RawCatalog> for CatalogConfig {
    type Error = String;

    fn try_from(raw: RawCatalog) -> Result<Self, String> {
        if raw.remote.is_some() && !raw.files.is_empty() {
            return Err("files and remote exclude each other: choose one catalog".into());
        }
        let defaults = Self::default();
        Ok(Self {
            files: raw.files,
            reload_interval: raw
                .reload_interval
                .map_or(defaults.reload_interval, |d| d.0)
                // Zero would spin; a reload check more often than this is pointless.
                .max(Duration::from_millis(100)),
            remote: raw.remote.map(RemoteCatalogConfig::from),
        })
    }
}

impl From<RawRemote> for RemoteCatalogConfig {
    fn from(raw: RawRemote) -> Self {
        let defaults = Self::default();
        Self {
            base_url: raw.base_url.map(|u| u.0),
            token: raw.token.map(|t| t.0).filter(|t| !t.is_empty()),
            timeout: raw
                .timeout
                .map_or(defaults.timeout, |d| d.0)
                .max(Duration::from_millis(1)),
            cache_ttl: raw.cache_ttl.map_or(defaults.cache_ttl, |d| d.0),
            cache_size: raw.cache_size.map_or(defaults.cache_size, |n| n.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn catalog(yaml: &str) -> Result<CatalogConfig, String> {
        Config::from_yaml_str(yaml)
            .map(|c| c.notifications.catalog)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn files_and_reload_interval() {
        assert_eq!(catalog("").unwrap(), CatalogConfig::default());
        assert_eq!(
            catalog("notifications: {catalog: {files: [users.yaml, /etc/groups.yaml], reloadInterval: 30s}}")
                .unwrap(),
            CatalogConfig {
                files: vec!["users.yaml".into(), "/etc/groups.yaml".into()],
                reload_interval: Duration::from_secs(30),
                remote: None,
            }
        );
        assert_eq!(
            catalog("notifications: {catalog: {files: users.yaml}}").unwrap_err(),
            "invalid configuration at notifications.catalog.files: invalid type: string \"users.yaml\", expected a sequence"
        );
    }

    #[test]
    fn remote() {
        let config = catalog(
            "notifications: {catalog: {remote: {baseUrl: 'https://b.example.com/api/catalog', token: s3cret, timeout: 2s, cacheTtl: 5m, cacheSize: 100}}}",
        )
        .unwrap();
        let remote = config.remote.unwrap();
        assert_eq!(
            remote,
            RemoteCatalogConfig {
                base_url: Some(Url::parse("https://b.example.com/api/catalog").unwrap()),
                token: Some("s3cret".into()),
                timeout: Duration::from_secs(2),
                cache_ttl: Duration::from_secs(300),
                cache_size: 100,
            }
        );
        assert!(!format!("{remote:?}").contains("s3cret"));
        assert_eq!(
            catalog("notifications: {catalog: {remote: {}}}")
                .unwrap()
                .remote,
            Some(RemoteCatalogConfig::default())
        );
        assert_eq!(
            catalog("notifications: {catalog: {files: [a.yaml], remote: {}}}").unwrap_err(),
            "invalid configuration at notifications.catalog: files and remote exclude each other: choose one catalog"
        );
        assert!(
            catalog("notifications: {catalog: {remote: {baseUrl: 'ftp://x'}}}")
                .unwrap_err()
                .starts_with("invalid configuration at notifications.catalog.remote.baseUrl: expected an http or https URL")
        );
    }
}
