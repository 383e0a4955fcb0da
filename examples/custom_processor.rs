//! Embed the notifications backend in your own program with a processor of your own.
//!
//! ```sh
//! CI_NOTIFICATIONS_TOKEN=$(openssl rand -hex 24) \
//!   cargo run -p notifications-backend --example custom_processor -- examples/app-config.sqlite.yaml
//! ```
//!
//! The processor's name (`Audit`) becomes a channel in users' settings; its `post_process` runs
//! from the durable delivery queue, with retries, after each notification is stored.

use std::path::PathBuf;

use async_trait::async_trait;
use notifications_backend::BackendBuilder;
use notifications_backend::config::Config;
use notifications_common::{Notification, NotificationSendOptions, NotificationSeverity};
use notifications_node::{NotificationProcessorFilters, Processor, ProcessorError};

/// Writes important notifications to an audit log.
struct Audit;

#[async_trait]
impl Processor for Audit {
    fn name(&self) -> &str {
        "Audit"
    }

    /// Only high and critical notifications reach this processor.
    fn filters(&self) -> NotificationProcessorFilters {
        NotificationProcessorFilters {
            min_severity: Some(NotificationSeverity::High),
            ..Default::default()
        }
    }

    /// Runs before the notification is stored; what it returns is stored.
    async fn pre_process(
        &self,
        mut notification: Notification,
        _options: &NotificationSendOptions,
    ) -> Result<Notification, ProcessorError> {
        notification.payload.title = format!("[audited] {}", notification.payload.title);
        Ok(notification)
    }

    /// Runs after the notification is stored, once per recipient. `Transient` errors are
    /// retried with backoff; `Permanent` ones are kept as failed deliveries.
    async fn post_process(
        &self,
        notification: &Notification,
        _options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        tracing::info!(
            id = %notification.id,
            user = notification.user.as_deref().unwrap_or("(everyone)"),
            title = notification.payload.title,
            "audit"
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let files: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let config = Config::load(&files)?;
    let running = BackendBuilder::new(config, "data")
        .processor(Audit)
        .start()
        .await?;
    running.wait().await?;
    Ok(())
}
