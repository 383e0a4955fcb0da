//! Loading a set of entity files into a lookup table, with relations attached to both ends as
//! Backstage's catalog stores them (a user's `memberOf` gives its group a `hasMember`, ...).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use notifications_node::{CatalogEntity, EntityRelation};

use super::entity_file::{self, EntityDoc, EntityFileError, Position};

/// Entities by canonical ref.
pub type Entities = HashMap<String, Arc<CatalogEntity>>;

/// What a file looked like when it was read (`None`: unreadable). Besides the modification time
/// and size, the inode and status-change time catch a file replaced by another (a rename, a
/// Kubernetes ConfigMap update) and edits within a coarse mtime tick.
pub type Stamp = Option<FileStamp>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode_and_change: (u64, i64, i64),
}

pub fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode_and_change: {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.ctime(), meta.ctime_nsec())
        },
    })
}

/// The result of one load: the entities, or why not; and every file it read (or tried to), so a
/// change to any of them triggers the next load.
pub struct Loaded {
    pub result: Result<Entities, LoadError>,
    pub files: Vec<(PathBuf, Stamp)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the catalog file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] EntityFileError),
}

/// Reads `files` and the files their `Location` entities point at.
pub fn load(files: &[PathBuf]) -> Loaded {
    let mut read = Vec::new();
    let result = read_all(files, &mut read).and_then(index);
    Loaded {
        result,
        files: read,
    }
}

fn read_all(
    files: &[PathBuf],
    read: &mut Vec<(PathBuf, Stamp)>,
) -> Result<Vec<EntityDoc>, LoadError> {
    let mut queue: Vec<PathBuf> = files.iter().rev().cloned().collect();
    let mut visited = HashSet::new();
    let mut docs = Vec::new();
    while let Some(path) = queue.pop() {
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !visited.insert(key) {
            continue;
        }
        // Stamped before reading: a change during the read is seen by the next check.
        read.push((path.clone(), stamp(&path)));
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let file_docs = entity_file::parse(&path, &text)?;
        // Depth-first, in the order written.
        queue.extend(
            file_docs
                .iter()
                .flat_map(|d| d.targets.iter())
                .rev()
                .cloned(),
        );
        docs.extend(file_docs);
    }
    Ok(docs)
}

fn index(docs: Vec<EntityDoc>) -> Result<Entities, LoadError> {
    let mut entities: HashMap<String, (Position, CatalogEntity)> =
        HashMap::with_capacity(docs.len());
    for doc in &docs {
        let key = doc.entity_ref.canonical();
        if let Some((first, _)) = entities.get(&key) {
            return Err(EntityFileError {
                at: doc.at.clone(),
                reason: format!("{} is already defined at {first}", doc.entity_ref),
            }
            .into());
        }
        let entity = CatalogEntity {
            entity_ref: doc.entity_ref.clone(),
            relations: Vec::new(),
            email: doc.email.clone(),
            annotations: doc.annotations.clone(),
        };
        entities.insert(key, (doc.at.clone(), entity));
    }
    let mut seen = HashSet::new();
    let mut attach = |entities: &mut HashMap<String, (Position, CatalogEntity)>,
                      source: String,
                      relation: EntityRelation| {
        let target = relation.target.canonical();
        if !seen.insert((source.clone(), relation.relation_type.clone(), target)) {
            return;
        }
        if let Some((_, entity)) = entities.get_mut(&source) {
            entity.relations.push(relation);
        }
    };
    for doc in docs {
        let source = doc.entity_ref.canonical();
        for r in doc.relations {
            let target_key = r.target.canonical();
            attach(
                &mut entities,
                target_key,
                EntityRelation {
                    relation_type: r.reverse.to_owned(),
                    target: doc.entity_ref.clone(),
                },
            );
            attach(
                &mut entities,
                source.clone(),
                EntityRelation {
                    relation_type: r.relation_type.to_owned(),
                    target: r.target,
                },
            );
        }
    }
    Ok(entities
        .into_iter()
        .map(|(key, (_, entity))| (key, Arc::new(entity)))
        .collect())
}

#[cfg(test)]
mod tests {
    use notifications_common::EntityRef;

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn relations(entities: &Entities, r: &str) -> Vec<String> {
        let key = EntityRef::parse(r).unwrap().canonical();
        entities[&key]
            .relations
            .iter()
            .map(|r| format!("{} {}", r.relation_type, r.target))
            .collect()
    }

    #[test]
    fn relations_are_attached_to_both_ends_once() {
        let dir = tempfile::tempdir().unwrap();
        let all = write(
            dir.path(),
            "all.yaml",
            concat!(
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\n",
                "spec: {targets: [teams/groups.yaml]}\n---\n",
                "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: jdoe}\n",
                "spec: {memberOf: [team]}\n",
            ),
        );
        write(
            dir.path(),
            "teams/groups.yaml",
            concat!(
                "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team}\n",
                "spec: {type: team, parent: org, children: [], members: [jdoe, ann]}\n---\n",
                "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: org}\n",
                "spec: {type: org, children: [team]}\n---\n",
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: back}\n",
                "spec: {target: ../all.yaml}\n",
            ),
        );
        let loaded = load(&[all]);
        assert_eq!(loaded.files.len(), 2, "each file once, cycles end");
        let entities = loaded.result.unwrap();
        assert_eq!(
            relations(&entities, "group:team"),
            [
                "hasMember user:default/jdoe",
                "childOf group:default/org",
                "hasMember user:default/ann",
            ]
        );
        assert_eq!(
            relations(&entities, "user:jdoe"),
            ["memberOf group:default/team"]
        );
        assert_eq!(
            relations(&entities, "group:org"),
            ["parentOf group:default/team"]
        );
        // ann is not in the catalog: her relation lives only on the group.
        assert!(!entities.contains_key("user:default/ann"));
    }

    #[test]
    fn duplicates_and_unreadable_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let user = "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: a}\n";
        let a = write(dir.path(), "a.yaml", user);
        let b = write(dir.path(), "b.yaml", &format!("# again\n{user}"));
        let err = load(&[a.clone(), b.clone()])
            .result
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: user:default/a is already defined at {}:1",
                b.display(),
                a.display()
            )
        );
        let missing = dir.path().join("missing.yaml");
        let loaded = load(&[a, missing.clone()]);
        assert!(loaded.result.unwrap_err().to_string().starts_with(&format!(
            "{}: cannot read the catalog file",
            missing.display()
        )));
        assert_eq!(loaded.files[1], (missing, None));
    }
}
