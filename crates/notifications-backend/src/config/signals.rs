//! `notifications.signals`: the live-update connections (WebSocket and event stream).

use std::time::Duration;

use serde::Deserialize;

use super::coerce::{Positive, default_from_fields, int, secs, size, via};
use super::duration::AtLeast;

// Zero intervals would spin, hence the minimums.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a map")]
pub struct SignalsConfig {
    /// `pingInterval`: WebSocket connections are pinged this often, and dropped when they did
    /// not answer the previous ping (upstream: 30 s).
    #[serde(default = "secs::<30>", deserialize_with = "via::<AtLeast<10>, _>")]
    pub ping_interval: Duration,
    /// `heartbeatInterval`: an event stream gets a comment line this often, so that proxies and
    /// clients see it alive.
    #[serde(default = "secs::<15>", deserialize_with = "via::<AtLeast<10>, _>")]
    pub heartbeat_interval: Duration,
    /// `queueSize`: events a connection may have waiting; a client that falls further behind is
    /// disconnected (an event-stream client then resumes where it was).
    #[serde(
        default = "size::<256>",
        deserialize_with = "via::<Positive<usize>, _>"
    )]
    pub queue_size: usize,
    /// `replayWindow`: how long events are kept for event-stream clients that reconnect.
    #[serde(default = "secs::<300>", deserialize_with = "via::<AtLeast<10>, _>")]
    pub replay_window: Duration,
    /// `maxConnectionsPerIp`: open connections (both transports) one client address may hold,
    /// an IPv6 address counting by its /64; more are refused with 429.
    #[serde(
        default = "size::<1024>",
        deserialize_with = "via::<Positive<usize>, _>"
    )]
    pub max_connections_per_ip: usize,
    /// `maxConnectionsPerUser`: open connections one signed-in user may hold (anonymous and
    /// service connections count by address only); more are refused with 429.
    #[serde(default = "size::<32>", deserialize_with = "via::<Positive<usize>, _>")]
    pub max_connections_per_user: usize,
    /// `maxFramesPerSecond`: text frames (subscribe, unsubscribe) a WebSocket client may send
    /// per second, in bursts of twice that; a client sending more is disconnected (1008).
    #[serde(default = "int::<10>", deserialize_with = "via::<Positive, _>")]
    pub max_frames_per_second: u32,
}

default_from_fields!(SignalsConfig);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_values() {
        let read = |yaml: &str| Config::from_yaml_str(yaml).map(|c| c.notifications.signals);
        assert_eq!(read("").unwrap(), SignalsConfig::default());
        assert_eq!(
            read("notifications: {signals: {pingInterval: 2s, heartbeatInterval: 100ms, queueSize: 8, replayWindow: 1m, \
                  maxConnectionsPerIp: 3, maxConnectionsPerUser: '2', maxFramesPerSecond: 5}}")
                .unwrap(),
            SignalsConfig {
                ping_interval: Duration::from_secs(2),
                heartbeat_interval: Duration::from_millis(100),
                queue_size: 8,
                replay_window: Duration::from_secs(60),
                max_connections_per_ip: 3,
                max_connections_per_user: 2,
                max_frames_per_second: 5,
            }
        );
        assert!(read("notifications: {signals: {queueSize: 0}}").is_err());
        assert!(read("notifications: {signals: {maxConnectionsPerIp: 0}}").is_err());
        assert!(read("notifications: {signals: {maxFramesPerSecond: -1}}").is_err());
    }
}
