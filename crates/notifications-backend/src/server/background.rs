//! The backend's background work under one owner, which stops it in order once the server has
//! stopped.

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::db::Backend;
use crate::db::listen::Listener;
use crate::delivery::RunningWorker;
use crate::signals::{Relay, SignalHub};
use crate::store::Store;
use crate::{cleaner, signals};

#[derive(Default)]
pub(super) struct Background {
    /// Deliveries; stopped first and gracefully, so that attempts in progress finish.
    pub worker: Option<RunningWorker>,
    /// Periodic work and watchers, aborted next: nothing they do is lost by stopping between
    /// runs.
    tasks: Vec<JoinHandle<()>>,
    /// PostgreSQL's LISTEN connections (other instances' deliveries, signals), closed last.
    pub listener: Option<Listener>,
    pub relay: Option<Relay>,
}

impl Background {
    pub fn add(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// The periodic upkeep of the store: signal pruning, expired idempotency keys, (on
    /// PostgreSQL) folding unread counts, and retention.
    pub fn spawn_upkeep(&mut self, store: &Store, config: &Config) {
        self.add(signals::spawn_pruning(
            store.clone(),
            config.notifications.signals.replay_window,
        ));
        self.add(cleaner::spawn_key_sweeper(store.clone()));
        if store.db().backend() == Backend::Postgres {
            self.add(cleaner::spawn_count_folder(store.clone()));
        }
        self.tasks.extend(cleaner::spawn(
            store.clone(),
            config.notifications.retention.clone(),
        ));
    }

    /// Closes the live connections (WebSocket, event streams) on SIGTERM, so that actix's
    /// graceful stop, which waits for open connections, does not wait for them.
    pub fn close_live_connections_on_sigterm(&mut self, signals: SignalHub) {
        self.add(tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    terminate.recv().await;
                    signals.close_all();
                }
                Err(e) => tracing::warn!("cannot watch for SIGTERM: {e}"),
            }
        }));
    }

    /// Stops everything, in order: the worker (gracefully), the tasks, then the connections.
    pub async fn stop(self) {
        if let Some(worker) = self.worker {
            worker.shutdown().await;
        }
        for task in self.tasks {
            task.abort();
        }
        drop(self.listener);
        drop(self.relay);
    }
}
