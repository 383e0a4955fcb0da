//! Real-time signals: committed events go to this instance's connections (see [`hub`]) and, on
//! PostgreSQL, to every other instance's (see [`relay`]). The transports (WebSocket, event
//! stream) live in `http`.

mod budget;
mod caps;
mod hub;
mod relay;

use std::sync::Arc;

pub use crate::published_signal::PublishedSignal;
pub use budget::FrameBudget;
pub use caps::{Peer, Refused};
pub use hub::{Events, Limits, Membership, SignalHub, Subscription, Transport};
pub use relay::Relay;

use crate::store::Store;

/// Publishes committed signals. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    hub: SignalHub,
    announcer: Option<relay::Announcer>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("hub", &self.hub)
            .field("relayed", &self.announcer.is_some())
            .finish()
    }
}

impl Publisher {
    /// To this instance's connections only (SQLite: there is no other instance).
    pub fn local(hub: SignalHub) -> Self {
        Self {
            hub,
            announcer: None,
        }
    }

    /// To every instance sharing the PostgreSQL database at `url`; the relay runs until dropped.
    pub fn relayed(hub: SignalHub, store: Store, url: String) -> std::io::Result<(Self, Relay)> {
        let (relay, announcer) = relay::start(store, hub.clone(), url)?;
        Ok((
            Self {
                hub,
                announcer: Some(announcer),
            },
            relay,
        ))
    }

    pub fn hub(&self) -> &SignalHub {
        &self.hub
    }

    /// Publishes events whose transaction has committed.
    pub fn publish(&self, events: Vec<PublishedSignal>) {
        if events.is_empty() {
            return;
        }
        let events: Vec<Arc<PublishedSignal>> = events.into_iter().map(Arc::new).collect();
        self.hub.deliver(&events);
        if let Some(announcer) = &self.announcer {
            announcer.announce(&events);
        }
    }
}

/// Deletes the events older than the replay window, a few times per window.
pub fn spawn_pruning(store: Store, window: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let every = (window / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let cutoff = time::OffsetDateTime::now_utc() - window;
            if let Err(e) = store.prune_signal_events(cutoff).await {
                tracing::warn!(error = %e, "could not prune old signal events");
            }
        }
    })
}
