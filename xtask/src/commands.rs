//! The `test` and `pg-shell` commands.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

use crate::pg::{PgBinDir, TempPostgres};
use crate::{child, interrupt};

/// Where the tests look for a PostgreSQL server (an admin URL); tests that
/// need PostgreSQL skip themselves when it is unset.
const TEST_PG_URL_ENV: &str = "NOTIFICATIONS_TEST_PG_URL";

/// Exit code for a run stopped by Ctrl-C before the child ran: 128 + SIGINT.
const INTERRUPTED: u8 = 130;

/// `cargo xtask test [args...]`: `cargo test --workspace [args...]` against a
/// throwaway cluster.
pub fn test(args: &[OsString]) -> ExitCode {
    if let Err(e) = interrupt::install() {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }

    // `cargo run` (behind the `cargo xtask` alias) sets CARGO to the cargo
    // that is running us, so the tests use the same toolchain.
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("test");
    // Cargo silently ignores `-p` next to `--workspace`, so
    // `cargo xtask test -p notifications-backend` would test everything.
    if !selects_packages(args) {
        cmd.arg("--workspace");
    }
    cmd.args(args).current_dir(workspace_root());

    let cluster = match PgBinDir::locate() {
        Ok(bin) => match start(|| TempPostgres::start_with(bin, false)) {
            Ok(pg) => Some(pg),
            Err(code) => return code,
        },
        Err(why) if in_ci() => {
            eprintln!(
                "xtask: error: {why}.\n\
                 xtask: CI is set, so PostgreSQL is required: install the PostgreSQL server \
                 or point NOTIFICATIONS_PG_BIN_DIR at its bin directory."
            );
            return ExitCode::FAILURE;
        }
        Err(why) => {
            eprintln!(
                "xtask: warning: {why}.\n\
                 xtask: warning: the PostgreSQL tests will be SKIPPED. Install the PostgreSQL \
                 server or set NOTIFICATIONS_PG_BIN_DIR to run them."
            );
            None
        }
    };

    // Only xtask decides which server the tests use: a URL left over in the
    // caller's environment must not quietly turn a "skipped" run into one
    // against some other database.
    match &cluster {
        Some(pg) => cmd.env(TEST_PG_URL_ENV, pg.url()),
        None => cmd.env_remove(TEST_PG_URL_ENV),
    };
    child::run(&mut cmd)
    // `cluster` is dropped here, which stops the server and deletes its files.
}

/// `cargo xtask pg-shell [--] [cmd...]`: run any command (default: the
/// user's shell) against a throwaway cluster.
pub fn pg_shell(args: &[OsString]) -> ExitCode {
    if let Err(e) = interrupt::install() {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }

    // `cargo xtask pg-shell -- cmd` hands us the `--` too.
    let args = match args.first() {
        Some(first) if first == "--" => &args[1..],
        _ => args,
    };
    let mut cmd = match args.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest);
            cmd
        }
        None => Command::new(env::var_os("SHELL").unwrap_or_else(|| "sh".into())),
    };

    // Unlike `test`, there is nothing to fall back to without PostgreSQL:
    // not finding it is just another way to fail to start.
    let pg = match start(|| TempPostgres::start(false)) {
        Ok(pg) => pg,
        Err(code) => return code,
    };

    // The PG* variables let `psql` and friends connect without arguments.
    cmd.env(TEST_PG_URL_ENV, pg.url())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", pg.port().to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres");
    child::run(&mut cmd)
}

/// Runs one of the `TempPostgres` constructors with progress messages,
/// turning failure into the exit code to end with. Both commands start
/// non-durable clusters: faster, and nothing in them must survive a crash.
fn start(start: impl FnOnce() -> Result<TempPostgres, String>) -> Result<TempPostgres, ExitCode> {
    eprintln!("xtask: starting a throwaway PostgreSQL cluster");
    match start() {
        Ok(pg) => {
            eprintln!(
                "xtask: PostgreSQL ({}) is ready: {TEST_PG_URL_ENV}={}",
                pg.bin_dir().display(),
                pg.url()
            );
            Ok(pg)
        }
        Err(_) if interrupt::requested() => Err(ExitCode::from(INTERRUPTED)),
        Err(e) => {
            eprintln!("xtask: error: could not start PostgreSQL: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Whether cargo arguments (before any `--`, after which they belong to the
/// test binaries) pick packages with `-p`/`--package`.
fn selects_packages(args: &[OsString]) -> bool {
    args.iter()
        .map(|arg| arg.to_string_lossy())
        .take_while(|arg| arg != "--")
        .any(|arg| arg.starts_with("-p") || arg == "--package" || arg.starts_with("--package="))
}

/// `CI=true` is what CI systems (ours included) set; "1" and "yes" are
/// accepted too, as some set those.
pub fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// Run `cargo test` from the workspace root, so `--workspace` and relative
/// paths mean the same whichever directory `cargo xtask` was run from.
pub fn workspace_root() -> &'static Path {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn package_selection_is_detected() {
        assert!(selects_packages(&args(&["-p", "notifications-backend"])));
        assert!(selects_packages(&args(&["-pnotifications-backend"])));
        assert!(selects_packages(&args(&["--package", "a"])));
        assert!(selects_packages(&args(&[
            "--package=a",
            "--",
            "--nocapture"
        ])));
    }

    #[test]
    fn test_binary_args_are_not_package_selection() {
        assert!(!selects_packages(&args(&[])));
        assert!(!selects_packages(&args(&["--", "-p"])));
        assert!(!selects_packages(&args(&[
            "--release",
            "--",
            "--nocapture"
        ])));
    }
}
