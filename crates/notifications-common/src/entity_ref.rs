use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// The namespace an entity reference gets when it names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A Backstage entity reference, `[<kind>:][<namespace>/]<name>`, e.g. `user:default/jane.doe`.
///
/// Parsing follows Backstage's catalog model: a `/` before the first `:` makes the whole rest the
/// name; empty parts are refused; the namespace defaults to `default`. Kind and namespace are kept
/// in lower case (the catalog treats them case-insensitively); the name keeps its case for display
/// but comparisons ignore case, as the catalog's do.
#[derive(Clone, Debug, Eq)]
pub struct EntityRef {
    kind: String,
    namespace: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityRefError {
    #[error("Entity reference \"{0}\" was not on the form [<kind>:][<namespace>/]<name>")]
    Malformed(String),
    #[error(
        "Entity reference \"{0}\" had missing or empty kind (e.g. did not start with \"component:\" or similar)"
    )]
    MissingKind(String),
}

impl EntityRef {
    /// Parses a reference that must carry its kind.
    pub fn parse(input: &str) -> Result<Self, EntityRefError> {
        Self::parse_with_default_kind(input, None)
    }

    /// Parses a reference, using `default_kind` when the reference names no kind.
    pub fn parse_with_default_kind(
        input: &str,
        default_kind: Option<&str>,
    ) -> Result<Self, EntityRefError> {
        Self::parse_with_defaults(input, default_kind, DEFAULT_NAMESPACE)
    }

    /// Parses a reference written inside an entity, as the catalog reads `spec.owner` or
    /// `spec.members`: a missing kind is `default_kind`, a missing namespace is the entity's own.
    pub fn parse_with_defaults(
        input: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self, EntityRefError> {
        let malformed = || EntityRefError::Malformed(input.to_owned());
        let slash = input.find('/');
        let colon = input.find(':').filter(|c| slash.is_none_or(|s| *c < s));
        let kind = colon.map(|c| &input[..c]);
        let after_kind = colon.map_or(0, |c| c + 1);
        let namespace = slash.map(|s| &input[after_kind..s]);
        let name = &input[slash.map_or(after_kind, |s| s + 1)..];
        if kind == Some("") || namespace == Some("") || name.is_empty() {
            return Err(malformed());
        }
        let kind = kind
            .or(default_kind)
            .ok_or_else(|| EntityRefError::MissingKind(input.to_owned()))?;
        Ok(Self {
            kind: kind.to_ascii_lowercase(),
            namespace: namespace.unwrap_or(default_namespace).to_ascii_lowercase(),
            name: name.to_owned(),
        })
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the kind is `kind` (ignoring case).
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
    }

    /// The fully lower-cased form, `kind:namespace/name`: one spelling per entity, suitable as a
    /// storage and lookup key.
    pub fn canonical(&self) -> String {
        format!(
            "{}:{}/{}",
            self.kind,
            self.namespace,
            self.name.to_lowercase()
        )
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.kind, self.namespace, self.name)
    }
}

impl FromStr for EntityRef {
    type Err = EntityRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.namespace == other.namespace
            && self.name.to_lowercase() == other.name.to_lowercase()
    }
}

impl Hash for EntityRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.namespace.hash(state);
        self.name.to_lowercase().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_short_forms() {
        let r = EntityRef::parse("User:Default/Jane.Doe").unwrap();
        assert_eq!(
            (r.kind(), r.namespace(), r.name()),
            ("user", "default", "Jane.Doe")
        );
        assert_eq!(r.to_string(), "user:default/Jane.Doe");
        assert_eq!(r.canonical(), "user:default/jane.doe");

        let r = EntityRef::parse("group:team-a").unwrap();
        assert_eq!(r.to_string(), "group:default/team-a");
    }

    #[test]
    fn kind_is_required_unless_defaulted() {
        assert_eq!(
            EntityRef::parse("mock"),
            Err(EntityRefError::MissingKind("mock".into()))
        );
        let r = EntityRef::parse_with_default_kind("mock", Some("user")).unwrap();
        assert_eq!(r.to_string(), "user:default/mock");
    }

    #[test]
    fn refs_inside_an_entity_default_to_its_namespace() {
        let r = EntityRef::parse_with_defaults("team-a", Some("group"), "Ops").unwrap();
        assert_eq!(r.to_string(), "group:ops/team-a");
        let r = EntityRef::parse_with_defaults("user:default/jane", Some("group"), "ops").unwrap();
        assert_eq!(r.to_string(), "user:default/jane");
    }

    #[test]
    fn slash_before_colon_makes_the_rest_the_name() {
        let r = EntityRef::parse_with_default_kind("ns/a:b", Some("component")).unwrap();
        assert_eq!(
            (r.kind(), r.namespace(), r.name()),
            ("component", "ns", "a:b")
        );
    }

    #[test]
    fn empty_parts_are_malformed() {
        for bad in ["", ":x", "user:/x", "user:ns/", "user:"] {
            assert!(
                matches!(EntityRef::parse(bad), Err(EntityRefError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn equality_ignores_case() {
        assert_eq!(
            EntityRef::parse("USER:DEFAULT/JANE").unwrap(),
            EntityRef::parse("user:jane").unwrap()
        );
        assert_ne!(
            EntityRef::parse("user:jane").unwrap(),
            EntityRef::parse("user:other/jane").unwrap()
        );
    }
}
