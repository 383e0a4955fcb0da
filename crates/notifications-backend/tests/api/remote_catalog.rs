//! Recipients from a Backstage catalog over HTTP. The catalog is a real HTTP server of the test
//! that answers `POST /api/catalog/entities/by-refs` as Backstage's does, records what it is
//! asked, and can fail or stall on demand. Recipient rules are the embedded catalog's (tested on
//! both databases in `recipients.rs`); these tests run on SQLite.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::support::fake_http::FakeHttp;
use crate::support::{DbKind, TestApp};

const TOKEN: &str = "catalog-token";
/// What the failing catalog answers: its own business, never its callers'.
const CATALOG_FAILURE: &str = "db-7.internal.example:5432 is down (canary-4f1e)";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Answer,
    Fail,
    Stall,
}

#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    authorization: Vec<Option<String>>,
}

struct FakeCatalog {
    root: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Seen>>,
    _server: FakeHttp,
}

fn entity(kind: &str, name: &str, relations: &[(&str, &str)]) -> (String, Value) {
    let relations: Vec<Value> = relations
        .iter()
        .map(|(t, target)| json!({"type": t, "targetRef": target}))
        .collect();
    (
        format!("{}:default/{name}", kind.to_lowercase()),
        json!({"kind": kind, "metadata": {"name": name, "namespace": "default"}, "relations": relations}),
    )
}

impl FakeCatalog {
    fn start() -> Self {
        let entities: Arc<HashMap<String, Value>> = Arc::new(HashMap::from([
            entity(
                "Group",
                "team",
                &[
                    ("hasMember", "user:default/alice"),
                    ("parentOf", "group:default/sub"),
                    ("childOf", "group:default/org"),
                ],
            ),
            entity(
                "Group",
                "sub",
                &[
                    ("hasMember", "user:default/bob"),
                    ("hasMember", "user:default/carol"),
                    ("childOf", "group:default/team"),
                ],
            ),
            entity("Group", "org", &[("hasMember", "user:default/boss")]),
            entity("Component", "api", &[("ownedBy", "group:default/team")]),
        ]));
        let mode = Arc::new(Mutex::new(Mode::Answer));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (m, s) = (mode.clone(), seen.clone());
        let server = FakeHttp::start(move |cfg| {
            let (m, s, e) = (m.clone(), s.clone(), entities.clone());
            cfg.route(
                "/api/catalog/entities/by-refs",
                web::post().to(move |req: HttpRequest, body: web::Json<Value>| {
                    let (m, s, e) = (m.clone(), s.clone(), e.clone());
                    async move {
                        let authorization = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        {
                            let mut seen = s.lock().unwrap();
                            seen.bodies.push(body.0.clone());
                            seen.authorization.push(authorization.clone());
                        }
                        let mode = *m.lock().unwrap();
                        if mode == Mode::Stall {
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                        if mode == Mode::Fail {
                            return HttpResponse::InternalServerError().json(
                                json!({"error": {"name": "Error", "message": CATALOG_FAILURE}}),
                            );
                        }
                        if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
                            return HttpResponse::Unauthorized().json(json!({"error": {"name": "AuthenticationError", "message": "Missing credentials"}}));
                        }
                        let items: Vec<Value> = body.0["entityRefs"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| e.get(r.as_str().unwrap()).cloned().unwrap_or(Value::Null))
                            .collect();
                        HttpResponse::Ok().json(json!({"items": items}))
                    }
                }),
            );
        });
        Self {
            root: server.url.clone(),
            mode,
            seen,
            _server: server,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().bodies.len()
    }
}

async fn start(remote: String) -> TestApp {
    let yaml = format!("notifications: {{catalog: {{remote: {remote}}}}}");
    TestApp::start(DbKind::Sqlite, &yaml)
        .await
        .expect("SQLite is always available")
}

fn send_body(refs: Value, excluded: Value) -> Value {
    json!({
        "recipients": {"type": "entity", "entityRef": refs, "excludeEntityRef": excluded},
        "payload": {"title": "from the catalog"}
    })
}

async fn users(app: &TestApp, refs: Value, excluded: Value) -> BTreeSet<String> {
    app.send_ok(send_body(refs, excluded))
        .await
        .iter()
        .map(|n| n["user"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("user:default/{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_groups_and_child_groups_come_from_the_catalog_and_are_cached() {
    let catalog = FakeCatalog::start();
    let app = start(format!(
        "{{baseUrl: '{}/api/catalog', token: {TOKEN}, cacheTtl: 1m}}",
        catalog.root
    ))
    .await;
    assert_eq!(
        users(
            &app,
            json!("component:default/api"),
            json!("user:default/carol")
        )
        .await,
        set(&["alice", "bob"])
    );
    {
        let seen = catalog.seen.lock().unwrap();
        // One request per level: the component, its owner, the owner's child group; never the
        // parent group (no upward traversal).
        let asked: Vec<Value> = seen
            .bodies
            .iter()
            .map(|b| b["entityRefs"].clone())
            .collect();
        assert_eq!(
            asked,
            [
                json!(["component:default/api"]),
                json!(["group:default/team"]),
                json!(["group:default/sub"])
            ]
        );
        assert_eq!(
            seen.bodies[0]["fields"],
            json!([
                "kind",
                "metadata.name",
                "metadata.namespace",
                "metadata.annotations",
                "relations",
                "spec.profile.email"
            ])
        );
        assert!(
            seen.authorization
                .iter()
                .all(|a| a.as_deref() == Some("Bearer catalog-token"))
        );
    }
    // Within the time to live, the same entities are not asked for again; user refs never are.
    assert_eq!(
        users(&app, json!(["group:team", "user:zed"]), json!([])).await,
        set(&["alice", "bob", "carol", "zed"])
    );
    assert_eq!(catalog.requests(), 3);
    // An entity the catalog does not hold reaches nobody.
    assert_eq!(
        users(&app, json!("group:default/ghost"), json!([])).await,
        set(&[])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_found_by_discovery_by_default() {
    let catalog = FakeCatalog::start();
    let yaml = format!(
        "discovery: {{endpoints: [{{target: '{}/api/{{{{pluginId}}}}', plugins: [catalog]}}]}}\nnotifications: {{catalog: {{remote: {{token: {TOKEN}}}}}}}",
        catalog.root
    );
    let app = TestApp::start(DbKind::Sqlite, &yaml).await.unwrap();
    assert_eq!(
        users(&app, json!("group:org"), json!([])).await,
        set(&["boss"])
    );
}

/// A failed send is a generic 503, stores nothing, and comes back within the timeout. The cause
/// (the catalog's answer, its address) is logged, not told to the sender.
async fn assert_unavailable(app: &TestApp) {
    let started = Instant::now();
    let r = app.send(send_body(json!("group:org"), json!([]))).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    r.assert_error(503, "ServiceUnavailableError");
    assert_eq!(
        r.message(),
        "Failed to send user notifications; caused by Error: the catalog is unavailable; try again"
    );
    for detail in [
        "canary-4f1e",
        "internal",
        "HTTP",
        "127.0.0.1",
        "credentials",
    ] {
        assert!(!r.text.contains(detail), "{detail:?} in {}", r.text);
    }
    assert_eq!(app.list("user:default/boss", "").await["totalCount"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_outages_are_a_generic_503_never_a_hang() {
    let catalog = FakeCatalog::start();
    let app = start(format!(
        "{{baseUrl: '{}/api/catalog', token: {TOKEN}, timeout: 300ms, cacheTtl: 0}}",
        catalog.root
    ))
    .await;
    catalog.set_mode(Mode::Fail);
    assert_unavailable(&app).await;
    catalog.set_mode(Mode::Stall);
    assert_unavailable(&app).await;
    // Recovery: the next send works (failures are not cached).
    catalog.set_mode(Mode::Answer);
    assert_eq!(
        users(&app, json!("group:org"), json!([])).await,
        set(&["boss"])
    );

    let wrong_token = start(format!(
        "{{baseUrl: '{}/api/catalog', token: wrong}}",
        catalog.root
    ))
    .await;
    assert_unavailable(&wrong_token).await;

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nowhere = start(format!(
        "{{baseUrl: 'http://127.0.0.1:{port}/api/catalog'}}"
    ))
    .await;
    assert_unavailable(&nowhere).await;
}

/// Janus's routes, which ask the catalog for the caller's groups, keep its words out too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_routes_keep_catalog_failures_to_the_log() {
    let catalog = FakeCatalog::start();
    let yaml = format!(
        "notifications:\n  catalog: {{remote: {{baseUrl: '{}/api/catalog', token: {TOKEN}, \
         timeout: 300ms, cacheTtl: 0}}}}\n  legacyJanus: {{userCreators: ['*']}}\n",
        catalog.root
    );
    let app = TestApp::start(DbKind::Sqlite, &yaml)
        .await
        .expect("SQLite is always available");
    catalog.set_mode(Mode::Fail);
    let r = app
        .get(
            "/notifications/count",
            &app.user_token("user:default/alice"),
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert!(
        r.text.contains("the catalog is unavailable; try again"),
        "{}",
        r.text
    );
    for detail in ["canary-4f1e", "internal", "HTTP", "127.0.0.1"] {
        assert!(!r.text.contains(detail), "{detail:?} in {}", r.text);
    }
}

/// `users()` (e-mail broadcasts to all users) pages through `GET /entities/by-query`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_page_by_page() {
    use notifications_backend::config::RemoteCatalogConfig;
    use notifications_backend::testing::catalog::RemoteCatalog;
    use notifications_node::Catalog;

    let queries: Arc<Mutex<Vec<String>>> = Arc::default();
    let q = queries.clone();
    let server = FakeHttp::start(move |cfg| {
        let q = q.clone();
        cfg.route(
            "/api/catalog/entities/by-query",
            web::get().to(move |req: HttpRequest| {
                let q = q.clone();
                async move {
                    if req.headers().get("authorization").and_then(|v| v.to_str().ok())
                        != Some(&format!("Bearer {TOKEN}"))
                    {
                        return HttpResponse::Unauthorized().finish();
                    }
                    let query = req.query_string().to_owned();
                    q.lock().unwrap().push(query.clone());
                    let user = |name: &str, email: Option<&str>| {
                        json!({"kind": "User", "metadata": {"name": name, "namespace": "default"},
                               "spec": {"profile": {"email": email}}})
                    };
                    if query.contains("cursor=page2") {
                        HttpResponse::Ok().json(json!({"items": [user("carol", None)], "pageInfo": {}}))
                    } else {
                        HttpResponse::Ok().json(json!({
                            "items": [user("alice", Some("alice@example.com")), user("bob", Some("bob@example.com"))],
                            "pageInfo": {"nextCursor": "page2"}
                        }))
                    }
                }
            }),
        );
    });
    let root = server.url.clone();

    let config = RemoteCatalogConfig {
        token: Some(TOKEN.into()),
        ..RemoteCatalogConfig::default()
    };
    let catalog = RemoteCatalog::new(
        &config,
        &url::Url::parse(&format!("{root}/api/catalog")).unwrap(),
    )
    .unwrap();
    let users = catalog.users().await.unwrap();
    let listed: Vec<(String, Option<String>)> = users
        .iter()
        .map(|u| (u.entity_ref.canonical(), u.email.clone()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "user:default/alice".to_owned(),
                Some("alice@example.com".to_owned())
            ),
            (
                "user:default/bob".to_owned(),
                Some("bob@example.com".to_owned())
            ),
            ("user:default/carol".to_owned(), None),
        ]
    );
    let queries = queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(
        queries[0].starts_with("filter=kind%3Duser%2Cspec.profile.email&fields="),
        "{queries:?}"
    );
    assert!(queries[0].contains("spec.profile.email"), "{queries:?}");
    assert!(queries[1].starts_with("cursor=page2&"), "{queries:?}");
}
