//! `notifications.signals`: the live-update connections (WebSocket and event stream).

use std::time::Duration;

use serde::Deserialize;

use super::coerce::Positive;
use super::duration::FixedDuration;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSignals")]
pub struct SignalsConfig {
    /// `pingInterval`: WebSocket connections are pinged this often, and dropped when they did
    /// not answer the previous ping (upstream: 30 s).
    pub ping_interval: Duration,
    /// `heartbeatInterval`: an event stream gets a comment line this often, so that proxies and
    /// clients see it alive.
    pub heartbeat_interval: Duration,
    /// `queueSize`: events a connection may have waiting; a client that falls further behind is
    /// disconnected (an event-stream client then resumes where it was).
    pub queue_size: usize,
    /// `replayWindow`: how long events are kept for event-stream clients that reconnect.
    pub replay_window: Duration,
    /// `maxConnectionsPerIp`: open connections (both transports) one client address may hold,
    /// an IPv6 address counting by its /64; more are refused with 429.
    pub max_connections_per_ip: usize,
    /// `maxConnectionsPerUser`: open connections one signed-in user may hold (anonymous and
    /// service connections count by address only); more are refused with 429.
    pub max_connections_per_user: usize,
    /// `maxFramesPerSecond`: text frames (subscribe, unsubscribe) a WebSocket client may send
    /// per second, in bursts of twice that; a client sending more is disconnected (1008).
    pub max_frames_per_second: u32,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(15),
            queue_size: 256,
            replay_window: Duration::from_secs(300),
            max_connections_per_ip: 1024,
            max_connections_per_user: 32,
            max_frames_per_second: 10,
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "a map")]
struct RawSignals {
    ping_interval: Option<FixedDuration>,
    heartbeat_interval: Option<FixedDuration>,
    queue_size: Option<Positive>,
    replay_window: Option<FixedDuration>,
    max_connections_per_ip: Option<Positive>,
    max_connections_per_user: Option<Positive>,
    max_frames_per_second: Option<Positive>,
}

impl From<RawSignals> for SignalsConfig {
    fn from(raw: RawSignals) -> Self {
        let d = Self::default();
        // Zero intervals would spin.
        let at_least = |v: Option<FixedDuration>, default: Duration| {
            v.map_or(default, |v| v.0).max(Duration::from_millis(10))
        };
        Self {
            ping_interval: at_least(raw.ping_interval, d.ping_interval),
            heartbeat_interval: at_least(raw.heartbeat_interval, d.heartbeat_interval),
            queue_size: raw.queue_size.map_or(d.queue_size, |n| n.0 as usize),
            replay_window: at_least(raw.replay_window, d.replay_window),
            max_connections_per_ip: raw
                .max_connections_per_ip
                .map_or(d.max_connections_per_ip, |n| n.0 as usize),
            max_connections_per_user: raw
                .max_connections_per_user
                .map_or(d.max_connections_per_user, |n| n.0 as usize),
            max_frames_per_second: raw
                .max_frames_per_second
                .map_or(d.max_frames_per_second, |n| n.0),
        }
    }
}

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
