//! The delivery worker: takes due deliveries from the queue and runs the processors'
//! `post_process`, with a timeout per attempt, retries with exponential backoff, and a final
//! "failed" that stays visible (logged, and listed by the `deliveries` command).
//!
//! Deliveries are at least once: a worker that dies mid-delivery leaves its rows locked until
//! their lease runs out, and then any worker takes them again.
//!
//! Before a delivery to a user is made, their preferences may hold it ([`hold`]): until their
//! quiet hours end, or, for e-mail, into their digest, which [`digest`] mails when its window
//! closes.

mod digest;
mod hold;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use notifications_common::{Notification, NotificationSendOptions};
use notifications_node::{Processor, ProcessorError};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::{DeliveryConfig, PreferencesConfig};
use crate::processors::email::EmailProcessor;
use crate::store::{DeliveryRow, Outcome, Store};

/// What applying users' delivery preferences (quiet hours, digests) takes.
pub struct Scheduling {
    /// `notifications.preferences`.
    pub config: PreferencesConfig,
    /// `notifications.defaultSettings`: a digest leaves out what the user's settings exclude.
    pub default_settings: notifications_common::NotificationSettings,
    /// Mails digests; without it, e-mail goes one mail per notification.
    pub mailer: Option<Arc<EmailProcessor>>,
    pub clock: Arc<dyn Clock>,
}

impl Default for Scheduling {
    fn default() -> Self {
        Self {
            config: PreferencesConfig::default(),
            default_settings: Default::default(),
            mailer: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counts an outcome in the deliveries metric.
fn count_outcome(channel: &str, outcome: &Outcome) {
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Later { .. } => "later",
        Outcome::Quiet { .. } => "quiet",
        Outcome::Digest { .. } => "digest",
        Outcome::Failed { .. } => "failed",
    };
    metrics::counter!(crate::metrics::DELIVERIES, "channel" => channel.to_owned(), "outcome" => label)
        .increment(1);
}

/// A worker at work.
pub struct RunningWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
    /// How long the deliveries in progress may take to finish (their timeout).
    grace: Duration,
}

impl RunningWorker {
    /// Takes no more deliveries and lets those in progress finish (or time out and be recorded
    /// as such), so that a restart does not make them again; then stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(self.grace, &mut task).await.is_err() {
            tracing::warn!("deliveries still in progress at shutdown; they are made again later");
            task.abort();
        }
    }
}

pub struct DeliveryWorker {
    store: Store,
    processors: HashMap<String, Arc<dyn Processor>>,
    config: DeliveryConfig,
    wake: Arc<Notify>,
    scheduling: Scheduling,
}

impl DeliveryWorker {
    pub fn new(
        store: Store,
        processors: &[Arc<dyn Processor>],
        config: DeliveryConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            processors: processors
                .iter()
                .map(|p| (p.name().to_owned(), p.clone()))
                .collect(),
            config,
            wake,
            scheduling: Scheduling::default(),
        }
    }

    pub fn with_scheduling(mut self, scheduling: Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    fn now(&self) -> OffsetDateTime {
        self.scheduling.clock.now()
    }

    /// Works the queue until shut down; `None` without processors (nothing to deliver to) or
    /// when this instance runs no worker.
    pub fn spawn(self) -> Option<RunningWorker> {
        if self.processors.is_empty() || !self.config.worker {
            return None;
        }
        let (stop, mut stopping) = tokio::sync::watch::channel(false);
        let grace = self.config.timeout + Duration::from_secs(1);
        let task = tokio::spawn(async move {
            while !*stopping.borrow() {
                match self.run_once().await {
                    Ok(0) | Err(_) => {
                        tokio::select! {
                            () = self.wake.notified() => {}
                            () = tokio::time::sleep(self.config.poll_interval) => {}
                            _ = stopping.changed() => {}
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
        Some(RunningWorker { stop, task, grace })
    }

    /// Delivers one batch of due deliveries, and beside them the digests whose windows closed;
    /// returns how many deliveries there were.
    pub async fn run_once(&self) -> Result<usize, crate::db::DbError> {
        let (digests, due) = tokio::join!(self.flush_digests(), self.deliver_due());
        Ok(digests + due?)
    }

    /// Delivers one batch of due deliveries; returns how many there were.
    async fn deliver_due(&self) -> Result<usize, crate::db::DbError> {
        let batch = self.config.concurrency as usize;
        let rows = self
            .store
            .claim_deliveries(
                self.now(),
                self.processors.keys().cloned().collect(),
                batch as i64,
                self.lease(),
                self.config.max_attempts,
            )
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "cannot take deliveries from the queue"))?;
        let count = rows.len();
        futures_util::stream::iter(rows)
            .for_each_concurrent(batch, |row| self.deliver(row))
            .await;
        Ok(count)
    }

    async fn deliver(&self, row: DeliveryRow) {
        let outcome = match self.hold(&row).await {
            Some(held) => held,
            None => {
                let result = self.attempt(&row).await;
                self.outcome(result, row.attempts)
            }
        };
        count_outcome(&row.channel, &outcome);
        let (id, channel, attempts) = (row.id, &row.channel, row.attempts);
        let notification = row.notification_id;
        match &outcome {
            Outcome::Delivered => {
                tracing::debug!(%id, %notification, channel, attempts, "delivered");
            }
            Outcome::Retry { at, error } => {
                tracing::warn!(%id, %notification, channel, attempts, retry_at = %at, error, "delivery failed; will retry");
            }
            Outcome::Later { at, reason } => {
                tracing::debug!(%id, %notification, channel, retry_at = %at, reason, "delivery put back");
            }
            Outcome::Digest { due } => {
                tracing::debug!(%id, %notification, channel, due = %due, "delivery kept for a digest");
            }
            Outcome::Quiet { until } => {
                tracing::debug!(%id, %notification, channel, until = %until, "delivery held for quiet hours");
            }
            Outcome::Failed { error } => {
                tracing::error!(%id, %notification, channel, attempts, error, "delivery failed for good");
            }
        }
        self.record(&[row], outcome).await;
    }

    /// What an attempt's result makes of a delivery that had `attempts` attempts.
    fn outcome(&self, result: Result<(), ProcessorError>, attempts: i32) -> Outcome {
        let now = self.now();
        match result {
            Ok(()) => Outcome::Delivered,
            Err(ProcessorError::Permanent(error)) => Outcome::Failed { error },
            Err(ProcessorError::Later { after, reason }) => Outcome::Later {
                at: now + after,
                reason,
            },
            Err(ProcessorError::Transient(error)) => {
                if attempts >= self.config.max_attempts as i32 {
                    Outcome::Failed {
                        error: format!("{error} (gave up after {attempts} attempts)"),
                    }
                } else {
                    Outcome::Retry {
                        at: now + self.backoff(attempts),
                        error,
                    }
                }
            }
        }
    }

    /// Records the outcome of `rows` (claimed together: one lease) in one statement, trying
    /// again for a while if the database fails: rows left leased are delivered again once the
    /// lease runs out (at least once), which an outcome that made it avoids.
    async fn record(&self, rows: &[DeliveryRow], outcome: Outcome) {
        let Some(first) = rows.first() else {
            return;
        };
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=5 {
            match self
                .store
                .finish_deliveries(ids.clone(), first.locked_until, outcome.clone())
                .await
            {
                Ok(true) => return,
                Ok(false) => {
                    tracing::warn!(id = %first.id, "the delivery's lease ran out before its outcome was recorded; another worker has it");
                    return;
                }
                Err(e) if attempt < 5 => {
                    tracing::warn!(id = %first.id, error = %e, "cannot record the delivery outcome; trying again");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(e) => {
                    tracing::error!(id = %first.id, error = %e, "cannot record the delivery outcome; it will be made again");
                }
            }
        }
    }

    /// Runs a processor's work for one delivery (or one digest) within the delivery timeout; a
    /// panic fails it, not the worker (and with it every delivery).
    async fn guarded(
        &self,
        work: impl Future<Output = Result<(), ProcessorError>>,
    ) -> Result<(), ProcessorError> {
        let work = AssertUnwindSafe(work).catch_unwind();
        match tokio::time::timeout(self.config.timeout, work).await {
            Err(_) => Err(ProcessorError::Transient(format!(
                "no answer within {:?}",
                self.config.timeout
            ))),
            Ok(Err(_panic)) => Err(ProcessorError::Permanent("the processor panicked".into())),
            Ok(Ok(result)) => result,
        }
    }

    async fn attempt(&self, row: &DeliveryRow) -> Result<(), ProcessorError> {
        let processor = self.processors.get(&row.channel).ok_or_else(|| {
            ProcessorError::Permanent(format!("no processor named {:?} is installed", row.channel))
        })?;
        let notification: Notification = serde_json::from_value(row.notification.clone())
            .map_err(|e| ProcessorError::Permanent(format!("unreadable notification: {e}")))?;
        let options: NotificationSendOptions = serde_json::from_value(row.options.clone())
            .map_err(|e| ProcessorError::Permanent(format!("unreadable send options: {e}")))?;
        self.guarded(processor.post_process(&notification, &options))
            .await
    }

    /// How long claimed rows stay with this worker: past the attempts' timeout (after which
    /// the outcome is recorded at once), with room for a slow database.
    fn lease(&self) -> Duration {
        self.config.timeout * 2 + Duration::from_secs(1)
    }

    /// `retry_delay` doubled per earlier failure, capped, with ±20 % jitter so that a burst of
    /// failures does not come back all at once.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        let base = self
            .config
            .retry_delay
            .saturating_mul(1 << exponent)
            .min(self.config.max_retry_delay);
        base.mul_f64(rand::rng().random_range(0.8..1.2))
    }
}
