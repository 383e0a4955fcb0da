//! The `notifications-backend` command line: `serve`, `migrate`, `token`, `deliveries`, `send`,
//! `check-config`, `import`.

mod import;
mod send;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use notifications_common::{EntityRef, NotificationId};

use crate::auth::{self, TokenKind};
use crate::config::{Config, UnknownKey};
use crate::server::{BackendBuilder, open_database};
use crate::store::DeliveryStatus;

#[derive(Debug, Parser)]
#[command(
    name = "notifications-backend",
    version,
    about = "A Backstage-compatible notifications server (SQLite by default, PostgreSQL for scale).",
    after_help = "Examples:\n  notifications-backend serve\n  notifications-backend --config app-config.yaml serve\n  \
                  notifications-backend token --user user:default/jane\n  notifications-backend token --user jane --link\n  \
                  notifications-backend token --service my-ci\n  \
                  notifications-backend deliveries --status failed\n  notifications-backend deliveries --retry\n  \
                  NOTIFICATIONS_TOKEN=... notifications-backend send --entity user:default/jane --title 'Build failed'"
)]
pub struct Cli {
    /// A configuration file in Backstage's app-config format; repeat it, later files win.
    #[arg(long = "config", short = 'c', global = true, value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Where the default SQLite database and the generated signing key are kept.
    #[arg(
        long,
        global = true,
        env = "NOTIFICATIONS_DATA_DIR",
        default_value = "data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a token for the configured signing key.
    Token(TokenArgs),
    /// List deliveries to processors' channels (newest first), e.g. the failed ones; with
    /// --retry, queue the failed ones among them again.
    Deliveries(DeliveriesArgs),
    /// Send a notification to a running backend, e.g. from a script (see `send --help`).
    Send(send::SendArgs),
    /// Check the configuration (the --config files and APP_CONFIG_* variables) as `serve` reads
    /// it, without opening the database or listening, and print each problem.
    #[command(after_help = CHECK_CONFIG_EXIT_STATUS)]
    CheckConfig,
    /// Copy an upstream Backstage notifications backend's data (0.6.x tables: notifications,
    /// broadcasts with their read and saved marks, settings) into the configured database,
    /// migrated first. Safe to run again: nothing is imported twice.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import(import::ImportArgs),
}

const IMPORT_EXAMPLES: &str = "Examples:
  notifications-backend --config app-config.yaml import --from postgres://backstage:secret@db:5432/backstage_plugin_notifications --dry-run
  notifications-backend --config app-config.yaml import --from-config ../backstage/app-config.production.yaml
  notifications-backend import --from sqlite:../backstage/sqlite/notifications.sqlite";

const CHECK_CONFIG_EXIT_STATUS: &str = "Exit status:
  0  no problems
  1  the configuration loads, but has keys this service ignores (warnings, e.g. a misspelled key)
  2  the configuration cannot be loaded: a file cannot be read or parsed, or a value is invalid";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What to log: a level (error, warn, info, debug, trace) or a filter in RUST_LOG's syntax
    /// (e.g. `info,notifications_backend=debug`). Wins over RUST_LOG when both are given;
    /// without either, `info`.
    #[arg(long, value_name = "FILTER", value_parser = parse_log_filter)]
    log_level: Option<String>,
}

/// A filter `--log-level` accepts: refused at parse time, with tracing's reason.
fn parse_log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

impl Cli {
    /// The log filter the command line asks for, if any (`serve --log-level`).
    pub fn log_level(&self) -> Option<&str> {
        match &self.command {
            Command::Serve(args) => args.log_level.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only deliveries with this status.
    #[arg(long, value_enum)]
    status: Option<DeliveryStatus>,
    /// Only the deliveries of this notification.
    #[arg(long, value_name = "ID")]
    notification: Option<NotificationId>,
    /// At most this many.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    limit: i64,
    /// Queue the listed failed deliveries again, with a fresh count of attempts.
    #[arg(long, conflicts_with = "status")]
    retry: bool,
}

impl ValueEnum for DeliveryStatus {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "who")]
pub struct Who {
    /// A user token for this user entity ref (for the user routes).
    #[arg(long, value_name = "USER_REF")]
    user: Option<String>,
    /// A service token with this subject, which becomes the origin of what it sends.
    #[arg(long, value_name = "SUBJECT")]
    service: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    who: Who,
    /// An ownership ref of the user (a group), repeatable.
    #[arg(long = "ent", value_name = "ENTITY_REF", requires = "user")]
    ownership: Vec<String>,
    /// How long the token is valid, e.g. 1h, 30d, P7D (a link: notifications.web.signInLinkTtl,
    /// 15m by default).
    #[arg(long)]
    ttl: Option<String>,
    /// Print a one-time sign-in link to the web inbox for the user instead of a token.
    #[arg(long, requires = "user", conflicts_with = "ownership")]
    link: bool,
}

/// Logs to stderr in `format`, filtered by `level` (`--log-level`, already checked), else by
/// `RUST_LOG`, else at `info`.
pub fn init_logging(format: LogFormat, level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = level
        .and_then(|level| EnvFilter::builder().parse(level).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for people: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    // A client of a running backend: this process's configuration plays no part.
    if let Command::Send(args) = cli.command {
        return send::run(args).await;
    }
    if let Command::CheckConfig = cli.command {
        return check_config(&cli.config);
    }
    let config = match Config::load_checked(&cli.config) {
        Ok((config, unknown)) => {
            for key in unknown {
                tracing::warn!("{key}");
            }
            config
        }
        Err(e) => {
            tracing::error!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(_) => serve(config, cli.config, cli.data_dir).await,
        Command::Migrate => migrate(config, cli.data_dir).await,
        Command::Token(args) => token(&config, &cli.data_dir, args),
        Command::Deliveries(args) => deliveries(config, cli.data_dir, args).await,
        Command::Import(args) => import::run(config, cli.data_dir, args).await,
        Command::Send(_) | Command::CheckConfig => {
            unreachable!("handled above, before the configuration is loaded")
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`: the problems go to stderr, one a line, then a summary to stdout; the exit
/// status is documented in CHECK_CONFIG_EXIT_STATUS.
#[allow(clippy::print_stdout)]
fn check_config(files: &[PathBuf]) -> ExitCode {
    let unknown: Vec<UnknownKey> = match Config::load_checked(files) {
        Ok((_, unknown)) => unknown,
        Err(e) => {
            eprintln!("error: {e}");
            println!("the configuration cannot be loaded");
            return ExitCode::from(2);
        }
    };
    for key in &unknown {
        eprintln!("warning: {key}");
    }
    if unknown.is_empty() {
        println!("no problems found");
        ExitCode::SUCCESS
    } else {
        println!("{} unknown key(s); the configuration loads", unknown.len());
        ExitCode::from(1)
    }
}

async fn serve(config: Config, files: Vec<PathBuf>, data_dir: PathBuf) -> Result<(), String> {
    let running = BackendBuilder::new(config, &data_dir)
        // A certificate reload (SIGHUP) reads the same files again.
        .config_source(move || Config::load(&files))
        .start()
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(
        "ready: mint a token with `notifications-backend --data-dir {} token --user user:default/<you>` \
         (or `--service <name>` to send)",
        data_dir.display()
    );
    running
        .wait()
        .await
        .map_err(|e| format!("server failed: {e}"))
}

async fn migrate(config: Config, data_dir: PathBuf) -> Result<(), String> {
    let (db, what) = open_database(&config.backend.database, &data_dir, Some(1))
        .await
        .map_err(|e| e.to_string())?;
    let applied = db
        .migrate()
        .await
        .map_err(|e| format!("cannot migrate the database ({what}): {e}"))?;
    let applied = if applied.is_empty() {
        "none pending".to_owned()
    } else {
        applied.join(", ")
    };
    tracing::info!(database = %what, "migrations applied: {applied}");
    Ok(())
}

// The list is the command's output: one tab-separated line per delivery, under a header.
#[allow(clippy::print_stdout)]
async fn deliveries(config: Config, data_dir: PathBuf, args: DeliveriesArgs) -> Result<(), String> {
    let (db, _) = open_database(&config.backend.database, &data_dir, Some(1))
        .await
        .map_err(|e| e.to_string())?;
    let store = crate::store::Store::new(db);
    let status = if args.retry {
        Some(DeliveryStatus::Failed)
    } else {
        args.status
    };
    let rows = store
        .deliveries(status, args.notification, args.limit)
        .await
        .map_err(|e| e.to_string())?;
    println!("created\tstatus\tchannel\trecipient\tattempts\tnotification\tdelivery\tlast_error");
    for r in &rows {
        let pending = r.status == DeliveryStatus::Pending;
        let note = match (&r.last_error, r.quiet_until, r.digest_at) {
            (Some(error), _, _) => error.clone(),
            (None, Some(until), _) if pending && until > time::OffsetDateTime::now_utc() => {
                format!(
                    "held for quiet hours until {}",
                    notifications_common::Timestamp::from(until)
                )
            }
            (None, _, Some(at)) if pending => format!(
                "kept for the digest at {}",
                notifications_common::Timestamp::from(at)
            ),
            _ => String::new(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            notifications_common::Timestamp::from(r.created),
            r.status,
            r.channel,
            r.user_ref.as_deref().unwrap_or("(broadcast)"),
            r.attempts,
            r.notification_id,
            r.id,
            note.replace(['\t', '\n'], " "),
        );
    }
    if args.retry {
        let ids = rows.iter().map(|r| r.id).collect();
        let queued = store
            .retry_deliveries(ids)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("queued {queued} failed deliveries again");
    }
    Ok(())
}

/// The longest a sign-in link may be valid.
const MAX_LINK_TTL: Duration = Duration::from_secs(24 * 3600);

// Printing the token is the command's output.
#[allow(clippy::print_stdout)]
fn token(config: &Config, data_dir: &std::path::Path, args: TokenArgs) -> Result<(), String> {
    let ttl: Duration = match &args.ttl {
        Some(ttl) => crate::config::parse_duration(ttl).map_err(|e| format!("--ttl: {e}"))?,
        None if args.link => config.notifications.web.sign_in_link_ttl,
        None => Duration::from_secs(3600),
    };
    let kind = match (args.who.user, args.who.service) {
        (Some(user), _) => {
            let user_ref = EntityRef::parse_with_default_kind(&user, Some("user"))
                .map_err(|e| format!("--user: {e}"))?;
            if !user_ref.is_kind("user") {
                return Err(format!("--user: {user} is not a user entity ref"));
            }
            let ownership_refs = args
                .ownership
                .iter()
                .map(|r| {
                    EntityRef::parse(r)
                        .map(|r| r.to_string())
                        .map_err(|e| format!("--ent: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            TokenKind::User {
                user_ref: user_ref.to_string(),
                ownership_refs,
            }
        }
        (None, Some(subject)) if !subject.trim().is_empty() => TokenKind::Service { subject },
        _ => return Err("--service needs a subject".into()),
    };
    let keys = auth::SigningKeys::load(config, data_dir).map_err(|e| e.to_string())?;
    if args.link {
        let TokenKind::User { user_ref, .. } = &kind else {
            return Err("--link needs --user".into());
        };
        let user = user_ref
            .parse::<notifications_common::UserRef>()
            .map_err(|e| format!("--user: {e}"))?;
        // A link is a bearer secret until used: a day at most.
        if ttl > MAX_LINK_TTL {
            return Err("--ttl: a sign-in link is valid for a day at most".into());
        }
        let sessions = crate::inbox::Sessions::new(&keys.user, ttl);
        let token = sessions.mint_link(&user, ttl)?;
        let mut url = config
            .backend
            .base_url
            .join("/signin")
            .map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair("token", &token);
        println!("{url}");
        return Ok(());
    }
    // Each role has its own key: senders hold the service key, only this command the user key.
    let key = match kind {
        TokenKind::User { .. } => keys.user.first(),
        TokenKind::Service { .. } => keys.service.first(),
    }
    .ok_or("no signing key to mint the token with")?;
    let token = auth::mint(key, &kind, ttl).map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_takes_a_level_or_a_filter_and_refuses_nonsense() {
        for given in ["debug", "warn,notifications_backend=trace"] {
            let cli = Cli::try_parse_from(["nb", "serve", "--log-level", given]).unwrap();
            assert_eq!(cli.log_level(), Some(given));
        }
        let cli = Cli::try_parse_from(["nb", "serve"]).unwrap();
        assert_eq!(cli.log_level(), None);
        let refused = Cli::try_parse_from(["nb", "serve", "--log-level", "info,x=[bad"]);
        assert!(refused.is_err(), "{refused:?}");
    }
}
