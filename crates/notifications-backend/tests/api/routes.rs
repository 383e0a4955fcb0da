//! Route table details: aliases, unknown routes, OpenAPI, health.

use serde_json::json;

use crate::db_test;
use crate::support::USER;

db_test!(list_aliases_and_unknown_routes, |app| {
    let token = app.user_token(USER);
    app.send_to(USER, json!({"title": "t"})).await;
    for path in ["", "/", "/notifications"] {
        let r = app.get(path, &token).await;
        assert_eq!(
            (r.status, r.body["totalCount"].clone()),
            (200, json!(1)),
            "{path:?}"
        );
    }
    // Unknown paths and methods are 404 (with a JSON body, where upstream's is empty).
    for (method, path) in [
        (reqwest::Method::DELETE, "/notifications/x"),
        (reqwest::Method::PUT, "/settings"),
        (reqwest::Method::POST, "/status"),
        (reqwest::Method::GET, "/no/such/thing"),
        (reqwest::Method::GET, "/health"),
    ] {
        let r = app.request(method, path, Some(&token), None).await;
        r.assert_error(404, "NotFoundError");
    }
});

db_test!(openapi_document_is_served_with_mount_paths, |app| {
    // Public: no credentials needed, as for any published API description.
    let r = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(r.status, 200);
    let paths = r.body["paths"].as_object().expect("paths");
    for p in [
        "/api/notifications/notifications",
        "/api/notifications/notifications/{id}",
        "/api/notifications/notifications/update",
        "/api/notifications/status",
        "/api/notifications/settings",
        "/api/notifications/topics",
    ] {
        assert!(paths.contains_key(p), "missing {p} in {:?}", paths.keys());
    }
    assert!(r.body["components"]["schemas"]["NotificationSendOptions"].is_object());
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
    for token in [
        app.user_token(USER),
        crate::support::SERVICE_TOKEN.to_owned(),
    ] {
        assert_eq!(app.get("/openapi.json", &token).await.status, 200);
    }
    // Only the document: its neighbours still need a token.
    app.request(reqwest::Method::GET, "/openapi.jsonx", None, None)
        .await
        .assert_error(401, "AuthenticationError");
});

db_test!(health_endpoints_need_no_token, |app| {
    let r = app
        .request(
            reqwest::Method::GET,
            "/.backstage/health/v1/liveness",
            None,
            None,
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let r = app
        .request(
            reqwest::Method::GET,
            "/.backstage/health/v1/readiness",
            None,
            None,
        )
        .await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
});

const CORS: &str = "backend:\n  cors:\n    origin: [http://localhost:3000, 'https://*.example.com']\n    credentials: true\n";

db_test!(cors_follows_backend_cors, config = CORS, |app| {
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, app.url("/notifications"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    // A preflight needs no token.
    let r = preflight("http://localhost:3000").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let r = preflight("https://portal.example.com").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let r = preflight("https://evil.test").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // Real answers, errors included, carry the header for allowed origins.
    let token = app.user_token(USER);
    for auth in [Some(token.as_str()), None] {
        let mut req = client
            .get(app.url("/status"))
            .header("origin", "http://localhost:3000");
        if let Some(token) = auth {
            req = req.bearer_auth(token);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "http://localhost:3000",
            "{}",
            r.status()
        );
    }
});

db_test!(no_cors_headers_without_configuration, |app| {
    let r = reqwest::Client::new()
        .get(app.url("/status"))
        .header("origin", "http://localhost:3000")
        .bearer_auth(app.user_token(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
});
