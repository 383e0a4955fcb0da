//! `import`: the command line of [`crate::import`]: where upstream's database is, and the
//! report (skipped rows, then counts per table) on stdout.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use serde_json::json;

use crate::config::{self, Config, DatabaseConfig};
use crate::import::{ImportOptions, Summary, import};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["from", "from_config"])))]
pub struct ImportArgs {
    /// Upstream's database: postgres://user:password@host:port/database, or sqlite:PATH.
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// Upstream's app-config file(s), whose backend.database names its database (repeatable,
    /// later files win; ${VAR}s are read from the environment).
    #[arg(long = "from-config", value_name = "FILE")]
    from_config: Vec<PathBuf>,
    /// Read everything and count what would be imported; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batch: each batch is written in one transaction (the next one is read
    /// meanwhile).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
}

pub async fn run(config: Config, data_dir: PathBuf, args: ImportArgs) -> Result<(), String> {
    let source = match (&args.from, args.from_config.is_empty()) {
        (Some(url), _) => source_url(url)?,
        (None, false) => config::load_database_block(&args.from_config)
            .map_err(|e| format!("--from-config: {e}"))?,
        (None, true) => return Err("name upstream's database: --from or --from-config".into()),
    };
    let options = ImportOptions {
        source,
        batch_size: args.batch_size,
        dry_run: args.dry_run,
        progress_bars: std::io::stderr().is_terminal(),
    };
    let summary = import(options, &config.backend.database, &data_dir)
        .await
        .map_err(|e| e.to_string())?;
    print(&summary, args.dry_run);
    Ok(())
}

/// `--from`: a PostgreSQL URL or `sqlite:PATH`, read as the `connection` of a `database` block.
fn source_url(url: &str) -> Result<DatabaseConfig, String> {
    let block = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        json!({"client": "pg", "connection": url})
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        json!({"client": "better-sqlite3", "connection": path})
    } else {
        return Err(
            "--from: expected postgres://user:password@host:port/database or sqlite:PATH".into(),
        );
    };
    config::upstream_database_block(block, "--from").map_err(|e| e.to_string())
}

// The report is the command's output.
#[allow(clippy::print_stdout)]
fn print(summary: &Summary, dry_run: bool) {
    for s in &summary.skipped {
        println!("skipped {} {}: {}", s.table, s.key, s.reason);
    }
    if dry_run {
        println!("dry run: nothing was written");
        if summary.target_empty {
            println!("(the target is not migrated yet: counted as if it held none of these rows)");
        }
    }
    let imported = if dry_run { "would import" } else { "imported" };
    println!(
        "{:<22} {:>10} {:>13} {:>14} {:>8} {:>9}",
        "table", "read", imported, "already there", "skipped", "seconds"
    );
    for c in &summary.counts {
        // A broadcast's marks go with it: their time is the broadcasts'.
        let seconds = c
            .elapsed
            .map_or_else(String::new, |e| format!("{:.1}", e.as_secs_f64()));
        println!(
            "{:<22} {:>10} {:>13} {:>14} {:>8} {:>9}",
            c.table, c.read, c.imported, c.present, c.skipped, seconds
        );
    }
}
