//! Processors (contract sections 3.4 and 3.5): the order and effect of their hooks, filters, the
//! users' channel settings, and durable delivery: retries, failures kept visible, redelivery
//! after a shutdown, several instances on one queue without double delivery.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use notifications_backend::BackendBuilder;
use notifications_backend::config::Config;
use notifications_backend::testing::store::DeliveryStatus;
use notifications_common::{
    Notification, NotificationId, NotificationSendOptions, NotificationSeverity,
};
use notifications_node::{NotificationProcessorFilters, Processor, ProcessorError};
use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::outcome;
use crate::support::{DbKind, SERVICE, TestApp, USER};

/// What processors saw, shared between processors (and instances) of a test.
#[derive(Clone, Default)]
struct Journal {
    delivered: Arc<Mutex<Vec<(String, Notification, NotificationSendOptions)>>>,
    attempts: Arc<AtomicUsize>,
}

impl Journal {
    fn delivered(&self, channel: &str) -> Vec<(Notification, NotificationSendOptions)> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _, _)| c == channel)
            .map(|(_, n, o)| (n.clone(), o.clone()))
            .collect()
    }

    /// Waits until `channel` got `count` deliveries.
    async fn wait_for(
        &self,
        channel: &str,
        count: usize,
    ) -> Vec<(Notification, NotificationSendOptions)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let delivered = self.delivered(channel);
            if delivered.len() >= count {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "{channel}: {} of {count} deliveries",
                delivered.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Failing {
    No,
    /// Transiently, this many times, then it works.
    Times(usize),
    Always,
    Permanently,
    /// Never answers.
    Hangs,
    Panics,
    /// Takes half a second.
    Slow,
    /// Says "later" this many times, then it works.
    LaterTimes(usize),
}

struct Recorder {
    name: &'static str,
    journal: Journal,
    filters: NotificationProcessorFilters,
    failing: Failing,
    failures: AtomicUsize,
}

fn recorder(name: &'static str, journal: &Journal) -> Recorder {
    Recorder {
        name,
        journal: journal.clone(),
        filters: NotificationProcessorFilters::default(),
        failing: Failing::No,
        failures: AtomicUsize::new(0),
    }
}

impl Recorder {
    fn failing(mut self, failing: Failing) -> Self {
        self.failing = failing;
        self
    }

    fn filters(mut self, filters: NotificationProcessorFilters) -> Self {
        self.filters = filters;
        self
    }
}

#[async_trait]
impl Processor for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn filters(&self) -> NotificationProcessorFilters {
        self.filters.clone()
    }

    async fn process_options(
        &self,
        mut options: NotificationSendOptions,
    ) -> Result<NotificationSendOptions, ProcessorError> {
        if self.name == "Alpha" {
            options.payload.title.push_str(" [a]");
        }
        Ok(options)
    }

    async fn pre_process(
        &self,
        mut notification: Notification,
        _: &NotificationSendOptions,
    ) -> Result<Notification, ProcessorError> {
        if self.name == "Broken" {
            return Err(ProcessorError::Permanent("pre_process fails".into()));
        }
        if self.name == "Evil" {
            notification.payload.link = Some("javascript:alert(1)".into());
            return Ok(notification);
        }
        let description = notification.payload.description.take().unwrap_or_default();
        notification.payload.description = Some(format!("{description}|{}", self.name));
        Ok(notification)
    }

    async fn post_process(
        &self,
        notification: &Notification,
        options: &NotificationSendOptions,
    ) -> Result<(), ProcessorError> {
        self.journal.attempts.fetch_add(1, Ordering::SeqCst);
        let failures = self.failures.fetch_add(1, Ordering::SeqCst);
        match self.failing {
            Failing::Times(n) if failures < n => {
                return Err(ProcessorError::Transient("peer is down".into()));
            }
            Failing::Always => return Err(ProcessorError::Transient("peer is down".into())),
            Failing::Permanently => return Err(ProcessorError::Permanent("bad address".into())),
            Failing::Hangs => std::future::pending::<()>().await,
            Failing::Panics => panic!("a bug in the processor"),
            Failing::Slow => tokio::time::sleep(Duration::from_millis(500)).await,
            Failing::LaterTimes(n) if failures < n => {
                return Err(ProcessorError::Later {
                    after: Duration::from_millis(10),
                    reason: "rate limit of my own".into(),
                });
            }
            _ => {}
        }
        self.journal.delivered.lock().unwrap().push((
            self.name.to_owned(),
            notification.clone(),
            options.clone(),
        ));
        Ok(())
    }
}

async fn start(kind: DbKind, yaml: &str, processors: Vec<Recorder>) -> Option<TestApp> {
    TestApp::start_with(
        kind,
        yaml,
        Some(Box::new(move |mut b: BackendBuilder| {
            for p in processors {
                b = b.processor(p);
            }
            b
        })),
    )
    .await
}

/// Fast retries for the tests.
const QUICK: &str = "notifications: {delivery: {retryDelay: 20ms, maxRetryDelay: 50ms, pollInterval: 50ms, maxAttempts: 3}}";

fn to(users: Value, payload: Value) -> Value {
    json!({"recipients": {"type": "entity", "entityRef": users}, "payload": payload})
}

async fn hooks_run_in_order_and_deliveries_arrive(kind: DbKind) {
    let journal = Journal::default();
    let processors = vec![recorder("Alpha", &journal), recorder("Beta", &journal)];
    let Some(app) = start(kind, "", processors).await else {
        return;
    };
    let created = app
        .send_ok(to(json!(USER), json!({"title": "t", "description": "x"})))
        .await;
    // process_options rewrote the send; each pre_process in registration order left its mark.
    assert_eq!(created[0]["payload"]["title"], "t [a]");
    assert_eq!(created[0]["payload"]["description"], "x|Alpha|Beta");
    let id = created[0]["id"].as_str().unwrap();
    let inbox = app.list(USER, "").await;
    assert_eq!(
        inbox["notifications"][0]["payload"]["description"],
        "x|Alpha|Beta"
    );
    for channel in ["Alpha", "Beta"] {
        let delivered = journal.wait_for(channel, 1).await;
        let (n, options) = &delivered[0];
        assert_eq!(n.id.to_string(), id);
        assert_eq!(n.user.as_deref(), Some(USER));
        assert_eq!(n.origin, SERVICE);
        assert_eq!(n.payload.description.as_deref(), Some("x|Alpha|Beta"));
        assert_eq!(options.payload.title, "t [a]");
    }
    // A broadcast goes to every processor once.
    let b = app.broadcast(json!({"title": "all"})).await;
    for channel in ["Alpha", "Beta"] {
        let delivered = journal.wait_for(channel, 2).await;
        assert_eq!(delivered[1].0.id.to_string(), b);
        assert_eq!(delivered[1].0.user, None);
    }
    // Outcomes are recorded per notification and channel.
    let id = NotificationId(uuid::Uuid::parse_str(id).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = app
            .db
            .store()
            .deliveries(Some(DeliveryStatus::Delivered), Some(id), 10)
            .await
            .unwrap();
        let mut channels: Vec<String> = rows.iter().map(|r| r.channel.clone()).collect();
        channels.sort();
        if channels == ["Alpha", "Beta"] {
            assert!(
                rows.iter()
                    .all(|r| r.attempts == 1 && r.last_error.is_none())
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "outcomes not recorded: {channels:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
on_both_databases!(hooks_run_in_order_and_deliveries_arrive);

async fn filters_and_user_settings_choose_the_channels(kind: DbKind) {
    let journal = Journal::default();
    let processors = vec![
        recorder("Loud", &journal).filters(NotificationProcessorFilters {
            min_severity: Some(NotificationSeverity::High),
            ..Default::default()
        }),
        recorder("Builds", &journal).filters(NotificationProcessorFilters {
            included_topics: Some(vec!["builds".into()]),
            ..Default::default()
        }),
        recorder("Optin", &journal),
    ];
    let config = "notifications: {defaultSettings: {channels: [{id: Optin, enabled: false}]}}";
    let Some(app) = start(kind, config, processors).await else {
        return;
    };
    let other = "user:default/other";
    let quiet = "user:default/quiet";
    // USER turns Builds off for this origin; quiet turns the inbox (Web) off; other opts in.
    for (user, channel) in [(USER, "Builds"), (quiet, "Web")] {
        let r = app
            .post(
                "/settings",
                &app.user_token(user),
                &json!({"channels": [{"id": channel, "origins": [{"id": SERVICE, "enabled": false}]}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = app
        .post(
            "/settings",
            &app.user_token(other),
            &json!({"channels": [{"id": "Optin", "origins": [{"id": SERVICE, "enabled": true}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    let created = app
        .send_ok(to(
            json!([USER, other, quiet]),
            json!({"title": "build 1", "topic": "builds"}),
        ))
        .await;
    let stored: HashSet<&str> = created
        .iter()
        .map(|n| n["user"].as_str().unwrap())
        .collect();
    assert_eq!(stored, HashSet::from([USER, other]), "quiet's inbox is off");
    let builds = journal.wait_for("Builds", 2).await;
    let reached: HashSet<String> = builds
        .iter()
        .map(|(n, _)| n.user.clone().unwrap())
        .collect();
    assert_eq!(reached, HashSet::from([other.to_owned(), quiet.to_owned()]));
    let optin = journal.wait_for("Optin", 1).await;
    assert_eq!(
        optin[0].0.user.as_deref(),
        Some(other),
        "opt-in channel: only who opted in"
    );

    app.send_ok(to(
        json!(other),
        json!({"title": "fire", "severity": "critical"}),
    ))
    .await;
    let loud = journal.wait_for("Loud", 1).await;
    assert_eq!(loud[0].0.payload.title, "fire");
    journal.wait_for("Optin", 2).await;
    // Filters: the normal build notification never reached Loud; the untopical one not Builds.
    assert_eq!(journal.delivered("Loud").len(), 1);
    assert_eq!(journal.delivered("Builds").len(), 2);
}
on_both_databases!(filters_and_user_settings_choose_the_channels);

async fn failures_are_retried_then_kept_as_failed(kind: DbKind) {
    let journal = Journal::default();
    let processors = vec![
        recorder("Flaky", &journal).failing(Failing::Times(2)),
        recorder("Down", &journal).failing(Failing::Always),
        recorder("Refused", &journal).failing(Failing::Permanently),
        // Its pre_process fails: logged and skipped, the send goes on.
        recorder("Broken", &journal),
        // A panic fails its delivery, not the worker.
        recorder("Buggy", &journal).failing(Failing::Panics),
        // "Later" uses up no attempt: five of them with three attempts allowed still deliver.
        recorder("Patient", &journal).failing(Failing::LaterTimes(5)),
    ];
    let Some(app) = start(kind, QUICK, processors).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let flaky = outcome(&app.db.store(), &id, "Flaky", "delivered").await;
    assert_eq!(flaky.attempts, 3);
    assert_eq!(journal.delivered("Flaky").len(), 1, "delivered once");
    let down = outcome(&app.db.store(), &id, "Down", "failed").await;
    assert_eq!(down.attempts, 3);
    assert_eq!(
        down.last_error.as_deref(),
        Some("peer is down (gave up after 3 attempts)")
    );
    let refused = outcome(&app.db.store(), &id, "Refused", "failed").await;
    assert_eq!(refused.attempts, 1, "permanent failures are not retried");
    assert_eq!(refused.last_error.as_deref(), Some("bad address"));
    outcome(&app.db.store(), &id, "Broken", "delivered").await;
    let patient = outcome(&app.db.store(), &id, "Patient", "delivered").await;
    assert_eq!(patient.attempts, 1);
    let buggy = outcome(&app.db.store(), &id, "Buggy", "failed").await;
    assert_eq!(buggy.last_error.as_deref(), Some("the processor panicked"));
    let failed = app
        .db
        .store()
        .deliveries(Some(DeliveryStatus::Failed), None, 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 3, "failed deliveries stay visible");
    // The worker lives on.
    let next = app.send_to(USER, json!({"title": "next"})).await;
    outcome(&app.db.store(), &next, "Broken", "delivered").await;
}
on_both_databases!(failures_are_retried_then_kept_as_failed);

async fn a_delivery_hanging_at_shutdown_is_made_after_restart(kind: DbKind) {
    let journal = Journal::default();
    let config = "notifications: {delivery: {timeout: 1s, pollInterval: 50ms}}";
    let hung = recorder("Mail", &journal).failing(Failing::Hangs);
    let Some(mut app) = start(kind, config, vec![hung]).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.attempts.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the delivery never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stopping waits for the hung attempt until its timeout (recorded as a failed attempt); a
    // new instance makes it. (A process killed mid-delivery: see the webhook tests.)
    app.stop_backend().await;
    let _restarted = app
        .another_instance(config, |b| b.processor(recorder("Mail", &journal)))
        .await;
    let delivered = journal.wait_for("Mail", 1).await;
    assert_eq!(delivered[0].0.id.to_string(), id);
    let row = outcome(&app.db.store(), &id, "Mail", "delivered").await;
    assert_eq!(row.attempts, 2);
    assert_eq!(journal.delivered("Mail").len(), 1);
}
on_both_databases!(a_delivery_hanging_at_shutdown_is_made_after_restart);

async fn instances_share_the_queue_without_double_delivery(kind: DbKind) {
    let journal = Journal::default();
    let config = "notifications: {delivery: {pollInterval: 20ms, concurrency: 4}}";
    let Some(app) = start(kind, config, vec![recorder("Shared", &journal)]).await else {
        return;
    };
    let _second = app
        .another_instance(config, |b| b.processor(recorder("Shared", &journal)))
        .await;
    let users: Vec<String> = (0..300).map(|i| format!("user:default/u{i:03}")).collect();
    let created = app
        .send_ok(to(json!(users), json!({"title": "all of you"})))
        .await;
    assert_eq!(created.len(), 300);
    journal.wait_for("Shared", 300).await;
    // Anything delivered twice would show up by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delivered = journal.delivered("Shared");
    let ids: HashSet<String> = delivered.iter().map(|(n, _)| n.id.to_string()).collect();
    assert_eq!((delivered.len(), ids.len()), (300, 300));
}
on_both_databases!(instances_share_the_queue_without_double_delivery);

#[tokio::test]
async fn processor_names_must_be_unique_channels() {
    let journal = Journal::default();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_yaml_str(
        "backend: {listen: {port: 0}, database: {client: better-sqlite3, connection: ':memory:'}}",
    )
    .unwrap();
    for (a, b) in [("Email", "email"), ("Web", "Other")] {
        let err = BackendBuilder::new(config.clone(), dir.path())
            .handle_signals(false)
            .processor(recorder(a, &journal))
            .processor(recorder(b, &journal))
            .start()
            .await
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("processor names must be unique and not Web"),
            "{err}"
        );
    }
}

/// The operator's view: `notifications-backend deliveries` lists failed deliveries, `--retry`
/// queues them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliveries_command_lists_failures_and_queues_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::default();
    // The binary's defaults: the SQLite file in `data` under the working directory.
    let config = Config::from_yaml_str(
        "backend: {listen: {port: 0}, auth: {externalAccess: [{type: static, options: {token: test-service-token, subject: external:test-service}}]}}",
    )
    .unwrap();
    let running = BackendBuilder::new(config, dir.path().join("data"))
        .handle_signals(false)
        .processor(recorder("Mail", &journal).failing(Failing::Permanently))
        .start()
        .await
        .unwrap();
    let api = crate::support::Api::new(&format!("http://{}", running.local_addr()));
    let r = api
        .post(
            "/notifications",
            "test-service-token",
            &to(json!(USER), json!({"title": "t"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(20);
    while journal.attempts.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop(true).await.unwrap();

    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_notifications-backend"))
            .current_dir(dir.path())
            .env_remove("NOTIFICATIONS_DATA_DIR")
            .args(args)
            .output()
            .unwrap()
    };
    let listed = run(&["deliveries", "--status", "failed"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let text = String::from_utf8(listed.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("created\tstatus\tchannel\trecipient\tattempts"));
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(&fields[1..5], ["failed", "Mail", USER, "1"]);
    assert_eq!(fields[7], "bad address");

    let retried = run(&["deliveries", "--retry"]);
    assert!(
        retried.status.success(),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let pending = run(&["deliveries", "--status", "pending"]);
    let text = String::from_utf8(pending.stdout).unwrap();
    let fields: Vec<&str> = text
        .lines()
        .nth(1)
        .expect("queued again")
        .split('\t')
        .collect();
    assert_eq!(&fields[1..5], ["pending", "Mail", USER, "0"]);
    assert!(
        !run(&["deliveries", "--status", "nonsense"])
            .status
            .success()
    );
}

/// On PostgreSQL, a delivery queued by one instance wakes the worker of another at once
/// (LISTEN/NOTIFY), not at its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_instances_are_woken_through_postgres() {
    let journal = Journal::default();
    let slow_polls = "notifications: {delivery: {pollInterval: 10m}}";
    // The instance that takes the send queues the delivery but runs no worker.
    let api_only = "notifications: {delivery: {pollInterval: 10m, worker: false}}";
    let Some(app) = start(DbKind::Postgres, api_only, vec![recorder("Mail", &journal)]).await
    else {
        return;
    };
    let _worker = app
        .another_instance(slow_polls, |b| b.processor(recorder("Mail", &journal)))
        .await;
    // Give the other instance's first (empty) poll time to pass.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let delivered = journal.wait_for("Mail", 1).await;
    assert_eq!(delivered[0].0.id.to_string(), id);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Retention also removes the records of finished deliveries, never pending ones.
async fn retention_removes_finished_deliveries_only(kind: DbKind) {
    let journal = Journal::default();
    let processors = vec![
        recorder("Mail", &journal),
        recorder("Down", &journal).failing(Failing::Always),
    ];
    let config = "notifications: {delivery: {retryDelay: 1h, maxRetryDelay: 1h}}";
    let Some(app) = start(kind, config, processors).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    outcome(&app.db.store(), &id, "Mail", "delivered").await;
    let store = app.db.store();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The Down delivery failed once and waits an hour for its next attempt.
    while journal.attempts.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    assert_eq!(store.delete_inactive_since(later).await.unwrap(), 1);
    let left = store.deliveries(None, None, 10).await.unwrap();
    let left: Vec<(&str, &str)> = left
        .iter()
        .map(|r| (r.channel.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(left, [("Down", "pending")]);
}
on_both_databases!(retention_removes_finished_deliveries_only);

/// What `pre_process` returns is checked like a send: an unsafe result is dropped.
async fn invalid_pre_process_results_are_dropped(kind: DbKind) {
    let journal = Journal::default();
    let processors = vec![recorder("Evil", &journal), recorder("Beta", &journal)];
    let Some(app) = start(kind, "", processors).await else {
        return;
    };
    let created = app.send_ok(to(json!(USER), json!({"title": "t"}))).await;
    assert_eq!(created[0]["payload"]["link"], Value::Null);
    assert_eq!(created[0]["payload"]["description"], "|Beta");
}
on_both_databases!(invalid_pre_process_results_are_dropped);

/// With `notifications.metrics.enabled`, deliveries are counted at `GET /metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_counted_in_metrics() {
    let journal = Journal::default();
    let config = "notifications: {metrics: {enabled: true}, delivery: {retryDelay: 20ms, pollInterval: 50ms, maxAttempts: 2}}";
    let processors = vec![
        recorder("MetricsMail", &journal),
        recorder("MetricsDown", &journal).failing(Failing::Always),
    ];
    let app = start(DbKind::Sqlite, config, processors).await.unwrap();
    let id = app.send_to(USER, json!({"title": "t"})).await;
    outcome(&app.db.store(), &id, "MetricsMail", "delivered").await;
    outcome(&app.db.store(), &id, "MetricsDown", "failed").await;
    let text = reqwest::get(format!("{}/metrics", app.root))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"notifications_deliveries_total{channel="MetricsMail",outcome="delivered"} 1"#,
        r#"notifications_deliveries_total{channel="MetricsDown",outcome="retry"} 1"#,
        r#"notifications_deliveries_total{channel="MetricsDown",outcome="failed"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(text.contains("notifications_created_total{kind=\"user\"}"));
    // Off by default.
    let plain = start(DbKind::Sqlite, "", vec![]).await.unwrap();
    let r = reqwest::get(format!("{}/metrics", plain.root))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Stopping lets deliveries in progress finish and be recorded: a restart does not repeat them.
async fn stopping_finishes_deliveries_in_progress(kind: DbKind) {
    let journal = Journal::default();
    let slow = recorder("Mail", &journal).failing(Failing::Slow);
    let Some(mut app) = start(kind, "", vec![slow]).await else {
        return;
    };
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.attempts.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the delivery never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop_backend().await;
    let rows = app
        .db
        .store()
        .deliveries(
            None,
            Some(NotificationId(uuid::Uuid::parse_str(&id).unwrap())),
            10,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status.as_str(), rows[0].attempts),
        ("delivered", 1)
    );
    assert_eq!(journal.delivered("Mail").len(), 1);
}
on_both_databases!(stopping_finishes_deliveries_in_progress);
