//! Re-sends with the same origin and scope (contract 3.3; cases 26-29, 70-71).

use notifications_common::NotificationSignal;
use serde_json::json;

use crate::db_test;
use crate::support::{USER, ids};

fn scoped(payload: serde_json::Value) -> serde_json::Value {
    json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": payload})
}

db_test!(
    case_26_27_71_resend_updates_in_place_and_makes_unread,
    |app| {
        let first = app
        .send_ok(scoped(json!({"title": "Build 1", "scope": "scaffolder-1234", "description": "d", "link": "/a", "topic": "t1"})))
        .await;
        let id = first[0]["id"].as_str().unwrap().to_owned();
        let token = app.user_token(USER);
        assert_eq!(
            app.post(
                "/notifications/update",
                &token,
                &json!({"ids": [id], "read": true})
            )
            .await
            .status,
            200
        );
        assert_eq!(
            app.get("/status", &token).await.body,
            json!({"unread": 0, "read": 1})
        );
        app.take_signals();

        let second = app
            .send_ok(scoped(
                json!({"title": "New notification", "scope": "scaffolder-1234", "severity": "low"}),
            ))
            .await;
        assert_eq!(second.len(), 1);
        let updated = &second[0];
        assert_eq!(updated["id"], id.as_str(), "same notification");
        assert_eq!(updated["read"], serde_json::Value::Null);
        assert!(updated["updated"].is_string(), "updated is set: {updated}");
        assert_eq!(
            updated["created"], first[0]["created"],
            "created does not move"
        );
        assert_eq!(updated["payload"]["title"], "New notification");
        assert_eq!(updated["payload"]["severity"], "low");
        // Keys absent from the re-send keep their values (upstream behaviour).
        assert_eq!(updated["payload"]["description"], "d");
        assert_eq!(updated["payload"]["link"], "/a");
        assert_eq!(updated["payload"]["topic"], "t1");
        assert_eq!(app.list(USER, "").await["totalCount"], 1, "one row only");
        assert_eq!(
            app.get("/status", &token).await.body,
            json!({"unread": 1, "read": 0})
        );
        let signals = app.take_signals();
        assert_eq!(signals.len(), 1);
        assert_eq!(
            signals[0].message,
            NotificationSignal::NewNotification {
                notification_id: id
            }
        );
    }
);

db_test!(case_28_another_origin_is_another_notification, |app| {
    app.send_ok(scoped(json!({"title": "a", "scope": "s"})))
        .await;
    let r = app
        .post(
            "/notifications",
            "test-service2-token",
            &scoped(json!({"title": "b", "scope": "s"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(app.list(USER, "").await["totalCount"], 2);
    // and another user is another notification
    app.send_ok(
        json!({"recipients": {"type": "entity", "entityRef": "user:default/other"},
                       "payload": {"title": "c", "scope": "s"}}),
    )
    .await;
    assert_eq!(app.list(USER, "").await["totalCount"], 2);
    assert_eq!(app.list("user:default/other", "").await["totalCount"], 1);
});

db_test!(case_29_broadcast_resend_updates_the_broadcast, |app| {
    let first = app.send_ok(json!({"recipients": {"type": "broadcast"}, "payload": {"title": "v1", "scope": "deploy"}})).await;
    let id = first[0]["id"].as_str().unwrap().to_owned();
    let token = app.user_token(USER);
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": [id], "read": true, "saved": true}),
    )
    .await;
    let second = app.send_ok(json!({"recipients": {"type": "broadcast"}, "payload": {"title": "v2", "scope": "deploy"}})).await;
    // The answer carries the stored id (upstream answers with a new, unstored one).
    assert_eq!(second[0]["id"], id.as_str());
    assert!(second[0]["updated"].is_string());
    let list = app.list(USER, "").await;
    assert_eq!(list["totalCount"], 1);
    let n = &list["notifications"][0];
    assert_eq!(n["payload"]["title"], "v2");
    assert_eq!(
        n["read"],
        serde_json::Value::Null,
        "a re-sent broadcast is unread again"
    );
    assert!(n["saved"].is_string(), "and stays saved");
});

db_test!(concurrent_resends_never_duplicate, |app| {
    let sends =
        (0..8).map(|i| app.send(scoped(json!({"title": format!("v{i}"), "scope": "race"}))));
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(ids(&app.list(USER, "").await["notifications"]).len(), 1);
});

db_test!(empty_scope_and_topic_are_none, |app| {
    for _ in 0..2 {
        app.send_ok(scoped(json!({"title": "t", "scope": "", "topic": ""})))
            .await;
    }
    let list = app.list(USER, "").await;
    assert_eq!(list["totalCount"], 2, "an empty scope matches nothing");
    assert_eq!(
        list["notifications"][0]["payload"]["topic"],
        serde_json::Value::Null
    );
    // and the settings document, with no nameless topic in it, saves back as it is
    let token = app.user_token(USER);
    let settings = app.get("/settings", &token).await.body;
    assert_eq!(settings["channels"][0]["origins"][0]["topics"], json!([]));
    assert_eq!(app.post("/settings", &token, &settings).await.status, 200);
});

db_test!(overlapping_scoped_sends_in_any_order_never_fail, |app| {
    let users = [
        "user:default/a",
        "user:default/b",
        "user:default/c",
        "user:default/d",
    ];
    let sends = (0..8).map(|i| {
        let mut order = users.to_vec();
        if i % 2 == 1 {
            order.reverse();
        }
        app.send(json!({"recipients": {"type": "entity", "entityRef": order},
                        "payload": {"title": format!("v{i}"), "scope": "shared"}}))
    });
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body.as_array().unwrap().len(), 4);
    }
    for user in users {
        assert_eq!(app.list(user, "").await["totalCount"], 1);
    }
});
