//! POST /notifications (contract 8.1).

use notifications_common::{
    NOTIFICATIONS_CHANNEL, NotificationSignal, SignalMessage, SignalRecipients,
};
use notifications_node::{RecipientResolver, ResolveError, ResolvedRecipients};
use serde_json::json;

use crate::db_test;
use crate::support::{DbKind, SERVICE, TestApp, USER};

fn broadcast_with_link(link: &str) -> serde_json::Value {
    json!({"recipients": {"type": "broadcast"}, "payload": {"title": "test notification", "link": link}})
}

db_test!(case_01_02_unsafe_links_are_refused, |app| {
    for link in [
        "javascript:alert(document.domain)",
        "ftp://example.com",
        "data:text/html,<b>x</b>",
    ] {
        let r = app.send(broadcast_with_link(link)).await;
        r.assert_error(400, "InputError");
        assert!(
            r.message().starts_with("Invalid link provided"),
            "{link}: {}",
            r.message()
        );
    }
    assert_eq!(app.list(USER, "").await["totalCount"], 0, "nothing stored");
});

db_test!(case_03_05_http_and_relative_links_pass_unchanged, |app| {
    assert_eq!(
        app.send(broadcast_with_link("http://localhost/test"))
            .await
            .status,
        200
    );
    let r = app.send(broadcast_with_link("/catalog")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body[0]["payload"]["link"], "/catalog");
});

db_test!(case_04_broadcast_answer_has_only_the_sent_keys, |app| {
    let r = app.send(broadcast_with_link("https://example.com")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/json"));
    let n = &r.body[0];
    let mut keys: Vec<&str> = n.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created", "id", "origin", "payload", "user"]);
    assert_eq!(n["origin"], SERVICE);
    assert_eq!(n["user"], serde_json::Value::Null);
    assert_eq!(
        n["payload"],
        json!({"title": "test notification", "link": "https://example.com", "severity": "normal"})
    );
    assert!(n["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(r.body.as_array().unwrap().len(), 1);
});

db_test!(case_06_user_notification_keeps_its_metadata, |app| {
    let created = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": [USER]},
                        "payload": {"title": "t", "metadata": {"attr": 1, "nested": {"list": [1, "two"]}}}}))
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["user"], USER);
    assert_eq!(
        created[0]["payload"],
        json!({"title": "t", "severity": "normal", "metadata": {"attr": 1, "nested": {"list": [1, "two"]}}})
    );
    let list = app.list(USER, "").await;
    assert_eq!(list["totalCount"], 1);
    // Stored and returned (upstream drops it, issue #34484).
    assert_eq!(
        list["notifications"][0]["payload"]["metadata"],
        json!({"attr": 1, "nested": {"list": [1, "two"]}})
    );
});

db_test!(case_07_excluding_the_only_user_sends_nothing, |app| {
    let r = app
        .send(
            json!({"recipients": {"type": "entity", "entityRef": [USER], "excludeEntityRef": USER},
                     "payload": {"title": "t"}}),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
    assert_eq!(app.list(USER, "").await["totalCount"], 0);
});

db_test!(case_12_origin_disabled_in_settings_suppresses, |app| {
    let token = app.user_token(USER);
    let saved = app
        .post(
            "/settings",
            &token,
            &json!({"channels": [{"id": "Web", "origins": [{"id": SERVICE, "enabled": false}]}]}),
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    let r = app
        .send(
            json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t"}}),
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!([])));
    assert_eq!(app.list(USER, "").await["totalCount"], 0);
    assert!(
        app.take_signals().is_empty(),
        "no signal for a suppressed notification"
    );
});

db_test!(case_13_14_topic_settings, |app| {
    let token = app.user_token(USER);
    let settings = json!({"channels": [{"id": "Web", "origins": [
        {"id": SERVICE, "enabled": true, "topics": [{"id": "test-topic", "enabled": false}]}]}]});
    assert_eq!(app.post("/settings", &token, &settings).await.status, 200);
    let to_user = |topic: Option<&str>| {
        let mut payload = json!({"title": "t"});
        if let Some(t) = topic {
            payload["topic"] = json!(t);
        }
        json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": payload})
    };
    // 13: the disabled topic is not delivered.
    assert_eq!(app.send(to_user(Some("test-topic"))).await.body, json!([]));
    // 14: without a topic the enabled origin decides.
    assert_eq!(
        app.send(to_user(None)).await.body.as_array().unwrap().len(),
        1
    );
    // another topic of the same origin follows the origin
    assert_eq!(
        app.send(to_user(Some("other")))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(app.list(USER, "").await["totalCount"], 2);
});

db_test!(case_15_16_17_25_invalid_bodies_are_400, |app| {
    let bodies = [
        json!({"payload": {"title": "t"}}),
        json!({"recipients": {"type": "invalid"}, "payload": {"title": "t"}}),
        json!({"recipients": {"type": "broadcast"}, "payload": {}}),
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t", "severity": "urgent"}}),
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": ""}}),
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": 5}}),
        json!({"recipients": {"type": "entity"}, "payload": {"title": "t"}}),
        json!({"recipients": {"type": "entity", "entityRef": [1]}, "payload": {"title": "t"}}),
        json!({"recipients": {"type": "broadcast"}}),
        json!([1, 2]),
        json!("string"),
    ];
    for body in bodies {
        let r = app.send(body.clone()).await;
        r.assert_error(400, "InputError");
        assert_eq!(
            r.body["request"],
            json!({"method": "POST", "url": "/notifications"}),
            "{body}"
        );
    }
    assert_eq!(app.list(USER, "").await["totalCount"], 0);
});

db_test!(case_25_severity_defaults_to_normal, |app| {
    app.broadcast(json!({"title": "t"})).await;
    assert_eq!(
        app.list(USER, "").await["notifications"][0]["payload"]["severity"],
        "normal"
    );
});

db_test!(
    case_18_opt_in_web_channel_suppresses_without_user_settings,
    config = "notifications:\n  defaultSettings:\n    channels:\n      - id: Web\n        enabled: false\n",
    |app| {
        let r = app
            .send(json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t", "topic": "x"}}))
            .await;
        assert_eq!((r.status, r.body.clone()), (200, json!([])));
        assert_eq!(app.list(USER, "").await["totalCount"], 0);
        // Broadcasts are never subject to Web settings.
        app.broadcast(json!({"title": "b"})).await;
        assert_eq!(app.list(USER, "").await["totalCount"], 1);
    }
);

db_test!(
    case_19_opt_in_channel_delivers_a_topic_the_user_enabled,
    config = "notifications:\n  defaultSettings:\n    channels:\n      - id: Web\n        enabled: false\n",
    |app| {
        let token = app.user_token(USER);
        let settings = json!({"channels": [{"id": "Web", "origins": [
            {"id": SERVICE, "enabled": true, "topics": [{"id": "important-topic", "enabled": true}]}]}]});
        assert_eq!(app.post("/settings", &token, &settings).await.status, 200);
        let created = app
            .send_ok(json!({"recipients": {"type": "entity", "entityRef": USER},
                            "payload": {"title": "t", "topic": "important-topic"}}))
            .await;
        assert_eq!(created.len(), 1);
        assert_eq!(created[0]["payload"]["topic"], "important-topic");
        assert_eq!(app.list(USER, "").await["totalCount"], 1);
    }
);

db_test!(
    case_24_users_cannot_send_and_anonymous_callers_are_401,
    |app| {
        let body = json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t"}});
        let r = app
            .post("/notifications", &app.user_token(USER), &body)
            .await;
        r.assert_error(403, "NotAllowedError");
        assert_eq!(
            r.message(),
            "This endpoint does not allow 'user' credentials"
        );
        let r = app
            .request(reqwest::Method::POST, "/notifications", None, Some(&body))
            .await;
        r.assert_error(401, "AuthenticationError");
        assert_eq!(app.list(USER, "").await["totalCount"], 0);
    }
);

db_test!(case_30_root_alias_creates_like_the_main_route, |app| {
    let body = json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "via alias"}});
    // The node client posts to the bare mount path; a trailing slash works too.
    for path in ["", "/"] {
        let r = app.post(path, crate::support::SERVICE_TOKEN, &body).await;
        assert_eq!(r.status, 200, "{path:?}: {}", r.text);
        assert_eq!(r.body[0]["user"], USER);
    }
    assert_eq!(app.list(USER, "").await["totalCount"], 2);
});

db_test!(case_31_refs_without_kind_are_400, |app| {
    let r = app.send(json!({"recipients": {"type": "entity", "entityRef": "mock"}, "payload": {"title": "t"}})).await;
    r.assert_error(400, "InputError");
    assert!(
        r.message().starts_with("Failed to send user notifications"),
        "{}",
        r.message()
    );
});

db_test!(case_32_signals_after_a_send, |app| {
    let id = app.send_to(USER, json!({"title": "t"})).await;
    assert_eq!(
        app.take_signals(),
        vec![SignalMessage {
            recipients: SignalRecipients::User {
                entity_ref: vec![USER.into()]
            },
            channel: NOTIFICATIONS_CHANNEL.into(),
            message: NotificationSignal::NewNotification {
                notification_id: id
            },
        }]
    );
    let id = app.broadcast(json!({"title": "b"})).await;
    assert_eq!(
        app.take_signals(),
        vec![SignalMessage {
            recipients: SignalRecipients::Broadcast,
            channel: NOTIFICATIONS_CHANNEL.into(),
            message: NotificationSignal::NewNotification {
                notification_id: id
            },
        }]
    );
});

db_test!(
    case_33_duplicate_and_differently_spelled_refs_give_one_notification,
    |app| {
        let created = app
        .send_ok(json!({"recipients": {"type": "entity",
            "entityRef": [USER, USER, "user:mock", "User:Default/Mock"]}, "payload": {"title": "t"}}))
        .await;
        assert_eq!(created.len(), 1);
        assert_eq!(app.list(USER, "").await["totalCount"], 1);
    }
);

db_test!(many_recipients_are_stored_in_one_request, |app| {
    let users: Vec<String> = (0..1200).map(|i| format!("user:default/u{i:04}")).collect();
    let created = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": users}, "payload": {"title": "all hands"}}))
        .await;
    assert_eq!(created.len(), 1200);
    assert_eq!(
        created[0]["user"], "user:default/u0000",
        "answer follows resolver order"
    );
    assert_eq!(created[1199]["user"], "user:default/u1199");
    assert_eq!(app.list("user:default/u0777", "").await["totalCount"], 1);
    assert_eq!(app.take_signals().len(), 1200, "one signal per recipient");
});

db_test!(
    over_long_and_nul_values_are_400_not_database_errors,
    |app| {
        let bad_payloads = [
            json!({"title": "x".repeat(256)}),
            json!({"title": "t", "topic": "x".repeat(256)}),
            json!({"title": "t", "scope": "x".repeat(256)}),
            json!({"title": "t\u{0}"}),
            json!({"title": "t", "description": "a\u{0}b"}),
            json!({"title": "t", "metadata": {"k": "v\u{0}"}}),
        ];
        for payload in bad_payloads {
            let r = app.send(json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": payload})).await;
            r.assert_error(400, "InputError");
            let r = app
                .send(json!({"recipients": {"type": "broadcast"}, "payload": payload}))
                .await;
            r.assert_error(400, "InputError");
        }
        // 255 characters (not bytes) is fine.
        app.send_to(USER, json!({"title": "é".repeat(255)})).await;
        let r = app.send(json!({"recipients": {"type": "entity", "entityRef": format!("user:default/{}", "x".repeat(300))},
                            "payload": {"title": "t"}})).await;
        r.assert_error(400, "InputError");
        // Refs of any kind (not only users') are bounded so, and exclusions carry no NUL: they
        // travel to the processors as JSON.
        for recipients in [
            json!({"type": "entity", "entityRef": format!("group:default/{}", "x".repeat(300))}),
            json!({"type": "entity", "entityRef": [USER, "group:default/a\u{0}"]}),
            json!({"type": "entity", "entityRef": USER, "excludeEntityRef": ["a\u{0}"]}),
        ] {
            let r = app
                .send(json!({"recipients": recipients, "payload": {"title": "t"}}))
                .await;
            r.assert_error(400, "InputError");
        }
        assert_eq!(app.list(USER, "").await["totalCount"], 1);
    }
);

// PostgreSQL gives a jsonb number back in full decimal form (309 digits for this one), which
// serde_json's default parser overflowed: the broadcast then broke every inbox with a 500
// (found by the contract test run on PostgreSQL).
db_test!(metadata_numbers_near_the_largest_float_read_back, |app| {
    let payload = json!({"title": "t", "metadata": {"n": 1.797_693_134_862_315_5e308}});
    app.broadcast(payload).await;
    let list = app.list(USER, "").await;
    assert_eq!(
        list["notifications"][0]["payload"]["metadata"],
        json!({"n": 1.797_693_134_862_315_5e308})
    );
});

db_test!(malformed_wrong_type_and_huge_bodies_are_400, |app| {
    let send_raw = |body: Vec<u8>, content_type: &'static str| {
        let url = app.url("/notifications");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(crate::support::SERVICE_TOKEN)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    for (body, ct) in [
        (b"{not json".to_vec(), "application/json"),
        (b"".to_vec(), "application/json"),
        (br#"{"recipients":{"type":"broadcast"},"payload":{"title":"t"}}"#.to_vec(), "text/plain"),
        (format!(r#"{{"recipients":{{"type":"broadcast"}},"payload":{{"title":"t","description":"{}"}}}}"#, "x".repeat(200_000)).into_bytes(), "application/json"),
    ] {
        let res = send_raw(body, ct).await;
        assert_eq!(res.status(), 400);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["name"], "InputError", "{body}");
    }
    assert_eq!(app.list(USER, "").await["totalCount"], 0);
});

/// Resolves every ref to a fixed list (upstream's custom resolver fixture).
struct FixedResolver(Vec<&'static str>);

#[async_trait::async_trait]
impl RecipientResolver for FixedResolver {
    async fn resolve(
        &self,
        _: &[String],
        _: &[String],
    ) -> Result<ResolvedRecipients, ResolveError> {
        Ok(ResolvedRecipients {
            user_entity_refs: self.0.iter().map(|s| s.to_string()).collect(),
        })
    }
}

async fn custom_resolver_cases(kind: DbKind) {
    // 20: a custom resolver decides who receives an entity's notification.
    let Some(app) = TestApp::start_with_resolver(kind, FixedResolver(vec![USER])).await else {
        return;
    };
    let created = app
        .send_ok(json!({"recipients": {"type": "entity", "entityRef": "system:default/mock"}, "payload": {"title": "t"}}))
        .await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["user"], USER);
    // 21: its non-user results are dropped.
    let app = TestApp::start_with_resolver(kind, FixedResolver(vec!["system:default/mock"]))
        .await
        .unwrap();
    let r = app
        .send(
            json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": "t"}}),
        )
        .await;
    assert_eq!((r.status, r.body), (200, json!([])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_20_21_custom_resolver_sqlite() {
    custom_resolver_cases(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_20_21_custom_resolver_postgres() {
    custom_resolver_cases(DbKind::Postgres).await;
}
