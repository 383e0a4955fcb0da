//! The built-in processors, configured under `notifications.processors` with upstream's keys.

use std::sync::Arc;

use notifications_node::{Catalog, Processor};

use crate::config::Config;
use crate::server::StartError;

/// The processors `notifications.processors` configures, in a fixed order.
pub fn from_config(
    config: &Config,
    catalog: &Arc<dyn Catalog>,
) -> Result<Vec<Arc<dyn Processor>>, StartError> {
    let _ = (config, catalog);
    Ok(Vec::new())
}
