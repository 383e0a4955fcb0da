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
/// What listing users reads of each.
const USER_FIELDS: [&str; 4] = [
    "kind",
    "metadata.name",
    "metadata.namespace",
    "spec.profile.email",
];
/// Users per page when listing them.
const USERS_PER_PAGE: usize = 500;
/// A bound on the pages of one listing (a catalog that keeps answering with a cursor).
const MAX_USER_PAGES: usize = 10_000;
/// Refs per request: large groups are fetched in a few requests, not one huge one.
const REFS_PER_REQUEST: usize = 1000;
/// An answer for 1,000 refs is well under this, even for groups of many thousands.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How much of a failed answer's body is quoted in the error.
const MAX_QUOTED_BODY: usize = 200;

pub struct RemoteCatalog {
    client: reqwest::Client,
    by_refs: Url,
    by_query: Url,
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
        let client = crate::outbound_http::client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()?;
        let endpoint = |path: &str| {
            Url::parse(&format!(
                "{}/{path}",
                base_url.as_str().trim_end_matches('/')
            ))
            .unwrap_or_else(|_| base_url.clone())
        };
        let by_refs = endpoint("entities/by-refs");
        let by_query = endpoint("entities/by-query");
        let cache = (!config.cache_ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(config.cache_size.into())
                .time_to_live(config.cache_ttl)
                .build()
        });
        Ok(Self {
            client,
            by_refs,
            by_query,
            token: config.token.as_ref().map(|token| token.expose().clone()),
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
        let request = self
            .client
            .post(self.by_refs.clone())
            .json(&json!({"entityRefs": refs, "fields": FIELDS}));
        let body = self.call(request, &self.by_refs).await?;
        let answer: ByRefs = serde_json::from_slice(&body)
            .map_err(|e| self.unavailable(&self.by_refs, format!("unreadable answer: {e}")))?;
        if answer.items.len() != refs.len() {
            return Err(self.unavailable(
                &self.by_refs,
                format!("{} items for {} refs", answer.items.len(), refs.len()),
            ));
        }
        Ok(answer
            .items
            .into_iter()
            .map(|item| item.and_then(RawEntity::into_entity).map(Arc::new))
            .collect())
    }

    fn unavailable(&self, url: &Url, reason: String) -> CatalogError {
        tracing::warn!(url = loggable_url(url), reason, "the catalog failed");
        metrics::counter!(crate::metrics::CATALOG_FAILURES).increment(1);
        CatalogError(format!("the catalog is unavailable: {reason}"))
    }

    /// Sends `request` (with the token) and reads a successful answer's body.
    async fn call(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<Vec<u8>, CatalogError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(|e| {
            self.unavailable(
                url,
                if e.is_timeout() {
                    "no answer in time".to_owned()
                } else {
                    e.without_url().to_string()
                },
            )
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.unavailable(url, e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(self.unavailable(
                    url,
                    format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(self.unavailable(url, format!("HTTP {status}: {}", quote(&body))));
        }
        Ok(body)
    }

    /// All users with an e-mail address, page by page:
    /// `GET <catalog>/entities/by-query?filter=kind=user,spec.profile.email`.
    async fn fetch_users(&self) -> Result<Vec<Arc<CatalogEntity>>, CatalogError> {
        let mut users = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_USER_PAGES {
            let mut url = self.by_query.clone();
            {
                let mut query = url.query_pairs_mut();
                match &cursor {
                    Some(cursor) => query.append_pair("cursor", cursor),
                    // As upstream: users that have an address.
                    None => query.append_pair("filter", "kind=user,spec.profile.email"),
                };
                query
                    .append_pair("fields", &USER_FIELDS.join(","))
                    .append_pair("limit", &USERS_PER_PAGE.to_string());
            }
            let body = self.call(self.client.get(url), &self.by_query).await?;
            let page: ByQuery = serde_json::from_slice(&body)
                .map_err(|e| self.unavailable(&self.by_query, format!("unreadable answer: {e}")))?;
            let empty = page.items.is_empty();
            users.extend(
                page.items
                    .into_iter()
                    .filter_map(RawEntity::into_entity)
                    .filter(|e| e.entity_ref.is_kind("user"))
                    .map(Arc::new),
            );
            match page.page_info.and_then(|p| p.next_cursor) {
                Some(next) if !empty => cursor = Some(next),
                _ => return Ok(users),
            }
        }
        Err(self.unavailable(
            &self.by_query,
            format!("more than {MAX_USER_PAGES} pages of users"),
        ))
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
#[serde(rename_all = "camelCase")]
struct ByQuery {
    items: Vec<RawEntity>,
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    next_cursor: Option<String>,
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
        let missing: Vec<(usize, String)> = found
            .iter()
            .zip(&keys)
            .enumerate()
            .filter(|(_, (cached, _))| cached.is_none())
            .map(|(i, (_, key))| (i, key.clone()))
            .collect();
        for chunk in missing.chunks(REFS_PER_REQUEST) {
            let wanted: Vec<String> = chunk.iter().map(|(_, key)| key.clone()).collect();
            let fetched = self.fetch(&wanted).await?;
            for ((i, key), entity) in chunk.iter().zip(fetched) {
                if let Some(cache) = &self.cache {
                    cache.insert(key.clone(), entity.clone());
                }
                if let Some(slot) = found.get_mut(*i) {
                    *slot = Some(entity);
                }
            }
        }
        Ok(found.into_iter().map(Option::flatten).collect())
    }

    async fn users(&self) -> Result<Vec<Arc<CatalogEntity>>, CatalogError> {
        self.fetch_users().await
    }
}
