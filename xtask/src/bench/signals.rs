//! `signals-fanout`: many WebSocket subscribers on `/api/signals`, each its
//! own user, and broadcasts published through the HTTP API; measures how
//! long each broadcast takes to reach each subscriber, what the open
//! connections cost the server in memory, and the server's CPU time per
//! delivered frame over the publish phase.
//!
//! The subscribers run in xtask (a process of its own, on the same machine
//! as the server), on xtask's single-threaded runtime: a delivery's arrival
//! time is when its subscriber's task reads the frame, so it includes the
//! time the load generator takes to get to it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::report::{Measured, Samples, parse_vm_rss_kb};
use super::scenario::{Ctx, Scenario};
use super::tokens::{self, user_token};
use crate::interrupt;

/// WebSocket handshakes in flight at once: enough to open 10,000 in a few
/// seconds without overflowing the server's accept queue.
const CONNECT_CONCURRENCY: usize = 128;

/// How long one subscriber may take to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long after the last broadcast deliveries may still arrive; a later
/// one counts as missed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors xtask and the server need besides the connections.
const SPARE_FDS: u64 = 512;

const CREATE_PATH: &str = "/api/notifications/notifications";

pub struct SignalsFanOut {
    subscribers: usize,
    subscribers_quick: usize,
    broadcasts: usize,
    broadcasts_quick: usize,
    /// Between the starts of two broadcasts.
    spacing: Duration,
}

impl Default for SignalsFanOut {
    fn default() -> Self {
        Self {
            subscribers: 10_000,
            subscribers_quick: 500,
            broadcasts: 20,
            broadcasts_quick: 5,
            spacing: Duration::from_millis(100),
        }
    }
}

impl Scenario for SignalsFanOut {
    fn name(&self) -> &'static str {
        "signals-fanout"
    }

    fn about(&self) -> &'static str {
        "10,000 WebSocket subscribers on /api/signals (one user each; --quick: 500), then 20 \
         broadcasts 100 ms apart (--quick: 5): publish-to-delivery latency, memory per \
         connection and server CPU per delivery"
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        let mut config = tokens::config();
        // Every subscriber connects from this machine's address.
        config["notifications"]["signals"] =
            json!({"maxConnectionsPerIp": self.subscribers.max(self.subscribers_quick)});
        Ok(config)
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let (subscribers, broadcasts) = if ctx.quick {
            (self.subscribers_quick, self.broadcasts_quick)
        } else {
            (self.subscribers, self.broadcasts)
        };
        let needed = subscribers as u64 + SPARE_FDS;
        ensure_open_files(std::process::id(), needed, "xtask")?;
        ensure_open_files(ctx.server_pid, needed, "the server")?;
        let tokens = (0..subscribers)
            .map(|i| user_token(&format!("user:default/subscriber-{i:05}")))
            .collect::<Result<Vec<_>, _>>()?;
        let samples = ctx.rt.block_on(self.drive(ctx, tokens, broadcasts))?;
        Ok(vec![Measured::new(self.name(), samples)])
    }
}

/// What one subscriber saw: the text frames, with when each was read.
#[derive(Default)]
struct Received {
    frames: Vec<(String, Instant)>,
    /// Why the connection ended before it was told to stop, if it did.
    ended_early: Option<String>,
}

impl SignalsFanOut {
    async fn drive(
        &self,
        ctx: &Ctx<'_>,
        tokens: Vec<String>,
        broadcasts: usize,
    ) -> Result<Samples, String> {
        let subscribers = tokens.len();
        let url = format!("{}/api/signals", ctx.base_url.replacen("http", "ws", 1));
        let idle_rss_kb = vm_rss_kb(ctx.server_pid);

        // Connect and subscribe everyone.
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let frames = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
        let started = Instant::now();
        let handles: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                tokio::spawn(subscriber(
                    url.clone(),
                    token,
                    gate.clone(),
                    ready_tx.clone(),
                    stop_rx.clone(),
                    frames.clone(),
                ))
            })
            .collect();
        drop(ready_tx);
        let mut failed = Vec::new();
        let mut connected = 0u64;
        while let Some(result) = ready_rx.recv().await {
            match result {
                Ok(()) => connected += 1,
                Err(e) => failed.push(e),
            }
            if (connected as usize + failed.len()).is_multiple_of(1000) {
                interrupt::check()?;
            }
        }
        eprintln!(
            "xtask: bench: {connected} of {subscribers} subscribers connected and subscribed in \
             {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let connected_rss_kb = vm_rss_kb(ctx.server_pid);
        if let (Some(idle), Some(open)) = (idle_rss_kb, connected_rss_kb) {
            eprintln!(
                "xtask: bench: server RSS {:.1} MiB idle, {:.1} MiB with the connections open",
                idle as f64 / 1024.0,
                open as f64 / 1024.0
            );
        }

        let mut samples = Samples::default();
        for e in failed {
            samples.error(format!("a subscriber failed to connect and subscribe: {e}"));
        }

        // One broadcast not measured: the first insert, the first fan-out.
        publish(ctx, "warm-up")
            .await
            .map_err(|e| format!("the warm-up broadcast failed: {e}"))?;
        wait_for(&frames, connected, DELIVERY_TIMEOUT).await;
        interrupt::check()?;

        // The measured broadcasts, `spacing` apart, each timed from just
        // before its POST is sent. They go from a thread of their own (its
        // own runtime and HTTP client), so the schedule holds however busy
        // the subscribers keep this runtime: a server that cannot keep up
        // shows as growing latencies, not as fewer broadcasts.
        let cpu_before = (cpu_ticks(ctx.server_pid), cpu_ticks(std::process::id()));
        let first = tokio::time::Instant::now();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (base_url, addr, token, spacing, binary) = (
            ctx.base_url.clone(),
            ctx.addr,
            ctx.sender_token.clone(),
            self.spacing,
            ctx.binary.to_path_buf(),
        );
        std::thread::spawn(move || {
            let _ = done_tx.send(publish_on_schedule(
                &base_url, addr, &token, &binary, broadcasts, spacing,
            ));
        });
        let published = done_rx
            .await
            .map_err(|_| "the publishing thread died".to_owned())??;
        let mut sent: HashMap<String, Instant> = HashMap::new();
        for (i, result) in published.into_iter().enumerate() {
            match result {
                Ok((id, before)) => {
                    sent.insert(id, before);
                }
                Err(e) => samples.error(format!("broadcast {i} failed: {e}")),
            }
        }
        let expected = connected * (1 + sent.len() as u64);
        wait_for(&frames, expected, DELIVERY_TIMEOUT).await;
        let wall = first.elapsed();
        let cpu_after = (cpu_ticks(ctx.server_pid), cpu_ticks(std::process::id()));
        let _ = stop_tx.send(true);
        // Who was busy: a side near 1 CPU-second per second was the limit.
        let server_cpu = match (cpu_before.0, cpu_after.0) {
            (Some(s0), Some(s1)) => Some(ticks(s1 - s0)),
            _ => None,
        };
        if let (Some(server), (Some(x0), Some(x1))) = (server_cpu, (cpu_before.1, cpu_after.1)) {
            eprintln!(
                "xtask: bench: broadcasts and deliveries took {:.2} s; CPU used: server {:.2} s, \
                 xtask {:.2} s",
                wall.as_secs_f64(),
                server.as_secs_f64(),
                ticks(x1 - x0).as_secs_f64(),
            );
        }

        let mut received = Vec::with_capacity(handles.len());
        for handle in handles {
            received.push(
                handle
                    .await
                    .map_err(|e| format!("a subscriber task failed: {e}"))?,
            );
        }

        tally(&mut samples, &received, &sent);
        samples.connections = Some(connected);
        // Per delivery (in the record): the server's whole CPU over the publish phase, POSTs
        // included, over the frames that arrived.
        samples.server_cpu = server_cpu;
        Ok(samples)
    }
}

/// Turns what the subscribers received into latencies and errors.
/// Subscribers that never connected were counted already (their `Received`
/// is `None`).
fn tally(samples: &mut Samples, received: &[Option<Received>], sent: &HashMap<String, Instant>) {
    let first_post = sent.values().min().copied();
    // The last delivery of each broadcast, for the log: a backlog shows as a
    // growing delay from one broadcast to the next.
    let mut last_of: HashMap<&str, Duration> = HashMap::new();
    let mut last_arrival = None;
    let mut delivered = 0u64;
    for (index, subscriber) in received.iter().enumerate() {
        let Some(subscriber) = subscriber else {
            continue;
        };
        let mut seen = HashSet::new();
        for (text, at) in &subscriber.frames {
            let Some(id) = notification_id(text) else {
                continue;
            };
            if let Some((key, before)) = sent.get_key_value(&id)
                && seen.insert(id)
            {
                let latency = at.saturating_duration_since(*before);
                let last = last_of.entry(key.as_str()).or_default();
                *last = (*last).max(latency);
                samples.latencies.push(latency);
                delivered += 1;
                last_arrival = last_arrival.max(Some(*at));
            }
        }
        let missed = sent.len() - seen.len();
        if missed > 0 {
            let why = subscriber
                .ended_early
                .as_deref()
                .map_or_else(String::new, |e| format!(" (its connection ended: {e})"));
            for _ in 0..missed {
                samples.error(format!(
                    "subscriber {index} missed {missed} of {} broadcasts{why}",
                    sent.len()
                ));
            }
        }
    }
    let mut by_post: Vec<(&Instant, &str)> =
        sent.iter().map(|(id, at)| (at, id.as_str())).collect();
    by_post.sort_unstable();
    let lasts: Vec<String> = by_post
        .iter()
        .map(|(_, id)| {
            last_of
                .get(id)
                .map_or_else(|| "-".to_owned(), |d| d.as_millis().to_string())
        })
        .collect();
    if !lasts.is_empty() {
        eprintln!(
            "xtask: bench: last delivery of each broadcast after (ms): {}",
            lasts.join(" ")
        );
    }
    // Deliveries per second: the measured part runs from the first POST to
    // the last delivery.
    samples.requests = delivered;
    samples.elapsed = match (first_post, last_arrival) {
        (Some(first), Some(last)) => last.saturating_duration_since(first),
        _ => Duration::ZERO,
    };
}

/// The `notification_id` of a `{"channel":"notifications","message":{…}}` frame.
fn notification_id(text: &str) -> Option<String> {
    let frame: Value = serde_json::from_str(text).ok()?;
    if frame["channel"] != "notifications" {
        return None;
    }
    frame["message"]["notification_id"]
        .as_str()
        .map(str::to_owned)
}

/// One subscriber: connects with `token` as the subprotocol, subscribes to
/// `notifications`, waits for the pong of a ping sent after the subscribe
/// frame (the server handles a connection's frames in order, so the
/// subscription has taken effect), reports on `ready`, then collects frames
/// until `stop`. `None`: it never got subscribed (reported on `ready`).
async fn subscriber(
    url: String,
    token: String,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
    counter: Arc<AtomicU64>,
) -> Option<Received> {
    let connecting = async {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            token.parse().map_err(|_| "a token is not a header value")?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let subscribe = json!({"action": "subscribe", "channel": "notifications"});
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .map_err(|e| format!("subscribing: {e}"))?;
        socket
            .send(Message::Ping(b"sync".to_vec().into()))
            .await
            .map_err(|e| format!("pinging: {e}"))?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Pong(p))) if &p[..] == b"sync" => return Ok(socket),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("waiting for the pong: {e}")),
                None => return Err("closed before the pong".to_owned()),
            }
        }
    };
    let mut socket = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(e)) => {
            let _ = ready.send(Err(e));
            return None;
        }
        Err(_) => {
            let _ = ready.send(Err(format!(
                "not subscribed within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
            return None;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);

    let mut received = Received::default();
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    received.frames.push((text.to_string(), Instant::now()));
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                // tungstenite answers pings itself.
                Some(Ok(Message::Close(frame))) => {
                    received.ended_early = Some(format!("closed by the server: {frame:?}"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    received.ended_early = Some(e.to_string());
                    break;
                }
                None => {
                    received.ended_early = Some("closed".to_owned());
                    break;
                }
            },
            _ = stop.changed() => break,
        }
    }
    Some(received)
}

/// Waits until `counter` reaches `target` or `timeout` passes.
async fn wait_for(counter: &AtomicU64, target: u64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while counter.load(Ordering::Relaxed) < target && tokio::time::Instant::now() < deadline {
        if interrupt::requested() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// POSTs a broadcast as the sender; returns the notification's id.
/// A broadcast's id and the instant just before its POST was sent, or why
/// it failed.
type Published = Result<(String, Instant), String>;

/// Publishes `broadcasts` broadcasts `spacing` apart (from the start of one
/// to the start of the next, or right after the previous one if it took
/// longer), on a runtime and an HTTP client of its own. Each: the id and
/// the instant just before its POST was sent.
fn publish_on_schedule(
    base_url: &str,
    addr: std::net::SocketAddr,
    sender_token: &str,
    binary: &std::path::Path,
    broadcasts: usize,
    spacing: Duration,
) -> Result<Vec<Published>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the publisher's runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("could not build the publisher's HTTP client: {e}"))?;
    let ctx = Ctx {
        rt: &rt,
        client: &client,
        base_url: base_url.to_owned(),
        addr,
        sender_token: sender_token.to_owned(),
        quick: false,
        server_pid: 0,
        cluster: None,
        binary,
        // The publisher runs no command of the server's.
        configs: &[],
        data_dir: std::path::Path::new(""),
    };
    rt.block_on(async {
        let first = tokio::time::Instant::now();
        let mut published = Vec::with_capacity(broadcasts);
        for i in 0..broadcasts {
            tokio::time::sleep_until(first + spacing * i as u32).await;
            interrupt::check()?;
            let before = Instant::now();
            published.push(
                publish(&ctx, &format!("signal {i}"))
                    .await
                    .map(|id| (id, before)),
            );
        }
        Ok(published)
    })
}

async fn publish(ctx: &Ctx<'_>, title: &str) -> Result<String, String> {
    let body = json!({"recipients": {"type": "broadcast"}, "payload": {"title": title}});
    let answer = ctx.post_as_sender_async(CREATE_PATH, &body).await?;
    if answer.status != 200 {
        return Err(format!(
            "HTTP {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    let created: Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    match created.as_array().map(Vec::as_slice) {
        Some([one]) => one["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the notification has no id: {one:.200}")),
        _ => Err(format!(
            "expected one broadcast notification, got {created:.200}"
        )),
    }
}

/// Clock ticks of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * 1000 / TICKS_PER_SECOND)
}

/// User + system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// command name (field 2) may hold spaces, so fields count from its `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    parse_vm_rss_kb(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The soft and hard `Max open files` of a process, from `/proc/<pid>/limits`.
fn open_files_limit(pid: u32) -> Option<(u64, u64)> {
    parse_open_files(&fs::read_to_string(format!("/proc/{pid}/limits")).ok()?)
}

fn parse_open_files(limits: &str) -> Option<(u64, u64)> {
    let rest = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    let mut fields = rest.split_whitespace();
    let number = |v: &str| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    };
    Some((number(fields.next()?)?, number(fields.next()?)?))
}

/// Makes sure process `pid` may open `needed` files: raises its soft limit
/// up to its hard limit with `prlimit(1)` when it is lower (std cannot call
/// setrlimit without `unsafe`), and fails with what to do otherwise.
fn ensure_open_files(pid: u32, needed: u64, who: &str) -> Result<(), String> {
    let Some((soft, hard)) = open_files_limit(pid) else {
        // Not Linux, or /proc is missing: let the connections tell.
        return Ok(());
    };
    if soft >= needed {
        return Ok(());
    }
    let advice = format!(
        "{who} may open {soft} files (hard limit {hard}) but this scenario needs about \
         {needed}: raise the limit (e.g. `ulimit -n {needed}` in the shell that runs \
         cargo xtask bench, or the hard limit in /etc/security/limits.conf) or use --quick"
    );
    if hard < needed {
        return Err(advice);
    }
    let raised = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={hard}:{hard}"))
        .stdin(Stdio::null())
        .status();
    match (raised, open_files_limit(pid)) {
        (Ok(status), Some((soft, _))) if status.success() && soft >= needed => {
            eprintln!("xtask: bench: raised the open-files limit of {who} to {soft}");
            Ok(())
        }
        _ => Err(format!("{advice} (prlimit could not raise it)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_from_proc_stat() {
        let stat = "4242 (notifications b) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 70 0 0 20 0 \
                    3 0 1000 100000 2000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(320));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn notification_ids_are_read_from_signal_frames() {
        let frame = r#"{"channel":"notifications","message":{"action":"new_notification","notification_id":"abc"}}"#;
        assert_eq!(notification_id(frame), Some("abc".to_owned()));
        assert_eq!(
            notification_id(r#"{"channel":"other","message":{"notification_id":"abc"}}"#),
            None
        );
        assert_eq!(notification_id("not json"), None);
    }

    #[test]
    fn open_files_limits_are_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95000                95000                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files(limits), Some((1024, 524_288)));
        assert_eq!(
            parse_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            Some((u64::MAX, u64::MAX))
        );
        assert_eq!(parse_open_files("Max processes 1 1 processes\n"), None);
    }

    #[test]
    fn deliveries_become_latencies_and_misses_errors() {
        let t0 = Instant::now();
        let frame = |id: &str| {
            format!(
                r#"{{"channel":"notifications","message":{{"action":"new_notification","notification_id":"{id}"}}}}"#
            )
        };
        let sent: HashMap<String, Instant> = [
            ("a".to_owned(), t0),
            ("b".to_owned(), t0 + Duration::from_millis(100)),
        ]
        .into();
        let everything = Received {
            frames: vec![
                (frame("warm-up"), t0),
                (frame("a"), t0 + Duration::from_millis(5)),
                (frame("b"), t0 + Duration::from_millis(110)),
            ],
            ended_early: None,
        };
        let half = Received {
            frames: vec![(frame("a"), t0 + Duration::from_millis(7))],
            ended_early: Some("closed".to_owned()),
        };
        let mut samples = Samples::default();
        tally(&mut samples, &[Some(everything), None, Some(half)], &sent);
        let mut ms: Vec<u128> = samples.latencies.iter().map(Duration::as_millis).collect();
        ms.sort_unstable();
        assert_eq!(ms, [5, 7, 10]);
        assert_eq!(samples.errors, 1);
        assert_eq!(samples.requests, 3);
        assert_eq!(samples.elapsed, Duration::from_millis(110));
    }
}
