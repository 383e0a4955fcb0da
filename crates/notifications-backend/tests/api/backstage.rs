//! docs/backstage.md, done: the service started with the guide's own YAML snippets (taken from
//! the file, so that the guide cannot drift from what is tested), and upstream's published
//! Backstage packages run against it under node (`tests/fixtures/backstage-clients/scenario.mjs`:
//! a real Backstage backend whose plugin sends through `plugin-notifications-node`, and the
//! frontend's `NotificationsClient` and `SignalClient`). SQLite only: the guide is about the
//! wiring, not the database.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::support::node::backstage_clients;
use crate::support::{BIN, DbKind, TestDb, serve_binary};

const GUIDE: &str = include_str!("../../../../docs/backstage.md");
const SCENARIO: &str = include_str!("../fixtures/backstage-clients/scenario.mjs");

/// The first line of the guide's snippets of this service's configuration, and of Backstage's.
const SERVICE_SNIPPET: &str = "# notifications.yaml";
const BACKSTAGE_SNIPPET: &str = "# app-config.production.yaml";
/// The hosts the snippets name, replaced by the test's.
const BACKSTAGE_INTERNAL: &str = "http://backstage:7007";
const SERVICE_INTERNAL: &str = "http://notifications:7007";
const SERVICE_EXTERNAL: &str = "https://notifications.example.com";
/// The variable the snippets read the catalog token from, on both sides.
const TOKEN_VAR: &str = "NOTIFICATIONS_CATALOG_TOKEN";
const CATALOG_TOKEN: &str = "1b9c5f0e7d2a4c8e9f3b6a1d0c7e2f5a";

/// The ```yaml blocks of the guide.
fn yaml_blocks() -> Vec<String> {
    let mut found = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in GUIDE.lines() {
        match block.as_mut() {
            None if line.trim_start() == "```yaml" => block = Some(Vec::new()),
            None => {}
            Some(lines) if line.trim_start() == "```" => {
                found.push(lines.join("\n") + "\n");
                block = None;
            }
            Some(lines) => lines.push(line),
        }
    }
    found
}

/// The guide's YAML blocks whose first line starts with `first_line`.
fn snippets(first_line: &str) -> Vec<String> {
    let found: Vec<String> = yaml_blocks()
        .into_iter()
        .filter(|block| block.starts_with(first_line))
        .collect();
    assert!(
        !found.is_empty(),
        "docs/backstage.md has no yaml block starting with `{first_line}`"
    );
    found
}

/// The snippets starting with `first_line`, each with the `(from, to)` replacements made, as
/// files `<name>-<n>.yaml` in `dir`.
fn snippet_files(
    dir: &Path,
    name: &str,
    first_line: &str,
    replacements: &[(&str, &str)],
) -> Vec<PathBuf> {
    snippets(first_line)
        .iter()
        .enumerate()
        .map(|(i, snippet)| {
            let text = replacements
                .iter()
                .fold(snippet.clone(), |text, (from, to)| text.replace(from, to));
            write(dir, &format!("{name}-{i}.yaml"), &text)
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A loopback port nobody listens on now, for the Backstage backend: the service's configuration
/// names it before that backend starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration the guide shows is one the test runs.
#[test]
fn every_yaml_block_of_the_guide_is_tested() {
    for block in yaml_blocks() {
        assert!(
            block.starts_with(SERVICE_SNIPPET) || block.starts_with(BACKSTAGE_SNIPPET),
            "a yaml block of docs/backstage.md that the test does not run: start it with \
             `{SERVICE_SNIPPET}` or `{BACKSTAGE_SNIPPET}`:\n{block}"
        );
    }
}

#[test]
fn the_guide_names_the_hosts_the_test_replaces() {
    let service = snippets(SERVICE_SNIPPET).concat();
    assert!(service.contains(BACKSTAGE_INTERNAL), "{service}");
    let backstage = snippets(BACKSTAGE_SNIPPET).concat();
    for host in [SERVICE_INTERNAL, SERVICE_EXTERNAL] {
        assert!(backstage.contains(host), "{backstage}");
    }
}

/// The guide's configuration of the service has no key the service would ignore.
#[test]
fn the_guide_s_configuration_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(BIN);
    command
        .current_dir(dir.path())
        .env(TOKEN_VAR, CATALOG_TOKEN);
    for file in snippet_files(dir.path(), "notifications", SERVICE_SNIPPET, &[]) {
        command.arg("--config").arg(file);
    }
    let out = command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "check-config: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_s_clients_work_as_the_guide_says() {
    // Installs on first use (a minute or two), before anything is started.
    let clients = tokio::task::spawn_blocking(backstage_clients)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backstage_port = free_port();
    let backstage_url = format!("http://127.0.0.1:{backstage_port}");

    let db = TestDb::create(DbKind::Sqlite).expect("SQLite is always available");
    let mut configs = snippet_files(
        dir.path(),
        "notifications",
        SERVICE_SNIPPET,
        &[(BACKSTAGE_INTERNAL, &backstage_url)],
    );
    configs.push(write(dir.path(), "database.yaml", &db.config_yaml()));
    configs.push(write(
        dir.path(),
        "listen.yaml",
        "backend:\n  listen: {host: 127.0.0.1, port: 0}\n",
    ));
    let (_service, api) = serve_binary(dir.path(), &configs, &[(TOKEN_VAR, CATALOG_TOKEN)]).await;

    let backstage_configs = snippet_files(
        dir.path(),
        "app-config",
        BACKSTAGE_SNIPPET,
        &[(SERVICE_INTERNAL, &api.root), (SERVICE_EXTERNAL, &api.root)],
    );
    let mut node = Command::new("node");
    node.args([
        "--experimental-websocket",
        "--test-reporter=tap",
        "scenario.mjs",
    ]);
    for file in &backstage_configs {
        node.arg("--config").arg(file);
    }
    let run = node
        .current_dir(clients)
        .env("NOTIFICATIONS_URL", &api.root)
        .env("BACKSTAGE_PORT", backstage_port.to_string())
        .env(TOKEN_VAR, CATALOG_TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the scenario ends within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("node's output:\n{stdout}\nnode's stderr:\n{stderr}");
    assert!(
        out.status.success(),
        "the scenario failed ({}); {report}",
        out.status
    );
    // Every test of the scenario ran and passed (a scenario that stopped early passes none).
    let tests = SCENARIO.lines().filter(|l| l.starts_with("test(")).count();
    let summary = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse::<usize>().ok())
    };
    assert_eq!(summary("pass"), Some(tests), "{report}");
    assert_eq!(summary("fail"), Some(0), "{report}");
}
