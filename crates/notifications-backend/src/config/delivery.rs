//! `notifications.delivery`: how the queue of deliveries to processors' channels is worked.

use std::time::Duration;

use serde::Deserialize;

use super::coerce::{Bool, Positive};
use super::duration::FixedDuration;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawDelivery")]
pub struct DeliveryConfig {
    /// `maxAttempts`: after this many failed attempts a delivery is kept as failed.
    pub max_attempts: u32,
    /// `retryDelay`: the wait after the first failure; it doubles with each further one...
    pub retry_delay: Duration,
    /// `maxRetryDelay`: ...up to this.
    pub max_retry_delay: Duration,
    /// `timeout`: one attempt that takes longer has failed (and is retried).
    pub timeout: Duration,
    /// `concurrency`: deliveries in progress at once, per instance.
    pub concurrency: u32,
    /// `pollInterval`: how often the queue is checked without being told of new deliveries
    /// (new ones start at once; on SQLite, retries wait for this check).
    pub poll_interval: Duration,
    /// `worker`: false makes this instance queue deliveries but leave them to other instances
    /// (API-only instances of a deployment).
    pub worker: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            retry_delay: Duration::from_secs(2),
            max_retry_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            concurrency: 8,
            poll_interval: Duration::from_secs(2),
            worker: true,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
struct RawDelivery {
    max_attempts: Option<Positive>,
    retry_delay: Option<FixedDuration>,
    max_retry_delay: Option<FixedDuration>,
    timeout: Option<FixedDuration>,
    concurrency: Option<Positive>,
    poll_interval: Option<FixedDuration>,
    worker: Option<Bool>,
}

impl From<RawDelivery> for DeliveryConfig {
    fn from(raw: RawDelivery) -> Self {
        let d = Self::default();
        // Zero durations would spin or fail every attempt at once.
        let at_least = |v: Option<FixedDuration>, default: Duration, min: Duration| {
            v.map_or(default, |v| v.0).max(min)
        };
        let ms = Duration::from_millis;
        Self {
            max_attempts: raw.max_attempts.map_or(d.max_attempts, |n| n.0),
            retry_delay: at_least(raw.retry_delay, d.retry_delay, ms(1)),
            max_retry_delay: at_least(raw.max_retry_delay, d.max_retry_delay, ms(1)),
            timeout: at_least(raw.timeout, d.timeout, ms(1)),
            concurrency: raw.concurrency.map_or(d.concurrency, |n| n.0),
            poll_interval: at_least(raw.poll_interval, d.poll_interval, ms(10)),
            worker: raw.worker.map_or(d.worker, |b| b.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_values() {
        let read = |yaml: &str| Config::from_yaml_str(yaml).map(|c| c.notifications.delivery);
        assert_eq!(read("").unwrap(), DeliveryConfig::default());
        assert_eq!(
            read("notifications: {delivery: {maxAttempts: 3, retryDelay: 50ms, maxRetryDelay: 1s, timeout: 5s, concurrency: 2, pollInterval: 100ms, worker: false}}")
                .unwrap(),
            DeliveryConfig {
                max_attempts: 3,
                retry_delay: Duration::from_millis(50),
                max_retry_delay: Duration::from_secs(1),
                timeout: Duration::from_secs(5),
                concurrency: 2,
                poll_interval: Duration::from_millis(100),
                worker: false,
            }
        );
        assert!(read("notifications: {delivery: {maxAttempts: 0}}").is_err());
    }
}
