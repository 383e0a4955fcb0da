//! Where entities come from when a send names groups or owned entities.
//!
//! The embedded catalog reads Backstage entity files (`catalog-info.yaml` form) listed in
//! `notifications.catalog.files` and Backstage's own `catalog.locations` of `type: file`, and
//! reloads them when they change; the remote catalog asks a Backstage catalog over HTTP
//! (`notifications.catalog.remote`).

mod embedded;
mod entity_file;
mod load;
mod remote;

pub use embedded::EmbeddedCatalog;
pub use remote::RemoteCatalog;

use std::path::PathBuf;
use std::sync::Arc;

use notifications_node::Catalog;
use tokio::task::JoinHandle;

use crate::config::{CatalogLocation, Config};

/// The configured catalog (remote, or the embedded files, possibly none), and the task that
/// reloads the files. The error says what is wrong with which file.
pub async fn open(config: &Config) -> Result<(Arc<dyn Catalog>, Option<JoinHandle<()>>), String> {
    let catalog = &config.notifications.catalog;
    if let Some(remote) = &catalog.remote {
        let base_url = remote
            .base_url
            .clone()
            .unwrap_or_else(|| config.discovery.base_url("catalog"));
        let remote = RemoteCatalog::new(remote, &base_url).map_err(|e| e.to_string())?;
        tracing::info!(
            url = remote.loggable_url(),
            "entities come from a Backstage catalog"
        );
        if !config.catalog.locations.is_empty() {
            tracing::info!(
                "catalog.locations is not read: entities come from notifications.catalog.remote"
            );
        }
        return Ok((Arc::new(remote), None));
    }
    let mut files = catalog.files.clone();
    files.extend(location_files(&config.catalog.locations));
    let loaded = files.clone();
    let embedded = tokio::task::spawn_blocking(move || EmbeddedCatalog::load(loaded))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let embedded = Arc::new(embedded);
    let watcher = if files.is_empty() {
        None
    } else {
        tracing::info!(?files, entities = embedded.len(), "catalog loaded");
        Some(embedded.watch(catalog.reload_interval))
    };
    Ok((embedded, watcher))
}

/// The files of Backstage's `catalog.locations`: the `type: file` entries, relative to the
/// working directory as Backstage resolves them. The others are said to be skipped, in one
/// line: the catalog plugin reads them, this service does not.
fn location_files(locations: &[CatalogLocation]) -> Vec<PathBuf> {
    let (files, others): (Vec<_>, Vec<_>) = locations
        .iter()
        .partition(|location| location.kind == "file");
    if !others.is_empty() {
        let skipped: Vec<String> = others
            .iter()
            .map(|location| format!("{} {}", location.kind, location.target))
            .collect();
        tracing::info!(
            ?skipped,
            "catalog.locations: only entries of type file are read for recipients; these are skipped"
        );
    }
    let (globs, files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|location| location.target.contains(['*', '?', '[', '{']));
    if !globs.is_empty() {
        let skipped: Vec<&str> = globs.iter().map(|l| l.target.as_str()).collect();
        tracing::warn!(
            ?skipped,
            "catalog.locations: glob patterns are not supported; these are skipped (list their files in notifications.catalog.files)"
        );
    }
    files
        .into_iter()
        .map(|location| PathBuf::from(&location.target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(kind: &str, target: &str) -> CatalogLocation {
        CatalogLocation {
            kind: kind.into(),
            target: target.into(),
        }
    }

    #[test]
    fn only_file_locations_without_globs_are_read_as_given() {
        let files = location_files(&[
            location("file", "../../examples/org.yaml"),
            location("url", "https://example.com/all.yaml"),
            location("file", "catalog/*.yaml"),
            location("file", "/etc/catalog/users.yaml"),
        ]);
        assert_eq!(
            files,
            [
                PathBuf::from("../../examples/org.yaml"),
                PathBuf::from("/etc/catalog/users.yaml")
            ]
        );
    }
}
