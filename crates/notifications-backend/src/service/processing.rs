//! Running the processors' hooks around a send (contract section 3.4): which processors take a
//! notification, `process_options` and `pre_process` with failures logged and skipped.

use std::sync::Arc;

use notifications_common::{Notification, NotificationPayload, NotificationSendOptions};
use notifications_node::{NotificationProcessorFilters, Processor};

use crate::error::Error;

/// A processor and its filters (read once: they do not change).
#[derive(Clone)]
pub struct Installed {
    pub processor: Arc<dyn Processor>,
    filters: NotificationProcessorFilters,
}

impl Installed {
    pub fn new(processor: Arc<dyn Processor>) -> Self {
        let filters = processor.filters();
        Self { processor, filters }
    }

    pub fn name(&self) -> &str {
        self.processor.name()
    }

    pub fn accepts(&self, payload: &NotificationPayload) -> bool {
        self.filters.accepts(payload)
    }
}

/// Each accepting processor's `process_options` in turn, on the previous one's result.
pub async fn process_options(
    processors: &[Installed],
    mut options: NotificationSendOptions,
) -> NotificationSendOptions {
    for p in processors {
        if !p.accepts(&options.payload) {
            continue;
        }
        match p.processor.process_options(options.clone()).await {
            Ok(processed) => options = processed,
            Err(e) => {
                tracing::warn!(processor = p.name(), error = %e, "process_options failed; skipped");
            }
        }
    }
    options
}

/// The `pre_process` of each of `selected` in turn; what the last returns is stored. A result
/// that `valid` refuses (an empty title, a `javascript:` link...) is dropped like a failure.
pub async fn pre_process(
    selected: &[&Installed],
    mut notification: Notification,
    options: &NotificationSendOptions,
    valid: &(dyn Fn(&NotificationPayload) -> Result<(), Error> + Sync),
) -> Notification {
    for p in selected {
        // A processor may rewrite the content, not who or what the notification is.
        let (id, user, origin, created) = (
            notification.id,
            notification.user.clone(),
            notification.origin.clone(),
            notification.created,
        );
        let result = p
            .processor
            .pre_process(notification.clone(), options)
            .await
            .map_err(|e| e.to_string())
            .and_then(|n| valid(&n.payload).map(|()| n).map_err(|e| e.to_string()));
        match result {
            Ok(mut processed) => {
                processed.id = id;
                processed.user = user;
                processed.origin = origin;
                processed.created = created;
                notification = processed;
            }
            Err(e) => {
                tracing::warn!(processor = p.name(), error = %e, "pre_process failed; skipped");
            }
        }
    }
    notification
}

/// The channels of `selected` that deliver (have a `post_process`).
pub fn delivery_channels(selected: &[&Installed]) -> Vec<String> {
    selected
        .iter()
        .filter(|p| p.processor.delivers())
        .map(|p| p.name().to_owned())
        .collect()
}
