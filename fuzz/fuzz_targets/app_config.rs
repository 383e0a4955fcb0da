//! App-config loading with substitutions: never a panic (errors are `Err`); a file's contents
//! reach the configuration only through a `$file` the document names, never through a variable's
//! value or an `APP_CONFIG_*` override; and variable values are not substituted again.
//!
//! Input: the YAML document, then optionally a line `#APP_CONFIG` and `name=value` lines, each
//! an `APP_CONFIG_<name>` variable.

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use notifications_backend::config::Config;
use notifications_backend::fuzzing::{app_config_overrides, config_document};
use tempfile::TempDir;

/// The contents of `token.txt`, beside the document.
const FILE_SECRET: &str = "file-contents-7f3a";
/// The value of `SECRET_VAR`.
const ENV_SECRET: &str = "env-value-91c2";

fn env(name: &str) -> Option<String> {
    let value = match name {
        "HOST" => "localhost",
        "PORT" => "7007",
        "EMPTY" => "",
        "TOKEN_FILE" => "token.txt",
        "SECRET_VAR" => ENV_SECRET,
        // Values that look like substitutions and directives, which must stay as they are.
        "INDIRECT" => "${SECRET_VAR}",
        "FILE_JSON" => r#"{"$file": "token.txt"}"#,
        _ => return None,
    };
    Some(value.to_owned())
}

/// A directory with `token.txt`, and the path the document is written to for a whole load.
static DIR: LazyLock<(TempDir, PathBuf)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), format!("{FILE_SECRET}\n")).unwrap();
    let file = dir.path().join("app-config.yaml");
    (dir, file)
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (yaml, vars) = text.split_once("\n#APP_CONFIG\n").unwrap_or((text, ""));
    let vars: Vec<(String, String)> = vars
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (format!("APP_CONFIG_{name}"), value.to_owned()))
        .collect();
    // YAML escapes and tags can spell any text: where there are none, the words below must be
    // in the document itself for what they name to be read.
    let spelled_out = !yaml.contains(['\\', '!']);
    let names = |word: &str| !spelled_out || yaml.contains(word);
    // A secret's own text written in the input (the fuzzer learns it from the comparisons) is no
    // leak.
    let leaked = |value: &str, secret: &str| value.contains(secret) && !text.contains(secret);

    let (dir, file) = &*DIR;
    if let Ok(value) = config_document(yaml, dir.path(), &env) {
        let value = value.to_string();
        if leaked(&value, FILE_SECRET) {
            assert!(names("$file"), "a file read with no $file: {value}");
        }
        if leaked(&value, ENV_SECRET) {
            assert!(
                names("SECRET_VAR"),
                "a variable's value substituted again: {value}"
            );
        }
    }
    if let Ok(value) = app_config_overrides(&vars) {
        let value = value.to_string();
        assert!(
            !leaked(&value, FILE_SECRET) && !leaked(&value, ENV_SECRET),
            "{value}"
        );
    }
    std::fs::write(file, yaml).unwrap();
    if let Ok(config) = Config::load_with_env(std::slice::from_ref(file), &env, &vars) {
        let config = format!("{config:?}");
        if leaked(&config, FILE_SECRET) {
            assert!(names("$file"), "a file read with no $file: {config}");
        }
        if leaked(&config, ENV_SECRET) {
            assert!(
                names("SECRET_VAR"),
                "a variable's value substituted again: {config}"
            );
        }
    }
});
