//! The rules of the janus-idp notifications API (the legacy contract): who sees which message,
//! target checks against the catalog, read marks, and the permission policy.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use notifications_common::{
    EntityRef, JanusAction, JanusCreateRequest, JanusCreateResponse, JanusMessage,
};
use notifications_node::{Catalog, RELATION_MEMBER_OF};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;
use url::Url;

use crate::config::JanusConfig;
use crate::db::DbError;
use crate::service::link;
use crate::store::{MessageFilter, MessageOrder, MessageScope, NewMessage, Page, Store};

/// The three permissions janus checks (plain, non-resource Backstage permissions).
pub const PERMISSION_CREATE: &str = "notifications.create";
pub const PERMISSION_LIST: &str = "notifications.list";
pub const PERMISSION_UPDATE_READ: &str = "notifications.update.read";

/// The first request-schema violation, as janus's validator (ajv) words it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaViolation {
    /// Where in the request, e.g. `/query/pageSize` or `/requestBody/title`.
    pub instance_path: String,
    pub schema_path: String,
    /// The schema keyword that failed: `type`, `required`, `enum`, `minimum`, ...
    pub keyword: &'static str,
    #[schema(value_type = Object)]
    pub params: Value,
    pub message: String,
}

/// What goes wrong on the janus routes. Janus's answers differ from upstream's (handler checks
/// are 500s whose message is shown, validation has a body of its own), hence a type apart from
/// [`crate::error::Error`], which carries everything else (database, catalog outages).
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// The request does not match janus's schema: `{"status":500,"err":[violation]}`.
    #[error("{}", .0.message)]
    Schema(Box<SchemaViolation>),
    /// A body that is not JSON (400 `SyntaxError`) or too large (413).
    #[error("{message}")]
    Body { status: u16, message: String },
    /// No janus operation has this method and path: 500 "Unknown operation".
    #[error("Unknown operation")]
    UnknownOperation,
    /// 401 `AuthenticationError`.
    #[error("{0}")]
    Unauthenticated(String),
    /// A policy denied the permission: 403 `NotAllowedError`.
    #[error("{0}")]
    NotAllowed(String),
    /// A check of janus's handlers failed: 500 `Error` with this message (janus's wording,
    /// which scripts match).
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Other(#[from] crate::error::Error),
}

impl From<DbError> for JanusError {
    /// Janus answers every database failure with a 500 (a duplicate target breaks a primary
    /// key), never upstream's 409; outages stay 503s.
    fn from(e: DbError) -> Self {
        match crate::error::Error::from(e) {
            crate::error::Error::Conflict(message) => Self::Other(crate::error::Error::Internal {
                message,
                source: None,
            }),
            other => Self::Other(other),
        }
    }
}

/// A janus caller: the name janus knows them by (`namespace/name`) and how they got in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub via: Via,
}

/// The credential a janus caller presented; all but a user token make them the guest user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Their own user token.
    User,
    /// A service token (`acceptServiceTokens`), with its subject.
    Service(String),
    /// The shared secret (`externalCallerSecret`).
    Secret,
    /// None (`allowUnauthenticated`).
    Anonymous,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User => f.write_str("user"),
            Self::Service(subject) => write!(f, "service:{subject}"),
            Self::Secret => f.write_str("secret"),
            Self::Anonymous => f.write_str("anonymous"),
        }
    }
}

/// List paging, ordering and filters, validated.
#[derive(Clone, Debug)]
pub struct ListRequest {
    pub filter: Filters,
    pub order: MessageOrder,
    pub page: Option<Page>,
}

/// The filters list and count share.
#[derive(Clone, Debug)]
pub struct Filters {
    pub scope: MessageScope,
    pub contains_text: Option<String>,
    /// Canonical `…sssZ` text.
    pub created_after: Option<String>,
    pub read: Option<bool>,
}

#[derive(Clone)]
pub struct JanusService {
    store: Store,
    catalog: Arc<dyn Catalog>,
    config: Arc<JanusConfig>,
    /// `app.baseUrl`: relative action URLs lead there.
    app_base_url: Url,
}

impl JanusService {
    pub fn new(
        store: Store,
        catalog: Arc<dyn Catalog>,
        config: JanusConfig,
        app_base_url: Url,
    ) -> Self {
        Self {
            store,
            catalog,
            config: Arc::new(config),
            app_base_url,
        }
    }

    pub fn config(&self) -> &JanusConfig {
        &self.config
    }

    /// Janus's permission check: users create only when `userCreators` lists them; otherwise
    /// only a DENY of the configured policy blocks.
    pub fn authorize(&self, caller: &Caller, permission: &str) -> Result<(), JanusError> {
        let name = &caller.name;
        let ungranted_create = permission == PERMISSION_CREATE
            && caller.via == Via::User
            && !self.config.user_may_create(name);
        let denied = self.config.deny.iter().flatten().any(|rule| {
            rule.permission == permission
                && rule
                    .users
                    .as_ref()
                    .is_none_or(|users| users.iter().any(|u| u == name))
        });
        if ungranted_create || denied {
            return Err(JanusError::NotAllowed(format!(
                "The user {name} is not authorized to {permission}"
            )));
        }
        Ok(())
    }

    /// Stores a message after janus's checks: target forms, then their existence in the catalog
    /// (groups before users), then the actions, whose URLs must lead to http(s) pages (janus
    /// took any text, `javascript:` included, and its frontend made a link of it). Janus
    /// stores no creator, so the caller is logged with the message's id.
    pub async fn create(
        &self,
        caller: &Caller,
        request: JanusCreateRequest,
    ) -> Result<JanusCreateResponse, JanusError> {
        self.check_targets("group", &request.target_groups).await?;
        self.check_targets("user", &request.target_users).await?;
        if request
            .actions
            .iter()
            .any(|a| a.title.is_empty() || a.url.is_empty())
        {
            return Err(JanusError::Rejected(
                "Both action title and url are mandatory.".into(),
            ));
        }
        for action in &request.actions {
            link::validate_link(&action.url, &self.app_base_url)?;
        }
        let id = uuid::Uuid::new_v4();
        let is_system = request.target_users.is_empty() && request.target_groups.is_empty();
        let origin = request.origin.clone();
        self.store
            .janus_create(NewMessage {
                id,
                origin: request.origin,
                title: request.title,
                message: request.message,
                topic: request.topic,
                created: now_iso(),
                is_system,
                users: request.target_users,
                groups: request.target_groups,
                actions: request
                    .actions
                    .into_iter()
                    .map(|a| (uuid::Uuid::new_v4(), a.title, a.url))
                    .collect(),
            })
            .await?;
        tracing::info!(
            message_id = %id,
            caller = %caller.name,
            via = %caller.via,
            origin = ?origin,
            system = is_system,
            "janus message created"
        );
        Ok(JanusCreateResponse {
            message_id: id.to_string(),
        })
    }

    /// Every entry must be `namespace/name` (checked over the whole list first), then exist in
    /// the catalog as an entity of `kind`.
    async fn check_targets(&self, kind: &str, targets: &[String]) -> Result<(), JanusError> {
        if targets.iter().any(|t| !t.contains('/')) {
            return Err(JanusError::Rejected(
                "users and groups must be of the form: namespace/name".into(),
            ));
        }
        let refs: Vec<Option<EntityRef>> = targets
            .iter()
            .map(|t| EntityRef::parse(&format!("{kind}:{t}")).ok())
            .collect();
        let known: Vec<EntityRef> = refs.iter().flatten().cloned().collect();
        let found = self.entities(&known).await?;
        for (target, entity_ref) in targets.iter().zip(&refs) {
            let exists = entity_ref
                .as_ref()
                .is_some_and(|r| found.contains_key(&r.canonical()));
            if !exists {
                return Err(JanusError::Rejected(format!(
                    "{kind} '{target}' does not exist"
                )));
            }
        }
        Ok(())
    }

    /// The catalog's entities among `refs`, by canonical ref.
    async fn entities(
        &self,
        refs: &[EntityRef],
    ) -> Result<HashMap<String, Arc<notifications_node::CatalogEntity>>, JanusError> {
        if refs.is_empty() {
            return Ok(HashMap::new());
        }
        let answers = self.catalog.entities_by_refs(refs).await.map_err(|e| {
            // The catalog's own words (hosts, its answer) stay in the log.
            tracing::warn!("janus: the catalog failed: {e}");
            JanusError::Rejected("the catalog is unavailable; try again".into())
        })?;
        Ok(answers
            .into_iter()
            .flatten()
            .map(|e| (e.entity_ref.canonical(), e))
            .collect())
    }

    /// The caller's groups as janus names them (`namespace/name`): from the catalog's `memberOf`
    /// relations of `user:<caller>`. `None` when the catalog has no such user.
    async fn groups_of(&self, caller: &str) -> Result<Option<Vec<String>>, JanusError> {
        let Ok(user) = EntityRef::parse(&format!("user:{caller}")) else {
            return Ok(None);
        };
        let found = self.entities(std::slice::from_ref(&user)).await?;
        Ok(found.get(&user.canonical()).map(|entity| {
            entity
                .targets(RELATION_MEMBER_OF)
                .filter(|r| r.is_kind("group"))
                .map(|r| format!("{}/{}", r.namespace(), r.name()))
                .collect()
        }))
    }

    /// Janus lists and counts only for callers the catalog knows.
    async fn reader(&self, caller: &str, filters: Filters) -> Result<MessageFilter, JanusError> {
        let groups = self
            .groups_of(caller)
            .await?
            .ok_or_else(|| JanusError::Rejected(format!("user '{caller}' does not exist")))?;
        Ok(MessageFilter {
            user: caller.to_owned(),
            groups,
            scope: filters.scope,
            contains_text: filters.contains_text,
            created_after: filters.created_after,
            read: filters.read,
        })
    }

    pub async fn list(
        &self,
        caller: &str,
        request: ListRequest,
    ) -> Result<Vec<JanusMessage>, JanusError> {
        let filter = self.reader(caller, request.filter).await?;
        let rows = self
            .store
            .janus_list(filter, request.order, request.page)
            .await?;
        let mut actions: HashMap<uuid::Uuid, Vec<JanusAction>> = HashMap::new();
        for action in self
            .store
            .janus_actions(rows.iter().map(|r| r.id).collect())
            .await?
        {
            actions
                .entry(action.message_id)
                .or_default()
                .push(JanusAction {
                    id: action.id.to_string(),
                    url: action.url,
                    title: action.title,
                });
        }
        Ok(rows
            .into_iter()
            .map(|row| JanusMessage {
                id: row.id.to_string(),
                created: row.created,
                is_system: row.is_system,
                read_by_user: row.read_by_user,
                origin: row.origin,
                title: row.title,
                message: row.message,
                topic: row.topic,
                actions: actions.remove(&row.id).unwrap_or_default(),
            })
            .collect())
    }

    pub async fn count(&self, caller: &str, filters: Filters) -> Result<i64, JanusError> {
        let filter = self.reader(caller, filters).await?;
        Ok(self.store.janus_count(filter).await?)
    }

    /// Marks a message read or unread for the caller. Janus marked any message whose id the
    /// caller knew, and the mark made a targeted message visible to them; here a message the
    /// caller does not see is answered as one that does not exist (the contract's 6.5).
    pub async fn mark_read(
        &self,
        caller: &str,
        message_id: &str,
        read: bool,
    ) -> Result<(), JanusError> {
        let missing = || JanusError::Rejected(format!("message ID {message_id} does not exist"));
        let id = uuid::Uuid::parse_str(message_id).map_err(|_| missing())?;
        // A caller outside the catalog still sees system messages and their own targets.
        let groups = self.groups_of(caller).await?.unwrap_or_default();
        if !self
            .store
            .janus_is_visible(id, caller.to_owned(), groups)
            .await?
        {
            return Err(missing());
        }
        Ok(self
            .store
            .janus_mark_read(id, caller.to_owned(), read)
            .await?)
    }
}

/// The creation time as janus stores it: milliseconds and `Z` (`Date.toISOString()`).
fn now_iso() -> String {
    iso_millis(OffsetDateTime::now_utc())
}

/// `YYYY-MM-DDTHH:MM:SS.sssZ` in UTC: the text janus stores and compares `createdAfter` with.
pub fn iso_millis(t: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}
