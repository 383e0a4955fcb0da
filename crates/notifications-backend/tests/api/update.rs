//! POST /notifications/update (contract 8.3).

use notifications_common::{NotificationSignal, SignalRecipients};
use serde_json::{Value, json};

use crate::db_test;
use crate::support::{USER, ids};

const OTHER: &str = "user:default/other";

db_test!(case_53_54_read_and_unread, |app| {
    let token = app.user_token(USER);
    let own = app.send_to(USER, json!({"title": "own"})).await;
    let b = app.broadcast(json!({"title": "b"})).await;
    let r = app
        .post(
            "/notifications/update",
            &token,
            &json!({"ids": [own, b], "read": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        ids(&r.body),
        [b.clone(), own.clone()],
        "answer is newest first"
    );
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"].is_string())
    );
    assert!(
        app.list(USER, "").await["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"].is_string())
    );
    let r = app
        .post("/update", &token, &json!({"ids": [own, b], "read": false}))
        .await;
    assert_eq!(r.status, 200, "the deprecated alias works too");
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["read"].is_null())
    );
    assert_eq!(
        app.get("/status", &token).await.body,
        json!({"unread": 2, "read": 0})
    );
});

/// `(read, saved)` of each notification in an update answer.
fn marks(body: &Value) -> Vec<(bool, bool)> {
    let notifications = body.as_array().expect("an array of notifications");
    notifications
        .iter()
        .map(|n| (n["read"].is_string(), n["saved"].is_string()))
        .collect()
}

db_test!(case_55_saved_and_broadcast_state_is_per_column, |app| {
    let token = app.user_token(USER);
    let own = app.send_to(USER, json!({"title": "own"})).await;
    let b = app.broadcast(json!({"title": "b"})).await;
    let update = |body: Value| {
        let (app, token) = (&app, &token);
        async move { marks(&app.post("/notifications/update", token, &body).await.body) }
    };
    assert_eq!(
        update(json!({"ids": [own, b], "saved": true})).await,
        [(false, true); 2]
    );
    // Marking read must not clear saved, nor the reverse (upstream's PostgreSQL path does).
    assert_eq!(
        update(json!({"ids": [own, b], "read": true})).await,
        [(true, true); 2]
    );
    assert_eq!(
        update(json!({"ids": [own, b], "saved": false})).await,
        [(true, false); 2]
    );
    // both at once
    assert_eq!(
        update(json!({"ids": [b], "read": false, "saved": true})).await,
        [(false, true)]
    );
    assert_eq!(app.list(USER, "saved=true").await["totalCount"], 1);
});

db_test!(case_56_signals_for_read_changes_only, |app| {
    let token = app.user_token(USER);
    let id = app.send_to(USER, json!({"title": "t"})).await;
    app.take_signals();
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": [id, "not-a-uuid"], "read": true}),
    )
    .await;
    let signals = app.take_signals();
    assert_eq!(signals.len(), 1);
    assert_eq!(
        signals[0].recipients,
        SignalRecipients::User {
            entity_ref: vec![USER.into()]
        }
    );
    assert_eq!(
        signals[0].message,
        NotificationSignal::NotificationRead {
            notification_ids: vec![id.clone(), "not-a-uuid".into()]
        }
    );
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": [id], "read": false}),
    )
    .await;
    assert_eq!(
        app.take_signals()[0].message,
        NotificationSignal::NotificationUnread {
            notification_ids: vec![id.clone()]
        }
    );
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": [id], "saved": true}),
    )
    .await;
    assert!(app.take_signals().is_empty(), "no signal for saved");
});

db_test!(case_57_other_users_notifications_are_untouched, |app| {
    let theirs = app.send_to(OTHER, json!({"title": "theirs"})).await;
    let mine = app.send_to(USER, json!({"title": "mine"})).await;
    let r = app
        .post(
            "/notifications/update",
            &app.user_token(USER),
            &json!({"ids": [theirs, mine, "nope"], "read": true, "saved": true}),
        )
        .await;
    assert_eq!(ids(&r.body), [mine]);
    let other = app.list(OTHER, "").await;
    assert_eq!(other["notifications"][0]["read"], Value::Null);
    assert_eq!(other["notifications"][0]["saved"], Value::Null);
    let r = app
        .post(
            "/notifications/update",
            &app.user_token(USER),
            &json!({"ids": []}),
        )
        .await;
    assert_eq!((r.status, r.body), (200, json!([])));
});

db_test!(case_58_body_needs_ids, |app| {
    let token = app.user_token(USER);
    for body in [
        json!({}),
        json!({"read": true}),
        json!({"ids": "x"}),
        json!({"ids": [1]}),
        json!({"ids": [], "read": "true"}),
    ] {
        app.post("/notifications/update", &token, &body)
            .await
            .assert_error(400, "InputError");
    }
});
