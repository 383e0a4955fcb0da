//! `read-all-10k`: mark all read (beyond upstream) over one user's 10,000 unread notifications,
//! half their own and half broadcasts, made unread again before each request.

use std::path::Path;
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

use super::report::{Measured, Samples};
use super::scenario::{Ctx, Scenario};
use super::shapes::{create_varied, created_id, mark, payload};
use super::throughput::{CONNECTIONS, CREATE_PATH, READER};
use super::tokens::{self, user_token};
use crate::interrupt;

const PATH: &str = "/api/notifications/notifications/read-all";
/// Measured requests after the warm-up.
const ROUNDS: usize = 10;
const ROUNDS_QUICK: usize = 2;

pub struct ReadAll;

impl ReadAll {
    /// The reader's own notifications, and the broadcasts (as many).
    pub(super) fn half(quick: bool) -> u64 {
        if quick { 500 } else { 5_000 }
    }
}

impl Scenario for ReadAll {
    fn name(&self) -> &'static str {
        "read-all-10k"
    }

    fn about(&self) -> &'static str {
        "POST /notifications/read-all for one user with 10,000 unread notifications (5,000 own \
         and 5,000 broadcasts; --quick: 1,000), all made unread again before each request; 10 \
         requests after one warm-up"
    }

    fn prepare(&self, _dir: &Path) -> Result<Value, String> {
        Ok(tokens::config())
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Vec<Measured>, String> {
        let token = user_token(READER)?;
        let half = Self::half(ctx.quick);
        let ids = ctx.rt.block_on(own_and_broadcasts(ctx, half))?;
        let rounds = if ctx.quick { ROUNDS_QUICK } else { ROUNDS };
        let mut samples = Samples::default();
        let start = Instant::now();
        // Round 0 warms up.
        for round in 0..=rounds {
            interrupt::check()?;
            mark(ctx, &token, &ids, &json!({"read": false}))?;
            // Vacuumed, as autovacuum would have long done in an inbox that grew to 10,000
            // unread: flipping the same rows back and forth each second left each request more
            // dead index entries to step over than a user's inbox ever has.
            if let Some(cluster) = ctx.cluster {
                cluster.settle()?;
            }
            let sent = Instant::now();
            let answer = ctx.post_json(PATH, &token, &Value::Null);
            let latency = sent.elapsed();
            let checked = answer.and_then(|a| match a["updated"].as_u64() {
                Some(n) if n == ids.len() as u64 => Ok(()),
                _ => Err(format!("{} marked read expected: {a}", ids.len())),
            });
            if round == 0 {
                checked.map_err(|e| format!("the warm-up request failed: {e}"))?;
                continue;
            }
            match checked {
                Ok(()) => samples.success(latency),
                Err(e) => samples.error(e),
            }
        }
        samples.elapsed = start.elapsed();
        let status = ctx.get_json("/api/notifications/status", &token)?;
        if status != json!({"unread": 0, "read": ids.len()}) {
            return Err(format!(
                "all {} should be read; status says {status}",
                ids.len()
            ));
        }
        Ok(vec![Measured::new(self.name(), samples)])
    }
}

/// The reader's inbox of this scenario (and `web-inbox-10k`'s): `half` notifications of their
/// own (varied as `list-shapes-10k`'s) and `half` broadcasts, all unread; returns their ids.
pub(super) async fn own_and_broadcasts(ctx: &Ctx<'_>, half: u64) -> Result<Vec<String>, String> {
    let mut ids = create_varied(ctx, half).await?;
    ids.extend(broadcasts(ctx, half).await?);
    Ok(ids)
}

/// Sends `count` broadcasts, `CONNECTIONS` at a time; returns their ids.
async fn broadcasts(ctx: &Ctx<'_>, count: u64) -> Result<Vec<String>, String> {
    stream::iter(0..count)
        .map(|n| async move {
            interrupt::check()?;
            let body = json!({"recipients": {"type": "broadcast"}, "payload": payload(n)});
            let answer = ctx.post_as_sender_async(CREATE_PATH, &body).await?;
            created_id(answer.status, &answer.body).map_err(|e| format!("seeding broadcasts: {e}"))
        })
        .buffered(CONNECTIONS)
        .try_collect()
        .await
}
