//! The rules of the notifications API, between the HTTP handlers and the store.

mod idempotency;
mod inbox;
pub mod janus;
pub mod link;
mod outcome;
mod preferences;
mod processing;
mod replay;
mod send;
pub mod settings;
mod validate;

use std::sync::Arc;

use notifications_common::{NotificationSettings, WEB_CHANNEL};
use notifications_node::{Processor, RecipientResolver};
use tokio::sync::Notify;
use url::Url;

pub use idempotency::{MAX_KEY_LENGTH, SendAnswer};

use processing::Installed;

use crate::config::PreferencesConfig;
use crate::signals::Publisher;
use crate::store::Store;

/// Everything the service needs; cheap to clone.
#[derive(Clone)]
pub struct NotificationsService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    resolver: Arc<dyn RecipientResolver>,
    /// In registration order.
    processors: Vec<Installed>,
    signals: Publisher,
    defaults: NotificationSettings,
    /// `Web` and the names of the installed processors: the channels a user may configure.
    channels: Vec<String>,
    app_base_url: Url,
    /// Told after a send queued deliveries, so that the local worker starts at once.
    deliveries_queued: Arc<Notify>,
    preferences: PreferencesConfig,
}

/// What the service is built from.
pub struct ServiceParts {
    pub store: Store,
    pub resolver: Arc<dyn RecipientResolver>,
    pub processors: Vec<Arc<dyn Processor>>,
    pub signals: Publisher,
    pub defaults: NotificationSettings,
    pub app_base_url: Url,
    pub deliveries_queued: Arc<Notify>,
    /// `notifications.preferences`: the operator's side of users' preferences.
    pub preferences: PreferencesConfig,
}

impl NotificationsService {
    pub fn new(parts: ServiceParts) -> Self {
        let channels = std::iter::once(WEB_CHANNEL.to_owned())
            .chain(parts.processors.iter().map(|p| p.name().to_owned()))
            .collect();
        Self {
            inner: Arc::new(Inner {
                store: parts.store,
                resolver: parts.resolver,
                processors: parts.processors.into_iter().map(Installed::new).collect(),
                signals: parts.signals,
                defaults: parts.defaults,
                channels,
                app_base_url: parts.app_base_url,
                deliveries_queued: parts.deliveries_queued,
                preferences: parts.preferences,
            }),
        }
    }

    pub fn signals(&self) -> &Publisher {
        &self.inner.signals
    }

    /// The channel ids settings hold: those a user may set, then those only the configured
    /// defaults name (shown, but refused on save, as upstream).
    pub fn settings_channels(&self) -> Vec<String> {
        settings::channel_ids(&self.inner.channels, &self.inner.defaults)
    }
}
