//! A closed-loop HTTP load generator in the manner of wrk: a fixed number of
//! keep-alive HTTP/1.1 connections, each sending its next request as soon as
//! it has read the previous answer, for a warm-up and then a measured period
//! (or until a given number of requests has been sent, to seed data).
//!
//! It runs in xtask, a process of its own, on xtask's single-threaded
//! runtime: one core at most, as wrk with one thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::report::Samples;
use crate::interrupt;

/// How long a load runs.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// A warm-up whose answers are not counted, then the measured period.
    Elapsed { warmup: Duration, measure: Duration },
    /// This many requests in all, every one measured.
    Requests(u64),
}

/// Builds the `n`th request (0-based, counted over all connections).
pub type MakeRequest = dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync;

/// Whether an answer (status, body) is the expected one.
pub type Check = fn(u16, &[u8]) -> Result<(), String>;

pub struct Load {
    pub addr: SocketAddr,
    pub connections: usize,
    pub until: Until,
}

impl Load {
    /// Drives the load; `Samples::elapsed` is the measured period as it
    /// really lasted (until the last answer of it was read).
    pub async fn run(&self, make: Arc<MakeRequest>, check: Check) -> Samples {
        let start = Instant::now();
        let (measure_from, end, limit) = match self.until {
            Until::Elapsed { warmup, measure } => {
                (start + warmup, Some(start + warmup + measure), None)
            }
            Until::Requests(n) => (start, None, Some(n)),
        };
        let plan = Arc::new(Plan {
            addr: self.addr,
            make,
            check,
            next: AtomicU64::new(0),
            limit,
            measure_from,
            end,
        });
        let tasks: Vec<_> = (0..self.connections.max(1))
            .map(|_| tokio::spawn(connection(plan.clone())))
            .collect();
        let mut samples = Samples::default();
        for task in tasks {
            match task.await {
                Ok(part) => part.add_to(&mut samples),
                Err(e) => samples.error(format!("a load connection task failed: {e}")),
            }
        }
        samples.elapsed = measure_from.elapsed();
        samples
    }
}

/// What every connection of one load shares.
struct Plan {
    addr: SocketAddr,
    make: Arc<MakeRequest>,
    check: Check,
    /// The number of the next request.
    next: AtomicU64,
    limit: Option<u64>,
    measure_from: Instant,
    end: Option<Instant>,
}

/// What one connection measured.
#[derive(Default)]
struct Part {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Part {
    fn add_to(self, samples: &mut Samples) {
        samples.requests += self.latencies.len() as u64;
        samples.latencies.extend(self.latencies);
        if let Some(first) = self.first_error {
            samples.error(first);
            samples.requests += self.errors - 1;
            samples.errors += self.errors - 1;
        }
    }
}

async fn connection(plan: Arc<Plan>) -> Part {
    let mut part = Part::default();
    let mut sender = None;
    loop {
        if plan.end.is_some_and(|end| Instant::now() >= end) || interrupt::requested() {
            break;
        }
        let n = plan.next.fetch_add(1, Ordering::Relaxed);
        if plan.limit.is_some_and(|limit| n >= limit) {
            break;
        }
        let request = (plan.make)(n);
        let started = Instant::now();
        let result = exchange(&mut sender, plan.addr, request).await;
        let latency = started.elapsed();
        if started < plan.measure_from {
            continue;
        }
        match result.and_then(|(status, body)| (plan.check)(status, &body)) {
            Ok(()) => part.latencies.push(latency),
            Err(e) => {
                part.errors += 1;
                part.first_error.get_or_insert(e);
            }
        }
    }
    part
}

/// Sends one request on the connection, opening it first if it is closed.
pub async fn exchange(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    let what = format!("{} {}", request.method(), request.uri());
    let open = match sender.take() {
        Some(open) if !open.is_closed() => open,
        _ => connect(addr).await?,
    };
    let mut open = open;
    let response = open
        .send_request(request)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{what}: reading the answer: {e}"))?
        .to_bytes();
    // Kept only after a whole exchange: a failed one reconnects.
    *sender = Some(open);
    Ok((status, body))
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; a broken
        // connection shows up as the next request's error.
        let _ = connection.await;
    });
    Ok(sender)
}

/// A request to `path` on `addr` with a bearer token and an optional JSON
/// body.
pub fn request(
    method: Method,
    addr: SocketAddr,
    path: &str,
    token: &str,
    json: Option<String>,
) -> Request<Full<Bytes>> {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    let (builder, body) = match json {
        Some(json) => (
            builder.header(hyper::header::CONTENT_TYPE, "application/json"),
            Bytes::from(json),
        ),
        None => (builder, Bytes::new()),
    };
    // Method, path and headers are ours and valid; a bad one is a bug here.
    builder
        .body(Full::new(body))
        .expect("a request built from valid parts")
}

/// The expected answer: 200 with a JSON body.
pub fn ok_json(status: u16, body: &[u8]) -> Result<(), String> {
    match (status, body.first()) {
        (200, Some(b'[' | b'{')) => Ok(()),
        _ => Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_host_token_and_body() {
        let addr: SocketAddr = "127.0.0.1:7007".parse().unwrap();
        let r = request(Method::POST, addr, "/a?b=1", "tok", Some("{}".into()));
        assert_eq!(r.uri(), "/a?b=1");
        assert_eq!(r.headers()["host"], "127.0.0.1:7007");
        assert_eq!(r.headers()["authorization"], "Bearer tok");
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = request(Method::GET, addr, "/a", "tok", None);
        assert!(!r.headers().contains_key("content-type"));
    }

    #[test]
    fn only_200_with_json_is_expected() {
        assert!(ok_json(200, b"[]").is_ok());
        assert!(ok_json(200, b"{\"a\":1}").is_ok());
        assert!(ok_json(200, b"").is_err());
        assert!(
            ok_json(503, b"{\"error\":{}}")
                .unwrap_err()
                .starts_with("HTTP 503")
        );
    }

    #[test]
    fn parts_add_up() {
        let mut samples = Samples::default();
        Part {
            latencies: vec![Duration::from_millis(1); 3],
            errors: 2,
            first_error: Some("HTTP 500".into()),
        }
        .add_to(&mut samples);
        Part::default().add_to(&mut samples);
        assert_eq!(samples.requests, 5);
        assert_eq!(samples.errors, 2);
        assert_eq!(samples.latencies.len(), 3);
        assert_eq!(samples.first_error.as_deref(), Some("HTTP 500"));
    }
}
