//! The web inbox in a real browser (headless Chromium, see `support::browser`): signing in
//! both ways, the list and its filters, marks, live updates, settings applied to the next send,
//! notifications that try to inject markup shown as text, and an accessibility check (axe-core)
//! on a desktop and a phone, light and dark. The inbox's tests run on both databases.

use std::time::{Duration, Instant};

use notifications_backend::testing::inbox::Sessions;
use serde_json::{Value, json};

use crate::email::{Sink, config as email_config, free_port};
use crate::on_both_databases;
use crate::support::browser::{Browser, ColorScheme, Screen, axe_violations};
use crate::support::{DbKind, SERVICE, TestApp, USER_KEY};

const JANE: &str = "user:default/jane";
/// As long as the browser helpers wait.
const WAIT: Duration = Duration::from_secs(20);

async fn assert_accessible(browser: &Browser) {
    let violations = axe_violations(browser).await;
    assert!(
        violations.is_empty(),
        "axe: {:#}",
        serde_json::Value::from(violations)
    );
}

fn sessions() -> Sessions {
    Sessions::new(&[USER_KEY.to_vec()], Duration::from_secs(3600))
}

/// Signs `user` in with a session cookie, as a used link leaves it, and opens `path`.
async fn open_as(browser: &Browser, app: &TestApp, user: &str, path: &str) {
    browser.goto(&format!("{}/", app.root)).await;
    let session = sessions().mint_session(&user.parse().unwrap()).unwrap();
    browser.set_cookie("notifications_session", &session).await;
    browser.goto(&format!("{}{path}", app.root)).await;
}

async fn script(browser: &Browser, js: &str) -> Value {
    browser.execute(js, vec![]).await
}

/// The titles the list shows, top to bottom; none while it loads.
async fn titles(browser: &Browser) -> Option<Vec<String>> {
    let v = script(
        browser,
        "return document.getElementById('list').getAttribute('aria-busy') === 'false'
            ? [...document.querySelectorAll('#list li h3')].map(h => h.textContent) : null",
    )
    .await;
    serde_json::from_value(v).unwrap()
}

/// Waits until the list, drawn, shows exactly `want`, in order.
async fn expect_titles(browser: &Browser, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = titles(browser).await;
        if got.as_deref().is_some_and(|got| got == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the list shows {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn expect_page_title(browser: &Browser, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = script(browser, "return document.title").await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the title is {got}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The item of the notification `id`.
fn item(id: &str) -> String {
    format!("#list li[data-id='{id}']")
}

/// Follows a link to `url` from a page of another site (as from webmail): a navigation for
/// which the browser keeps `SameSite=Strict` cookies back.
async fn follow_link_from_elsewhere(browser: &Browser, url: &str) {
    browser
        .goto(&format!(
            "data:text/html,%3Ca%20id=go%20href=%22{url}%22%3Eopen%3C/a%3E"
        ))
        .await;
    browser.click("#go").await;
}

async fn apply_filters(browser: &Browser) {
    browser.click("#filters button[type=submit]").await;
}

/// Signed out, every page says how to sign in; the page is accessible and runs no script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_the_page_says_how_to_sign_in() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::start(DbKind::Sqlite, "").await.unwrap();
    for path in ["/", "/inbox", "/settings"] {
        browser.goto(&format!("{}{path}", app.root)).await;
        browser.wait_for_text("main", "You are not signed in").await;
    }
    let media = script(
        &browser,
        "return [innerWidth, matchMedia('(prefers-color-scheme: dark)').matches]",
    )
    .await;
    assert_eq!(media, json!([1280, false]));
    assert_accessible(&browser).await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    // From another site, the page loads itself once more (for a cookie kept back), then stays.
    follow_link_from_elsewhere(&browser, &format!("{}/inbox", app.root)).await;
    browser.wait_for_text("main", "You are not signed in").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = script(&browser, "return performance.timeOrigin").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        script(&browser, "return performance.timeOrigin").await,
        loaded
    );
    // The page's Content-Security-Policy holds in the browser, and its violations are seen.
    let ran = script(
        &browser,
        "const s = document.createElement('script');
        s.textContent = 'window.injected = true';
        document.body.append(s);
        return window.injected === true;",
    )
    .await;
    assert_eq!(ran, json!(false));
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains("Content Security Policy"),
        "{errors:?}"
    );
}

/// A one-time link: its page asks, the button signs in and shows the inbox; used again, it is
/// refused. Signing out ends it.
async fn a_link_signs_in_to_the_inbox(kind: DbKind) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    app.send_to(JANE, json!({"title": "Welcome"})).await;
    let link = sessions()
        .mint_link(&JANE.parse().unwrap(), Duration::from_secs(600))
        .unwrap();
    let url = format!("{}/signin?token={link}", app.root);
    browser.goto(&url).await;
    browser.wait_for_text("main", "signs you in as").await;
    browser.click("form[action='/signin'] button").await;
    browser.wait_for_text("header", "Signed in as").await;
    assert_eq!(browser.text("header strong").await, JANE);
    expect_titles(&browser, &["Welcome"]).await;
    // Opened from another site (a link in webmail), where the browser keeps the `Strict` cookie
    // to itself: the inbox opens signed in all the same.
    follow_link_from_elsewhere(&browser, &format!("{}/inbox", app.root)).await;
    browser.wait_for_text("header", "Signed in as").await;
    expect_titles(&browser, &["Welcome"]).await;

    // The session gone (expired, say): the page says so, and goes nowhere by itself.
    browser.delete_cookies().await;
    browser.click("#list li .toggle-read").await;
    browser.wait_for_text("#alert", "You are signed out").await;
    assert_eq!(script(&browser, "return location.pathname").await, "/inbox");
    let errors = browser.console_errors().await;
    assert!(
        errors.iter().all(|e| e.contains("401")),
        "only the refused call: {errors:?}"
    );
    browser.click("#alert a").await;
    browser.wait_for_text("main", "You are not signed in").await;
    browser.goto(&url).await;
    browser.wait_for_text("main", "signs you in as").await;
    browser.click("form[action='/signin'] button").await;
    browser.wait_for_text("main", "used already").await;
    // The refusal is a 400 page, which the console reports as such.
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains("/signin") && errors[0].contains("400"),
        "{errors:?}"
    );
}
on_both_databases!(a_link_signs_in_to_the_inbox);

/// A trusted proxy's header signs in, the page's own API calls and event stream included;
/// from an address that is not the proxy's, the same header signs nobody in.
async fn a_trusted_proxy_signs_in(kind: DbKind) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(app) = TestApp::start(
        kind,
        "notifications: {web: {trustedProxy: {addresses: ['127.0.0.1']}}}",
    )
    .await
    else {
        return;
    };
    app.send_to(JANE, json!({"title": "Through the proxy"}))
        .await;
    browser.send_header("X-Forwarded-User", "jane").await;
    browser.goto(&format!("{}/inbox", app.root)).await;
    assert_eq!(browser.text("header strong").await, JANE);
    expect_titles(&browser, &["Through the proxy"]).await;
    browser.wait_for_text("#live", "Live").await;
    app.send_to(JANE, json!({"title": "Live through the proxy"}))
        .await;
    expect_titles(&browser, &["Live through the proxy", "Through the proxy"]).await;

    let Some(elsewhere) = TestApp::start(
        kind,
        "notifications: {web: {trustedProxy: {addresses: ['10.9.9.9']}}}",
    )
    .await
    else {
        return;
    };
    browser.goto(&format!("{}/inbox", elsewhere.root)).await;
    browser.wait_for_text("main", "You are not signed in").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
on_both_databases!(a_trusted_proxy_signs_in);

/// The list (own and broadcast, newest first, paged), every filter, every mark, mark all
/// (matching the filters, then all), the keyboard, and live updates from elsewhere.
async fn the_inbox_lists_filters_and_marks(kind: DbKind) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let deploy = app
        .send_to(
            JANE,
            json!({"title": "Deploy finished", "topic": "deploys", "severity": "low",
                   "link": "/catalog/default/component/shop"}),
        )
        .await;
    let disk = app
        .send_to(
            JANE,
            json!({"title": "Disk almost full", "topic": "alerts", "severity": "critical"}),
        )
        .await;
    let build = app
        .send_to(
            JANE,
            json!({"title": "Build failed", "topic": "builds", "severity": "high",
                   "description": "The nightly build broke."}),
        )
        .await;
    let maintenance = app
        .broadcast(json!({"title": "Maintenance tonight", "description": "22:00 to 23:00"}))
        .await;
    // Another user's notification is never shown.
    app.send_to("user:default/bob", json!({"title": "Bob's"}))
        .await;

    open_as(&browser, &app, JANE, "/inbox").await;
    let all = [
        "Maintenance tonight",
        "Build failed",
        "Disk almost full",
        "Deploy finished",
    ];
    expect_titles(&browser, &all).await;
    expect_page_title(&browser, "(4) Notifications").await;
    assert_eq!(browser.text("#range").await, "1–4 of 4");
    // What an item shows: severity, topic, origin, a relative time with the exact one on hover,
    // and the link resolved against the Backstage app.
    let shown = script(
        &browser,
        &format!(
            "const li = document.querySelector(\"{}\");
            const time = li.querySelector('time');
            return [li.querySelector('.severity').textContent, li.querySelector('.topic').textContent,
                    li.querySelector('.origin').textContent, time.textContent, !!time.title,
                    li.querySelector('h3 a').href, li.querySelector('h3 a').target]",
            item(&deploy)
        ),
    )
    .await;
    assert_eq!(
        shown,
        json!([
            "low",
            "Topic: deploys",
            format!("From: {SERVICE}"),
            "now",
            true,
            "http://localhost/catalog/default/component/shop",
            "_blank"
        ])
    );
    assert_accessible(&browser).await;

    // Severity (at least), topic, text search, created-after.
    browser.click("#f-severity option[value='high']").await;
    apply_filters(&browser).await;
    expect_titles(&browser, &["Build failed", "Disk almost full"]).await;
    assert!(browser.text("#mark-all").await.contains("matching"));
    browser.click("#f-severity option[value='']").await;
    browser.click("#f-topic option[value='alerts']").await;
    apply_filters(&browser).await;
    expect_titles(&browser, &["Disk almost full"]).await;
    browser.click("#f-topic option[value='']").await;
    // The keyboard: Enter in the search box applies it.
    browser.type_into("#f-search", "NIGHTLY\u{E007}").await;
    expect_titles(&browser, &["Build failed"]).await;
    script(&browser, "document.getElementById('f-search').value = ''").await;
    script(
        &browser,
        "document.getElementById('f-after').value = '2999-01-01'",
    )
    .await;
    apply_filters(&browser).await;
    expect_titles(&browser, &[]).await;
    assert!(
        browser
            .wait_for("#empty")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    script(
        &browser,
        "document.getElementById('f-after').value = '2000-01-01'",
    )
    .await;
    apply_filters(&browser).await;
    expect_titles(&browser, &all).await;
    // The filters are in the address: a reload keeps them.
    browser.click("#f-severity option[value='critical']").await;
    apply_filters(&browser).await;
    expect_titles(&browser, &["Disk almost full"]).await;
    let here = script(&browser, "return location.search").await;
    assert_eq!(here, "?severity=critical&after=2000-01-01");
    browser
        .goto(&format!("{}/inbox{}", app.root, here.as_str().unwrap()))
        .await;
    expect_titles(&browser, &["Disk almost full"]).await;
    browser.goto(&format!("{}/inbox", app.root)).await;
    expect_titles(&browser, &all).await;

    // Read, with the keyboard: the unread view drops it; "all" shows it, to be marked unread.
    let read_button = format!("{} .toggle-read", item(&build));
    script(
        &browser,
        &format!("document.querySelector(\"{read_button}\").focus()"),
    )
    .await;
    browser.type_into(&read_button, "\u{E007}").await;
    expect_titles(
        &browser,
        &["Maintenance tonight", "Disk almost full", "Deploy finished"],
    )
    .await;
    expect_page_title(&browser, "(3) Notifications").await;
    // The focus moved to the same button of the notification that took its place.
    let focused = script(
        &browser,
        "const a = document.activeElement;
        return [a.className, a.closest('li') && a.closest('li').dataset.id]",
    )
    .await;
    assert_eq!(focused, json!(["toggle-read", disk]));
    browser.click("input[name=view][value=all]").await;
    expect_titles(&browser, &all).await;
    // The list is drawn anew on each change: wait for the text rather than read an element.
    browser.wait_for_text(&read_button, "Mark unread").await;
    browser.click(&read_button).await;
    expect_page_title(&browser, "(4) Notifications").await;
    browser.wait_for_text(&read_button, "Mark read").await;

    // Saved and unsaved.
    browser
        .click(&format!("{} .toggle-saved", item(&disk)))
        .await;
    browser.click("input[name=view][value=saved]").await;
    expect_titles(&browser, &["Disk almost full"]).await;
    let pressed = script(
        &browser,
        &format!(
            "return document.querySelector(\"{} .toggle-saved\").getAttribute('aria-pressed')",
            item(&disk)
        ),
    )
    .await;
    assert_eq!(pressed, "true");
    browser
        .click(&format!("{} .toggle-saved", item(&disk)))
        .await;
    expect_titles(&browser, &[]).await;

    // Mark all matching read (topic deploys), then all.
    browser.click("input[name=view][value=unread]").await;
    expect_titles(&browser, &all).await;
    browser.click("#f-topic option[value='deploys']").await;
    apply_filters(&browser).await;
    expect_titles(&browser, &["Deploy finished"]).await;
    assert_eq!(browser.text("#mark-all").await, "Mark all matching read");
    browser.click("#mark-all").await;
    expect_titles(&browser, &[]).await;
    expect_page_title(&browser, "(3) Notifications").await;
    browser.click("#f-topic option[value='']").await;
    apply_filters(&browser).await;
    expect_titles(
        &browser,
        &["Maintenance tonight", "Build failed", "Disk almost full"],
    )
    .await;
    assert_eq!(browser.text("#mark-all").await, "Mark all read");
    // With the keyboard, which stays where it was.
    script(&browser, "document.getElementById('mark-all').focus()").await;
    browser.type_into("#mark-all", "\u{E007}").await;
    expect_titles(&browser, &[]).await;
    expect_page_title(&browser, "Notifications").await;
    assert_eq!(
        script(&browser, "return document.activeElement.id").await,
        "mark-all"
    );
    let status = app.get("/status", &app.user_token(JANE)).await;
    assert_eq!(status.body["unread"], 0, "{}", status.text);

    // Live: a new notification, and a mark made on another device, without a reload.
    browser.wait_for_text("#live", "Live").await;
    let marker = script(&browser, "window.notReloaded = true; return 1").await;
    assert_eq!(marker, 1);
    let fresh = app
        .send_to(JANE, json!({"title": "Arrived live", "severity": "high"}))
        .await;
    expect_titles(&browser, &["Arrived live"]).await;
    expect_page_title(&browser, "(1) Notifications").await;
    let r = app
        .post(
            "/notifications/update",
            &app.user_token(JANE),
            &json!({"ids": [fresh], "read": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    expect_titles(&browser, &[]).await;
    expect_page_title(&browser, "Notifications").await;
    assert_eq!(script(&browser, "return window.notReloaded").await, true);

    // Pages of 20, newest first.
    browser.click("input[name=view][value=all]").await;
    for i in 0..20 {
        app.send_to(JANE, json!({"title": format!("Batch {i:02}")}))
            .await;
    }
    browser.wait_for_text("#range", "1–20 of 25").await;
    let newest: Vec<String> = (0..20).rev().map(|i| format!("Batch {i:02}")).collect();
    let newest: Vec<&str> = newest.iter().map(String::as_str).collect();
    expect_titles(&browser, &newest).await;
    browser.click("#older").await;
    browser.wait_for_text("#range", "21–25").await;
    expect_titles(
        &browser,
        &[
            "Arrived live",
            "Maintenance tonight",
            "Build failed",
            "Disk almost full",
            "Deploy finished",
        ],
    )
    .await;
    assert!(
        browser
            .wait_for("#older")
            .await
            .attr("disabled")
            .await
            .unwrap()
            .is_some()
    );
    let listed = script(
        &browser,
        &format!(
            "return !!document.querySelector(\"{}\")",
            item(&maintenance)
        ),
    )
    .await;
    assert_eq!(listed, true, "the broadcast is listed");
    browser.click("#newer").await;
    browser.wait_for_text("#range", "1–20").await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.click("form[action='/signout'] button").await;
    browser.wait_for_text("main", "You are not signed in").await;
}
on_both_databases!(the_inbox_lists_filters_and_marks);

/// Markup and script in a title, a description, a link and a Markdown body are shown as text
/// (or left out), and none of it runs.
async fn injected_markup_is_text(kind: DbKind) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Under a base URL with a path, where the page must resolve links as the server does.
    let Some(app) = TestApp::start(kind, "app: {baseUrl: 'http://localhost/backstage'}").await
    else {
        return;
    };
    let title = "<img src=x onerror=\"window.pwned='title'\"><script>window.pwned='t2'</script>";
    let description =
        "<b onmouseover=\"window.pwned='d'\">bold?</b></p><script>window.pwned='d2'</script>";
    let markdown = "**Fine** <script>window.pwned='md'</script> <img src=x onerror=\"window.pwned='md2'\">\n\n\
                    [a trap](javascript:window.pwned='md3') [a real one](https://example.com/ok)\n\n\
                    <iframe src=\"javascript:window.pwned='md4'\"></iframe>\n\n\
                    ![a chart](/chart.png \"t\\\" onload=\\\"window.pwned='md5'\")\n\n\
                    | right | centre |\n|--:|:-:|\n| 1 | 2 |\n\n\
                    ```js\" onclick=\"window.pwned='md6'\ncode\n```";
    let id = app
        .send_to(
            JANE,
            json!({"title": title, "description": description,
                   "link": "https://example.com/\"><script>window.pwned='link'</script>",
                   "metadata": {"backstage.io/body.markdown": markdown}}),
        )
        .await;
    let relative = app
        .send_to(JANE, json!({"title": "relative", "link": "/catalog/x"}))
        .await;
    let protocol_relative = app
        .send_to(
            JANE,
            json!({"title": "protocol-relative", "link": "//evil.example/x"}),
        )
        .await;
    open_as(&browser, &app, JANE, "/inbox").await;
    expect_titles(&browser, &["protocol-relative", "relative", title]).await;
    // Links resolve as the server resolves them (in mail, in Markdown): one leading '/' is
    // dropped and the rest is under the app's base URL.
    for (id, want) in [
        (&relative, "http://localhost/backstage/catalog/x"),
        (&protocol_relative, "http://localhost/evil.example/x"),
    ] {
        let href = script(
            &browser,
            &format!("return document.querySelector(\"{} h3 a\").href", item(id)),
        )
        .await;
        assert_eq!(href, want);
    }
    let li = item(&id);
    assert_eq!(
        browser.text(&format!("{li} .description")).await,
        description
    );
    // The link stays one attribute (the API refuses other schemes than http(s) at send; the
    // page would not follow them either).
    let links = script(
        &browser,
        &format!("return [...document.querySelectorAll(\"{li} h3 a\")].map(a => a.href)"),
    )
    .await;
    assert_eq!(
        links,
        json!(["https://example.com/%22%3E%3Cscript%3Ewindow.pwned='link'%3C/script%3E"])
    );
    browser.click(&format!("{li} summary")).await;
    browser
        .wait_for_text(&format!("{li} .markdown"), "Fine")
        .await;
    let body = script(
        &browser,
        &format!(
            "const md = document.querySelector(\"{li} .markdown\");
            return [md.querySelector('strong').textContent, md.textContent,
                    md.querySelectorAll('script, img, iframe').length,
                    [...md.querySelectorAll('a')].map(a => a.href)]"
        ),
    )
    .await;
    assert_eq!(body[0], "Fine");
    let text = body[1].as_str().unwrap();
    assert!(
        text.contains("<script>window.pwned='md'</script>"),
        "{text}"
    );
    assert!(text.contains("<img src=x"), "{text}");
    assert!(text.contains("a trap"), "{text}");
    assert_eq!(body[2], 0, "no element from the Markdown's markup");
    // An image is a link to it; a table has no inline style (the policy would refuse it).
    assert_eq!(
        body[3],
        json!([
            "https://example.com/ok",
            "http://localhost/backstage/chart.png"
        ])
    );
    let table = script(
        &browser,
        &format!(
            "const md = document.querySelector(\"{li} .markdown\");
            return [md.querySelectorAll('td').length, md.querySelectorAll('[style]').length,
                    md.querySelectorAll('[onload], [onclick], [onmouseover]').length]"
        ),
    )
    .await;
    assert_eq!(table, json!([2, 0, 0]));
    // Nothing in the whole list came from a notification's markup.
    let foreign = script(
        &browser,
        "return document.querySelectorAll('#list script, #list img, #list iframe, #list b').length",
    )
    .await;
    assert_eq!(foreign, 0);
    // A redraw (a notification arriving) keeps the details open, with their body.
    app.send_to(JANE, json!({"title": "later"})).await;
    expect_titles(&browser, &["later", "protocol-relative", "relative", title]).await;
    let still = script(
        &browser,
        &format!(
            "const d = document.querySelector(\"{li} details\");
            return [d.open, d.querySelector('.markdown strong').textContent]"
        ),
    )
    .await;
    assert_eq!(still, json!([true, "Fine"]));
    // Hovering and clicking what might carry a handler runs nothing.
    browser.click(&format!("{li} .description")).await;
    browser.click(&format!("{li} h3")).await;
    assert_eq!(
        script(&browser, "return window.pwned ?? null").await,
        Value::Null
    );
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
on_both_databases!(injected_markup_is_text);

/// The settings page shows the user's channels × origins × topics, with the operator's
/// defaults where the user changed nothing (here: alerts are not mailed); saved, they apply to
/// the next send: a topic turned off for e-mail no longer reaches the mailbox (the inbox still
/// gets it), and one turned on does.
async fn settings_apply_to_the_next_send(kind: DbKind) {
    let Some(browser) = Browser::start_with(Screen::Phone, ColorScheme::Dark).await else {
        return;
    };
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let config = format!(
        "{}  defaultSettings: {{channels: [{{id: Email, origins: [{{id: '{SERVICE}', \
         enabled: true, topics: [{{id: alerts, enabled: false}}]}}]}}]}}\n",
        email_config(port, "")
    );
    let Some(app) = TestApp::start(kind, &config).await else {
        return;
    };
    let alice = "user:default/alice";
    app.send_to(alice, json!({"title": "Deploy 1", "topic": "deploys"}))
        .await;
    app.send_to(alice, json!({"title": "Alert 1", "topic": "alerts"}))
        .await;
    sink.expect(1).await;

    open_as(&browser, &app, alice, "/settings").await;
    let topic_box = |topic: &str| {
        format!("input[data-channel='Email'][data-origin='{SERVICE}'][data-topic='{topic}']")
    };
    let (deploys, alerts) = (topic_box("deploys"), topic_box("alerts"));
    assert!(
        browser
            .wait_for(&deploys)
            .await
            .is_selected()
            .await
            .unwrap()
    );
    assert!(
        !browser.wait_for(&alerts).await.is_selected().await.unwrap(),
        "the operator's default"
    );
    assert_accessible(&browser).await;
    browser.click(&deploys).await;
    browser.click(&alerts).await;
    browser.click("#settings-form button[type=submit]").await;
    browser.wait_for_text("#settings-status", "Saved").await;
    let saved = app.get("/settings", &app.user_token(alice)).await;
    let email = saved.body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "Email")
        .unwrap()
        .clone();
    let origin = &email["origins"][0];
    assert_eq!(origin["id"], SERVICE);
    assert_eq!(origin["enabled"], true);
    let topic = |name: &str| {
        origin["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == name)
            .unwrap()["enabled"]
            .clone()
    };
    assert_eq!(
        (topic("deploys"), topic("alerts")),
        (json!(false), json!(true))
    );
    // A reload shows what was saved.
    browser.goto(&format!("{}/settings", app.root)).await;
    assert!(
        !browser
            .wait_for(&deploys)
            .await
            .is_selected()
            .await
            .unwrap()
    );
    assert!(browser.wait_for(&alerts).await.is_selected().await.unwrap());

    app.send_to(alice, json!({"title": "Deploy 2", "topic": "deploys"}))
        .await;
    app.send_to(alice, json!({"title": "Alert 2", "topic": "alerts"}))
        .await;
    sink.expect(2).await;
    // Deploy 2 was sent first: had it a mail, that mail would be in by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut subjects: Vec<String> = sink
        .mails()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["Alert 2", "Deploy 1"]);
    browser.goto(&format!("{}/inbox", app.root)).await;
    expect_titles(&browser, &["Alert 2", "Deploy 2", "Alert 1", "Deploy 1"]).await;
    assert_accessible(&browser).await;
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
on_both_databases!(settings_apply_to_the_next_send);

/// On a desktop and a phone, light and dark, with a Markdown body open: nothing wider than the
/// screen, and accessible. With `NOTIFICATIONS_SCREENSHOTS=<dir>`, the screenshots of the docs
/// are written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_fits_every_screen_light_and_dark() {
    let shots = std::env::var_os("NOTIFICATIONS_SCREENSHOTS").map(std::path::PathBuf::from);
    let app = TestApp::start(DbKind::Sqlite, "").await.unwrap();
    let samples = [
        json!({"title": "Disk almost full on db-3", "severity": "critical", "topic": "alerts",
               "description": "Free space is under 5% on /var/lib/postgresql."}),
        json!({"title": "Build #1842 failed", "severity": "high", "topic": "builds",
               "description": "The nightly build of checkout-service broke in the test stage.",
               "link": "/catalog/default/component/checkout-service",
               "metadata": {"backstage.io/body.markdown": "**3 tests** failed:\n\n- `cart::totals`\n- `cart::discounts`\n- `payment::refunds`"}}),
        json!({"title": "Deploy of shop-frontend finished", "severity": "low", "topic": "deploys",
               "description": "Version 2.14.0 is live in production."}),
    ];
    for payload in samples {
        app.send_to(JANE, payload).await;
    }
    app.broadcast(json!({"title": "Maintenance tonight", "topic": "ops",
                         "description": "Backstage is down from 22:00 to 23:00 UTC."}))
        .await;
    for (screen, scheme, name) in [
        (Screen::Phone, ColorScheme::Dark, "phone-dark"),
        (Screen::Phone, ColorScheme::Light, "phone-light"),
        (Screen::Desktop, ColorScheme::Dark, "desktop-dark"),
        (Screen::Desktop, ColorScheme::Light, "desktop-light"),
    ] {
        let Some(browser) = Browser::start_with(screen, scheme).await else {
            return;
        };
        open_as(&browser, &app, JANE, "/inbox").await;
        browser.wait_for_text("#range", "1–4 of 4").await;
        browser.wait_for_text("#live", "Live").await;
        browser.click("#list li details summary").await;
        browser.wait_for_text("#list li .markdown", "3 tests").await;
        let fits = script(
            &browser,
            "return document.documentElement.scrollWidth <= innerWidth",
        )
        .await;
        assert_eq!(fits, true, "{name}: wider than the screen");
        assert_accessible(&browser).await;
        if let Some(dir) = &shots {
            script(&browser, "window.scrollTo(0, 0)").await;
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(
                dir.join(format!("inbox-{name}.png")),
                browser.screenshot().await,
            )
            .unwrap();
        }
        assert_eq!(browser.console_errors().await, Vec::<String>::new());
    }
}

/// Desktop notifications are opt-in: the page offers them while the browser's permission is
/// undecided, and, once granted, shows a notification that arrives while the tab is hidden
/// (and none while it is in view).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_notifications_once_permitted_while_hidden() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::start(DbKind::Sqlite, "").await.unwrap();
    open_as(&browser, &app, JANE, "/inbox").await;
    expect_titles(&browser, &[]).await;
    assert!(
        browser
            .wait_for("#desktop")
            .await
            .is_displayed()
            .await
            .unwrap()
    );

    browser.grant_permission("notifications").await;
    browser.goto(&format!("{}/inbox", app.root)).await;
    browser.wait_for_text("#live", "Live").await;
    let offered = script(&browser, "return document.getElementById('desktop').hidden").await;
    assert_eq!(offered, true, "no offer once decided");
    // The system's notifications, recorded; and whether the tab is hidden, chosen.
    script(
        &browser,
        "window.shown = [];
        window.Notification = class { static permission = 'granted';
            constructor(title, options) { window.shown.push([title, options.body]); }
            addEventListener() {} };
        window.tabHidden = false;
        Object.defineProperty(document, 'hidden', { get: () => window.tabHidden });",
    )
    .await;
    app.send_to(JANE, json!({"title": "In view"})).await;
    expect_titles(&browser, &["In view"]).await;
    script(&browser, "window.tabHidden = true").await;
    app.send_to(
        JANE,
        json!({"title": "While away", "description": "a body"}),
    )
    .await;
    expect_titles(&browser, &["While away", "In view"]).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let shown = script(&browser, "return window.shown").await;
        if shown == json!([["While away", "a body"]]) {
            break;
        }
        assert!(Instant::now() < deadline, "shown: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
}
