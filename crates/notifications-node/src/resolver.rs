//! Recipient resolution: the extension point, and the default resolver over a catalog.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use notifications_common::EntityRef;

use crate::catalog::{Catalog, RELATION_HAS_MEMBER, RELATION_OWNED_BY, RELATION_PARENT_OF};

/// Turns the entity refs of an entity-addressed send into the users who receive it.
///
/// The backend keeps only results whose kind is `user` and drops duplicates, so an implementation
/// may return refs of any kind. An error fails the send with a 400 that carries its message.
#[async_trait]
pub trait RecipientResolver: Send + Sync + 'static {
    async fn resolve(
        &self,
        entity_refs: &[String],
        excluded_entity_refs: &[String],
    ) -> Result<ResolvedRecipients, ResolveError>;
}

/// The users a send reaches, as entity refs (`user:<namespace>/<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedRecipients {
    pub user_entity_refs: Vec<String>,
}

/// Why recipients could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// An entity ref that cannot be parsed, or another problem with the request itself. The
    /// message is shown to the sender.
    #[error("{0}")]
    InvalidRef(String),
    /// The source of entities (a catalog) failed or could not be reached. The message is logged;
    /// the sender is told only that the catalog is unavailable.
    #[error("{0}")]
    Unavailable(String),
}

/// Upstream's default resolver over a [`Catalog`]:
///
/// * user refs are recipients as given, without a catalog lookup;
/// * a group gives its `hasMember` users, and its `parentOf` child groups are expanded in turn;
/// * any other entity gives its (first) `ownedBy` owner, expanded in turn;
/// * excluded refs are skipped at every step and removed from the result;
/// * each entity is looked up at most once (cycles end), and each user appears once.
///
/// Refs are compared in canonical form, so `user:jane` and `User:default/Jane` are one user and
/// one exclusion matches both (upstream compares strings exactly).
pub struct CatalogResolver<C: ?Sized> {
    catalog: Arc<C>,
}

impl<C: ?Sized> CatalogResolver<C> {
    pub fn new(catalog: Arc<C>) -> Self {
        Self { catalog }
    }
}

/// The users found so far, in order, without duplicates or excluded refs.
struct Recipients {
    excluded: HashSet<String>,
    seen: HashSet<String>,
    users: Vec<String>,
}

impl Recipients {
    fn add(&mut self, user: &EntityRef) {
        let key = user.canonical();
        if !self.excluded.contains(&key) && self.seen.insert(key) {
            self.users.push(user.to_string());
        }
    }
}

fn parse(r: &str) -> Result<EntityRef, ResolveError> {
    EntityRef::parse(r).map_err(|e| ResolveError::InvalidRef(e.to_string()))
}

#[async_trait]
impl<C: Catalog + ?Sized> RecipientResolver for CatalogResolver<C> {
    async fn resolve(
        &self,
        entity_refs: &[String],
        excluded_entity_refs: &[String],
    ) -> Result<ResolvedRecipients, ResolveError> {
        // Upstream compares exclusions as strings and never parses them, so one that is not an
        // entity ref matches nothing rather than failing the send.
        let excluded = excluded_entity_refs
            .iter()
            .filter_map(|r| EntityRef::parse(r).ok().map(|e| e.canonical()))
            .collect();
        let mut queue = entity_refs
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut recipients = Recipients {
            excluded,
            seen: HashSet::new(),
            users: Vec::new(),
        };
        // Entities already looked up (or queued for it): each is expanded once.
        let mut visited = HashSet::new();
        while !queue.is_empty() {
            let mut lookup = Vec::new();
            for entity in queue.drain(..) {
                if entity.is_kind("user") {
                    recipients.add(&entity);
                    continue;
                }
                let key = entity.canonical();
                if !recipients.excluded.contains(&key) && visited.insert(key) {
                    lookup.push(entity);
                }
            }
            if lookup.is_empty() {
                break;
            }
            let found = self
                .catalog
                .entities_by_refs(&lookup)
                .await
                .map_err(|e| ResolveError::Unavailable(e.to_string()))?;
            for entity in found.into_iter().flatten() {
                let this = &entity.entity_ref;
                if this.is_kind("user") {
                    recipients.add(this);
                } else if this.is_kind("group") {
                    for member in entity.targets(RELATION_HAS_MEMBER) {
                        if member.is_kind("user") {
                            recipients.add(member);
                        }
                    }
                    queue.extend(entity.targets(RELATION_PARENT_OF).cloned());
                } else if let Some(owner) = entity.targets(RELATION_OWNED_BY).next() {
                    queue.push(owner.clone());
                }
            }
        }
        Ok(ResolvedRecipients {
            user_entity_refs: recipients.users,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::catalog::{CatalogEntity, CatalogError, EntityRelation};

    /// Entities by canonical ref; records every lookup.
    #[derive(Default)]
    struct FakeCatalog {
        entities: HashMap<String, Arc<CatalogEntity>>,
        lookups: Mutex<Vec<Vec<String>>>,
    }

    impl FakeCatalog {
        fn with(mut self, entity_ref: &str, relations: &[(&str, &str)]) -> Self {
            let entity = CatalogEntity {
                entity_ref: EntityRef::parse(entity_ref).unwrap(),
                relations: relations
                    .iter()
                    .map(|(t, target)| EntityRelation {
                        relation_type: (*t).to_owned(),
                        target: EntityRef::parse(target).unwrap(),
                    })
                    .collect(),
                email: None,
                annotations: Default::default(),
            };
            self.entities
                .insert(entity.entity_ref.canonical(), Arc::new(entity));
            self
        }
    }

    #[async_trait]
    impl Catalog for FakeCatalog {
        async fn entities_by_refs(
            &self,
            refs: &[EntityRef],
        ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
            self.lookups
                .lock()
                .unwrap()
                .push(refs.iter().map(EntityRef::canonical).collect());
            Ok(refs
                .iter()
                .map(|r| self.entities.get(&r.canonical()).cloned())
                .collect())
        }
    }

    struct Down;

    #[async_trait]
    impl Catalog for Down {
        async fn entities_by_refs(
            &self,
            _: &[EntityRef],
        ) -> Result<Vec<Option<Arc<CatalogEntity>>>, CatalogError> {
            Err(CatalogError("catalog unreachable".into()))
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    async fn resolve(catalog: &Arc<FakeCatalog>, refs: &[&str], excluded: &[&str]) -> Vec<String> {
        CatalogResolver::new(catalog.clone())
            .resolve(&strings(refs), &strings(excluded))
            .await
            .unwrap()
            .user_entity_refs
    }

    fn parent_and_child() -> FakeCatalog {
        FakeCatalog::default()
            .with(
                "group:default/parent_group",
                &[
                    ("hasMember", "user:default/foo"),
                    ("parentOf", "group:default/child_group"),
                ],
            )
            .with(
                "group:default/child_group",
                &[
                    ("hasMember", "user:default/bar"),
                    ("hasMember", "user:default/ignored"),
                    ("childOf", "group:default/parent_group"),
                ],
            )
    }

    #[tokio::test]
    async fn users_pass_through_without_a_lookup() {
        // Case 76.
        let catalog = Arc::new(FakeCatalog::default());
        let users = resolve(&catalog, &["user:foo", "user:ignored"], &["user:ignored"]).await;
        assert_eq!(users, strings(&["user:default/foo"]));
        assert!(catalog.lookups.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn groups_give_members_and_child_groups_members() {
        // Case 77.
        let catalog = Arc::new(parent_and_child());
        let users = resolve(
            &catalog,
            &["group:default/parent_group"],
            &["user:default/ignored"],
        )
        .await;
        assert_eq!(users, strings(&["user:default/foo", "user:default/bar"]));
        // One lookup per level, never upwards (childOf is not followed).
        assert_eq!(
            *catalog.lookups.lock().unwrap(),
            vec![
                strings(&["group:default/parent_group"]),
                strings(&["group:default/child_group"])
            ]
        );
    }

    #[tokio::test]
    async fn an_excluded_child_group_is_not_expanded() {
        let catalog = Arc::new(parent_and_child());
        let users = resolve(
            &catalog,
            &["group:default/parent_group"],
            &["group:default/child_group"],
        )
        .await;
        assert_eq!(users, strings(&["user:default/foo"]));
    }

    #[tokio::test]
    async fn other_kinds_give_their_owner() {
        // Cases 78 and 79.
        let catalog = Arc::new(
            FakeCatalog::default()
                .with(
                    "component:default/by_user",
                    &[("ownedBy", "user:default/foo")],
                )
                .with(
                    "component:default/by_group",
                    &[("ownedBy", "group:default/owner_group")],
                )
                .with(
                    "group:default/owner_group",
                    &[("hasMember", "user:default/foo")],
                ),
        );
        assert_eq!(
            resolve(&catalog, &["component:default/by_user"], &[]).await,
            strings(&["user:default/foo"])
        );
        assert_eq!(
            resolve(&catalog, &["component:default/by_group"], &[]).await,
            strings(&["user:default/foo"])
        );
        assert!(
            resolve(
                &catalog,
                &["component:default/by_group"],
                &["user:default/foo"]
            )
            .await
            .is_empty()
        );
    }

    #[tokio::test]
    async fn cycles_end_and_give_every_member_once() {
        // Case 80.
        let catalog = Arc::new(
            FakeCatalog::default()
                .with(
                    "group:default/a",
                    &[
                        ("hasMember", "user:default/x"),
                        ("parentOf", "group:default/b"),
                    ],
                )
                .with(
                    "group:default/b",
                    &[
                        ("hasMember", "user:default/y"),
                        ("hasMember", "user:default/x"),
                        ("parentOf", "group:default/a"),
                    ],
                ),
        );
        let users = resolve(&catalog, &["group:a", "group:b"], &[]).await;
        assert_eq!(users, strings(&["user:default/x", "user:default/y"]));
        assert_eq!(catalog.lookups.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn duplicates_and_spellings_collapse() {
        // Cases 11 and 33.
        let catalog = Arc::new(
            FakeCatalog::default()
                .with("group:default/mock", &[("hasMember", "user:default/mock")]),
        );
        let users = resolve(
            &catalog,
            &[
                "group:default/mock",
                "user:default/mock",
                "User:Default/Mock",
                "user:mock",
            ],
            &[],
        )
        .await;
        assert_eq!(users, strings(&["user:default/mock"]));
    }

    #[tokio::test]
    async fn missing_entities_and_non_user_members_reach_nobody() {
        let catalog = Arc::new(FakeCatalog::default().with(
            "group:default/g",
            &[("hasMember", "group:default/not-a-user")],
        ));
        assert!(
            resolve(
                &catalog,
                &["group:default/g", "system:default/nowhere"],
                &[]
            )
            .await
            .is_empty()
        );
    }

    #[tokio::test]
    async fn exclusions_that_are_not_refs_match_nothing() {
        let catalog = Arc::new(FakeCatalog::default());
        let users = resolve(&catalog, &["user:default/mock"], &["mock", ""]).await;
        assert_eq!(users, strings(&["user:default/mock"]));
    }

    #[tokio::test]
    async fn refs_without_kind_and_catalog_failures_are_errors() {
        let catalog = Arc::new(FakeCatalog::default());
        let err = CatalogResolver::new(catalog)
            .resolve(&strings(&["mock"]), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveError::InvalidRef(m) if m.contains("missing or empty kind")));
        let err = CatalogResolver::new(Arc::new(Down))
            .resolve(&strings(&["group:default/g"]), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, ResolveError::Unavailable(m) if m == "catalog unreachable"));
    }
}
