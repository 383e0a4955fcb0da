//! Keys this service does not know, in the sections it owns (`notifications`, `backend.auth`,
//! `backend.database`, `backend.https`, `backend.rateLimit`): reported so that a typo does not
//! pass unnoticed, but not refused, since Backstage ignores them too. Other sections belong to
//! Backstage or to other plugins sharing the app-config, and are not looked at.
//!
//! The known keys are those docs/configuration.md lists: a key the docs miss is reported (and so noticed) rather than silently accepted, and a test checks that
//! every documented key is accepted. A documented key without documented children (`headers`,
//! `options`, `ssl`) is free-form below it.

use std::fmt;

use serde_norway::Value as Yaml;

use super::error::{at, child_key};

/// The page whose tables list the keys.
const DOCS: &[&str] = &[include_str!("../../../../docs/configuration.md")];

/// Where keys are checked.
const CHECKED: &[&[&str]] = &[
    &["notifications"],
    &["backend", "auth"],
    &["backend", "database"],
    &["backend", "https"],
    &["backend", "rateLimit"],
];

/// Maps whose unlisted children are other plugins' business: processors this service does not
/// have, and Backstage's rate limits and database settings for other plugins.
const OPEN: &[&str] = &[
    "notifications.processors",
    "backend.rateLimit.plugin",
    "backend.database.plugin",
];

/// A key that this service ignores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    /// The file (or document) that sets it.
    pub origin: String,
    /// Its line in that file, when known.
    pub line: Option<usize>,
    /// Its dotted path, e.g. `notifications.processors.webhook[0].hedaers`.
    pub key: String,
    /// The closest known sibling, when one is close.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = at(&self.origin, self.line);
        write!(f, "{at}: unknown key {} is ignored", self.key)?;
        match self.suggestion {
            Some(known) => write!(f, "; did you mean `{known}`?"),
            None => Ok(()),
        }
    }
}

/// The unknown keys in one document's top-level map.
pub(super) fn find(document: &Yaml, origin: &str) -> Vec<UnknownKey> {
    let mut found = Vec::new();
    for path in CHECKED {
        let section = path.iter().try_fold(document, |value, key| value.get(*key));
        if let Some(section) = section {
            let key = path.join(".");
            walk(section, &key, &key, origin, &mut found);
        }
    }
    found
}

/// [`find`] on the `APP_CONFIG_*` overrides, which are JSON.
pub(super) fn find_in_json(overrides: &serde_json::Value, origin: &str) -> Vec<UnknownKey> {
    // Converting JSON to YAML cannot fail (all keys are strings).
    serde_norway::to_value(overrides)
        .map(|document| find(&document, origin))
        .unwrap_or_default()
}

/// `shown` is the key as written (`slack[0]`), `pattern` as documented (`slack[]`).
fn walk(value: &Yaml, shown: &str, pattern: &str, origin: &str, found: &mut Vec<UnknownKey>) {
    match value {
        Yaml::Mapping(map) if has_children(pattern) => {
            for (key, child) in map {
                // A key that is not a string is refused when the document is read; a directive
                // (`$file`, `$env`) is resolved then.
                let Some(key) = key.as_str().filter(|key| !key.starts_with('$')) else {
                    continue;
                };
                let child_pattern = format!("{pattern}.{key}");
                if is_known(&child_pattern) {
                    walk(child, &child_key(shown, key), &child_pattern, origin, found);
                } else if !OPEN.contains(&pattern) {
                    found.push(UnknownKey {
                        origin: origin.to_owned(),
                        line: None,
                        key: child_key(shown, key),
                        suggestion: closest(pattern, key),
                    });
                }
            }
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let (shown, pattern) = (format!("{shown}[{i}]"), format!("{pattern}[]"));
                walk(item, &shown, &pattern, origin, found);
            }
        }
        _ => {}
    }
}

/// The keys the docs list: the first column of their tables.
fn documented() -> impl Iterator<Item = &'static str> {
    DOCS.iter()
        .flat_map(|page| page.lines())
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
}

/// What the docs list below `pattern`, e.g. `.secret` or `[].secret` below `backend.auth.keys`.
fn below(pattern: &str) -> impl Iterator<Item = &'static str> {
    documented().filter_map(move |key| {
        key.strip_prefix(pattern)
            .filter(|rest| rest.starts_with(['.', '[']))
    })
}

fn has_children(pattern: &str) -> bool {
    below(pattern).next().is_some()
}

fn is_known(pattern: &str) -> bool {
    documented().any(|key| key == pattern) || has_children(pattern)
}

/// The documented child of `parent` that `key` most likely meant to be.
fn closest(parent: &str, key: &str) -> Option<&'static str> {
    let key = key.to_lowercase();
    below(parent)
        .filter_map(|rest| rest.strip_prefix('.'))
        .filter_map(|rest| rest.split(['.', '[']).next())
        .map(|name| {
            let lower = name.to_lowercase();
            let score = strsim::jaro_winkler(&key, &lower);
            (score, strsim::osa_distance(&key, &lower), name)
        })
        // Jaro-Winkler ranks; one edit (`kye`) is close too, which it misses in short names.
        .filter(|(score, edits, _)| *score >= 0.85 || *edits <= 1)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(yaml: &str) -> Vec<String> {
        let document: Yaml = serde_norway::from_str(yaml).unwrap();
        find(&document, "test.yaml")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn typos_are_reported_with_the_closest_known_key() {
        assert_eq!(
            unknown("notifications: {defaultSetings: {channels: []}, retention: false}"),
            [
                "test.yaml: unknown key notifications.defaultSetings is ignored; \
              did you mean `defaultSettings`?"
            ]
        );
        assert_eq!(
            unknown(
                "notifications:\n  processors:\n    webhook:\n      - {url: 'https://h', hedaers: {}}\n"
            ),
            [
                "test.yaml: unknown key notifications.processors.webhook[0].hedaers is ignored; \
              did you mean `headers`?"
            ]
        );
        assert_eq!(
            unknown("backend: {auth: {keys: [{secret: x, scret: y}]}, database: {clinet: pg}}"),
            [
                "test.yaml: unknown key backend.auth.keys[0].scret is ignored; did you mean `secret`?",
                "test.yaml: unknown key backend.database.clinet is ignored; did you mean `client`?",
            ]
        );
        assert_eq!(
            unknown("backend: {https: {certificate: {cert: c, kye: k}}, rateLimit: {windw: 1m}}"),
            [
                "test.yaml: unknown key backend.https.certificate.kye is ignored; did you mean `key`?",
                "test.yaml: unknown key backend.rateLimit.windw is ignored; did you mean `window`?",
            ]
        );
        assert_eq!(
            unknown("notifications: {somethingElse: 1}"),
            ["test.yaml: unknown key notifications.somethingElse is ignored"]
        );
    }

    #[test]
    fn other_plugins_keys_and_free_form_maps_are_not_reported() {
        let whole_app = "
app: {title: Backstage, baseUrl: 'http://localhost:3000'}
backend:
  baseUrl: http://localhost:7007
  reading: {allow: [{host: example.com}]}
  cache: {store: memory}
  rateLimit: {global: false, plugin: {catalog: {window: 1m}}, store: {type: memory}}
  database:
    client: pg
    connection: {host: db, ssl: {rejectUnauthorized: false, ca: x}}
    plugin: {catalog: {connection: {database: catalog}}}
  auth:
    externalAccess:
      - {type: static, options: {token: t, subject: s, anything: 1}}
catalog: {locations: [{type: file, target: ./catalog.yaml}]}
techdocs: {builder: local}
auth: {providers: {guest: {}}}
notifications:
  processors:
    email: {transportConfig: {transport: smtp, hostname: mail}, sender: a@b.c}
    someonesElse: {whatever: true}
    webhook: [{url: 'https://h', headers: {X-Team: platform}}]
  legacyJanus: {$file: ./janus.yaml}
";
        assert_eq!(unknown(whole_app), Vec::<String>::new());
    }

    /// Each documented key, set to a map of an unknown key (or, for a list, to a list of one):
    /// the documented key itself is never reported, only what lies below a key whose children
    /// are listed.
    #[test]
    fn every_documented_key_is_known() {
        let keys: Vec<_> = documented().collect();
        assert!(keys.len() > 100, "the docs' tables were read: {keys:?}");
        for key in keys {
            let mut value = Yaml::String("x".into());
            let mut parts: Vec<&str> = key.split('.').collect();
            while let Some(part) = parts.pop() {
                let (name, lists) = match part.split_once("[]") {
                    Some((name, rest)) => (name, 1 + rest.matches("[]").count()),
                    None => (part, 0),
                };
                for _ in 0..lists {
                    value = Yaml::Sequence(vec![value]);
                }
                let mut map = serde_norway::Mapping::new();
                map.insert(Yaml::String(name.into()), value);
                value = Yaml::Mapping(map);
            }
            let reported = find(&value, "docs");
            assert!(reported.is_empty(), "{key}: {reported:?}");
        }
    }
}
