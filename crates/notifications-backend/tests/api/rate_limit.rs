//! `backend.rateLimit`: per caller budgets, 429 with `Retry-After` and the usual error body,
//! health exempt, loopback allowed by default, and nothing limited without the key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DbKind, SERVICE_TOKEN, TestApp, user_token};

async fn app(rate_limit: &str) -> TestApp {
    TestApp::start(
        DbKind::Sqlite,
        &format!("backend:\n  rateLimit: {rate_limit}\n"),
    )
    .await
    .unwrap()
}

/// A GET with `token`, answered with its status, `Retry-After` and body.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Option<u64>, Value) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", app.root));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        res.status(),
        retry_after,
        res.json().await.unwrap_or(Value::Null),
    )
}

const LIST: &str = "/api/notifications/notifications";

#[tokio::test]
async fn each_caller_has_its_own_budget_and_is_answered_429_beyond_it() {
    let app = app("{incomingRequestLimit: 2, window: 1h, ipAllowList: []}").await;
    let alice = user_token("user:default/alice");
    let bob = user_token("user:default/bob");
    for _ in 0..2 {
        assert_eq!(get(&app, LIST, Some(&alice)).await.0, StatusCode::OK);
    }
    let (status, retry_after, body) = get(&app, &format!("{LIST}?limit=1"), Some(&alice)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after = retry_after.expect("Retry-After");
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(
        body,
        json!({
            "error": {
                "name": "TooManyRequestsError",
                "message": "Too many requests, please try again later"
            },
            "request": {"method": "GET", "url": "/notifications?limit=1"},
            "response": {"statusCode": 429}
        })
    );

    // Another user, a service and an anonymous client (by address) count apart.
    assert_eq!(get(&app, LIST, Some(&bob)).await.0, StatusCode::OK);
    let send = reqwest::Client::new()
        .post(format!("{}/api/notifications/notifications", app.root))
        .bearer_auth(SERVICE_TOKEN)
        .json(&json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(send.status(), StatusCode::OK);
    assert_eq!(get(&app, LIST, None).await.0, StatusCode::UNAUTHORIZED);

    // Health and the limited user's later requests.
    for _ in 0..5 {
        let (status, ..) = get(&app, "/.backstage/health/v1/liveness", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        get(&app, LIST, Some(&alice)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn skipped_answers_do_not_count() {
    let app = app("{incomingRequestLimit: 1, ipAllowList: [], skipSuccessfulRequests: true}").await;
    let alice = user_token("user:default/alice");
    for _ in 0..3 {
        assert_eq!(get(&app, LIST, Some(&alice)).await.0, StatusCode::OK);
    }
    let unknown = "/api/notifications/notifications/00000000-0000-4000-8000-000000000000";
    assert_eq!(
        get(&app, unknown, Some(&alice)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, LIST, Some(&alice)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn nothing_is_limited_by_default_nor_for_loopback_clients() {
    let alice = user_token("user:default/alice");
    // Without the key, and with it but Backstage's default allow list (loopback): the tests'
    // client is on 127.0.0.1.
    for app in [
        TestApp::start(DbKind::Sqlite, "").await.unwrap(),
        app("true").await,
    ] {
        for _ in 0..8 {
            assert_eq!(get(&app, LIST, Some(&alice)).await.0, StatusCode::OK);
        }
    }
}

/// A plugin rule counts what reaches the plugin however its path is spelled: routing decodes
/// `%6E`, so the limiter must too.
#[tokio::test]
async fn a_percent_encoded_path_counts_under_its_plugin() {
    let app =
        app("{global: false, plugin: {notifications: {incomingRequestLimit: 1, ipAllowList: []}}}")
            .await;
    let alice = user_token("user:default/alice");
    assert_eq!(get(&app, LIST, Some(&alice)).await.0, StatusCode::OK);
    let encoded = "/api/%6Eotifications/notifications";
    assert_eq!(
        get(&app, encoded, Some(&alice)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}
