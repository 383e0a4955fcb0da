//! The recipient resolver used when no catalog is configured: user refs only.

use async_trait::async_trait;
use notifications_common::EntityRef;
use notifications_node::{RecipientResolver, ResolveError, ResolvedRecipients};

/// Resolves user refs to themselves and nothing else: without a catalog, groups and owned
/// entities have no known members, so they reach nobody (as upstream's resolver does for
/// entities missing from the catalog). Excluded refs are removed.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserRefResolver;

#[async_trait]
impl RecipientResolver for UserRefResolver {
    async fn resolve(
        &self,
        entity_refs: &[String],
        excluded_entity_refs: &[String],
    ) -> Result<ResolvedRecipients, ResolveError> {
        let parse =
            |r: &String| EntityRef::parse(r).map_err(|e| ResolveError::InvalidRef(e.to_string()));
        let excluded = excluded_entity_refs
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut users = Vec::new();
        for r in entity_refs {
            let entity = parse(r)?;
            if excluded.contains(&entity) {
                continue;
            }
            if entity.is_kind("user") {
                users.push(entity.to_string());
            } else {
                tracing::debug!(entity_ref = %entity, "no catalog configured: entity has no known users");
            }
        }
        Ok(ResolvedRecipients {
            user_entity_refs: users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn users_pass_others_do_not() {
        let r = UserRefResolver
            .resolve(
                &refs(&["user:default/a", "group:default/g", "user:b"]),
                &refs(&["user:default/b"]),
            )
            .await
            .unwrap();
        assert_eq!(r.user_entity_refs, refs(&["user:default/a"]));
    }

    #[tokio::test]
    async fn refs_without_kind_are_errors() {
        let err = UserRefResolver
            .resolve(&refs(&["mock"]), &[])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("had missing or empty kind"));
    }
}
