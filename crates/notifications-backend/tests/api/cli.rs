//! The `notifications-backend` binary, run as an operator would.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tokio::process::{Child, Command};

use crate::db_test;
use crate::support::{Api, BIN, spawn_serving};

/// The binary in `dir`, under the usual umask (022) whatever the test runner's, as an operator
/// would start it.
fn command(dir: &Path) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 022 && exec \"$0\" \"$@\"", BIN])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFICATIONS_DATA_DIR")
        .kill_on_drop(true);
    c
}

async fn output(dir: &Path, args: &[&str]) -> std::process::Output {
    command(dir).args(args).output().await.expect("binary runs")
}

/// Starts `serve` and waits for the line saying where it listens and the hint on minting
/// tokens (their order may vary).
async fn serve(dir: &Path, args: &[&str]) -> (Child, String, Vec<String>) {
    let mut command = command(dir);
    command
        .args(args)
        .arg("serve")
        // No configuration file at all; only an ephemeral port so tests can run side by side.
        .env("APP_CONFIG_backend_listen_port", "0");
    let (child, address, seen, _) = spawn_serving(command, &["ready:"]).await;
    (child, address, seen)
}

async fn token(dir: &Path, args: &[&str]) -> String {
    let out = output(dir, &[&["token"], args].concat()).await;
    assert!(
        out.status.success(),
        "token failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn serve_with_no_configuration_uses_embedded_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, log) = serve(dir.path(), &[]).await;
    let log = log.join("\n");
    assert!(log.contains("SQLite data/notifications.sqlite"), "{log}");
    assert!(
        log.contains("token --user"),
        "says how to mint a token: {log}"
    );
    assert!(dir.path().join("data/notifications.sqlite").exists());
    assert!(dir.path().join("data/auth-key").exists());
    assert!(dir.path().join("data/user-key").exists());

    // Tokens minted by the CLI work against the server it started.
    let service = token(dir.path(), &["--service", "cli-test"]).await;
    let user = token(dir.path(), &["--user", "user:default/jane"]).await;
    let api = Api::new(&format!("http://{address}"));
    let body = json!({"recipients": {"type": "entity", "entityRef": "user:default/jane"}, "payload": {"title": "hi"}});
    assert_eq!(api.post("", &service, &body).await.status, 200);
    let list = api.get("/notifications", &user).await.body;
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["notifications"][0]["origin"], "cli-test");
    // A sign-in link for the web inbox, under backend.baseUrl, signs Jane in once.
    let link = token(dir.path(), &["--user", "jane", "--link"]).await;
    let token_part = link
        .strip_prefix("http://localhost:7007/signin?token=")
        .unwrap_or_else(|| panic!("a link under backend.baseUrl: {link}"));
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = format!("http://{address}");
    let page = web
        .get(format!("{root}/signin?token={token_part}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("user:default/jane"));
    let signed_in = web
        .post(format!("{root}/signin"))
        .header("Origin", &root)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={token_part}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let list = web
        .get(format!("{root}/api/notifications/notifications"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["totalCount"], 1);
    // The generated service key, which senders are given, does not sign user tokens.
    let service_key = std::fs::read_to_string(dir.path().join("data/auth-key")).unwrap();
    let service_key = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        service_key.trim(),
    )
    .unwrap();
    let forged = notifications_backend::testing::auth::mint(
        &service_key,
        &notifications_backend::testing::auth::TokenKind::User {
            user_ref: "user:default/jane".into(),
            ownership_refs: vec![],
        },
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(api.get("/notifications", &forged).await.status, 401);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
}

/// What the service creates is its user's alone: the data directory 0700, the database (and its
/// WAL files) and the keys 0600. A directory the operator made keeps its mode.
#[tokio::test]
async fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let dir = tempfile::tempdir().unwrap();
    let made_by_operator = dir.path().join("operator");
    std::fs::create_dir(&made_by_operator).unwrap();
    std::fs::set_permissions(&made_by_operator, std::fs::Permissions::from_mode(0o750)).unwrap();
    for (data_dir, dir_mode) in [("data", 0o700), ("operator", 0o750)] {
        let (mut child, address, _) = serve(dir.path(), &["--data-dir", data_dir]).await;
        let service = token(dir.path(), &["--data-dir", data_dir, "--service", "perms"]).await;
        let body = json!({"recipients": {"type": "broadcast"}, "payload": {"title": "hi"}});
        let api = Api::new(&format!("http://{address}"));
        assert_eq!(api.post("", &service, &body).await.status, 200);
        let data = dir.path().join(data_dir);
        assert_eq!(mode(&data), dir_mode, "{data_dir}");
        let files: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        for expected in [
            "notifications.sqlite",
            "notifications.sqlite-wal",
            "notifications.sqlite-shm",
            "auth-key",
            "user-key",
        ] {
            assert!(
                files.contains(&data.join(expected)),
                "{expected}: {files:?}"
            );
        }
        for file in &files {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = output(dir.path(), &["--data-dir", "state", "migrate"]).await;
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("20261122000000"));
    assert!(dir.path().join("state/notifications.sqlite").exists());
    let second = output(dir.path(), &["--data-dir", "state", "migrate"]).await;
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("none pending"));
}

#[tokio::test]
async fn bad_configuration_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app-config.yaml"),
        "backend:\n  database:\n    client: mysql\n",
    )
    .unwrap();
    let out = output(dir.path(), &["--config", "app-config.yaml", "serve"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("backend.database.client"), "{stderr}");

    let out = output(dir.path(), &["--config", "missing.yaml", "migrate"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

/// `check-config` on `yaml`: the exit status, stdout and stderr.
async fn check_config(yaml: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app-config.yaml"), yaml).unwrap();
    let out = output(dir.path(), &["check-config", "--config", "app-config.yaml"]).await;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn check_config_exits_0_1_or_2_as_documented() {
    let (code, stdout, stderr) =
        check_config("backend: {listen: ':7007'}\nnotifications: {retention: {days: 30}}\n").await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        !stderr.contains("warning") && !stderr.contains("error"),
        "{stderr}"
    );
    assert!(stdout.contains("no problems"), "{stdout}");

    // A whole Backstage app-config: other plugins' keys are theirs.
    let whole_app = "
app: {title: Backstage, baseUrl: 'http://localhost:3000'}
backend:
  baseUrl: http://localhost:7007
  reading: {allow: [{host: example.com}]}
  auth: {keys: [{secret: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0}]}
catalog:
  locations: [{type: file, target: ../catalog-info.yaml}]
  rules: [{allow: [Component, User, Group]}]
techdocs: {builder: local, publisher: {type: local}}
auth: {providers: {github: {development: {clientId: '${GITHUB_CLIENT_ID}'}}}}
notifications: {processors: {email: {transportConfig: {transport: stream}, sender: a@example.com}}}
";
    let (code, stdout, stderr) = check_config(whole_app).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (code, stdout, stderr) =
        check_config("notifications:\n  defaultSetings: {channels: []}\n").await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "app-config.yaml:2: unknown key notifications.defaultSetings is ignored; \
             did you mean `defaultSettings`?"
        ),
        "{stderr}"
    );

    // Each problem names its file, line and key.
    for (yaml, problem) in [
        (
            "notifications:\n  retention: soon\n",
            "app-config.yaml:2: invalid configuration at notifications.retention",
        ),
        (
            "app: {}\nnotifications:\n  processors:\n    webhook:\n      - {url: 'https://h.example'}\n",
            "app-config.yaml:5: invalid configuration at notifications.processors.webhook[0]",
        ),
        (
            "notifications:\n  retention: ${UNSET_IN_THIS_TEST}\n",
            "app-config.yaml:2: notifications.retention: environment variable UNSET_IN_THIS_TEST",
        ),
    ] {
        let (code, stdout, stderr) = check_config(yaml).await;
        assert_eq!(code, Some(2), "{yaml}: {stdout}{stderr}");
        assert!(stderr.contains(problem), "{yaml}: {stderr}");
    }
    let (code, _, stderr) = check_config("notifications: [unclosed\n").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("app-config.yaml") && stderr.contains("line"),
        "{stderr}"
    );

    let help = output(Path::new("."), &["check-config", "--help"]).await;
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status") && help.contains("2  the configuration cannot"),
        "{help}"
    );
}

#[tokio::test]
async fn the_examples_pass_check_config() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for example in ["app-config.sqlite.yaml", "app-config.postgres.yaml"] {
        let out = command(&examples)
            .args(["check-config", "--config", example])
            .env("PG_PASSWORD", "secret")
            .env("AUTH_SECRET", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0")
            .env(
                "USER_TOKEN_SECRET",
                "dXNlci11c2VyLXVzZXItdXNlci11c2VyLXVzZXI=",
            )
            .env("CI_NOTIFICATIONS_TOKEN", "a-token-of-ours")
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn token_command_validates_its_input() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["token"][..],
        &["token", "--user", "group:default/team"],
        &["token", "--user", "x", "--service", "y"],
        &["token", "--service", "s", "--ttl", "soon"],
        &["token", "--service", "s", "--link"],
        &[
            "token",
            "--user",
            "jane",
            "--ent",
            "group:default/team",
            "--link",
        ],
    ] {
        let out = output(dir.path(), args).await;
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "no token printed for {args:?}");
    }
    // A short user name gets the user kind and default namespace; --help shows examples.
    assert!(
        token(
            dir.path(),
            &[
                "--user",
                "jane",
                "--ent",
                "group:default/team",
                "--ttl",
                "30d"
            ]
        )
        .await
        .contains('.')
    );
    let help = output(dir.path(), &["--help"]).await;
    assert!(String::from_utf8_lossy(&help.stdout).contains("token --user user:default/jane"));
}

#[test]
fn example_configurations_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let env = |name: &str| match name {
        "PG_PASSWORD" => Some("secret".to_owned()),
        "AUTH_SECRET" => Some("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0".to_owned()),
        "USER_TOKEN_SECRET" => Some("dXNlci11c2VyLXVzZXItdXNlci11c2VyLXVzZXI=".to_owned()),
        "CI_NOTIFICATIONS_TOKEN" => Some("a-token-of-ours".to_owned()),
        _ => None,
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            notifications_backend::config::Config::load_with_env(
                std::slice::from_ref(&path),
                &env,
                &[],
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2);
    // The SQLite example has no token of its own (a published default would let anyone send):
    // start-up names the variable until the operator sets it.
    let err = notifications_backend::config::Config::load_with_env(
        &[examples.join("app-config.sqlite.yaml")],
        &|name: &str| env(name).filter(|_| name != "CI_NOTIFICATIONS_TOKEN"),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.ends_with(
            "backend.auth.externalAccess[0].options.token: environment variable \
             CI_NOTIFICATIONS_TOKEN is not set"
        ),
        "{err}"
    );
}

/// `send` against `app`, as a script runs it: the exit status, stdout and stderr.
async fn send(app: &crate::support::TestApp, token: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .env("NOTIFICATIONS_URL", app.url(""))
        .env("NOTIFICATIONS_TOKEN", token)
        .arg("send")
        .args(args)
        .output()
        .await
        .expect("send runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

db_test!(send_reports_by_exit_status_and_one_line, |app| {
    use crate::support::{SERVICE_TOKEN, USER};

    let (status, out, err) = send(
        &app,
        SERVICE_TOKEN,
        &[
            "--entity",
            USER,
            "--title",
            "Build 42 failed",
            "--info",
            "See the logs",
            "--link",
            "/catalog",
            "--severity",
            "high",
            "--topic",
            "builds",
            "--scope",
            "b42",
        ],
    )
    .await;
    assert_eq!(status, 0, "{err}");
    let listed = app.list(USER, "").await;
    let n = &listed["notifications"][0];
    assert_eq!(out, format!("sent 1 {}\n", n["id"].as_str().unwrap()));
    assert_eq!(
        n["payload"],
        json!({"title": "Build 42 failed", "description": "See the logs", "link": "/catalog",
               "severity": "high", "topic": "builds", "scope": "b42", "icon": null})
    );

    // A script run twice with one key sends once and prints the same line.
    let keyed = [
        "--broadcast",
        "--title",
        "Maintenance",
        "--idempotency-key",
        "maint-1",
    ];
    let (first, second) = (
        send(&app, SERVICE_TOKEN, &keyed).await,
        send(&app, SERVICE_TOKEN, &keyed).await,
    );
    assert_eq!((first.0, second.0), (0, 0), "{} {}", first.2, second.2);
    assert_eq!(first.1, second.1);
    assert_eq!(app.list(USER, "").await["totalCount"], 2);
    // Nobody qualified: sent 0.
    let (status, out, _) = send(
        &app,
        SERVICE_TOKEN,
        &["--entity", "group:default/none", "--title", "x"],
    )
    .await;
    assert_eq!((status, out.as_str()), (0, "sent 0\n"));

    // 1: refused by the backend, with its reason.
    let (status, out, err) = send(
        &app,
        SERVICE_TOKEN,
        &["--broadcast", "--title", "x", "--link", "javascript:x"],
    )
    .await;
    assert_eq!((status, out.as_str()), (1, ""));
    assert!(
        err.contains(
            "error rejected: Request failed with status 400: InputError: Invalid link provided"
        ),
        "{err}"
    );
    // 2: bad arguments (clap's, and no recipients, and no token).
    assert_eq!(
        send(&app, SERVICE_TOKEN, &["--broadcast"]).await.0,
        2,
        "no title"
    );
    let (status, _, err) = send(&app, SERVICE_TOKEN, &["--title", "x"]).await;
    assert_eq!(status, 2);
    assert!(err.contains("Entity references must be provided"), "{err}");
    assert_eq!(send(&app, "", &["--broadcast", "--title", "x"]).await.0, 2);
    assert_eq!(
        send(
            &app,
            SERVICE_TOKEN,
            &["--broadcast", "--title", "x", "--severity", "urgent"]
        )
        .await
        .0,
        2
    );
    // 3: the token is refused.
    let (status, _, err) = send(&app, "wrong", &["--broadcast", "--title", "x"]).await;
    assert_eq!(status, 3, "{err}");
    let user_token = app.user_token(USER);
    assert_eq!(
        send(&app, &user_token, &["--broadcast", "--title", "x"])
            .await
            .0,
        3
    );
    // --optional: never fails.
    let (status, out, _) = send(&app, SERVICE_TOKEN, &["--title", "x", "--optional"]).await;
    assert_eq!(status, 0);
    assert!(out.starts_with("skipped usage: Entity references"), "{out}");
    let (status, out, _) = send(
        &app,
        "wrong",
        &["--broadcast", "--title", "x", "--optional"],
    )
    .await;
    assert_eq!(status, 0);
    assert!(
        out.starts_with("skipped rejected: Request failed with status 401"),
        "{out}"
    );
    assert_eq!(
        app.list(USER, "").await["totalCount"],
        2,
        "nothing more sent"
    );
});

#[tokio::test]
async fn send_exits_4_when_the_backend_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = command(dir.path())
        .env("NOTIFICATIONS_TOKEN", "t")
        .args(["send", "--broadcast", "--title", "x", "--retries", "1"])
        .args(["--url", &format!("http://{closed}/api/notifications")])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error unreachable: request failed after 2 attempt(s)"),
        "{err}"
    );
    let help = output(dir.path(), &["send", "--help"]).await;
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("Examples:"),
        "{help}"
    );
}
