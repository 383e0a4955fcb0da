use std::process::ExitCode;

use clap::Parser;
use notifications_backend::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.log_format, cli.log_level());
    // Panics go to the log like everything else (one line, in the chosen format).
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    cli::run(cli).await
}
