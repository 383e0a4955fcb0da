//! What recipient resolution needs from a software catalog: entities by ref, with relations.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use notifications_common::EntityRef;

/// A group's members (users).
pub const RELATION_HAS_MEMBER: &str = "hasMember";
/// A user's groups.
pub const RELATION_MEMBER_OF: &str = "memberOf";
/// A group's child groups.
pub const RELATION_PARENT_OF: &str = "parentOf";
/// A group's parent group.
pub const RELATION_CHILD_OF: &str = "childOf";
/// An entity's owner (a user or a group).
pub const RELATION_OWNED_BY: &str = "ownedBy";
/// What a user or group owns.
pub const RELATION_OWNER_OF: &str = "ownerOf";

/// The part of a catalog entity that notifications use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntity {
    pub entity_ref: EntityRef,
    /// Relations whose source is this entity, as the catalog stores them.
    pub relations: Vec<EntityRelation>,
    /// `spec.profile.email`, for processors that mail users.
    pub email: Option<String>,
    /// `metadata.annotations` with string values, e.g. `slack.com/bot-notify` for Slack.
    pub annotations: BTreeMap<String, String>,
}

impl CatalogEntity {
    /// The targets of this entity's relations of one type, in catalog order.
    pub fn targets<'a>(&'a self, relation_type: &'a str) -> impl Iterator<Item = &'a EntityRef> {
        self.relations
            .iter()
            .filter(move |r| r.relation_type == relation_type)
            .map(|r| &r.target)
    }
}

/// One relation of an entity (Backstage's `{type, targetRef}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRelation {
    pub relation_type: String,
    pub target: EntityRef,
}

/// The catalog could not answer; the message says why (shown to the sender).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(pub String);

/// A source of entities: Backstage's catalog over HTTP, a local file, a test double...
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// The entities with these refs, one answer per ref in the same order: `None` for a ref the
    /// catalog does not hold.
    async fn entities_by_refs(
        &self,
        refs: &[EntityRef],
    ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError>;

    /// Every entity of kind `User` (for processors that reach all users, such as e-mail
    /// broadcasts). Catalogs that cannot list entities answer with an error.
    async fn users(&self) -> Result<Vec<Arc<CatalogEntity>>, CatalogError> {
        Err(CatalogError(
            "this catalog cannot list its users".to_owned(),
        ))
    }
}
