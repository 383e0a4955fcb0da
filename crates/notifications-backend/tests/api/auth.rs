//! Credentials: who may call what.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::db_test;
use crate::support::{KEY, USER};

db_test!(every_plugin_route_needs_a_bearer_token, |app| {
    for (method, path) in [
        (reqwest::Method::GET, "/notifications"),
        (reqwest::Method::GET, "/status"),
        (reqwest::Method::GET, "/settings"),
        (reqwest::Method::POST, "/settings"),
        (reqwest::Method::GET, "/topics"),
        (reqwest::Method::GET, "/no/such/route"),
        (reqwest::Method::DELETE, "/notifications/x"),
        (reqwest::Method::GET, "/health"),
    ] {
        let r = app.request(method.clone(), path, None, None).await;
        r.assert_error(401, "AuthenticationError");
        assert_eq!(r.message(), "Missing credentials");
        assert_eq!(
            r.body["request"],
            json!({"method": method.as_str(), "url": path})
        );
    }
});

db_test!(invalid_tokens_are_401, |app| {
    let now = jsonwebtoken::get_current_timestamp();
    let sign = |key: &[u8], claims: serde_json::Value, typ: &str| {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
    };
    let key = KEY;
    let cases = [
        "garbage".to_owned(),
        sign(
            b"another-key",
            json!({"sub": USER, "exp": now + 60}),
            "vnd.backstage.user",
        ),
        sign(
            key,
            json!({"sub": USER, "exp": now - 3600}),
            "vnd.backstage.user",
        ),
        sign(key, json!({"sub": USER}), "vnd.backstage.user"),
        sign(
            key,
            json!({"sub": "group:default/team", "exp": now + 60}),
            "vnd.backstage.user",
        ),
    ];
    for token in cases {
        let r = app.get("/status", &token).await;
        r.assert_error(401, "AuthenticationError");
    }
    // Basic auth and cookies are not credentials.
    let r = reqwest::Client::new()
        .get(app.url("/status"))
        .basic_auth("u", Some("p"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The scheme is case-insensitive.
    let r = reqwest::Client::new()
        .get(app.url("/status"))
        .header(
            "authorization",
            format!("bearer   {}", app.user_token(USER)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
});

db_test!(
    signed_service_tokens_send_with_their_subject_as_origin,
    |app| {
        let token = app.service_token("plugin:scaffolder");
        let r = app
            .post(
                "/notifications",
                &token,
                &json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t"}}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body[0]["origin"], "plugin:scaffolder");
        // and a Backstage legacy server token gets upstream's origin
        let legacy = app.service_token("backstage-server");
        let r = app
            .post(
                "/notifications",
                &legacy,
                &json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t"}}),
            )
            .await;
        assert_eq!(r.body[0]["origin"], "external:backstage-plugin");
    }
);

db_test!(users_never_see_each_others_data, |app| {
    let alice = "user:default/alice";
    let bob = "user:default/bob";
    let secret = app
        .send_to(
            alice,
            json!({"title": "for alice only", "topic": "private"}),
        )
        .await;
    let bob_token = app.user_token(bob);
    assert_eq!(app.list(bob, "").await["totalCount"], 0);
    assert_eq!(
        app.get("/topics", &bob_token).await.body,
        json!({"topics": []})
    );
    assert_eq!(
        app.get("/status", &bob_token).await.body,
        json!({"unread": 0, "read": 0})
    );
    app.get(&format!("/notifications/{secret}"), &bob_token)
        .await
        .assert_error(404, "NotFoundError");
    let r = app
        .post(
            "/notifications/update",
            &bob_token,
            &json!({"ids": [secret], "read": true, "saved": true}),
        )
        .await;
    assert_eq!(r.body, json!([]));
    assert_eq!(
        app.get("/settings", &bob_token).await.body,
        json!({"channels": [{"id": "Web", "origins": []}]})
    );
    let alice_view = app.list(alice, "").await;
    assert_eq!(
        alice_view["notifications"][0]["read"],
        serde_json::Value::Null
    );
    // A token's subject is matched case-insensitively, like catalog refs.
    assert_eq!(app.list("User:Default/ALICE", "").await["totalCount"], 1);
});

// Senders are given `backend.auth.keys` to sign their service tokens. A user token signed with
// that key must not pass, or any sender could read and change any user's inbox.
db_test!(a_service_key_cannot_sign_user_tokens, |app| {
    let id = app.send_to(USER, json!({"title": "private"})).await;
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("vnd.backstage.user".into());
    let forged = jsonwebtoken::encode(
        &header,
        &json!({"sub": USER, "ent": [USER], "exp": now + 60}),
        &EncodingKey::from_secret(KEY),
    )
    .unwrap();
    for (method, path, body) in [
        (reqwest::Method::GET, "/notifications".to_owned(), None),
        (reqwest::Method::GET, format!("/notifications/{id}"), None),
        (reqwest::Method::GET, "/status".to_owned(), None),
        (reqwest::Method::GET, "/settings".to_owned(), None),
        (
            reqwest::Method::POST,
            "/notifications/update".to_owned(),
            Some(json!({"ids": [id], "read": true})),
        ),
    ] {
        let r = app
            .request(method, &path, Some(&forged), body.as_ref())
            .await;
        r.assert_error(401, "AuthenticationError");
        assert!(r.message().contains("service key"), "{path}: {}", r.text);
    }
    // The notification is untouched, and the user's own token still reads it.
    let r = app
        .get(&format!("/notifications/{id}"), &app.user_token(USER))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["read"], serde_json::Value::Null);
});
