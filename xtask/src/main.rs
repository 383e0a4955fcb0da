//! Developer tasks for this workspace, run as `cargo xtask <command>`.
//!
//! This file only dispatches; each command lives in `commands.rs` and the
//! throwaway PostgreSQL cluster they share lives in `pg.rs`. The tasks target
//! the Unix machines developers and CI use (they drive `pg_ctl`, `runuser`,
//! process groups).
// A developer tool: a failed step (a cluster that does not start, a bench answer that is not
// what it should be) ends the run with its message, which is what a panic does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
// Printing progress and usage is what a task runner is for; the workspace-wide
// `print_stdout` lint is aimed at the library and service crates.
#![allow(clippy::print_stdout)]

mod bench;
mod child;
mod commands;
mod fuzz;
mod msrv;

use xtask::{chromium, interrupt, pg};

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: cargo xtask <command> [args...]

Commands:
  test [args...]            Run `cargo test --workspace [args...]` against a throwaway
                            PostgreSQL cluster, then remove it. The tests find the
                            cluster in NOTIFICATIONS_TEST_PG_URL. With -p/--package,
                            only the packages named are tested.
                            e.g. `cargo xtask test -- --nocapture`
                                 `cargo xtask test -p notifications-backend`
  pg-shell [--] [cmd...]    Start a throwaway PostgreSQL cluster, run <cmd> (default:
                            $SHELL) with NOTIFICATIONS_TEST_PG_URL and PGHOST/PGPORT/
                            PGUSER/PGDATABASE pointing at it, then remove it.
                            e.g. `cargo xtask pg-shell -- psql -c 'select version()'`
  bench [--quick] [--db sqlite|postgres|both]
                            Build the backend in release and measure it, as a separate
                            process, on SQLite and on a throwaway durable PostgreSQL;
                            results in <target dir>/bench/results.json (see
                            docs/benchmarks.md and `cargo xtask bench --help`).
  fuzz [--seconds N] [target...]
                            Build the cargo-fuzz targets in fuzz/ (nightly; cargo-fuzz is
                            installed when missing) and run each (default: all) for N
                            seconds (default 30) from its corpus in fuzz/corpus/.
  msrv                      Check that no locked dependency needs a newer Rust than the
                            workspace's `rust-version` (offline, with the lock file as
                            it is; CI runs it).
  help                      Show this message.

Environment:
  NOTIFICATIONS_PG_BIN_DIR  Look for initdb, pg_ctl, postgres and pg_isready only in
                            this directory (default: PATH, then the newest
                            /usr/lib/postgresql/*/bin).
  CI                        When true, `test` fails if PostgreSQL is missing instead
                            of skipping the PostgreSQL tests.
";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();

    match command.as_ref().and_then(|c| c.to_str()) {
        Some("test") => commands::test(&rest),
        Some("pg-shell") => commands::pg_shell(&rest),
        Some("bench") => bench::bench(&rest),
        Some("fuzz") => fuzz::fuzz(&rest),
        Some("msrv") => msrv::msrv(&rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            ExitCode::FAILURE
        }
        None if command.is_some() => {
            eprintln!("xtask: the command name is not valid UTF-8\n\n{USAGE}");
            ExitCode::FAILURE
        }
        None => {
            eprint!("xtask: no command given\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
