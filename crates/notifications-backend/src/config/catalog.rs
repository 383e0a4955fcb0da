//! `notifications.catalog`: where groups, owners and users' e-mail addresses come from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::FixedDuration;

/// The embedded catalog: Backstage entity files read by this service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogConfig {
    /// `notifications.catalog.files`: entity YAML files (`catalog-info.yaml` form), relative to
    /// the working directory. None: only user refs reach anybody.
    pub files: Vec<PathBuf>,
    /// `notifications.catalog.reloadInterval`: how often the files are checked for changes.
    pub reload_interval: Duration,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            reload_interval: Duration::from_secs(5),
        }
    }
}

/// `notifications.catalog` as written.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
pub(super) struct RawCatalog {
    files: Vec<PathBuf>,
    reload_interval: Option<FixedDuration>,
}

impl From<RawCatalog> for CatalogConfig {
    fn from(raw: RawCatalog) -> Self {
        let defaults = Self::default();
        Self {
            files: raw.files,
            reload_interval: raw
                .reload_interval
                .map_or(defaults.reload_interval, |d| d.0)
                // Zero would spin; a reload check more often than this is pointless.
                .max(Duration::from_millis(100)),
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
            }
        );
        assert_eq!(
            catalog("notifications: {catalog: {files: users.yaml}}").unwrap_err(),
            "invalid configuration at notifications.catalog.files: invalid type: string \"users.yaml\", expected a sequence"
        );
    }
}
