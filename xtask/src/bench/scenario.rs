//! The scenarios. Each one says what it needs from the server (files and
//! configuration, prepared before the server starts) and then drives a
//! ready server through `Ctx`, returning what it measured: one result, or
//! one per shape of request it measured on that server. A new scenario is a
//! type implementing `Scenario`, listed in `all()`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::backend;
use super::import::Import;
use super::read_all::ReadAll;
use super::recovery::PgRecovery;
use super::report::{Measured, Samples};
use super::shapes::Shapes;
use super::signals::SignalsFanOut;
use super::throughput::{Create, Read};
use super::web_inbox::WebInbox;
use crate::interrupt;
use crate::pg::TempPostgres;

pub trait Scenario {
    /// The name for `--scenario`, and in `results.json` (alone, or before
    /// the shape of each result).
    fn name(&self) -> &'static str;

    /// One line for `cargo xtask bench --help` and the docs.
    fn about(&self) -> &'static str;

    /// Whether it measures PostgreSQL itself (and is skipped on SQLite).
    fn postgres_only(&self) -> bool {
        false
    }

    /// What this machine lacks to run it (a program it drives), checked before the server
    /// starts; `None`: nothing. Such a scenario is skipped, with this said, except in CI
    /// (`CI=true`), where that fails the run.
    fn missing(&self) -> Option<String> {
        None
    }

    /// Writes the files the scenario needs into `dir` and returns the
    /// configuration it adds (merged over the base configuration).
    fn prepare(&self, dir: &Path) -> Result<Value, String>;

    /// Runs against a ready server, warm-up included; the results in the
    /// order they were measured.
    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String>;
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(Create::broadcast()),
        Box::new(Create::for_one_user()),
        Box::new(Read::list_20_of_10k()),
        Box::new(Read::status_10k()),
        Box::new(Read::list_all_10k()),
        Box::new(Read::list_20_of_1m()),
        Box::new(Shapes::list_10k()),
        Box::new(Shapes::orders_1m()),
        Box::new(FanOut),
        Box::new(ReadAll),
        Box::new(WebInbox),
        Box::new(SignalsFanOut::default()),
        Box::new(Import),
        // Last: it crashes the cluster every PostgreSQL scenario shares.
        Box::new(PgRecovery),
    ]
}

/// What a scenario gets to talk to the server with.
pub struct Ctx<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub client: &'a reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The same address, for the load generator.
    pub addr: SocketAddr,
    /// A static `externalAccess` token: the create route accepts it.
    pub sender_token: String,
    /// `--quick`: fewer repetitions, to check the scenario works.
    pub quick: bool,
    /// The server's process id (for its memory and its limits).
    pub server_pid: u32,
    /// The PostgreSQL cluster the server's database is in; `None` on SQLite.
    pub cluster: Option<&'a TempPostgres>,
    /// The server's binary, for scenarios that run its other commands.
    pub binary: &'a Path,
    /// The server's configuration files and data directory, for those commands (see
    /// `server_command`).
    pub configs: &'a [PathBuf],
    pub data_dir: &'a Path,
}

/// A finished HTTP exchange.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// From sending the request to having read the whole body.
    pub latency: Duration,
}

impl Ctx<'_> {
    /// The server's binary with the server's own configuration and data directory: add one of
    /// its commands (`token`, …) and run it.
    pub fn server_command(&self) -> Command {
        backend::command(self.binary, self.configs, self.data_dir)
    }

    /// POSTs `body` as the sender and reads the whole answer.
    pub fn post_as_sender(&self, path: &str, body: &Value) -> Result<Answer, String> {
        self.rt.block_on(self.post_as_sender_async(path, body))
    }

    /// GETs `path` with `token` and parses the 200 answer.
    pub fn get_json(&self, path: &str, token: &str) -> Result<Value, String> {
        let request = self.client.get(format!("{}{path}", self.base_url));
        self.json_answer(&format!("GET {path}"), request.bearer_auth(token))
    }

    /// POSTs `body` with `token` and parses the 200 answer.
    pub fn post_json(&self, path: &str, token: &str, body: &Value) -> Result<Value, String> {
        let request = self.client.post(format!("{}{path}", self.base_url));
        self.json_answer(
            &format!("POST {path}"),
            request.bearer_auth(token).json(body),
        )
    }

    /// Sends `request` (`what` names it in errors) and parses the 200 answer.
    fn json_answer(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Value, String> {
        self.rt.block_on(async {
            let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|e| format!("{what}: reading the answer: {e}"))?;
            if !status.is_success() {
                return Err(format!("{what}: {status}: {body:.300}"));
            }
            serde_json::from_str(&body).map_err(|e| format!("{what}: not JSON: {e}"))
        })
    }

    /// `post_as_sender`, from inside the runtime.
    pub async fn post_as_sender_async(&self, path: &str, body: &Value) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base_url);
        let start = Instant::now();
        let response = self
            .client
            .post(&url)
            .bearer_auth(&self.sender_token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("POST {path}: reading the answer: {e}"))?;
        let latency = start.elapsed();
        Ok(Answer {
            status,
            body: body.to_vec(),
            latency,
        })
    }
}

/// Sends to one group of `MEMBERS` users, sequentially: how long storing a
/// big fan-out takes. Upstream throttles recipients (10 per 50 ms), so a
/// 10,000-member group takes it about 50 s.
pub struct FanOut;

/// Measured requests after the warm-up.
const FANOUT_REQUESTS: usize = 10;
const FANOUT_REQUESTS_QUICK: usize = 2;

impl FanOut {
    pub const MEMBERS: usize = 10_000;

    /// One send to the group; its latency if all members got a notification.
    pub fn send(&self, ctx: &Ctx<'_>, title: &str) -> Result<Duration, String> {
        let body = json!({
            "recipients": {"type": "entity", "entityRef": "group:default/big"},
            "payload": {"title": title}
        });
        let answer = ctx.post_as_sender("/api/notifications/notifications", &body)?;
        if answer.status != 200 {
            return Err(format!(
                "HTTP {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let created: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("the answer is not JSON: {e}"))?;
        match created.as_array().map(Vec::len) {
            Some(n) if n == Self::MEMBERS => Ok(answer.latency),
            Some(n) => Err(format!(
                "{n} notifications created, {} expected",
                Self::MEMBERS
            )),
            None => Err(format!("the answer is not an array: {created:.200}")),
        }
    }
}

impl Scenario for FanOut {
    fn name(&self) -> &'static str {
        "fanout-10k"
    }

    fn about(&self) -> &'static str {
        "POST one notification to group:default/big (10,000 members, from a catalog file), \
         sequentially, after one warm-up"
    }

    fn prepare(&self, dir: &Path) -> Result<Value, String> {
        let file = dir.join("catalog.yaml");
        std::fs::write(&file, group_yaml("big", Self::MEMBERS))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(json!({"notifications": {"catalog": {"files": [file]}}}))
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        // A failed warm-up means the set-up is wrong: nothing to measure.
        self.send(ctx, "warm-up")
            .map_err(|e| format!("the warm-up request failed: {e}"))?;
        let requests = if ctx.quick {
            FANOUT_REQUESTS_QUICK
        } else {
            FANOUT_REQUESTS
        };
        let mut samples = Samples::default();
        let start = Instant::now();
        for i in 1..=requests {
            interrupt::check()?;
            match self.send(ctx, &format!("fan-out {i}")) {
                Ok(latency) => samples.success(latency),
                Err(e) => samples.error(e),
            }
        }
        samples.elapsed = start.elapsed();
        Ok(vec![Measured::new(self.name(), samples)])
    }
}

/// A Backstage Group entity `name` with `members` users, bare names
/// `member-00000`, … (as the API tests write it).
fn group_yaml(name: &str, members: usize) -> String {
    let mut text = format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: {name}}}\n\
         spec:\n  type: team\n  children: []\n  members:\n"
    );
    for i in 0..members {
        let _ = writeln!(text, "    - member-{i:05}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique() {
        let names: Vec<&str> = all().iter().map(|s| s.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(names.len(), unique.len());
        assert!(names.contains(&"fanout-10k"));
        assert!(names.contains(&"signals-fanout"));
        assert!(names.contains(&"list-shapes-10k"));
        assert!(names.contains(&"list-orders-1m"));
        assert!(names.contains(&"pg-recovery"));
        assert!(names.contains(&"web-inbox-10k"));
    }

    #[test]
    fn the_group_file_lists_every_member() {
        let yaml = group_yaml("big", 3);
        assert!(yaml.contains("kind: Group\nmetadata: {name: big}\n"));
        assert!(yaml.ends_with("    - member-00000\n    - member-00001\n    - member-00002\n"));
    }
}
