//! Recipients from the embedded catalog: groups, child groups, owners, exclusions (contract
//! section 3.2, cases 8–11 and 77–80), reloads, and a 10,000-member group in one request.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use notifications_backend::BackendBuilder;
use notifications_backend::config::Config;
use serde_json::{Value, json};

use crate::db_test;
use crate::support::{DbKind, TestApp};

const CATALOG: &str = concat!(
    "notifications: {catalog: {files: ['",
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/catalog/org.yaml']}}"
);

const JANUS_USERS: &str = concat!(
    "notifications: {catalog: {files: ['",
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/catalog/janus-users.yaml']}}"
);

/// The users a send to `refs` minus `excluded` reaches, as the create answer lists them; each
/// must also find it in their inbox.
async fn recipients(app: &TestApp, refs: Value, excluded: Value) -> BTreeSet<String> {
    let created = app
        .send_ok(json!({
            "recipients": {"type": "entity", "entityRef": refs, "excludeEntityRef": excluded},
            "payload": {"title": "to a group"}
        }))
        .await;
    let users: Vec<String> = created
        .iter()
        .map(|n| n["user"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = users.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        users.len(),
        "one notification per user: {users:?}"
    );
    for n in &created {
        let user = n["user"].as_str().unwrap();
        let r = app
            .get(
                &format!("/notifications/{}", n["id"].as_str().unwrap()),
                &app.user_token(user),
            )
            .await;
        assert_eq!(r.status, 200, "{user} sees their notification");
    }
    unique
}

fn set(users: &[&str]) -> BTreeSet<String> {
    users.iter().map(|u| format!("user:default/{u}")).collect()
}

db_test!(
    case_08_11_a_group_reaches_its_members,
    config = CATALOG,
    |app| {
        let none = json!([]);
        assert_eq!(
            recipients(&app, json!("group:default/mock"), none.clone()).await,
            set(&["mock"])
        );
        // Case 9 and 10: excluding the group, or its only member.
        assert_eq!(
            recipients(
                &app,
                json!("group:default/mock"),
                json!("group:default/mock")
            )
            .await,
            set(&[])
        );
        assert_eq!(
            recipients(
                &app,
                json!("group:default/mock"),
                json!("user:default/mock")
            )
            .await,
            set(&[])
        );
        // Case 11: the group and its member give one notification.
        assert_eq!(
            recipients(
                &app,
                json!(["group:default/mock", "user:default/mock"]),
                none
            )
            .await,
            set(&["mock"])
        );
        assert_eq!(app.list("user:default/mock", "").await["totalCount"], 2);
    }
);

db_test!(
    case_77_child_groups_are_expanded_minus_exclusions,
    config = CATALOG,
    |app| {
        assert_eq!(
            recipients(
                &app,
                json!("group:default/parent_group"),
                json!("user:default/ignored")
            )
            .await,
            set(&["foo", "bar"])
        );
        // Upwards is not followed: the child group does not reach its parent's members.
        assert_eq!(
            recipients(&app, json!("group:child_group"), json!([])).await,
            set(&["bar", "ignored"])
        );
        // Excluding the child group prunes it and its members.
        assert_eq!(
            recipients(
                &app,
                json!("group:default/parent_group"),
                json!(["group:default/child_group"])
            )
            .await,
            set(&["foo"])
        );
    }
);

db_test!(
    case_78_79_owned_entities_reach_their_owner,
    config = CATALOG,
    |app| {
        assert_eq!(
            recipients(&app, json!("component:default/by-user"), json!([])).await,
            set(&["foo"])
        );
        // Owned by a group of another namespace, whose bare member names are in that namespace.
        let users = recipients(&app, json!("component:default/by-group"), json!([])).await;
        assert_eq!(
            users,
            ["user:default/bar", "user:payments/foo"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert_eq!(
            recipients(
                &app,
                json!("component:by-group"),
                json!("user:payments/foo")
            )
            .await,
            set(&["bar"])
        );
        // A system owned by a group with a child group.
        assert_eq!(
            recipients(&app, json!("system:mock"), json!([])).await,
            set(&["foo", "bar", "ignored"])
        );
    }
);

db_test!(case_80_cycles_end, config = CATALOG, |app| {
    assert_eq!(
        recipients(&app, json!("group:cycle-a"), json!([])).await,
        set(&["ann", "ben"])
    );
    assert_eq!(
        recipients(
            &app,
            json!(["group:cycle-b", "group:cycle-a"]),
            json!("user:ben")
        )
        .await,
        set(&["ann"])
    );
});

db_test!(unknown_entities_reach_nobody, config = CATALOG, |app| {
    assert_eq!(
        recipients(
            &app,
            json!(["group:default/nope", "component:nope"]),
            json!([])
        )
        .await,
        set(&[])
    );
    // An exclusion that is no entity ref matches nothing (upstream compares strings).
    assert_eq!(
        recipients(&app, json!("group:mock"), json!("mock")).await,
        set(&["mock"])
    );
});

db_test!(
    the_janus_development_users_file_loads,
    config = JANUS_USERS,
    |app| {
        assert_eq!(
            recipients(&app, json!("group:jdoe"), json!([])).await,
            set(&["jdoe", "jdoe-2"])
        );
        assert_eq!(
            recipients(&app, json!("group:jdoe-2"), json!([])).await,
            set(&["jdoe"])
        );
        assert_eq!(
            recipients(&app, json!("user:guest"), json!([])).await,
            set(&["guest"])
        );
    }
);

fn write_group(path: &Path, members: &[String]) {
    let mut text = String::from(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: big}\nspec:\n  type: team\n  children: []\n  members:\n",
    );
    for m in members {
        text.push_str("    - ");
        text.push_str(m);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

async fn start_with_catalog(kind: DbKind, file: &Path) -> Option<TestApp> {
    let yaml = format!(
        "notifications: {{catalog: {{files: ['{}'], reloadInterval: 100ms}}}}",
        file.display()
    );
    TestApp::start(kind, &yaml).await
}

/// Sends to `group:big` until it reaches `after`, asserting that it reaches `before` meanwhile.
async fn until_recipients(app: &TestApp, before: &[&str], after: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let users = recipients(app, json!("group:big"), json!([])).await;
        if users == set(after) {
            return;
        }
        assert_eq!(users, set(before));
        assert!(Instant::now() < deadline, "the change was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn catalog_reloads_without_a_restart(kind: DbKind) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("groups.yaml");
    write_group(&file, &["a".into()]);
    let Some(app) = start_with_catalog(kind, &file).await else {
        return;
    };
    assert_eq!(
        recipients(&app, json!("group:big"), json!([])).await,
        set(&["a"])
    );
    write_group(&file, &["a".into(), "b".into()]);
    until_recipients(&app, &["a"], &["a", "b"]).await;
    // A broken edit keeps the last good catalog, and the next good edit is picked up.
    std::fs::write(&file, "kind: [oops\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        recipients(&app, json!("group:big"), json!([])).await,
        set(&["a", "b"])
    );
    write_group(&file, &["c".into()]);
    until_recipients(&app, &["a", "b"], &["c"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reloads_without_a_restart_sqlite() {
    catalog_reloads_without_a_restart(DbKind::Sqlite).await;
}

#[tokio::test]
async fn invalid_catalog_files_stop_start_up_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.yaml");
    std::fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: ok}\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: 'not ok'}\n",
    )
    .unwrap();
    let config = Config::from_yaml_str(&format!(
        "backend: {{listen: {{port: 0}}, database: {{client: better-sqlite3, connection: ':memory:'}}}}\nnotifications: {{catalog: {{files: ['{}']}}}}",
        file.display()
    ))
    .unwrap();
    let err = BackendBuilder::new(config, dir.path())
        .handle_signals(false)
        .start()
        .await
        .err()
        .expect("start-up fails");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot load the catalog: {}:5: metadata.name: \"not ok\" is not a valid value",
            file.display()
        )
    );
}

/// Fan-out at scale: one request stores a notification for each of 10,000 members, in one
/// transaction (the time is measured by the benchmark, not here).
async fn ten_thousand_members(kind: DbKind) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("groups.yaml");
    let members: Vec<String> = (0..10_000).map(|i| format!("member-{i:05}")).collect();
    write_group(&file, &members);
    let Some(app) = start_with_catalog(kind, &file).await else {
        return;
    };
    let created = app
        .send_ok(json!({
            "recipients": {"type": "entity", "entityRef": "group:big", "excludeEntityRef": "user:member-00042"},
            "payload": {"title": "everyone"}
        }))
        .await;
    assert_eq!(created.len(), 9_999);
    assert_eq!(
        app.list("user:default/member-09999", "").await["totalCount"],
        1
    );
    assert_eq!(
        app.list("user:default/member-00042", "").await["totalCount"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_members_sqlite() {
    ten_thousand_members(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_members_postgres() {
    ten_thousand_members(DbKind::Postgres).await;
}
