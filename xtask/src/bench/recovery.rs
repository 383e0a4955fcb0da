//! `pg-recovery`: PostgreSQL crashing under a steady create load. The bench's own throwaway
//! cluster is killed (`pg_ctl stop -m immediate`), left down while the load goes on, and started
//! again, a few times over. Measured: how fast the creates that meet the database down are
//! refused (503 with upstream's body), how fast readiness says so (liveness must stay 200), how
//! soon after PostgreSQL is back a create succeeds, and that every acknowledged create is stored
//! exactly once.
//!
//! The creates and the health probes run on a thread of their own (its own runtime), so that they
//! go on while this thread waits for `pg_ctl`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use serde_json::{Value, json};

use super::READINESS_PATH;
use super::load;
use super::report::{Measured, Samples};
use super::scenario::{Ctx, Scenario};
use super::throughput::{CONNECTIONS, CREATE_PATH};
use super::tokens::{self, user_token};
use crate::interrupt;
use crate::pg::TempPostgres;

const LIVENESS_PATH: &str = "/.backstage/health/v1/liveness";
const INBOX_PATH: &str = "/api/notifications/notifications";

/// Every create goes to this user; its inbox is counted at the end.
const USER: &str = "user:default/pg-recovery";

/// A sender whose create failed waits this long before its next one, as a client backs off,
/// rather than spin on 503s.
const BACKOFF: Duration = Duration::from_millis(20);

/// Between two probes of one health endpoint: the resolution of the readiness figure.
const PROBE_INTERVAL: Duration = Duration::from_millis(20);

/// Between two `pg_isready` while PostgreSQL starts again: the resolution of "back".
/// (`pg_ctl start -w` itself looks only every 100 ms.)
const READY_POLL: Duration = Duration::from_millis(10);

/// A request still unanswered after this counts as failed, and the load goes on.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How many crashes, and how long the load runs around each.
#[derive(Clone, Copy)]
struct Plan {
    cycles: usize,
    /// Before each crash, and after the last restart.
    steady: Duration,
    /// From `pg_ctl stop` to `pg_ctl start`.
    outage: Duration,
}

const FULL: Plan = Plan {
    cycles: 3,
    steady: Duration::from_secs(2),
    outage: Duration::from_secs(3),
};

const QUICK: Plan = Plan {
    cycles: 1,
    steady: Duration::from_secs(1),
    outage: Duration::from_secs(2),
};

pub struct PgRecovery;

impl Scenario for PgRecovery {
    fn name(&self) -> &'static str {
        "pg-recovery"
    }

    fn about(&self) -> &'static str {
        "PostgreSQL only: 10 connections POST to one user; after 2 s of that, PostgreSQL is \
         crashed (pg_ctl stop -m immediate) and started again 3 s later, 3 times (--quick: once, \
         after 1 s, for 2 s): time to refuse, to readiness 503, to the first create once \
         PostgreSQL is back; nothing acknowledged lost or doubled"
    }

    fn postgres_only(&self) -> bool {
        true
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        // The user's token, to count its inbox at the end.
        Ok(tokens::config())
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let pg = ctx
            .cluster
            .ok_or("pg-recovery needs the PostgreSQL cluster, to crash it")?;
        let plan = if ctx.quick { QUICK } else { FULL };
        let user = user_token(USER)?;

        let stop = Arc::new(AtomicBool::new(false));
        let (observed, cycles) = thread::scope(|s| {
            let load = s.spawn({
                let (addr, token, stop) = (ctx.addr, ctx.sender_token.clone(), stop.clone());
                move || observe(addr, &token, &stop)
            });
            let cycles = crash_and_restart(pg, plan);
            // Whatever happened to PostgreSQL, the load ends before its results are read.
            stop.store(true, Ordering::Relaxed);
            let observed = load
                .join()
                .map_err(|_| "the load thread panicked".to_owned())
                .and_then(|observed| observed);
            (observed, cycles)
        });
        let (observed, cycles) = (observed?, cycles?);

        let mut refused = Samples::default();
        let mut readiness = Samples::default();
        let mut first_create = Samples::default();
        for (i, cycle) in cycles.iter().enumerate() {
            let figures = cycle.figures(&observed.creates, &observed.readiness);
            eprintln!(
                "xtask: bench: cycle {} of {}: {}",
                i + 1,
                cycles.len(),
                figures.describe(cycle)
            );
            refused.elapsed += cycle.back - cycle.crashed;
            match figures.readiness_503 {
                Some(took) => readiness.success(took),
                None => readiness.error(format!(
                    "cycle {}: readiness never answered 503 while PostgreSQL was down",
                    i + 1
                )),
            }
            match figures.first_create {
                Some(took) => first_create.success(took),
                None => first_create.error(format!(
                    "cycle {}: no create succeeded after PostgreSQL was back",
                    i + 1
                )),
            }
        }
        for create in &observed.creates {
            match &create.answer {
                Answer::Created => {}
                Answer::Refused => refused.success(create.ended - create.started),
                Answer::Wrong(e) => refused.error(format!("create {}: {e}", create.title())),
            }
        }
        for probe in &observed.readiness {
            if !matches!(probe.status, Ok(200 | 503)) {
                readiness.error(format!("readiness: {}", probe.describe()));
            }
        }
        for probe in &observed.liveness {
            if probe.status != Ok(200) {
                readiness.error(format!("liveness: {}", probe.describe()));
            }
        }

        // Every create acknowledged is stored once: the user's whole inbox, by title.
        let inbox = inbox(ctx, &user)?;
        let titles = inbox["notifications"]
            .as_array()
            .ok_or_else(|| format!("the inbox is not a list: {inbox:.300}"))?
            .iter()
            .map(|n| n["payload"]["title"].as_str().unwrap_or_default());
        let ledger = Ledger::of(&observed.creates, titles);
        eprintln!("xtask: bench: {}", ledger.describe());
        let mut acknowledged = ledger.samples(&observed.creates);
        acknowledged.elapsed = observed.ran;

        Ok(vec![
            Measured::new("pg-recovery/refused", refused),
            Measured::new("pg-recovery/readiness", readiness),
            Measured::new("pg-recovery/first-create", first_create),
            Measured::new("pg-recovery/acknowledged", acknowledged),
        ])
    }
}

/// The user's whole inbox (no limit), on a new connection: the HTTP client's pooled one sat idle
/// past the server's keep-alive while nothing drove `ctx.rt`, so it would not have noticed the
/// server closing it.
fn inbox(ctx: &Ctx<'_>, token: &str) -> Result<Value, String> {
    let request = load::request(Method::GET, ctx.addr, INBOX_PATH, token, None);
    let (status, body) = ctx.rt.block_on(exchange(&mut None, ctx.addr, request))?;
    load::ok_json(status, &body)?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {INBOX_PATH}: not JSON: {e}"))
}

/// The crash/restart cycles, with the steady load before each crash and after the last restart.
fn crash_and_restart(pg: &TempPostgres, plan: Plan) -> Result<Vec<Cycle>, String> {
    let mut cycles: Vec<Cycle> = Vec::new();
    for _ in 0..plan.cycles {
        pause(plan.steady)?;
        let crashed = Instant::now();
        pg.crash()?;
        let stop_took = crashed.elapsed();
        pause(plan.outage.saturating_sub(stop_took))?;
        let restarting = Instant::now();
        let back = start_again(pg)?;
        if let Some(previous) = cycles.last_mut() {
            previous.until = crashed;
        }
        cycles.push(Cycle {
            crashed,
            stop_took,
            restarting,
            back,
            until: back,
        });
    }
    pause(plan.steady)?;
    if let Some(last) = cycles.last_mut() {
        last.until = Instant::now();
    }
    Ok(cycles)
}

/// Starts PostgreSQL again and returns when it first accepted connections, watched with
/// `pg_isready` while `pg_ctl start` waits.
fn start_again(pg: &TempPostgres) -> Result<Instant, String> {
    thread::scope(|s| {
        let starting = s.spawn(|| pg.start_again());
        let back = loop {
            let finished = starting.is_finished();
            // Once `pg_ctl` is done, it either saw the server accept connections or says why not.
            if finished || pg.accepts_connections()? {
                break Instant::now();
            }
            thread::sleep(READY_POLL);
        };
        starting
            .join()
            .map_err(|_| "the thread running pg_ctl start panicked".to_owned())??;
        Ok(back)
    })
}

/// Sleeps, giving up on Ctrl-C.
fn pause(duration: Duration) -> Result<(), String> {
    let end = Instant::now() + duration;
    loop {
        interrupt::check()?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// When one crash and restart happened.
struct Cycle {
    /// `pg_ctl stop -m immediate` was started.
    crashed: Instant,
    /// How long `pg_ctl stop` took (it waits until the server is gone).
    stop_took: Duration,
    /// `pg_ctl start` was started.
    restarting: Instant,
    /// PostgreSQL accepted connections again.
    back: Instant,
    /// The next crash, or the end of the load: what ends after `crashed` and before this is the
    /// cycle's.
    until: Instant,
}

/// What one cycle showed.
#[derive(Debug, PartialEq)]
struct CycleFigures {
    refused: usize,
    slowest_refused: Option<Duration>,
    /// Of every create in flight at some moment PostgreSQL was down, whatever its answer: one
    /// that waited for the database to come back shows here, not among the refused.
    slowest_in_outage: Option<(Duration, String)>,
    /// From the crash to the end of the first readiness answer 503.
    readiness_503: Option<Duration>,
    /// From PostgreSQL being back to the end of the first readiness answer 200.
    ready_again: Option<Duration>,
    /// From PostgreSQL being back to the end of the first create acknowledged (0 for one that
    /// succeeded while `pg_isready` had not yet been asked again).
    first_create: Option<Duration>,
}

impl Cycle {
    fn figures(&self, creates: &[Create], readiness: &[Probe]) -> CycleFigures {
        let mine = || {
            creates
                .iter()
                .filter(|c| c.ended >= self.crashed && c.ended < self.until)
        };
        let refused: Vec<Duration> = mine()
            .filter(|c| c.answer == Answer::Refused)
            .map(|c| c.ended - c.started)
            .collect();
        let slowest_in_outage = mine()
            .filter(|c| c.started < self.back)
            .max_by_key(|c| c.ended - c.started)
            .map(|c| (c.ended - c.started, c.answer.short()));
        let probe_after = |from: Instant, status: u16| {
            readiness
                .iter()
                .find(|p| p.ended >= from && p.ended < self.until && p.status == Ok(status))
                .map(|p| p.ended - from)
        };
        let first_create = mine()
            .filter(|c| c.answer == Answer::Created && c.ended >= self.restarting)
            .map(|c| c.ended)
            .min()
            .map(|ended| ended.saturating_duration_since(self.back));
        CycleFigures {
            refused: refused.len(),
            slowest_refused: refused.into_iter().max(),
            slowest_in_outage,
            readiness_503: probe_after(self.crashed, 503),
            ready_again: probe_after(self.back, 200),
            first_create,
        }
    }
}

impl CycleFigures {
    fn describe(&self, cycle: &Cycle) -> String {
        let s = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), secs);
        format!(
            "PostgreSQL down {} (pg_ctl stop {}, back {} after pg_ctl start); {} creates refused, \
             slowest {}; slowest in flight while down {}; readiness 503 after {}, 200 again {} \
             after PostgreSQL was back; first create {} after it was back",
            secs(cycle.back - cycle.crashed),
            secs(cycle.stop_took),
            secs(cycle.back - cycle.restarting),
            self.refused,
            s(self.slowest_refused),
            self.slowest_in_outage.as_ref().map_or_else(
                || "none".to_owned(),
                |(d, what)| format!("{} ({what})", secs(*d))
            ),
            s(self.readiness_503),
            s(self.ready_again),
            s(self.first_create),
        )
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// What the load thread saw.
struct Observed {
    creates: Vec<Create>,
    readiness: Vec<Probe>,
    liveness: Vec<Probe>,
    /// How long the creates ran.
    ran: Duration,
}

/// One create, as its sender saw it.
struct Create {
    sender: usize,
    n: u64,
    started: Instant,
    ended: Instant,
    answer: Answer,
}

impl Create {
    fn title(&self) -> String {
        title(self.sender, self.n)
    }
}

fn title(sender: usize, n: u64) -> String {
    format!("pg-recovery {sender}/{n}")
}

#[derive(Debug, PartialEq)]
enum Answer {
    /// 200 with the created notifications: acknowledged.
    Created,
    /// 503 with upstream's `ServiceUnavailableError` body.
    Refused,
    /// Anything else, or no answer.
    Wrong(String),
}

impl Answer {
    fn short(&self) -> String {
        match self {
            Answer::Created => "200".to_owned(),
            Answer::Refused => "503".to_owned(),
            Answer::Wrong(e) => e.chars().take(80).collect(),
        }
    }
}

fn classify(status: u16, body: &[u8]) -> Answer {
    if status == 503 {
        return match upstream_unavailable(body) {
            Ok(()) => Answer::Refused,
            Err(e) => Answer::Wrong(format!("HTTP 503: {e}")),
        };
    }
    match load::ok_json(status, body) {
        Ok(()) => Answer::Created,
        Err(e) => Answer::Wrong(e),
    }
}

/// Whether `body` is upstream's error body for an unavailable database:
/// `{"error": {"name": "ServiceUnavailableError", "message"}, "request": {"method", "url"},
/// "response": {"statusCode": 503}}`.
fn upstream_unavailable(body: &[u8]) -> Result<(), String> {
    let shown = || String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    let value: Value =
        serde_json::from_slice(body).map_err(|_| format!("not JSON: {}", shown()))?;
    let upstream = value["error"]["name"] == "ServiceUnavailableError"
        && value["error"]["message"].is_string()
        && value["request"]["method"].is_string()
        && value["request"]["url"].is_string()
        && value["response"]["statusCode"] == 503;
    if upstream {
        Ok(())
    } else {
        Err(format!("not upstream's body: {}", shown()))
    }
}

/// One answer of a health endpoint.
struct Probe {
    ended: Instant,
    /// The HTTP status, or why there was none.
    status: Result<u16, String>,
}

impl Probe {
    fn describe(&self) -> String {
        match &self.status {
            Ok(status) => format!("HTTP {status}"),
            Err(e) => e.clone(),
        }
    }
}

/// Runs the creates and the health probes until `stop`, on a runtime of its own.
fn observe(addr: SocketAddr, token: &str, stop: &Arc<AtomicBool>) -> Result<Observed, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the load's runtime: {e}"))?;
    rt.block_on(async {
        let token: Arc<str> = token.into();
        let started = Instant::now();
        let senders: Vec<_> = (0..CONNECTIONS)
            .map(|i| tokio::spawn(send(addr, token.clone(), i, stop.clone())))
            .collect();
        let readiness = tokio::spawn(probe(addr, READINESS_PATH, token.clone(), stop.clone()));
        let liveness = tokio::spawn(probe(addr, LIVENESS_PATH, token.clone(), stop.clone()));
        let mut creates = Vec::new();
        for sender in senders {
            creates.extend(sender.await.map_err(|e| format!("a sender failed: {e}"))?);
        }
        let ran = started.elapsed();
        Ok(Observed {
            creates,
            readiness: readiness
                .await
                .map_err(|e| format!("the readiness probe failed: {e}"))?,
            liveness: liveness
                .await
                .map_err(|e| format!("the liveness probe failed: {e}"))?,
            ran,
        })
    })
}

/// One connection's creates to `USER`, back to back (after `BACKOFF` when one fails).
async fn send(
    addr: SocketAddr,
    token: Arc<str>,
    sender: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Create> {
    let mut creates = Vec::new();
    let mut connection = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && !interrupt::requested() {
        n += 1;
        let body = json!({
            "recipients": {"type": "entity", "entityRef": USER},
            "payload": {"title": title(sender, n)},
        });
        let request = load::request(
            Method::POST,
            addr,
            CREATE_PATH,
            &token,
            Some(body.to_string()),
        );
        let started = Instant::now();
        let answer = match exchange(&mut connection, addr, request).await {
            Ok((status, body)) => classify(status, &body),
            Err(e) => Answer::Wrong(e),
        };
        let failed = answer != Answer::Created;
        creates.push(Create {
            sender,
            n,
            started,
            ended: Instant::now(),
            answer,
        });
        if failed {
            tokio::time::sleep(BACKOFF).await;
        }
    }
    creates
}

/// `GET path` every `PROBE_INTERVAL` until `stop` (the health endpoints ignore the token).
async fn probe(
    addr: SocketAddr,
    path: &'static str,
    token: Arc<str>,
    stop: Arc<AtomicBool>,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut connection = None;
    while !stop.load(Ordering::Relaxed) && !interrupt::requested() {
        let request = load::request(Method::GET, addr, path, &token, None);
        let status = exchange(&mut connection, addr, request)
            .await
            .map(|(status, _)| status);
        probes.push(Probe {
            ended: Instant::now(),
            status,
        });
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    probes
}

/// `load::exchange` within `REQUEST_TIMEOUT` (a request cut off leaves the connection closed).
async fn exchange(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    tokio::time::timeout(REQUEST_TIMEOUT, load::exchange(connection, addr, request))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs())))
}

/// The acknowledged creates against what the user's inbox holds.
#[derive(Debug, Default, PartialEq)]
struct Ledger {
    acknowledged: usize,
    /// Acknowledged, not stored.
    lost: Vec<String>,
    /// Stored more than once.
    doubled: Vec<String>,
    /// Stored, though never sent: not ours.
    unknown: Vec<String>,
    /// Refused or failed, but stored all the same: PostgreSQL committed them and the crash cut
    /// the answer. The sender was not told they were stored, so a resend is its call.
    stored_unacknowledged: usize,
}

impl Ledger {
    fn of<'a>(creates: &[Create], titles: impl Iterator<Item = &'a str>) -> Ledger {
        let mut stored: HashMap<&str, usize> = HashMap::new();
        for title in titles {
            *stored.entry(title).or_default() += 1;
        }
        let mut ledger = Ledger::default();
        let mut sent = HashSet::new();
        for create in creates {
            let title = create.title();
            let copies = stored.get(title.as_str()).copied().unwrap_or(0);
            match (&create.answer, copies) {
                (Answer::Created, 0) => ledger.lost.push(title.clone()),
                (Answer::Created, _) => {}
                (_, 0) => {}
                (_, _) => ledger.stored_unacknowledged += 1,
            }
            if create.answer == Answer::Created {
                ledger.acknowledged += 1;
            }
            sent.insert(title);
        }
        let mut extra: Vec<(&str, usize)> = stored.into_iter().collect();
        extra.sort_unstable();
        for (title, copies) in extra {
            if !sent.contains(title) {
                ledger.unknown.push(title.to_owned());
            } else if copies > 1 {
                ledger.doubled.push(title.to_owned());
            }
        }
        ledger
    }

    /// One sample per acknowledged create stored once (its latency); an error for each lost,
    /// doubled or unknown one.
    fn samples(&self, creates: &[Create]) -> Samples {
        let mut samples = Samples::default();
        let wrong: HashSet<&str> = self
            .lost
            .iter()
            .chain(&self.doubled)
            .map(String::as_str)
            .collect();
        for create in creates
            .iter()
            .filter(|c| c.answer == Answer::Created && !wrong.contains(c.title().as_str()))
        {
            samples.success(create.ended - create.started);
        }
        for title in &self.lost {
            samples.error(format!("{title}: acknowledged, not stored"));
        }
        for title in &self.doubled {
            samples.error(format!("{title}: stored more than once"));
        }
        for title in &self.unknown {
            samples.error(format!("{title}: stored, never sent"));
        }
        samples
    }

    fn describe(&self) -> String {
        format!(
            "{} creates acknowledged; {} lost, {} doubled, {} stored that were never sent; \
             {} refused but stored (committed before the crash cut the answer)",
            self.acknowledged,
            self.lost.len(),
            self.doubled.len(),
            self.unknown.len(),
            self.stored_unacknowledged
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNAVAILABLE: &str = r#"{"error":{"name":"ServiceUnavailableError","message":"The database is not reachable"},"request":{"method":"POST","url":"/notifications"},"response":{"statusCode":503}}"#;

    #[test]
    fn answers_are_acknowledged_refused_or_wrong() {
        assert_eq!(classify(200, b"[{\"id\":\"a\"}]"), Answer::Created);
        assert_eq!(classify(503, UNAVAILABLE.as_bytes()), Answer::Refused);
        let wrong = |status, body: &str| match classify(status, body.as_bytes()) {
            Answer::Wrong(e) => e,
            other => panic!("{status} {body}: {other:?}"),
        };
        assert!(wrong(503, "Service Unavailable").starts_with("HTTP 503: not JSON"));
        let other_error = UNAVAILABLE.replace("ServiceUnavailableError", "Error");
        assert!(wrong(503, &other_error).contains("not upstream's body"));
        let no_status = UNAVAILABLE.replace(r#","response":{"statusCode":503}"#, "");
        assert!(wrong(503, &no_status).contains("not upstream's body"));
        assert!(wrong(500, UNAVAILABLE).starts_with("HTTP 500"));
        assert!(wrong(200, "").starts_with("HTTP 200"));
    }

    fn create(sender: usize, n: u64, span: (Instant, Instant), answer: Answer) -> Create {
        Create {
            sender,
            n,
            started: span.0,
            ended: span.1,
            answer,
        }
    }

    #[test]
    fn a_cycle_is_timed_from_the_crash_and_from_the_return() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let span = |from, to| (at(from), at(to));
        let cycle = Cycle {
            crashed: at(100),
            stop_took: Duration::from_millis(30),
            restarting: at(900),
            back: at(1000),
            until: at(2000),
        };
        let creates = [
            // Before the crash: another cycle's (or the warm-up's).
            create(0, 1, span(10, 90), Answer::Created),
            // In flight at the crash, committed just before it.
            create(0, 2, span(95, 101), Answer::Created),
            create(1, 1, span(110, 120), Answer::Refused),
            create(2, 1, span(150, 400), Answer::Refused),
            create(1, 2, span(990, 1030), Answer::Created),
            create(2, 2, span(1010, 1020), Answer::Created),
            // After the cycle: the next one's.
            create(0, 3, span(1990, 2100), Answer::Refused),
        ];
        let probe = |ms, status| Probe {
            ended: at(ms),
            status: Ok(status),
        };
        let readiness = [
            probe(90, 200),
            probe(140, 503),
            probe(500, 503),
            probe(1005, 503),
            probe(1060, 200),
        ];
        assert_eq!(
            cycle.figures(&creates, &readiness),
            CycleFigures {
                refused: 2,
                slowest_refused: Some(Duration::from_millis(250)),
                slowest_in_outage: Some((Duration::from_millis(250), "503".to_owned())),
                readiness_503: Some(Duration::from_millis(40)),
                ready_again: Some(Duration::from_millis(60)),
                first_create: Some(Duration::from_millis(20)),
            }
        );
        // Nothing seen: every figure says so.
        let none = cycle.figures(&creates[..1], &readiness[..1]);
        assert_eq!(none.refused, 0);
        assert_eq!(
            (none.readiness_503, none.ready_again, none.first_create),
            (None, None, None)
        );
        // A create that succeeded before `pg_isready` was asked again counts as at once.
        let early = [create(0, 4, span(940, 960), Answer::Created)];
        assert_eq!(
            cycle.figures(&early, &[]).first_create,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn acknowledged_creates_are_stored_once() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let creates = [
            create(0, 1, (t0, t0 + ms(3)), Answer::Created),
            create(0, 2, (t0, t0 + ms(4)), Answer::Created),
            create(1, 1, (t0, t0 + ms(5)), Answer::Refused),
            create(1, 2, (t0, t0 + ms(6)), Answer::Created),
            create(2, 1, (t0, t0 + ms(7)), Answer::Wrong("HTTP 500".into())),
        ];
        let stored = [
            "pg-recovery 0/1",
            "pg-recovery 1/1",
            "pg-recovery 1/2",
            "pg-recovery 1/2",
            "pg-recovery 9/9",
        ];
        let ledger = Ledger::of(&creates, stored.into_iter());
        assert_eq!(
            ledger,
            Ledger {
                acknowledged: 3,
                lost: vec!["pg-recovery 0/2".into()],
                doubled: vec!["pg-recovery 1/2".into()],
                unknown: vec!["pg-recovery 9/9".into()],
                stored_unacknowledged: 1,
            }
        );
        let samples = ledger.samples(&creates);
        assert_eq!(samples.latencies, [ms(3)]);
        assert_eq!(samples.errors, 3);

        // All well: one sample per acknowledged create, no error.
        let ledger = Ledger::of(&creates[..1], ["pg-recovery 0/1"].into_iter());
        assert_eq!(ledger.samples(&creates[..1]).errors, 0);
        assert_eq!(ledger.acknowledged, 1);
    }
}
