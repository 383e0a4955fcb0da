//! GET/POST /settings (contract 8.4).

use serde_json::json;

use crate::db_test;
use crate::support::{SERVICE, USER};

/// Upstream's router fixture: defaults for test-service2 and test-service3.
const FIXTURE_DEFAULTS: &str = r#"
notifications:
  defaultSettings:
    channels:
      - id: Web
        origins:
          - id: external:test-service2
            enabled: false
          - id: external:test-service3
            enabled: true
            topics:
              - id: test-topic3
                enabled: false
"#;

/// Upstream's fixture rows, stored directly (as its tests do): the defaults would suppress a
/// send from test-service2.
async fn fixture_notifications(app: &crate::support::TestApp) {
    let now = time::OffsetDateTime::now_utc();
    app.insert_from(
        SERVICE,
        Some(USER),
        json!({"title": "a", "topic": "test-topic"}),
        now,
    )
    .await;
    app.insert_from(
        "external:test-service2",
        Some(USER),
        json!({"title": "b", "topic": "test-topic2"}),
        now,
    )
    .await;
}

fn expected(service1: serde_json::Value) -> serde_json::Value {
    json!({"channels": [{"id": "Web", "origins": [
        service1,
        {"id": "external:test-service2", "enabled": false, "topics": [{"id": "test-topic2", "enabled": false}]},
        {"id": "external:test-service3", "enabled": true, "topics": [{"id": "test-topic3", "enabled": false}]},
    ]}]})
}

db_test!(
    case_59_60_61_effective_settings,
    config = FIXTURE_DEFAULTS,
    |app| {
        fixture_notifications(&app).await;
        let token = app.user_token(USER);
        // 61: nothing stored
        assert_eq!(
            app.get("/settings", &token).await.body,
            expected(
                json!({"id": SERVICE, "enabled": true, "topics": [{"id": "test-topic", "enabled": true}]})
            )
        );
        // 59: the origin switched off
        let save =
            json!({"channels": [{"id": "Web", "origins": [{"id": SERVICE, "enabled": false}]}]});
        assert_eq!(app.post("/settings", &token, &save).await.status, 200);
        assert_eq!(
            app.get("/settings", &token).await.body,
            expected(
                json!({"id": SERVICE, "enabled": false, "topics": [{"id": "test-topic", "enabled": false}]})
            )
        );
        // 60: only the topic switched off
        let save = json!({"channels": [{"id": "Web", "origins": [
        {"id": SERVICE, "enabled": true, "topics": [{"id": "test-topic", "enabled": false}]}]}]});
        let r = app.post("/settings", &token, &save).await;
        let want = expected(
            json!({"id": SERVICE, "enabled": true, "topics": [{"id": "test-topic", "enabled": false}]}),
        );
        assert_eq!(r.body, want, "the save answers with the effective settings");
        assert_eq!(app.get("/settings", &token).await.body, want);
    }
);

const OPT_IN_WEB: &str =
    "notifications:\n  defaultSettings:\n    channels:\n      - id: Web\n        enabled: false\n";

db_test!(case_62_opt_in_channel, config = OPT_IN_WEB, |app| {
    fixture_notifications(&app).await;
    assert_eq!(
        app.get("/settings", &app.user_token(USER)).await.body,
        json!({"channels": [{"id": "Web", "enabled": false, "origins": [
            {"id": SERVICE, "enabled": false, "topics": [{"id": "test-topic", "enabled": false}]},
            {"id": "external:test-service2", "enabled": false, "topics": [{"id": "test-topic2", "enabled": false}]},
        ]}]})
    );
});

db_test!(
    case_63_opt_in_channel_with_one_topic_enabled,
    config = OPT_IN_WEB,
    |app| {
        let token = app.user_token(USER);
        let save = json!({"channels": [{"id": "Web", "origins": [
        {"id": SERVICE, "enabled": true, "topics": [{"id": "build-failed", "enabled": true}]}]}]});
        assert_eq!(app.post("/settings", &token, &save).await.status, 200);
        for topic in ["build-failed", "deployment-success", "security-alert"] {
            app.send_ok(json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": topic, "topic": topic}})).await;
        }
        let settings = app.get("/settings", &token).await.body;
        assert_eq!(
            settings["channels"][0]["origins"],
            json!([{"id": SERVICE, "enabled": true, "topics": [
            {"id": "build-failed", "enabled": true},
            {"id": "deployment-success", "enabled": false},
            {"id": "security-alert", "enabled": false}]}])
        );
    }
);

db_test!(case_64_66_68_saving, |app| {
    let token = app.user_token(USER);
    // 66: what is saved loads back identically (origins known only from settings are not shown
    // until the user has notifications from them, as upstream).
    app.send_to(USER, json!({"title": "t", "topic": "efgh-topic"}))
        .await;
    let r = app.post("/notifications", "test-service2-token",
        &json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "u"}})).await;
    assert_eq!(r.status, 200);
    let save = json!({"channels": [{"id": "Web", "origins": [
        {"id": SERVICE, "enabled": true, "topics": [{"id": "efgh-topic", "enabled": false}]},
        {"id": "external:test-service2", "enabled": true, "topics": []}]}]});
    let r = app.post("/settings", &token, &save).await;
    assert_eq!(r.body, save, "{}", r.text);
    assert_eq!(app.get("/settings", &token).await.body, save);
    // 68: a topic of a disabled origin is stored disabled.
    let save = json!({"channels": [{"id": "Web", "origins": [
        {"id": SERVICE, "enabled": false, "topics": [{"id": "efgh-topic", "enabled": true}]}]}]});
    let r = app.post("/settings", &token, &save).await;
    assert_eq!(
        r.body["channels"][0]["origins"][0]["topics"][0],
        json!({"id": "efgh-topic", "enabled": false})
    );
    // 64: the channel-level flag is not stored.
    let save = json!({"channels": [{"id": "Web", "enabled": false, "origins": [{"id": SERVICE, "enabled": false}]}]});
    let r = app.post("/settings", &token, &save).await;
    assert_eq!(r.body["channels"][0].get("enabled"), None);
    // {channels: []} clears everything.
    let r = app
        .post("/settings", &token, &json!({"channels": []}))
        .await;
    assert_eq!(
        r.body["channels"][0]["origins"][0],
        json!({"id": SERVICE, "enabled": true, "topics": [{"id": "efgh-topic", "enabled": true}]})
    );
});

db_test!(case_65_invalid_settings_store_nothing, |app| {
    let token = app.user_token(USER);
    let good = json!({"channels": [{"id": "Web", "origins": [{"id": SERVICE, "enabled": false}]}]});
    assert_eq!(app.post("/settings", &token, &good).await.status, 200);
    let bad_bodies = [
        json!({"channels": [{"id": "Invalid", "origins": []}]}),
        json!({"channels": [{"id": "web", "origins": []}]}),
        json!({"channels": [{"id": "Web", "origins": [{"id": "o"}]}]}),
        json!({"channels": [{"id": "Web"}]}),
        json!({"channels": [{"id": "Web", "origins": [{"id": "o", "enabled": "false"}]}]}),
        json!({}),
        json!({"channels": [{"id": "Web", "origins": [{"id": "x".repeat(300), "enabled": true}]}]}),
        json!({"channels": [{"id": "Web", "origins": [{"id": "", "enabled": true}]}]}),
        json!({"channels": [{"id": "Web", "origins": [{"id": "o", "enabled": true, "topics": [{"id": "", "enabled": true}]}]}]}),
    ];
    for body in bad_bodies {
        let r = app.post("/settings", &token, &body).await;
        r.assert_error(400, "InputError");
    }
    let r = app
        .post(
            "/settings",
            &token,
            &json!({"channels": [{"id": "Invalid", "origins": []}]}),
        )
        .await;
    assert_eq!(r.message(), "Invalid channel");
    // The earlier settings are intact.
    app.send(
        json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t"}}),
    )
    .await;
    assert_eq!(
        app.list(USER, "").await["totalCount"],
        0,
        "origin still disabled"
    );
});

db_test!(case_67_no_notifications_no_config, |app| {
    assert_eq!(
        app.get("/settings", &app.user_token(USER)).await.body,
        json!({"channels": [{"id": "Web", "origins": []}]})
    );
});

db_test!(settings_are_per_user, |app| {
    let save = json!({"channels": [{"id": "Web", "origins": [{"id": SERVICE, "enabled": false}]}]});
    assert_eq!(
        app.post("/settings", &app.user_token(USER), &save)
            .await
            .status,
        200
    );
    let created = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": [USER, "user:default/other"]}, "payload": {"title": "t"}}))
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["user"], "user:default/other");
});

// The schema allows an entry twice (upstream's validator did, then its unique index failed with
// a 500): the last one counts, as for a repeated JSON key.
db_test!(repeated_settings_entries_the_last_counts, |app| {
    let token = app.user_token(USER);
    // Settings list the origins and topics the user has received.
    app.send_to(USER, json!({"title": "t", "topic": "t"})).await;
    let body = json!({"channels": [
        {"id": "Web", "origins": [{"id": SERVICE, "enabled": true}]},
        {"id": "Web", "origins": [
            {"id": SERVICE, "enabled": true, "topics": [{"id": "t", "enabled": true}, {"id": "t", "enabled": false}]},
            {"id": SERVICE, "enabled": false}]}]});
    let r = app.post("/settings", &token, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["channels"][0]["origins"][0],
        json!({"id": SERVICE, "enabled": false, "topics": [{"id": "t", "enabled": false}]})
    );
    app.send(
        json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "u"}}),
    )
    .await;
    assert_eq!(app.list(USER, "").await["totalCount"], 1, "origin disabled");
});
