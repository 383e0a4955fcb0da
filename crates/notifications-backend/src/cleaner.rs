//! The retention cleaner: every midnight (UTC), delete notifications without activity for the
//! configured retention period (`notifications.retention`, one year by default). And, whatever
//! the retention, every hour: the idempotency keys of sends older than a day; and on PostgreSQL,
//! every second, the inbox counter changes.

use time::{Duration, OffsetDateTime, Time};
use tokio::task::JoinHandle;

use crate::config::ConfigDuration;
use crate::store::Store;

/// Starts the daily task, or logs that retention is disabled.
pub fn spawn(store: Store, retention: Option<ConfigDuration>) -> Option<JoinHandle<()>> {
    let Some(retention) = retention else {
        tracing::info!("Notification retention is disabled, skipping notification cleaner task");
        return None;
    };
    Some(tokio::spawn(async move {
        loop {
            let now = OffsetDateTime::now_utc();
            let wait = (next_midnight(now) - now).unsigned_abs();
            tokio::time::sleep(wait).await;
            // Errors are logged inside; tomorrow is another run.
            let _ = run_once(&store, &retention).await;
        }
    }))
}

/// One cleaning pass; returns how many notifications (user and broadcast) were deleted.
pub async fn run_once(
    store: &Store,
    retention: &ConfigDuration,
) -> Result<u64, crate::db::DbError> {
    tracing::info!(
        task = "notification-cleaner",
        "Starting notification cleaner task"
    );
    let cutoff = retention.cutoff(OffsetDateTime::now_utc());
    match store.delete_inactive_since(cutoff).await {
        Ok(deleted) => {
            tracing::info!(
                task = "notification-cleaner",
                "Notification cleaner task completed successfully, deleted {deleted} notifications"
            );
            Ok(deleted)
        }
        Err(e) => {
            tracing::error!(
                task = "notification-cleaner",
                "Notification cleaner task failed: {e}"
            );
            Err(e)
        }
    }
}

/// How often expired idempotency keys are deleted: a key is only good for a day, and a table of
/// old answers (one per send of every client) should not wait for a daily run to shrink.
const KEY_SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Starts the hourly deletion of expired idempotency keys (a key is ignored once expired, and
/// freed when it is used again; this keeps the table small). Failures are logged; the next hour
/// tries again.
pub fn spawn_key_sweeper(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(KEY_SWEEP_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match store
                .delete_expired_idempotency_keys(OffsetDateTime::now_utc())
                .await
            {
                Ok(deleted) => tracing::debug!("deleted {deleted} expired idempotency keys"),
                Err(e) => tracing::warn!("deleting expired idempotency keys failed: {e}"),
            }
        }
    })
}

/// PostgreSQL: folds the inbox counter changes every `FOLD_INTERVAL` (see `store::inbox_count`).
/// A failed fold leaves the changes for the next one; counts stay right meanwhile.
pub fn spawn_count_folder(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(crate::store::FOLD_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = store.fold_inbox_counts().await {
                tracing::warn!("folding inbox counter changes failed: {e}");
            }
        }
    })
}

fn next_midnight(now: OffsetDateTime) -> OffsetDateTime {
    (now + Duration::days(1)).replace_time(Time::MIDNIGHT)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn runs_at_the_next_utc_midnight() {
        assert_eq!(
            next_midnight(datetime!(2025-03-31 23:59:59 UTC)),
            datetime!(2025-04-01 00:00 UTC)
        );
        assert_eq!(
            next_midnight(datetime!(2025-04-01 00:00 UTC)),
            datetime!(2025-04-02 00:00 UTC)
        );
    }
}
