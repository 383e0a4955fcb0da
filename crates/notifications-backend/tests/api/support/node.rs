//! Node.js packages for the tests that run upstream's own code: installed by npm, once, into a
//! directory of their own under the target directory. node and npm are required: a test that
//! needs them fails, saying so, where they are missing (CI has node 20 and npm).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Installs are serialised: the tests of one binary share the directories.
static INSTALLING: Mutex<()> = Mutex::new(());

/// A directory whose `node_modules` holds `packages` (npm specs, exact enough to pin what is
/// tested). Blocking.
pub fn packages(name: &str, packages: &[&str]) -> PathBuf {
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is needed to run upstream's code in this test (Node.js 20 and npm): {node:?}"
    );
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
