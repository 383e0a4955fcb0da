//! The contract test: schemathesis's property tests over the served OpenAPI document, every
//! check on, as a user and then as a service. Each operation gets generated requests, valid and
//! invalid, and each answer must be one the document promises: a documented status with its
//! schema, invalid requests refused, valid ones accepted, no server errors (but janus's
//! documented ones), 401 without credentials.
//!
//! schemathesis runs from a Python found (or a virtual environment made) as
//! [`python::with_tool`] says. Its settings, and why each narrows a check on some operations,
//! are in `tests/fixtures/schemathesis.toml`.

use std::sync::OnceLock;
use std::time::Instant;

use tokio::process::Command;

use crate::support::{DbKind, SERVICE, TestApp, USER, python};

/// Pinned: a new release may add checks, which should come with a change here, not break CI.
const SCHEMATHESIS: &str = "4.32.5";
const SETTINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/schemathesis.toml"
);

/// Every API the document can describe: janus under an extra base path too, where its list and
/// create are listed (on the shared mount only its own paths are); users and services may use
/// janus, so that their requests get past its permission check.
const CONFIG: &str = concat!(
    "notifications:\n  catalog: {files: ['",
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/catalog/org.yaml']}\n",
    "  legacyJanus:\n    extraBasePath: /api/notifications-legacy\n",
    "    userCreators: ['*']\n    acceptServiceTokens: true\n",
);

/// Generated requests per operation and phase, within CI's budget: both runs take under a minute
/// on two idle cores. The seed is fixed, so that CI repeats the same requests.
const EXAMPLES: &str = "20";
const SEED: &str = "20261204";

fn schemathesis_python() -> &'static std::path::Path {
    static PYTHON: OnceLock<std::path::PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        python::with_tool(
            "schemathesis-venv",
            &format!("import schemathesis; assert schemathesis.__version__ == '{SCHEMATHESIS}'"),
            &format!("schemathesis=={SCHEMATHESIS}"),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_holds_for_users_and_services() {
    let app = TestApp::start(DbKind::Sqlite, CONFIG)
        .await
        .expect("SQLite is always available");
    let python = tokio::task::spawn_blocking(schemathesis_python)
        .await
        .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    for (who, token) in [
        ("user", app.user_token(USER)),
        ("service", app.service_token(SERVICE)),
    ] {
        let started = Instant::now();
        let output = Command::new(python)
            .current_dir(workdir.path())
            .args(["-m", "schemathesis.cli", "--config-file", SETTINGS, "run"])
            .arg(app.url("/openapi.json"))
            // Both APIs answer a method a path does not serve as their contracts say, never
            // with a 405: upstream with a 404 (contract 1.1), janus with a 500 "Unknown
            // operation" (legacy contract 1.5). That holds for every path, so the check is off
            // for every operation.
            .args(["--checks", "all", "--exclude-checks", "unsupported_method"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", EXAMPLES, "--seed", SEED])
            .args(["--generation-database", "none", "--no-color"])
            .output()
            .await
            .expect("schemathesis runs");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found failures as a {who}:\n{report}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = report.lines().last().unwrap_or_default();
        eprintln!("as a {who}: {summary} ({:.0?})", started.elapsed());
    }
}
