//! The built-in processors, configured under `notifications.processors` with upstream's keys.

pub mod slack;

use std::sync::Arc;

use notifications_node::{Catalog, Processor};

use crate::config::Config;
use crate::server::StartError;
use crate::store::Store;

/// The processors `notifications.processors` configures, in a fixed order.
pub fn from_config(
    config: &Config,
    catalog: &Arc<dyn Catalog>,
    store: &Store,
) -> Result<Vec<Arc<dyn Processor>>, StartError> {
    let mut processors: Vec<Arc<dyn Processor>> = Vec::new();
    processors.extend(slack::from_config(config, catalog, store)?);
    Ok(processors)
}
