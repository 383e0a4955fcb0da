//! `notifications.delivery`: how the queue of deliveries to processors' channels is worked.

use std::time::Duration;

use serde::Deserialize;

use super::coerce::{Bool, Positive, default_from_fields, int, secs, via, yes};
use super::duration::AtLeast;

// Zero durations would spin or fail every attempt at once, hence the minimums.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct DeliveryConfig {
    /// `maxAttempts`: after this many failed attempts a delivery is kept as failed.
    #[serde(default = "int::<8>", deserialize_with = "via::<Positive, _>")]
    pub max_attempts: u32,
    /// `retryDelay`: the wait after the first failure; it doubles with each further one...
    #[serde(default = "secs::<2>", deserialize_with = "via::<AtLeast<1>, _>")]
    pub retry_delay: Duration,
    /// `maxRetryDelay`: ...up to this.
    #[serde(default = "secs::<3600>", deserialize_with = "via::<AtLeast<1>, _>")]
    pub max_retry_delay: Duration,
    /// `timeout`: one attempt that takes longer has failed (and is retried).
    #[serde(default = "secs::<30>", deserialize_with = "via::<AtLeast<1>, _>")]
    pub timeout: Duration,
    /// `concurrency`: deliveries in progress at once, per instance.
    #[serde(default = "int::<8>", deserialize_with = "via::<Positive, _>")]
    pub concurrency: u32,
    /// `pollInterval`: how often the queue is checked without being told of new deliveries
    /// (new ones start at once; on SQLite, retries wait for this check).
    #[serde(default = "secs::<2>", deserialize_with = "via::<AtLeast<10>, _>")]
    pub poll_interval: Duration,
    /// `worker`: false makes this instance queue deliveries but leave them to other instances
    /// (API-only instances of a deployment).
    #[serde(default = "yes", deserialize_with = "via::<Bool, _>")]
    pub worker: bool,
}

default_from_fields!(DeliveryConfig);

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
