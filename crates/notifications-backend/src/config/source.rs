//! Configuration documents to one JSON value, as Backstage's config loader does it: YAML parsing,
//! `${VAR}` substitution, `$env`/`$file` directives, merging, and `APP_CONFIG_*` overrides.

use std::path::Path;

use serde_json::{Map, Value};
use serde_norway::{Mapping, Value as Yaml};

use super::error::{ConfigError, child_key};
use super::key_lines::KeyLines;
use super::unknown::{self, UnknownKey};

/// Looks up an environment variable.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Which keys of a document to keep.
pub(crate) enum Keep {
    All,
    Only(&'static [(&'static str, Keep)]),
}

/// One configuration document, read and resolved.
#[derive(Debug)]
pub(super) struct Document {
    pub(super) value: Value,
    /// The keys in it this service ignores, found before pruning.
    pub(super) unknown: Vec<UnknownKey>,
    /// Where its keys are written.
    pub(super) lines: KeyLines,
}

/// Reads and resolves one configuration file.
pub(super) fn load_file(file: &Path, keep: &Keep, env: Env<'_>) -> Result<Document, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        file: file.to_owned(),
        source,
    })?;
    // `$file` paths are relative to the file that holds them, as in Backstage.
    let dir = file.parent().unwrap_or(Path::new(""));
    parse_checked(&text, &file.display().to_string(), dir, keep, env)
}

/// Parses one YAML document (`origin` names it in errors), drops the keys `keep` does not list,
/// and resolves substitutions and directives in the rest. An empty document is an empty map.
pub(crate) fn parse_document(
    text: &str,
    origin: &str,
    dir: &Path,
    keep: &Keep,
    env: Env<'_>,
) -> Result<Value, ConfigError> {
    parse_checked(text, origin, dir, keep, env).map(|document| document.value)
}

fn parse_checked(
    text: &str,
    origin: &str,
    dir: &Path,
    keep: &Keep,
    env: Env<'_>,
) -> Result<Document, ConfigError> {
    let yaml = serde_norway::from_str(text).map_err(|err| ConfigError::Yaml {
        origin: origin.to_owned(),
        message: err.to_string(),
    })?;
    let yaml = match yaml {
        Yaml::Null => Yaml::Mapping(Mapping::new()),
        map @ Yaml::Mapping(_) => map,
        _ => {
            return Err(ConfigError::in_document(
                origin,
                "",
                "the top level must be a map",
            ));
        }
    };
    let lines = KeyLines::of(text);
    // Pruning comes first so that whatever other plugins keep in a shared app-config (their
    // unset `${VAR}`s, missing `$file`s, odd YAML) cannot stop this service.
    let mut unknown = unknown::find(&yaml, origin);
    for key in &mut unknown {
        key.line = lines.line(&key.key);
    }
    let value = to_json(prune(yaml, keep), "", origin)
        .and_then(|json| Resolver { env, dir, origin }.resolve(json, ""))
        .map_err(|err| match err {
            ConfigError::Source {
                origin,
                key,
                message,
                ..
            } => ConfigError::Source {
                line: lines.line(&key),
                origin,
                key,
                message,
            },
            err => err,
        })?;
    Ok(Document {
        value,
        unknown,
        lines,
    })
}

fn prune(value: Yaml, keep: &Keep) -> Yaml {
    match (keep, value) {
        // A directive (`{$file: ...}`) is kept whole so that resolving it reports it.
        (Keep::Only(keys), Yaml::Mapping(mut map)) if !is_directive(&map) => {
            let mut kept = Mapping::new();
            for (key, keep) in *keys {
                if let Some(value) = map.remove(*key) {
                    kept.insert(Yaml::from(*key), prune(value, keep));
                }
            }
            Yaml::Mapping(kept)
        }
        (_, value) => value,
    }
}

fn is_directive(map: &Mapping) -> bool {
    map.keys()
        .any(|key| key.as_str().is_some_and(|key| key.starts_with('$')))
}

fn to_json(value: Yaml, key: &str, origin: &str) -> Result<Value, ConfigError> {
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into()
            } else if let Some(i) = n.as_i64() {
                i.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| {
                        ConfigError::in_document(origin, key, format!("unsupported number {n}"))
                    })?
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{key}[{i}]"), origin))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(map) => {
            let mut object = Map::new();
            for (k, v) in map {
                let Yaml::String(k) = k else {
                    let found = match k {
                        Yaml::Number(n) => format!("the number {n}"),
                        Yaml::Bool(b) => format!("the boolean {b}"),
                        Yaml::Null => "null".to_owned(),
                        _ => "a sequence, map or tagged value".to_owned(),
                    };
                    let message = format!("map keys must be strings, found {found} (quote it)");
                    return Err(ConfigError::in_document(origin, key, message));
                };
                let value = to_json(v, &child_key(key, &k), origin)?;
                object.insert(k, value);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let message = format!("YAML tags are not supported (found {})", tagged.tag);
            return Err(ConfigError::in_document(origin, key, message));
        }
    })
}

/// Applies substitutions and directives to the values of one document.
struct Resolver<'a> {
    env: Env<'a>,
    dir: &'a Path,
    origin: &'a str,
}

impl Resolver<'_> {
    /// Resolves `value`, which sits at `key`. Nulls are dropped from maps and lists, as Backstage
    /// drops them, so they read as absent.
    fn resolve(&self, value: Value, key: &str) -> Result<Value, ConfigError> {
        match value {
            Value::String(s) => self.substitute(&s, key).map(Value::String),
            Value::Array(items) => {
                let mut resolved = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    if !item.is_null() {
                        resolved.push(self.resolve(item, &format!("{key}[{i}]"))?);
                    }
                }
                Ok(Value::Array(resolved))
            }
            Value::Object(map) => {
                if let Some(directive) = map.keys().find(|k| k.starts_with('$')) {
                    return self.directive(directive, &map, key).map(Value::String);
                }
                let mut resolved = Map::new();
                for (k, v) in map {
                    if !v.is_null() {
                        let value = self.resolve(v, &child_key(key, &k))?;
                        resolved.insert(k, value);
                    }
                }
                Ok(Value::Object(resolved))
            }
            other => Ok(other),
        }
    }

    /// `${VAR}`, `${VAR:-default}` and the `$${` escape, with Backstage's syntax: a reference
    /// is `${` up to the next `}` without another `{` in between; anything else is literal.
    fn substitute(&self, input: &str, key: &str) -> Result<String, ConfigError> {
        let mut out = String::with_capacity(input.len());
        let mut rest = input;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after
                .find(['{', '}'])
                .filter(|&i| after[i..].starts_with('}'))
            else {
                out.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            };
            let body = &after[..end];
            if rest[..start].ends_with('$') {
                out.push_str(&rest[..start - 1]);
                out.push_str("${");
                out.push_str(body);
                out.push('}');
            } else {
                out.push_str(&rest[..start]);
                out.push_str(&self.expand(body, key)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn expand(&self, reference: &str, key: &str) -> Result<String, ConfigError> {
        let (name, default) = match reference.split_once(":-") {
            Some((name, default)) => (name.trim(), Some(default.trim())),
            None => (reference.trim(), None),
        };
        if name.is_empty() {
            let message = format!("${{{reference}}} does not name an environment variable");
            return Err(self.error(key, message));
        }
        match ((self.env)(name), default) {
            (Some(value), None) => Ok(value),
            (Some(value), Some(_)) if !value.is_empty() => Ok(value),
            (_, Some(default)) => Ok(default.to_owned()),
            // Backstage silently drops the key here, so the built-in default applies. We refuse
            // instead: a forgotten variable (a password, a URL) must not quietly turn into a
            // default such as a local database. `${VAR:-}` opts in to an empty value.
            (None, None) => Err(self.unset(key, name)),
        }
    }

    /// A map with a `$`-key: `{$env: VAR}` or `{$file: path}`. The argument is substituted first.
    fn directive(
        &self,
        directive: &str,
        map: &Map<String, Value>,
        key: &str,
    ) -> Result<String, ConfigError> {
        if map.len() != 1 {
            return Err(self.error(key, format!("{directive} must be the only key in its map")));
        }
        let Value::String(argument) = &map[directive] else {
            return Err(self.error(key, format!("the value of {directive} must be a string")));
        };
        let argument = self.substitute(argument, key)?;
        match directive {
            "$env" => (self.env)(&argument).ok_or_else(|| self.unset(key, &argument)),
            "$file" => {
                let path = self.dir.join(&argument);
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    self.error(key, format!("cannot read $file {}: {err}", path.display()))
                })?;
                // Unlike Backstage, which keeps the contents as they are: files holding a token,
                // secret or password nearly always end with a newline that is not part of it.
                Ok(text.trim_end().to_owned())
            }
            "$include" => Err(self.error(
                key,
                "$include is not supported; pass the files as separate configuration files",
            )),
            _ => Err(self.error(
                key,
                format!("unknown directive {directive} (expected $env or $file)"),
            )),
        }
    }

    fn unset(&self, key: &str, name: &str) -> ConfigError {
        self.error(key, format!("environment variable {name} is not set"))
    }

    fn error(&self, key: &str, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::in_document(self.origin, key, message)
    }
}

/// Merges `overlay` into `base`: maps key by key, anything else (lists too) replaced whole.
pub(super) fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

const OVERRIDE_PREFIX: &str = "APP_CONFIG_";

/// Backstage's `APP_CONFIG_*` overrides from `(name, value)` pairs (other names are skipped):
/// `APP_CONFIG_backend_listen_port=8080` sets `backend.listen.port`. A value is JSON when it
/// parses as JSON, otherwise a string; empty values are skipped. As in Backstage, values are
/// not substituted.
pub fn overrides(vars: &[(String, String)]) -> Result<Value, ConfigError> {
    let mut vars: Vec<_> = vars
        .iter()
        .filter(|(name, value)| name.starts_with(OVERRIDE_PREFIX) && !value.is_empty())
        .collect();
    // Sorted, so that conflicting variables are reported the same way every time.
    vars.sort();
    let mut root = Map::new();
    for (name, value) in vars {
        let error = |message: &str| ConfigError::Override {
            name: name.clone(),
            message: message.to_owned(),
        };
        let key = &name[OVERRIDE_PREFIX.len()..];
        if !key.split('_').all(is_key_part) {
            return Err(error(
                "not a valid config key (expected parts like `backend_listen_port` or `app_baseUrl`)",
            ));
        }
        let (parents, last) = key.rsplit_once('_').unwrap_or(("", key));
        let mut object = &mut root;
        for part in parents.split('_').filter(|part| !part.is_empty()) {
            let entry = object
                .entry(part)
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                return Err(error(
                    "conflicts with another APP_CONFIG_ variable that sets a parent key",
                ));
            };
            object = next;
        }
        if object.contains_key(last) {
            return Err(error(
                "conflicts with another APP_CONFIG_ variable that sets a child key",
            ));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
        if value.is_null() {
            return Err(error("the value must not be null"));
        }
        object.insert(last.to_owned(), value);
    }
    Ok(Value::Object(root))
}

/// Backstage's key pattern for one part: letters and digits, starting with a letter, with
/// single dashes between such words.
fn is_key_part(part: &str) -> bool {
    part.split('-').all(|word| {
        let mut chars = word.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.example.com".into()),
            "PORT" => Some("5433".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn parse_in(yaml: &str, dir: &Path) -> Result<Value, ConfigError> {
        parse_document(yaml, "test.yaml", dir, &Keep::All, &env)
    }

    fn parse(yaml: &str) -> Result<Value, ConfigError> {
        parse_in(yaml, Path::new("."))
    }

    fn error(yaml: &str) -> String {
        parse(yaml).unwrap_err().to_string()
    }

    #[test]
    fn merge_order_later_wins_maps_merge_lists_replace() {
        let mut base = parse("a: {b: 1, c: [1, 2], d: {e: 1, f: 2}}\ng: x\n").unwrap();
        merge(
            &mut base,
            parse("a: {b: 2, c: [3], d: {f: 3}}\nh: y\n").unwrap(),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 2, "c": [3], "d": {"e": 1, "f": 3}}, "g": "x", "h": "y"})
        );

        // A map replaces a scalar and the other way round.
        let mut base = json!({"listen": ":7007", "db": {"x": 1}});
        merge(&mut base, json!({"listen": {"port": 1}, "db": "sqlite"}));
        assert_eq!(base, json!({"listen": {"port": 1}, "db": "sqlite"}));
    }

    #[test]
    fn empty_documents_are_empty_maps() {
        assert_eq!(parse("").unwrap(), json!({}));
        assert_eq!(parse("# comments only\n").unwrap(), json!({}));
    }

    #[test]
    fn nulls_are_dropped() {
        assert_eq!(
            parse("a: ~\nb: [1, null]\nc: {d: null}\n").unwrap(),
            json!({"b": [1], "c": {}})
        );
    }

    #[test]
    fn the_top_level_must_be_a_map() {
        assert_eq!(
            error("- a\n"),
            "test.yaml: (top level): the top level must be a map"
        );
    }

    #[test]
    fn yaml_errors_name_the_origin_and_line() {
        let err = error("a:\n  b: 1\n c: 2\n");
        assert!(err.starts_with("test.yaml: invalid YAML: "), "{err}");
        assert!(err.contains("line 3 column 2"), "{err}");
    }

    #[test]
    fn map_keys_must_be_strings() {
        assert_eq!(
            error("a:\n  1: x\n"),
            "test.yaml:1: a: map keys must be strings, found the number 1 (quote it)"
        );
        assert!(error("a: !custom x\n").contains("YAML tags are not supported"));
    }

    #[test]
    fn variables_are_substituted() {
        let value = parse(concat!(
            "plain: ${HOST}\n",
            "embedded: postgres://${HOST}:${ PORT }/db\n",
            "number: ${PORT}\n",
            "fallback: ${MISSING:-localhost}\n",
            "fallback_when_empty: ${EMPTY:-default}\n",
            "empty_fallback: ${MISSING:-}\n",
            "set_but_empty: x${EMPTY}x\n",
            "escaped: $${HOST} and $$${HOST}\n",
            "not_references: ${ and ${a{b}} and $HOST\n",
            "list: ['${HOST}']\n",
        ))
        .unwrap();
        assert_eq!(
            value,
            json!({
                "plain": "db.example.com",
                "embedded": "postgres://db.example.com:5433/db",
                "number": "5433",
                "fallback": "localhost",
                "fallback_when_empty": "default",
                "empty_fallback": "",
                "set_but_empty": "xx",
                "escaped": "${HOST} and $${HOST}",
                "not_references": "${ and ${a{b}} and $HOST",
                "list": ["db.example.com"],
            })
        );
    }

    #[test]
    fn unset_variables_name_the_key_and_variable() {
        assert_eq!(
            error("backend:\n  database:\n    connection:\n      password: ${PG_PASSWORD}\n"),
            "test.yaml:4: backend.database.connection.password: environment variable PG_PASSWORD is not set"
        );
        assert_eq!(
            error("keys: [{secret: '${SECRET}'}]\n"),
            "test.yaml:1: keys[0].secret: environment variable SECRET is not set"
        );
        assert!(error("a: ${}\n").contains("does not name an environment variable"));
    }

    #[test]
    fn env_and_file_directives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token.txt"), "s3cr3t-token\n\n").unwrap();
        let value = parse_in(
            "a: {$env: HOST}\nb: {$file: token.txt}\nc: {$file: '${MISSING:-token.txt}'}\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"a": "db.example.com", "b": "s3cr3t-token", "c": "s3cr3t-token"})
        );

        assert_eq!(
            error("a: {$env: NOPE}\n"),
            "test.yaml:1: a: environment variable NOPE is not set"
        );
        let err = parse_in("a: {b: {$file: missing.txt}}\n", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("test.yaml:1: a.b: cannot read $file "),
            "{err}"
        );
        assert!(err.contains("missing.txt"), "{err}");
        assert!(error("a: {$include: other.yaml}\n").contains("$include is not supported"));
        assert!(error("a: {$env: X, other: 1}\n").contains("$env must be the only key"));
        assert!(error("a: {$secret: X}\n").contains("unknown directive $secret"));
        assert!(error("a: {$env: [X]}\n").contains("must be a string"));
    }

    #[test]
    fn files_resolve_directives_relative_to_themselves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file").unwrap();
        let file = dir.path().join("app-config.yaml");
        std::fs::write(&file, "a: {$file: secret}\n").unwrap();
        assert_eq!(
            load_file(&file, &Keep::All, &env).unwrap().value,
            json!({"a": "from-file"})
        );

        let missing = dir.path().join("nope.yaml");
        let err = load_file(&missing, &Keep::All, &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}: cannot read", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn pruning_keeps_only_listed_keys_before_resolving() {
        const KEEP: Keep = Keep::Only(&[("backend", Keep::Only(&[("listen", Keep::All)]))]);
        let yaml = concat!(
            "backend:\n  listen: {port: '${PORT}'}\n  cors: {origin: '${UNSET}'}\n",
            "integrations:\n  github: [{token: '${GITHUB_TOKEN}'}]\n",
            "weird: {1: x, y: !tag z}\n",
        );
        let value = parse_document(yaml, "test.yaml", Path::new("."), &KEEP, &env).unwrap();
        assert_eq!(value, json!({"backend": {"listen": {"port": "5433"}}}));

        // A directive where a map of kept keys was expected is kept, so that it is reported.
        let err = parse_document(
            "backend: {$include: b.yaml}\n",
            "t",
            Path::new("."),
            &KEEP,
            &env,
        );
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("$include is not supported")
        );
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn app_config_overrides() {
        let value = overrides(&vars(&[
            ("APP_CONFIG_backend_listen_port", "8080"),
            ("APP_CONFIG_app_baseUrl", "https://backstage.example.com"),
            ("APP_CONFIG_backend_auth_keys", r#"[{"secret": "abc"}]"#),
            ("APP_CONFIG_notifications_retention", "false"),
            ("APP_CONFIG_quoted", r#""8080""#),
            ("APP_CONFIG_skipped", ""),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
        assert_eq!(
            value,
            json!({
                "backend": {"listen": {"port": 8080}, "auth": {"keys": [{"secret": "abc"}]}},
                "app": {"baseUrl": "https://backstage.example.com"},
                "notifications": {"retention": false},
                "quoted": "8080",
            })
        );
    }

    #[test]
    fn bad_app_config_overrides() {
        let err = |pairs: &[(&str, &str)]| overrides(&vars(pairs)).unwrap_err().to_string();
        assert!(
            err(&[("APP_CONFIG_backend__port", "1")])
                .starts_with("APP_CONFIG_backend__port: not a valid config key")
        );
        assert!(err(&[("APP_CONFIG_1x", "1")]).contains("not a valid config key"));
        assert!(err(&[("APP_CONFIG_a", "null")]).contains("must not be null"));
        assert!(
            err(&[("APP_CONFIG_a", "1"), ("APP_CONFIG_a_b", "2")])
                .starts_with("APP_CONFIG_a_b: conflicts")
        );
        assert!(
            err(&[("APP_CONFIG_a_b", "2"), ("APP_CONFIG_a", "1")])
                .starts_with("APP_CONFIG_a_b: conflicts")
        );
        assert!(overrides(&vars(&[("APP_CONFIG_plugin-name_key", "1")])).is_ok());
    }
}
