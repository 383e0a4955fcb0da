//! The embedded catalog: entity files read by this service, reloaded when they change.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use notifications_common::EntityRef;
use notifications_node::{Catalog, CatalogEntity, CatalogError};
use tokio::task::JoinHandle;

use super::load::{self, Entities, LoadError, Stamp};

pub struct EmbeddedCatalog {
    files: Vec<PathBuf>,
    entities: RwLock<Arc<Entities>>,
    /// The files the last load read, as they were then.
    watched: Mutex<Vec<(PathBuf, Stamp)>>,
}

impl std::fmt::Debug for EmbeddedCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCatalog")
            .field("files", &self.files)
            .field("entities", &self.snapshot().len())
            .finish()
    }
}

impl EmbeddedCatalog {
    /// Reads `files` (blocking); any unreadable or invalid file is an error.
    pub fn load(files: Vec<PathBuf>) -> Result<Self, LoadError> {
        let loaded = load::load(&files);
        let entities = loaded.result?;
        Ok(Self {
            files,
            entities: RwLock::new(Arc::new(entities)),
            watched: Mutex::new(loaded.files),
        })
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    fn snapshot(&self) -> Arc<Entities> {
        self.entities
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the files again if any of them changed since the last load (blocking). A load that
    /// fails keeps the entities in use and is logged; it is tried again on the next change.
    pub fn reload_if_changed(&self) -> bool {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if watched
            .iter()
            .all(|(path, before)| load::stamp(path) == *before)
        {
            return false;
        }
        let loaded = load::load(&self.files);
        *watched = loaded.files;
        match loaded.result {
            Ok(entities) => {
                tracing::info!(entities = entities.len(), "catalog files changed: reloaded");
                *self
                    .entities
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(entities);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "catalog files changed but cannot be loaded; keeping the previous entities");
                false
            }
        }
    }

    /// Checks the files for changes every `interval`.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let catalog = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let catalog = catalog.clone();
                if let Err(e) =
                    tokio::task::spawn_blocking(move || catalog.reload_if_changed()).await
                {
                    tracing::error!(error = %e, "catalog reload failed");
                }
            }
        })
    }
}

#[async_trait]
impl Catalog for EmbeddedCatalog {
    async fn entities_by_refs(
        &self,
        refs: &[EntityRef],
    ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
        let entities = self.snapshot();
        Ok(refs
            .iter()
            .map(|r| entities.get(&r.canonical()).cloned())
            .collect())
    }

    async fn users(&self) -> Result<Vec<Arc<CatalogEntity>>, CatalogError> {
        let mut users: Vec<Arc<CatalogEntity>> = self
            .snapshot()
            .values()
            .filter(|e| e.entity_ref.is_kind("user"))
            .cloned()
            .collect();
        users.sort_by_key(|e| e.entity_ref.canonical());
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> String {
        format!("apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {{name: {name}}}\n")
    }

    async fn has(catalog: &EmbeddedCatalog, r: &str) -> bool {
        catalog
            .entities_by_refs(&[EntityRef::parse(r).unwrap()])
            .await
            .unwrap()[0]
            .is_some()
    }

    #[tokio::test]
    async fn reloads_changed_files_and_keeps_the_last_good_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.yaml");
        std::fs::write(&file, user("a")).unwrap();
        let catalog = EmbeddedCatalog::load(vec![file.clone()]).unwrap();
        assert!(has(&catalog, "user:default/a").await);
        assert!(!catalog.reload_if_changed(), "nothing changed");

        std::fs::write(&file, format!("{}---\n{}", user("a"), user("bb"))).unwrap();
        assert!(catalog.reload_if_changed());
        assert!(has(&catalog, "user:default/bb").await);

        std::fs::write(&file, "kind: [broken\n").unwrap();
        assert!(!catalog.reload_if_changed());
        assert!(
            has(&catalog, "user:default/bb").await,
            "the last good load stays"
        );
        assert!(
            !catalog.reload_if_changed(),
            "a broken file is not retried until it changes"
        );

        std::fs::write(&file, user("ccc")).unwrap();
        assert!(catalog.reload_if_changed());
        assert!(has(&catalog, "user:default/ccc").await && !has(&catalog, "user:default/a").await);
    }
}
