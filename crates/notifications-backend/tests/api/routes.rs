//! Route table details: aliases, unknown routes, OpenAPI, health.

use notifications_common::OrderField;
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
    let doc = &r.body;
    let paths = doc["paths"].as_object().expect("paths");
    let mut listed: Vec<String> = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            listed.push(format!("{} {path}", method.to_uppercase()));
            // Every answer is described; every route that takes a token says it may be
            // refused.
            for (status, response) in operation["responses"].as_object().unwrap() {
                assert!(
                    response["$ref"].is_string() || response["description"].is_string(),
                    "{method} {path} {status}"
                );
            }
            if operation["security"] != json!([{}]) {
                for status in ["400", "401", "403", "503"] {
                    assert!(
                        operation["responses"][status].is_object(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
    }
    listed.sort();
    let m = |s: &str| format!("/api/notifications{s}");
    let mut expected = vec![
        format!("GET {}", m("")),
        format!("POST {}", m("")),
        format!("GET {}", m("/")),
        format!("POST {}", m("/")),
        format!("GET {}", m("/notifications")),
        format!("POST {}", m("/notifications")),
        // Janus's own paths; its list and create share upstream's.
        format!("GET {}", m("/notifications/count")),
        format!("PUT {}", m("/notifications/read")),
        format!("POST {}", m("/notifications/update")),
        // Beyond upstream.
        format!("POST {}", m("/notifications/read-all")),
        format!("GET {}", m("/notifications/{id}")),
        format!("GET {}", m("/openapi.json")),
        format!("GET {}", m("/preferences")),
        format!("PUT {}", m("/preferences")),
        format!("GET {}", m("/settings")),
        format!("POST {}", m("/settings")),
        format!("GET {}", m("/status")),
        format!("GET {}", m("/stream")),
        format!("GET {}", m("/topics")),
        format!("POST {}", m("/update")),
        format!("GET {}", m("/{id}")),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // The deprecated aliases are copies of what they stand for.
    assert_eq!(paths[&m("/{id}")]["get"]["deprecated"], true);
    assert_eq!(
        paths[&m("/{id}")]["get"]["responses"],
        paths[&m("/notifications/{id}")]["get"]["responses"]
    );
    assert_eq!(
        paths[&m("/notifications/count")]["get"]["tags"],
        json!(["janus"])
    );
    for name in ["ErrorBody", "NotificationSendOptions", "JanusErrorBody"] {
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
    assert_eq!(
        doc["components"]["schemas"]["ChannelSetting"]["properties"]["id"]["enum"],
        json!(["Web"])
    );
    let order_field = &paths[&m("/notifications")]["get"]["parameters"][2];
    assert_eq!(
        (
            &order_field["name"],
            order_field["schema"]["maxItems"].as_u64()
        ),
        (&json!("orderField"), Some(OrderField::ALL.len() as u64))
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
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

const JANUS: &str = "notifications:\n  externalCallerSecret: a-caller-secret-of-at-least-32-bytes\n  \
                     legacyJanus:\n    extraBasePath: /api/notifications-legacy\n";

db_test!(
    openapi_document_follows_the_janus_configuration,
    config = JANUS,
    |app| {
        let doc = app
            .request(reqwest::Method::GET, "/openapi.json", None, None)
            .await
            .body;
        let legacy = &doc["paths"]["/api/notifications-legacy/notifications"];
        assert_eq!(legacy["post"]["operationId"], "janusCreateOnExtraBasePath");
        assert!(legacy["post"]["responses"]["413"].is_object());
        assert_eq!(
            legacy["get"]["security"],
            json!([{"bearer": []}, {"janusSecret": []}])
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["janusSecret"],
            json!({"type": "apiKey", "in": "header", "name": "notifications-secret"})
        );
    }
);

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
