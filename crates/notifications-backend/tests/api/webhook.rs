//! The webhook processor (beyond upstream) against a real HTTP receiver started by each test:
//! signed requests with the documented body, retries through an outage without duplicates,
//! refusals kept as failed, filters and users' channel settings, and, with the real binary
//! killed mid-delivery, redelivery after a restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{HttpRequest, HttpResponse, web};
use hmac::{Hmac, Mac};
use notifications_common::NotificationId;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::process::Child;

use crate::on_both_databases;
use crate::support::fake_http::FakeHttp;
use crate::support::outcome;
use crate::support::{Api, DbKind, SERVICE, TestApp, TestDb, USER};

const SECRET: &str = "a-webhook-secret-of-some-length";

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// 200.
    Up,
    /// 503, as in an outage.
    Down,
    /// 400 with a body: the receiver refuses the message.
    Refuse,
    /// Never answers.
    Hang,
}

/// One request the receiver got, and what it answered (`None`: it hung).
#[derive(Clone, Debug)]
pub(crate) struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: Option<u16>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map_or("", String::as_str)
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn delivery(&self) -> String {
        self.header("X-Notifications-Delivery").to_owned()
    }
}

#[derive(Default)]
struct HookState {
    received: Vec<Received>,
    /// Statuses for the next requests, before `mode` applies.
    script: VecDeque<u16>,
    mode: Option<Mode>,
}

/// A webhook receiver on 127.0.0.1; it stops when dropped.
pub(crate) struct Hook {
    state: Arc<Mutex<HookState>>,
    pub(crate) url: String,
    _server: FakeHttp,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<HookState>>>,
) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let answer = {
        let mut s = state.lock().unwrap();
        let answer = match s.script.pop_front() {
            Some(status) => Some(status),
            None => match s.mode.unwrap_or(Mode::Up) {
                Mode::Up => Some(200),
                Mode::Down => Some(503),
                Mode::Refuse => Some(400),
                Mode::Hang => None,
            },
        };
        s.received.push(Received {
            path: req.path().to_owned(),
            headers,
            body: body.to_vec(),
            answered: answer,
        });
        answer
    };
    match answer {
        Some(status) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .body(if status == 400 {
                "bad payload: the receiver does not like it"
            } else {
                ""
            }),
        None => std::future::pending().await,
    }
}

impl Hook {
    pub(crate) async fn start() -> Self {
        let state = Arc::new(Mutex::new(HookState::default()));
        let data = web::Data::new(state.clone());
        let server = FakeHttp::start(move |cfg| {
            cfg.app_data(data.clone()).default_service(web::to(receive));
        });
        Self {
            state,
            url: server.url.clone(),
            _server: server,
        }
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// The next requests are answered with these statuses, then as the mode says.
    fn script(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses);
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Requests answered 200, by delivery id.
    pub(crate) fn delivered(&self) -> HashMap<String, Vec<Received>> {
        let mut out: HashMap<String, Vec<Received>> = HashMap::new();
        for r in self.received() {
            if r.answered == Some(200) {
                out.entry(r.delivery()).or_default().push(r);
            }
        }
        out
    }

    /// Waits until `count` requests arrived.
    async fn wait_for_requests(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} requests arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until each of `deliveries` was answered 200.
    async fn wait_for_deliveries(&self, deliveries: &HashSet<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let delivered = self.delivered();
            let missing: Vec<&String> = deliveries
                .iter()
                .filter(|d| !delivered.contains_key(*d))
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not delivered: {missing:?}; received: {:?}",
                self.received()
                    .iter()
                    .map(|r| (r.delivery(), r.answered))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The signature a receiver expects: HMAC-SHA256 of `"<timestamp>.<delivery>\n<body>"`, hex.
fn expected_signature(timestamp: &str, delivery: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{delivery}\n").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Checks a request as a receiver would: fresh timestamp, valid signature over the delivery id
/// and the body.
fn assert_authentic(r: &Received) {
    let timestamp = r.header("X-Notifications-Timestamp");
    let sent: u64 = timestamp.parse().expect("unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sent) < 60, "stale timestamp {sent} at {now}");
    assert_eq!(
        r.header("X-Notifications-Signature"),
        expected_signature(timestamp, &r.delivery(), &r.body)
    );
    assert_eq!(r.header("Content-Type"), "application/json");
}

/// Fast retries, and webhooks at `hook` (YAML flow entries after the first default one).
pub(crate) fn config(hook: &Hook, more_hooks: &str) -> String {
    format!(
        "notifications:
  delivery: {{retryDelay: 20ms, maxRetryDelay: 100ms, pollInterval: 50ms, maxAttempts: 50}}
  processors:
    webhook:
      - url: {url}/hook
        secret: {SECRET}
        timeout: 2s
        headers: {{X-Team: platform}}
{more_hooks}",
        url = hook.url
    )
}

/// A scope re-send updates the notification (same id) and is a delivery of its own: receivers
/// that drop duplicate delivery ids still get it.
async fn a_scope_resend_is_a_new_delivery(kind: DbKind) {
    let hook = Hook::start().await;
    let Some(app) = TestApp::start(kind, &config(&hook, "")).await else {
        return;
    };
    let send = |title: &str| json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": title, "scope": "build-7"}});
    let first = app.send_ok(send("running")).await;
    let second = app.send_ok(send("failed")).await;
    assert_eq!(first[0]["id"], second[0]["id"]);
    let received = hook.wait_for_requests(2).await;
    let ids: HashSet<String> = received
        .iter()
        .map(|r| r.header("X-Notifications-Delivery").to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&format!("{}:Webhook", first[0]["id"].as_str().unwrap())));
}
on_both_databases!(a_scope_resend_is_a_new_delivery);

async fn a_send_reaches_the_hook_signed(kind: DbKind) {
    let hook = Hook::start().await;
    let Some(app) = TestApp::start(kind, &config(&hook, "")).await else {
        return;
    };
    let created = app
        .send_ok(json!({
            "recipients": {"type": "entity", "entityRef": USER},
            "payload": {"title": "deploy failed", "description": "d", "severity": "high", "topic": "deploys", "link": "/x"},
        }))
        .await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let received = hook.wait_for_requests(1).await;
    let r = &received[0];
    assert_eq!(r.path, "/hook");
    assert_authentic(r);
    assert_eq!(
        r.header("X-Notifications-Delivery"),
        format!("{id}:Webhook")
    );
    assert_eq!(
        r.header("X-Team"),
        "platform",
        "configured headers are sent"
    );
    // The documented body: the notification as stored, in the shape the API reads it back
    // (every key, null where unset), and the send's recipients; nothing else.
    let body = r.json();
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["notification", "recipients"]
    );
    let read_back = app
        .get(&format!("/notifications/{id}"), &app.user_token(USER))
        .await;
    assert_eq!(read_back.status, 200, "{}", read_back.text);
    assert_eq!(body["notification"], read_back.body);
    assert_eq!(body["notification"]["read"], Value::Null);
    assert_eq!(body["notification"]["payload"]["icon"], Value::Null);
    assert_eq!(body["notification"]["user"], USER);
    assert_eq!(body["notification"]["origin"], SERVICE);
    assert_eq!(body["notification"]["payload"]["severity"], "high");
    assert_eq!(body["recipients"]["type"], "entity");
    assert_eq!(body["recipients"]["entityRef"], USER);
    let row = outcome(&app.db.store(), &id, "Webhook", "delivered").await;
    assert_eq!(row.attempts, 1);

    // A tampered body, or the body replayed under another delivery id, does not verify.
    let timestamp = r.header("X-Notifications-Timestamp");
    let mut tampered = r.body.clone();
    tampered.push(b' ');
    assert_ne!(
        r.header("X-Notifications-Signature"),
        expected_signature(timestamp, &r.delivery(), &tampered)
    );
    assert_ne!(
        r.header("X-Notifications-Signature"),
        expected_signature(timestamp, &format!("{id}:Webhook:replayed"), &r.body)
    );

    // A broadcast: one delivery, no user.
    let b = app.broadcast(json!({"title": "to all"})).await;
    let received = hook.wait_for_requests(2).await;
    let r = &received[1];
    assert_authentic(r);
    assert_eq!(r.header("X-Notifications-Delivery"), format!("{b}:Webhook"));
    let body = r.json();
    assert_eq!(body["notification"]["id"], b.as_str());
    assert_eq!(body["notification"]["user"], Value::Null);
    assert_eq!(body["recipients"], json!({"type": "broadcast"}));
    outcome(&app.db.store(), &b, "Webhook", "delivered").await;
}
on_both_databases!(a_send_reaches_the_hook_signed);

async fn an_outage_then_recovery_delivers_each_exactly_once(kind: DbKind) {
    let hook = Hook::start().await;
    hook.set(Mode::Down);
    let Some(app) = TestApp::start(kind, &config(&hook, "")).await else {
        return;
    };
    let users: Vec<String> = (0..10).map(|i| format!("user:default/u{i}")).collect();
    let created = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": users}, "payload": {"title": "t"}}))
        .await;
    assert_eq!(created.len(), 10);
    let b = app.broadcast(json!({"title": "all"})).await;
    let mut ids: Vec<String> = created
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    ids.push(b);
    let expected: HashSet<String> = ids.iter().map(|id| format!("{id}:Webhook")).collect();
    // Every delivery is tried and refused at least twice during the outage.
    hook.wait_for_requests(3 * expected.len()).await;
    assert!(hook.delivered().is_empty());
    hook.set(Mode::Up);
    hook.wait_for_deliveries(&expected).await;
    // Anything delivered twice would show up by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = hook.delivered();
    assert_eq!(
        delivered.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "the accepted deliveries, no others"
    );
    for (delivery, requests) in &delivered {
        assert_eq!(requests.len(), 1, "{delivery} delivered more than once");
        assert_authentic(&requests[0]);
        // The delivery id names the notification in the body.
        let id = requests[0].json()["notification"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(*delivery, format!("{id}:Webhook"));
    }
    // Retries of one delivery carry the same delivery id and the same body, freshly signed.
    let first = &ids[0];
    let tries: Vec<Received> = hook
        .received()
        .into_iter()
        .filter(|r| r.delivery() == format!("{first}:Webhook"))
        .collect();
    assert!(tries.len() >= 2, "{tries:?}");
    assert!(tries.iter().all(|r| r.body == tries[0].body));
    tries.iter().for_each(assert_authentic);
    for id in &ids {
        let row = outcome(&app.db.store(), id, "Webhook", "delivered").await;
        assert!(row.attempts >= 2, "{row:?}");
    }
}
on_both_databases!(an_outage_then_recovery_delivers_each_exactly_once);

async fn statuses_are_classified(kind: DbKind) {
    let hook = Hook::start().await;
    let Some(app) = TestApp::start(kind, &config(&hook, "")).await else {
        return;
    };
    // 408, 429 and 5xx are retried.
    hook.script(&[408, 429, 500, 502]);
    let id = app.send_to(USER, json!({"title": "retried"})).await;
    let row = outcome(&app.db.store(), &id, "Webhook", "delivered").await;
    assert_eq!(row.attempts, 5);
    assert_eq!(hook.received().len(), 5);

    // Another 4xx is refused for good, with the status and the start of the answer.
    hook.set(Mode::Refuse);
    let id = app.send_to(USER, json!({"title": "refused"})).await;
    let row = outcome(&app.db.store(), &id, "Webhook", "failed").await;
    assert_eq!(row.attempts, 1, "permanent failures are not retried");
    assert_eq!(
        row.last_error.as_deref(),
        Some(
            "the webhook answered 400 Bad Request: \"bad payload: the receiver does not like it\""
        )
    );
    let failed = app
        .db
        .store()
        .deliveries(
            Some(notifications_backend::testing::store::DeliveryStatus::Failed),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].notification_id.to_string(), id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 6, "not tried again");
}
on_both_databases!(statuses_are_classified);

async fn an_unreachable_hook_is_retried(kind: DbKind) {
    // A port nobody listens on: connection refused, a transient failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = format!(
        "notifications:
  delivery: {{retryDelay: 20ms, maxRetryDelay: 20ms, pollInterval: 50ms, maxAttempts: 2}}
  processors:
    webhook: [{{name: Gone, url: '{url}', secret: {SECRET}}}]"
    );
    let Some(app) = TestApp::start(kind, &config).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let row = outcome(&app.db.store(), &id, "Gone", "failed").await;
    assert_eq!(row.attempts, 2, "retried: {row:?}");
    let error = row.last_error.unwrap();
    assert!(error.starts_with("cannot reach the webhook"), "{error}");
    assert!(error.ends_with("(gave up after 2 attempts)"), "{error}");
    assert!(!error.contains(&url), "no URL in errors: {error}");
}
on_both_databases!(an_unreachable_hook_is_retried);

async fn filters_and_settings_choose_what_the_hook_hears(kind: DbKind) {
    let hook = Hook::start().await;
    let pager = format!(
        "      - name: Pager
        url: {}/pager
        secret: {SECRET}
        filter: {{minSeverity: high, excludedTopics: [noise]}}
",
        hook.url
    );
    let Some(app) = TestApp::start(kind, &config(&hook, &pager)).await else {
        return;
    };
    let other = "user:default/other";
    // USER turns the Webhook channel off for this origin.
    let r = app
        .post(
            "/settings",
            &app.user_token(USER),
            &json!({"channels": [{"id": "Webhook", "origins": [{"id": SERVICE, "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let normal = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": [USER, other]}, "payload": {"title": "normal"}}))
        .await;
    let id_of = |user: &str, created: &[Value]| {
        created.iter().find(|n| n["user"] == user).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let noisy = app
        .send_to(
            USER,
            json!({"title": "noisy", "severity": "critical", "topic": "noise"}),
        )
        .await;
    let urgent = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": [USER, other]}, "payload": {"title": "urgent", "severity": "critical", "topic": "prod"}}))
        .await;
    let expected: HashSet<String> = [
        format!("{}:Webhook", id_of(other, &normal)),
        format!("{}:Webhook", id_of(other, &urgent)),
        format!("{}:Pager", id_of(other, &urgent)),
        format!("{}:Pager", id_of(USER, &urgent)),
    ]
    .into();
    hook.wait_for_deliveries(&expected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = hook.delivered();
    assert_eq!(
        delivered.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "USER's Webhook channel is off; Pager sees only severe, non-noise notifications"
    );
    for requests in delivered.values() {
        let r = &requests[0];
        let channel = r.delivery().rsplit(':').next().unwrap().to_owned();
        assert_eq!(
            r.path,
            if channel == "Pager" {
                "/pager"
            } else {
                "/hook"
            }
        );
        assert_authentic(r);
    }
    // Nothing was even queued for what was filtered out or switched off.
    let store = app.db.store();
    for id in [id_of(USER, &normal), noisy] {
        let rows = store
            .deliveries(
                None,
                Some(NotificationId(uuid::Uuid::parse_str(&id).unwrap())),
                10,
            )
            .await
            .unwrap();
        assert!(rows.is_empty(), "{rows:?}");
    }
}
on_both_databases!(filters_and_settings_choose_what_the_hook_hears);

// The real binary, killed with SIGKILL while a delivery is in flight.

const CRASH_TOKEN: &str = "crash-test-token";

async fn serve(dir: &Path, config: &Path, database: &Path) -> (Child, Api) {
    crate::support::serve_binary(
        dir,
        &[config.to_owned(), database.to_owned()],
        &[("WEBHOOK_SECRET", SECRET)],
    )
    .await
}

async fn a_killed_binary_delivers_once_after_restart(kind: DbKind, mode: Mode) {
    let Some(db) = TestDb::create(kind) else {
        return;
    };
    let hook = Hook::start().await;
    hook.set(mode);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("app-config.yaml");
    let database = dir.path().join("database.yaml");
    std::fs::write(&database, db.config_yaml()).unwrap();
    std::fs::write(
        &config,
        format!(
            "backend:
  listen: {{host: 127.0.0.1, port: 0}}
  auth:
    externalAccess:
      - type: static
        options: {{token: {CRASH_TOKEN}, subject: external:crash-test}}
notifications:
  delivery: {{timeout: 1s, retryDelay: 50ms, maxRetryDelay: 200ms, pollInterval: 50ms, maxAttempts: 100}}
  processors:
    webhook:
      - url: {}/hook
        secret: ${{WEBHOOK_SECRET}}
        timeout: 5s
",
            hook.url
        ),
    )
    .unwrap();

    let (mut child, api) = serve(dir.path(), &config, &database).await;
    let users: Vec<String> = (0..3).map(|i| format!("user:default/u{i}")).collect();
    let r = api
        .post(
            "",
            CRASH_TOKEN,
            &json!({"recipients": {"type": "entity", "entityRef": users}, "payload": {"title": "t"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<String> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = ids.iter().map(|id| format!("{id}:Webhook")).collect();
    // Every delivery has reached the hook (which hangs or fails) when the process dies.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hook
        .received()
        .iter()
        .map(Received::delivery)
        .collect::<HashSet<_>>()
        != expected
    {
        assert!(Instant::now() < deadline, "the deliveries never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().await.expect("SIGKILL");
    assert!(hook.delivered().is_empty());

    hook.set(Mode::Up);
    let (mut restarted, _api) = serve(dir.path(), &config, &database).await;
    hook.wait_for_deliveries(&expected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = hook.delivered();
    assert_eq!(delivered.keys().cloned().collect::<HashSet<_>>(), expected);
    for (delivery, requests) in &delivered {
        assert_eq!(requests.len(), 1, "{delivery} delivered more than once");
        assert_authentic(&requests[0]);
    }
    let store = db.store();
    for id in &ids {
        let row = outcome(&store, id, "Webhook", "delivered").await;
        assert!(row.attempts >= 2, "{row:?}");
    }
    restarted.kill().await.expect("SIGKILL");
}

macro_rules! crash_test {
    ($name:ident, $mode:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                a_killed_binary_delivers_once_after_restart(DbKind::Sqlite, $mode).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                a_killed_binary_delivers_once_after_restart(DbKind::Postgres, $mode).await
            }
        }
    };
}

crash_test!(killed_while_the_hook_hangs, Mode::Hang);
crash_test!(killed_during_an_outage, Mode::Down);

#[tokio::test]
async fn a_bad_webhook_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (webhook, expected) in [
        (
            "[{url: 'http://h', secret: too-short}]",
            "invalid configuration at notifications.processors.webhook[0].secret: must be at least 16 bytes",
        ),
        (
            "[{url: 'http://h', secret: 0123456789abcdef}, {url: 'mailto:x', secret: 0123456789abcdef}]",
            "invalid configuration at notifications.processors.webhook[1].url",
        ),
    ] {
        let config = notifications_backend::config::Config::from_yaml_str(&format!(
            "backend: {{listen: {{port: 0}}, database: {{client: better-sqlite3, connection: ':memory:'}}}}
notifications: {{processors: {{webhook: {webhook}}}}}"
        ))
        .unwrap();
        let err = notifications_backend::BackendBuilder::new(config, dir.path())
            .handle_signals(false)
            .start()
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(err.starts_with(expected), "{err}");
        assert!(
            !err.contains("too-short"),
            "the secret is not echoed: {err}"
        );
    }
}
