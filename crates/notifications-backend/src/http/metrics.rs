//! `GET /metrics`: the metrics in Prometheus' text format (no authentication: enable it only
//! where the listener is not public, or restrict the path at the proxy).
//!
//! Most metrics are recorded where things happen; the pool's figures and the delivery queue are
//! read at scrape time. The queue takes a grouped query, run at most once per
//! [`QUEUE_REFRESH`] whatever the scrape rate (scrapes in between see the last figures).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::AppState;
use crate::db::Db;
use crate::metrics::{POOL_CONNECTIONS, POOL_MAX, POOL_WAITING, QUEUE, QUEUE_OLDEST};
use crate::store::{QueueCount, Store};

/// The least time between two queries of the delivery queue.
const QUEUE_REFRESH: Duration = Duration::from_secs(15);

const STATES: [&str; 4] = ["pending", "held", "in_flight", "failed"];

/// What a scrape reads beside the recorder.
pub struct Scrape {
    store: Store,
    /// The installed processors' channels: their queue is shown (as zeros) before it has rows.
    channels: Vec<String>,
    queue: Mutex<QueueSeen>,
}

#[derive(Default)]
struct QueueSeen {
    at: Option<Instant>,
    /// Channels shown last time: a channel whose rows are gone is set to zero, not left stale.
    channels: BTreeSet<String>,
}

impl Scrape {
    pub fn new(store: Store, channels: Vec<String>) -> Self {
        Self {
            store,
            channels,
            queue: Mutex::default(),
        }
    }

    async fn refresh(&self, db: &Db) {
        let pool = db.pool_stats();
        metrics::gauge!(POOL_MAX).set(pool.max);
        metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(pool.idle);
        metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use").set(pool.in_use);
        metrics::gauge!(POOL_WAITING).set(pool.waiting as f64);

        // Concurrent scrapes wait for the one query rather than run their own.
        let mut seen = self.queue.lock().await;
        if seen.at.is_some_and(|at| at.elapsed() < QUEUE_REFRESH) {
            return;
        }
        seen.at = Some(Instant::now());
        match self.store.delivery_queue().await {
            Ok(rows) => seen.channels = self.show_queue(&rows, &seen.channels),
            Err(e) => tracing::warn!("cannot read the delivery queue for /metrics: {e}"),
        }
    }

    /// Sets every channel's gauges from `rows` (zero where a state has none); returns the
    /// channels shown.
    fn show_queue(&self, rows: &[QueueCount], before: &BTreeSet<String>) -> BTreeSet<String> {
        let now = OffsetDateTime::now_utc();
        let channels: BTreeSet<String> = rows
            .iter()
            .map(|r| r.channel.clone())
            .chain(self.channels.iter().cloned())
            .collect();
        for channel in before.union(&channels) {
            let of_channel = || rows.iter().filter(move |r| &r.channel == channel);
            for state in STATES {
                let count: i64 = of_channel()
                    .filter(|r| r.state == state)
                    .map(|r| r.count)
                    .sum();
                metrics::gauge!(QUEUE, "channel" => channel.clone(), "state" => state)
                    .set(count as f64);
            }
            // Held deliveries wait on purpose (quiet hours, digests): not a backlog.
            let oldest = of_channel()
                .filter(|r| r.state == "pending" || r.state == "in_flight")
                .filter_map(|r| r.oldest)
                .min();
            let age = oldest.map_or(0.0, |t| (now - t).as_seconds_f64().max(0.0));
            metrics::gauge!(QUEUE_OLDEST, "channel" => channel.clone()).set(age);
        }
        channels
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.refresh(&state.db).await;
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(crate::metrics::handle().render())
}
