//! Signals across instances on PostgreSQL: each instance announces the ids of the events it
//! committed with NOTIFY (a payload is limited to 8,000 bytes, so ids, not bodies), and fetches
//! the events other instances announced for its own connections.
//!
//! The NOTIFY is sent after the commit, batched, on its own statement: a NOTIFY inside the
//! writing transaction would serialise every commit of the cluster (PostgreSQL takes a global
//! lock to order notifying commits). After the LISTEN connection is lost and regained, every
//! event still kept (the replay window) is read again and those not delivered here yet are
//! delivered, so a database restart loses nothing, whatever order ids were committed in.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{PublishedSignal, SignalHub};
use crate::db::DbError;
use crate::db::listen::{Listener, listen};
use crate::store::Store;

/// The NOTIFY channel of signal announcements.
pub const SIGNALS_CHANNEL: &str = "notifications_signals";
/// Below PostgreSQL's 8,000-byte payload limit.
const MAX_PAYLOAD: usize = 7800;
/// Ids remembered as delivered here, so that a catch-up does not deliver them twice.
const REMEMBERED: usize = 100_000;
/// Events fetched per catch-up query, and at most in all after one reconnection.
const CATCH_UP_BATCH: i64 = 1000;
const CATCH_UP_MAX: usize = 100_000;
/// Tries of a database call before giving up (see [`retrying`]).
const ATTEMPTS: u64 = 8;

#[derive(Serialize, Deserialize)]
struct Announcement {
    /// The announcing instance (which ignores its own announcements).
    from: String,
    /// Inclusive id ranges.
    ids: Vec<(i64, i64)>,
}

/// The events delivered on this instance lately.
#[derive(Default)]
struct Seen {
    order: VecDeque<i64>,
    ids: HashSet<i64>,
}

impl Seen {
    /// Records `id`; false when it was already there.
    fn insert(&mut self, id: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// What publishing needs from the relay.
#[derive(Clone)]
pub(super) struct Announcer {
    seen: Arc<Mutex<Seen>>,
    outbox: mpsc::UnboundedSender<Vec<i64>>,
}

impl Announcer {
    /// Tells the other instances of events this one committed (and delivered itself).
    pub(super) fn announce(&self, events: &[Arc<PublishedSignal>]) {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        {
            let mut seen = lock(&self.seen);
            for id in &ids {
                seen.insert(*id);
            }
        }
        // Closed only while shutting down.
        let _ = self.outbox.send(ids);
    }
}

/// Runs while alive: stops listening and announcing when dropped.
pub struct Relay {
    _listener: Listener,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts relaying: LISTEN on `url` and deliver other instances' events to `hub`.
pub(super) fn start(
    store: Store,
    hub: SignalHub,
    url: String,
) -> std::io::Result<(Relay, Announcer)> {
    let instance = uuid::Uuid::new_v4().simple().to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (outbox, committed) = mpsc::unbounded_channel();
    let (heard, notifications) = mpsc::unbounded_channel();
    let listener = listen(url, SIGNALS_CHANNEL, move |payload| {
        // Closed only while shutting down.
        let _ = heard.send(payload);
    })?;
    let tasks = vec![
        tokio::spawn(announce_loop(store.clone(), instance.clone(), committed)),
        tokio::spawn(receive_loop(
            store,
            hub,
            instance,
            notifications,
            seen.clone(),
        )),
    ];
    Ok((
        Relay {
            _listener: listener,
            tasks,
        },
        Announcer { seen, outbox },
    ))
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends what was committed since the last round in as few NOTIFYs as fit.
async fn announce_loop(
    store: Store,
    instance: String,
    mut committed: mpsc::UnboundedReceiver<Vec<i64>>,
) {
    while let Some(mut ids) = committed.recv().await {
        while let Ok(more) = committed.try_recv() {
            ids.extend(more);
        }
        for payload in announcements(&instance, ids) {
            announce(&store, payload).await;
        }
    }
}

async fn announce(store: &Store, payload: String) {
    if let Err(e) = retrying(|| store.notify(SIGNALS_CHANNEL, payload.clone())).await {
        // The events are stored: resuming event-stream clients still get them.
        tracing::warn!(error = %e, "could not announce signals to other instances");
    }
}

/// Runs `op` until it succeeds, a few times: after a database restart the pool hands out its
/// dead connections first (one failure each).
async fn retrying<T, F, Fut>(mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(_) if attempt < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// `ids` as announcement payloads, each within the NOTIFY limit.
fn announcements(instance: &str, mut ids: Vec<i64>) -> Vec<String> {
    ids.sort_unstable();
    ids.dedup();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for id in ids {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == id => *last = id,
            _ => ranges.push((id, id)),
        }
    }
    // A range is at most 42 bytes of JSON; the envelope about 60.
    let per_payload = (MAX_PAYLOAD - 100) / 42;
    ranges
        .chunks(per_payload)
        .map(|chunk| {
            serde_json::to_string(&Announcement {
                from: instance.to_owned(),
                ids: chunk.to_vec(),
            })
            .unwrap_or_default()
        })
        .collect()
}

async fn receive_loop(
    store: Store,
    hub: SignalHub,
    instance: String,
    mut notifications: mpsc::UnboundedReceiver<Option<String>>,
    seen: Arc<Mutex<Seen>>,
) {
    // Events up to this id were committed before this instance listened: history, not news.
    let mut history: Option<i64> = None;
    while let Some(payload) = notifications.recv().await {
        let result = match payload {
            Some(payload) => match serde_json::from_str::<Announcement>(&payload) {
                Ok(a) if a.from == instance => Ok(()),
                Ok(a) => fetch_and_deliver(&store, &hub, &seen, a.ids).await,
                Err(e) => {
                    tracing::warn!(error = %e, "ignored a malformed signals announcement");
                    Ok(())
                }
            },
            // Connected: the first time, what is kept is history; after a reconnection, what
            // was committed while nobody listened is caught up.
            None => match history {
                None => retrying(|| store.signal_event_bounds())
                    .await
                    .map(|(_, newest)| history = Some(newest.unwrap_or(0))),
                Some(after) => catch_up(&store, &hub, &seen, after).await,
            },
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not fetch other instances' signals");
        }
    }
}

async fn fetch_and_deliver(
    store: &Store,
    hub: &SignalHub,
    seen: &Mutex<Seen>,
    ranges: Vec<(i64, i64)>,
) -> Result<(), DbError> {
    let events = retrying(|| store.signal_events_in(ranges.clone())).await?;
    deliver_unseen(hub, seen, events);
    Ok(())
}

/// Reads every event kept after `after` and delivers those not delivered here yet.
async fn catch_up(
    store: &Store,
    hub: &SignalHub,
    seen: &Mutex<Seen>,
    mut after: i64,
) -> Result<(), DbError> {
    let (mut read, mut caught) = (0, 0);
    while read < CATCH_UP_MAX {
        let events =
            retrying(|| store.signal_events_after(after, None, None, CATCH_UP_BATCH)).await?;
        let Some(last) = events.last() else { break };
        after = last.id;
        read += events.len();
        let full = events.len() as i64 == CATCH_UP_BATCH;
        caught += deliver_unseen(hub, seen, events);
        if !full {
            break;
        }
    }
    if caught > 0 {
        tracing::info!(
            events = caught,
            "caught up on signals committed while not listening"
        );
    }
    Ok(())
}

/// Delivers the events not delivered here yet; gives how many.
fn deliver_unseen(hub: &SignalHub, seen: &Mutex<Seen>, events: Vec<PublishedSignal>) -> usize {
    let fresh: Vec<Arc<PublishedSignal>> = {
        let mut seen = lock(seen);
        events
            .into_iter()
            .filter(|e| seen.insert(e.id))
            .map(Arc::new)
            .collect()
    };
    hub.deliver(&fresh);
    fresh.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_are_ranges_within_the_limit() {
        let payloads = announcements("me", vec![5, 3, 4, 9, 9, 10, 1]);
        assert_eq!(payloads.len(), 1);
        let a: Announcement = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(a.ids, [(1, 1), (3, 5), (9, 10)]);

        // Every other id of large values: no range merges, so many payloads.
        let ids: Vec<i64> = (0..20_000).map(|i| 1_000_000_000_000_000 + 2 * i).collect();
        let payloads = announcements("0123456789abcdef0123456789abcdef", ids.clone());
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() < 8000, "{}", p.len());
            let a: Announcement = serde_json::from_str(p).unwrap();
            back.extend(a.ids.into_iter().map(|(first, last)| {
                assert_eq!(first, last);
                first
            }));
        }
        assert_eq!(back, ids);
    }

    #[test]
    fn seen_forgets_the_oldest() {
        let mut seen = Seen::default();
        assert!(seen.insert(3));
        assert!(!seen.insert(3));
        for id in 10..(10 + REMEMBERED as i64) {
            seen.insert(id);
        }
        assert!(seen.insert(3), "forgotten");
        assert!(!seen.insert(9 + REMEMBERED as i64));
    }
}
