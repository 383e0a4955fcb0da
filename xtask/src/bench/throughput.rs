//! Throughput scenarios, as upstream's figures were taken: 10 keep-alive
//! connections sending back to back (wrk's closed loop) for a fixed time,
//! against the create, list and status routes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use super::load::{self, Load, MakeRequest, Until};
use super::report::{Measured, Samples};
use super::scenario::{Ctx, FanOut, Scenario};
use super::tokens::{self, user_token};
use crate::interrupt;

/// As upstream's measurements: wrk with 10 connections.
pub const CONNECTIONS: usize = 10;

const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(10);
const WARMUP_QUICK: Duration = Duration::from_millis(300);
const MEASURE_QUICK: Duration = Duration::from_secs(1);

pub const CREATE_PATH: &str = "/api/notifications/notifications";

/// The user whose inbox the read scenarios read.
pub const READER: &str = "user:default/reader";

/// Distinct users `create-user` sends to, round robin.
const CREATE_USERS: u64 = 1000;

fn timed(ctx: &Ctx<'_>) -> Until {
    if ctx.quick {
        Until::Elapsed {
            warmup: WARMUP_QUICK,
            measure: MEASURE_QUICK,
        }
    } else {
        Until::Elapsed {
            warmup: WARMUP,
            measure: MEASURE,
        }
    }
}

fn create_body(recipients: &Value, n: u64) -> String {
    json!({"recipients": recipients, "payload": {"title": format!("bench notification {n}")}})
        .to_string()
}

/// `POST`s new notifications from the sender, each one different.
pub struct Create {
    name: &'static str,
    about: &'static str,
    /// The recipients of the `n`th notification.
    recipients: fn(u64) -> Value,
}

impl Create {
    pub fn broadcast() -> Self {
        Self {
            name: "create-broadcast",
            about: "POST a broadcast, 10 connections back to back for 10 s after a 2 s warm-up \
                    (--quick: 1 s after 0.3 s)",
            recipients: |_| json!({"type": "broadcast"}),
        }
    }

    pub fn for_one_user() -> Self {
        Self {
            name: "create-user",
            about: "POST a notification for one user (user:default/user-0000 … user-0999 in \
                    turn), 10 connections back to back for 10 s after a 2 s warm-up",
            recipients: |n| {
                json!({"type": "entity",
                       "entityRef": format!("user:default/user-{:04}", n % CREATE_USERS)})
            },
        }
    }
}

impl Scenario for Create {
    fn name(&self) -> &'static str {
        self.name
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        Ok(json!({}))
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let (addr, token, recipients) = (ctx.addr, ctx.sender_token.clone(), self.recipients);
        let make: Arc<MakeRequest> = Arc::new(move |n| {
            let body = create_body(&recipients(n), n);
            load::request(Method::POST, addr, CREATE_PATH, &token, Some(body))
        });
        let samples = drive(ctx, CONNECTIONS, timed(ctx), make);
        Ok(vec![Measured::new(self.name, samples)])
    }
}

/// Runs a load of `make`'s requests against the server, each answer expected 200 with JSON.
pub fn drive(ctx: &Ctx<'_>, connections: usize, until: Until, make: Arc<MakeRequest>) -> Samples {
    let generator = Load {
        addr: ctx.addr,
        connections,
        until,
    };
    ctx.rt.block_on(generator.run(make, load::ok_json))
}

/// What the read scenarios store before they measure.
#[derive(Clone, Copy)]
pub struct Seed {
    /// Notifications sent to the reader alone.
    reader: u64,
    reader_quick: u64,
    /// Sends to a group of `FanOut::MEMBERS` other users, to fill the
    /// tables around the reader's rows.
    group_sends: usize,
    group_sends_quick: usize,
}

pub const TEN_THOUSAND: Seed = Seed {
    reader: 10_000,
    reader_quick: 1_000,
    group_sends: 0,
    group_sends_quick: 0,
};

/// 99 sends to the group and the reader's 10,000.
pub const ONE_MILLION: Seed = Seed {
    reader: 10_000,
    reader_quick: 1_000,
    group_sends: 99,
    group_sends_quick: 2,
};

impl Seed {
    /// (the reader's notifications, sends to the group) for this run.
    pub fn sizes(&self, quick: bool) -> (u64, usize) {
        if quick {
            (self.reader_quick, self.group_sends_quick)
        } else {
            (self.reader, self.group_sends)
        }
    }

    /// The configuration the seeded server needs: the key of the reader's
    /// token, and the group's catalog if the seed sends to it.
    pub fn config(&self, dir: &Path) -> Result<Value, String> {
        let mut config = tokens::config();
        if self.group_sends > 0 {
            // The fan-out's catalog beside the user-token key.
            if let (Some(ours), Value::Object(catalog)) = (
                config["notifications"].as_object_mut(),
                FanOut.prepare(dir)?["notifications"].take(),
            ) {
                ours.extend(catalog);
            }
        }
        Ok(config)
    }

    /// The sends to the group, one after the other.
    pub fn fill_group(ctx: &Ctx<'_>, sends: usize) -> Result<(), String> {
        for i in 0..sends {
            interrupt::check()?;
            FanOut
                .send(ctx, &format!("seed {i}"))
                .map_err(|e| format!("seeding the group: {e}"))?;
        }
        Ok(())
    }
}

/// `GET`s from the reader's inbox, after seeding it.
pub struct Read {
    name: &'static str,
    about: &'static str,
    path: &'static str,
    seed: Seed,
    connections: usize,
}

impl Read {
    pub fn list_20_of_10k() -> Self {
        Self {
            name: "list-20-of-10k",
            about: "GET the 20 newest of 10,000 notifications of one user (--quick: 1,000), \
                    10 connections for 10 s",
            path: "/api/notifications/notifications?limit=20&offset=0",
            seed: TEN_THOUSAND,
            connections: CONNECTIONS,
        }
    }

    pub fn status_10k() -> Self {
        Self {
            name: "status-10k",
            about: "GET the read/unread counts of one user with 10,000 notifications \
                    (--quick: 1,000), 10 connections for 10 s",
            path: "/api/notifications/status",
            seed: TEN_THOUSAND,
            connections: CONNECTIONS,
        }
    }

    pub fn list_all_10k() -> Self {
        Self {
            name: "list-all-10k",
            about: "GET all 10,000 notifications of one user, no limit (--quick: 1,000), \
                    10 connections for 10 s",
            path: "/api/notifications/notifications",
            seed: TEN_THOUSAND,
            connections: CONNECTIONS,
        }
    }

    pub fn list_20_of_1m() -> Self {
        Self {
            name: "list-20-of-1m",
            about: "as list-20-of-10k with 1,000,000 notifications stored (99 sends to a \
                    10,000-member group plus the reader's 10,000; --quick: 2 and 1,000), one \
                    connection: the latency of a page, not the throughput at saturation",
            path: "/api/notifications/notifications?limit=20&offset=0",
            seed: ONE_MILLION,
            connections: 1,
        }
    }

    /// Stores the seed and checks the reader sees all of it.
    fn seed(&self, ctx: &Ctx<'_>, reader_token: &str) -> Result<(), String> {
        let (reader, group_sends) = self.seed.sizes(ctx.quick);
        Seed::fill_group(ctx, group_sends)?;
        let (addr, token) = (ctx.addr, ctx.sender_token.clone());
        let make: Arc<MakeRequest> = Arc::new(move |n| {
            let body = create_body(&json!({"type": "entity", "entityRef": READER}), n);
            load::request(Method::POST, addr, CREATE_PATH, &token, Some(body))
        });
        let seeded = drive(ctx, CONNECTIONS, Until::Requests(reader), make);
        interrupt::check()?;
        if let Some(e) = seeded.first_error {
            return Err(format!("seeding the reader's inbox: {e}"));
        }
        eprintln!(
            "xtask: bench: seeded {} notifications (the reader's {reader} at {:.0}/s)",
            reader + (group_sends * FanOut::MEMBERS) as u64,
            reader as f64 / seeded.elapsed.as_secs_f64()
        );
        if let Some(cluster) = ctx.cluster {
            cluster.settle()?;
        }
        let status = ctx.get_json("/api/notifications/status", reader_token)?;
        if status["unread"] != json!(reader) || status["read"] != json!(0) {
            return Err(format!(
                "the reader should have {reader} unread notifications; status says {status}"
            ));
        }
        Ok(())
    }
}

impl Scenario for Read {
    fn name(&self) -> &'static str {
        self.name
    }

    fn about(&self) -> &'static str {
        self.about
    }

    fn prepare(&self, dir: &Path) -> Result<Value, String> {
        self.seed.config(dir)
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let token = user_token(READER)?;
        self.seed(ctx, &token)?;
        let (addr, path) = (ctx.addr, self.path);
        let make: Arc<MakeRequest> =
            Arc::new(move |_| load::request(Method::GET, addr, path, &token, None));
        let samples = drive(ctx, self.connections, timed(ctx), make);
        Ok(vec![Measured::new(self.name, samples)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_differ_and_name_their_recipients() {
        let user = (Create::for_one_user().recipients)(1234);
        assert_eq!(user["entityRef"], "user:default/user-0234");
        let a: Value = serde_json::from_str(&create_body(&user, 1)).unwrap();
        let b: Value = serde_json::from_str(&create_body(&user, 2)).unwrap();
        assert_ne!(a["payload"]["title"], b["payload"]["title"]);
        assert_eq!(a["recipients"]["type"], "entity");
        assert_eq!(
            (Create::broadcast().recipients)(7),
            json!({"type": "broadcast"})
        );
    }

    #[test]
    fn the_large_seed_stores_a_million() {
        let (reader, group_sends) = Read::list_20_of_1m().seed.sizes(false);
        assert_eq!(reader + (group_sends * FanOut::MEMBERS) as u64, 1_000_000);
    }
}
