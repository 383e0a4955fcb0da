//! Configuration errors, and typed parsing that names the failing key.

use std::fmt::Display;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why the configuration could not be loaded. The message names the file (with the line when the
/// YAML parser knows it) or the dotted key, e.g. `backend.auth.keys[0].secret`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file could not be read.
    #[error("{}: cannot read configuration file: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A configuration document is not valid YAML; the parser's message carries the position.
    #[error("{origin}: invalid YAML: {message}")]
    Yaml { origin: String, message: String },
    /// A value in a document could not be resolved: an unset variable, an unreadable `$file`, a
    /// map key that is not a string...
    #[error("{}: {key}: {message}", at(origin, *line))]
    Source {
        origin: String,
        /// The key's line in the document, when known.
        line: Option<usize>,
        key: String,
        message: String,
    },
    /// An `APP_CONFIG_*` environment variable is malformed.
    #[error("{name}: {message}")]
    Override { name: String, message: String },
    /// The merged configuration has a missing or wrong value.
    #[error("{}invalid configuration at {key}: {message}", written.as_ref().map(|at| format!("{at}: ")).unwrap_or_default())]
    Invalid {
        key: String,
        /// `file:line` of the key in the last file that sets it, when one does.
        written: Option<String>,
        message: String,
    },
}

impl ConfigError {
    pub(super) fn in_document(origin: &str, key: &str, message: impl Display) -> Self {
        Self::Source {
            origin: origin.to_owned(),
            line: None,
            key: display_key(key).to_owned(),
            message: message.to_string(),
        }
    }

    pub(super) fn invalid(key: &str, message: impl Display) -> Self {
        Self::Invalid {
            key: display_key(key).to_owned(),
            written: None,
            message: message.to_string(),
        }
    }
}

/// `origin:line`, or `origin` when the line is not known.
pub(super) fn at(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{origin}:{line}"),
        None => origin.to_owned(),
    }
}

fn display_key(key: &str) -> &str {
    if key.is_empty() { "(top level)" } else { key }
}

/// The dotted key of `child` under `parent`.
pub(super) fn child_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Deserializes `value`, which sits at key `prefix`, naming the failing key in errors.
pub(super) fn parse_at<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let key = if err.path().iter().next().is_none() {
            prefix.to_owned()
        } else if inner.starts_with('[') {
            format!("{prefix}{inner}")
        } else {
            child_key(prefix, &inner)
        };
        ConfigError::invalid(&key, err.into_inner())
    })
}
