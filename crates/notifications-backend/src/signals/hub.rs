//! The connections of this instance and who gets what: every connection registers with the
//! refs it acts as, and each event goes only to the connections of its recipient (or to all, for
//! everyone's), subscribed to its channel.
//!
//! Each connection has a bounded queue. A consumer that falls behind until its queue is full is
//! dropped (its transport closes it; an event-stream client resumes where it was), so a slow or
//! dead client never makes memory grow.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{broadcast, mpsc};

use super::SignalEvent;

/// Channels one connection may subscribe to, and the longest channel name: a client (even the
/// anonymous guest) cannot make the registry grow without bound.
const MAX_CHANNELS: usize = 16;
const MAX_CHANNEL_NAME: usize = 255;

/// Events kept for in-process observers ([`SignalHub::observe`]) that fall behind.
const OBSERVER_CAPACITY: usize = 4096;

/// The metric of open connections, by transport.
pub const CONNECTIONS: &str = "notifications_signal_connections";
/// The metric of consumers dropped for falling behind, by transport.
pub const DROPPED: &str = "notifications_signal_consumers_dropped_total";

/// How a connection reaches its client (a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    EventStream,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::EventStream => "sse",
        }
    }
}

struct Connection {
    refs: Vec<String>,
    channels: Vec<String>,
    queue: mpsc::Sender<Arc<SignalEvent>>,
    transport: Transport,
    fell_behind: Arc<AtomicBool>,
}

#[derive(Default)]
struct Registry {
    connections: HashMap<u64, Connection>,
    by_ref: HashMap<String, Vec<u64>>,
}

impl Registry {
    fn remove(&mut self, id: u64) -> Option<Connection> {
        let connection = self.connections.remove(&id)?;
        for r in &connection.refs {
            if let Some(ids) = self.by_ref.get_mut(r) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_ref.remove(r);
                }
            }
        }
        metrics::gauge!(CONNECTIONS, "transport" => connection.transport.label()).decrement(1);
        Some(connection)
    }
}

struct Hub {
    registry: RwLock<Registry>,
    next_id: AtomicU64,
    queue_size: usize,
    observers: broadcast::Sender<Arc<SignalEvent>>,
}

/// This instance's connections. Cheap to clone.
#[derive(Clone)]
pub struct SignalHub {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for SignalHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalHub")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl SignalHub {
    /// `queue_size`: events a connection may have waiting before it is dropped.
    pub fn new(queue_size: usize) -> Self {
        Self {
            hub: Arc::new(Hub {
                registry: RwLock::default(),
                next_id: AtomicU64::new(0),
                queue_size: queue_size.max(1),
                observers: broadcast::channel(OBSERVER_CAPACITY).0,
            }),
        }
    }

    /// A new connection acting as `refs` (a user and their groups), subscribed to no channel.
    pub fn connect(&self, refs: Vec<String>, transport: Transport) -> Subscription {
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, events) = mpsc::channel(self.hub.queue_size);
        let fell_behind = Arc::new(AtomicBool::new(false));
        let mut registry = self.write();
        for r in &refs {
            registry.by_ref.entry(r.clone()).or_default().push(id);
        }
        registry.connections.insert(
            id,
            Connection {
                refs,
                channels: Vec::new(),
                queue,
                transport,
                fell_behind: fell_behind.clone(),
            },
        );
        metrics::gauge!(CONNECTIONS, "transport" => transport.label()).increment(1);
        Subscription {
            id,
            hub: self.clone(),
            events,
            fell_behind,
        }
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.read().connections.len()
    }

    /// Ends every connection (the server is stopping): their transports close them, and a
    /// graceful stop need not wait for clients that would never leave by themselves.
    pub fn close_all(&self) {
        let mut registry = self.write();
        let ids: Vec<u64> = registry.connections.keys().copied().collect();
        for id in ids {
            registry.remove(id);
        }
    }

    /// Every event delivered from now on, whoever it is for (for tests and embedders).
    pub fn observe(&self) -> broadcast::Receiver<Arc<SignalEvent>> {
        self.hub.observers.subscribe()
    }

    /// Hands committed events to the connections they are for.
    pub fn deliver(&self, events: &[Arc<SignalEvent>]) {
        let mut behind = Vec::new();
        {
            let registry = self.read();
            for event in events {
                // No observer is not an error.
                let _ = self.hub.observers.send(event.clone());
                let mut offer = |id: &u64, c: &Connection| {
                    if c.channels.contains(&event.channel)
                        && c.queue.try_send(event.clone()).is_err()
                    {
                        behind.push(*id);
                    }
                };
                match &event.recipient {
                    None => registry.connections.iter().for_each(|(id, c)| offer(id, c)),
                    Some(r) => {
                        for id in registry.by_ref.get(r).into_iter().flatten() {
                            if let Some(c) = registry.connections.get(id) {
                                offer(id, c);
                            }
                        }
                    }
                }
            }
        }
        if behind.is_empty() {
            return;
        }
        behind.sort_unstable();
        behind.dedup();
        let mut registry = self.write();
        for id in behind {
            // Dropping the queue's sender ends the consumer's stream once it has drained it.
            if let Some(c) = registry.remove(id) {
                c.fell_behind.store(true, Ordering::Relaxed);
                metrics::counter!(DROPPED, "transport" => c.transport.label()).increment(1);
                tracing::warn!(
                    transport = c.transport.label(),
                    queue = self.hub.queue_size,
                    "dropped a signals consumer that fell behind"
                );
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A panic while holding the lock leaves the maps consistent (no update spans a panic).
        self.hub.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.hub.registry.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's events. Dropping it disconnects.
pub struct Subscription {
    id: u64,
    hub: SignalHub,
    events: mpsc::Receiver<Arc<SignalEvent>>,
    fell_behind: Arc<AtomicBool>,
}

impl Subscription {
    /// The next event; `None` once the hub dropped this consumer (see [`Self::fell_behind`]) or
    /// closed every connection.
    pub async fn next(&mut self) -> Option<Arc<SignalEvent>> {
        self.events.recv().await
    }

    /// True when the consumer was dropped for not keeping up.
    pub fn fell_behind(&self) -> bool {
        self.fell_behind.load(Ordering::Relaxed)
    }

    /// Starts or stops receiving the events of `channel`. Subscriptions beyond
    /// [`MAX_CHANNELS`], and channel names longer than [`MAX_CHANNEL_NAME`], are ignored.
    pub fn set_subscribed(&self, channel: &str, subscribed: bool) {
        let mut registry = self.hub.write();
        if let Some(c) = registry.connections.get_mut(&self.id) {
            let present = c.channels.iter().position(|ch| ch == channel);
            match (subscribed, present) {
                (true, None)
                    if c.channels.len() < MAX_CHANNELS && channel.len() <= MAX_CHANNEL_NAME =>
                {
                    c.channels.push(channel.to_owned())
                }
                (false, Some(i)) => {
                    c.channels.swap_remove(i);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.write().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, recipient: Option<&str>) -> Arc<SignalEvent> {
        Arc::new(SignalEvent::new(
            id,
            recipient.map(str::to_owned),
            "notifications".into(),
            "{}".into(),
        ))
    }

    #[tokio::test]
    async fn events_reach_only_their_recipients_subscribed_connections() {
        let hub = SignalHub::new(8);
        let mut alice = hub.connect(
            vec!["user:default/alice".into(), "group:default/team".into()],
            Transport::WebSocket,
        );
        let mut bob = hub.connect(vec!["user:default/bob".into()], Transport::WebSocket);
        let mut unsubscribed = hub.connect(vec!["user:default/alice".into()], Transport::WebSocket);
        alice.set_subscribed("notifications", true);
        bob.set_subscribed("notifications", true);
        hub.deliver(&[
            event(1, Some("user:default/alice")),
            event(2, Some("group:default/team")),
            event(3, None),
            event(4, Some("user:default/bob")),
        ]);
        let ids = |s: &mut Subscription| {
            std::iter::from_fn(|| s.events.try_recv().ok())
                .map(|e| e.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut alice), [1, 2, 3]);
        assert_eq!(ids(&mut bob), [3, 4]);
        assert!(ids(&mut unsubscribed).is_empty());
        bob.set_subscribed("notifications", false);
        hub.deliver(&[event(5, None)]);
        assert!(ids(&mut bob).is_empty());
        assert_eq!(ids(&mut alice), [5]);
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_is_dropped_after_its_queue() {
        let hub = SignalHub::new(2);
        let mut slow = hub.connect(vec!["user:default/a".into()], Transport::EventStream);
        slow.set_subscribed("notifications", true);
        let events: Vec<_> = (1..=3).map(|i| event(i, None)).collect();
        hub.deliver(&events);
        assert_eq!(hub.connections(), 0);
        assert!(slow.fell_behind());
        // What was queued is still delivered, then the stream ends.
        assert_eq!(slow.next().await.unwrap().id, 1);
        assert_eq!(slow.next().await.unwrap().id, 2);
        assert!(slow.next().await.is_none());
    }

    #[test]
    fn subscriptions_are_bounded() {
        let hub = SignalHub::new(2);
        let s = hub.connect(vec!["user:default/guest".into()], Transport::WebSocket);
        for i in 0..1000 {
            s.set_subscribed(&format!("channel-{i}"), true);
        }
        s.set_subscribed(&"x".repeat(MAX_CHANNEL_NAME + 1), true);
        assert_eq!(hub.read().connections[&s.id].channels.len(), MAX_CHANNELS);
    }

    #[test]
    fn dropping_a_subscription_disconnects() {
        let hub = SignalHub::new(2);
        let a = hub.connect(vec!["user:default/a".into()], Transport::WebSocket);
        let b = hub.connect(vec!["user:default/a".into()], Transport::WebSocket);
        assert_eq!(hub.connections(), 2);
        drop(a);
        assert_eq!(hub.connections(), 1);
        drop(b);
        assert_eq!(hub.connections(), 0);
        assert!(hub.read().by_ref.is_empty());
    }
}
