//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the
//! web pages' tests. Without them a test is skipped, unless `CI=true`, where it fails.
//!
//! Each [`Browser`] has a chromedriver, a Chromium and a profile of its own: tests run in
//! parallel. The paths, flags, capabilities and shutdown are `bench`'s page scenario's too
//! (`xtask::chromium`).
//!
//! Accessibility is checked with axe-core (`axe.min.js`, 4.14.1 from npm, MPL-2.0: see
//! `axe.LICENSE`; to update, `npm pack axe-core@4` and copy its `axe.min.js` and licences).

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, Command};
use xtask::chromium::{self, CHROMEDRIVER, CHROMIUM, ChromeCommand, Log};

use super::in_ci;

/// How long an element may take to appear (a CI machine is slow, and runs tests in parallel).
const WAIT: Duration = Duration::from_secs(20);

const AXE: &str = include_str!("axe.min.js");

/// The viewport a page is laid out in.
#[derive(Clone, Copy, Debug)]
pub enum Screen {
    /// 1280×900.
    Desktop,
    /// 390×844 as a phone's: the page's `<meta name="viewport">` is honoured (without it, the
    /// page is laid out 980 pixels wide, as phones do).
    Phone,
}

/// What `prefers-color-scheme` says.
#[derive(Clone, Copy, Debug)]
pub enum ColorScheme {
    Light,
    Dark,
}

/// A browser with one window. Dropping it ends Chromium and its chromedriver.
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A desktop browser in light mode. `None` when Chromium is not installed (and not
    /// required).
    pub async fn start() -> Option<Self> {
        Self::start_with(Screen::Desktop, ColorScheme::Light).await
    }

    pub async fn start_with(screen: Screen, scheme: ColorScheme) -> Option<Self> {
        if !chromium::installed() {
            assert!(
                !in_ci(),
                "{CHROMIUM} or {CHROMEDRIVER} is missing: in CI the browser tests must run \
                 (install Debian's chromium and chromium-driver, as .ci/run does)"
            );
            eprintln!(
                "SKIPPED: chromium not installed ({CHROMIUM} and {CHROMEDRIVER}, Debian's \
                 chromium and chromium-driver)"
            );
            return None;
        }
        let (driver, port) = start_driver().await;
        let profile = tempfile::tempdir().expect("temp dir");
        let (width, height, mobile) = match screen {
            Screen::Desktop => (1280, 900, false),
            Screen::Phone => (390, 844, true),
        };
        // The console's messages, for `console_errors`.
        let capabilities = chromium::capabilities(profile.path(), width, height, Log::Console);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver starts a Chromium session");
        let browser = Self {
            client,
            driver,
            port,
            _profile: profile,
        };
        // Headless Chromium keeps windows at least 500 pixels wide, and its viewport is shorter
        // than the window: the exact size, and the colour scheme, are emulated (for this tab,
        // across navigations).
        browser
            .cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
            )
            .await;
        let scheme = match scheme {
            ColorScheme::Light => "light",
            ColorScheme::Dark => "dark",
        };
        browser
            .cdp(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
            )
            .await;
        Some(browser)
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The first element matching `css`, once there is one (at most [`WAIT`]).
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(String::from);
                let page = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {url:?} after {WAIT:?} ({e}); the page:\n{page}")
            }
        }
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("element text")
    }

    /// The rendered text of the first element matching `css`, once it contains `needle` (at most
    /// [`WAIT`]): after a click that navigates, or while a script renders.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = None;
        while Instant::now() < deadline {
            // An element of the page being left goes stale: found again on the next round.
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                last = element.text().await.ok();
                if let Some(text) = last.as_ref().filter(|t| t.contains(needle)) {
                    return text.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{css} has no {needle:?} after {WAIT:?}; its text: {last:?}")
    }

    /// Clicks the first element matching `css`. A page that draws that element anew between
    /// finding and clicking it (a list redrawn on a live event) is given another try.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.wait_for(css).await.click().await {
                Ok(()) => return,
                Err(CmdError::Standard(e))
                    if e.error == ErrorStatus::StaleElementReference
                        && Instant::now() < deadline => {}
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// Forgets every cookie of the current page's site, as an expired session would.
    pub async fn delete_cookies(&self) {
        self.client
            .delete_all_cookies()
            .await
            .expect("delete cookies");
    }

    /// Types `text` into the input matching `css`, as keystrokes.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Sets a cookie of the current page's origin (WebDriver sets cookies only there: open a page
    /// of it first), host-only and with the other attributes of the service's session cookie.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        // Not fantoccini's `add_cookie`: it sends `"domain": null`, which chromedriver refuses.
        let cookie = json!({
            "name": name, "value": value, "path": "/", "httpOnly": true, "sameSite": "Strict",
        });
        let command = ChromeCommand {
            path: "cookie",
            body: json!({"cookie": cookie}),
        };
        self.command(command)
            .await
            .unwrap_or_else(|e| panic!("set cookie {name}: {e}"));
    }

    /// The viewport as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client.screenshot().await.expect("screenshot")
    }

    /// Runs `script` (a function body: `arguments` are `args`, `return` gives the result) in the
    /// page. WebDriver's scripts are not the page's: its Content-Security-Policy does not apply.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The console's errors since the last call (or the start): script errors, failed loads,
    /// Content-Security-Policy violations.
    pub async fn console_errors(&self) -> Vec<String> {
        let entries = self
            .command(ChromeCommand::log(Log::Console))
            .await
            .expect("the browser's log");
        entries
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Sends `name: value` with every request from now on, as a proxy in front of the service
    /// would add it.
    pub async fn send_header(&self, name: &str, value: &str) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {name: value}}),
        )
        .await;
    }

    /// Grants the current page's site a permission (`notifications`, say), as a person
    /// answering the browser's prompt would.
    pub async fn grant_permission(&self, permission: &str) {
        let url = self.client.current_url().await.expect("the current URL");
        self.cdp(
            "Browser.grantPermissions",
            json!({"origin": url.origin().ascii_serialization(), "permissions": [permission]}),
        )
        .await;
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.command(ChromeCommand::cdp(cmd, params))
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    /// A chromedriver command of the session that fantoccini has no method for.
    async fn command(&self, command: ChromeCommand) -> Result<Value, String> {
        self.client
            .issue_cmd(command)
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for Browser {
    /// chromedriver's `/shutdown` quits its Chromium, then itself: killed, it would leave
    /// Chromium running. Blocking here takes well under a second.
    fn drop(&mut self) {
        let driver = &mut self.driver;
        chromium::shut_down(self.port, || matches!(driver.try_wait(), Ok(None)));
        // Otherwise (or still running) the driver is killed on drop.
    }
}

/// Starts chromedriver on a port of its choosing, and returns it once it listens there.
async fn start_driver() -> (Child, u16) {
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let mut stdout = BufReader::new(driver.stdout.take().expect("piped")).lines();
    let port = tokio::time::timeout(WAIT, async {
        while let Some(line) = stdout.next_line().await.expect("chromedriver's output") {
            if let Some(port) = chromium::started_on_port(&line) {
                return port;
            }
        }
        panic!("chromedriver exited without saying its port")
    })
    .await
    .expect("chromedriver says its port");
    // What it says later goes with the test's output (and a full pipe would block it).
    forward(stdout);
    forward(BufReader::new(driver.stderr.take().expect("piped")).lines());
    (driver, port)
}

fn forward(mut lines: Lines<impl AsyncBufRead + Unpin + Send + 'static>) {
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("chromedriver: {line}");
        }
    });
}

/// axe-core's violations on the current page: each with its rule's `id`, `impact`, `help` and
/// `helpUrl`, and the CSS selector (`target`) and `summary` of each offending node.
pub async fn axe_violations(browser: &Browser) -> Vec<Value> {
    // Injected as WebDriver's script, which the page's `script-src` does not restrict.
    browser.execute(AXE, vec![]).await;
    let result = browser
        .client
        .execute_async(
            r"const done = arguments[arguments.length - 1];
            axe.run(document).then(
              (r) => done(r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({target: n.target, summary: n.failureSummary})),
              }))),
              (e) => done({error: String(e)}),
            );",
            vec![],
        )
        .await
        .expect("axe runs");
    match result {
        Value::Array(violations) => violations,
        other => panic!("axe failed: {other}"),
    }
}
