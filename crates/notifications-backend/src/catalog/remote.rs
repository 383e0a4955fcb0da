//! A Backstage catalog over HTTP: `POST <catalog>/entities/by-refs` with only the fields
//! notifications need, a bounded cache with a time to live, and timeouts.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use notifications_common::EntityRef;
use notifications_node::{Catalog, CatalogEntity, CatalogError, EntityRelation};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::config::{RemoteCatalogConfig, loggable_url};

/// What the resolver and the processors read of an entity.
const FIELDS: [&str; 6] = [
    "kind",
    "metadata.name",
    "metadata.namespace",
    "metadata.annotations",
    "relations",
    "spec.profile.email",
];
/// Refs per request: large groups are fetched in a few requests, not one huge one.
const REFS_PER_REQUEST: usize = 1000;
/// An answer for 1,000 refs is well under this, even for groups of many thousands.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How much of a failed answer's body is quoted in the error.
const MAX_QUOTED_BODY: usize = 200;

pub struct RemoteCatalog {
    client: reqwest::Client,
    by_refs: Url,
    token: Option<String>,
    /// Entities (or their absence, `None`) by canonical ref.
    cache: Option<moka::sync::Cache<String, Option<Arc<CatalogEntity>>>>,
}

impl std::fmt::Debug for RemoteCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCatalog")
            .field("by_refs", &self.by_refs.as_str())
            .finish_non_exhaustive()
    }
}

impl RemoteCatalog {
    /// `base_url`: the catalog plugin's base URL (`.../api/catalog`).
    pub fn new(config: &RemoteCatalogConfig, base_url: &Url) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()?;
        let by_refs = Url::parse(&format!(
            "{}/entities/by-refs",
            base_url.as_str().trim_end_matches('/')
        ))
        .unwrap_or_else(|_| base_url.clone());
        let cache = (!config.cache_ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.cache_size.into())
                .time_to_live(config.cache_ttl)
                .build()
        });
        Ok(Self {
            client,
            by_refs,
            token: config.token.clone(),
            cache,
        })
    }

    /// Where entities are fetched, for logs.
    pub fn loggable_url(&self) -> String {
        loggable_url(&self.by_refs)
    }

    async fn fetch(
        &self,
        refs: &[String],
    ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
        let unavailable = |reason: String| {
            tracing::warn!(
                url = loggable_url(&self.by_refs),
                reason,
                "the catalog failed"
            );
            CatalogError(format!("the catalog is unavailable: {reason}"))
        };
        let mut request = self
            .client
            .post(self.by_refs.clone())
            .json(&json!({"entityRefs": refs, "fields": FIELDS}));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| {
            unavailable(if e.is_timeout() {
                "no answer in time".to_owned()
            } else {
                e.without_url().to_string()
            })
        })?;
        let status = response.status();
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(unavailable(format!(
                    "the answer is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}: {}", quote(&body))));
        }
        let answer: ByRefs = serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
        if answer.items.len() != refs.len() {
            return Err(unavailable(format!(
                "{} items for {} refs",
                answer.items.len(),
                refs.len()
            )));
        }
        Ok(answer
            .items
            .into_iter()
            .map(|item| item.and_then(RawEntity::into_entity).map(Arc::new))
            .collect())
    }
}

/// The start of a body, for an error message: the catalog's own error message if it has one.
fn quote(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    message.chars().take(MAX_QUOTED_BODY).collect()
}

#[derive(Deserialize)]
struct ByRefs {
    items: Vec<Option<RawEntity>>,
}

#[derive(Deserialize)]
struct RawEntity {
    kind: String,
    metadata: RawMetadata,
    #[serde(default)]
    relations: Vec<RawRelation>,
    #[serde(default)]
    spec: Value,
}

#[derive(Deserialize)]
struct RawMetadata {
    name: String,
    namespace: Option<String>,
    /// Values that are not strings (invalid in Backstage) are dropped, not fatal.
    #[serde(default)]
    annotations: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct RawRelation {
    #[serde(rename = "type")]
    relation_type: String,
    #[serde(rename = "targetRef")]
    target_ref: String,
}

impl RawEntity {
    /// `None` for an entity whose ref cannot be parsed; relations that cannot are dropped.
    fn into_entity(self) -> Option<CatalogEntity> {
        let namespace = self.metadata.namespace.as_deref().unwrap_or("default");
        let entity_ref =
            EntityRef::parse(&format!("{}:{namespace}/{}", self.kind, self.metadata.name)).ok()?;
        let relations = self
            .relations
            .into_iter()
            .filter_map(|r| {
                Some(EntityRelation {
                    target: EntityRef::parse(&r.target_ref).ok()?,
                    relation_type: r.relation_type,
                })
            })
            .collect();
        let email = self
            .spec
            .pointer("/profile/email")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let annotations = self
            .metadata
            .annotations
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect();
        Some(CatalogEntity {
            entity_ref,
            relations,
            email,
            annotations,
        })
    }
}

#[async_trait]
impl Catalog for RemoteCatalog {
    async fn entities_by_refs(
        &self,
        refs: &[EntityRef],
    ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
        let keys: Vec<String> = refs.iter().map(EntityRef::canonical).collect();
        let mut found: Vec<Option<Option<Arc<CatalogEntity>>>> = keys
            .iter()
            .map(|k| self.cache.as_ref().and_then(|c| c.get(k)))
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        for chunk in missing.chunks(REFS_PER_REQUEST) {
            let wanted: Vec<String> = chunk.iter().map(|&i| keys[i].clone()).collect();
            let fetched = self.fetch(&wanted).await?;
            for (&i, entity) in chunk.iter().zip(fetched) {
                if let Some(cache) = &self.cache {
                    cache.insert(keys[i].clone(), entity.clone());
                }
                found[i] = Some(entity);
            }
        }
        Ok(found.into_iter().map(Option::flatten).collect())
    }
}
