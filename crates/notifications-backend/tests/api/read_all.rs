//! POST /notifications/read-all (beyond upstream): every unread notification of the caller, own
//! and broadcast, or those matching the list's filters, marked read in one call.

use std::collections::BTreeSet;

use notifications_common::{NotificationSignal, SignalRecipients};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::db_test;
use crate::support::{TestApp, USER, ids};

const OTHER: &str = "user:default/other";
const READ_ALL: &str = "/notifications/read-all";

async fn read_all(app: &TestApp, user: &str, query: &str) -> u64 {
    let path = if query.is_empty() {
        READ_ALL.to_owned()
    } else {
        format!("{READ_ALL}?{query}")
    };
    let r = app.post(&path, &app.user_token(user), &Value::Null).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.body["updated"]
        .as_u64()
        .unwrap_or_else(|| panic!("{query}: no count in {}", r.text))
}

async fn status(app: &TestApp, user: &str) -> Value {
    app.get("/status", &app.user_token(user)).await.body
}

fn set(ids: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

db_test!(
    marks_every_unread_own_and_broadcast_and_nothing_else,
    |app| {
        let token = app.user_token(USER);
        let own_a = app.send_to(USER, json!({"title": "a"})).await;
        let own_b = app.send_to(USER, json!({"title": "b"})).await;
        let own_read = app.send_to(USER, json!({"title": "read before"})).await;
        let theirs = app.send_to(OTHER, json!({"title": "theirs"})).await;
        let b_unread = app.broadcast(json!({"title": "broadcast"})).await;
        let b_read = app
            .broadcast(json!({"title": "broadcast read before"}))
            .await;
        let b_saved = app.broadcast(json!({"title": "broadcast saved"})).await;
        let marked = app
            .post(
                "/notifications/update",
                &token,
                &json!({"ids": [own_read, b_read], "read": true}),
            )
            .await;
        let read_before: Vec<Value> = marked.body.as_array().unwrap().clone();
        // A saved broadcast has a status row without a read mark: it is unread, and is marked.
        app.post(
            "/notifications/update",
            &token,
            &json!({"ids": [b_saved], "saved": true}),
        )
        .await;
        assert_eq!(status(&app, USER).await, json!({"unread": 4, "read": 2}));
        app.take_signals();

        assert_eq!(read_all(&app, USER, "").await, 4);

        assert_eq!(status(&app, USER).await, json!({"unread": 0, "read": 6}));
        let list = app.list(USER, "read=false").await;
        assert_eq!(list["totalCount"], 0, "{list}");
        let list = app.list(USER, "read=true").await;
        assert_eq!(list["totalCount"], 6, "{list}");
        // What was read before keeps its time; the saved broadcast stays saved.
        for before in &read_before {
            let now = app
                .get(
                    &format!("/notifications/{}", before["id"].as_str().unwrap()),
                    &token,
                )
                .await
                .body;
            assert_eq!(now["read"], before["read"], "{now}");
        }
        let saved = app
            .get(&format!("/notifications/{b_saved}"), &token)
            .await
            .body;
        assert!(
            saved["saved"].is_string() && saved["read"].is_string(),
            "{saved}"
        );

        // One read signal to the caller, naming what it marked.
        let signals = app.take_signals();
        assert_eq!(signals.len(), 1, "{signals:?}");
        assert_eq!(
            signals[0].recipients,
            SignalRecipients::User {
                entity_ref: vec![USER.into()]
            }
        );
        let NotificationSignal::NotificationRead { notification_ids } = &signals[0].message else {
            panic!("a read signal expected: {signals:?}");
        };
        assert_eq!(
            set(notification_ids.clone()),
            set([own_a, own_b, b_unread.clone(), b_saved])
        );

        // The other user's inbox, broadcasts included, is untouched.
        assert_eq!(status(&app, OTHER).await, json!({"unread": 4, "read": 0}));
        let other = app.list(OTHER, "read=false").await;
        assert_eq!(
            set(ids(&other["notifications"])).len(),
            4,
            "theirs {theirs} and three broadcasts: {other}"
        );

        // Nothing left: nothing marked, no signal.
        assert_eq!(read_all(&app, USER, "").await, 0);
        assert!(app.take_signals().is_empty());

        // A broadcast sent afterwards is unread.
        let later = app.broadcast(json!({"title": "later"})).await;
        assert_eq!(status(&app, USER).await, json!({"unread": 1, "read": 6}));
        assert_eq!(read_all(&app, USER, "").await, 1);
        assert_eq!(status(&app, USER).await, json!({"unread": 0, "read": 7}));
        let later = app
            .get(&format!("/notifications/{later}"), &token)
            .await
            .body;
        assert!(later["read"].is_string(), "{later}");
    }
);

// An inbox varied in every filtered field, own and broadcast, some saved: for each filter,
// read-all marks exactly what the list shows unread under that filter.
db_test!(each_filter_marks_what_the_list_shows, |app| {
    let token = app.user_token(USER);
    let old = datetime!(2026-01-01 00:00 UTC);
    let mut all = Vec::new();
    for (i, (topic, severity)) in [
        ("deploy", "critical"),
        ("deploy", "low"),
        ("build", "high"),
        ("build", "normal"),
    ]
    .into_iter()
    .enumerate()
    {
        for broadcast in [false, true] {
            for recent in [false, true] {
                let title = if i % 2 == 0 {
                    format!("the Needle {i}")
                } else {
                    format!("hay {i}")
                };
                let payload = json!({"title": title, "topic": topic, "severity": severity});
                let user = (!broadcast).then_some(USER);
                let created = if recent {
                    OffsetDateTime::now_utc()
                } else {
                    old
                };
                all.push(app.insert_at(user, payload, created).await);
            }
        }
    }
    // Another user's notification that matches every filter is never marked.
    app.insert_at(
        Some(OTHER),
        json!({"title": "the needle", "topic": "deploy", "severity": "critical"}),
        OffsetDateTime::now_utc(),
    )
    .await;
    let saved: Vec<&String> = all.iter().step_by(3).collect();
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": saved, "saved": true}),
    )
    .await;
    let filters = [
        "topic=deploy",
        "minimumSeverity=high",
        "createdAfter=2026-06-01T00:00:00Z",
        "search=NEEDLE",
        "search=ay",
        "saved=true",
        "saved=false",
        "topic=build&minimumSeverity=high&saved=false",
    ];
    for filter in filters {
        app.post(
            "/notifications/update",
            &token,
            &json!({"ids": all, "read": false}),
        )
        .await;
        let expected = set(app.list_ids(USER, &format!("{filter}&read=false")).await);
        assert!(
            !expected.is_empty() && expected.len() < all.len(),
            "{filter}: the inbox should tell this filter apart ({} of {})",
            expected.len(),
            all.len()
        );
        assert_eq!(
            read_all(&app, USER, filter).await,
            expected.len() as u64,
            "{filter}"
        );
        assert_eq!(
            set(app.list_ids(USER, "read=true").await),
            expected,
            "{filter}"
        );
        let unread = all.len() - expected.len();
        assert_eq!(
            status(&app, USER).await,
            json!({"unread": unread, "read": expected.len()}),
            "{filter}"
        );
        assert_eq!(
            app.list(USER, "read=false&limit=1").await["totalCount"],
            unread,
            "{filter}"
        );
        assert_eq!(
            app.list(USER, &format!("{filter}&read=false")).await["totalCount"],
            0,
            "{filter}"
        );
    }
    // Their own and the eight broadcasts.
    assert_eq!(status(&app, OTHER).await["unread"], 9);
});

db_test!(refuses_what_it_does_not_take, |app| {
    let token = app.user_token(USER);
    let id = app.send_to(USER, json!({"title": "stays unread"})).await;
    for (query, message) in [
        ("read=true", "Unknown query parameter 'read'"),
        ("limit=10", "Unknown query parameter 'limit'"),
        ("orderField=created", "Unknown query parameter 'orderField'"),
        ("minimumSeverity=urgent", "minimumSeverity"),
        ("createdAfter=yesterday", "Unexpected date format"),
        ("saved=yes", "saved"),
        ("topic=", "Empty value"),
    ] {
        let r = app
            .post(&format!("{READ_ALL}?{query}"), &token, &Value::Null)
            .await;
        r.assert_error(400, "InputError");
        assert!(r.message().contains(message), "{query}: {}", r.text);
    }
    let r = app
        .request(reqwest::Method::POST, READ_ALL, None, None)
        .await;
    r.assert_error(401, "AuthenticationError");
    let r = app
        .request(reqwest::Method::GET, READ_ALL, Some(&token), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let n = app.get(&format!("/notifications/{id}"), &token).await.body;
    assert!(n["read"].is_null(), "{n}");
});

// Calls at once (two tabs, a retry) mark each notification once between them: the counts add
// up to the unread there were, and the signals name each once. Own rows and broadcasts apart,
// so that one side's waits do not order the other's.
db_test!(concurrent_calls_mark_each_notification_once, |app| {
    for broadcast in [true, false] {
        let mut all = Vec::new();
        for i in 0..200 {
            let payload = json!({"title": format!("number {i}")});
            all.push(if broadcast {
                app.broadcast(payload).await
            } else {
                app.send_to(USER, payload).await
            });
        }
        app.take_signals();
        let counts = tokio::join!(
            read_all(&app, USER, ""),
            read_all(&app, USER, ""),
            read_all(&app, USER, ""),
            read_all(&app, USER, ""),
        );
        let counts = [counts.0, counts.1, counts.2, counts.3];
        assert_eq!(
            counts.iter().sum::<u64>(),
            200,
            "broadcasts {broadcast}: {counts:?}"
        );
        let named: Vec<String> = app
            .take_signals()
            .into_iter()
            .flat_map(|s| match s.message {
                NotificationSignal::NotificationRead { notification_ids } => notification_ids,
                other => panic!("a read signal expected: {other:?}"),
            })
            .collect();
        assert_eq!(named.len(), 200, "each named once");
        assert_eq!(set(named), set(all));
    }
    assert_eq!(status(&app, USER).await, json!({"unread": 0, "read": 400}));
});
