//! Python interpreters for the tests' helper tools (an SMTP server, a property tester).
//!
//! The interpreter is `NOTIFICATIONS_TEST_PYTHON` when set, else `python3` if the tool is there,
//! else a virtual environment of the tool's own under the target directory, into which it is
//! installed on first use (where pip cannot install for the user, PEP 668).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An interpreter on which `probe` (Python code) runs, installing `requirement` into the
/// virtual environment `venv` if need be. Blocking; callers keep the answer.
pub fn with_tool(venv: &str, probe: &str, requirement: &str) -> PathBuf {
    let runs = |python: &Path| {
        Command::new(python)
            .args(["-c", probe])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(python) = std::env::var_os("NOTIFICATIONS_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let system = PathBuf::from("python3");
    if runs(&system) {
        return system;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(venv);
    let venv_python = venv.join("bin/python");
    if !runs(&venv_python) {
        let run = |cmd: &mut Command| {
            let status = cmd.status().expect("python3 runs");
            assert!(status.success(), "{cmd:?} failed");
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&venv_python).args(["-m", "pip", "install", "--quiet", requirement]));
    }
    venv_python
}
