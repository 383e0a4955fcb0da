//! The e-mail processor (contract section 6.1) against a real SMTP server: Python's `aiosmtpd`
//! running `tests/fixtures/smtp_sink.py`, which writes each mail it accepts as JSON.
//!
//! The interpreter is found (or `aiosmtpd` installed) as [`python::with_tool`] says.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use notifications_backend::BackendBuilder;
use notifications_backend::config::Config;
use notifications_backend::testing::store::DeliveryStatus;
use notifications_common::NotificationId;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::on_both_databases;
use crate::support::outcome;
use crate::support::{DbKind, SERVICE, TestApp, python};

const SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_sink.py");
const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/catalog/email-org.yaml"
);

/// A Python that can import `aiosmtpd`, installing it if need be.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| python::with_tool("aiosmtpd-venv", "import aiosmtpd", "aiosmtpd"))
}

/// A free port on the loopback interface (free when asked; the sink binds it later).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running SMTP sink and the mails it received.
pub(crate) struct Sink {
    _child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    pub(crate) async fn start(port: u16, reject: &[&str]) -> Self {
        Self::start_with(port, reject, None).await
    }

    async fn start_with(port: u16, reject: &[&str], auth: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python());
        command
            .arg(SINK)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for address in reject {
            command.args(["--reject", address]);
        }
        if let Some(auth) = auth {
            command.args(["--auth", auth]);
        }
        let mut child = command.spawn().expect("the SMTP sink starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink is ready in time")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("READY"), "the SMTP sink failed");
        Self { _child: child, dir }
    }

    /// The mails received so far, in order.
    pub(crate) fn mails(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let mut mail: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
                // Bodies travel with CRLF line ends.
                for body in ["text", "html"] {
                    if let Some(b) = mail[body].as_str() {
                        mail[body] = b.replace("\r\n", "\n").into();
                    }
                }
                mail
            })
            .collect()
    }

    /// The logins the server received (with `--auth`).
    fn logins(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("auth.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits for `count` mails, then a little longer to see that no more come.
    pub(crate) async fn expect(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.mails().len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} mails: {:?}",
                self.mails().len(),
                self.mails()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mails = self.mails();
        assert_eq!(mails.len(), count, "exactly {count} mails: {mails:?}");
        mails
    }

    /// The recipients of the mails, sorted.
    pub(crate) async fn expect_to(&self, to: &[&str]) -> Vec<Value> {
        let mails = self.expect(to.len()).await;
        let mut got: Vec<String> = mails
            .iter()
            .map(|m| m["to"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        let mut want: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
        mails
    }
}

/// The test configuration: the e-mail catalog, quick retries, and the e-mail processor on
/// `port` with `extra` keys (a YAML flow-map fragment).
pub(crate) fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
notifications:
  catalog: {{files: ['{CATALOG}']}}
  delivery: {{retryDelay: 50ms, maxRetryDelay: 200ms, pollInterval: 50ms, maxAttempts: 30}}
  processors:
    email:
      transportConfig: {{transport: smtp, hostname: 127.0.0.1, port: {port}}}
      sender: 'Backstage <noreply@example.com>'
      replyTo: help@example.com
      throttleInterval: 1ms
      concurrencyLimit: 50
      {extra}
"#
    )
}

fn to(entity_ref: &str, payload: Value) -> Value {
    json!({"recipients": {"type": "entity", "entityRef": entity_ref}, "payload": payload})
}

async fn a_group_send_mails_each_member_once(kind: DbKind) {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let Some(app) = TestApp::start(kind, &config(port, "")).await else {
        return;
    };
    let created = app
        .send_ok(to(
            "group:default/mailers",
            json!({"title": "Build failed", "description": "See <why> & fix", "link": "/catalog/x?a=1"}),
        ))
        .await;
    assert_eq!(
        created.len(),
        3,
        "alice, bob and carol (who has no address)"
    );
    let mails = sink
        .expect_to(&["alice@example.com", "Bob@Example.com"])
        .await;
    for mail in &mails {
        assert_eq!(mail["from"], "Backstage <noreply@example.com>");
        assert_eq!(mail["mail_from"], "noreply@example.com");
        assert_eq!(mail["reply_to"], "help@example.com");
        assert_eq!(mail["subject"], "Build failed");
        assert_eq!(mail["content_type"], "multipart/alternative");
        assert_eq!(
            mail["text"].as_str().unwrap().trim_end(),
            "See <why> & fix\n\nhttp://localhost/catalog/x?a=1"
        );
        assert_eq!(
            mail["html"].as_str().unwrap().trim_end(),
            r#"<p>See &lt;why&gt; &amp; fix<br/><a href="http://localhost/catalog/x?a=1">http://localhost/catalog/x?a=1</a></p>"#
        );
    }
    // Every delivery, carol's included (nothing to send), ends delivered.
    for n in &created {
        let id = NotificationId(uuid::Uuid::parse_str(n["id"].as_str().unwrap()).unwrap());
        let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, DeliveryStatus::Delivered, "{rows:?}");
    }
}
on_both_databases!(a_group_send_mails_each_member_once);

async fn users_who_turned_email_off_get_no_mail(kind: DbKind) {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let Some(app) = TestApp::start(kind, &config(port, "")).await else {
        return;
    };
    let off =
        json!({"channels": [{"id": "Email", "origins": [{"id": SERVICE, "enabled": false}]}]});
    let r = app
        .post("/settings", &app.user_token("user:default/alice"), &off)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The processor's name is a channel of the settings.
    let settings = app
        .get("/settings", &app.user_token("user:default/bob"))
        .await;
    assert!(
        settings.body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "Email"),
        "{}",
        settings.text
    );
    app.send_ok(to("group:default/mailers", json!({"title": "quiet"})))
        .await;
    sink.expect_to(&["Bob@Example.com"]).await;
    // Alice still has it in her inbox (only the Email channel is off).
    assert_eq!(app.list("user:default/alice", "").await["totalCount"], 1);
}
on_both_databases!(users_who_turned_email_off_get_no_mail);

async fn smtp_down_then_up_mails_once(kind: DbKind) {
    let port = free_port();
    let Some(app) = TestApp::start(kind, &config(port, "")).await else {
        return;
    };
    let id = app
        .send_to("user:default/alice", json!({"title": "while down"}))
        .await;
    let id = NotificationId(uuid::Uuid::parse_str(&id).unwrap());
    // Several attempts fail while nothing listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
        if rows[0].attempts >= 2 {
            assert_eq!(rows[0].status, DeliveryStatus::Pending, "{rows:?}");
            assert!(rows[0].last_error.is_some(), "{rows:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no retries: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sink = Sink::start(port, &[]).await;
    let mails = sink.expect_to(&["alice@example.com"]).await;
    assert_eq!(mails[0]["subject"], "while down");
    let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
    assert_eq!(rows[0].status, DeliveryStatus::Delivered, "{rows:?}");
}
on_both_databases!(smtp_down_then_up_mails_once);

async fn an_unknown_mailbox_fails_for_good(kind: DbKind) {
    let port = free_port();
    let sink = Sink::start(port, &["alice@example.com"]).await;
    let Some(app) = TestApp::start(kind, &config(port, "")).await else {
        return;
    };
    let id = app
        .send_to("user:default/alice", json!({"title": "nobody home"}))
        .await;
    let id = NotificationId(uuid::Uuid::parse_str(&id).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
        if rows[0].status == DeliveryStatus::Failed {
            assert_eq!(rows[0].attempts, 1, "a 5xx reply is not retried: {rows:?}");
            let error = rows[0].last_error.as_deref().unwrap();
            assert!(error.contains("mailbox unknown"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "not failed: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sink.mails().is_empty());
}
on_both_databases!(an_unknown_mailbox_fails_for_good);

async fn sqlite_app(port: u16, extra: &str) -> TestApp {
    TestApp::start(DbKind::Sqlite, &config(port, extra))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markdown_bodies_are_rendered() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(port, "").await;
    let markdown = "## Deployed\n\n**v2** is live: [release notes](/docs/v2).\n\n<img src=x onerror=alert(1)>\n";
    app.send_to(
        "user:default/alice",
        json!({"title": "Déployé ✓", "description": "plain", "link": "https://ci.example.com/run/1",
               "metadata": {"backstage.io/body.markdown": markdown}}),
    )
    .await;
    let mails = sink.expect_to(&["alice@example.com"]).await;
    assert_eq!(mails[0]["subject"], "Déployé ✓");
    let html = mails[0]["html"].as_str().unwrap();
    assert!(html.contains("<h2>Deployed</h2>"), "{html}");
    assert!(
        html.contains(
            r#"<strong>v2</strong> is live: <a href="http://localhost/docs/v2">release notes</a>."#
        ),
        "{html}"
    );
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "raw HTML is text: {html}"
    );
    assert!(
        html.contains(r#"<a href="https://ci.example.com/run/1">https://ci.example.com/run/1</a>"#),
        "{html}"
    );
    let text = mails[0]["text"].as_str().unwrap();
    assert!(text.starts_with("## Deployed"), "{text}");
    assert!(
        text.trim_end().ends_with("https://ci.example.com/run/1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_go_to_the_configured_receivers() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(
        port,
        "broadcastConfig: {receiver: config, receiverEmails: [ops@example.com, 'not an address', oncall@example.com]}",
    )
    .await;
    app.broadcast(json!({"title": "maintenance"})).await;
    let mails = sink
        .expect_to(&["ops@example.com", "oncall@example.com"])
        .await;
    assert!(mails.iter().all(|m| m["subject"] == "maintenance"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_go_to_all_catalog_users() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(port, "broadcastConfig: {receiver: users}").await;
    app.broadcast(json!({"title": "to everyone"})).await;
    // Carol has no address; mallory's is two addresses in one and is skipped.
    sink.expect_to(&["alice@example.com", "Bob@Example.com", "dave@other.org"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_without_broadcast_config_mail_nobody() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(port, "").await;
    app.broadcast(json!({"title": "to nobody"})).await;
    app.send_to("user:default/dave", json!({"title": "marker"}))
        .await;
    let mails = sink.expect_to(&["dave@other.org"]).await;
    assert_eq!(mails[0]["subject"], "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_lists_choose_the_addresses() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(
        port,
        concat!(
            "broadcastConfig: {receiver: users}\n",
            "      allowedEmailDomains: [EXAMPLE.com]\n",
            "      allowlistEmailAddresses: [Dave@Other.org]\n",
            "      denylistEmailAddresses: [bob@example.com]"
        ),
    )
    .await;
    app.broadcast(json!({"title": "listed"})).await;
    sink.expect_to(&["alice@example.com", "dave@other.org"])
        .await;

    // An allowlist alone is closed: only its addresses.
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(
        port,
        "broadcastConfig: {receiver: users}\n      allowlistEmailAddresses: [alice@example.com]",
    )
    .await;
    app.broadcast(json!({"title": "closed"})).await;
    sink.expect_to(&["alice@example.com"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_choose_the_notifications() {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let app = sqlite_app(port, "filter: {minSeverity: high, excludedTopics: [noise]}").await;
    let alice = "user:default/alice";
    app.send_to(alice, json!({"title": "normal"})).await;
    app.send_to(
        alice,
        json!({"title": "loud noise", "severity": "critical", "topic": "noise"}),
    )
    .await;
    app.send_to(alice, json!({"title": "fire", "severity": "critical"}))
        .await;
    let mails = sink.expect_to(&["alice@example.com"]).await;
    assert_eq!(mails[0]["subject"], "fire");
    // The filtered-out ones are in the inbox all the same.
    assert_eq!(app.list(alice, "").await["totalCount"], 3);
}

#[tokio::test]
async fn invalid_email_configuration_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (email, expected) in [
        (
            "{transportConfig: {transport: ses, region: eu-west-1}, sender: a@example.com}",
            "invalid configuration at notifications.processors.email.transportConfig: the ses transport is not supported",
        ),
        (
            "{transportConfig: {transport: smtp, hostname: h, port: 25}}",
            "invalid configuration at notifications.processors.email: missing field `sender`",
        ),
        (
            "{transportConfig: {transport: smtp, hostname: h, port: 25, password: hunter2}, sender: 'bad sender'}",
            "invalid configuration at notifications.processors.email.sender",
        ),
    ] {
        let config = Config::from_yaml_str(&format!(
            "backend: {{listen: {{port: 0}}, database: {{client: better-sqlite3, connection: ':memory:'}}}}\nnotifications: {{processors: {{email: {email}}}}}"
        ))
        .unwrap();
        let err = BackendBuilder::new(config, dir.path())
            .handle_signals(false)
            .start()
            .await
            .err()
            .expect("refused");
        let err = err.to_string();
        assert!(err.starts_with(expected), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

/// A delivery to several addresses becomes one delivery per address: however long the list,
/// each mail is made (and retried, or failed) on its own, and nobody gets it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_many_addresses_mails_each_on_its_own() {
    let port = free_port();
    let sink = Sink::start(port, &["f@example.com"]).await;
    // One mail per 200 ms and a delivery may take 1 s: seven mails in one delivery would not fit.
    let yaml = config(port, "broadcastConfig: {receiver: config, receiverEmails: [a@example.com, b@example.com, c@example.com, d@example.com, e@example.com, f@example.com, g@example.com]}")
        .replace("throttleInterval: 1ms", "throttleInterval: 200ms")
        .replace("concurrencyLimit: 50", "concurrencyLimit: 1")
        .replace("maxAttempts: 30}", "maxAttempts: 30, timeout: 1s}");
    let app = TestApp::start(DbKind::Sqlite, &yaml).await.unwrap();
    let id = app.broadcast(json!({"title": "long"})).await;
    sink.expect_to(&[
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
        "e@example.com",
        "g@example.com",
    ])
    .await;
    let rejected = outcome(&app.db.store(), &id, "Email", "failed").await;
    assert_eq!(rejected.user_ref.as_deref(), Some("mailto:f@example.com"));
    // (Waiting for the throttle may time an attempt out before its mail starts, and take another
    // attempt.)
    let error = rejected.last_error.as_deref().unwrap();
    assert!(error.contains("mailbox unknown"), "{error}");
    let rows = app
        .db
        .store()
        .deliveries(
            Some(DeliveryStatus::Delivered),
            Some(NotificationId(uuid::Uuid::parse_str(&id).unwrap())),
            20,
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        7,
        "the broadcast's own delivery and six mails: {rows:?}"
    );
}

/// SMTP AUTH with `username` and `password`. The test server speaks plain SMTP, so the
/// credentials go without TLS, which only `allowCredentialsWithoutTls` allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_auth_logs_in_and_a_wrong_password_fails_for_good() {
    let port = free_port();
    let sink = Sink::start_with(port, &[], Some("backstage:s3cret-pw")).await;
    let with_password = |password: &str| {
        config(port, "").replace(
            &format!("port: {port}}}"),
            &format!(
                "port: {port}, username: backstage, password: {password}, allowCredentialsWithoutTls: true}}"
            ),
        )
    };
    let app = TestApp::start(DbKind::Sqlite, &with_password("s3cret-pw"))
        .await
        .unwrap();
    app.send_to("user:default/alice", json!({"title": "logged in"}))
        .await;
    let mails = sink.expect_to(&["alice@example.com"]).await;
    assert_eq!(mails[0]["subject"], "logged in");

    let app = TestApp::start(DbKind::Sqlite, &with_password("wrong"))
        .await
        .unwrap();
    let id = app
        .send_to("user:default/alice", json!({"title": "refused"}))
        .await;
    let id = NotificationId(uuid::Uuid::parse_str(&id).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
        if rows[0].status == DeliveryStatus::Failed {
            assert_eq!(rows[0].attempts, 1, "535 is permanent: {rows:?}");
            let error = rows[0].last_error.as_deref().unwrap();
            assert!(!error.contains("wrong"), "no password in errors: {error}");
            break;
        }
        assert!(Instant::now() < deadline, "not failed: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(sink.logins(), ["backstage", "backstage"]);
}

/// Credentials never go out in clear text: without TLS settings they stop the start, and with
/// `requireTls` a server that offers no STARTTLS gets no login (nor mail); the delivery is kept
/// and retried, as after any other transient failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_credentials_are_never_sent_without_tls() {
    let port = free_port();
    let sink = Sink::start_with(port, &[], Some("backstage:s3cret-pw")).await;
    let with_tls = |tls: &str| {
        config(port, "").replace(
            &format!("port: {port}}}"),
            &format!("port: {port}, username: backstage, password: s3cret-pw{tls}}}"),
        )
    };

    let config = Config::from_yaml_str(&with_tls("")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = BackendBuilder::new(config, dir.path())
        .handle_signals(false)
        .start()
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with(
            "invalid configuration at notifications.processors.email.transportConfig: with a \
             username and password, TLS is required"
        ),
        "{err}"
    );
    assert!(!err.contains("s3cret-pw"), "{err}");

    let app = TestApp::start(DbKind::Sqlite, &with_tls(", requireTls: true"))
        .await
        .unwrap();
    let id = app
        .send_to("user:default/alice", json!({"title": "not in clear"}))
        .await;
    let id = NotificationId(uuid::Uuid::parse_str(&id).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = app.db.store().deliveries(None, Some(id), 10).await.unwrap();
        if rows[0].attempts >= 3 {
            assert_eq!(
                rows[0].status,
                DeliveryStatus::Pending,
                "retried, not lost: {rows:?}"
            );
            let error = rows[0].last_error.as_deref().unwrap();
            assert!(error.contains("STARTTLS"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "no retries: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(sink.logins().is_empty(), "{:?}", sink.logins());
    assert!(sink.mails().is_empty());
}

/// `transport: sendmail` pipes the message to the binary, with unix line ends by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendmail_transport_pipes_the_message_to_the_binary() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let script = dir.path().join("sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > '{0}/args.tmp'\ncat > '{0}/mail.tmp'\nmv '{0}/args.tmp' '{0}/args'\nmv '{0}/mail.tmp' '{0}/mail'\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let yaml = config(0, "").replace(
        "{transport: smtp, hostname: 127.0.0.1, port: 0}",
        &format!("{{transport: sendmail, path: '{}'}}", script.display()),
    );
    let app = TestApp::start(DbKind::Sqlite, &yaml).await.unwrap();
    app.send_to("user:default/alice", json!({"title": "via sendmail"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.join("mail").exists() {
        assert!(Instant::now() < deadline, "sendmail was not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let args = std::fs::read_to_string(out.join("args")).unwrap();
    assert!(args.contains("alice@example.com"), "{args}");
    assert!(args.contains("noreply@example.com"), "{args}");
    let mail = std::fs::read_to_string(out.join("mail")).unwrap();
    assert!(mail.contains("Subject: via sendmail\n"), "{mail}");
    assert!(!mail.contains('\r'), "unix line ends: {mail:?}");
}
