//! Reading one Backstage entity file: multi-document YAML in `catalog-info.yaml` form, keeping
//! what notifications need (refs, relations as the catalog derives them, e-mail addresses).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use notifications_common::EntityRef;
use notifications_node::{
    RELATION_CHILD_OF, RELATION_HAS_MEMBER, RELATION_MEMBER_OF, RELATION_OWNED_BY,
    RELATION_OWNER_OF, RELATION_PARENT_OF,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where something is written: a file and a line (1-based), and the column when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: PathBuf,
    pub line: usize,
    pub column: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        Ok(())
    }
}

/// Why an entity file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct EntityFileError {
    pub at: Position,
    pub reason: String,
}

/// A relation an entity declares in its spec, with the reverse relation its target gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclaredRelation {
    pub relation_type: &'static str,
    pub reverse: &'static str,
    pub target: EntityRef,
}

/// One entity of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityDoc {
    /// Where its document starts.
    pub at: Position,
    pub entity_ref: EntityRef,
    /// `spec.profile.email` of users and groups.
    pub email: Option<String>,
    /// `metadata.annotations` (Backstage requires string values).
    pub annotations: BTreeMap<String, String>,
    pub relations: Vec<DeclaredRelation>,
    /// The files a `Location` entity points at, resolved against this file's directory.
    pub targets: Vec<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: String,
    kind: String,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WithSpec<S: Default> {
    #[serde(default)]
    spec: S,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Profile {
    email: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct UserSpec {
    profile: Profile,
    member_of: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct GroupSpec {
    profile: Profile,
    parent: Option<String>,
    children: Vec<String>,
    members: Vec<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LocationSpec {
    #[serde(rename = "type")]
    location_type: Option<String>,
    target: Option<String>,
    targets: Vec<String>,
}

/// Kinds of Backstage's model whose `spec.owner` is a required ref; other kinds are free-form,
/// so an owner that is not a string is ignored there rather than refused.
const OWNED_KINDS: [&str; 6] = [
    "component",
    "api",
    "resource",
    "system",
    "domain",
    "template",
];

/// Reads the entities of `text`, the contents of `file`.
pub fn parse(file: &Path, text: &str) -> Result<Vec<EntityDoc>, EntityFileError> {
    documents(text)
        .filter(|(_, doc)| !is_empty_document(doc))
        .map(|(line, doc)| {
            Document {
                file,
                line,
                text: doc,
            }
            .entity()
        })
        .collect()
}

/// The documents of a YAML stream with their first lines: a line starting with `---` starts one.
fn documents(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut starts = vec![(1, 0)];
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let rest = line.strip_prefix("---");
        if index > 0 && rest.is_some_and(|r| r.is_empty() || r.starts_with(char::is_whitespace)) {
            starts.push((index + 1, offset));
        }
        offset += line.len();
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|(_, o)| *o)
        .chain([text.len()])
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |((line, start), end)| (line, &text[start..end]))
}

/// Only markers (`---`, `...`), comments and blank lines.
fn is_empty_document(doc: &str) -> bool {
    doc.lines().all(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("---")
            .or_else(|| line.strip_prefix("..."))
            .map_or(line, str::trim_start);
        rest.is_empty() || rest.starts_with('#')
    })
}

struct Document<'a> {
    file: &'a Path,
    /// The first line of `text` in the file.
    line: usize,
    text: &'a str,
}

impl Document<'_> {
    /// A position inside the document (line and column relative to it), or without one the
    /// entity's first line.
    fn at(&self, offset: Option<(usize, usize)>) -> Position {
        let line = match offset {
            Some((line, _)) => line.saturating_sub(1),
            None => self
                .text
                .lines()
                .take_while(|l| is_empty_document(l))
                .count(),
        };
        Position {
            file: self.file.to_owned(),
            line: self.line + line,
            column: offset.map(|(_, column)| column),
        }
    }

    fn error(&self, reason: impl Into<String>) -> EntityFileError {
        EntityFileError {
            at: self.at(None),
            reason: reason.into(),
        }
    }

    /// Deserializes the document; errors name the key path and the exact line.
    fn read<T: DeserializeOwned>(&self) -> Result<T, EntityFileError> {
        serde_norway::from_str(self.text).map_err(|e| {
            let location = e.location().map(|l| (l.line(), l.column()));
            let message = e.to_string();
            // The parser's position is relative to the document; ours replaces it.
            let reason = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            EntityFileError {
                at: self.at(location),
                reason: reason.to_owned(),
            }
        })
    }

    fn entity(&self) -> Result<EntityDoc, EntityFileError> {
        let header: Header = self.read()?;
        check(&header.api_version, "apiVersion", valid_api_version).map_err(|r| self.error(r))?;
        check(&header.kind, "kind", valid_kind).map_err(|r| self.error(r))?;
        check(&header.metadata.name, "metadata.name", valid_name).map_err(|r| self.error(r))?;
        let namespace = header.metadata.namespace.as_deref().unwrap_or("default");
        check(namespace, "metadata.namespace", valid_namespace).map_err(|r| self.error(r))?;
        let kind = header.kind.to_ascii_lowercase();
        let entity_ref = EntityRef::parse(&format!("{kind}:{namespace}/{}", header.metadata.name))
            .map_err(|e| self.error(e.to_string()))?;
        let mut doc = EntityDoc {
            at: self.at(None),
            entity_ref,
            email: None,
            annotations: header.metadata.annotations,
            relations: Vec::new(),
            targets: Vec::new(),
        };
        let mut relate = |field: &str,
                          refs: &[String],
                          default_kind: &str,
                          relation_type: &'static str,
                          reverse: &'static str|
         -> Result<(), EntityFileError> {
            for (i, r) in refs.iter().enumerate() {
                let target = EntityRef::parse_with_defaults(r, Some(default_kind), namespace)
                    .map_err(|e| self.error(format!("spec.{field}[{i}]: {e}")))?;
                doc.relations.push(DeclaredRelation {
                    relation_type,
                    reverse,
                    target,
                });
            }
            Ok(())
        };
        match kind.as_str() {
            "user" => {
                let spec = self.read::<WithSpec<UserSpec>>()?.spec;
                relate(
                    "memberOf",
                    &spec.member_of,
                    "group",
                    RELATION_MEMBER_OF,
                    RELATION_HAS_MEMBER,
                )?;
                doc.email = spec.profile.email;
            }
            "group" => {
                let spec = self.read::<WithSpec<GroupSpec>>()?.spec;
                let parent = Vec::from_iter(spec.parent);
                relate(
                    "parent",
                    &parent,
                    "group",
                    RELATION_CHILD_OF,
                    RELATION_PARENT_OF,
                )?;
                relate(
                    "children",
                    &spec.children,
                    "group",
                    RELATION_PARENT_OF,
                    RELATION_CHILD_OF,
                )?;
                relate(
                    "members",
                    &spec.members,
                    "user",
                    RELATION_HAS_MEMBER,
                    RELATION_MEMBER_OF,
                )?;
                doc.email = spec.profile.email;
            }
            "location" => {
                let spec = self.read::<WithSpec<LocationSpec>>()?.spec;
                doc.targets = self.location_targets(spec)?;
            }
            // Other kinds' specs are free-form: only a string `owner` is read.
            _ => match self
                .read::<WithSpec<Option<serde_norway::Value>>>()?
                .spec
                .as_ref()
                .and_then(|spec| spec.get("owner"))
            {
                Some(serde_norway::Value::String(owner)) => {
                    let owner = owner.clone();
                    relate(
                        "owner",
                        &[owner],
                        "group",
                        RELATION_OWNED_BY,
                        RELATION_OWNER_OF,
                    )?;
                }
                Some(_) if OWNED_KINDS.contains(&kind.as_str()) => {
                    return Err(self.error("spec.owner: expected an entity ref"));
                }
                _ => {}
            },
        }
        Ok(doc)
    }

    fn location_targets(&self, spec: LocationSpec) -> Result<Vec<PathBuf>, EntityFileError> {
        let targets: Vec<String> = spec.target.into_iter().chain(spec.targets).collect();
        match spec.location_type.as_deref() {
            None | Some("file") => {}
            Some(other) => {
                tracing::warn!(
                    at = %self.at(None),
                    location_type = other,
                    "the embedded catalog reads files only; this location is skipped"
                );
                return Ok(Vec::new());
            }
        }
        let dir = self.file.parent().unwrap_or(Path::new(""));
        targets
            .into_iter()
            .map(|t| {
                if t.contains(['*', '?', '[']) {
                    Err(self.error(format!(
                        "spec.target {t:?}: glob patterns are not supported; list the files"
                    )))
                } else {
                    Ok(dir.join(t))
                }
            })
            .collect()
    }
}

fn check(value: &str, field: &str, valid: fn(&str) -> bool) -> Result<(), String> {
    if valid(value) {
        Ok(())
    } else {
        Err(format!("{field}: {value:?} is not a valid value"))
    }
}

/// `<group>/<version>`, as Backstage requires.
fn valid_api_version(v: &str) -> bool {
    v.split_once('/')
        .is_some_and(|(g, version)| !g.is_empty() && !version.is_empty() && !version.contains('/'))
}

/// Letters and digits, starting with a letter, at most 63.
fn valid_kind(v: &str) -> bool {
    v.len() <= 63
        && v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*`, at most 63 characters.
fn valid_name(v: &str) -> bool {
    v.len() <= 63
        && v.split(['-', '_', '.'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// A DNS label: `[a-z0-9]+(-+[a-z0-9]+)*`, at most 63 characters.
fn valid_namespace(v: &str) -> bool {
    v.len() <= 63
        && !v.starts_with('-')
        && !v.ends_with('-')
        && !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities(text: &str) -> Result<Vec<EntityDoc>, String> {
        parse(Path::new("dir/users.yaml"), text).map_err(|e| e.to_string())
    }

    fn relations(doc: &EntityDoc) -> Vec<String> {
        doc.relations
            .iter()
            .map(|r| format!("{} {}", r.relation_type, r.target))
            .collect()
    }

    #[test]
    fn users_groups_and_owned_entities() {
        let docs = entities(concat!(
            "# people\n",
            "apiVersion: backstage.io/v1alpha1\nkind: User\n",
            "metadata: {name: jdoe}\n",
            "spec: {profile: {email: jdoe@example.com}, memberOf: [team-a, other/team-b]}\n",
            "---\n",
            "apiVersion: backstage.io/v1alpha1\nkind: Group\n",
            "metadata: {name: team-a, namespace: ops, annotations: {slack.com/bot-notify: C123}}\n",
            "spec: {type: team, parent: root, children: [sub], members: [jdoe, 'user:default/x']}\n",
            "--- # a component\n",
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n",
            "metadata: {name: svc}\nspec: {owner: 'user:jdoe', type: service}\n",
            "---\n",
            "apiVersion: example.com/v1\nkind: Robot\nmetadata: {name: r2}\nspec: {owner: {complex: true}}\n",
            "---\n# nothing but a comment\n",
            "---\napiVersion: example.com/v1\nkind: Note\nmetadata: {name: n}\nspec: just text\n",
            "--- # the end\n",
        ))
        .unwrap();
        assert_eq!(docs.len(), 5, "free-form specs of other kinds are fine");
        assert_eq!(docs[0].entity_ref.to_string(), "user:default/jdoe");
        assert_eq!(
            docs[0].at.to_string(),
            "dir/users.yaml:2",
            "comments are skipped"
        );
        assert_eq!(docs[0].email.as_deref(), Some("jdoe@example.com"));
        assert!(docs[0].annotations.is_empty());
        assert_eq!(
            docs[1]
                .annotations
                .get("slack.com/bot-notify")
                .map(String::as_str),
            Some("C123")
        );
        assert_eq!(
            relations(&docs[0]),
            [
                "memberOf group:default/team-a",
                "memberOf group:other/team-b"
            ]
        );
        assert_eq!(docs[1].at.line, 7);
        assert_eq!(
            relations(&docs[1]),
            [
                "childOf group:ops/root",
                "parentOf group:ops/sub",
                "hasMember user:ops/jdoe",
                "hasMember user:default/x"
            ]
        );
        assert_eq!(relations(&docs[2]), ["ownedBy user:default/jdoe"]);
        assert!(docs[3].relations.is_empty());
    }

    #[test]
    fn locations_point_at_files_next_to_them() {
        let docs = entities(concat!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\n",
            "spec: {targets: [./users.yaml, teams/a.yaml]}\n",
            "---\n",
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: remote}\n",
            "spec: {type: url, target: 'https://github.com/x/y/blob/main/all.yaml'}\n",
        ))
        .unwrap();
        assert_eq!(
            docs[0].targets,
            [
                PathBuf::from("dir/./users.yaml"),
                PathBuf::from("dir/teams/a.yaml")
            ]
        );
        assert!(docs[1].targets.is_empty());
        let err = entities(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: g}\nspec: {target: ./*.yaml}\n",
        )
        .unwrap_err();
        assert!(err.contains("glob patterns are not supported"), "{err}");
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let header = "apiVersion: backstage.io/v1alpha1\nkind: Group\n";
        assert_eq!(
            entities(&format!(
                "{header}metadata: {{name: ok}}\n---\n{header}metadata:\n  name: [x]\n"
            ))
            .unwrap_err(),
            "dir/users.yaml:8:9: metadata.name: invalid type: sequence, expected a string"
        );
        assert_eq!(
            entities(&format!(
                "{header}metadata: {{name: a}}\nspec:\n  members: [ok, 'user:']\n"
            ))
            .unwrap_err(),
            "dir/users.yaml:1: spec.members[1]: Entity reference \"user:\" was not on the form [<kind>:][<namespace>/]<name>"
        );
        assert_eq!(
            entities(&format!("{header}metadata: {{name: 'bad name'}}\n")).unwrap_err(),
            "dir/users.yaml:1: metadata.name: \"bad name\" is not a valid value"
        );
        assert_eq!(
            entities("kind: User\nmetadata: {name: a}\n").unwrap_err(),
            "dir/users.yaml:1:1: missing field `apiVersion`"
        );
        let err = entities("apiVersion: v/1\nkind: User\nmetadata: {name: a\n").unwrap_err();
        assert!(err.starts_with("dir/users.yaml:4"), "{err}");
        assert_eq!(
            entities("apiVersion: v/1\nkind: Component\nmetadata: {name: a}\nspec: {owner: [x]}\n")
                .unwrap_err(),
            "dir/users.yaml:1: spec.owner: expected an entity ref"
        );
    }

    #[test]
    fn value_rules() {
        assert!(valid_name("jenny-doe.2_x") && !valid_name("-x") && !valid_name("a..b"));
        assert!(valid_namespace("team-1") && !valid_namespace("Team") && !valid_namespace(""));
        assert!(valid_kind("Group") && !valid_kind("1x") && !valid_kind("a-b"));
        assert!(valid_api_version("backstage.io/v1alpha1") && !valid_api_version("v1"));
    }
}
