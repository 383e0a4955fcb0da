//! A headless Chromium driven over WebDriver, for the page scenarios: Debian's `chromium` and
//! `chromium-driver`, started as the backend's browser tests start them (the paths, flags,
//! capabilities and shutdown they share are in [`crate::chromium`]). Each [`Browser`] has a
//! chromedriver, a Chromium and a fresh profile of its own.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;

use crate::chromium::{self, CHROMEDRIVER, CHROMIUM, ChromeCommand, Log};

/// How long chromedriver may take to start, and an element to appear.
const WAIT: Duration = Duration::from_secs(20);

/// What this machine lacks to run a browser; `None`: nothing.
pub fn missing() -> Option<String> {
    (!chromium::installed()).then(|| {
        format!(
            "{CHROMIUM} or {CHROMEDRIVER} is missing (Debian's chromium and chromium-driver, as \
             .ci/run installs them)"
        )
    })
}

/// A browser with one window, 1280×900. Dropping it ends Chromium and its chromedriver.
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Result<Browser, String> {
        let (mut driver, port) = start_driver()?;
        let profile = tempfile::Builder::new()
            .prefix("notifications-bench-chromium-")
            .tempdir()
            .map_err(|e| format!("could not create a temporary directory: {e}"))?;
        // The DevTools network events of every request (`network_log`): what each one received.
        let capabilities = chromium::capabilities(profile.path(), 1280, 900, Log::Network);
        let client =
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => client,
                Err(e) => {
                    stop_driver(&mut driver, port);
                    return Err(format!("chromedriver could not start Chromium: {e}"));
                }
            };
        Ok(Browser {
            client,
            driver,
            port,
            _profile: profile,
        })
    }

    /// Opens `url` and waits for its `load` event.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.client
            .goto(url)
            .await
            .map_err(|e| format!("open {url}: {e}"))
    }

    /// Clicks the first element matching `css`, once there is one (at most [`WAIT`]).
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let element = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("no {css} after {WAIT:?}: {e}"))?;
        element
            .click()
            .await
            .map_err(|e| format!("click {css}: {e}"))
    }

    /// Runs `script` (a function body: `return` gives the result) in the page.
    pub async fn execute(&self, script: &str) -> Result<Value, String> {
        self.client
            .execute(script, vec![])
            .await
            .map_err(|e| format!("script failed: {e}"))
    }

    /// Runs `script` in the page with `args`; it gives its result by calling its last argument.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.client
            .execute_async(script, args)
            .await
            .map_err(|e| format!("script failed: {e}"))
    }

    /// The value of the cookie `name` of the current page.
    pub async fn cookie(&self, name: &str) -> Result<String, String> {
        self.client
            .get_named_cookie(name)
            .await
            .map(|cookie| cookie.value().to_owned())
            .map_err(|e| format!("no cookie {name}: {e}"))
    }

    /// A Chrome DevTools Protocol command (for this tab, across navigations).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.client
            .issue_cmd(ChromeCommand::cdp(cmd, params))
            .await
            .map_err(|e| format!("{cmd}: {e}"))
    }

    /// The DevTools network events since the last call (or the start), as chromedriver's
    /// performance log has them: each `{"message": "<JSON of {message: {method, params}}>"}`.
    pub async fn network_log(&self) -> Result<Vec<Value>, String> {
        let log = self
            .client
            .issue_cmd(ChromeCommand::log(Log::Network))
            .await
            .map_err(|e| format!("the performance log: {e}"))?;
        match log {
            Value::Array(entries) => Ok(entries),
            other => Err(format!("the performance log is not a list: {other:.200}")),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        stop_driver(&mut self.driver, self.port);
    }
}

/// chromedriver's `/shutdown` quits its Chromium, then itself: killed, it would leave Chromium
/// running. Killed all the same if it is still running 5 s later.
fn stop_driver(driver: &mut Child, port: u16) {
    if !chromium::shut_down(port, || matches!(driver.try_wait(), Ok(None))) {
        eprintln!("xtask: bench: warning: chromedriver did not stop; killed");
        let _ = driver.kill();
    }
    let _ = driver.wait();
}

/// Starts chromedriver on a port of its choosing, and returns it once it listens there. Its
/// own process group: a Ctrl-C reaches xtask only, which then shuts the browser down.
fn start_driver() -> Result<(Child, u16), String> {
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start {CHROMEDRIVER}: {e}"))?;
    let (Some(stdout), Some(stderr)) = (driver.stdout.take(), driver.stderr.take()) else {
        let _ = driver.kill();
        let _ = driver.wait();
        return Err("chromedriver's output is not piped".to_owned());
    };
    let (port_tx, port_rx) = mpsc::channel();
    // What it says later goes to xtask's log (and a full pipe would block it).
    thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match (chromium::started_on_port(&line), port_tx.take()) {
                (Some(port), Some(tx)) => {
                    let _ = tx.send(port);
                }
                (_, tx) => {
                    port_tx = tx;
                    eprintln!("chromedriver: {line}");
                }
            }
        }
    });
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("chromedriver: {line}");
        }
    });
    match port_rx.recv_timeout(WAIT) {
        Ok(port) => Ok((driver, port)),
        Err(_) => {
            let _ = driver.kill();
            let _ = driver.wait();
            Err(format!("chromedriver did not say its port within {WAIT:?}"))
        }
    }
}
