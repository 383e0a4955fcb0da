//! A small HTTP/1.1 proxy in front of a backend that fails on purpose, for the clients' retry
//! tests: each request takes the next scripted fault; when none is left, requests pass through.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers this status (with `Retry-After` seconds if given) without passing the request on.
    Answer(u16, Option<u64>),
    /// Passes the request on (the backend acts on it), then answers 503 instead.
    ForwardThen503,
    /// Passes the request on, then closes the connection without answering.
    ForwardThenClose,
}

/// A request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
}

pub struct FlakyProxy {
    /// `http://127.0.0.1:<port>`
    pub root: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    /// A proxy to `backend_root` (`http://host:port`) that applies `faults` in order.
    pub async fn start(backend_root: &str, faults: Vec<Fault>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let root = format!("http://{}", listener.local_addr().unwrap());
        let faults = Arc::new(Mutex::new(VecDeque::from(faults)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let backend = backend_root.to_owned();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let fault = faults.lock().unwrap().pop_front();
                    tokio::spawn(serve(stream, backend.clone(), fault, seen.clone()));
                }
            }
        });
        Self { root, seen, task }
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    backend: String,
    fault: Option<Fault>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    seen.lock().unwrap().push(Seen {
        method: request.method.clone(),
        path: request.path.clone(),
        idempotency_key: request.header("idempotency-key"),
    });
    if let Some(Fault::Answer(status, retry_after)) = fault {
        let extra = retry_after
            .map(|s| format!("Retry-After: {s}\r\n"))
            .unwrap_or_default();
        respond(&mut stream, status, &extra, b"{}").await;
        return;
    }
    let mut forward = reqwest::Client::new().request(
        request.method.parse().unwrap(),
        format!("{backend}{}", request.path),
    );
    for (name, value) in &request.headers {
        if ["authorization", "content-type", "idempotency-key", "accept"].contains(&name.as_str()) {
            forward = forward.header(name, value);
        }
    }
    let answer = forward.body(request.body).send().await.unwrap();
    let status = answer.status().as_u16();
    let replayed = answer
        .headers()
        .get("idempotent-replayed")
        .map(|v| format!("Idempotent-Replayed: {}\r\n", v.to_str().unwrap()))
        .unwrap_or_default();
    let body = answer.bytes().await.unwrap();
    match fault {
        Some(Fault::ForwardThen503) => respond(&mut stream, 503, "", b"{}").await,
        Some(Fault::ForwardThenClose) => drop(stream),
        _ => respond(&mut stream, status, &replayed, &body).await,
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_owned(), start.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn respond(stream: &mut TcpStream, status: u16, extra_headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}
