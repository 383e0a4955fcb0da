//! `cargo xtask bench`: builds the backend in release, runs it as a separate
//! process on each database, drives it through the scenarios and reports.
//!
//! Every scenario gets a fresh server and a fresh database (a new SQLite
//! file; a new database in the one throwaway PostgreSQL cluster), so the
//! scenarios do not measure each other's leftovers, and the peak memory of
//! the server is that scenario's.

mod backend;
mod browser;
mod import;
mod load;
mod read_all;
mod recovery;
mod report;
mod scenario;
mod shapes;
mod signals;
mod throughput;
mod tokens;
mod web_inbox;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use self::backend::Backend;
use self::report::Record;
use self::scenario::{Ctx, Scenario};
use crate::commands::{in_ci, workspace_root};
use crate::interrupt;
use crate::pg::TempPostgres;

/// The static `externalAccess` token the scenarios send with.
const SENDER_TOKEN: &str = "bench-sender-token";
const SENDER_SUBJECT: &str = "bench";

const READINESS_PATH: &str = "/.backstage/health/v1/readiness";

/// Exit code for a run stopped by Ctrl-C: 128 + SIGINT.
const INTERRUPTED: u8 = 130;

pub const USAGE: &str = "\
Usage: cargo xtask bench [--quick] [--db sqlite|postgres|both] [--scenario NAME]...

Builds the backend in release, then for each database starts it as a separate process and
runs the scenarios against it. Results go to <target dir>/bench/results.json and a table.
  --quick           few repetitions: checks the scenarios work, the numbers mean little
  --db              which database(s) to measure (default: both). PostgreSQL is a throwaway
                    durable cluster (fsync on), started and removed by xtask
  --scenario NAME   run only this scenario (repeatable; default: all)
  --binary PATH     measure this build of the backend instead of building the workspace's
                    (e.g. a copy built from an earlier commit, to compare in one sitting)

Scenarios:
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

#[derive(Debug, PartialEq)]
struct Options {
    quick: bool,
    dbs: Vec<Db>,
    /// Empty: all.
    scenarios: Vec<String>,
    /// `None`: build the workspace's.
    binary: Option<PathBuf>,
    help: bool,
}

impl Options {
    fn parse(args: &[OsString]) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            dbs: vec![Db::Sqlite, Db::Postgres],
            scenarios: Vec::new(),
            binary: None,
            help: false,
        };
        let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = |flag: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--quick" if inline.is_none() => options.quick = true,
                "--db" => {
                    options.dbs = match value("--db")?.as_str() {
                        "sqlite" => vec![Db::Sqlite],
                        "postgres" | "pg" => vec![Db::Postgres],
                        "both" => vec![Db::Sqlite, Db::Postgres],
                        other => {
                            return Err(format!("--db {other}: expected sqlite, postgres or both"));
                        }
                    }
                }
                "--scenario" => options.scenarios.push(value("--scenario")?),
                "--binary" => options.binary = Some(PathBuf::from(value("--binary")?)),
                "-h" | "--help" => options.help = true,
                _ => return Err(format!("unexpected argument `{arg}`")),
            }
        }
        Ok(options)
    }
}

fn usage() -> String {
    let mut text = USAGE.to_owned();
    for s in scenario::all() {
        text.push_str(&format!("  {:<16}  {}\n", s.name(), s.about()));
    }
    text
}

pub fn bench(args: &[OsString]) -> ExitCode {
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprint!("xtask: bench: {e}\n\n{}", usage());
            return ExitCode::FAILURE;
        }
    };
    if options.help {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let scenarios: Vec<Box<dyn Scenario>> = scenario::all()
        .into_iter()
        .filter(|s| options.scenarios.is_empty() || options.scenarios.iter().any(|n| n == s.name()))
        .collect();
    if let Some(unknown) = options
        .scenarios
        .iter()
        .find(|n| !scenarios.iter().any(|s| s.name() == n.as_str()))
    {
        eprint!("xtask: bench: unknown scenario `{unknown}`\n\n{}", usage());
        return ExitCode::FAILURE;
    }
    if let Err(e) = interrupt::install() {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let result = run(&options, &scenarios);
    if interrupt::requested() {
        return ExitCode::from(INTERRUPTED);
    }
    match result {
        Ok(true) => {
            eprintln!(
                "xtask: bench: done in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("xtask: bench: some measurements failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything after argument parsing. `Ok(false)`: results were written but
/// some scenario failed or saw errors.
fn run(options: &Options, scenarios: &[Box<dyn Scenario>]) -> Result<bool, String> {
    let target_dir = cargo_target_dir()?;
    let binary = match &options.binary {
        Some(binary) if binary.is_file() => binary.clone(),
        Some(binary) => return Err(format!("--binary {}: no such file", binary.display())),
        None => build_backend(&target_dir)?,
    };
    interrupt::check()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the async runtime: {e}"))?;
    // An idle connection is dropped before the server's keep-alive (actix: 5 s) can close it:
    // reusing one the server is closing fails the request ("error sending request"), which a
    // pause between a scenario's requests (seeding, then vacuuming) made happen.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))?;

    let mut records = Vec::new();
    let mut all_ok = true;
    for &db in &options.dbs {
        // Declared before the servers that use it, so it is dropped after them.
        let cluster = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                eprintln!("xtask: bench: starting a throwaway durable PostgreSQL cluster");
                Some(TempPostgres::start(true).map_err(|e| format!("PostgreSQL: {e}"))?)
            }
        };
        for scenario in scenarios {
            interrupt::check()?;
            if db == Db::Sqlite && scenario.postgres_only() {
                eprintln!(
                    "xtask: bench: {} on sqlite: skipped (it crashes and restarts PostgreSQL; \
                     there is no database server to crash with SQLite)",
                    scenario.name()
                );
                continue;
            }
            if let Some(missing) = scenario.missing() {
                if in_ci() {
                    eprintln!(
                        "xtask: bench: {} on {} failed: {missing} (CI is set: every scenario \
                         must run)",
                        scenario.name(),
                        db.name()
                    );
                    all_ok = false;
                } else {
                    eprintln!(
                        "xtask: bench: {} on {}: SKIPPED: {missing}",
                        scenario.name(),
                        db.name()
                    );
                }
                continue;
            }
            eprintln!("xtask: bench: {} on {}", scenario.name(), db.name());
            let run = RunOne {
                rt: &rt,
                client: &client,
                binary: &binary,
                db,
                cluster: cluster.as_ref(),
                quick: options.quick,
            };
            match run.run(scenario.as_ref()) {
                Ok(results) => {
                    all_ok &= results.iter().all(|r| r.errors == 0);
                    records.extend(results);
                }
                Err(e) => {
                    interrupt::check()?;
                    eprintln!(
                        "xtask: bench: {} on {} failed: {e}",
                        scenario.name(),
                        db.name()
                    );
                    all_ok = false;
                }
            }
        }
    }

    let out_dir = target_dir.join("bench");
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let results = out_dir.join("results.json");
    fs::write(&results, report::to_json(&records))
        .map_err(|e| format!("{}: {e}", results.display()))?;
    println!("\n{}", report::table(&records));
    eprintln!("xtask: bench: results written to {}", results.display());
    Ok(all_ok)
}

/// One scenario on one database: a fresh directory, server and database.
/// Its results share the server, so they share its memory figures too.
struct RunOne<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: &'a reqwest::Client,
    binary: &'a Path,
    db: Db,
    cluster: Option<&'a TempPostgres>,
    quick: bool,
}

impl RunOne<'_> {
    fn run(&self, scenario: &dyn Scenario) -> Result<Vec<Record>, String> {
        // Holds the data dir, the catalog files, the configuration and the
        // server's log; deleted on drop (after the server, declared below).
        let dir = tempfile::Builder::new()
            .prefix("notifications-bench-")
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory: {e}"))?;
        let port = backend::free_port()?;
        let base = dir.path().join("app-config.json");
        write_json(&base, &self.base_config(port, scenario.name(), dir.path()))?;
        let extra = dir.path().join("scenario-config.json");
        write_json(&extra, &scenario.prepare(dir.path())?)?;
        let configs = [base, extra];
        let data_dir = dir.path().join("data");

        let mut server = Backend::spawn(
            self.binary,
            &configs,
            &data_dir,
            dir.path().join("backend.log"),
        )?;
        let base_url = format!("http://127.0.0.1:{port}");
        server.wait_until_ready(self.rt, self.client, &format!("{base_url}{READINESS_PATH}"))?;
        let idle_rss_kb = server.rss_kb();

        let ctx = Ctx {
            rt: self.rt,
            client: self.client,
            base_url,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            sender_token: SENDER_TOKEN.to_owned(),
            quick: self.quick,
            server_pid: server.pid(),
            cluster: self.cluster,
            binary: self.binary,
            configs: &configs,
            data_dir: &data_dir,
        };
        let results = scenario.run(&ctx).map_err(|e| server.with_log_tail(e))?;
        let peak_rss_kb = server.peak_rss_kb();
        if let Err(e) = server.stop() {
            // The numbers stand; a server that does not stop cleanly is
            // still worth knowing about.
            eprintln!("xtask: bench: warning: {e}");
        }
        Ok(results
            .iter()
            .map(|r| {
                Record::new(
                    &r.name,
                    self.db.name(),
                    &r.samples,
                    idle_rss_kb,
                    peak_rss_kb,
                )
            })
            .collect())
    }

    /// What every scenario runs with: loopback, the sender's static token,
    /// and the database (defaults otherwise: durable, as in production).
    fn base_config(&self, port: u16, scenario: &str, dir: &Path) -> Value {
        let database = match (self.db, self.cluster) {
            (Db::Postgres, Some(pg)) => json!({
                "client": "pg",
                "connection": format!(
                    "postgres://postgres@127.0.0.1:{}/bench_{}",
                    pg.port(),
                    scenario.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                ),
            }),
            _ => json!({
                "client": "better-sqlite3",
                "connection": dir.join("data").join("notifications.sqlite"),
            }),
        };
        json!({
            "backend": {
                "baseUrl": format!("http://127.0.0.1:{port}"),
                "listen": {"host": "127.0.0.1", "port": port},
                "database": database,
                "auth": {"externalAccess": [
                    {"type": "static", "options": {"token": SENDER_TOKEN, "subject": SENDER_SUBJECT}}
                ]},
            }
        })
    }
}

/// JSON is YAML, so the backend reads these as app-config files.
fn write_json(path: &Path, value: &Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn cargo() -> OsString {
    // Set by the `cargo run` behind `cargo xtask`: the same toolchain.
    env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Where cargo puts build output (CARGO_TARGET_DIR, `build.target-dir`, or
/// `target/`), as cargo itself resolves it.
fn cargo_target_dir() -> Result<PathBuf, String> {
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata did not say where the target directory is".to_owned())
}

/// `cargo build --release -p notifications-backend --locked`, output shown.
fn build_backend(target_dir: &Path) -> Result<PathBuf, String> {
    eprintln!("xtask: bench: building the backend (release)");
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "notifications-backend",
            "--locked",
        ])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run cargo build: {e}"))?;
    interrupt::check()?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    let binary = target_dir.join("release").join("notifications-backend");
    if !binary.is_file() {
        return Err(format!("{} was not built", binary.display()));
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(list: &[&str]) -> Result<Options, String> {
        Options::parse(&list.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_measure_both_databases() {
        let o = parse(&[]).unwrap();
        assert!(!o.quick);
        assert_eq!(o.dbs, [Db::Sqlite, Db::Postgres]);
        assert!(o.scenarios.is_empty());
    }

    #[test]
    fn flags_are_parsed() {
        let o = parse(&["--quick", "--db", "sqlite", "--scenario", "fanout-10k"]).unwrap();
        assert!(o.quick);
        assert_eq!(o.dbs, [Db::Sqlite]);
        assert_eq!(o.scenarios, ["fanout-10k"]);
        assert_eq!(o.binary, None);
        assert_eq!(
            parse(&["--binary", "/tmp/old"]).unwrap().binary,
            Some(PathBuf::from("/tmp/old"))
        );
        assert_eq!(parse(&["--db=postgres"]).unwrap().dbs, [Db::Postgres]);
        assert_eq!(
            parse(&["--db", "both"]).unwrap().dbs,
            [Db::Sqlite, Db::Postgres]
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(parse(&["--db", "mysql"]).is_err());
        assert!(parse(&["--db"]).is_err());
        assert!(parse(&["--fast"]).is_err());
        assert!(parse(&["--quick=yes"]).is_err());
        assert!(parse(&["--binary"]).is_err());
    }
}
