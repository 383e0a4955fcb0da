//! Signing in to the web inbox: a one-time link (asked before it is used, used once, a session
//! cookie with the documented attributes), a trusted proxy's header (from its addresses only),
//! and the `Origin` check that writes signed in either way must pass. On both databases.

use std::time::Duration;

use notifications_backend::testing::inbox::Sessions;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::on_both_databases;
use crate::support::{DbKind, TestApp, USER_KEY};

const JANE: &str = "user:default/jane";

fn link(user: &str) -> String {
    let sessions = Sessions::new(&[USER_KEY.to_vec()], Duration::from_secs(3600));
    sessions
        .mint_link(&user.parse().unwrap(), Duration::from_secs(600))
        .unwrap()
}

/// A client that neither follows redirects nor keeps cookies: each test says what it sends.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let res = req.send().await.unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: res.text().await.unwrap(),
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn a_link_signs_in_once(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let root = app.root.clone();
    let c = client();
    let token = link(JANE);
    // The link's page asks first: opening it signs nobody in.
    // A JWT is URL-safe: it goes into the query and the form as it is.
    let page = send(c.get(format!("{root}/signin?token={token}"))).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains("signs you in as <strong>user:default/jane</strong>")
    );
    assert!(
        page.text
            .contains(r#"<form method="post" action="/signin">"#)
    );
    assert!(header(&page, "content-security-policy").starts_with("default-src 'none'"));
    // Same-origin referrers only: the token goes nowhere else, and the page's own form still
    // carries its Origin (under no-referrer, browsers send `Origin: null`).
    assert_eq!(header(&page, "referrer-policy"), "same-origin");
    assert!(header(&page, "set-cookie").is_empty());
    let bad = send(c.get(format!("{root}/signin?token=forged"))).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text.contains("This is not a valid sign-in link"),
        "{}",
        bad.text
    );
    // Posted from elsewhere, or without saying from where: refused, and the link not used.
    let form = |req: reqwest::RequestBuilder| {
        req.header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
    };
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let mut req = form(c.post(format!("{root}/signin")));
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        let refused = send(req).await;
        assert_eq!(refused.status, 403, "{origin:?}");
        assert!(header(&refused, "set-cookie").is_empty());
    }
    // Twice at once: one signs in, the other finds the link used.
    let (one, other) = tokio::join!(
        send(form(c.post(format!("{root}/signin"))).header("Origin", &root)),
        send(form(c.post(format!("{root}/signin"))).header("Origin", &root)),
    );
    let mut statuses = [one.status, other.status];
    statuses.sort();
    assert_eq!(statuses, [303, 400], "{} / {}", one.text, other.text);
    let signed_in = if one.status == 303 { one } else { other };
    assert_eq!(header(&signed_in, "location"), "/");
    let cookie = header(&signed_in, "set-cookie").to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        &format!("Max-Age={}", 7 * 24 * 3600),
    ] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("notifications_session=")
        .unwrap()
        .to_owned();
    // Once only.
    let again = send(form(c.post(format!("{root}/signin"))).header("Origin", &root)).await;
    assert_eq!(again.status, 400);
    assert!(again.text.contains("was used already"), "{}", again.text);

    // The cookie is Jane's credential for the API.
    let id = app.send_to(JANE, json!({"title": "for jane"})).await;
    app.send_to("user:default/bob", json!({"title": "for bob"}))
        .await;
    let cookie = format!("notifications_session={session}");
    let list = send(
        c.get(format!("{root}/api/notifications/notifications"))
            .header("Cookie", &cookie),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let body: serde_json::Value = serde_json::from_str(&list.text).unwrap();
    assert_eq!(body["totalCount"], 1);
    assert_eq!(body["notifications"][0]["id"], id.as_str());
    // No shared cache keeps what a cookie opened.
    assert_eq!(header(&list, "cache-control"), "private, no-store");
    assert!(
        header(&list, "vary").contains("Cookie"),
        "{:?}",
        list.headers
    );
    // Another site's page may not read with it either (where CORS would let it).
    for (name, value) in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = send(
            c.get(format!("{root}/api/notifications/notifications"))
                .header("Cookie", &cookie)
                .header(name, value),
        )
        .await;
        assert_eq!(r.status, 403, "{name}: {value}");
    }
    // A bearer token, even a bad one, is read alone.
    let r = send(
        c.get(format!("{root}/api/notifications/notifications"))
            .header("Cookie", &cookie)
            .bearer_auth("not-a-token"),
    )
    .await;
    assert_eq!(r.status, 401);
    let home = send(c.get(format!("{root}/")).header("Cookie", &cookie)).await;
    assert!(
        home.text
            .contains("Signed in as <strong>user:default/jane</strong>")
    );
    // Writes with it must come from this service's pages.
    let update = |origin: Option<&str>| {
        let mut req = c
            .post(format!("{root}/api/notifications/notifications/update"))
            .header("Cookie", &cookie)
            .json(&json!({"ids": [id], "read": true}));
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        send(req)
    };
    for origin in [
        None,
        Some("http://evil.example"),
        Some("http://127.0.0.1"),
        Some("null"),
        Some(&root.replace("http://", "https://")),
    ] {
        let refused = update(origin).await;
        assert_eq!(refused.status, 403, "{origin:?}: {}", refused.text);
        assert!(refused.text.contains("NotAllowedError"), "{}", refused.text);
    }
    assert_eq!(app.list(JANE, "read=true").await["totalCount"], 0);
    assert_eq!(update(Some(&root)).await.status, 200);
    assert_eq!(app.list(JANE, "read=true").await["totalCount"], 1);
    // Other writes likewise; a user's cookie does not send.
    let settings =
        json!({"channels": [{"id": "Web", "origins": [{"id": "external:x", "enabled": false}]}]});
    let r = send(
        c.post(format!("{root}/api/notifications/settings"))
            .header("Cookie", &cookie)
            .header("Origin", &root)
            .json(&settings),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.post(format!("{root}/api/notifications/notifications"))
            .header("Cookie", &cookie)
            .header("Origin", &root)
            .json(&json!({"recipients": {"type": "broadcast"}, "payload": {"title": "t"}})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    // It is no bearer token.
    let bearer = send(
        c.get(format!("{root}/api/notifications/notifications"))
            .bearer_auth(&session),
    )
    .await;
    assert_eq!(bearer.status, 401);
    // Signing out forgets it; from elsewhere, it is refused.
    for origin in ["null", "http://evil.example"] {
        let r = send(c.post(format!("{root}/signout")).header("Origin", origin)).await;
        assert_eq!(r.status, 403, "{origin}");
    }
    let out = send(c.post(format!("{root}/signout")).header("Origin", &root)).await;
    assert_eq!(out.status, 303);
    let cleared = header(&out, "set-cookie");
    assert!(
        cleared.starts_with("notifications_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Without a session, the page says how to sign in.
    let home = send(c.get(format!("{root}/"))).await;
    assert_eq!(home.status, 200);
    assert!(
        home.text
            .contains("token --user user:default/&lt;you&gt; --link"),
        "{}",
        home.text
    );
}
on_both_databases!(a_link_signs_in_once);

/// Reached over HTTPS (here: `backend.baseUrl` says so, as behind a TLS proxy), the cookie is
/// `Secure` and host-only by name; the base URL's origin is this service's.
async fn behind_https_the_cookie_is_secure(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "backend: {baseUrl: 'https://inbox.example.com'}").await
    else {
        return;
    };
    let token = link(JANE);
    let r = send(
        client()
            .post(format!("{}/signin", app.root))
            .header("Origin", "https://inbox.example.com")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}")),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let cookie = header(&r, "set-cookie");
    assert!(
        cookie.starts_with("__Host-notifications_session="),
        "{cookie}"
    );
    assert!(cookie.contains("; Secure"), "{cookie}");
    let value = cookie.split(';').next().unwrap();
    let list = send(
        client()
            .get(format!("{}/api/notifications/notifications", app.root))
            .header("Cookie", value),
    )
    .await;
    assert_eq!(list.status, 200);
    // Under its plain name, the cookie is nothing (no other host may plant that one).
    let plain = value.replace("__Host-notifications_session", "notifications_session");
    let r = send(
        client()
            .get(format!("{}/api/notifications/notifications", app.root))
            .header("Cookie", plain),
    )
    .await;
    assert_eq!(r.status, 401);
}
on_both_databases!(behind_https_the_cookie_is_secure);

async fn a_trusted_proxy_names_the_user(kind: DbKind) {
    let Some(app) = TestApp::start(
        kind,
        "notifications: {web: {trustedProxy: {addresses: ['127.0.0.0/8', '::1']}}}",
    )
    .await
    else {
        return;
    };
    let root = app.root.clone();
    let c = client();
    let id = app.send_to(JANE, json!({"title": "for jane"})).await;
    let as_jane = |req: reqwest::RequestBuilder| req.header("X-Forwarded-User", "jane");
    let list = send(as_jane(
        c.get(format!("{root}/api/notifications/notifications")),
    ))
    .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains(&id));
    // A bearer token wins over the header.
    let bobs = send(
        as_jane(c.get(format!("{root}/api/notifications/notifications")))
            .bearer_auth(app.user_token("user:default/bob")),
    )
    .await;
    assert!(!bobs.text.contains(&id), "{}", bobs.text);
    // Writes: from this service's pages only.
    let update = |origin: Option<&str>| {
        let mut req = as_jane(c.post(format!("{root}/api/notifications/notifications/update")))
            .json(&json!({"ids": [id], "saved": true}));
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        send(req)
    };
    assert_eq!(update(None).await.status, 403);
    assert_eq!(update(Some(&root)).await.status, 200);
    // Basic credentials passed on by the proxy leave its header to be read.
    let r = send(
        as_jane(c.get(format!("{root}/api/notifications/notifications")))
            .header("Authorization", "Basic amFuZTpzZWNyZXQ="),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The header twice (a proxy that appends to the client's): nobody.
    let r = send(
        as_jane(c.get(format!("{root}/api/notifications/notifications")))
            .header("X-Forwarded-User", "bob"),
    )
    .await;
    assert_eq!(r.status, 401);
    // Names that are no user name are nobody.
    let long = "j".repeat(300);
    for name in ["", "group:default/team", "a/b", long.as_str()] {
        let r = send(
            c.get(format!("{root}/api/notifications/notifications"))
                .header("X-Forwarded-User", HeaderValue::from_str(name).unwrap()),
        )
        .await;
        assert_eq!(r.status, 401, "{name:?}");
    }

    // From an address that is not the proxy's, the header is nothing.
    let Some(other) = TestApp::start(
        kind,
        "notifications: {web: {trustedProxy: {addresses: ['10.9.9.9']}}}",
    )
    .await
    else {
        return;
    };
    let r = send(
        c.get(format!("{}/api/notifications/notifications", other.root))
            .header("X-Forwarded-User", "jane"),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let home = send(
        c.get(format!("{}/", other.root))
            .header("X-Forwarded-User", "jane"),
    )
    .await;
    assert!(home.text.contains("You are not signed in"), "{}", home.text);
}
on_both_databases!(a_trusted_proxy_names_the_user);

/// The signals WebSocket takes the session cookie from this service's pages; from another
/// site's, the connection is the guest's.
async fn the_signals_websocket_takes_the_cookie(kind: DbKind) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let root = app.root.clone();
    let token = link(JANE);
    let r = send(
        client()
            .post(format!("{root}/signin"))
            .header("Origin", &root)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={token}")),
    )
    .await;
    let cookie = header(&r, "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let open = |origin: String| {
        let mut request = format!("{}/api/signals", root.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().unwrap());
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            crate::signals::command(&mut socket, "subscribe", "notifications").await;
            socket
        }
    };
    let mut jane = open(root.clone()).await;
    let mut elsewhere = open("http://evil.example".to_owned()).await;
    let id = app.send_to(JANE, json!({"title": "for jane"})).await;
    assert_eq!(
        crate::signals::frame(&mut jane).await["message"]["notification_id"],
        id.as_str()
    );
    assert_eq!(
        crate::signals::next_frame(&mut elsewhere, Duration::from_millis(300)).await,
        None,
        "another site's page listens as the guest"
    );
}
on_both_databases!(the_signals_websocket_takes_the_cookie);

/// The inbox page and its Markdown bodies: the page under its policy for the signed-in
/// browser; a body for its reader only (own notifications and broadcasts), rendered safe, and
/// never to another site's page nor to a bearer token.
async fn the_inbox_and_its_bodies(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let root = app.root.clone();
    let c = client();
    let markdown = "**hi** <script>x()</script> [no](javascript:x()) [rel](/catalog)";
    let own = app
        .send_to(
            JANE,
            json!({"title": "t", "metadata": {"backstage.io/body.markdown": markdown}}),
        )
        .await;
    let plain = app.send_to(JANE, json!({"title": "plain"})).await;
    let broadcast = app
        .broadcast(json!({"title": "b", "metadata": {"backstage.io/body.markdown": "# All"}}))
        .await;
    let bobs = app
        .send_to(
            "user:default/bob",
            json!({"title": "b", "metadata": {"backstage.io/body.markdown": "secret"}}),
        )
        .await;
    let session = Sessions::new(&[USER_KEY.to_vec()], Duration::from_secs(3600))
        .mint_session(&JANE.parse().unwrap())
        .unwrap();
    let cookie = format!("notifications_session={session}");
    let get = |path: String| c.get(format!("{root}{path}")).header("Cookie", &cookie);

    let page = send(get("/inbox".into())).await;
    assert_eq!(page.status, 200);
    assert!(
        header(&page, "content-security-policy").contains("script-src 'self';"),
        "{:?}",
        page.headers
    );
    assert!(!header(&page, "content-security-policy").contains("unsafe"));
    assert!(
        page.text
            .contains(r#"<meta name="app-base-url" content="http://localhost/">"#)
    );
    // The assets are kept for good under the URL of this version only.
    let at = page.text.find("/assets/inbox.js?v=").unwrap();
    let versioned = &page.text[at..at + "/assets/inbox.js?v=".len() + 16];
    let script = send(c.get(format!("{root}{versioned}"))).await;
    assert_eq!(script.status, 200);
    assert!(header(&script, "content-type").starts_with("text/javascript"));
    assert_eq!(
        header(&script, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    for other in [
        "/assets/inbox.js",
        "/assets/inbox.js?v=0000000000000000",
        "/assets/inbox.js?v=%ZZ&v",
    ] {
        let r = send(c.get(format!("{root}{other}"))).await;
        assert_eq!(
            (r.status, header(&r, "cache-control")),
            (200, "no-cache"),
            "{other}"
        );
    }
    // A bearer token is read alone, on the page as on the API: with one beside the cookie,
    // the page is not the inbox (whose API calls would be refused).
    let bearer_page = send(get("/inbox".into()).bearer_auth("not-a-token")).await;
    assert!(
        bearer_page.text.contains("You are not signed in"),
        "{}",
        bearer_page.text
    );

    let body = send(get(format!("/inbox/body/{own}"))).await;
    assert_eq!(body.status, 200, "{}", body.text);
    assert_eq!(
        body.text.trim(),
        "<p><strong>hi</strong> &lt;script&gt;x()&lt;/script&gt; no \
         <a href=\"http://localhost/catalog\">rel</a></p>"
    );
    assert_eq!(header(&body, "cache-control"), "private, no-store");
    let all = send(get(format!("/inbox/body/{broadcast}"))).await;
    assert_eq!((all.status, all.text.trim()), (200, "<h1>All</h1>"));
    let none = send(get(format!("/inbox/body/{plain}"))).await;
    assert_eq!((none.status, none.text.as_str()), (200, ""));
    for id in [
        bobs.as_str(),
        "not-an-id",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let r = send(get(format!("/inbox/body/{id}"))).await;
        assert_eq!(r.status, 404, "{id}: {}", r.text);
        assert!(!r.text.contains("secret"));
    }
    let cross =
        send(get(format!("/inbox/body/{own}")).header("Sec-Fetch-Site", "cross-site")).await;
    assert_eq!(cross.status, 403);
    let bearer = send(
        c.get(format!("{root}/inbox/body/{own}"))
            .bearer_auth(app.user_token(JANE)),
    )
    .await;
    assert_eq!(bearer.status, 401, "{}", bearer.text);
    assert!(
        bearer.text.contains("AuthenticationError"),
        "{}",
        bearer.text
    );
    // Signed out (or the `Strict` cookie kept back), a navigation from another site loads the
    // page once more, as this site; from this site it does not.
    for (site, refresh) in [
        ("cross-site", true),
        ("same-origin", false),
        ("none", false),
    ] {
        let r = send(
            c.get(format!("{root}/inbox"))
                .header("Sec-Fetch-Site", site),
        )
        .await;
        assert!(r.text.contains("You are not signed in"), "{}", r.text);
        assert_eq!(
            r.text
                .contains(r#"<meta http-equiv="refresh" content="0">"#),
            refresh,
            "{site}"
        );
    }
}
on_both_databases!(the_inbox_and_its_bodies);
