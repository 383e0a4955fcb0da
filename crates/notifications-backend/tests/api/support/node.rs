//! Node.js packages for the tests that run upstream's own published code against the service:
//! installed by npm, once, into directories under the target directory, and reused. node and npm
//! are required: without them these tests fail, saying so, they are not skipped (CI has Node.js
//! 20 and npm).
//!
//! Two kinds: Backstage's clients and backend, pinned by
//! `tests/fixtures/backstage-clients/package-lock.json` and installed with `npm ci`; and small
//! sets named by their npm specs ([`packages`]), for the import test's upstream migrations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The fixture's files that make the installation; `scenario.mjs` files are copied on every call.
const INSTALL_FILES: [&str; 3] = ["package.json", "package-lock.json", ".npmrc"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backstage-clients")
}

/// The directory where the fixture's packages are installed, with the fixture's scripts copied
/// in (so that they resolve the packages). Installs on first use; panics with the reason when
/// node or npm is missing or the installation fails.
pub fn backstage_clients() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        check_tool("node");
        check_tool("npm");
        let fixture = fixture_dir();
        let mut digest = Sha256::new();
        for file in INSTALL_FILES {
            digest.update(std::fs::read(fixture.join(file)).expect("a fixture file"));
        }
        let stamp: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("backstage-clients");
        let stamp_file = dir.join(".installed");
        if std::fs::read_to_string(&stamp_file).ok().as_deref() != Some(stamp.as_str()) {
            install(&fixture, &dir);
            std::fs::write(&stamp_file, &stamp).expect("write the install stamp");
        }
        dir
    });
    for entry in std::fs::read_dir(fixture_dir()).expect("the fixture directory") {
        let path = entry.expect("a fixture entry").path();
        if path.extension().is_some_and(|e| e == "mjs") {
            std::fs::copy(&path, dir.join(path.file_name().expect("a file name")))
                .expect("copy a fixture script");
        }
    }
    dir
}

fn check_tool(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{tool}` is not on PATH: the tests that run upstream's Backstage packages need Node.js \
         (20 or newer) and npm; install them (Debian: apt-get install nodejs npm)"
    );
}

fn install(fixture: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the npm directory");
    for file in INSTALL_FILES {
        std::fs::copy(fixture.join(file), dir.join(file)).expect("copy a fixture file");
    }
    eprintln!(
        "installing upstream's Backstage packages into {} (npm ci, once)",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-progress", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .expect("npm runs");
    assert!(
        status.success(),
        "`npm ci` in {} failed ({status}): the npm registry must be reachable",
        dir.display()
    );
}

/// Installs are serialised: the tests of one binary share the directories.
static INSTALLING: Mutex<()> = Mutex::new(());

/// A directory whose `node_modules` holds `packages` (npm specs, exact enough to pin what is
/// tested). Blocking.
pub fn packages(name: &str, packages: &[&str]) -> PathBuf {
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    check_tool("node");
    check_tool("npm");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("npm-{name}"));
    let marker = dir.join("installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|done| done == wanted) {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package.json"), "{\"private\": true}\n").unwrap();
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(packages)
        .current_dir(&dir)
        .status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "npm install {packages:?} in {} failed: {status:?} (npm must reach its registry)",
        dir.display()
    );
    std::fs::write(&marker, wanted).unwrap();
    dir
}

/// Runs `node script args...` with `dir`'s packages; panics with its output when it fails.
pub fn run(dir: &Path, script: &Path, args: &[&str]) {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "node {} failed: {}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
