//! `GET /metrics` and request ids: every metric a running backend exposes is documented in
//! `docs/deployment.md` and every documented one is exposed (so the two cannot drift), the
//! figures move with what happens, and each request's id is echoed and logged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::process::Command;

use crate::on_both_databases;

use crate::support::{
    Api, BIN, DbKind, SERVICE_TOKEN, TestApp, TestDb, USER, config_files, outcome, spawn_serving,
    user_token,
};

const DOCS: &str = include_str!("../../../../docs/deployment.md");

/// A port nobody listens on: a webhook there fails at once (connection refused).
fn closed_url() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", closed.local_addr().unwrap())
}

/// Metrics on, one attempt per delivery, and a webhook `name` that cannot be reached.
fn config(name: &str, delivery: &str) -> String {
    format!(
        "notifications:
  metrics: {{enabled: true}}
  delivery: {{{delivery}}}
  processors:
    webhook: [{{name: {name}, url: '{url}', secret: a-webhook-secret-of-some-length}}]",
        url = closed_url()
    )
}

/// The documented metrics (name -> type), and whether each is for one database only.
fn documented() -> BTreeMap<String, (String, Option<DbKind>)> {
    let section = DOCS
        .split("## Metrics")
        .nth(1)
        .expect("a Metrics section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `notifications_"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = format!("notifications_{}", cells[0].trim_end_matches('`'));
            let only = if cells[3].starts_with("SQLite only") {
                Some(DbKind::Sqlite)
            } else if cells[3].starts_with("PostgreSQL only") {
                Some(DbKind::Postgres)
            } else {
                None
            };
            (name, (cells[1].to_owned(), only))
        })
        .collect()
}

/// The metric families a scrape exposes (name -> type), from its `# TYPE` lines.
fn exposed(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

pub(crate) async fn scrape(root: &str) -> String {
    let res = reqwest::get(format!("{root}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as rendered).
pub(crate) fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The real binary after some traffic: what it exposes and what the docs list are the same
/// metrics, of the same types. It is also started with `RUST_LOG=error` and `--log-level`
/// asking for debug: the flag wins, and each request's debug line carries its id.
async fn every_metric_is_documented_and_exposed(kind: DbKind) {
    let Some(db) = TestDb::create(kind) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config("Unreachable", "maxAttempts: 1, pollInterval: 50ms");
    let mut command = Command::new(BIN);
    command
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .env_remove("NOTIFICATIONS_DATA_DIR");
    for file in config_files(&db, dir.path(), &config) {
        command.arg("--config").arg(file);
    }
    command.arg("--data-dir").arg(dir.path().join("data"));
    command.args(["serve", "--log-level", "notifications_backend=debug"]);
    let (_child, address, _, log) = spawn_serving(command, &[]).await;
    let api = Api::new(&format!("http://{address}"));

    let sent = api
        .post(
            "/notifications",
            SERVICE_TOKEN,
            &json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t"}}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let id = sent.body[0]["id"].as_str().unwrap();
    outcome(&db.store(), id, "Unreachable", "failed").await;
    let res = reqwest::Client::new()
        .get(api.url("/notifications"))
        .bearer_auth(user_token(USER))
        .header("X-Request-Id", "metrics-docs-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let text = scrape(&api.root).await;
    let exposed = exposed(&text);
    let documented = documented();
    for (name, kind_) in &exposed {
        let doc = documented.get(name);
        assert!(doc.is_some(), "{name} is exposed but not documented");
        assert_eq!(doc.map(|d| &d.0), Some(kind_), "{name}'s type");
    }
    for (name, (_, only)) in &documented {
        if only.is_none_or(|only| only == kind) {
            assert!(
                exposed.contains_key(name),
                "{name} is documented but not exposed:\n{text}"
            );
        } else {
            assert!(!exposed.contains_key(name), "{name} is not for {kind:?}");
        }
    }

    // The request's log line, at debug although RUST_LOG says error, carries its id.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = log.lock().unwrap().clone();
        if lines
            .iter()
            .any(|l| l.contains("metrics-docs-42") && l.contains("status=200"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request line with its id: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
on_both_databases!(every_metric_is_documented_and_exposed);

/// The histogram counts a request under its route's pattern and status, never under the path
/// with the id; the pool's figures are there.
async fn requests_are_counted_by_route_and_status(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "notifications: {metrics: {enabled: true}}").await else {
        return;
    };
    let series = r#"notifications_http_request_duration_seconds_count{method="GET",route="/api/notifications/notifications/{id}",status="404"}"#;
    let before = value(&scrape(&app.root).await, series).unwrap_or(0.0);
    let missing = "0b9c9e61-5b7e-4c8e-9a55-7d1e0c6f2a11";
    let r = app
        .get(&format!("/notifications/{missing}"), &user_token(USER))
        .await;
    assert_eq!(r.status, 404);
    let text = scrape(&app.root).await;
    let after = value(&text, series).unwrap_or(0.0);
    assert!(after >= before + 1.0, "{before} -> {after}:\n{text}");
    assert!(!text.contains(missing), "a raw path became a label");
    assert!(value(&text, "notifications_db_pool_max_connections").unwrap() >= 1.0);
    assert!(text.contains("notifications_db_pool_connections{state=\"in_use\"}"));
}
on_both_databases!(requests_are_counted_by_route_and_status);

/// A delivery that failed for good shows in its channel's `failed` gauge.
async fn a_failed_delivery_shows_in_the_queue(kind: DbKind) {
    // Channels of their own: the recorder is shared by the backends of this process.
    let channel = format!("QueueFailed{kind:?}");
    let config = config(&channel, "maxAttempts: 1, pollInterval: 50ms");
    let Some(app) = TestApp::start(kind, &config).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    outcome(&app.db.store(), &id, &channel, "failed").await;
    let text = scrape(&app.root).await;
    let gauge =
        |state| format!(r#"notifications_delivery_queue{{channel="{channel}",state="{state}"}}"#);
    assert_eq!(value(&text, &gauge("failed")), Some(1.0), "{text}");
    assert_eq!(value(&text, &gauge("pending")), Some(0.0), "{text}");
    assert_eq!(value(&text, &gauge("in_flight")), Some(0.0), "{text}");
    let age = format!(r#"notifications_delivery_queue_oldest_age_seconds{{channel="{channel}"}}"#);
    assert_eq!(value(&text, &age), Some(0.0), "nothing pending: {text}");
}
on_both_databases!(a_failed_delivery_shows_in_the_queue);

/// A delivery waiting for its retry is pending, and the oldest one's age shows.
async fn a_waiting_delivery_shows_as_pending_with_its_age(kind: DbKind) {
    let channel = format!("QueuePending{kind:?}");
    let config = config(
        &channel,
        "maxAttempts: 3, retryDelay: 1h, maxRetryDelay: 1h, pollInterval: 50ms",
    );
    let Some(app) = TestApp::start(kind, &config).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let store = app.db.store();
    let notification = notifications_common::NotificationId(uuid::Uuid::parse_str(&id).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    // Until the first attempt failed and the row waits for its retry.
    loop {
        let rows = store
            .deliveries(None, Some(notification), 10)
            .await
            .unwrap();
        if rows
            .iter()
            .any(|r| r.attempts == 1 && r.last_error.is_some() && r.locked_until.is_none())
        {
            break;
        }
        assert!(Instant::now() < deadline, "no attempt failed: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = scrape(&app.root).await;
    let gauge =
        |state| format!(r#"notifications_delivery_queue{{channel="{channel}",state="{state}"}}"#);
    assert_eq!(value(&text, &gauge("pending")), Some(1.0), "{text}");
    assert_eq!(value(&text, &gauge("failed")), Some(0.0), "{text}");
    let age = format!(r#"notifications_delivery_queue_oldest_age_seconds{{channel="{channel}"}}"#);
    assert!(value(&text, &age).unwrap() > 0.0, "{text}");
}
on_both_databases!(a_waiting_delivery_shows_as_pending_with_its_age);

/// A sane `X-Request-Id` is echoed; none, or one too long or with spaces or control characters,
/// gets a fresh id; errors carry it too.
async fn request_ids_are_echoed_or_generated(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let client = reqwest::Client::new();
    let id_of = |header: Option<String>, path: &'static str| {
        let mut req = client.get(format!("{}{path}", app.root));
        if let Some(h) = header {
            req = req.header("X-Request-Id", h);
        }
        async move {
            let res = req.send().await.unwrap();
            res.headers()
                .get("x-request-id")
                .expect("an id in every answer")
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let liveness = "/.backstage/health/v1/liveness";
    assert_eq!(
        id_of(Some("trace-7f3a:b/1".into()), liveness).await,
        "trace-7f3a:b/1"
    );
    // A 401 and an unknown path answer with the caller's id too.
    assert_eq!(
        id_of(Some("abc".into()), "/api/notifications/notifications").await,
        "abc"
    );
    assert_eq!(id_of(Some("abc".into()), "/no/such/path").await, "abc");
    let generated = id_of(None, liveness).await;
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(generated.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(id_of(None, liveness).await, generated);
    for bad in [
        "has space".to_owned(),
        "x".repeat(129),
        "tab\there".to_owned(),
    ] {
        let id = id_of(Some(bad.clone()), liveness).await;
        assert_ne!(id, bad);
        assert_eq!(id.len(), 32, "{bad:?} -> {id}");
    }
}
on_both_databases!(request_ids_are_echoed_or_generated);
