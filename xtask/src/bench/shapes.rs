//! Inbox read shapes: the list requests real clients send (orderings,
//! filters, a search, a later page, Backstage's inbox page as it opens and
//! its topics call), measured one after another against one seeded server,
//! one result per shape (`<scenario>/<shape>`).
//!
//! The reader's notifications vary as a real inbox does (severities, topics,
//! some read, some saved), so that every filter selects some of them and
//! every ordering has something to sort.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use hyper::Method;
use serde_json::{Value, json};

use super::load::{self, MakeRequest, Until};
use super::report::Measured;
use super::scenario::{Ctx, FanOut, Scenario};
use super::throughput::{CONNECTIONS, CREATE_PATH, ONE_MILLION, READER, Seed, TEN_THOUSAND, drive};
use super::tokens::user_token;
use crate::interrupt;

/// What the shapes' paths are relative to.
const API: &str = "/api/notifications/";

const UPDATE_PATH: &str = "/api/notifications/notifications/update";

/// Ids per update request: the server takes bodies up to 100 KiB, and
/// 1,000 ids are about 40 KB.
const MARK_BATCH: usize = 1000;

/// `list-shapes-10k`'s shapes: (slug, path under `API`).
const LIST_SHAPES: [(&str, &str); 16] = [
    ("no-order", "notifications?limit=20&offset=0"),
    (
        "created-desc",
        "notifications?limit=20&offset=0&orderField=created,desc",
    ),
    (
        "created-asc",
        "notifications?limit=20&offset=0&orderField=created,asc",
    ),
    (
        "unread",
        "notifications?limit=20&offset=0&read=false&orderField=created,desc",
    ),
    (
        "saved",
        "notifications?limit=20&offset=0&saved=true&orderField=created,desc",
    ),
    (
        "title-asc",
        "notifications?limit=20&offset=0&orderField=title,asc",
    ),
    (
        "topic-desc",
        "notifications?limit=20&offset=0&orderField=topic,desc",
    ),
    (
        "severity-desc",
        "notifications?limit=20&offset=0&orderField=severity,desc",
    ),
    (
        "updated-desc",
        "notifications?limit=20&offset=0&orderField=updated,desc",
    ),
    (
        "origin-asc",
        "notifications?limit=20&offset=0&orderField=origin,asc",
    ),
    (
        "min-high",
        "notifications?limit=20&offset=0&minimumSeverity=high&orderField=created,desc",
    ),
    (
        "topic-deploy",
        "notifications?limit=20&offset=0&topic=deploy&orderField=created,desc",
    ),
    (
        "search",
        "notifications?limit=20&offset=0&search=number%2042&orderField=created,desc",
    ),
    (
        "offset-200",
        "notifications?limit=20&offset=200&orderField=created,desc",
    ),
    // What Backstage's notifications page sends as it opens.
    (
        "backstage-page",
        "notifications?limit=5&offset=0&minimumSeverity=low&orderField=created,desc&read=false",
    ),
    ("backstage-topics", "topics?read=false&minimumSeverity=low"),
];

/// `list-orders-1m` orders by each of these, both ways.
const ORDER_FIELDS: [&str; 8] = [
    "created", "updated", "title", "topic", "origin", "severity", "read", "saved",
];

/// The reader's topics; one notification in 11 has none.
const TOPICS: [&str; 10] = [
    "deploy",
    "build",
    "alert",
    "incident",
    "review",
    "release",
    "security",
    "cost",
    "catalog",
    "scaffolder",
];

/// Several shapes of `GET` from the reader's inbox, after seeding it.
pub struct Shapes {
    name: &'static str,
    about: &'static str,
    seed: Seed,
    /// (slug, path under `API`), in the order they are measured.
    shapes: Vec<(String, String)>,
    connections: usize,
    /// For each shape.
    until: Until,
    until_quick: Until,
}

/// Each shape's time with `--quick`.
const QUICK: Until = Until::Elapsed {
    warmup: Duration::from_millis(200),
    measure: Duration::from_millis(500),
};

impl Shapes {
    pub fn list_10k() -> Self {
        Self {
            name: "list-shapes-10k",
            about: "GET 16 shapes of list (orderings, filters, a search, offset 200, Backstage's \
                    page and topics) of one user with 10,000 varied notifications, 1,000 read \
                    and 100 saved (--quick: 1,000), 10 connections for 4 s each",
            seed: TEN_THOUSAND,
            shapes: LIST_SHAPES
                .iter()
                .map(|&(slug, path)| (slug.to_owned(), path.to_owned()))
                .collect(),
            connections: CONNECTIONS,
            until: Until::Elapsed {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(4),
            },
            until_quick: QUICK,
        }
    }

    pub fn orders_1m() -> Self {
        let mut shapes: Vec<(String, String)> = ORDER_FIELDS
            .iter()
            .flat_map(|field| {
                ["asc", "desc"].map(|dir| {
                    (
                        format!("{field}-{dir}"),
                        format!("notifications?limit=20&offset=0&orderField={field},{dir}"),
                    )
                })
            })
            .collect();
        shapes.push((
            "search".to_owned(),
            "notifications?limit=20&offset=0&search=number%2042&orderField=created,desc".to_owned(),
        ));
        Self {
            name: "list-orders-1m",
            about: "GET the first 20 by each orderField (both ways) and a search, with \
                    1,000,000 notifications stored as list-20-of-1m (the reader's varied as \
                    list-shapes-10k's), one connection for 3 s each",
            seed: ONE_MILLION,
            shapes,
            connections: 1,
            until: Until::Elapsed {
                warmup: Duration::from_millis(500),
                measure: Duration::from_secs(3),
            },
            until_quick: QUICK,
        }
    }

    /// Stores the seed, marks some of the reader's notifications read and
    /// saved, and checks the reader sees that.
    fn seed(&self, ctx: &Ctx<'_>, reader_token: &str) -> Result<(), String> {
        let (reader, group_sends) = self.seed.sizes(ctx.quick);
        Seed::fill_group(ctx, group_sends)?;
        let started = Instant::now();
        let ids = ctx.rt.block_on(create_varied(ctx, reader))?;
        eprintln!(
            "xtask: bench: seeded {} notifications (the reader's {reader} at {:.0}/s)",
            reader + (group_sends * FanOut::MEMBERS) as u64,
            reader as f64 / started.elapsed().as_secs_f64()
        );
        let read = picked(&ids, is_read);
        let saved = picked(&ids, is_saved);
        mark(ctx, reader_token, &read, &json!({"read": true}))?;
        mark(ctx, reader_token, &saved, &json!({"saved": true}))?;

        if let Some(cluster) = ctx.cluster {
            cluster.settle()?;
        }
        let unread = reader - read.len() as u64;
        let status = ctx.get_json("/api/notifications/status", reader_token)?;
        if status["unread"] != json!(unread) || status["read"] != json!(read.len()) {
            return Err(format!(
                "the reader should have {unread} unread and {} read notifications; status says \
                 {status}",
                read.len()
            ));
        }
        let listed = ctx.get_json(
            "/api/notifications/notifications?saved=true&limit=1",
            reader_token,
        )?;
        if listed["totalCount"] != json!(saved.len()) {
            return Err(format!(
                "the reader should have {} saved notifications; the list says {}",
                saved.len(),
                listed["totalCount"]
            ));
        }
        Ok(())
    }
}

impl Scenario for Shapes {
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
        let until = if ctx.quick {
            self.until_quick
        } else {
            self.until
        };
        let mut results = Vec::with_capacity(self.shapes.len());
        for (slug, path) in &self.shapes {
            interrupt::check()?;
            let name = format!("{}/{slug}", self.name);
            eprintln!("xtask: bench: {name}");
            let (addr, path, token) = (ctx.addr, format!("{API}{path}"), token.clone());
            let make: Arc<MakeRequest> =
                Arc::new(move |_| load::request(Method::GET, addr, &path, &token, None));
            results.push(Measured::new(
                name,
                drive(ctx, self.connections, until, make),
            ));
        }
        Ok(results)
    }
}

/// Sends the reader's `count` notifications, `CONNECTIONS` at a time;
/// returns their ids, the `n`th notification's `n`th.
pub(super) async fn create_varied(ctx: &Ctx<'_>, count: u64) -> Result<Vec<String>, String> {
    stream::iter(0..count)
        .map(|n| async move {
            interrupt::check()?;
            let body = json!({
                "recipients": {"type": "entity", "entityRef": READER},
                "payload": payload(n),
            });
            let answer = ctx.post_as_sender_async(CREATE_PATH, &body).await?;
            created_id(answer.status, &answer.body)
                .map_err(|e| format!("seeding the reader's inbox: {e}"))
        })
        .buffered(CONNECTIONS)
        .try_collect()
        .await
}

/// The reader's `n`th notification: titled `number <n>` (so a search for
/// `number 42` finds a few), severities critical 5%, high 15%, normal 60%,
/// low 20%, and one of `TOPICS` or none.
pub(super) fn payload(n: u64) -> Value {
    let severity = match n % 20 {
        0 => "critical",
        1..=3 => "high",
        4..=15 => "normal",
        _ => "low",
    };
    let mut payload = json!({"title": format!("number {n}"), "severity": severity});
    // 11 is prime to 20: every topic comes with every severity.
    if let Some(topic) = (n % 11).checked_sub(1) {
        payload["topic"] = json!(TOPICS[topic as usize]);
    }
    payload
}

/// Read: one block of 20 notifications in ten (10%), in runs as a user
/// reads them, each run across every severity and topic.
fn is_read(n: u64) -> bool {
    (n / 20).is_multiple_of(10)
}

/// Saved: one block of 20 in a hundred (1%), none of them read.
fn is_saved(n: u64) -> bool {
    (n / 20) % 100 == 1
}

/// The ids of the notifications whose number `pick` picks.
fn picked(ids: &[String], pick: fn(u64) -> bool) -> Vec<String> {
    (0u64..)
        .zip(ids)
        .filter(|&(n, _)| pick(n))
        .map(|(_, id)| id.clone())
        .collect()
}

/// The id of the one notification a create answer holds.
pub(super) fn created_id(status: u16, body: &[u8]) -> Result<String, String> {
    if status != 200 {
        return Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    let created: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    match created.as_array().map(Vec::as_slice) {
        Some([one]) => one["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no id in {one:.200}")),
        _ => Err(format!("one notification expected: {created:.200}")),
    }
}

/// Updates the reader's `ids` with `change` (`{"read": true}`, …), as the
/// reader.
pub(super) fn mark(
    ctx: &Ctx<'_>,
    token: &str,
    ids: &[String],
    change: &Value,
) -> Result<(), String> {
    for batch in ids.chunks(MARK_BATCH) {
        interrupt::check()?;
        let mut body = change.clone();
        body["ids"] = json!(batch);
        let updated = ctx.post_json(UPDATE_PATH, token, &body)?;
        if updated.as_array().map(Vec::len) != Some(batch.len()) {
            return Err(format!(
                "marking {change}: {} notifications expected back, got {updated:.200}",
                batch.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inbox_is_varied_as_promised() {
        let payloads: Vec<Value> = (0..10_000).map(payload).collect();
        let with = |key: &str, value: &str| payloads.iter().filter(|p| p[key] == value).count();
        assert_eq!(with("severity", "critical"), 500);
        assert_eq!(with("severity", "high"), 1500);
        assert_eq!(with("severity", "normal"), 6000);
        assert_eq!(with("severity", "low"), 2000);
        assert_eq!(with("topic", "deploy"), 909);
        assert_eq!(
            payloads.iter().filter(|p| p["topic"].is_null()).count(),
            910
        );
        assert_eq!(payload(42)["title"], "number 42");
        assert_eq!((0..10_000).filter(|&n| is_read(n)).count(), 1000);
        assert_eq!((0..10_000).filter(|&n| is_saved(n)).count(), 100);
        assert!(!(0..10_000).any(|n| is_read(n) && is_saved(n)));
    }

    #[test]
    fn ids_are_picked_by_number() {
        let ids: Vec<String> = (0..45).map(|n| format!("id-{n}")).collect();
        let read = picked(&ids, is_read);
        assert_eq!(read.len(), 20);
        assert_eq!(read[19], "id-19");
        assert_eq!(picked(&ids, is_saved), ids[20..40]);
    }

    #[test]
    fn created_ids_are_read_from_the_answer() {
        assert_eq!(
            created_id(200, br#"[{"id":"abc","title":"x"}]"#).as_deref(),
            Ok("abc")
        );
        assert!(created_id(200, b"[]").is_err());
        assert!(created_id(200, br#"[{"id":"a"},{"id":"b"}]"#).is_err());
        assert!(created_id(400, b"{}").unwrap_err().starts_with("HTTP 400"));
    }

    #[test]
    fn every_shape_has_a_name_of_its_own() {
        for scenario in [Shapes::list_10k(), Shapes::orders_1m()] {
            let mut slugs: Vec<&str> = scenario.shapes.iter().map(|(s, _)| s.as_str()).collect();
            slugs.sort_unstable();
            slugs.dedup();
            assert_eq!(slugs.len(), scenario.shapes.len(), "{}", scenario.name);
            assert!(
                scenario
                    .shapes
                    .iter()
                    .all(|(_, path)| path.starts_with("notifications?")
                        || path.starts_with("topics?"))
            );
        }
        let orders = Shapes::orders_1m();
        assert_eq!(orders.shapes.len(), 17);
        assert_eq!(
            orders.shapes[0],
            (
                "created-asc".to_owned(),
                "notifications?limit=20&offset=0&orderField=created,asc".to_owned()
            )
        );
    }
}
