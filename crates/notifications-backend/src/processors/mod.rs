//! The built-in processors, configured under `notifications.processors` with upstream's keys
//! (and `webhook`, beyond upstream): e-mail, Slack, webhooks.

pub mod email;
pub mod slack;
pub mod webhook;

use std::sync::Arc;

use notifications_node::{Catalog, Processor};

use crate::config::{Config, webhooks};
use crate::store::Store;

/// Why the configured processors could not be set up (the server reports it at start-up).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// The configured processors.
pub struct Configured {
    /// In a fixed order.
    pub processors: Vec<Arc<dyn Processor>>,
    /// The e-mail processor among them, which also mails digests.
    pub email: Option<Arc<email::EmailProcessor>>,
}

/// The processors `notifications.processors` configures.
pub fn from_config(
    config: &Config,
    catalog: &Arc<dyn Catalog>,
    store: &Store,
) -> Result<Configured, SetupError> {
    let mut processors: Vec<Arc<dyn Processor>> = Vec::new();
    let hooks =
        webhooks(&config.notifications.processors).map_err(|e| SetupError(e.to_string()))?;
    for hook in hooks {
        let name = hook.name.clone();
        let processor = webhook::WebhookProcessor::new(hook).map_err(|e| {
            SetupError(format!(
                "cannot set up the HTTP client of webhook {name}: {e}"
            ))
        })?;
        tracing::info!(channel = %name, "webhook processor installed");
        processors.push(Arc::new(processor));
    }
    let mut mailer = None;
    if let Some(email) = config
        .email_processor()
        .map_err(|e| SetupError(e.to_string()))?
    {
        let processor = email::EmailProcessor::new(
            email,
            config.app.base_url.clone(),
            catalog.clone(),
            store.clone(),
            config.notifications.delivery.timeout,
        )
        .map_err(SetupError)?;
        tracing::info!(?processor, "e-mail processor configured");
        let processor = Arc::new(processor);
        processors.push(processor.clone());
        mailer = Some(processor);
    }
    processors.extend(slack::from_config(config, catalog, store)?);
    Ok(Configured {
        processors,
        email: mailer,
    })
}
