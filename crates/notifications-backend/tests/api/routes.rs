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
    let r = app
        .get("/openapi.json", crate::support::SERVICE_TOKEN)
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
    assert_eq!(
        app.get("/openapi.json", &app.user_token(USER)).await.status,
        200
    );
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
