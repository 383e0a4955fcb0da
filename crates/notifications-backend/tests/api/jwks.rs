//! Tokens signed with published keys: Backstage user and plugin tokens, `externalAccess` of type
//! `jwks`. The keys are served by a real HTTP server of the test, which counts fetches. These
//! tests do not depend on the database, so they run on SQLite only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use notifications_backend::config::Config;
use notifications_backend::testing::auth::{Authenticator, Principal, SigningKeys};
use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

use crate::support::fake_http::FakeHttp;
use crate::support::{DbKind, SERVICE_TOKEN, TestApp};

const USER_KEYS: &str = "/api/auth/.well-known/jwks.json";
const CATALOG_KEYS: &str = "/api/catalog/.backstage/auth/v1/jwks.json";

/// An ES256 key pair with a key id.
struct Signer {
    kid: String,
    key: EncodingKey,
    jwk: Jwk,
}

impl Signer {
    /// Deterministic keys: any 32 equal bytes below the curve order make a valid secret.
    fn new(seed: u8, kid: &str) -> Self {
        let secret = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let key = EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            key,
            jwk,
        }
    }

    fn sign(&self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    /// Claimed to be signed by `kid`, but signed with this key.
    fn sign_as(&self, kid: &str, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn user_claims(sub: &str) -> Value {
    json!({"sub": sub, "ent": [sub, "group:default/team-a"], "aud": "backstage",
           "iss": "http://auth.example.com", "iat": now(), "exp": now() + 600})
}

fn plugin_claims(sub: &str, aud: &str) -> Value {
    json!({"sub": sub, "aud": aud, "iat": now(), "exp": now() + 600})
}

/// Serves one JWKS on every path (404 for plugins whose id starts with `missing`), counting
/// requests per path.
struct KeyServer {
    root: String,
    keys: Arc<Mutex<Value>>,
    fetches: Arc<Mutex<HashMap<String, usize>>>,
    _server: FakeHttp,
}

impl KeyServer {
    fn start(keys: &[&Signer]) -> Self {
        let state = Arc::new(Mutex::new(Value::Null));
        let fetches = Arc::new(Mutex::new(HashMap::new()));
        let (s, f) = (state.clone(), fetches.clone());
        let server = FakeHttp::start(move |cfg| {
            let (s, f) = (s.clone(), f.clone());
            cfg.default_service(web::to(move |req: HttpRequest| {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    *f.lock().unwrap().entry(req.path().to_owned()).or_default() += 1;
                    if req.path().starts_with("/api/missing") {
                        HttpResponse::NotFound().finish()
                    } else {
                        HttpResponse::Ok().json(&*s.lock().unwrap())
                    }
                }
            }));
        });
        let server = Self {
            root: server.url.clone(),
            keys: state,
            fetches,
            _server: server,
        };
        server.publish(keys);
        server
    }

    fn publish(&self, keys: &[&Signer]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        };
        *self.keys.lock().unwrap() = serde_json::to_value(set).unwrap();
    }

    fn fetches(&self, path: &str) -> usize {
        self.fetches
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or_default()
    }

    fn total_fetches(&self) -> usize {
        self.fetches.lock().unwrap().values().sum()
    }

    /// Every plugin's base URL on this server, plus `extra` YAML under `backend.auth`.
    fn config(&self, external_access: &str) -> String {
        format!(
            "discovery:\n  endpoints:\n    - target: '{root}/api/{{{{pluginId}}}}'\n      plugins: ['*']\n\
             backend:\n  auth:\n    externalAccess:\n\
             \x20     - {{type: static, options: {{token: {SERVICE_TOKEN}, subject: external:test-service}}}}\n\
             {external_access}",
            root = self.root
        )
    }

    async fn app(&self, external_access: &str) -> TestApp {
        TestApp::start(DbKind::Sqlite, &self.config(external_access))
            .await
            .expect("SQLite is always available")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_of_the_auth_plugin() {
    let key = Signer::new(1, "auth-key-1");
    let keys = KeyServer::start(&[&key]);
    let app = keys.app("").await;
    let user = "user:default/jane";

    let token = key.sign("vnd.backstage.user", &user_claims(user));
    let r = app.get("/status", &token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = app.send_to(user, json!({"title": "hello"})).await;
    let list = app.get("/notifications", &token).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.body["notifications"][0]["id"], id.as_str());
    assert_eq!(
        keys.fetches(USER_KEYS),
        1,
        "the keys are fetched once, then cached"
    );

    let refused =
        |claims: Value, message: &'static str| (key.sign("vnd.backstage.user", &claims), message);
    let mut expired = user_claims(user);
    expired["exp"] = json!(now() - 3600);
    let mut other_audience = user_claims(user);
    other_audience["aud"] = json!("somewhere-else");
    let mut no_iat = user_claims(user);
    no_iat.as_object_mut().unwrap().remove("iat");
    let forger = Signer::new(2, "auth-key-1");
    let cases = [
        refused(expired, "Token has expired"),
        refused(other_audience, "Invalid token: wrong audience"),
        refused(no_iat, "Invalid token: missing claim 'iat'"),
        refused(
            user_claims("group:default/team-a"),
            "Invalid token: the subject of a user token must be a user entity ref",
        ),
        (
            forger.sign("vnd.backstage.user", &user_claims(user)),
            "Invalid token: signature does not match the signing key",
        ),
        (
            key.sign_as("made-up-kid", "vnd.backstage.user", &user_claims(user)),
            "Invalid token: unknown signing key",
        ),
        (
            key.sign(
                "vnd.backstage.limited-user",
                &json!({"sub": user, "iat": now(), "exp": now() + 60}),
            ),
            "Illegal limited user token",
        ),
    ];
    for (token, message) in cases {
        let r = app.get("/status", &token).await;
        r.assert_error(401, "AuthenticationError");
        assert_eq!(r.message(), message);
    }
    assert_eq!(
        keys.fetches(USER_KEYS),
        1,
        "an unknown key id right after a fetch does not fetch again (cooldown)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_tokens_give_their_ownership_refs() {
    let key = Signer::new(1, "k1");
    let keys = KeyServer::start(&[&key]);
    let config = Config::from_yaml_str(&keys.config("")).unwrap();
    let no_keys = SigningKeys {
        service: vec![],
        user: vec![],
    };
    let auth = Authenticator::new(no_keys, &config.backend.auth, &config.discovery).unwrap();
    let token = key.sign("vnd.backstage.user", &user_claims("User:default/Jane"));
    assert_eq!(
        auth.authenticate_header(Some(&format!("Bearer {token}")))
            .await
            .unwrap(),
        Principal::User {
            user_ref: "user:default/jane".parse().unwrap(),
            ownership_refs: vec!["user:default/jane".into(), "group:default/team-a".into()]
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_keys_are_a_401_not_a_hang() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let root = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = format!(
        "discovery: {{endpoints: [{{target: '{root}/api/{{{{pluginId}}}}', plugins: ['*']}}]}}"
    );
    let app = TestApp::start(DbKind::Sqlite, &config).await.unwrap();
    let key = Signer::new(1, "k1");
    let token = key.sign("vnd.backstage.user", &user_claims("user:default/jane"));
    for _ in 0..2 {
        let started = std::time::Instant::now();
        let r = app.get("/status", &token).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        r.assert_error(401, "AuthenticationError");
        assert_eq!(
            r.message(),
            "Invalid token: the signing keys of the token's issuer are unavailable"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_tokens_act_as_the_calling_plugin() {
    let auth_key = Signer::new(1, "auth-key");
    let catalog_key = Signer::new(3, "catalog-key");
    let keys = KeyServer::start(&[&auth_key, &catalog_key]);
    let app = keys.app("").await;
    let body =
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": "from the catalog"}});

    let token = catalog_key.sign(
        "vnd.backstage.plugin",
        &plugin_claims("catalog", "notifications"),
    );
    let r = app.post("/notifications", &token, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["origin"], "plugin:catalog");
    assert_eq!(keys.fetches(CATALOG_KEYS), 1);

    let other_audience =
        catalog_key.sign("vnd.backstage.plugin", &plugin_claims("catalog", "search"));
    let r = app.post("/notifications", &other_audience, &body).await;
    r.assert_error(401, "AuthenticationError");
    assert_eq!(r.message(), "Invalid token: wrong audience");

    let before = keys.total_fetches();
    for (sub, message) in [
        ("../auth", "Invalid plugin token: forbidden subject format"),
        (
            "catalog/../../x",
            "Invalid plugin token: forbidden subject format",
        ),
        (
            "evil.example.com",
            "Invalid plugin token: forbidden subject format",
        ),
        ("", "Invalid plugin token: missing subject"),
    ] {
        let token = catalog_key.sign("vnd.backstage.plugin", &plugin_claims(sub, "notifications"));
        let r = app.post("/notifications", &token, &body).await;
        r.assert_error(401, "AuthenticationError");
        assert_eq!(r.message(), message);
    }
    assert_eq!(
        keys.total_fetches(),
        before,
        "a bad plugin id never reaches a URL"
    );

    // A plugin whose keys are not published.
    let token = catalog_key.sign(
        "vnd.backstage.plugin",
        &plugin_claims("missing", "notifications"),
    );
    let r = app.post("/notifications", &token, &body).await;
    r.assert_error(401, "AuthenticationError");
    assert_eq!(
        r.message(),
        "Invalid token: the signing keys of the token's issuer are unavailable"
    );

    // On behalf of a user (a limited user token signed by the auth plugin): the user acts.
    let limited = auth_key.sign(
        "vnd.backstage.limited-user",
        &json!({"sub": "user:default/jane", "iat": now(), "exp": now() + 600}),
    );
    let mut claims = plugin_claims("catalog", "notifications");
    claims["obo"] = json!(limited);
    let on_behalf = catalog_key.sign("vnd.backstage.plugin", &claims);
    let r = app.get("/status", &on_behalf).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post("/notifications", &on_behalf, &body).await;
    r.assert_error(403, "NotAllowedError");

    // The obo token must itself be valid.
    let stranger = Signer::new(9, "stranger");
    claims["obo"] = json!(stranger.sign(
        "vnd.backstage.limited-user",
        &json!({"sub": "user:default/jane", "iat": now(), "exp": now() + 600})
    ));
    let r = app
        .get(
            "/status",
            &catalog_key.sign("vnd.backstage.plugin", &claims),
        )
        .await;
    r.assert_error(401, "AuthenticationError");
    assert_eq!(r.message(), "Invalid token: unknown signing key");
    claims["obo"] = json!("not a token");
    let r = app
        .get(
            "/status",
            &catalog_key.sign("vnd.backstage.plugin", &claims),
        )
        .await;
    r.assert_error(401, "AuthenticationError");
    assert_eq!(r.message(), "Invalid user token in plugin token obo claim");
}

const EXTERNAL: &str = "      - type: jwks
        options:
          url: ROOT/idp-one/jwks.json
          issuer: https://idp.one
          audience: notifications
          subjectPrefix: ci
      - type: jwks
        options:
          url: ROOT/idp-two/jwks.json
          issuer: [https://idp.two, https://idp.two/alt]
          algorithm: ES256
          audience: [backstage, notifications]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_access_jwks() {
    let key = Signer::new(5, "idp-key");
    let keys = KeyServer::start(&[&key]);
    let app = keys.app(&EXTERNAL.replace("ROOT", &keys.root)).await;
    let body = json!({"recipients": {"type": "broadcast"}, "payload": {"title": "deployed"}});
    let token = |iss: &str, aud: &str, sub: &str| {
        key.sign(
            "JWT",
            &json!({"iss": iss, "aud": aud, "sub": sub, "exp": now() + 600}),
        )
    };

    for (token, origin) in [
        (
            token("https://idp.one", "notifications", "deployer"),
            "external:ci:deployer",
        ),
        (
            token("https://idp.two/alt", "backstage", "bot"),
            "external:bot",
        ),
    ] {
        let r = app.post("/notifications", &token, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body[0]["origin"], origin);
    }

    for (token, message) in [
        (
            token("https://evil.example.com", "notifications", "x"),
            "Invalid token: wrong issuer",
        ),
        (
            token("https://idp.two", "elsewhere", "x"),
            "Invalid token: wrong audience",
        ),
        // A configured issuer or audience must be there, not merely match when present.
        (
            key.sign(
                "JWT",
                &json!({"aud": "notifications", "sub": "x", "exp": now() + 600}),
            ),
            "Invalid token: missing claim 'iss'",
        ),
        (
            key.sign(
                "JWT",
                &json!({"iss": "https://idp.two", "sub": "x", "exp": now() + 600}),
            ),
            "Invalid token: missing claim 'aud'",
        ),
    ] {
        let r = app.post("/notifications", &token, &body).await;
        r.assert_error(401, "AuthenticationError");
        assert_eq!(r.message(), message);
    }

    // HS256 and static tokens are untouched by JWKS configuration and never fetch keys.
    let before = keys.total_fetches();
    let r = app
        .get("/status", &app.user_token("user:default/jane"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post("/notifications", SERVICE_TOKEN, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["origin"], "external:test-service");
    let r = app
        .post("/notifications", &app.service_token("svc"), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body[0]["origin"], "svc");
    assert_eq!(keys.total_fetches(), before);
}

/// Anonymous plugin tokens with invented ids, sent at once, neither lock real users and plugins
/// out nor make a fetch each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_plugin_ids_do_not_lock_real_callers_out() {
    let auth_key = Signer::new(1, "auth-key");
    let catalog_key = Signer::new(3, "catalog-key");
    let keys = KeyServer::start(&[&auth_key, &catalog_key]);
    let app = keys.app("").await;
    let plugin = catalog_key.sign(
        "vnd.backstage.plugin",
        &plugin_claims("catalog", "notifications"),
    );
    let r = app.get("/status", &plugin).await;
    assert_eq!(r.status, 403, "a plugin token is no user: {}", r.text);

    let flood = (0..300).map(|i| {
        let token = catalog_key.sign(
            "vnd.backstage.plugin",
            &plugin_claims(&format!("missing-{i}"), "notifications"),
        );
        let app = &app;
        async move { app.get("/status", &token).await }
    });
    for r in futures_util::future::join_all(flood).await {
        r.assert_error(401, "AuthenticationError");
        assert_eq!(
            r.message(),
            "Invalid token: the signing keys of the token's issuer are unavailable"
        );
    }
    let invented = keys.total_fetches() - keys.fetches(CATALOG_KEYS);
    assert!(
        invented <= 40,
        "{invented} fetches for 300 invented plugin ids"
    );

    // Right after the flood: a user's first token, and the plugin already known.
    let user = auth_key.sign("vnd.backstage.user", &user_claims("user:default/jane"));
    let r = app.get("/status", &user).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body =
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": "from the catalog"}});
    let r = app.post("/notifications", &plugin, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys.fetches(USER_KEYS), 1);
    assert_eq!(keys.fetches(CATALOG_KEYS), 1);
}
