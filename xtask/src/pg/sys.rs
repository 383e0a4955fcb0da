//! Small OS helpers for `TempPostgres`, std-only (the workspace forbids
//! `unsafe`, so no libc).

use std::env;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether we run as root (effective uid 0): read from /proc on Linux, and
/// from `id -u` where there is no /proc.
pub fn is_root() -> Result<bool, String> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        // "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
        let effective = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1));
        if let Some(uid) = effective {
            return Ok(uid == "0");
        }
    }
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("could not run `id -u` to find the current user: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

pub fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `name` from PATH, else from the first of `fallback_dirs` that has it.
pub fn find_program(name: &str, fallback_dirs: &[&str]) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(fallback_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Creates `<temp dir>/<prefix>-<pid>-<n>`, a name no other run uses:
/// `create_dir` fails rather than reuse an existing directory.
pub fn create_unique_dir(prefix: &str) -> Result<PathBuf, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            nanos.wrapping_add(attempt)
        );
        let dir = env::temp_dir().join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("could not create {}: {e}", dir.display())),
        }
    }
    Err(format!(
        "could not create a unique directory in {}",
        env::temp_dir().display()
    ))
}

/// Runs a cluster-management command with its output captured, and returns
/// that output in the error only if it fails (initdb and pg_ctl are chatty).
///
/// The command gets its own process group so that a Ctrl-C in the terminal
/// does not kill it half-way (a `pg_ctl start` killed while waiting would
/// leave a server we do not know about; a killed `pg_ctl stop` would leave
/// one running). xtask notices the Ctrl-C itself, between steps.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .map_err(|e| {
            format!(
                "could not run {what} ({}): {e}",
                cmd.get_program().to_string_lossy()
            )
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!("{what} failed ({})", output.status);
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        if !text.trim().is_empty() {
            message.push('\n');
            message.push_str(text.trim_end());
        }
    }
    Err(message)
}

/// Quotes `s` as one word for `sh`: pg_ctl hands its `-o` options to a
/// shell, so a path with spaces would otherwise split.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_quote_keeps_one_word() {
        assert_eq!(sh_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn unique_dirs_differ() {
        let a = create_unique_dir("xtask-sys-test").unwrap();
        let b = create_unique_dir("xtask-sys-test").unwrap();
        assert_ne!(a, b);
        fs::remove_dir(a).unwrap();
        fs::remove_dir(b).unwrap();
    }
}
