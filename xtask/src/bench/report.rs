//! The numbers a scenario produces and how they are reported: percentiles,
//! the `results.json` records, the table, and the server's peak memory.

use std::time::Duration;

use serde::Serialize;

/// What one measurement against one database collected.
#[derive(Debug, Default)]
pub struct Samples {
    /// Latency of each request that got the expected answer, in order.
    pub latencies: Vec<Duration>,
    /// Requests that failed or got any other answer.
    pub errors: u64,
    /// The measured requests, successful or not.
    pub requests: u64,
    /// Wall time of the measured part (after warm-up).
    pub elapsed: Duration,
    /// The first error seen, kept for the summary.
    pub first_error: Option<String>,
    /// Scenarios that hold connections open: how many stayed open until the
    /// end.
    pub connections: Option<u64>,
    /// The server's CPU time (user + system) over the measured part, where
    /// the scenario measures it.
    pub server_cpu: Option<Duration>,
    /// Page scenarios: what one load of the page transferred.
    pub page: Option<PageBytes>,
}

/// What one load of a page transferred (`web-inbox-10k`), from the browser's resource timing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageBytes {
    /// The page's own files (the document, its script, stylesheet and icon): their responses'
    /// bytes on the wire, headers included (`transferSize`); 0 for a file from the cache.
    pub page: u64,
    /// The bodies of those files, each gzipped (as a compressing proxy would send them), where
    /// measured.
    pub page_gzip: Option<u64>,
    /// The API's answers the page asked for to show its first list (data, not the page).
    pub data: u64,
}

impl Samples {
    pub fn success(&mut self, latency: Duration) {
        self.requests += 1;
        self.latencies.push(latency);
    }

    /// Counts an error; the first one is printed in full as it happens, as
    /// it is usually the one that explains the others.
    pub fn error(&mut self, message: String) {
        self.requests += 1;
        self.errors += 1;
        if self.first_error.is_none() {
            eprintln!("xtask: bench: first error: {message}");
            self.first_error = Some(message);
        }
    }
}

/// One named result of a scenario. Most scenarios measure one thing and
/// name it after themselves; those that measure several shapes of a request
/// on one server name each `<scenario>/<shape>`.
#[derive(Debug)]
pub struct Measured {
    pub name: String,
    pub samples: Samples,
}

impl Measured {
    pub fn new(name: impl Into<String>, samples: Samples) -> Measured {
        Measured {
            name: name.into(),
            samples,
        }
    }
}

/// One line of `results.json`: one result of a scenario on one database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub name: String,
    pub db: String,
    pub requests_per_s: f64,
    /// `null` when no request succeeded.
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The slowest successful sample.
    pub max_ms: Option<f64>,
    pub errors: u64,
    /// The server's VmHWM; `null` where /proc cannot tell.
    pub peak_rss_mb: Option<f64>,
    /// The server's VmRSS once ready, before the scenario started.
    pub idle_rss_mb: Option<f64>,
    /// Connection scenarios only: the connections open at the peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Connection scenarios only: (peak RSS − idle RSS) / connections, in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_per_connection_kb: Option<f64>,
    /// Scenarios that measure the server's CPU: its CPU time over the
    /// measured part / successful samples (deliveries, for signals), in µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_op: Option<f64>,
    /// Page scenarios only: the nearest-rank 95th percentile, and what one load transferred
    /// (`PageBytes`), in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_gzip_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_bytes: Option<u64>,
}

impl Record {
    pub fn new(
        name: &str,
        db: &str,
        samples: &Samples,
        idle_rss_kb: Option<u64>,
        peak_rss_kb: Option<u64>,
    ) -> Record {
        let mut sorted = samples.latencies.clone();
        sorted.sort_unstable();
        let ms = |d: Duration| round2(d.as_secs_f64() * 1000.0);
        let seconds = samples.elapsed.as_secs_f64();
        Record {
            name: name.to_owned(),
            db: db.to_owned(),
            requests_per_s: if seconds > 0.0 {
                round2(samples.requests as f64 / seconds)
            } else {
                0.0
            },
            p50_ms: percentile(&sorted, 50.0).map(ms),
            p90_ms: percentile(&sorted, 90.0).map(ms),
            p99_ms: percentile(&sorted, 99.0).map(ms),
            max_ms: sorted.last().copied().map(ms),
            errors: samples.errors,
            peak_rss_mb: peak_rss_kb.map(mib),
            idle_rss_mb: idle_rss_kb.map(mib),
            connections: samples.connections,
            rss_per_connection_kb: samples
                .connections
                .and_then(|open| per_connection_kb(open, idle_rss_kb?, peak_rss_kb?)),
            cpu_us_per_op: samples
                .server_cpu
                .and_then(|cpu| per_op_us(cpu, samples.latencies.len())),
            p95_ms: samples.page.and_then(|_| percentile(&sorted, 95.0)).map(ms),
            page_bytes: samples.page.map(|p| p.page),
            page_gzip_bytes: samples.page.and_then(|p| p.page_gzip),
            data_bytes: samples.page.map(|p| p.data),
        }
    }
}

/// `cpu` / `ops`, in µs; `None` without any.
fn per_op_us(cpu: Duration, ops: usize) -> Option<f64> {
    (ops > 0).then(|| round2(cpu.as_secs_f64() * 1e6 / ops as f64))
}

/// (peak − idle) / open, in KiB; `None` without connections.
fn per_connection_kb(open: u64, idle_rss_kb: u64, peak_rss_kb: u64) -> Option<f64> {
    if open == 0 {
        return None;
    }
    Some(round2(
        peak_rss_kb.saturating_sub(idle_rss_kb) as f64 / open as f64,
    ))
}

fn mib(kb: u64) -> f64 {
    round2(kb as f64 / 1024.0)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest value
/// with at least `p` percent of the values at or below it. `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // rank = ceil(p/100 * n), 1-based, kept within 1..=n.
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// `VmHWM` (peak resident set size) in kB, from the text of
/// `/proc/<pid>/status`: a line like `VmHWM:\t  123456 kB`.
pub fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    status_kb(status, "VmHWM:")
}

/// `VmRSS` (current resident set size) in kB, from `/proc/<pid>/status`.
pub fn parse_vm_rss_kb(status: &str) -> Option<u64> {
    status_kb(status, "VmRSS:")
}

fn status_kb(status: &str, field: &str) -> Option<u64> {
    let value = status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim();
    let number = value.strip_suffix("kB").unwrap_or(value).trim();
    number.parse().ok()
}

/// The records as `results.json` holds them.
pub fn to_json(records: &[Record]) -> String {
    // Serialising plain structs of numbers and strings cannot fail.
    let mut text = serde_json::to_string_pretty(records).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
}

/// A small aligned table of the records, for the terminal.
pub fn table(records: &[Record]) -> String {
    let headers = [
        "scenario",
        "db",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "idle RSS MB",
        "peak RSS MB",
        "KB/conn",
        "CPU µs/op",
        "load kB",
    ];
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let rows: Vec<[String; 13]> = records
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.db.clone(),
                format!("{:.2}", r.requests_per_s),
                opt(r.p50_ms),
                opt(r.p90_ms),
                opt(r.p99_ms),
                opt(r.max_ms),
                r.errors.to_string(),
                opt(r.idle_rss_mb),
                opt(r.peak_rss_mb),
                opt(r.rss_per_connection_kb),
                opt(r.cpu_us_per_op),
                // What a page scenario's load transferred, page and data, in kB (1,000 bytes).
                opt(r
                    .page_bytes
                    .zip(r.data_bytes)
                    .map(|(page, data)| (page + data) as f64 / 1000.0)),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            // Names left-aligned, numbers right-aligned.
            if i < 2 {
                out.push_str(&format!("{cell:<w$}"));
            } else {
                out.push_str(&format!("{cell:>w$}"));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers.map(str::to_owned));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&values, 50.0), Some(5));
        assert_eq!(percentile(&values, 99.0), Some(10));
        assert_eq!(percentile(&values, 100.0), Some(10));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile(&values, 10.0), Some(1));
        assert_eq!(percentile(&values, 11.0), Some(2));
        // The classic example: 15, 20, 35, 40, 50.
        let classic = [15, 20, 35, 40, 50];
        assert_eq!(percentile(&classic, 30.0), Some(20));
        assert_eq!(percentile(&classic, 40.0), Some(20));
        assert_eq!(percentile(&classic, 50.0), Some(35));
        assert_eq!(percentile(&classic, 100.0), Some(50));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn records_from_samples() {
        let mut samples = Samples::default();
        for ms in [300, 100, 200] {
            samples.success(Duration::from_millis(ms));
        }
        samples.error("HTTP 500".into());
        samples.elapsed = Duration::from_secs(2);
        let record = Record::new("fanout-10k", "sqlite", &samples, Some(10_240), Some(51_200));
        assert_eq!(
            record,
            Record {
                name: "fanout-10k".into(),
                db: "sqlite".into(),
                requests_per_s: 2.0,
                p50_ms: Some(200.0),
                p90_ms: Some(300.0),
                p99_ms: Some(300.0),
                max_ms: Some(300.0),
                errors: 1,
                peak_rss_mb: Some(50.0),
                idle_rss_mb: Some(10.0),
                connections: None,
                rss_per_connection_kb: None,
                cpu_us_per_op: None,
                p95_ms: None,
                page_bytes: None,
                page_gzip_bytes: None,
                data_bytes: None,
            }
        );
    }

    #[test]
    fn records_serialise_with_the_documented_fields() {
        let records = [
            Record {
                name: "fanout-10k".into(),
                db: "postgres".into(),
                requests_per_s: 3.25,
                p50_ms: Some(301.5),
                p90_ms: Some(310.0),
                p99_ms: Some(320.0),
                max_ms: Some(320.0),
                errors: 0,
                peak_rss_mb: Some(42.13),
                idle_rss_mb: Some(12.5),
                connections: None,
                rss_per_connection_kb: None,
                cpu_us_per_op: None,
                p95_ms: None,
                page_bytes: None,
                page_gzip_bytes: None,
                data_bytes: None,
            },
            Record {
                name: "fanout-10k".into(),
                db: "sqlite".into(),
                requests_per_s: 0.0,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                max_ms: None,
                errors: 2,
                peak_rss_mb: None,
                idle_rss_mb: None,
                connections: None,
                rss_per_connection_kb: None,
                cpu_us_per_op: None,
                p95_ms: None,
                page_bytes: None,
                page_gzip_bytes: None,
                data_bytes: None,
            },
            Record {
                name: "signals-fanout".into(),
                db: "sqlite".into(),
                requests_per_s: 9000.0,
                p50_ms: Some(20.0),
                p90_ms: Some(40.0),
                p99_ms: Some(60.0),
                max_ms: Some(70.0),
                errors: 0,
                peak_rss_mb: Some(120.0),
                idle_rss_mb: Some(20.0),
                connections: Some(10_000),
                rss_per_connection_kb: Some(10.24),
                cpu_us_per_op: Some(2.5),
                p95_ms: None,
                page_bytes: None,
                page_gzip_bytes: None,
                data_bytes: None,
            },
        ];
        let value: serde_json::Value = serde_json::from_str(&to_json(&records)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"name": "fanout-10k", "db": "postgres", "requests_per_s": 3.25, "p50_ms": 301.5,
                 "p90_ms": 310.0, "p99_ms": 320.0, "max_ms": 320.0, "errors": 0,
                 "peak_rss_mb": 42.13, "idle_rss_mb": 12.5},
                {"name": "fanout-10k", "db": "sqlite", "requests_per_s": 0.0, "p50_ms": null,
                 "p90_ms": null, "p99_ms": null, "max_ms": null, "errors": 2, "peak_rss_mb": null,
                 "idle_rss_mb": null},
                {"name": "signals-fanout", "db": "sqlite", "requests_per_s": 9000.0,
                 "p50_ms": 20.0, "p90_ms": 40.0, "p99_ms": 60.0, "max_ms": 70.0, "errors": 0,
                 "peak_rss_mb": 120.0, "connections": 10000, "idle_rss_mb": 20.0,
                 "rss_per_connection_kb": 10.24, "cpu_us_per_op": 2.5}
            ])
        );
    }

    #[test]
    fn vm_hwm_is_read_from_proc_status() {
        let status = "Name:\tnotifications-b\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_vm_hwm_kb(status), Some(51_200));
        assert_eq!(parse_vm_hwm_kb("VmHWM: 12 kB"), Some(12));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert_eq!(parse_vm_hwm_kb("VmHWM:\tlots kB\n"), None);
        assert_eq!(parse_vm_rss_kb(status), Some(40_000));
    }

    #[test]
    fn memory_per_connection() {
        let mut samples = Samples::default();
        samples.success(Duration::from_millis(5));
        samples.elapsed = Duration::from_secs(1);
        samples.connections = Some(1000);
        let record = Record::new(
            "signals-fanout",
            "sqlite",
            &samples,
            Some(20_480),
            Some(30_720),
        );
        assert_eq!(record.connections, Some(1000));
        assert_eq!(record.idle_rss_mb, Some(20.0));
        assert_eq!(record.rss_per_connection_kb, Some(10.24));
        assert_eq!(record.max_ms, Some(5.0));
        // No connections open, or no idle figure: nothing to divide.
        samples.connections = Some(0);
        let record = Record::new(
            "signals-fanout",
            "sqlite",
            &samples,
            Some(20_480),
            Some(30_720),
        );
        assert_eq!(record.rss_per_connection_kb, None);
        samples.connections = Some(10);
        let record = Record::new("signals-fanout", "sqlite", &samples, None, Some(30_720));
        assert_eq!(record.rss_per_connection_kb, None);
    }

    #[test]
    fn cpu_per_operation() {
        let mut samples = Samples::default();
        for _ in 0..4 {
            samples.success(Duration::from_millis(5));
        }
        samples.error("missed".into());
        samples.elapsed = Duration::from_secs(1);
        samples.server_cpu = Some(Duration::from_millis(10));
        let record = Record::new("signals-fanout", "sqlite", &samples, None, None);
        // Per successful sample: the missed one cost nothing to deliver.
        assert_eq!(record.cpu_us_per_op, Some(2500.0));
        samples.latencies.clear();
        let record = Record::new("signals-fanout", "sqlite", &samples, None, None);
        assert_eq!(record.cpu_us_per_op, None);
    }

    #[test]
    fn page_records_add_p95_and_what_a_load_received() {
        let mut samples = Samples::default();
        for ms in 1..=20 {
            samples.success(Duration::from_millis(ms * 10));
        }
        samples.elapsed = Duration::from_secs(4);
        let plain = Record::new("web-inbox-10k/repeat", "sqlite", &samples, None, None);
        assert_eq!(
            (plain.p95_ms, plain.page_bytes, plain.data_bytes),
            (None, None, None)
        );
        samples.page = Some(PageBytes {
            page: 29_000,
            page_gzip: Some(9_100),
            data: 6_600,
        });
        let record = Record::new("web-inbox-10k/first-load", "sqlite", &samples, None, None);
        assert_eq!(record.p50_ms, Some(100.0));
        assert_eq!(record.p95_ms, Some(190.0));
        assert_eq!(record.max_ms, Some(200.0));
        assert_eq!(record.page_bytes, Some(29_000));
        assert_eq!(record.page_gzip_bytes, Some(9_100));
        assert_eq!(record.data_bytes, Some(6_600));
        let value: serde_json::Value =
            serde_json::from_str(&to_json(std::slice::from_ref(&record))).unwrap();
        assert_eq!(value[0]["p95_ms"], 190.0);
        assert_eq!(value[0]["page_bytes"], 29_000);
        assert_eq!(value[0]["page_gzip_bytes"], 9_100);
        assert_eq!(value[0]["data_bytes"], 6_600);
        // The table's last column: page and data, in kB.
        let table = table(&[record]);
        assert!(table.lines().nth(1).unwrap().ends_with(" 35.6"), "{table}");
    }

    #[test]
    fn results_of_one_scenario_are_rows_of_their_own() {
        let mut samples = Samples::default();
        samples.success(Duration::from_millis(2));
        samples.elapsed = Duration::from_secs(1);
        let records: Vec<Record> = ["list-shapes-10k/unread", "list-shapes-10k/search"]
            .iter()
            .map(|name| Record::new(name, "postgres", &samples, Some(10_240), Some(20_480)))
            .collect();
        let lines: Vec<String> = table(&records).lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("list-shapes-10k/unread  postgres"));
        assert!(lines[2].starts_with("list-shapes-10k/search  postgres"));
        let value: serde_json::Value = serde_json::from_str(&to_json(&records)).unwrap();
        assert_eq!(value[1]["name"], "list-shapes-10k/search");
        assert_eq!(value[1]["peak_rss_mb"], 20.0);
    }

    #[test]
    fn the_table_has_one_row_per_record() {
        let record = Record {
            name: "fanout-10k".into(),
            db: "sqlite".into(),
            requests_per_s: 4.0,
            p50_ms: Some(250.0),
            p90_ms: None,
            p99_ms: None,
            max_ms: None,
            errors: 0,
            peak_rss_mb: Some(60.5),
            idle_rss_mb: Some(14.0),
            connections: None,
            rss_per_connection_kb: None,
            cpu_us_per_op: None,
            p95_ms: None,
            page_bytes: None,
            page_gzip_bytes: None,
            data_bytes: None,
        };
        let table = table(&[record]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("scenario"));
        assert!(lines[1].starts_with("fanout-10k  sqlite"));
        assert!(lines[1].contains("250.0") && lines[1].contains("60.5"));
        assert!(lines[1].contains("14.0"));
        assert!(
            lines[1].ends_with(" -"),
            "no memory per connection: {}",
            lines[1]
        );
    }
}
