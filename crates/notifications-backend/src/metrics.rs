//! The Prometheus recorder behind `GET /metrics` (when `notifications.metrics.enabled` is set),
//! and the names of the metrics the backend records. `docs/deployment.md` lists each of them;
//! a test checks that list against what a running backend exposes.
//!
//! The recorder is the process's global one (the `metrics` crate's macros record into it), so
//! several backends in one process share their metrics.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Deliveries by channel and outcome (`delivered`, `retry`, `failed`).
pub const DELIVERIES: &str = "notifications_deliveries_total";
/// Notifications stored, by kind (`user`, `broadcast`).
pub const CREATED: &str = "notifications_created_total";
/// HTTP requests' time to the response head, by method, matched route and status.
pub const HTTP_DURATION: &str = "notifications_http_request_duration_seconds";
/// Deliveries not yet finished or failed for good, by channel and state.
pub const QUEUE: &str = "notifications_delivery_queue";
/// The age of the oldest unfinished delivery, by channel.
pub const QUEUE_OLDEST: &str = "notifications_delivery_queue_oldest_age_seconds";
/// The pool's most connections.
pub const POOL_MAX: &str = "notifications_db_pool_max_connections";
/// The pool's open connections, by state (`idle`, `in_use`).
pub const POOL_CONNECTIONS: &str = "notifications_db_pool_connections";
/// Callers waiting for a pooled connection.
pub const POOL_WAITING: &str = "notifications_db_pool_waiting";
/// Callers that waited the pool's whole timeout for a connection and got none.
pub const POOL_TIMEOUTS: &str = "notifications_db_pool_timeouts_total";
/// Writes that shared one commit of SQLite's writer.
pub const WRITE_GROUP: &str = "notifications_db_write_group_size";
/// Sends that shared one transaction of PostgreSQL's send batcher.
pub const SEND_BATCH: &str = "notifications_db_send_batch_size";
/// Failed fetches of published signing keys (JWKS) from sources that matter.
pub const JWKS_FAILURES: &str = "notifications_jwks_fetch_failures_total";
/// Failed calls to the remote catalog.
pub const CATALOG_FAILURES: &str = "notifications_catalog_fetch_failures_total";
/// Open signal connections, by transport.
pub const SIGNAL_CONNECTIONS: &str = "notifications_signal_connections";
/// Signal consumers dropped for falling behind, by transport.
pub const SIGNAL_DROPPED: &str = "notifications_signal_consumers_dropped_total";
/// Signal connections refused by a cap, by transport.
pub const SIGNAL_REFUSED: &str = "notifications_signal_connections_refused_total";

/// Request latencies, from a millisecond to ten seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Group and batch sizes, in powers of two up to the writer's largest group (256).
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Histogram samples wait in the recorder until a scrape or an upkeep folds them into buckets:
/// without scrapes (metrics off, or no Prometheus), upkeep keeps that memory bounded.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder()
            .unwrap_or_else(|e| {
                tracing::warn!("histograms are summaries: {e}");
                PrometheusBuilder::new()
            })
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            // An embedding program installed its own recorder: the metrics go there.
            tracing::info!("a metrics recorder is already installed; /metrics shows nothing");
        } else {
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("cannot start the metrics upkeep thread: {e}");
            }
        }
        describe();
        handle
    })
}

fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (HTTP_DURATION, DURATION_BUCKETS),
        (WRITE_GROUP, SIZE_BUCKETS),
        (SEND_BATCH, SIZE_BUCKETS),
    ] {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)?;
    }
    Ok(builder)
}

/// Descriptions, and a zero for every metric that has no per-request label: they are exposed
/// (as 0) before anything happened, so that alerts on them see a series from the start.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        DELIVERIES,
        "Delivery attempts to processors' channels, by outcome"
    );
    describe_counter!(CREATED, "Notifications stored, by kind");
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP requests' time to the response head, by method, route and status"
    );
    describe_gauge!(
        QUEUE,
        "Deliveries by channel and state (pending, in_flight, failed)"
    );
    describe_gauge!(
        QUEUE_OLDEST,
        metrics::Unit::Seconds,
        "Age of the oldest pending or in-flight delivery, by channel"
    );
    describe_gauge!(POOL_MAX, "The database pool's most connections");
    describe_gauge!(POOL_CONNECTIONS, "Open database connections, by state");
    describe_gauge!(POOL_WAITING, "Callers waiting for a database connection");
    describe_counter!(
        POOL_TIMEOUTS,
        "Callers that got no database connection within the pool's timeout"
    );
    describe_histogram!(WRITE_GROUP, "Writes that shared one SQLite commit");
    describe_histogram!(
        SEND_BATCH,
        "Sends written in one PostgreSQL transaction by the send batcher"
    );
    describe_counter!(JWKS_FAILURES, "Failed fetches of published signing keys");
    describe_counter!(CATALOG_FAILURES, "Failed calls to the remote catalog");
    describe_gauge!(SIGNAL_CONNECTIONS, "Open signal connections, by transport");
    describe_counter!(
        SIGNAL_DROPPED,
        "Signal consumers dropped for falling behind, by transport"
    );
    describe_counter!(
        SIGNAL_REFUSED,
        "Signal connections refused by a cap, by transport"
    );
    metrics::counter!(POOL_TIMEOUTS).absolute(0);
    metrics::counter!(JWKS_FAILURES).absolute(0);
    metrics::counter!(CATALOG_FAILURES).absolute(0);
    for transport in ["websocket", "sse"] {
        metrics::gauge!(SIGNAL_CONNECTIONS, "transport" => transport).increment(0.0);
        metrics::counter!(SIGNAL_DROPPED, "transport" => transport).absolute(0);
        metrics::counter!(SIGNAL_REFUSED, "transport" => transport).absolute(0);
    }
}
