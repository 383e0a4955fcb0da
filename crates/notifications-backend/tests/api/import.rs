//! `import`: a database made by upstream's own code (its knex migrations and its store, run under
//! node from the published package) is moved in by the binary, then read back through the API.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::on_both_databases;
use crate::support::{DbKind, TestApp, TestDb, config_files, node, run_command};

/// What upstream's database is built with: the release `import` reads, and its clients.
const UPSTREAM_PACKAGES: &[&str] = &[
    "@backstage/plugin-notifications-backend@0.6.9",
    "knex@3",
    "pg@8",
    // 13 crashes on node 20.
    "better-sqlite3@12",
];

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";
const N1: &str = "10000000-0000-4000-8000-000000000001";
const N2: &str = "10000000-0000-4000-8000-000000000002";
const N3: &str = "10000000-0000-4000-8000-000000000003";
const N_BOB: &str = "10000000-0000-4000-8000-000000000004";
const B1: &str = "20000000-0000-4000-8000-000000000001";
const B2: &str = "20000000-0000-4000-8000-000000000002";
const BAD_USER: &str = "30000000-0000-4000-8000-000000000001";
const BAD_SEVERITY: &str = "30000000-0000-4000-8000-000000000002";
const BAD_MARK: &str = "30000000-0000-4000-8000-000000000003";
const LONG_TITLE: &str = "30000000-0000-4000-8000-000000000004";
const SAME_SCOPE: &str = "30000000-0000-4000-8000-000000000005";

/// Upstream's database, empty until `build` runs upstream's migrations in it.
enum Upstream {
    Sqlite(tempfile::TempDir),
    Postgres(TestDb),
}

impl Upstream {
    fn new(kind: DbKind) -> Option<Self> {
        match kind {
            DbKind::Sqlite => Some(Self::Sqlite(tempfile::tempdir().unwrap())),
            DbKind::Postgres => TestDb::create_empty(kind).map(Self::Postgres),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Sqlite(dir) => format!("sqlite:{}", dir.path().join("upstream.sqlite").display()),
            Self::Postgres(TestDb::Postgres { url, .. }) => url.clone(),
            Self::Postgres(_) => unreachable!("a PostgreSQL test database"),
        }
    }

    /// knex's client and connection for it.
    fn knex(&self) -> (&'static str, Value) {
        match self {
            Self::Sqlite(dir) => (
                "better-sqlite3",
                json!({"filename": dir.path().join("upstream.sqlite")}),
            ),
            Self::Postgres(_) => ("pg", json!(self.url())),
        }
    }

    /// Runs upstream's migrations and writes `spec` through upstream's store.
    fn build(&self, mut spec: Value) {
        let npm = node::packages("upstream-notifications", UPSTREAM_PACKAGES);
        let (client, connection) = self.knex();
        spec["client"] = json!(client);
        spec["connection"] = connection;
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), spec.to_string()).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/upstream.js");
        node::run(&npm, &script, &[&file.path().to_string_lossy()]);
    }
}

/// What upstream's store is given: notifications, broadcasts, marks and settings as its service
/// would pass them, and rows it would not have let through.
fn upstream_spec(kind: DbKind) -> Value {
    let payload_full = json!({
        "title": "Build 42 failed", "description": "See the logs", "link": "/catalog/x",
        "severity": "high", "topic": "builds", "scope": "build-42", "icon": "warning",
    });
    let mut rows = vec![
        json!({"table": "notification", "row": {"id": BAD_USER, "user": "alice", "origin": "external:ci",
            "title": "no kind", "severity": "normal", "created": "2024-12-01T00:00:00.000Z"}}),
        json!({"table": "notification", "row": {"id": BAD_SEVERITY, "user": ALICE, "origin": "external:ci",
            "title": "too loud", "severity": "urgent", "created": "2024-12-01T00:00:00.000Z"}}),
        json!({"table": "broadcast", "row": {"id": BAD_MARK, "origin": "plugin:ops",
            "title": "marked by a group", "severity": "low", "created": "2024-12-01T00:00:00.000Z"}}),
        json!({"table": "broadcast_user_status", "row": {"broadcast_id": BAD_MARK,
            "user": "group:default/team", "read": "2024-12-02T00:00:00.000Z"}}),
        json!({"table": "user_settings", "row": {"user": "nobody", "channel": "Web",
            "origin": "external:ci", "enabled": false, "settings_key_hash": "f".repeat(64)}}),
    ];
    if kind == DbKind::Sqlite {
        // PostgreSQL's varchar(255) refuses it; upstream's SQLite did not.
        rows.push(
            json!({"table": "notification", "row": {"id": LONG_TITLE, "user": ALICE,
            "origin": "external:ci", "title": "x".repeat(300), "severity": "normal",
            "created": "2024-12-01T00:00:00.000Z"}}),
        );
    }
    json!({
        "notifications": [
            {"id": N1, "user": ALICE, "origin": "external:ci", "created": "2024-12-05T12:00:00.123Z",
             "read": "2024-12-06T08:30:00.000Z", "saved": "2024-12-06T09:00:00.000Z", "payload": payload_full},
            {"id": N2, "user": ALICE, "origin": "plugin:catalog", "created": "2024-12-04T10:00:00.000Z",
             "payload": {"title": "Owner changed"}},
            {"id": N3, "user": ALICE, "origin": "external:ci", "created": "2024-12-03T10:00:00.000Z",
             "payload": {"title": "Deploy done", "severity": "low", "topic": "deploys"}},
            // Upstream keeps the name's case; this service keys users in lower case.
            // Upstream never made scopes unique: this one repeats N1's (and sorts after it).
            {"id": SAME_SCOPE, "user": ALICE, "origin": "external:ci", "created": "2024-12-01T12:00:00.000Z",
             "payload": {"title": "Build 42 failed before", "scope": "build-42"}},
            {"id": N_BOB, "user": "user:default/Bob", "origin": "external:ci",
             "created": "2024-12-02T10:00:00.000Z", "payload": {"title": "Hello Bob", "severity": "critical"}},
        ],
        "broadcasts": [
            {"id": B1, "user": ALICE, "origin": "plugin:ops", "created": "2024-12-05T15:00:00.000Z",
             "saved": "2024-12-05T16:00:00.000Z",
             "payload": {"title": "Maintenance tonight", "description": "From 22:00", "severity": "normal"}},
            {"id": B2, "origin": "plugin:ops", "created": "2024-12-01T15:00:00.000Z",
             "payload": {"title": "Welcome", "severity": "low", "link": "https://example.com/welcome"}},
        ],
        "marks": [
            {"op": "markRead", "ids": [B2], "user": BOB},
            {"op": "markSaved", "ids": [B2], "user": ALICE},
        ],
        "settings": [
            {"user": ALICE, "settings": {"channels": [{"id": "Web", "origins": [
                {"id": "external:ci", "enabled": true, "topics": [{"id": "builds", "enabled": false}]},
                {"id": "plugin:catalog", "enabled": false, "topics": []},
            ]}]}},
        ],
        "updates": [{"table": "notification", "id": N1, "updated": "2024-12-07T00:00:00.000Z"}],
        "rows": rows,
    })
}

/// Runs the binary's `import` on the target's configuration; returns its report and log,
/// asserting success.
async fn import(configs: &[PathBuf], data_dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    run(configs, data_dir, &all).await
}

/// Runs the binary's `args` on the target's configuration; returns its stdout and stderr,
/// asserting success.
async fn run(configs: &[PathBuf], data_dir: &Path, args: &[&str]) -> String {
    let out = run_command(configs, data_dir, args).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?} failed: {text}");
    text
}

/// The counts line of `table` in a report: read, imported, already there, skipped (then the
/// seconds it took, not compared).
fn counts(report: &str, table: &str) -> [u64; 4] {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no line for {table} in:\n{report}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.try_into().unwrap()
}

async fn imports_upstream_data_and_the_api_shows_it(kind: DbKind) {
    let Some(upstream) = Upstream::new(kind) else {
        return;
    };
    let Some(target) = TestDb::create(kind) else {
        return;
    };
    upstream.build(upstream_spec(kind));
    let dir = tempfile::tempdir().unwrap();
    let configs = config_files(&target, dir.path(), "");
    let data_dir = dir.path().join("data");
    let from = upstream.url();
    let long = u64::from(kind == DbKind::Sqlite);

    // A dry run counts, and writes nothing: the real run then imports every row. (Its batches
    // are rolled back one by one: SAME_SCOPE's clash with N1, in another batch, is not seen.)
    let dry_args = ["--from", &from, "--dry-run", "--batch-size", "2"];
    let dry = import(&configs, &data_dir, &dry_args).await;
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(
        counts(&dry, "notification"),
        [7 + long, 5, 0, 2 + long],
        "{dry}"
    );
    assert_eq!(counts(&dry, "user_settings"), [4, 3, 0, 1], "{dry}");

    // Into the empty target, the load goes without the secondary indexes, made again at its
    // end: afterwards the table has exactly the indexes its migrations made.
    run(&configs, &data_dir, &["migrate"]).await;
    let indexes = target.index_names("notification");
    assert!(
        indexes.contains(&"notification_user_created_idx".to_owned()),
        "{indexes:?}"
    );
    let report = import(&configs, &data_dir, &["--from", &from, "--batch-size", "2"]).await;
    assert!(
        report.contains("loading them without their")
            && report.contains("made the secondary indexes of notification"),
        "{report}"
    );
    assert_eq!(target.index_names("notification"), indexes);
    assert_eq!(
        counts(&report, "notification"),
        [7 + long, 4, 0, 3 + long],
        "{report}"
    );
    assert_eq!(counts(&report, "broadcast"), [3, 2, 0, 1], "{report}");
    // B1: Alice's saved mark; B2: Bob's read and Alice's saved; BAD_MARK's goes with it.
    assert_eq!(
        counts(&report, "broadcast_user_status"),
        [4, 3, 0, 1],
        "{report}"
    );
    // Alice's origin switch, topic switch, the other origin's switch; and nobody's.
    assert_eq!(counts(&report, "user_settings"), [4, 3, 0, 1], "{report}");
    for (id, reason) in [
        (BAD_USER, "user: Entity reference \"alice\""),
        (BAD_SEVERITY, "severity: unknown severity \"urgent\""),
        (
            BAD_MARK,
            "its mark for \"group:default/team\": user: Entity reference \"group:default/team\" is not a user",
        ),
        (
            SAME_SCOPE,
            "another notification with the same user, origin and scope is already stored",
        ),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("skipped ") && l.contains(id) && l.contains(reason)),
            "{id} ({reason}) not reported in:\n{report}"
        );
    }
    if long == 1 {
        assert!(
            report.contains(&format!("{LONG_TITLE}: title: too long (300 characters")),
            "{report}"
        );
    }

    // Again: nothing twice.
    let again = import(&configs, &data_dir, &["--from", &from]).await;
    assert_eq!(
        counts(&again, "notification"),
        [7 + long, 0, 4, 3 + long],
        "{again}"
    );
    assert_eq!(counts(&again, "broadcast"), [3, 0, 2, 1], "{again}");
    assert_eq!(
        counts(&again, "broadcast_user_status"),
        [4, 0, 3, 1],
        "{again}"
    );
    assert_eq!(counts(&again, "user_settings"), [4, 0, 3, 1], "{again}");
    assert!(
        !again.contains("loading them without"),
        "not empty now: {again}"
    );

    // An import interrupted in its load leaves its dropped indexes recorded: the next start
    // (its migrate) makes them again.
    let definition = match kind {
        DbKind::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE name = 'notification_user_title_idx'"
        }
        DbKind::Postgres => {
            "SELECT 'notification_user_title_idx', pg_get_indexdef('notification_user_title_idx'::regclass)"
        }
    };
    target.execute(&format!(
        "INSERT INTO deferred_index (name, definition) {definition}; \
         DROP INDEX notification_user_title_idx;"
    ));
    assert!(
        !target
            .index_names("notification")
            .contains(&"notification_user_title_idx".to_owned())
    );
    let migrated = run(&configs, &data_dir, &["migrate"]).await;
    assert!(
        migrated.contains("making index notification_user_title_idx again"),
        "{migrated}"
    );
    assert_eq!(target.index_names("notification"), indexes);

    let app = TestApp::start_on(target, "", None).await;
    let list = app.list(ALICE, "").await;
    assert_eq!(list["totalCount"], 5, "{list}");
    let by_id = |id: &str| -> Value {
        list["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {list}"))
            .clone()
    };
    let n1 = by_id(N1);
    assert_eq!(n1["user"], ALICE);
    assert_eq!(n1["origin"], "external:ci");
    assert_eq!(n1["created"], "2024-12-05T12:00:00.123Z");
    assert_eq!(n1["read"], "2024-12-06T08:30:00.000Z");
    assert_eq!(n1["saved"], "2024-12-06T09:00:00.000Z");
    assert_eq!(n1["updated"], "2024-12-07T00:00:00.000Z");
    let p = &n1["payload"];
    assert_eq!(
        [
            &p["title"],
            &p["description"],
            &p["link"],
            &p["severity"],
            &p["topic"],
            &p["scope"],
            &p["icon"]
        ],
        [
            "Build 42 failed",
            "See the logs",
            "/catalog/x",
            "high",
            "builds",
            "build-42",
            "warning"
        ]
    );
    let n2 = by_id(N2);
    assert_eq!(
        n2["payload"]["severity"], "normal",
        "upstream's default: {n2}"
    );
    assert!(
        n2["read"].is_null() && n2["saved"].is_null() && n2["updated"].is_null(),
        "{n2}"
    );
    assert_eq!(by_id(N3)["payload"]["topic"], "deploys");
    let b1 = by_id(B1);
    assert!(b1["user"].is_null(), "a broadcast: {b1}");
    assert_eq!(b1["saved"], "2024-12-05T16:00:00.000Z");
    assert!(b1["read"].is_null());
    assert_eq!(b1["payload"]["description"], "From 22:00");
    let b2 = by_id(B2);
    assert!(
        b2["saved"].is_string() && b2["read"].is_null(),
        "Alice saved B2: {b2}"
    );
    assert_eq!(b2["payload"]["link"], "https://example.com/welcome");
    // Newest first, as upstream lists them.
    assert_eq!(app.list_ids(ALICE, "").await, [B1, N1, N2, N3, B2]);
    // The search index holds the imported text.
    assert_eq!(app.list_ids(ALICE, "search=logs").await, [N1]);
    assert_eq!(app.list_ids(ALICE, "saved=true").await, [B1, N1, B2]);

    let status = |user: &'static str| {
        let app = &app;
        async move {
            let r = app.get("/status", &app.user_token(user)).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.body
        }
    };
    assert_eq!(status(ALICE).await, json!({"read": 1, "unread": 4}));
    // Bob's own notification (stored as `Bob`), and B2 he read.
    assert_eq!(status(BOB).await, json!({"read": 1, "unread": 2}));
    let bob = app.list(BOB, "read=true").await;
    assert_eq!(ids_of(&bob), [B2], "{bob}");
    assert!(bob["notifications"][0]["read"].is_string());
    assert_eq!(app.list_ids(BOB, "read=false").await, [B1, N_BOB]);

    let settings = app.get("/settings", &app.user_token(ALICE)).await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    let web = settings.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "Web")
        .unwrap_or_else(|| panic!("no Web channel: {}", settings.text))
        .clone();
    let origin = |id: &str| {
        web["origins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap_or_else(|| panic!("no origin {id}: {web}"))
            .clone()
    };
    assert_eq!(origin("plugin:catalog")["enabled"], false, "{web}");
    let ci = origin("external:ci");
    assert_eq!(ci["enabled"], true, "{web}");
    let builds = ci["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "builds")
        .unwrap_or_else(|| panic!("no topic builds: {ci}"))
        .clone();
    assert_eq!(builds["enabled"], false, "{ci}");
}

fn ids_of(list: &Value) -> Vec<String> {
    crate::support::ids(&list["notifications"])
}

on_both_databases!(imports_upstream_data_and_the_api_shows_it);

#[tokio::test]
async fn refuses_the_configured_database_as_its_source() {
    let target = TestDb::create(DbKind::Sqlite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let configs = config_files(&target, dir.path(), "");
    let TestDb::Sqlite { dir: db_dir } = &target else {
        unreachable!()
    };
    let file = db_dir.path().join("test.sqlite");
    std::fs::write(&file, "").unwrap();
    let out = run_command(
        &configs,
        &dir.path().join("data"),
        &["import", "--from", &format!("sqlite:{}", file.display())],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("it is the configured database itself"),
        "{stderr}"
    );

    // Another database of this service's own is not upstream's either.
    let ours = tempfile::tempdir().unwrap();
    let ours_file = ours.path().join("ours.sqlite");
    let ours_config = ours.path().join("ours.yaml");
    std::fs::write(
        &ours_config,
        format!(
            "backend:\n  database:\n    client: better-sqlite3\n    connection: '{}'\n",
            ours_file.display()
        ),
    )
    .unwrap();
    run(
        std::slice::from_ref(&ours_config),
        ours.path(),
        &["migrate"],
    )
    .await;
    let out = run_command(
        &configs,
        &dir.path().join("data"),
        &["import", "--from-config", &ours_config.to_string_lossy()],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is this service's own, not upstream's"),
        "{stderr}"
    );
}
