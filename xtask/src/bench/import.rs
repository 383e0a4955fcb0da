//! `import`: `notifications-backend import` from a database in upstream 0.6.9's schema
//! (`upstream_import.sql`) into an empty database of this service, in the bench's PostgreSQL
//! cluster. Measured from the import's own report: notifications per second over the
//! notification table's whole time (reading, writing, and making the indexes again), and the
//! whole import's wall time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::report::{Measured, Samples};
use super::scenario::{Ctx, Scenario};
use crate::interrupt;
use crate::pg::{TempPostgres, sys};

const UPSTREAM_SQL: &str = include_str!("upstream_import.sql");
const SOURCE_DB: &str = "bench_import_upstream";
const TARGET_DB: &str = "bench_import_target";

pub struct Import;

impl Import {
    fn sizes(quick: bool) -> (u64, usize) {
        // (notifications, imports measured)
        if quick { (20_000, 1) } else { (500_000, 3) }
    }
}

impl Scenario for Import {
    fn name(&self) -> &'static str {
        "import"
    }

    fn about(&self) -> &'static str {
        "PostgreSQL only: `notifications-backend import` of 500,000 notifications for 5,000 users, \
         100 broadcasts with 1,000 marks each and 10,000 settings, from upstream 0.6.9's tables \
         into an empty database, 3 times (--quick: 20,000 once): req/s = notifications per \
         second over the notification table's time, indexes included; p50 = the whole import"
    }

    fn postgres_only(&self) -> bool {
        true
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        Ok(json!({}))
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let pg = ctx
            .cluster
            .ok_or("import needs the PostgreSQL cluster, to hold upstream's database")?;
        let (notifications, runs) = Self::sizes(ctx.quick);
        let dir = tempfile::Builder::new()
            .prefix("notifications-bench-import-")
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory: {e}"))?;
        psql(pg, "postgres", &recreate(SOURCE_DB))?;
        eprintln!(
            "xtask: bench: import: filling upstream's tables ({notifications} notifications)"
        );
        // A file: psql interpolates its variables there, not in `-c`.
        let script = dir.path().join("upstream.sql");
        std::fs::write(&script, UPSTREAM_SQL).map_err(|e| format!("{}: {e}", script.display()))?;
        let mut fill = psql_command(pg, SOURCE_DB)?;
        fill.arg("-v")
            .arg(format!("notifications={notifications}"))
            .arg("-f")
            .arg(&script);
        sys::run_quiet(&mut fill, "psql (filling upstream's tables)")?;
        let config = dir.path().join("target.json");
        let target = json!({"backend": {"database": {
            "client": "pg",
            "connection": format!("postgres://postgres@127.0.0.1:{}/{TARGET_DB}", pg.port()),
        }}});
        std::fs::write(&config, target.to_string())
            .map_err(|e| format!("{}: {e}", config.display()))?;
        let from = format!("postgres://postgres@127.0.0.1:{}/{SOURCE_DB}", pg.port());

        let mut samples = Samples::default();
        for run in 1..=runs {
            interrupt::check()?;
            psql(pg, "postgres", &recreate(TARGET_DB))?;
            let started = Instant::now();
            let output = Command::new(ctx.binary)
                .arg("--config")
                .arg(&config)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(["import", "--from", &from])
                .output()
                .map_err(|e| format!("could not run {}: {e}", ctx.binary.display()))?;
            let wall = started.elapsed();
            let report = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                samples.error(format!(
                    "import failed ({}): {}{}",
                    output.status,
                    report,
                    String::from_utf8_lossy(&output.stderr)
                ));
                continue;
            }
            match notification_line(&report) {
                Some((imported, seconds)) if imported == notifications => {
                    eprintln!(
                        "xtask: bench: import {run} of {runs}: {imported} notifications in \
                         {:.1} s ({:.0}/s), the whole import {:.1} s",
                        seconds.as_secs_f64(),
                        imported as f64 / seconds.as_secs_f64(),
                        wall.as_secs_f64()
                    );
                    // One sample per import (its wall time); the rate counts notifications
                    // over the notification table's time.
                    samples.success(wall);
                    samples.requests += imported - 1;
                    samples.elapsed += seconds;
                }
                _ => samples.error(format!(
                    "expected {notifications} notifications imported, the report says:\n{report}"
                )),
            }
        }
        psql(
            pg,
            "postgres",
            &format!("DROP DATABASE {SOURCE_DB}; DROP DATABASE {TARGET_DB}"),
        )?;
        Ok(vec![Measured::new(self.name(), samples)])
    }
}

fn recreate(db: &str) -> String {
    format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
}

fn psql_command(pg: &TempPostgres, db: &str) -> Result<Command, String> {
    let bin = pg.bin_dir().to_string_lossy().into_owned();
    let psql =
        sys::find_program("psql", &[&bin]).ok_or("psql not found (PATH, or beside postgres)")?;
    let mut command = Command::new(psql);
    command
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
        ])
        .arg("-p")
        .arg(pg.port().to_string())
        .arg("-d")
        .arg(db);
    Ok(command)
}

/// Runs `sql` (statements psql sends one by one: CREATE DATABASE cannot be in a transaction).
fn psql(pg: &TempPostgres, db: &str, sql: &str) -> Result<(), String> {
    let mut command = psql_command(pg, db)?;
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        command.arg("-c").arg(statement);
    }
    sys::run_quiet(&mut command, "psql")
}

/// The notifications imported and the seconds they took, from the report's table.
fn notification_line(report: &str) -> Option<(u64, Duration)> {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some("notification"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let imported = fields.get(2)?.parse().ok()?;
    let seconds: f64 = fields.get(5)?.parse().ok()?;
    Some((imported, Duration::from_secs_f64(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_is_read() {
        let report = "skipped notification x: y\n\
            table                        read      imported  already there  skipped   seconds\n\
            notification               500000        499999              0        1      11.8\n\
            broadcast                     100           100              0        0       2.0\n\
            broadcast_user_status      100000        100000              0        0          \n";
        assert_eq!(
            notification_line(report),
            Some((499_999, Duration::from_secs_f64(11.8)))
        );
        assert_eq!(notification_line("table read\n"), None);
    }
}
