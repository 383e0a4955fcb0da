//! The auth matrix (issue 14, item 4): every route, tried by every kind of caller, against one
//! table of expected statuses ([`MATRIX`]). The routes of the plugin are those of the served
//! OpenAPI document, which is generated from the handlers: a route it lists without a row here
//! fails the test, so a new route cannot skip the matrix. The routes outside the plugin (health,
//! signals, metrics) have rows of their own. Then no caller reads or changes another's data
//! through any of them.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::db_test;
use crate::support::{Response, SERVICE_TOKEN, TestApp, USER_KEY};

/// Who calls, in the order of the columns of [`MATRIX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    /// No `Authorization` header (no subprotocol on the WebSocket).
    Anonymous,
    /// A bearer token that is no JWT.
    Malformed,
    /// The user's token, signed with the right key, expired an hour ago.
    Expired,
    /// A user token signed with a key the service does not know.
    WrongKey,
    /// Another user's valid token.
    OtherUser,
    /// The guest user's valid token (`user:default/guest`, whom janus and signals fall back to).
    Guest,
    /// A sender's static token.
    Service,
    /// The owner of the data the requests name.
    User,
}
use Caller::*;

const CALLERS: [Caller; 8] = [
    Anonymous, Malformed, Expired, WrongKey, OtherUser, Guest, Service, User,
];

/// The owner of the data, another user, and the guest: users of janus's fixture catalog.
const OWNER_REF: &str = "user:default/alice";
const OTHER: &str = "user:default/bob";
const GUEST: &str = "user:default/guest";

/// What a request carries besides its route.
#[derive(Clone, Copy, Debug)]
enum Body {
    None,
    /// A create for [`OWNER_REF`].
    Create,
    /// Marks the user's notification read and saved.
    Update,
    /// Settings with one origin turned off.
    Settings,
    /// A janus create for `default/alice`.
    JanusCreate,
    /// Hourly digests.
    Preferences,
}

/// A route (its path as the OpenAPI document writes it; `{id}` is the user's notification, and
/// `{message}` stands for the user's janus message in the query), what it is sent, and the status
/// each caller gets, in [`CALLERS`] order.
struct Row {
    method: &'static str,
    path: &'static str,
    query: &'static str,
    body: Body,
    expect: [u16; 8],
}

const fn row(method: &'static str, path: &'static str, expect: [u16; 8]) -> Row {
    Row {
        method,
        path,
        query: "",
        body: Body::None,
        expect,
    }
}

const fn with(mut r: Row, query: &'static str, body: Body) -> Row {
    r.query = query;
    r.body = body;
    r
}

const PUBLIC: [u16; 8] = [200; 8];
/// Routes for users (services are refused, as upstream).
const USERS: [u16; 8] = [401, 401, 401, 401, 200, 200, 403, 200];
/// Routes for services (users are refused, as upstream).
const SERVICES: [u16; 8] = [401, 401, 401, 401, 403, 403, 200, 403];
/// One user's resource: anyone else is told it does not exist.
const OWNER: [u16; 8] = [401, 401, 401, 401, 404, 404, 403, 200];
/// Janus's reads and marks: users only; no secret is sent and service tokens are off (the
/// defaults), so both are 401, as janus answered.
const JANUS_USERS: [u16; 8] = [401, 401, 401, 401, 200, 200, 401, 200];
/// Janus's mark of the user's message: a message the caller cannot see is one that does not
/// exist, which janus answers with 500 "message ID … does not exist" (the legacy contract, 1.4
/// and 6.5).
const JANUS_MARK: [u16; 8] = [401, 401, 401, 401, 500, 500, 401, 200];
/// Janus's create: only `userCreators` may (here the user), nobody else.
const JANUS_CREATE: [u16; 8] = [401, 401, 401, 401, 403, 403, 401, 200];

/// The whole matrix. Plugin paths are those of the OpenAPI document.
const MATRIX: &[Row] = &[
    // Upstream's routes, and their deprecated aliases.
    row("GET", "/api/notifications", USERS),
    with(
        row("POST", "/api/notifications", SERVICES),
        "",
        Body::Create,
    ),
    row("GET", "/api/notifications/", USERS),
    with(
        row("POST", "/api/notifications/", SERVICES),
        "",
        Body::Create,
    ),
    row("GET", "/api/notifications/notifications", USERS),
    with(
        row("POST", "/api/notifications/notifications", SERVICES),
        "",
        Body::Create,
    ),
    with(
        row("POST", "/api/notifications/notifications/update", USERS),
        "",
        Body::Update,
    ),
    with(
        row("POST", "/api/notifications/update", USERS),
        "",
        Body::Update,
    ),
    row("POST", "/api/notifications/notifications/read-all", USERS),
    row("GET", "/api/notifications/notifications/{id}", OWNER),
    row("GET", "/api/notifications/{id}", OWNER),
    row("GET", "/api/notifications/status", USERS),
    row("GET", "/api/notifications/topics", USERS),
    row("GET", "/api/notifications/stream", USERS),
    row("GET", "/api/notifications/settings", USERS),
    with(
        row("POST", "/api/notifications/settings", USERS),
        "",
        Body::Settings,
    ),
    row("GET", "/api/notifications/preferences", USERS),
    with(
        row("PUT", "/api/notifications/preferences", USERS),
        "",
        Body::Preferences,
    ),
    row("GET", "/api/notifications/openapi.json", PUBLIC),
    // Janus's, beside upstream's and on its extra base path.
    row("GET", "/api/notifications/notifications/count", JANUS_USERS),
    with(
        row("PUT", "/api/notifications/notifications/read", JANUS_MARK),
        "messageId={message}&read=true",
        Body::None,
    ),
    row(
        "GET",
        "/api/notifications-legacy/notifications",
        JANUS_USERS,
    ),
    with(
        row(
            "POST",
            "/api/notifications-legacy/notifications",
            JANUS_CREATE,
        ),
        "",
        Body::JanusCreate,
    ),
    row(
        "GET",
        "/api/notifications-legacy/notifications/count",
        JANUS_USERS,
    ),
    with(
        row(
            "PUT",
            "/api/notifications-legacy/notifications/read",
            JANUS_MARK,
        ),
        "messageId={message}&read=true",
        Body::None,
    ),
    // Outside the plugin: the WebSocket takes its token as a subprotocol (101: upgraded; none is
    // the guest), health and metrics take none.
    row(
        "GET",
        "/api/signals",
        [101, 401, 401, 401, 101, 101, 101, 101],
    ),
    row("GET", "/api/signals/health", PUBLIC),
    row("GET", "/.backstage/health/v1/liveness", PUBLIC),
    row("GET", "/.backstage/health/v1/readiness", PUBLIC),
    row("GET", "/metrics", PUBLIC),
    // The web inbox's pages take no bearer token: the page says who is signed in (by cookie or
    // proxy) or how to sign in; a link's page without a link is a 400; signing in and out
    // without an Origin of this service is refused before anything else.
    row("GET", "/", PUBLIC),
    row("GET", "/inbox", PUBLIC),
    row("GET", "/settings", PUBLIC),
    row("GET", "/assets/inbox.js", PUBLIC),
    row("GET", "/assets/inbox.css", PUBLIC),
    row("GET", "/assets/icon.svg", PUBLIC),
    // The inbox's Markdown bodies: for the signed-in browser only (cookie or proxy), never for
    // a bearer token, whoever's.
    row("GET", "/inbox/body/{id}", [401; 8]),
    row("GET", "/signin", [400; 8]),
    row("POST", "/signin", [403; 8]),
    row("POST", "/signout", [403; 8]),
    // An unknown route under the plugin asks for credentials before saying it is unknown.
    row(
        "GET",
        "/api/notifications/no/such/route",
        [401, 401, 401, 401, 404, 404, 404, 404],
    ),
];

/// The rows outside the OpenAPI document.
const UNDOCUMENTED: [&str; 15] = [
    "/api/signals",
    "/api/signals/health",
    "/.backstage/health/v1/liveness",
    "/.backstage/health/v1/readiness",
    "/metrics",
    "/",
    "/inbox",
    "/settings",
    "/assets/inbox.js",
    "/assets/inbox.css",
    "/assets/icon.svg",
    "/inbox/body/{id}",
    "/signin",
    "/signout",
    "/api/notifications/no/such/route",
];

const CONFIG: &str = concat!(
    "notifications:\n  metrics: {enabled: true}\n  catalog: {files: ['",
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/catalog/janus-conformance.yaml']}\n  legacyJanus:\n    \
     extraBasePath: /api/notifications-legacy\n    userCreators: [default/alice]\n",
);

/// A user token for `user`, signed with `key`, expiring at `exp`.
fn token(key: &[u8], user: &str, exp: u64) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("vnd.backstage.user".into());
    jsonwebtoken::encode(
        &header,
        &json!({"sub": user, "ent": [user], "exp": exp}),
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn credential(app: &TestApp, caller: Caller) -> Option<String> {
    let now = jsonwebtoken::get_current_timestamp();
    match caller {
        Anonymous => None,
        Malformed => Some("not-a-token".into()),
        Expired => Some(token(USER_KEY, OWNER_REF, now - 3600)),
        WrongKey => Some(token(
            b"a-key-the-service-never-saw-0123",
            OWNER_REF,
            now + 600,
        )),
        OtherUser => Some(app.user_token(OTHER)),
        Guest => Some(app.user_token(GUEST)),
        Service => Some(SERVICE_TOKEN.into()),
        User => Some(app.user_token(OWNER_REF)),
    }
}

/// The ids the rows' requests name: the user's notification and janus message.
struct Fixture {
    notification: String,
    message: String,
}

fn body(kind: Body, f: &Fixture) -> Option<Value> {
    match kind {
        Body::None => None,
        Body::Create => Some(json!({
            "recipients": {"type": "entity", "entityRef": OWNER_REF},
            "payload": {"title": "from the matrix"},
        })),
        Body::Update => Some(json!({"ids": [f.notification], "read": true, "saved": true})),
        Body::Preferences => Some(json!({"digest": {"mode": "hourly"}})),
        Body::Settings => Some(json!({"channels": [{"id": "Web", "origins": [
            {"id": "external:test-service2", "enabled": false}
        ]}]})),
        Body::JanusCreate => Some(json!({
            "origin": "the matrix", "title": "another janus message",
            "targetUsers": ["default/alice"],
        })),
    }
}

/// Sends `row`'s request as `caller` and returns the status (without waiting for a streamed
/// body's end).
async fn status_of(app: &TestApp, row: &Row, caller: Caller, f: &Fixture) -> u16 {
    let path = row.path.replace("{id}", &f.notification);
    let query = row.query.replace("{message}", &f.message);
    let url = if query.is_empty() {
        format!("{}{path}", app.root)
    } else {
        format!("{}{path}?{query}", app.root)
    };
    let method = Method::from_bytes(row.method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new().request(method, url);
    let credential = credential(app, caller);
    if row.path == "/api/signals" {
        req = req
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        if let Some(token) = &credential {
            req = req.header("sec-websocket-protocol", token);
        }
    } else if let Some(token) = &credential {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body(row.body, f) {
        req = req.json(&body);
    }
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), req.send())
        .await
        .unwrap_or_else(|_| panic!("{} {path} as {caller:?}: no answer", row.method))
        .unwrap();
    response.status().as_u16()
}

/// The user's notification: (read, saved) set or not.
async fn notification_marks(app: &TestApp, f: &Fixture) -> (bool, bool) {
    let r = app
        .get(
            &format!("/notifications/{}", f.notification),
            &app.user_token(OWNER_REF),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (!r.body["read"].is_null(), !r.body["saved"].is_null())
}

/// The user's janus request to `/api/notifications-legacy/notifications` with `query`; a POST
/// creates the user's message.
async fn legacy(app: &TestApp, method: Method, query: &str) -> Response {
    let mut req = reqwest::Client::new()
        .request(
            method.clone(),
            format!("{}/api/notifications-legacy/notifications{query}", app.root),
        )
        .bearer_auth(app.user_token(OWNER_REF));
    if method == Method::POST {
        req = req.json(&json!({
            "origin": "the matrix", "title": "janus from the matrix",
            "targetUsers": ["default/alice"],
        }));
    }
    Response::read(req.send().await.unwrap()).await
}

/// Whether the user has read their janus message.
async fn message_read(app: &TestApp, f: &Fixture) -> bool {
    let r = legacy(app, Method::GET, "").await;
    let messages = r.body.as_array().unwrap_or_else(|| panic!("{}", r.text));
    let message = messages.iter().find(|m| m["id"] == f.message.as_str());
    message.expect("the user's message")["readByUser"] == true
}

/// Puts the user's data back as it started: unread, unsaved.
async fn reset(app: &TestApp, f: &Fixture) {
    let user = app.user_token(OWNER_REF);
    let r = app
        .post(
            "/notifications/update",
            &user,
            &json!({"ids": [f.notification], "read": false, "saved": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = legacy(
        app,
        Method::PUT,
        &format!("/read?messageId={}&read=false", f.message),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

db_test!(every_route_by_every_caller, config = CONFIG, |app| {
    let notification = app
        .send_to(OWNER_REF, json!({"title": "the user's own"}))
        .await;
    let created = legacy(&app, Method::POST, "").await;
    assert_eq!(created.status, 200, "{}", created.text);
    let fixture = Fixture {
        notification,
        message: created.body["messageId"].as_str().unwrap().to_owned(),
    };

    // Every operation of the document has a row, and every row of the plugin is in it.
    let doc = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    let rows: BTreeSet<String> = MATRIX
        .iter()
        .filter(|r| !UNDOCUMENTED.contains(&r.path))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        rows, documented,
        "the matrix's plugin routes against the OpenAPI document's"
    );

    let mut wrong = Vec::new();
    for row in MATRIX {
        // A mark sent by anyone but the user changes nothing of the user's.
        let marks = matches!(row.body, Body::Update) || row.query.contains("{message}");
        if marks {
            reset(&app, &fixture).await;
        }
        for (caller, expected) in CALLERS.iter().zip(row.expect) {
            let got = status_of(&app, row, *caller, &fixture).await;
            if got != expected {
                wrong.push(format!(
                    "{} {} as {caller:?}: {got}, expected {expected}",
                    row.method, row.path
                ));
            }
            if marks && *caller != User {
                let untouched = (
                    notification_marks(&app, &fixture).await,
                    message_read(&app, &fixture).await,
                );
                if untouched != ((false, false), false) {
                    wrong.push(format!(
                        "{} {} as {caller:?} changed the user's data: {untouched:?}",
                        row.method, row.path
                    ));
                }
            }
        }
        if marks {
            let after = (
                notification_marks(&app, &fixture).await,
                message_read(&app, &fixture).await,
            );
            assert_ne!(
                after,
                ((false, false), false),
                "{} {}: the user's own mark did nothing",
                row.method,
                row.path
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
});
