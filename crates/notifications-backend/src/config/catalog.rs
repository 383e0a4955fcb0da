//! `notifications.catalog`: where groups, owners and users' e-mail addresses come from: entity
//! files read by this service (the default), or a Backstage catalog over HTTP (`remote`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};
use url::Url;

use super::coerce::{HttpUrl, Positive, default_from_fields, int, optional_secret, secs, via};
use super::duration::{AtLeast, FixedDuration};
use super::secret::Secret;

// `remote = "Self"`: the derived reader, to which `Deserialize` below adds the check across
// fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", expecting = "a map")]
pub struct CatalogConfig {
    /// `notifications.catalog.files`: entity YAML files (`catalog-info.yaml` form), relative to
    /// the working directory. None: only user refs reach anybody.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// `notifications.catalog.reloadInterval`: how often the files are checked for changes (a
    /// check more often than every 100 ms is pointless).
    #[serde(default = "secs::<5>", deserialize_with = "via::<AtLeast<100>, _>")]
    pub reload_interval: Duration,
    /// `notifications.catalog.remote`: a Backstage catalog instead of files.
    #[serde(default)]
    pub remote: Option<RemoteCatalogConfig>,
}

impl<'de> Deserialize<'de> for CatalogConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let config = Self::deserialize(deserializer)?;
        if config.remote.is_some() && !config.files.is_empty() {
            return Err(de::Error::custom(
                "files and remote exclude each other: choose one catalog",
            ));
        }
        Ok(config)
    }
}

/// A Backstage catalog backend reached over HTTP.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct RemoteCatalogConfig {
    /// `baseUrl`, e.g. `https://backstage.example.com/api/catalog`; `None`: where discovery
    /// says the `catalog` plugin is.
    #[serde(default, deserialize_with = "via::<Option<HttpUrl>, _>")]
    pub base_url: Option<Url>,
    /// `token`: sent as `Authorization: Bearer`; a static `externalAccess` token of the
    /// Backstage deployment, say. Empty: none.
    #[serde(default, deserialize_with = "optional_secret")]
    pub token: Option<Secret<String>>,
    /// `timeout`: for each catalog request, connection included.
    #[serde(default = "secs::<5>", deserialize_with = "via::<AtLeast<1>, _>")]
    pub timeout: Duration,
    /// `cacheTtl`: how long an answer (an entity, or its absence) is reused.
    #[serde(default = "secs::<60>", deserialize_with = "via::<FixedDuration, _>")]
    pub cache_ttl: Duration,
    /// `cacheSize`: at most this many entities are kept.
    #[serde(default = "int::<10000>", deserialize_with = "via::<Positive, _>")]
    pub cache_size: u32,
}

default_from_fields!(CatalogConfig, RemoteCatalogConfig);

/// `catalog`, Backstage's catalog plugin's section: its `locations` of `type: file` are entity
/// files for the embedded catalog too, so that an existing app-config gives the same
/// recipients. Its other keys are the catalog plugin's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a map")]
pub struct BackstageCatalogConfig {
    /// `catalog.locations`.
    pub locations: Vec<CatalogLocation>,
}

/// A `catalog.locations` entry; its `rules` are the catalog plugin's.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(expecting = "a map with type and target")]
pub struct CatalogLocation {
    /// `type`: `file`, `url`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `target`: for `file`, a path; relative ones are relative to the working directory, as
    /// Backstage resolves them (`path.resolve`).
    pub target: String,
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

    #[test]
    fn backstage_catalog_locations_are_read_and_the_rest_of_catalog_left_alone() {
        let config = Config::from_yaml_str(concat!(
            "catalog:\n  rules: [{allow: [Component]}]\n",
            "  providers: {github: {org: {token: '${UNSET_TOKEN}'}}}\n",
            "  locations:\n",
            "    - {type: file, target: ../../examples/org.yaml, rules: [{allow: [User]}]}\n",
            "    - {type: url, target: 'https://example.com/all.yaml'}\n",
        ))
        .unwrap();
        assert_eq!(
            config.catalog.locations,
            [
                CatalogLocation {
                    kind: "file".into(),
                    target: "../../examples/org.yaml".into()
                },
                CatalogLocation {
                    kind: "url".into(),
                    target: "https://example.com/all.yaml".into()
                },
            ]
        );
        assert_eq!(
            Config::from_yaml_str("catalog: {locations: [{type: file}]}")
                .unwrap_err()
                .to_string(),
            "invalid configuration at catalog.locations[0]: missing field `target`"
        );
    }
}
