//! `web-inbox-10k`: the web inbox in a real browser (headless Chromium through chromedriver,
//! see `browser.rs`), for one user with 10,000 unread notifications (`read-all-10k`'s inbox):
//! how long a navigation to `/inbox` takes to show the first list, and what a first visit
//! transfers. The issue's budgets: the first load at most 150 KB compressed, the inbox shown
//! within 300 ms of navigation.
//!
//! The user signs in as a person does, through a link of `notifications-backend token --link`
//! (run with the server's own configuration and data directory) and its page's button, in a
//! fresh profile: the inbox the sign-in leads to is the first load, whose every request's bytes
//! are counted from the browser's network events (headers included, the favicon too). Then
//! each measured load is a fresh navigation (`about:blank` first), timed by the page itself:
//! the script marks `inbox-shown` once it has drawn the first list, and the mark's `startTime`
//! is milliseconds since the navigation started. `first-load` times them with the browser's
//! cache off (every file fetched), `repeat` with it on (the page's files are `immutable`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::browser::{self, Browser};
use super::read_all::{ReadAll, own_and_broadcasts};
use super::report::{Measured, PageBytes, Samples, percentile};
use super::scenario::{Ctx, Scenario};
use super::throughput::{CREATE_PATH, READER};
use super::tokens::{self, user_token};
use crate::interrupt;

/// The issue's budgets.
const SHOWN_BUDGET: Duration = Duration::from_millis(300);
const FIRST_LOAD_BUDGET_BYTES: u64 = 150_000;
/// "New notifications ... appear within a second without a reload".
const LIVE_BUDGET: Duration = Duration::from_secs(1);

/// Loads before the measured ones, in each phase.
const WARM_UPS: usize = 2;
/// Measured loads in each phase.
const LOADS: usize = 20;
const LOADS_QUICK: usize = 3;

/// Run in the page: waits (at most its first argument, in ms) until the list shows a
/// notification titled as its second argument, and gives the time it was drawn, in ms since the
/// epoch (the bench runs on the same machine, with the same clock).
const DRAWN: &str = r"
const [timeout, title, done] = arguments;
const list = document.getElementById('list');
const drawn = () => [...list.querySelectorAll('h3')].some((h) => h.textContent === title);
const observer = new MutationObserver(() => {
  if (drawn()) {
    observer.disconnect();
    done({at: performance.timeOrigin + performance.now()});
  }
});
observer.observe(list, {childList: true, subtree: true});
setTimeout(() => {
  observer.disconnect();
  done({error: `${title} not drawn within ${timeout} ms`});
}, timeout);
";

/// How long before its send the page is told which notification to wait for: the script must
/// be running in the page when the send is made.
const WATCH_AHEAD: Duration = Duration::from_millis(100);

/// What the inbox's first list holds (the script's `PAGE_SIZE`).
const PAGE_SIZE: u64 = 20;

/// The event streams the reader may hold open: more than the scenario's loads (see `prepare`).
const STREAMS_PER_USER: usize = 1000;

const SIGN_IN_BUTTON: &str = "form[action='/signin'] button";
const SESSION_COOKIE: &str = "notifications_session";

/// How long one load may take to show the inbox before it counts as failed.
const LOAD_TIMEOUT_MS: u64 = 15_000;

/// A load's requests are all in once none is pending (but the event stream, which stays open)
/// and none has started or finished for this long: the favicon is asked for after the page's
/// own requests.
const NETWORK_QUIET: Duration = Duration::from_secs(1);

/// Run in the page after a navigation: waits (at most its first argument, in ms) for the
/// `inbox-shown` mark and for the answers of the three API requests the page makes as it opens
/// (the first list, the counts, and the topics of the filters, which may come after the list is
/// shown), then gives the mark's time, the items listed, the times of the steps before it
/// (`Load::steps`) and the resource timing of the document and of each request.
const MEASURE: &str = r"
const [timeout, done] = arguments;
const deadline = performance.now() + timeout;
const path = (entry) => new URL(entry.name).pathname;
const opened = ['/notifications', '/status', '/topics'].map((p) => '/api/notifications' + p);
(function check() {
  const shown = performance.getEntriesByName('inbox-shown')[0];
  const resources = performance.getEntriesByType('resource');
  if (shown && opened.every((p) => resources.some((r) => path(r) === p))) {
    const nav = performance.getEntriesByType('navigation')[0];
    const list = resources.find((r) => path(r) === opened[0]);
    done({
      shown: shown.startTime,
      items: document.querySelectorAll('#list > li').length,
      steps: [nav.responseStart, nav.responseEnd, nav.domContentLoadedEventStart,
        list.startTime, list.requestStart, list.responseStart, list.responseEnd],
      entries: performance.getEntriesByType('navigation').concat(resources).map((e) => ({
        url: e.name, kind: e.initiatorType, transfer: e.transferSize,
      })),
    });
  } else if (performance.now() > deadline) {
    done({error: `${location.href}: no inbox-shown mark or not every API answer within ` +
      `${timeout} ms; mark: ${Boolean(shown)}, requests: ${resources.map(path).join(' ')}`});
  } else {
    setTimeout(check, 10);
  }
})();
";

pub struct WebInbox;

impl Scenario for WebInbox {
    fn name(&self) -> &'static str {
        "web-inbox-10k"
    }

    fn about(&self) -> &'static str {
        "the web inbox in headless Chromium for one user with read-all-10k's 10,000 unread \
         notifications (--quick: 1,000), signed in by a link: bytes of the first visit, and time \
         from navigation to the first list shown over 20 fresh navigations to /inbox (--quick: \
         3) with the browser's cache off (first-load), then 20 with it on (repeat); then 20 \
         notifications sent one by one to the open inbox, each timed from its POST to drawn \
         (live)"
    }

    fn missing(&self) -> Option<String> {
        browser::missing()
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        let mut config = tokens::config();
        // Each load opens the page's event stream, and the server notices that a page left
        // holds it no more only at its next heartbeat (every 15 s): at some ten loads a second,
        // the default cap of 32 per user would refuse the later loads' streams, which the page
        // answers by drawing its list again. A person does not open the inbox 32 times in 15 s.
        config["notifications"]["signals"] = json!({"maxConnectionsPerUser": STREAMS_PER_USER});
        Ok(config)
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let half = ReadAll::half(ctx.quick);
        let ids = ctx.rt.block_on(own_and_broadcasts(ctx, half))?;
        if let Some(cluster) = ctx.cluster {
            cluster.settle()?;
        }
        let status = ctx.get_json("/api/notifications/status", &user_token(READER)?)?;
        if status != json!({"unread": ids.len(), "read": 0}) {
            return Err(format!(
                "the reader should have {} unread notifications; status says {status}",
                ids.len()
            ));
        }
        let link = sign_in_link(ctx)?;
        let loads = if ctx.quick { LOADS_QUICK } else { LOADS };
        let results = ctx
            .rt
            .block_on(Box::pin(measure(ctx, &link, loads, ids.len() as u64)))?;
        report_budgets(&results);
        Ok(results)
    }
}

/// A one-time sign-in link for the reader, minted by the server's binary with the server's
/// configuration and data directory (so with its keys and its `backend.baseUrl`).
fn sign_in_link(ctx: &Ctx<'_>) -> Result<String, String> {
    let output = ctx
        .server_command()
        .args(["token", "--user", READER, "--link"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", ctx.binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let link = stdout.trim();
    if !output.status.success() || !link.starts_with(&format!("{}/signin?token=", ctx.base_url)) {
        return Err(format!(
            "`token --link` ({}) printed {link:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(link.to_owned())
}

/// Signs in (the first load), then measures `loads` navigations with the cache off, and as
/// many with it on.
async fn measure(
    ctx: &Ctx<'_>,
    link: &str,
    loads: usize,
    stored: u64,
) -> Result<Vec<Measured>, String> {
    let browser = Browser::start().await?;
    browser.goto(link).await?;
    browser.network_log().await?;
    browser.click(SIGN_IN_BUTTON).await?;
    // Signed in, the browser is sent to `/`, the inbox: a first visit, in a fresh profile.
    let shown = shown_after_sign_in(&browser).await?;
    let requests = settled_requests(&browser).await?;
    // The form's POST: the sign-in, not the inbox.
    let requests: Vec<Request> = requests
        .into_iter()
        .filter(|r| url_path(&r.url) != "/signin")
        .collect();
    eprintln!(
        "xtask: bench: web-inbox-10k: signed in; the inbox was shown {shown:.1} ms after the \
         sign-in's POST started the navigation (a fresh profile: nothing cached)"
    );
    log_requests("that first load", &requests);
    let mut first_visit = bytes_of(&requests);
    // The bodies of the page's own files, gzipped: what a compressing proxy would send.
    first_visit.page_gzip = gzipped_page(ctx, &browser, &requests).await;

    let url = format!("{}/inbox", ctx.base_url);
    browser.cdp("Network.enable", json!({})).await?;
    browser
        .cdp("Network.setCacheDisabled", json!({"cacheDisabled": true}))
        .await?;
    let mut first_load = phase(&browser, &url, loads, stored, Cache::Off).await?;
    first_load.page = Some(first_visit);

    browser
        .cdp("Network.setCacheDisabled", json!({"cacheDisabled": false}))
        .await?;
    let mut repeat = phase(&browser, &url, loads, stored, Cache::On).await?;
    // What a later visit receives: one more load, counted as the first one was.
    load(&browser, &url).await?.check(stored, Cache::On)?;
    let requests = settled_requests(&browser).await?;
    log_requests("a later load (cache on)", &requests);
    repeat.page = Some(bytes_of(&requests));
    let live = live(ctx, &browser, loads).await?;
    Ok(vec![
        Measured::new("web-inbox-10k/first-load", first_load),
        Measured::new("web-inbox-10k/repeat", repeat),
        Measured::new("web-inbox-10k/live", live),
    ])
}

/// With the inbox open, `sends` notifications sent to the reader one after another: the time
/// from just before each send's POST to its notification drawn in the list, over the page's
/// event stream, without a reload.
async fn live(ctx: &Ctx<'_>, browser: &Browser, sends: usize) -> Result<Samples, String> {
    let deadline = Instant::now() + Duration::from_millis(LOAD_TIMEOUT_MS);
    while browser
        .execute("return document.getElementById('live').textContent")
        .await?
        != json!("Live")
    {
        if Instant::now() > deadline {
            return Err(format!(
                "the page's event stream is not live after {LOAD_TIMEOUT_MS} ms"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut samples = Samples::default();
    let start = Instant::now();
    for n in 0..sends {
        interrupt::check()?;
        // Drained, so that chromedriver does not keep every request of the phase.
        browser.network_log().await?;
        let title = format!("live {n}");
        let body = json!({
            "recipients": {"type": "entity", "entityRef": READER},
            "payload": {"title": title},
        });
        let (drawn, sent) = tokio::join!(
            browser.execute_async(DRAWN, vec![json!(LOAD_TIMEOUT_MS), json!(title)]),
            async {
                tokio::time::sleep(WATCH_AHEAD).await;
                let sent = epoch_ms();
                match ctx.post_as_sender_async(CREATE_PATH, &body).await {
                    Ok(answer) if answer.status == 200 => Ok(sent),
                    Ok(answer) => Err(format!("the send answered {}", answer.status)),
                    Err(e) => Err(e),
                }
            }
        );
        let latency = sent.and_then(|sent| {
            let drawn = drawn?;
            drawn["at"]
                .as_f64()
                .map(|at| Duration::from_secs_f64((at - sent).max(0.0) / 1000.0))
                .ok_or_else(|| format!("{title}: {drawn}"))
        });
        match latency {
            Ok(latency) => samples.success(latency),
            Err(e) => samples.error(e),
        }
    }
    samples.elapsed = start.elapsed();
    Ok(samples)
}

/// Milliseconds since the epoch, as the page's `performance.timeOrigin + performance.now()`.
fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

/// Whether the browser's cache is used.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cache {
    /// Every file fetched, as on a first visit.
    Off,
    /// The page's files from the cache (they are marked `immutable`), as on any later visit.
    On,
}

/// Warms up, then measures `loads` navigations to `url`: the time the inbox took to show.
async fn phase(
    browser: &Browser,
    url: &str,
    loads: usize,
    stored: u64,
    cache: Cache,
) -> Result<Samples, String> {
    for _ in 0..WARM_UPS {
        interrupt::check()?;
        let load = load(browser, url).await;
        load.and_then(|load| load.check(stored, cache))
            .map_err(|e| format!("a warm-up load (cache {cache:?}) failed: {e}"))?;
    }
    let mut samples = Samples::default();
    let mut steps = Vec::new();
    let start = Instant::now();
    for _ in 0..loads {
        interrupt::check()?;
        let measured = load(browser, url).await;
        match measured.and_then(|load| Ok((load.check(stored, cache)?, load.steps))) {
            Ok((shown, load_steps)) => {
                samples.success(shown);
                steps.push(load_steps);
            }
            Err(e) => samples.error(e),
        }
    }
    samples.elapsed = start.elapsed();
    if let Some(median) = median_steps(&steps) {
        let [first_byte, document, ready, asked, sent, answer, answered] =
            median.map(|ms| format!("{ms:.1}"));
        eprintln!(
            "xtask: bench: web-inbox-10k, cache {cache:?}: the median load's steps, in ms since \
             the navigation started: the document's first byte {first_byte}, its last \
             {document}, DOMContentLoaded {ready}; the list's fetch called {asked}, sent \
             {sent}, its answer's first byte {answer}, its last {answered}; then drawn \
             (median inbox-shown {:.1})",
            percentile(&sorted(&samples.latencies), 50.0)
                .unwrap_or_default()
                .as_secs_f64()
                * 1000.0
        );
    }
    Ok(samples)
}

fn sorted(latencies: &[Duration]) -> Vec<Duration> {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted
}

/// The median of each step of `steps` (each its own median: not one load's).
fn median_steps(steps: &[[f64; STEPS]]) -> Option<[f64; STEPS]> {
    if steps.is_empty() {
        return None;
    }
    Some(std::array::from_fn(|i| {
        let mut times: Vec<f64> = steps.iter().map(|s| s[i]).collect();
        times.sort_unstable_by(f64::total_cmp);
        times[(times.len() - 1) / 2]
    }))
}

/// One fresh navigation to `url`, measured. The network events before it are dropped (they
/// would pile up in chromedriver).
async fn load(browser: &Browser, url: &str) -> Result<Load, String> {
    browser.goto("about:blank").await?;
    browser.network_log().await?;
    browser.goto(url).await?;
    let value = browser
        .execute_async(MEASURE, vec![json!(LOAD_TIMEOUT_MS)])
        .await?;
    Load::parse(value)
}

/// Waits for the inbox the sign-in redirected to; the time it was shown, in ms.
async fn shown_after_sign_in(browser: &Browser) -> Result<f64, String> {
    let deadline = Instant::now() + Duration::from_millis(LOAD_TIMEOUT_MS);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        // Until the form's page is left, a script may run there or fail: asked again.
        if let Ok(value) = browser
            .execute(
                "return location.pathname === '/' ? \
                 (performance.getEntriesByName('inbox-shown')[0] || {}).startTime : null",
            )
            .await
        {
            if let Some(ms) = value.as_f64() {
                return Ok(ms);
            }
            last = value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = browser
        .execute("return location.href + ': ' + document.body.innerText.slice(0, 300)")
        .await
        .unwrap_or_default();
    Err(format!(
        "signing in did not lead to the inbox within {LOAD_TIMEOUT_MS} ms (last {last}): {page}"
    ))
}

/// The requests since the last `network_log`, once they are all in (see `NETWORK_QUIET`).
async fn settled_requests(browser: &Browser) -> Result<Vec<Request>, String> {
    let deadline = Instant::now() + Duration::from_millis(LOAD_TIMEOUT_MS);
    let mut log = Vec::new();
    let mut seen = (0, 0);
    let mut quiet_since = Instant::now();
    loop {
        log.extend(browser.network_log().await?);
        let requests = requests(&log);
        let pending = requests
            .iter()
            .filter(|r| r.bytes.is_none() && r.kind != "EventSource")
            .count();
        let now = (requests.len(), pending);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        } else if pending == 0 && quiet_since.elapsed() >= NETWORK_QUIET {
            return Ok(requests);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{pending} requests still pending after {LOAD_TIMEOUT_MS} ms: {requests:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn log_requests(load: &str, requests: &[Request]) {
    eprintln!("xtask: bench: web-inbox-10k: what {load} received (bytes, headers included):");
    for request in requests {
        let bytes = request
            .bytes
            .map_or_else(|| "open".to_owned(), |b| b.to_string());
        eprintln!(
            "xtask: bench:   {bytes:>7}  {} ({})",
            request.url, request.kind
        );
    }
}

/// One request of a page, from the browser's network events.
#[derive(Debug, PartialEq)]
struct Request {
    /// The last URL asked for (a redirect's target).
    url: String,
    /// `Document`, `Stylesheet`, `Script`, `Fetch`, `EventSource`, `Other` (the favicon), …
    kind: String,
    /// All it received, headers included (0 from the cache); `None` while it is open.
    bytes: Option<u64>,
}

/// The HTTP requests of chromedriver's performance log `log`, in the order they were made:
/// `Network.requestWillBeSent` names them (again on a redirect), `Network.loadingFinished`
/// says what each received (`encodedDataLength`), `Network.loadingFailed` ends one with nothing.
fn requests(log: &[Value]) -> Vec<Request> {
    let mut ids: Vec<String> = Vec::new();
    let mut requests: Vec<Request> = Vec::new();
    for entry in log {
        let Some(event) = entry["message"]
            .as_str()
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
        else {
            continue;
        };
        let event = &event["message"];
        let params = &event["params"];
        let Some(id) = params["requestId"].as_str() else {
            continue;
        };
        let known = ids.iter().position(|known| known == id);
        match (event["method"].as_str(), known) {
            (Some("Network.requestWillBeSent"), _) => {
                let url = params["request"]["url"].as_str().unwrap_or_default();
                if !url.starts_with("http") {
                    continue;
                }
                let request = Request {
                    url: url.to_owned(),
                    kind: params["type"].as_str().unwrap_or_default().to_owned(),
                    bytes: None,
                };
                match known.and_then(|i| requests.get_mut(i)) {
                    Some(redirected) => *redirected = request,
                    None => {
                        ids.push(id.to_owned());
                        requests.push(request);
                    }
                }
            }
            (Some("Network.loadingFinished"), Some(i)) => {
                if let Some(request) = requests.get_mut(i) {
                    let bytes = params["encodedDataLength"].as_f64().unwrap_or_default();
                    request.bytes = Some(bytes as u64);
                }
            }
            (Some("Network.loadingFailed"), Some(i)) => {
                if let Some(request) = requests.get_mut(i) {
                    request.bytes = Some(0);
                }
            }
            _ => {}
        }
    }
    requests
}

/// What `requests` received: the page's own files, and the API's answers (finished ones: the
/// event stream stays open).
fn bytes_of(requests: &[Request]) -> PageBytes {
    let mut bytes = PageBytes::default();
    for request in requests {
        let received = request.bytes.unwrap_or_default();
        if is_data(&request.url) {
            bytes.data += received;
        } else {
            bytes.page += received;
        }
    }
    bytes
}

/// The API's answers (and the notifications' bodies the page fetches when one is opened) are
/// data; the rest is the page.
fn is_data(url: &str) -> bool {
    let path = url_path(url);
    path.starts_with("/api/") || path.starts_with("/inbox/body/")
}

fn url_path(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| url.to_owned(), |u| u.path().to_owned())
}

/// The gzipped size of each of the page's own files among `requests` (fetched again, with the
/// browser's session cookie, for their exact bodies), summed; `None`, said in the log, where
/// that fails (no `gzip` program, say).
async fn gzipped_page(ctx: &Ctx<'_>, browser: &Browser, requests: &[Request]) -> Option<u64> {
    let result = async {
        let cookie = browser.cookie(SESSION_COOKIE).await?;
        let mut total = 0;
        for file in requests
            .iter()
            .map(|r| r.url.as_str())
            .filter(|u| !is_data(u))
        {
            let response = ctx
                .client
                .get(file)
                .header("cookie", format!("{SESSION_COOKIE}={cookie}"))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("GET {file}: {e}"))?;
            let body = response
                .bytes()
                .await
                .map_err(|e| format!("GET {file}: {e}"))?;
            total += gzip_size(&body)?;
        }
        Ok::<_, String>(total)
    };
    result
        .await
        .inspect_err(|e| {
            eprintln!("xtask: bench: web-inbox-10k: the page's files not gzipped: {e}");
        })
        .ok()
}

/// The length of `body` through `gzip -c -n` (level 6, its default, as common servers use).
fn gzip_size(body: &[u8]) -> Result<u64, String> {
    let mut gzip = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("could not run gzip: {e}"))?;
    let mut stdin = gzip.stdin.take().ok_or("gzip's stdin is not piped")?;
    let body = body.to_vec();
    // Written from a thread of its own: gzip may fill its output before it has read its input.
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = gzip.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
    let written = writer.join().map_err(|_| "gzip's writer panicked")?;
    if !output.status.success() {
        return Err(format!("gzip failed ({})", output.status));
    }
    written.map_err(|e| format!("gzip's input: {e}"))?;
    Ok(output.stdout.len() as u64)
}

/// The steps of a load `MEASURE` times (`Load::steps`).
const STEPS: usize = 7;

/// What one load of the page measured.
#[derive(Debug, Deserialize, PartialEq)]
struct Load {
    /// The `inbox-shown` mark: ms since the navigation started.
    shown: f64,
    /// The items of the list shown.
    items: u64,
    /// What came before the mark, in ms since the navigation started: the document's first
    /// and last byte, `DOMContentLoaded` (the deferred script has run), the list's `fetch`
    /// called, its request sent, its answer's first and last byte.
    steps: [f64; STEPS],
    /// The resource timing of the document and of every request the page made, in order.
    entries: Vec<Entry>,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Entry {
    url: String,
    /// `initiatorType`: `navigation`, `script`, `link`, `fetch`, …
    kind: String,
    /// `transferSize`: 0 from the cache (Chromium counts the body and a flat 300 bytes).
    transfer: u64,
}

impl Load {
    /// `MEASURE`'s answer.
    fn parse(value: Value) -> Result<Load, String> {
        if let Some(error) = value.get("error") {
            return Err(error.as_str().unwrap_or_default().to_owned());
        }
        serde_json::from_value(value).map_err(|e| format!("the page's measurement: {e}"))
    }

    /// The time the inbox took to show, if it showed what it should: a full first page and, with
    /// the cache off, every file of the page fetched (without, the cache answered).
    fn check(&self, stored: u64, cache: Cache) -> Result<Duration, String> {
        let expected = stored.min(PAGE_SIZE);
        if self.items != expected {
            return Err(format!(
                "the list shows {} items, not {expected}",
                self.items
            ));
        }
        if cache == Cache::Off
            && let Some(cached) = self.entries.iter().find(|e| e.transfer == 0)
        {
            return Err(format!("{} came from the cache, which is off", cached.url));
        }
        if !self.shown.is_finite() || self.shown < 0.0 {
            return Err(format!("inbox-shown at {} ms", self.shown));
        }
        Ok(Duration::from_secs_f64(self.shown / 1000.0))
    }
}

/// Says in the log whether the issue's budgets are met.
fn report_budgets(results: &[Measured]) {
    for result in results {
        let sorted = sorted(&result.samples.latencies);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (what, budget) = if result.name.ends_with("/live") {
            ("a new notification drawn", LIVE_BUDGET)
        } else {
            ("inbox shown", SHOWN_BUDGET)
        };
        if let (Some(p50), Some(p95), Some(&max)) = (
            percentile(&sorted, 50.0),
            percentile(&sorted, 95.0),
            sorted.last(),
        ) {
            eprintln!(
                "xtask: bench: {}: {what} p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms: {} the {} \
                 ms budget",
                result.name,
                ms(p50),
                ms(p95),
                ms(max),
                verdict(max <= budget),
                budget.as_millis()
            );
        }
        let Some(bytes) = result.samples.page else {
            continue;
        };
        let gzip = bytes
            .page_gzip
            .map_or_else(String::new, |g| format!(" ({g} gzipped)"));
        let budget = if result.name.ends_with("/first-load") {
            format!(
                ": {} the {FIRST_LOAD_BUDGET_BYTES}-byte budget (sent uncompressed: an upper \
                 bound of the compressed size)",
                verdict(bytes.page + bytes.data <= FIRST_LOAD_BUDGET_BYTES)
            )
        } else {
            String::new()
        };
        eprintln!(
            "xtask: bench: {}: {} bytes received: the page's files {}{gzip}, the API's answers \
             {}{budget}",
            result.name,
            bytes.page + bytes.data,
            bytes.page,
            bytes.data
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "within" } else { "OVER" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured() -> Value {
        json!({
            "shown": 41.5,
            "items": 20,
            "steps": [2.5, 3.0, 20.5, 21.0, 21.5, 26.0, 27.5],
            "entries": [
                {"url": "http://127.0.0.1:9/inbox", "kind": "navigation", "transfer": 3800},
                {"url": "http://127.0.0.1:9/assets/inbox.js?v=1", "kind": "script",
                 "transfer": 18600},
                {"url": "http://127.0.0.1:9/api/notifications/status", "kind": "fetch",
                 "transfer": 324},
            ],
        })
    }

    #[test]
    fn a_load_is_read_from_the_pages_answer() {
        let load = Load::parse(measured()).unwrap();
        assert_eq!(load.shown, 41.5);
        assert_eq!(load.items, 20);
        assert_eq!(load.steps, [2.5, 3.0, 20.5, 21.0, 21.5, 26.0, 27.5]);
        assert_eq!(load.entries.len(), 3);
        assert_eq!(load.entries[1].kind, "script");
        let timeout = json!({"error": "http://127.0.0.1:9/inbox: no inbox-shown mark"});
        assert!(
            Load::parse(timeout)
                .unwrap_err()
                .contains("no inbox-shown mark")
        );
        assert!(Load::parse(json!({"shown": 1})).is_err());
    }

    #[test]
    fn a_load_counts_only_if_the_inbox_showed_what_it_should() {
        let load = Load::parse(measured()).unwrap();
        assert_eq!(
            load.check(10_000, Cache::Off),
            Ok(Duration::from_secs_f64(0.0415))
        );
        // An inbox of 5 shows 5.
        assert!(
            load.check(5, Cache::On)
                .unwrap_err()
                .contains("20 items, not 5")
        );
        let mut cached = Load::parse(measured()).unwrap();
        cached.entries[1].transfer = 0;
        assert!(cached.check(10_000, Cache::On).is_ok());
        assert_eq!(
            cached.check(10_000, Cache::Off),
            Err("http://127.0.0.1:9/assets/inbox.js?v=1 came from the cache, which is off".into())
        );
    }

    /// An entry of chromedriver's performance log.
    fn event(method: &str, params: Value) -> Value {
        let message = json!({"message": {"method": method, "params": params}, "webview": "1"});
        json!({"level": "INFO", "message": message.to_string(), "timestamp": 1})
    }

    fn sent(id: &str, url: &str, kind: &str) -> Value {
        event(
            "Network.requestWillBeSent",
            json!({"requestId": id, "request": {"url": url, "method": "GET"}, "type": kind}),
        )
    }

    fn finished(id: &str, bytes: f64) -> Value {
        event(
            "Network.loadingFinished",
            json!({"requestId": id, "encodedDataLength": bytes}),
        )
    }

    #[test]
    fn requests_are_read_from_the_network_events() {
        let base = "http://127.0.0.1:9";
        let log = [
            sent("1", &format!("{base}/signin"), "Document"),
            // The redirect after the sign-in: the same request, now for `/`.
            sent("1", &format!("{base}/"), "Document"),
            sent("2", &format!("{base}/assets/inbox.js?v=1"), "Script"),
            event(
                "Network.dataReceived",
                json!({"requestId": "2", "dataLength": 100}),
            ),
            finished("2", 19618.0),
            sent("3", "chrome://new-tab-page/app.js", "Script"),
            finished("3", 70000.0),
            sent("4", &format!("{base}/api/notifications/status"), "Fetch"),
            sent(
                "5",
                &format!("{base}/api/notifications/stream"),
                "EventSource",
            ),
            finished("1", 3993.0),
            finished("4", 240.0),
            sent("6", &format!("{base}/assets/icon.svg?v=1"), "Other"),
            event("Network.loadingFailed", json!({"requestId": "6"})),
            json!({"message": "not JSON"}),
        ];
        let requests = requests(&log);
        let seen: Vec<(&str, &str, Option<u64>)> = requests
            .iter()
            .map(|r| (r.url.as_str(), r.kind.as_str(), r.bytes))
            .collect();
        assert_eq!(
            seen,
            [
                ("http://127.0.0.1:9/", "Document", Some(3993)),
                (
                    "http://127.0.0.1:9/assets/inbox.js?v=1",
                    "Script",
                    Some(19618)
                ),
                (
                    "http://127.0.0.1:9/api/notifications/status",
                    "Fetch",
                    Some(240)
                ),
                (
                    "http://127.0.0.1:9/api/notifications/stream",
                    "EventSource",
                    None
                ),
                ("http://127.0.0.1:9/assets/icon.svg?v=1", "Other", Some(0)),
            ]
        );
        assert_eq!(
            bytes_of(&requests),
            PageBytes {
                page: 3993 + 19618,
                page_gzip: None,
                data: 240,
            }
        );
    }

    #[test]
    fn each_step_has_its_median() {
        assert_eq!(median_steps(&[]), None);
        let steps = [
            [1.0, 2.0, 30.0, 31.0, 32.0, 39.0, 40.0],
            [3.0, 4.0, 10.0, 11.0, 12.0, 19.0, 20.0],
            [2.0, 9.0, 20.0, 21.0, 22.0, 29.0, 30.0],
            [9.0, 9.0, 90.0, 91.0, 92.0, 98.0, 99.0],
        ];
        // Of four, the lower middle one.
        assert_eq!(
            median_steps(&steps),
            Some([2.0, 4.0, 20.0, 21.0, 22.0, 29.0, 30.0])
        );
    }

    #[test]
    fn data_is_the_apis_answers() {
        assert!(is_data("http://127.0.0.1:9/api/notifications/status"));
        assert!(is_data("http://127.0.0.1:9/inbox/body/abc"));
        assert!(!is_data("http://127.0.0.1:9/inbox"));
        assert!(!is_data("http://127.0.0.1:9/inbox?view=all"));
        assert!(!is_data("http://127.0.0.1:9/assets/icon.svg?v=1"));
        assert_eq!(url_path("http://127.0.0.1:9/signin?token=x"), "/signin");
    }

    #[test]
    fn gzip_sizes_are_measured() {
        let Ok(size) = gzip_size(&b"notification ".repeat(1000)) else {
            return; // No gzip here: the scenario says so and goes on.
        };
        assert!(size > 18 && size < 200, "{size}");
    }
}
