//! `notifications-backend send`: a notification from a shell script, through the same client a
//! Rust service uses (upstream's scaffolder action `notification:send`, on the command line).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use notifications_common::{
    NotificationPayload, NotificationRecipients, NotificationSendOptions, NotificationSeverity,
    OneOrMany,
};
use notifications_node::{ClientError, NotificationService, RetryPolicy};

/// Exit statuses scripts can tell apart (also in `send --help`).
mod exit {
    /// The backend refused the send (a 4xx other than 401/403): sending it again will fail too.
    pub const REJECTED: u8 = 1;
    /// Bad arguments (clap uses 2 for its own errors too).
    pub const USAGE: u8 = 2;
    /// The token was refused (401/403).
    pub const NOT_ALLOWED: u8 = 3;
    /// No answer, 429 or 5xx after every retry: sending again later may work.
    pub const TEMPORARY: u8 = 4;
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("recipients").args(["broadcast", "entity"]).multiple(false)),
    after_help = "Prints one line on success: `sent <count> <id>...` (the notifications created or \
updated; 0 when nobody qualified), or `skipped <reason>` with --optional. Failures print \
`error <code>: <message>` on stderr.

Exit status: 0 sent (or skipped with --optional), 1 refused by the backend (a bad request: do not \
retry), 2 bad arguments, 3 the token was refused, 4 the backend could not be reached or was \
unavailable after the retries (try again later).

Examples:
  export NOTIFICATIONS_TOKEN=$(notifications-backend token --service my-ci)
  notifications-backend send --entity user:default/jane --title 'Build 42 failed' \\
      --description 'See the logs' --link /catalog/default/component/api --severity high
  notifications-backend send --broadcast --title 'Maintenance tonight' --topic maintenance
  notifications-backend send --entity group:default/platform --entity user:default/bob \\
      --exclude user:default/alice --title 'Deploy done' --scope deploy-42 \\
      --url https://backstage.example.com/api/notifications --idempotency-key \"deploy-42-$CI_JOB_ID\""
)]
pub struct SendArgs {
    /// Where the notifications plugin is mounted.
    #[arg(
        long,
        env = "NOTIFICATIONS_URL",
        default_value = "http://localhost:7007/api/notifications"
    )]
    url: String,
    /// A service token (its subject becomes the origin); prefer the environment variable, which
    /// other users of the machine cannot see in the process list.
    #[arg(long, env = "NOTIFICATIONS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Send to everyone.
    #[arg(long)]
    broadcast: bool,
    /// Send to the users behind this entity ref (a user, a group, an owned entity); repeatable.
    #[arg(long, value_name = "ENTITY_REF")]
    entity: Vec<String>,
    /// Leave out these users or groups; repeatable.
    #[arg(long, value_name = "ENTITY_REF", requires = "entity")]
    exclude: Vec<String>,
    /// The notification's title (required).
    #[arg(long)]
    title: String,
    /// Its text.
    #[arg(long, visible_alias = "info")]
    description: Option<String>,
    /// An http(s) URL, or a path relative to the Backstage app.
    #[arg(long)]
    link: Option<String>,
    /// Default: normal.
    #[arg(long, value_name = "critical|high|normal|low")]
    severity: Option<NotificationSeverity>,
    /// Users can switch topics off in their settings.
    #[arg(long)]
    topic: Option<String>,
    /// A re-send with the same scope updates the earlier notification.
    #[arg(long)]
    scope: Option<String>,
    /// Never fail: no recipients or a failed send print `skipped ...` and exit 0 (the
    /// scaffolder action's `optional`).
    #[arg(long)]
    optional: bool,
    /// Send at most once per key within 24 hours, across runs of the script (default: a new
    /// key per run, kept across this run's retries).
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// The longest one attempt may take.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Attempts after the first, for no answer, 429 and 5xx.
    #[arg(long, default_value_t = 3)]
    retries: u32,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
}

// The one-line result is the command's output.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn run(args: SendArgs) -> ExitCode {
    let optional = args.optional;
    match send(args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(Failure { code, message, .. }) if optional => {
            println!("skipped {code}: {message}");
            ExitCode::SUCCESS
        }
        Err(Failure {
            status,
            code,
            message,
        }) => {
            eprintln!("error {code}: {message}");
            ExitCode::from(status)
        }
    }
}

struct Failure {
    status: u8,
    code: &'static str,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            status: exit::USAGE,
            code: "usage",
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let status = match e.status() {
            Some(401 | 403) => exit::NOT_ALLOWED,
            _ if e.is_transient() => exit::TEMPORARY,
            _ if matches!(e, ClientError::Config(_)) => exit::USAGE,
            _ => exit::REJECTED,
        };
        Self {
            status,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// The success line, or why not.
async fn send(args: SendArgs) -> Result<String, Failure> {
    let recipients = if args.broadcast {
        NotificationRecipients::Broadcast
    } else if args.entity.is_empty() {
        // The scaffolder action's check; with --optional this is a skip.
        return Err(Failure::usage(
            "Entity references must be provided (--entity), or --broadcast",
        ));
    } else {
        NotificationRecipients::Entity {
            entity_ref: OneOrMany::Many(args.entity),
            exclude_entity_ref: (!args.exclude.is_empty()).then_some(OneOrMany::Many(args.exclude)),
        }
    };
    let token = args
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::usage("a token is needed: --token or NOTIFICATIONS_TOKEN"))?;
    let service = NotificationService::builder(&args.url)
        .token(token)
        .timeout(args.timeout)
        .retry(RetryPolicy {
            max_retries: args.retries,
            ..RetryPolicy::default()
        })
        .build()?;
    let options = NotificationSendOptions {
        recipients,
        payload: NotificationPayload {
            title: args.title,
            description: args.description,
            link: args.link,
            severity: args.severity,
            topic: args.topic,
            scope: args.scope,
            ..Default::default()
        },
    };
    let sent = match &args.idempotency_key {
        Some(key) => service.send_with_idempotency_key(options, key).await?,
        None => service.send(options).await?,
    };
    let ids: Vec<String> = sent.iter().map(|n| n.id.to_string()).collect();
    Ok(format!("sent {} {}", ids.len(), ids.join(" "))
        .trim_end()
        .to_owned())
}
