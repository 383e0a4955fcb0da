//! The rules of the notifications API, between the HTTP handlers and the store.

mod inbox;
pub mod link;
mod send;
pub mod settings;
mod validate;

use std::sync::Arc;

use notifications_common::{NotificationSettings, WEB_CHANNEL};
use notifications_node::RecipientResolver;
use url::Url;

pub use send::SendOutcome;

use crate::signals::SignalHub;
use crate::store::Store;

/// Everything the service needs; cheap to clone.
#[derive(Clone)]
pub struct NotificationsService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    resolver: Arc<dyn RecipientResolver>,
    signals: SignalHub,
    defaults: NotificationSettings,
    /// `Web` and the names of the installed processors: the channels a user may configure.
    channels: Vec<String>,
    app_base_url: Url,
}

impl NotificationsService {
    pub fn new(
        store: Store,
        resolver: Arc<dyn RecipientResolver>,
        signals: SignalHub,
        defaults: NotificationSettings,
        app_base_url: Url,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                resolver,
                signals,
                defaults,
                channels: vec![WEB_CHANNEL.to_owned()],
                app_base_url,
            }),
        }
    }

    pub fn signals(&self) -> &SignalHub {
        &self.inner.signals
    }
}
