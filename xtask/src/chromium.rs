//! A headless Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver`, as the
//! backend's browser tests (`crates/notifications-backend/tests/api/support/browser.rs`) and
//! `bench`'s page scenario (`src/bench/browser.rs`) start them, with the same flags. What is here
//! does not depend on how chromedriver is run (a tokio process there, a std one here) nor on how
//! a failure is told (a panic there, an error here).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use hyper::Method;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether [`CHROMIUM`] and [`CHROMEDRIVER`] are both there.
pub fn installed() -> bool {
    [CHROMIUM, CHROMEDRIVER]
        .iter()
        .all(|program| Path::new(program).exists())
}

/// What chromedriver started with `--port=0` prints once it listens: `Some(port)` for that line.
pub fn started_on_port(line: &str) -> Option<u16> {
    line.strip_prefix("ChromeDriver was started successfully on port ")
        .and_then(|rest| rest.trim_end_matches('.').parse().ok())
}

/// Which of Chromium's logs chromedriver keeps, to be read with [`ChromeCommand::log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Log {
    /// The console's messages (`"browser"`).
    Console,
    /// The DevTools network events of every request (`"performance"`): what each one received.
    Network,
}

/// The capabilities of a new session: a window of `width`×`height` pixels, with its profile in
/// `profile` (a fresh directory per browser, so that browsers can run side by side), keeping
/// `log`.
pub fn capabilities(profile: &Path, width: u32, height: u32, log: Log) -> Capabilities {
    let mut args = [
        "--headless=new",
        // Root in a container: Chromium's sandbox needs user namespaces it may not have.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // A container's /dev/shm is often 64 MB, too small for Chromium.
        "--disable-dev-shm-usage",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push(format!("--window-size={width},{height}"));
    let mut options = json!({"binary": CHROMIUM, "args": args});
    let logging = match log {
        Log::Console => json!({"browser": "ALL"}),
        Log::Network => {
            options["perfLoggingPrefs"] = json!({"enableNetwork": true, "enablePage": false});
            json!({"performance": "ALL"})
        }
    };
    let mut capabilities = Capabilities::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities.insert("goog:loggingPrefs".into(), logging);
    capabilities
}

/// Asks the chromedriver listening on `port` to shut down: its `/shutdown` quits its Chromium,
/// then itself (killed, it would leave Chromium running). Then waits, at most 5 s, while
/// `running()` says it still runs. Whether it has stopped: if not, the caller kills it.
pub fn shut_down(port: u16, mut running: impl FnMut() -> bool) -> bool {
    let asked = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream
            .write_all(b"GET /shutdown HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        stream.read_to_end(&mut Vec::new())
    });
    if asked.is_ok() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while running() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
    !running()
}

/// A POST to `/session/{id}/{path}` with `body`: chromedriver's commands fantoccini has no
/// method for, sent with `Client::issue_cmd`.
#[derive(Debug)]
pub struct ChromeCommand {
    pub path: &'static str,
    pub body: Value,
}

impl ChromeCommand {
    /// A Chrome DevTools Protocol command (for the session's tab, across navigations).
    pub fn cdp(cmd: &str, params: Value) -> Self {
        Self {
            path: "goog/cdp/execute",
            body: json!({"cmd": cmd, "params": params}),
        }
    }

    /// The entries of `log` since the last call (or the start of the session).
    pub fn log(log: Log) -> Self {
        let kind = match log {
            Log::Console => "browser",
            Log::Network => "performance",
        };
        Self {
            path: "se/log",
            body: json!({"type": kind}),
        }
    }
}

impl WebDriverCompatibleCommand for ChromeCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        // Only sent in a session: without one the path is chromedriver's 404.
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_says_the_port() {
        assert_eq!(
            started_on_port("ChromeDriver was started successfully on port 41235."),
            Some(41235)
        );
        assert_eq!(
            started_on_port("Starting ChromeDriver 120.0 on port 0"),
            None
        );
    }

    #[test]
    fn capabilities_carry_the_profile_the_size_and_the_log() {
        let network = capabilities(Path::new("/tmp/profile"), 390, 844, Log::Network);
        let options = &network["goog:chromeOptions"];
        assert_eq!(options["binary"], CHROMIUM);
        let args = options["args"].as_array().unwrap();
        assert!(args.contains(&json!("--user-data-dir=/tmp/profile")));
        assert!(args.contains(&json!("--window-size=390,844")));
        assert_eq!(options["perfLoggingPrefs"]["enableNetwork"], true);
        assert_eq!(network["goog:loggingPrefs"], json!({"performance": "ALL"}));

        let console = capabilities(Path::new("/tmp/profile"), 1280, 900, Log::Console);
        assert_eq!(console["goog:chromeOptions"].get("perfLoggingPrefs"), None);
        assert_eq!(console["goog:loggingPrefs"], json!({"browser": "ALL"}));
    }
}
