//! Where entities come from when a send names groups or owned entities.
//!
//! The embedded catalog reads Backstage entity files (`catalog-info.yaml` form) listed in
//! `notifications.catalog.files`, and reloads them when they change; the remote catalog asks a
//! Backstage catalog over HTTP (`notifications.catalog.remote`).

mod embedded;
mod entity_file;
mod load;
mod remote;

pub use embedded::EmbeddedCatalog;
pub use remote::RemoteCatalog;

use std::sync::Arc;

use notifications_node::Catalog;
use tokio::task::JoinHandle;

use crate::config::Config;

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
        return Ok((Arc::new(remote), None));
    }
    let files = catalog.files.clone();
    let embedded = tokio::task::spawn_blocking(move || EmbeddedCatalog::load(files))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let embedded = Arc::new(embedded);
    let watcher = if catalog.files.is_empty() {
        None
    } else {
        tracing::info!(files = ?catalog.files, entities = embedded.len(), "catalog loaded");
        Some(embedded.watch(catalog.reload_interval))
    };
    Ok((embedded, watcher))
}
