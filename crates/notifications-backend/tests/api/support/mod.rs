//! A real backend per test, over real HTTP, on a database of its own: a temporary SQLite file,
//! or a fresh database in the PostgreSQL cluster named by `NOTIFICATIONS_TEST_PG_URL` (which
//! `cargo xtask test` starts). Without that variable PostgreSQL tests are skipped, unless
//! `CI=true`, where they fail.

pub mod browser;
mod db;
pub mod fake_http;
pub mod flaky;
pub mod node;
pub mod python;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use notifications_backend::config::Config;
use notifications_backend::testing::auth::{TokenKind, mint};
use notifications_backend::testing::signals::PublishedSignal;
use notifications_backend::testing::store::{Recipient, SendContext};
use notifications_backend::{BackendBuilder, RunningBackend};
use notifications_common::{NotificationId, SignalMessage, SignalRecipients};
use notifications_node::RecipientResolver;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::broadcast;

pub use db::{DbKind, TestDb, in_ci};

/// The static token of the test service; its subject is upstream's fixture origin.
pub const SERVICE_TOKEN: &str = "test-service-token";
pub const SERVICE: &str = "external:test-service";
/// The user of upstream's fixtures.
pub const USER: &str = "user:default/mock";
/// base64 of "test-signing-key-for-the-api-tests": the service key (`backend.auth.keys`).
pub const KEY_BASE64: &str = "dGVzdC1zaWduaW5nLWtleS1mb3ItdGhlLWFwaS10ZXN0cw==";
pub const KEY: &[u8] = b"test-signing-key-for-the-api-tests";
/// The user-token key (`notifications.userTokenKeys`).
pub const USER_KEY: &[u8] = b"test-user-token-key-for-the-api-tests";

const BASE_CONFIG: &str = r#"
app:
  baseUrl: http://localhost
backend:
  listen: { host: 127.0.0.1, port: 0 }
  auth:
    keys:
      - secret: SERVICE_KEY_BASE64
    externalAccess:
      - type: static
        options: { token: test-service-token, subject: external:test-service }
      - type: static
        options: { token: test-service2-token, subject: external:test-service2 }
notifications:
  userTokenKeys:
    - secret: USER_KEY_BASE64
"#;

/// A running backend and a client for it.
pub struct TestApp {
    pub db: TestDb,
    api: Api,
    running: Option<RunningBackend>,
    signals: Mutex<broadcast::Receiver<std::sync::Arc<PublishedSignal>>>,
    _data_dir: tempfile::TempDir,
}

/// A client of one backend's HTTP API.
pub struct Api {
    /// `http://127.0.0.1:<port>`
    pub root: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(root: &str) -> Self {
        // reqwest is built without a crypto provider of its own: a test that starts no backend
        // in this process (only the binary) must install one, as the backend does.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self {
            root: root.to_owned(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/notifications{path}", self.root)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let url = if path.starts_with("/.backstage") {
            format!("{}{path}", self.root)
        } else {
            self.url(path)
        };
        let mut req = self.client.request(method, url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        Response::read(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }
}

/// The API calls of a test app are its client's.
impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A status and a parsed JSON body (`Null` when the body is empty or not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    /// Starts a backend on `kind` with the fixture configuration plus `extra_yaml`. `None` when
    /// PostgreSQL is not available for tests (and not required).
    pub async fn start(kind: DbKind, extra_yaml: &str) -> Option<Self> {
        Self::start_with(kind, extra_yaml, None).await
    }

    pub async fn start_with(
        kind: DbKind,
        extra_yaml: &str,
        resolver: Option<Box<dyn FnOnce(BackendBuilder) -> BackendBuilder>>,
    ) -> Option<Self> {
        let db = TestDb::create(kind)?;
        Some(Self::start_on(db, extra_yaml, resolver).await)
    }

    /// Starts on a database the test prepared (tables and rows already there).
    pub async fn start_on(
        db: TestDb,
        extra_yaml: &str,
        resolver: Option<Box<dyn FnOnce(BackendBuilder) -> BackendBuilder>>,
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut builder = builder(&db, data_dir.path(), extra_yaml);
        if let Some(customise) = resolver {
            builder = customise(builder);
        }
        let running = builder.start().await.expect("backend starts");
        let signals = Mutex::new(running.signals().observe());
        Self {
            db,
            api: Api::new(&format!("http://{}", running.local_addr())),
            running: Some(running),
            signals,
            _data_dir: data_dir,
        }
    }

    /// Another backend on this app's database (another instance of a deployment), set up by
    /// `customise`; it stops when the returned value is dropped.
    pub async fn another_instance(
        &self,
        extra_yaml: &str,
        customise: impl FnOnce(BackendBuilder) -> BackendBuilder,
    ) -> Instance {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let running = customise(builder(&self.db, data_dir.path(), extra_yaml))
            .start()
            .await
            .expect("backend starts");
        Instance {
            running: Some(running),
            _data_dir: data_dir,
        }
    }

    /// Stops this app's backend (its database stays), as a crash would: work in flight is
    /// dropped.
    pub async fn stop_backend(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(false).await.unwrap();
        }
    }

    /// Stops this app's backend as an operator would: requests in flight finish.
    pub async fn stop_backend_gracefully(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(true).await.unwrap();
        }
    }

    /// Starts with a custom recipient resolver.
    pub async fn start_with_resolver(
        kind: DbKind,
        resolver: impl RecipientResolver,
    ) -> Option<Self> {
        Self::start_with(
            kind,
            "",
            Some(Box::new(move |b: BackendBuilder| {
                b.recipient_resolver(resolver)
            })),
        )
        .await
    }

    pub fn user_token(&self, user: &str) -> String {
        user_token(user)
    }

    pub fn service_token(&self, subject: &str) -> String {
        mint(
            KEY,
            &TokenKind::Service {
                subject: subject.into(),
            },
            Duration::from_secs(600),
        )
        .unwrap()
    }

    /// `POST /notifications` as the fixture service.
    pub async fn send(&self, body: Value) -> Response {
        self.post("/notifications", SERVICE_TOKEN, &body).await
    }

    /// Sends and returns the created notifications, asserting success.
    pub async fn send_ok(&self, body: Value) -> Vec<Value> {
        let r = self.send(body).await;
        assert_eq!(r.status, 200, "send failed: {}", r.text);
        r.body.as_array().expect("array").clone()
    }

    /// A user-addressed notification from the fixture service; returns its id.
    pub async fn send_to(&self, user: &str, payload: Value) -> String {
        let created = self
            .send_ok(serde_json::json!({"recipients": {"type": "entity", "entityRef": user}, "payload": payload}))
            .await;
        assert_eq!(created.len(), 1, "one notification expected: {created:?}");
        created[0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn broadcast(&self, payload: Value) -> String {
        let created = self
            .send_ok(serde_json::json!({"recipients": {"type": "broadcast"}, "payload": payload}))
            .await;
        created[0]["id"].as_str().unwrap().to_owned()
    }

    /// `GET /notifications?<query>` as `user`, asserting success.
    pub async fn list(&self, user: &str, query: &str) -> Value {
        let r = self
            .get(&format!("/notifications?{query}"), &self.user_token(user))
            .await;
        assert_eq!(r.status, 200, "list failed: {}", r.text);
        r.body
    }

    /// The ids of a list answer, in order.
    pub async fn list_ids(&self, user: &str, query: &str) -> Vec<String> {
        ids(&self.list(user, query).await["notifications"])
    }

    /// Stores a notification directly, with a creation time of the test's choosing (the API
    /// always stamps "now"). `user: None` stores a broadcast. Returns the id.
    pub async fn insert_at(
        &self,
        user: Option<&str>,
        payload: Value,
        created: time::OffsetDateTime,
    ) -> String {
        self.insert_from(SERVICE, user, payload, created).await
    }

    /// As `insert_at`, from another origin (and past any settings).
    pub async fn insert_from(
        &self,
        origin: &str,
        user: Option<&str>,
        payload: Value,
        created: time::OffsetDateTime,
    ) -> String {
        let store = self.db.store();
        let send = SendContext {
            origin: origin.into(),
            created: created.into(),
            options: Value::Null,
        };
        let recipient = Recipient::inbox_only(
            user.map(str::to_owned),
            serde_json::from_value(payload).expect("payload"),
        );
        let stored = match user {
            Some(_) => store
                .create_for_users(send, vec![recipient])
                .await
                .expect("insert")
                .value
                .remove(0),
            None => {
                store
                    .create_broadcast(send, recipient)
                    .await
                    .expect("insert")
                    .value
            }
        };
        stored.notification.id.to_string()
    }

    /// The signal connections open on this app's backend.
    pub fn signal_connections(&self) -> usize {
        self.running
            .as_ref()
            .map_or(0, |r| r.signals().connections())
    }

    /// Signals published since the last call.
    pub fn take_signals(&self) -> Vec<SignalMessage> {
        let mut rx = self.signals.lock().unwrap();
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(SignalMessage {
                recipients: match &e.recipient {
                    Some(r) => SignalRecipients::User {
                        entity_ref: vec![r.clone()],
                    },
                    None => SignalRecipients::Broadcast,
                },
                channel: e.channel.clone(),
                message: serde_json::from_str(&e.message).expect("a notifications signal"),
            });
        }
        out
    }
}

/// Waits until the delivery of notification `id` on `channel` has `status`; returns its row.
pub async fn outcome(
    store: &notifications_backend::testing::store::Store,
    id: &str,
    channel: &str,
    status: &str,
) -> notifications_backend::testing::store::DeliveryRow {
    let id = NotificationId(uuid::Uuid::parse_str(id).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = store.deliveries(None, Some(id), 10).await.unwrap();
        if let Some(row) = rows
            .iter()
            .find(|r| r.channel == channel && r.status.as_str() == status)
        {
            return row.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{channel} not {status}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The fixture configuration, the database's and `extra_yaml`, as files in `dir`.
pub fn config_files(db: &TestDb, dir: &Path, extra_yaml: &str) -> Vec<PathBuf> {
    config_files_with(dir, &db.config_yaml(), extra_yaml)
}

/// As [`config_files`], with the `backend.database` section given.
pub fn config_files_with(dir: &Path, database_yaml: &str, extra_yaml: &str) -> Vec<PathBuf> {
    let base = dir.join("base.yaml");
    let database = dir.join("database.yaml");
    let extra = dir.join("extra.yaml");
    let b64 = |key| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    let base_config = BASE_CONFIG
        .replace("SERVICE_KEY_BASE64", KEY_BASE64)
        .replace("USER_KEY_BASE64", &b64(USER_KEY));
    std::fs::write(&base, base_config).unwrap();
    std::fs::write(&database, database_yaml).unwrap();
    std::fs::write(&extra, extra_yaml).unwrap();
    vec![base, database, extra]
}

/// A user token of the fixture user-token key.
pub fn user_token(user: &str) -> String {
    mint(
        USER_KEY,
        &TokenKind::User {
            user_ref: user.into(),
            ownership_refs: vec![],
        },
        Duration::from_secs(600),
    )
    .unwrap()
}

/// The real binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_notifications-backend");

/// Starts the binary's `serve` in `dir` on the `configs` files (and `envs`), and waits until it
/// says where it listens. It is killed when the child is dropped.
/// Runs the binary's command `args` (e.g. `["migrate"]`) on `configs`, with `data_dir`, to its
/// end.
pub async fn run_command(
    configs: &[PathBuf],
    data_dir: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut command = tokio::process::Command::new(BIN);
    for config in configs {
        command.arg("--config").arg(config);
    }
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NOTIFICATIONS_DATA_DIR")
        .output()
        .await
        .expect("the binary runs")
}

pub async fn serve_binary(dir: &Path, configs: &[PathBuf], envs: &[(&str, &str)]) -> (Child, Api) {
    let (child, api, _) = serve_binary_logged(dir, configs, envs).await;
    (child, api)
}

/// The lines a binary logged after it said where it listens.
pub type Log = std::sync::Arc<Mutex<Vec<String>>>;

/// [`serve_binary`], keeping what the binary logs.
pub async fn serve_binary_logged(
    dir: &Path,
    configs: &[PathBuf],
    envs: &[(&str, &str)],
) -> (Child, Api, Log) {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFICATIONS_DATA_DIR")
        .envs(envs.iter().copied());
    for config in configs {
        command.arg("--config").arg(config);
    }
    command.arg("--data-dir").arg(dir.join("data")).arg("serve");
    let (child, address, _, log) = spawn_serving(command, &[]).await;
    (child, Api::new(&format!("http://{address}")), log)
}

/// Spawns `command` (a `serve`) and waits until it has said where it listens and logged a line
/// containing each of `also`. Returns the child (killed when dropped), the address, the lines
/// logged until then, and the lines it logs afterwards.
pub async fn spawn_serving(
    mut command: Command,
    also: &[&str],
) -> (Child, String, Vec<String>, Log) {
    let mut child = command
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        let mut address = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("address=").nth(1) {
                address = Some(rest.split_whitespace().next().unwrap().to_owned());
            }
            seen.push(line);
            let all_seen = also.iter().all(|a| seen.iter().any(|l| l.contains(a)));
            if let Some(address) = address.as_ref().filter(|_| all_seen) {
                return address.clone();
            }
        }
        panic!("serve exited early: {seen:#?}")
    })
    .await
    .expect("serve announces its address");
    let log = Log::default();
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("child: {l}");
            kept.lock().unwrap().push(l);
        }
    });
    (child, address, seen, log)
}

/// The fixture configuration plus the database's and `extra_yaml`, for a backend in `data_dir`.
fn builder(db: &TestDb, data_dir: &Path, extra_yaml: &str) -> BackendBuilder {
    let files = config_files(db, data_dir, extra_yaml);
    let config = Config::load_with_env(&files, &|_| None, &[]).expect("test config");
    BackendBuilder::new(config, data_dir)
        .workers(1)
        .handle_signals(false)
}

/// A second backend of a test (see [`TestApp::another_instance`]).
pub struct Instance {
    running: Option<RunningBackend>,
    _data_dir: tempfile::TempDir,
}

impl Instance {
    /// `http://127.0.0.1:<port>` of this instance.
    pub fn root(&self) -> String {
        let running = self.running.as_ref().expect("running");
        format!("http://{}", running.local_addr())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.request_stop();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.request_stop();
        }
    }
}

impl Response {
    pub async fn read(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            content_type,
            body,
            text,
        }
    }

    /// Asserts an upstream-shaped error body with this status and error name.
    pub fn assert_error(&self, status: u16, name: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(self.body["error"]["name"], name, "body: {}", self.text);
        assert_eq!(
            self.body["response"]["statusCode"], status,
            "body: {}",
            self.text
        );
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "body: {}",
            self.text
        );
        assert!(
            self.body["request"]["method"].is_string(),
            "body: {}",
            self.text
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "content type {}",
            self.content_type
        );
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

/// The `id`s of an array of notifications.
pub fn ids(notifications: &Value) -> Vec<String> {
    notifications
        .as_array()
        .expect("array of notifications")
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Declares a test that runs once on SQLite and once on PostgreSQL, each with a fresh backend
/// started with the fixture configuration plus the optional `config` YAML.
/// Runs `async fn name(kind: DbKind)` as two tests, `name::sqlite` and `name::postgres`, for
/// tests that set up their backends themselves.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::DbKind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::DbKind::Postgres).await
            }
        }
    };
}

#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* $name:ident $(, config = $config:expr)?, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: $crate::support::TestApp) $body

            fn config() -> &'static str {
                #[allow(unused_mut, unused_assignments)]
                let mut c = "";
                $( c = $config; )?
                c
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::support::TestApp::start($crate::support::DbKind::Sqlite, config()).await;
                run(app.expect("SQLite is always available")).await
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::support::TestApp::start($crate::support::DbKind::Postgres, config()).await {
                    run(app).await
                }
            }
        }
    };
}
