//! Counters in Prometheus' text format, served at `GET /metrics` when
//! `notifications.metrics.enabled` is set.
//!
//! The recorder is the process's global one (the `metrics` crate's macros record into it), so
//! several backends in one process share their counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Deliveries by channel and outcome (`delivered`, `retry`, `failed`).
pub const DELIVERIES: &str = "notifications_deliveries_total";
/// Notifications stored, by kind (`user`, `broadcast`).
pub const CREATED: &str = "notifications_created_total";

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            // An embedding program installed its own recorder: the counters go there.
            tracing::info!("a metrics recorder is already installed; /metrics shows nothing");
        }
        metrics::describe_counter!(
            DELIVERIES,
            "Delivery attempts to processors' channels, by outcome"
        );
        metrics::describe_counter!(CREATED, "Notifications stored, by kind");
        handle
    })
}
