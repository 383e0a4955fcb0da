//! The built-in processors, configured under `notifications.processors` with upstream's keys.

pub mod email;

use std::sync::Arc;

use notifications_node::{Catalog, Processor};

use crate::config::Config;
use crate::server::StartError;

/// The processors `notifications.processors` configures, in a fixed order.
pub fn from_config(
    config: &Config,
    catalog: &Arc<dyn Catalog>,
) -> Result<Vec<Arc<dyn Processor>>, StartError> {
    let mut processors: Vec<Arc<dyn Processor>> = Vec::new();
    if let Some(email) = config
        .email_processor()
        .map_err(|e| StartError::Processors(e.to_string()))?
    {
        let processor = email::EmailProcessor::new(
            email,
            config.app.base_url.clone(),
            catalog.clone(),
            config.notifications.delivery.timeout,
        )
        .map_err(StartError::Processors)?;
        tracing::info!(?processor, "e-mail processor configured");
        processors.push(Arc::new(processor));
    }
    Ok(processors)
}
