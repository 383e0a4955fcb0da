//! The connections of this instance and who gets what: every connection registers with the
//! refs it acts as, and each event goes only to the connections of its recipient (or to all, for
//! everyone's), subscribed to its channel.
//!
//! The registry holds one set of connections per ref, so that connecting and disconnecting cost
//! the refs of that connection, whoever else is connected (every anonymous connection is the
//! guest). A connection's channels are its own, behind its own lock: subscribing does not take
//! the registry's. Connections are capped per client address and per user (see [`caps`]).
//!
//! Each connection has a bounded queue. A consumer that falls behind until its queue is full is
//! dropped (its transport closes it; an event-stream client resumes where it was), so a slow or
//! dead client never makes memory grow.
//!
//! [`caps`]: super::caps

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use tokio::sync::{broadcast, mpsc};

use super::PublishedSignal;
use super::caps::{Caps, Peer, Refused};
use crate::metrics::{SIGNAL_CONNECTIONS, SIGNAL_DROPPED, SIGNAL_REFUSED};

/// Channels one connection may subscribe to, and the longest channel name: a client (even the
/// anonymous guest) cannot make the registry grow without bound.
const MAX_CHANNELS: usize = 16;
const MAX_CHANNEL_NAME: usize = 255;

/// Events kept for in-process observers ([`SignalHub::observe`]) that fall behind.
const OBSERVER_CAPACITY: usize = 4096;

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

/// What a hub holds its connections to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Events a connection may have waiting before it is dropped.
    pub queue_size: usize,
    /// Connections one client address may hold.
    pub per_ip: usize,
    /// Connections one signed-in user may hold.
    pub per_user: usize,
}

struct Connection {
    id: u64,
    refs: Vec<String>,
    peer: Peer,
    /// Its own lock: a subscribe frame contends with deliveries to this connection only.
    channels: Channels,
    queue: mpsc::Sender<Arc<PublishedSignal>>,
    transport: Transport,
    fell_behind: Arc<AtomicBool>,
}

impl Connection {
    fn subscribed(&self, channel: &str) -> bool {
        lock(&self.channels).iter().any(|c| c == channel)
    }
}

/// Shared with the [`Subscription`], which must not hold the queue: removing the connection from
/// the registry drops the queue's sender, which ends its consumer.
type Channels = Arc<Mutex<Vec<String>>>;

struct Registry {
    connections: HashMap<u64, Arc<Connection>>,
    /// The connections acting as each ref.
    by_ref: HashMap<String, HashMap<u64, Arc<Connection>>>,
    caps: Caps,
}

impl Registry {
    /// Costs the refs of the connection, not the number of connections.
    fn remove(&mut self, id: u64) -> Option<Arc<Connection>> {
        let connection = self.connections.remove(&id)?;
        for r in &connection.refs {
            if let Some(ids) = self.by_ref.get_mut(r) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_ref.remove(r);
                }
            }
        }
        self.caps.release(&connection.peer);
        metrics::gauge!(SIGNAL_CONNECTIONS, "transport" => connection.transport.label())
            .decrement(1);
        Some(connection)
    }
}

struct Hub {
    registry: RwLock<Registry>,
    next_id: AtomicU64,
    queue_size: usize,
    observers: broadcast::Sender<Arc<PublishedSignal>>,
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
    pub fn new(limits: Limits) -> Self {
        Self {
            hub: Arc::new(Hub {
                registry: RwLock::new(Registry {
                    connections: HashMap::new(),
                    by_ref: HashMap::new(),
                    caps: Caps::new(limits.per_ip, limits.per_user),
                }),
                next_id: AtomicU64::new(0),
                queue_size: limits.queue_size.max(1),
                observers: broadcast::channel(OBSERVER_CAPACITY).0,
            }),
        }
    }

    /// A new connection of `peer` acting as `refs` (a user and their groups), subscribed to no
    /// channel; refused when `peer` holds as many as its caps allow.
    pub fn connect(
        &self,
        refs: Vec<String>,
        peer: Peer,
        transport: Transport,
    ) -> Result<Subscription, Refused> {
        let mut registry = self.write();
        if let Err(refused) = registry.caps.admit(&peer) {
            drop(registry);
            metrics::counter!(SIGNAL_REFUSED, "transport" => transport.label()).increment(1);
            tracing::info!(transport = transport.label(), ip = ?peer.ip, user = ?peer.user, "refused a signals connection: {refused}");
            return Err(refused);
        }
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, events) = mpsc::channel(self.hub.queue_size);
        let fell_behind = Arc::new(AtomicBool::new(false));
        let channels = Channels::default();
        let connection = Arc::new(Connection {
            id,
            refs,
            peer,
            channels: channels.clone(),
            queue,
            transport,
            fell_behind: fell_behind.clone(),
        });
        for r in &connection.refs {
            registry
                .by_ref
                .entry(r.clone())
                .or_default()
                .insert(id, connection.clone());
        }
        registry.connections.insert(id, connection);
        drop(registry);
        metrics::gauge!(SIGNAL_CONNECTIONS, "transport" => transport.label()).increment(1);
        Ok(Subscription {
            membership: Membership {
                id,
                channels,
                hub: self.clone(),
            },
            events: Events {
                queue: events,
                fell_behind,
            },
        })
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
    pub fn observe(&self) -> broadcast::Receiver<Arc<PublishedSignal>> {
        self.hub.observers.subscribe()
    }

    /// Hands committed events to the connections they are for.
    pub fn deliver(&self, events: &[Arc<PublishedSignal>]) {
        let mut behind = Vec::new();
        {
            let registry = self.read();
            for event in events {
                // No observer is not an error.
                let _ = self.hub.observers.send(event.clone());
                let mut offer = |c: &Arc<Connection>| {
                    if c.subscribed(&event.channel) && c.queue.try_send(event.clone()).is_err() {
                        behind.push(c.id);
                    }
                };
                match &event.recipient {
                    None => registry.connections.values().for_each(&mut offer),
                    Some(r) => registry
                        .by_ref
                        .get(r)
                        .into_iter()
                        .flat_map(HashMap::values)
                        .for_each(&mut offer),
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
                metrics::counter!(SIGNAL_DROPPED, "transport" => c.transport.label()).increment(1);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // As for the registry: no update of a connection's channels spans a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One connection: its place in the registry and its queue of events. Dropping it disconnects.
pub struct Subscription {
    membership: Membership,
    events: Events,
}

impl Subscription {
    /// The next event; `None` once the hub dropped this consumer (see [`Self::fell_behind`]) or
    /// closed every connection.
    pub async fn next(&mut self) -> Option<Arc<PublishedSignal>> {
        self.events.queue.recv().await
    }

    /// True when the consumer was dropped for not keeping up.
    pub fn fell_behind(&self) -> bool {
        self.events.fell_behind()
    }

    /// See [`Membership::set_subscribed`].
    pub fn set_subscribed(&self, channel: &str, subscribed: bool) {
        self.membership.set_subscribed(channel, subscribed);
    }

    /// The two halves, for a transport whose writer (which drains the events) and reader (which
    /// subscribes, and disconnects when the client goes) are apart.
    pub fn into_parts(self) -> (Membership, Events) {
        (self.membership, self.events)
    }
}

/// A connection's place in the registry, and its channels. Dropping it disconnects: the
/// connection's [`Events`] then end once drained.
pub struct Membership {
    id: u64,
    channels: Channels,
    hub: SignalHub,
}

impl Membership {
    /// Starts or stops receiving the events of `channel`. Subscriptions beyond
    /// [`MAX_CHANNELS`], and channel names longer than [`MAX_CHANNEL_NAME`], are ignored.
    pub fn set_subscribed(&self, channel: &str, subscribed: bool) {
        let mut channels = lock(&self.channels);
        let present = channels.iter().position(|ch| ch == channel);
        match (subscribed, present) {
            (true, None) if channels.len() < MAX_CHANNELS && channel.len() <= MAX_CHANNEL_NAME => {
                channels.push(channel.to_owned())
            }
            (false, Some(i)) => {
                channels.swap_remove(i);
            }
            _ => {}
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.write().remove(self.id);
    }
}

/// A connection's queue of events.
pub struct Events {
    queue: mpsc::Receiver<Arc<PublishedSignal>>,
    fell_behind: Arc<AtomicBool>,
}

impl Events {
    /// The next event if one is ready; `Ready(None)` once the connection is gone from the
    /// registry and its queue drained.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<PublishedSignal>>> {
        self.queue.poll_recv(cx)
    }

    /// True when the consumer was dropped for not keeping up.
    pub fn fell_behind(&self) -> bool {
        self.fell_behind.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(queue_size: usize) -> SignalHub {
        SignalHub::new(Limits {
            queue_size,
            per_ip: 1000,
            per_user: 1000,
        })
    }

    fn connect(hub: &SignalHub, refs: &[&str], transport: Transport) -> Subscription {
        let refs = refs.iter().map(|r| (*r).to_owned()).collect();
        hub.connect(refs, Peer::default(), transport).unwrap()
    }

    fn event(id: i64, recipient: Option<&str>) -> Arc<PublishedSignal> {
        Arc::new(PublishedSignal::new(
            id,
            recipient.map(str::to_owned),
            "notifications".into(),
            "{}".into(),
        ))
    }

    #[tokio::test]
    async fn events_reach_only_their_recipients_subscribed_connections() {
        let hub = hub(8);
        let mut alice = connect(
            &hub,
            &["user:default/alice", "group:default/team"],
            Transport::WebSocket,
        );
        let mut bob = connect(&hub, &["user:default/bob"], Transport::WebSocket);
        let mut unsubscribed = connect(&hub, &["user:default/alice"], Transport::WebSocket);
        alice.set_subscribed("notifications", true);
        bob.set_subscribed("notifications", true);
        hub.deliver(&[
            event(1, Some("user:default/alice")),
            event(2, Some("group:default/team")),
            event(3, None),
            event(4, Some("user:default/bob")),
        ]);
        let ids = |s: &mut Subscription| {
            std::iter::from_fn(|| s.events.queue.try_recv().ok())
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
        let hub = hub(2);
        let mut slow = connect(&hub, &["user:default/a"], Transport::EventStream);
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
        let hub = hub(2);
        let s = connect(&hub, &["user:default/guest"], Transport::WebSocket);
        for i in 0..1000 {
            s.set_subscribed(&format!("channel-{i}"), true);
        }
        s.set_subscribed(&"x".repeat(MAX_CHANNEL_NAME + 1), true);
        assert_eq!(lock(&s.membership.channels).len(), MAX_CHANNELS);
    }

    #[test]
    fn dropping_a_subscription_disconnects_exactly_it() {
        let hub = hub(2);
        let guests: Vec<_> = (0..100)
            .map(|_| connect(&hub, &["user:default/guest"], Transport::WebSocket))
            .collect();
        let a = connect(
            &hub,
            &["user:default/a", "group:default/g"],
            Transport::WebSocket,
        );
        let b = connect(&hub, &["user:default/a"], Transport::WebSocket);
        assert_eq!(hub.connections(), 102);
        let mut guests = guests.into_iter();
        let gone = guests.next().unwrap();
        let gone_id = gone.membership.id;
        drop(gone);
        {
            let registry = hub.read();
            let guest = &registry.by_ref["user:default/guest"];
            assert_eq!(guest.len(), 99);
            assert!(!guest.contains_key(&gone_id) && !registry.connections.contains_key(&gone_id));
        }
        drop(a);
        {
            let registry = hub.read();
            assert!(!registry.by_ref.contains_key("group:default/g"));
            assert_eq!(
                registry.by_ref["user:default/a"].keys().collect::<Vec<_>>(),
                [&b.membership.id]
            );
        }
        drop(b);
        drop(guests);
        assert_eq!(hub.connections(), 0);
        assert!(hub.read().by_ref.is_empty());
    }

    #[test]
    fn connections_are_capped_and_a_disconnect_frees_its_place() {
        let hub = SignalHub::new(Limits {
            queue_size: 2,
            per_ip: 2,
            per_user: 1,
        });
        let at = |ip: &str, user: Option<&str>| {
            Peer::new(Some(ip.parse().unwrap()), user.map(str::to_owned))
        };
        let refs = || vec!["user:default/a".to_owned()];
        let first = hub
            .connect(
                refs(),
                at("10.0.0.1", Some("user:default/a")),
                Transport::WebSocket,
            )
            .unwrap();
        assert_eq!(
            hub.connect(
                refs(),
                at("10.0.0.2", Some("user:default/a")),
                Transport::EventStream
            )
            .err(),
            Some(Refused::User(1))
        );
        let _guest = hub
            .connect(refs(), at("10.0.0.1", None), Transport::WebSocket)
            .unwrap();
        assert_eq!(
            hub.connect(refs(), at("10.0.0.1", None), Transport::WebSocket)
                .err(),
            Some(Refused::Address(2))
        );
        assert_eq!(
            hub.connections(),
            2,
            "refused connections are not registered"
        );
        drop(first);
        hub.connect(
            refs(),
            at("10.0.0.1", Some("user:default/a")),
            Transport::WebSocket,
        )
        .unwrap();
    }

    #[test]
    fn a_consumer_dropped_for_falling_behind_frees_its_place() {
        let hub = SignalHub::new(Limits {
            queue_size: 1,
            per_ip: 1000,
            per_user: 1,
        });
        let peer = Peer::new(None, Some("user:default/a".into()));
        let slow = hub
            .connect(
                vec!["user:default/a".into()],
                peer.clone(),
                Transport::EventStream,
            )
            .unwrap();
        slow.set_subscribed("notifications", true);
        hub.deliver(&[event(1, None), event(2, None)]);
        assert!(slow.fell_behind());
        let _next = hub
            .connect(
                vec!["user:default/a".into()],
                peer.clone(),
                Transport::EventStream,
            )
            .unwrap();
        // Its own drop later does not release the place a second time.
        drop(slow);
        assert_eq!(
            hub.connect(vec!["user:default/a".into()], peer, Transport::EventStream)
                .err(),
            Some(Refused::User(1))
        );
    }
}
