//! The Slack processor (contract section 6.2) against a fake Slack Web API started by each test:
//! direct messages, channel messages, broadcast routes, scope edits, users' settings, and how
//! Slack's failures end (retried, or failed for good).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::fake_http::FakeHttp;
use crate::support::outcome;
use crate::support::{DbKind, SERVICE, TestApp};

const TOKEN: &str = "xoxb-test-token";
const CHANNEL: &str = "SlackNotificationProcessor";

/// One call the fake Slack received.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    method: String,
    authorization: String,
    pub(crate) body: Value,
}

#[derive(Default)]
struct SlackState {
    calls: Mutex<Vec<Call>>,
    /// Answer this many further postMessage calls with HTTP 429.
    rate_limited: AtomicUsize,
    next_ts: AtomicUsize,
}

/// A fake Slack on 127.0.0.1: `chat.postMessage`, `chat.update`, `users.lookupByEmail`.
pub(crate) struct FakeSlack {
    state: Arc<SlackState>,
    pub(crate) url: String,
    _server: FakeHttp,
}

impl FakeSlack {
    pub(crate) async fn start() -> Self {
        let state = Arc::new(SlackState::default());
        let data = web::Data::from(state.clone());
        let server = FakeHttp::start(move |cfg| {
            cfg.app_data(data.clone())
                .route("/api/{method}", web::to(answer));
        });
        Self {
            state,
            url: format!("{}/api", server.url),
            _server: server,
        }
    }

    fn calls(&self, method: &str) -> Vec<Call> {
        let calls = self.state.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// The successful posts and updates, by target channel.
    pub(crate) fn channels(&self, method: &str) -> Vec<String> {
        let mut channels: Vec<String> = self
            .calls(method)
            .iter()
            .map(|c| c.body["channel"].as_str().unwrap_or_default().to_owned())
            .collect();
        channels.sort();
        channels
    }

    /// Waits until `method` was called `count` times, then a little more to see that no more
    /// calls come.
    pub(crate) async fn wait_for(&self, method: &str, count: usize) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.calls(method).len() < count {
            assert!(
                Instant::now() < deadline,
                "{method}: {:?}",
                self.calls(method)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let calls = self.calls(method);
        assert_eq!(calls.len(), count, "{method}: {calls:?}");
        calls
    }
}

async fn answer(
    state: web::Data<SlackState>,
    method: web::Path<String>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let method = method.into_inner();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = if body.is_empty() {
        // users.lookupByEmail takes its arguments in the query.
        Value::Object(
            url::form_urlencoded::parse(request.query_string().as_bytes())
                .into_owned()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    if method == "chat.postMessage"
        && state
            .rate_limited
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .finish();
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
    let answer = match method.as_str() {
        "users.lookupByEmail" => match body["email"].as_str() {
            Some("bob@example.com") => json!({"ok": true, "user": {"id": "U_BOB"}}),
            _ => json!({"ok": false, "error": "users_not_found"}),
        },
        "chat.postMessage" | "chat.update" if channel == "C_MISSING" => {
            json!({"ok": false, "error": "channel_not_found"})
        }
        "chat.postMessage" => {
            let n = state.next_ts.fetch_add(1, Ordering::SeqCst);
            // Direct messages land in a DM channel of their own, as in Slack.
            let posted = channel
                .strip_prefix('U')
                .map_or(channel.clone(), |rest| format!("D{rest}"));
            json!({"ok": true, "channel": posted, "ts": format!("1700000000.{n:06}")})
        }
        "chat.update" => json!({"ok": true, "channel": channel, "ts": body["ts"]}),
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    if answer["ok"] == true || method == "chat.postMessage" || method == "chat.update" {
        state.calls.lock().unwrap().push(Call {
            method: method.clone(),
            authorization,
            body: body.clone(),
        });
    }
    HttpResponse::Ok().json(answer)
}

fn config(slack: &FakeSlack, extra: &str) -> String {
    format!(
        r#"
notifications:
  delivery: {{retryDelay: 20ms, maxRetryDelay: 50ms, pollInterval: 50ms, maxAttempts: 3}}
  catalog: {{files: ['{}/tests/fixtures/catalog/slack.yaml']}}
  processors:
    slack:
      - token: {TOKEN}
        apiUrl: {}
        concurrencyLimit: 100
        throttleInterval: 1s
{extra}
"#,
        env!("CARGO_MANIFEST_DIR"),
        slack.url
    )
}

async fn start(kind: DbKind, slack: &FakeSlack, extra: &str) -> Option<TestApp> {
    TestApp::start(kind, &config(slack, extra)).await
}

fn send_body(refs: Value, payload: Value) -> Value {
    json!({"recipients": {"type": "entity", "entityRef": refs}, "payload": payload})
}

async fn direct_and_channel_messages(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    let created = app
        .send_ok(send_body(
            json!(["user:default/alice", "user:bob", "user:default/dave", "group:default/team", "group:default/quiet"]),
            json!({"title": "Build failed", "description": "ask <@user:default/alice> or <@user:default/nobody>",
                   "link": "/catalog/x", "severity": "high", "topic": "builds"}),
        ))
        .await;
    let users: Vec<&str> = created
        .iter()
        .map(|n| n["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&"user:default/carol"),
        "carol is reached through team: {users:?}"
    );
    // alice and bob by DM, team by channel; carol (through the group), dave (no Slack user)
    // and quiet (no channel) get nothing.
    let posts = slack.wait_for("chat.postMessage", 3).await;
    assert_eq!(
        slack.channels("chat.postMessage"),
        ["C_TEAM", "U_ALICE", "U_BOB"]
    );
    let lookups = slack.calls("users.lookupByEmail");
    assert!(
        lookups.iter().any(|c| c.body["email"] == "bob@example.com"),
        "{lookups:?}"
    );
    for call in &posts {
        assert_eq!(call.authorization, format!("Bearer {TOKEN}"));
    }
    let alice = posts
        .iter()
        .find(|c| c.body["channel"] == "U_ALICE")
        .unwrap();
    assert_eq!(alice.body["text"], "Build failed");
    let attachment = &alice.body["attachments"][0];
    assert_eq!(attachment["color"], "#FFA500");
    assert_eq!(attachment["fallback"], "Build failed");
    let section = &attachment["blocks"][0];
    assert_eq!(
        section["text"]["text"], "ask <@U_ALICE> or <@user:default/nobody>",
        "known mentions are rewritten"
    );
    assert_eq!(section["accessory"]["text"]["text"], "View More");
    assert_eq!(section["accessory"]["url"], "http://localhost/catalog/x");
    let context = &attachment["blocks"][1]["elements"];
    assert_eq!(context[0]["text"], "Severity: high");
    assert_eq!(context[1]["text"], "Topic: builds");

    // A send's metadata.slackChannel overrides the entity's channel; no description, no link.
    app.send_ok(send_body(
        json!("group:default/quiet"),
        json!({"title": "t", "metadata": {"slackChannel": "C_OVERRIDE"}}),
    ))
    .await;
    let posts = slack.wait_for("chat.postMessage", 4).await;
    let post = posts
        .iter()
        .find(|c| c.body["channel"] == "C_OVERRIDE")
        .unwrap();
    let section = &post.body["attachments"][0]["blocks"][0];
    assert_eq!(section["text"]["text"], "No description provided");
    assert!(section["accessory"].get("url").is_none());
    assert_eq!(post.body["attachments"][0]["color"], "#00A699");
}
on_both_databases!(direct_and_channel_messages);

async fn broadcast_routes_precedence(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let routes = format!(
        r#"        broadcastChannels: [C_DEFAULT]
        broadcastRoutes:
          - {{origin: '{SERVICE}', channel: [C_ORIGIN1, C_ORIGIN2]}}
          - {{topic: builds, channel: C_TOPIC}}
          - {{origin: '{SERVICE}', topic: deploys, channel: C_BOTH}}"#
    );
    let Some(app) = start(kind, &slack, &routes).await else {
        return;
    };
    let broadcast = |topic: Option<&str>| {
        let mut payload = json!({"title": "b"});
        if let Some(t) = topic {
            payload["topic"] = json!(t);
        }
        json!({"recipients": {"type": "broadcast"}, "payload": payload})
    };
    app.send_ok(broadcast(Some("deploys"))).await;
    slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(
        slack.channels("chat.postMessage"),
        ["C_BOTH"],
        "origin and topic first"
    );
    app.send_ok(broadcast(Some("builds"))).await;
    slack.wait_for("chat.postMessage", 3).await;
    assert_eq!(
        slack.channels("chat.postMessage"),
        ["C_BOTH", "C_ORIGIN1", "C_ORIGIN2"],
        "origin before topic"
    );
    let r = app
        .post(
            "/notifications",
            "test-service2-token",
            &broadcast(Some("builds")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    slack.wait_for("chat.postMessage", 4).await;
    assert!(
        slack
            .channels("chat.postMessage")
            .contains(&"C_TOPIC".to_owned())
    );
    let r = app
        .post("/notifications", "test-service2-token", &broadcast(None))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    slack.wait_for("chat.postMessage", 5).await;
    assert!(
        slack
            .channels("chat.postMessage")
            .contains(&"C_DEFAULT".to_owned())
    );
}
on_both_databases!(broadcast_routes_precedence);

async fn scope_resend_edits_the_message(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    let first = app
        .send_to(
            "user:default/alice",
            json!({"title": "v1", "scope": "build-42"}),
        )
        .await;
    outcome(&app.db.store(), &first, CHANNEL, "delivered").await;
    let posts = slack.wait_for("chat.postMessage", 1).await;
    let again = app
        .send_to(
            "user:default/alice",
            json!({"title": "v2", "scope": "build-42"}),
        )
        .await;
    assert_eq!(again, first, "the scope updates the notification");
    let updates = slack.wait_for("chat.update", 1).await;
    assert_eq!(updates[0].body["ts"], "1700000000.000000");
    assert_eq!(
        updates[0].body["channel"], "D_ALICE",
        "where Slack put the DM"
    );
    assert_eq!(updates[0].body["text"], "v2");
    assert_eq!(updates[0].authorization, format!("Bearer {TOKEN}"));
    assert_eq!(
        slack.calls("chat.postMessage").len(),
        posts.len(),
        "not posted again"
    );
    // Another scope is a new message.
    app.send_to(
        "user:default/alice",
        json!({"title": "other", "scope": "build-43"}),
    )
    .await;
    slack.wait_for("chat.postMessage", 2).await;
}
on_both_databases!(scope_resend_edits_the_message);

async fn a_user_who_turned_slack_off_gets_no_dm(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    let token = app.user_token("user:default/alice");
    let off =
        json!({"channels": [{"id": CHANNEL, "origins": [{"id": SERVICE, "enabled": false}]}]});
    assert_eq!(app.post("/settings", &token, &off).await.status, 200);
    app.send_to("user:default/alice", json!({"title": "quiet"}))
        .await;
    // bob still gets his, which shows that the queue ran.
    app.send_to("user:default/bob", json!({"title": "loud"}))
        .await;
    slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(slack.channels("chat.postMessage"), ["U_BOB"]);
}
on_both_databases!(a_user_who_turned_slack_off_gets_no_dm);

async fn rate_limited_then_delivered_once(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    slack.state.rate_limited.store(1, Ordering::SeqCst);
    let id = app
        .send_to("user:default/alice", json!({"title": "t"}))
        .await;
    let row = outcome(&app.db.store(), &id, CHANNEL, "delivered").await;
    assert_eq!(row.attempts, 2, "one 429, then success");
    let posts = slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(posts[0].body["channel"], "U_ALICE");
}
on_both_databases!(rate_limited_then_delivered_once);

async fn channel_not_found_fails_the_delivery(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    let id = app
        .send_to("user:default/erin", json!({"title": "t"}))
        .await;
    let row = outcome(&app.db.store(), &id, CHANNEL, "failed").await;
    assert_eq!(row.attempts, 1, "not retried");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("channel_not_found"),
        "{row:?}"
    );
}
on_both_databases!(channel_not_found_fails_the_delivery);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = notifications_backend::config::Config::from_yaml_str(
        "backend: {listen: {host: 127.0.0.1, port: 0}}\nnotifications: {processors: {slack: [{token: t, broadcastRoutes: [{origin: o}]}]}}",
    )
    .unwrap();
    let err = match notifications_backend::BackendBuilder::new(config, dir.path())
        .handle_signals(false)
        .start()
        .await
    {
        Ok(_) => panic!("a route without a channel is refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("notifications.processors.slack[0].broadcastRoutes[0]"),
        "{err}"
    );
}

/// A send refused as invalid posts nothing, not even the channel messages of its groups.
async fn a_refused_send_posts_nothing(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let Some(app) = start(kind, &slack, "").await else {
        return;
    };
    let r = app
        .send(send_body(
            json!("group:default/team"),
            json!({"title": "x", "link": "javascript:alert(1)"}),
        ))
        .await;
    r.assert_error(400, "InputError");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(slack.calls("chat.postMessage").is_empty());
}
on_both_databases!(a_refused_send_posts_nothing);
