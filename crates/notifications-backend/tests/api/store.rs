//! The store below the API: retention (cases 73-75) and all-or-nothing writes.

use notifications_backend::config::{Config, ConfigDuration};
use notifications_backend::testing::cleaner;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use notifications_backend::testing::store::{Recipient, SendContext};

use crate::db_test;
use crate::support::{Api, DbKind, TestDb, USER};

fn send(origin: &str, created: OffsetDateTime) -> SendContext {
    SendContext {
        origin: origin.into(),
        created: created.into(),
        options: serde_json::Value::Null,
    }
}

fn inbox_only(users: Vec<String>, payload: serde_json::Value) -> Vec<Recipient> {
    let payload: notifications_common::NotificationPayload =
        serde_json::from_value(payload).unwrap();
    users
        .into_iter()
        .map(|u| Recipient::inbox_only(Some(u), payload.clone()))
        .collect()
}

db_test!(case_73_cleaner_deletes_what_saw_no_activity, |app| {
    let now = OffsetDateTime::now_utc();
    app.insert_at(
        Some(USER),
        json!({"title": "old"}),
        now - Duration::days(10),
    )
    .await;
    let fresh = app.send_to(USER, json!({"title": "fresh"})).await;
    let old_broadcast = app
        .insert_at(
            None,
            json!({"title": "old b", "scope": "s"}),
            now - Duration::days(10),
        )
        .await;
    app.post(
        "/notifications/update",
        &app.user_token(USER),
        &json!({"ids": [old_broadcast], "read": true}),
    )
    .await;
    // An old scoped notification re-sent recently counts as active.
    app.insert_at(
        Some(USER),
        json!({"title": "old scoped", "scope": "kept"}),
        now - Duration::days(10),
    )
    .await;
    let resent = app
        .send_to(USER, json!({"title": "re-sent", "scope": "kept"}))
        .await;

    let five_days = ConfigDuration {
        days: 5,
        ..Default::default()
    };
    let deleted = cleaner::run_once(&app.db.store(), &five_days)
        .await
        .unwrap();
    assert_eq!(
        deleted, 2,
        "the old user notification and the old broadcast (with its status row)"
    );
    let left = app.list_ids(USER, "").await;
    assert_eq!(left.len(), 2);
    assert!(left.contains(&fresh) && left.contains(&resent));
    assert_eq!(
        cleaner::run_once(&app.db.store(), &five_days)
            .await
            .unwrap(),
        0
    );
});

db_test!(cleaner_deletes_large_backlogs_in_batches, |app| {
    let old = OffsetDateTime::now_utc() - Duration::days(400);
    let users: Vec<String> = (0..6200).map(|i| format!("user:default/u{i}")).collect();
    let store = app.db.store();
    store
        .create_for_users(
            send("test", old),
            inbox_only(users, json!({"title": "old"})),
        )
        .await
        .unwrap();
    app.send_to(USER, json!({"title": "fresh"})).await;
    let deleted = cleaner::run_once(&store, &ConfigDuration::one_year())
        .await
        .unwrap();
    assert_eq!(deleted, 6200);
    assert_eq!(app.list(USER, "").await["totalCount"], 1);
});

#[test]
fn case_74_75_retention_defaults_to_a_year_and_can_be_disabled() {
    assert_eq!(
        Config::default().notifications.retention,
        Some(ConfigDuration::one_year())
    );
    let disabled = Config::from_yaml_str("notifications:\n  retention: false\n").unwrap();
    assert_eq!(disabled.notifications.retention, None);
}

#[tokio::test]
async fn case_75_disabled_retention_schedules_nothing() {
    let db = TestDb::create(DbKind::Sqlite).unwrap();
    db.store().db().migrate().await.unwrap();
    assert!(cleaner::spawn(db.store(), None).is_none());
    let handle = cleaner::spawn(db.store(), Some(ConfigDuration::one_year())).expect("scheduled");
    handle.abort();
}

/// A write that fails part-way stores nothing: every recipient or none.
#[tokio::test]
async fn a_failed_fan_out_stores_nothing_postgres() {
    let Some(db) = TestDb::create(DbKind::Postgres) else {
        return;
    };
    let store = db.store();
    store.db().migrate().await.unwrap();
    let mut users: Vec<String> = (0..1500).map(|i| format!("user:default/u{i}")).collect();
    // PostgreSQL refuses NUL in text: the third chunk of rows fails after two succeeded.
    users[1400] = "user:default/bad\0".into();
    let recipients = inbox_only(users, json!({"title": "t"}));
    assert!(
        store
            .create_for_users(send("test", OffsetDateTime::now_utc()), recipients)
            .await
            .is_err()
    );
    let (rows, total) = store
        .list(&"user:default/u0".parse().unwrap(), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        (rows.len(), total),
        (0, 0),
        "the first chunks were rolled back"
    );
}

/// Instances starting together on one PostgreSQL database: one migrates, the others wait and
/// find nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_are_safe_postgres() {
    let Some(db) = TestDb::create_empty(DbKind::Postgres) else {
        return;
    };
    let runs = (0..6).map(|_| {
        let store = db.store();
        tokio::spawn(async move { store.db().migrate().await })
    });
    let results: Vec<Vec<String>> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("every instance migrates without error"))
        .collect();
    assert_eq!(
        results.iter().filter(|applied| !applied.is_empty()).count(),
        1,
        "{results:?}"
    );
    let (rows, _) = db
        .store()
        .list(&"user:default/x".parse().unwrap(), &Default::default())
        .await
        .unwrap();
    assert!(rows.is_empty());
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data_across_requests() {
    let config = Config::from_yaml_str(
        "backend:\n  listen: {port: 0}\n  database: {client: better-sqlite3, connection: ':memory:'}\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = notifications_backend::BackendBuilder::new(config, dir.path())
        .workers(1)
        .handle_signals(false)
        .start()
        .await
        .unwrap();
    let key = |file: &str| {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim()).unwrap()
    };
    let mint = |key: &[u8], kind| {
        notifications_backend::testing::auth::mint(key, &kind, std::time::Duration::from_secs(60))
            .unwrap()
    };
    let service = mint(
        &key("auth-key"),
        notifications_backend::testing::auth::TokenKind::Service {
            subject: "s".into(),
        },
    );
    let user = mint(
        &key("user-key"),
        notifications_backend::testing::auth::TokenKind::User {
            user_ref: USER.into(),
            ownership_refs: vec![],
        },
    );
    let api = Api::new(&format!("http://{}", running.local_addr()));
    let body =
        json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t"}});
    for _ in 0..3 {
        assert_eq!(api.post("", &service, &body).await.status, 200);
    }
    assert_eq!(
        api.get("/status", &user).await.body,
        json!({"unread": 3, "read": 0})
    );
    running.stop(true).await.unwrap();
}
