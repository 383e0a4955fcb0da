//! Users' preferences applied (beyond upstream): e-mail digests and quiet hours, with a real
//! SMTP server, a Slack stand-in and a webhook receiver, on both databases. Time is the
//! worker's manual clock, set to instants of next year (a manual clock may not run behind the
//! system's: deliveries are queued at the system's time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::civil::{Date, Weekday};
use notifications_backend::testing::clock::{Clock, ManualClock};
use notifications_backend::testing::store::{DeliveryRow, DeliveryStatus};
use notifications_common::NotificationId;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::email::{Sink, free_port};
use crate::on_both_databases;
use crate::slack::FakeSlack;
use crate::support::{Api, DbKind, SERVICE, TestApp};
use crate::webhook::Hook;

const ALICE: &str = "user:default/alice";
const ALL_DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `time` (`HH:MM`) on `date` in `zone`, as jiff's `Compatible` rule reads it.
fn local(zone: &str, date: Date, hour: i8, minute: i8) -> OffsetDateTime {
    let ts = date.at(hour, minute, 0, 0).in_tz(zone).unwrap().timestamp();
    OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).unwrap()
}

/// A date of next year: always ahead of the system's clock.
fn next_year(month: i8, day: i8) -> Date {
    let year = i16::try_from(OffsetDateTime::now_utc().year() + 1).unwrap();
    Date::new(year, month, day).unwrap()
}

struct Setup {
    app: TestApp,
    sink: Sink,
    clock: Arc<ManualClock>,
    config: String,
}

/// The backend of `config(port of the SMTP sink)`, its clock at `at`.
async fn start_with(
    kind: DbKind,
    at: OffsetDateTime,
    config: impl FnOnce(u16) -> String,
) -> Option<Setup> {
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let clock = Arc::new(ManualClock::new(at));
    let config = config(port);
    let handle = clock.clone();
    let app = TestApp::start_with(
        kind,
        &config,
        Some(Box::new(move |b| b.clock(handle as Arc<dyn Clock>))),
    )
    .await?;
    Some(Setup {
        app,
        sink,
        clock,
        config,
    })
}

/// The e-mail tests' backend, its clock at `at`.
async fn start(kind: DbKind, at: OffsetDateTime) -> Option<Setup> {
    start_with(kind, at, |port| crate::email::config(port, "")).await
}

async fn save_preferences(app: &TestApp, user: &str, preferences: Value) {
    let r = app
        .request(
            reqwest::Method::PUT,
            "/preferences",
            Some(&app.user_token(user)),
            Some(&preferences),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

fn id(text: &str) -> NotificationId {
    NotificationId(uuid::Uuid::parse_str(text).unwrap())
}

async fn rows_of(app: &TestApp, notification: &str) -> Vec<DeliveryRow> {
    app.db
        .store()
        .deliveries(None, Some(id(notification)), 10)
        .await
        .unwrap()
}

/// Waits until `check` holds of the notification's deliveries (of `channel`, if given).
async fn eventually(
    app: &TestApp,
    notification: &str,
    channel: Option<&str>,
    what: &str,
    check: impl Fn(&[DeliveryRow]) -> bool,
) -> Vec<DeliveryRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<DeliveryRow> = rows_of(app, notification)
            .await
            .into_iter()
            .filter(|r| channel.is_none_or(|c| r.channel == c))
            .collect();
        if !rows.is_empty() && check(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "not {what}: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the notification's e-mail delivery is kept for the digest due at `due`: one
/// row, unclaimed, the keeping not counted as an attempt.
async fn kept_until(app: &TestApp, notification: &str, due: OffsetDateTime) {
    eventually(app, notification, None, "kept", |rows| {
        matches!(rows, [row] if row.digest_at == Some(due) && row.locked_until.is_none()
            && row.status == DeliveryStatus::Pending && row.attempts == 0)
    })
    .await;
}

/// Waits until the notification's deliveries to `channel` are all delivered.
async fn delivered(app: &TestApp, notification: &str, channel: &str) {
    eventually(app, notification, Some(channel), "delivered", |rows| {
        rows.iter().all(|r| r.status == DeliveryStatus::Delivered)
    })
    .await;
}

/// Waits until the notification's delivery to `channel` is held for quiet hours ending at
/// `until` (kept for the digest of `window`, if given); holding is not an attempt.
async fn held_until(
    app: &TestApp,
    notification: &str,
    channel: &str,
    until: OffsetDateTime,
    window: Option<OffsetDateTime>,
) {
    eventually(app, notification, Some(channel), "held", |rows| {
        matches!(rows, [row] if row.quiet_until == Some(until) && row.locked_until.is_none()
            && row.digest_at == window && row.status == DeliveryStatus::Pending
            && row.attempts == 0 && row.last_error.is_none())
    })
    .await;
}

/// Waits until the worker (all workers on this clock) has looked at the time a few times since
/// now: what it was going to do at the time set, it has done.
async fn settle(clock: &ManualClock) {
    let since = clock.reads();
    let deadline = Instant::now() + Duration::from_secs(20);
    while clock.reads() < since + 12 {
        assert!(
            Instant::now() < deadline,
            "the worker does not read the clock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn text_of(mail: &Value) -> &str {
    mail["text"].as_str().unwrap()
}

/// Hourly digests: one mail when the hour ends, of what is unread and still wanted, a scope
/// re-send as one entry with its latest content; an empty hour sends nothing.
async fn hourly_digest(kind: DbKind) {
    let day = next_year(6, 10);
    let Some(s) = start(kind, local("UTC", day, 10, 5)).await else {
        return;
    };
    let app = &s.app;
    save_preferences(app, ALICE, json!({"digest": {"mode": "hourly"}})).await;
    let eleven = local("UTC", day, 11, 0);
    let one = app.send_to(ALICE, json!({"title": "one"})).await;
    let two = app.send_to(ALICE, json!({"title": "two"})).await;
    let noisy = app
        .send_to(ALICE, json!({"title": "noisy one", "topic": "noisy"}))
        .await;
    let scoped = |title: &str| json!({"title": title, "scope": "build-7", "severity": "high", "link": "/builds/7"});
    let first = app.send_to(ALICE, scoped("build running")).await;
    for n in [&one, &two, &noisy, &first] {
        kept_until(app, n, eleven).await;
    }
    let again = app.send_to(ALICE, scoped("build failed")).await;
    assert_eq!(again, first, "a scope re-send is the same notification");
    // The re-send's delivery is merged into the kept one: still one row, with its content.
    eventually(app, &first, None, "merged", |rows| {
        matches!(rows, [row] if row.notification["payload"]["title"] == "build failed"
            && row.digest_at == Some(eleven))
    })
    .await;
    // Read before the digest: left out. A topic turned off since: left out.
    let r = app
        .post(
            "/notifications/update",
            &app.user_token(ALICE),
            &json!({"ids": [two], "read": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let off = json!({"channels": [{"id": "Email", "origins": [{"id": SERVICE, "enabled": true,
        "topics": [{"id": "noisy", "enabled": false}]}]}]});
    let r = app.post("/settings", &app.user_token(ALICE), &off).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Bob mails as before.
    app.send_to("user:default/bob", json!({"title": "for bob"}))
        .await;
    let mails = s.sink.expect_to(&["Bob@Example.com"]).await;
    assert_eq!(mails[0]["subject"], "for bob");

    s.clock.set(eleven - time::Duration::seconds(1));
    settle(&s.clock).await;
    assert_eq!(s.sink.mails().len(), 1, "nothing before the hour ends");
    // A second instance's worker races for the window: it is mailed once.
    let handle = s.clock.clone();
    let _twin = app
        .another_instance(&s.config, move |b| b.clock(handle as Arc<dyn Clock>))
        .await;
    s.clock.set(eleven);
    let mails = s.sink.expect(2).await;
    let digest = &mails[1];
    assert_eq!(digest["to"], "alice@example.com");
    assert_eq!(digest["subject"], "2 new notifications");
    let text = text_of(digest);
    assert!(text.starts_with("one\nnormal · "), "{text}");
    assert!(
        text.contains("build failed\nhigh · ") && text.contains("http://localhost/builds/7"),
        "{text}"
    );
    for left_out in ["two", "noisy", "build running"] {
        assert!(!text.contains(left_out), "{left_out}: {text}");
    }
    assert!(
        text.ends_with("All notifications: http://localhost/notifications"),
        "{text}"
    );
    let html = digest["html"].as_str().unwrap();
    assert!(html.contains("<strong>build failed</strong>"), "{html}");
    for n in [&one, &two, &noisy, &first] {
        delivered(app, n, "Email").await;
    }
    // The next hour holds nothing: no mail.
    s.clock.set(local("UTC", day, 12, 0));
    settle(&s.clock).await;
    assert_eq!(s.sink.mails().len(), 2);
    // A notification all read before the hour ends: nothing is mailed either.
    let late = app.send_to(ALICE, json!({"title": "late"})).await;
    kept_until(app, &late, local("UTC", day, 13, 0)).await;
    app.post(
        "/notifications/update",
        &app.user_token(ALICE),
        &json!({"ids": [late], "read": true}),
    )
    .await;
    s.clock.set(local("UTC", day, 13, 0));
    delivered(app, &late, "Email").await;
    settle(&s.clock).await;
    assert_eq!(s.sink.mails().len(), 2, "an empty window sends nothing");
}
on_both_databases!(hourly_digest);

/// Daily digests at 02:30 in Paris across the spring-forward night (02:30 does not exist: it
/// goes at 03:30 CEST), and a restart inside the window loses nothing and mails once.
async fn daily_digest_across_dst_and_a_restart(kind: DbKind) {
    // The last Sunday of March: Paris' spring-forward day.
    let sunday = next_year(3, 31)
        .nth_weekday_of_month(-1, Weekday::Sunday)
        .unwrap();
    let saturday = sunday.yesterday().unwrap();
    let Some(mut s) = start(kind, local("Europe/Paris", saturday, 12, 0)).await else {
        return;
    };
    save_preferences(
        &s.app,
        ALICE,
        json!({"digest": {"mode": "daily", "at": "02:30"}, "timeZone": "Europe/Paris"}),
    )
    .await;
    let due = local("Europe/Paris", sunday, 3, 30);
    assert_eq!(due, local("UTC", sunday, 1, 30), "03:30 CEST");
    let first = s.app.send_to(ALICE, json!({"title": "saturday"})).await;
    kept_until(&s.app, &first, due).await;
    // The backend stops as in a crash; another starts on the same database.
    s.app.stop_backend().await;
    let handle = s.clock.clone();
    let other = s
        .app
        .another_instance(&s.config, move |b| b.clock(handle as Arc<dyn Clock>))
        .await;
    let other_api = Api::new(&other.root());
    s.clock.set(due - time::Duration::minutes(1));
    settle(&s.clock).await;
    assert!(s.sink.mails().is_empty());
    s.clock.set(due);
    let mails = s.sink.expect(1).await;
    assert_eq!(mails[0]["subject"], "1 new notification");
    assert!(
        text_of(&mails[0]).starts_with("saturday\n"),
        "{}",
        text_of(&mails[0])
    );
    delivered(&s.app, &first, "Email").await;
    // The next window: Monday 02:30 CEST, 00:30 UTC.
    let monday = sunday.tomorrow().unwrap();
    let second = {
        let r = other_api
            .post(
                "/notifications",
                &s.app.service_token(SERVICE),
                &json!({"recipients": {"type": "entity", "entityRef": ALICE}, "payload": {"title": "sunday"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body[0]["id"].as_str().unwrap().to_owned()
    };
    kept_until(&s.app, &second, local("UTC", monday, 0, 30)).await;
    s.clock.set(local("UTC", monday, 0, 30));
    let mails = s.sink.expect(2).await;
    assert!(text_of(&mails[1]).starts_with("sunday\n"));
}
on_both_databases!(daily_digest_across_dst_and_a_restart);

/// Quiet hours that span midnight hold e-mail, a Slack DM and a webhook until they end; a
/// critical notification goes through; the inbox has everything at once.
async fn quiet_hours_hold_then_release(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let hook = Hook::start().await;
    let day = next_year(6, 10);
    let zone = "America/New_York";
    let processors = format!(
        "\n    slack:\n      - token: xoxb-test-token\n        apiUrl: {}\n    webhook:\n      - url: {}/hook\n        secret: a-webhook-secret-of-some-length\n",
        slack.url, hook.url
    );
    // The Slack tests' catalog: alice has an address and a Slack id.
    let Some(s) = start_with(kind, local(zone, day, 23, 30), |port| {
        format!(
            "{}  metrics: {{enabled: true}}\n",
            crate::email::config(port, &processors).replace("email-org.yaml", "slack.yaml")
        )
    })
    .await
    else {
        return;
    };
    let app = &s.app;
    save_preferences(
        app,
        ALICE,
        json!({"timeZone": zone, "quietHours": [{"days": ALL_DAYS, "start": "22:00", "end": "07:00"}]}),
    )
    .await;
    let night = app.send_to(ALICE, json!({"title": "at night"})).await;
    let morning = local(zone, day.tomorrow().unwrap(), 7, 0);
    for channel in ["Email", "SlackNotificationProcessor", "Webhook"] {
        held_until(app, &night, channel, morning, None).await;
    }
    // The inbox is not held.
    assert_eq!(app.list(ALICE, "").await["totalCount"], 1);
    // Held is not a backlog: its own state of the queue, left out of the oldest age.
    let text = crate::metrics::scrape(&app.root).await;
    for channel in ["Email", "SlackNotificationProcessor", "Webhook"] {
        let series = |state: &str| {
            format!(r#"notifications_delivery_queue{{channel="{channel}",state="{state}"}}"#)
        };
        assert_eq!(
            crate::metrics::value(&text, &series("held")),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            crate::metrics::value(&text, &series("pending")),
            Some(0.0),
            "{text}"
        );
        let age =
            format!(r#"notifications_delivery_queue_oldest_age_seconds{{channel="{channel}"}}"#);
        assert_eq!(crate::metrics::value(&text, &age), Some(0.0), "{text}");
    }
    // Critical goes through on every channel.
    let fire = app
        .send_to(ALICE, json!({"title": "fire", "severity": "critical"}))
        .await;
    let mails = s.sink.expect(1).await;
    assert_eq!(mails[0]["subject"], "fire");
    slack.wait_for("chat.postMessage", 1).await;
    for channel in ["Email", "SlackNotificationProcessor", "Webhook"] {
        delivered(app, &fire, channel).await;
    }
    assert_eq!(hook.delivered().len(), 1);
    // A minute before the end: still held.
    s.clock.set(morning - time::Duration::minutes(1));
    settle(&s.clock).await;
    assert_eq!(s.sink.mails().len(), 1);
    s.clock.set(morning);
    let mails = s.sink.expect(2).await;
    assert_eq!(mails[1]["subject"], "at night");
    let posts = slack.wait_for("chat.postMessage", 2).await;
    assert_eq!(posts[1].body["text"], "at night");
    for channel in ["Email", "SlackNotificationProcessor", "Webhook"] {
        delivered(app, &night, channel).await;
    }
    assert_eq!(hook.delivered().len(), 2);
}
on_both_databases!(quiet_hours_hold_then_release);

/// With `criticalPassesThrough: false`, critical notifications wait too, until the user
/// changes their preferences; an operator's default
/// digest applies to users who saved nothing, and digests turned off refuse other modes.
async fn operator_settings(kind: DbKind) {
    let day = next_year(6, 10);
    let Some(s) = start_with(kind, local("UTC", day, 23, 0), |port| {
        format!(
            "{}  preferences: {{criticalPassesThrough: false, defaultDigest: daily, defaultDigestAt: '06:15'}}\n",
            crate::email::config(port, "")
        )
    })
    .await
    else {
        return;
    };
    let app = &s.app;
    let r = app
        .get("/preferences", &app.user_token("user:default/bob"))
        .await;
    assert_eq!(
        r.body,
        json!({"digest": {"mode": "daily", "at": "06:15"}, "timeZone": "UTC", "quietHours": []})
    );
    let bobs = app.send_to("user:default/bob", json!({"title": "b"})).await;
    kept_until(app, &bobs, local("UTC", day.tomorrow().unwrap(), 6, 15)).await;
    save_preferences(
        app,
        ALICE,
        json!({"quietHours": [{"days": ALL_DAYS, "start": "22:00", "end": "07:00"}]}),
    )
    .await;
    let fire = app
        .send_to(ALICE, json!({"title": "fire", "severity": "critical"}))
        .await;
    let seven = local("UTC", day.tomorrow().unwrap(), 7, 0);
    held_until(app, &fire, "Email", seven, None).await;
    // Preferences saved anew apply to what is held: without quiet hours, it goes at once.
    save_preferences(app, ALICE, json!({})).await;
    let mails = s.sink.expect(1).await;
    assert_eq!(mails[0]["subject"], "fire");
    delivered(app, &fire, "Email").await;

    let Some(off) = start_with(kind, local("UTC", day, 23, 0), |port| {
        format!(
            "{}  preferences: {{digests: false}}\n",
            crate::email::config(port, "")
        )
    })
    .await
    else {
        return;
    };
    let r = off
        .app
        .request(
            reqwest::Method::PUT,
            "/preferences",
            Some(&off.app.user_token(ALICE)),
            Some(&json!({"digest": {"mode": "hourly"}})),
        )
        .await;
    r.assert_error(400, "InputError");
    assert!(
        r.message()
            .starts_with("digest.mode: digests are turned off"),
        "{}",
        r.text
    );
}
on_both_databases!(operator_settings);

/// A digest whose window closes in quiet hours waits for them to end, and windows that close
/// meanwhile join it: one mail in the morning.
async fn a_digest_closing_in_quiet_hours_waits(kind: DbKind) {
    let day = next_year(6, 10);
    let tomorrow = day.tomorrow().unwrap();
    let Some(s) = start(kind, local("UTC", day, 21, 30)).await else {
        return;
    };
    let app = &s.app;
    save_preferences(
        app,
        ALICE,
        json!({"digest": {"mode": "hourly"},
               "quietHours": [{"days": ALL_DAYS, "start": "22:00", "end": "07:00"}]}),
    )
    .await;
    let seven = local("UTC", tomorrow, 7, 0);
    // Critical passes quiet hours and the digest.
    let fire = app
        .send_to(ALICE, json!({"title": "fire", "severity": "critical"}))
        .await;
    let mails = s.sink.expect(1).await;
    assert_eq!(mails[0]["subject"], "fire");
    delivered(app, &fire, "Email").await;
    let evening = app.send_to(ALICE, json!({"title": "evening"})).await;
    let ten = local("UTC", day, 22, 0);
    kept_until(app, &evening, ten).await;
    s.clock.set(ten);
    held_until(app, &evening, "Email", seven, Some(ten)).await;
    let night = app.send_to(ALICE, json!({"title": "night"})).await;
    let eleven = local("UTC", day, 23, 0);
    kept_until(app, &night, eleven).await;
    s.clock.set(eleven);
    held_until(app, &night, "Email", seven, Some(eleven)).await;
    s.clock.set(seven - time::Duration::minutes(1));
    settle(&s.clock).await;
    assert_eq!(s.sink.mails().len(), 1);
    s.clock.set(seven);
    let mails = s.sink.expect(2).await;
    assert_eq!(mails[1]["subject"], "2 new notifications");
    let text = text_of(&mails[1]);
    assert!(
        text.starts_with("evening\n") && text.contains("\nnight\n"),
        "{text}"
    );
}
on_both_databases!(a_digest_closing_in_quiet_hours_waits);

/// Hourly digests across New York's fall-back night: 01:00-02:00 happens twice, and each of
/// those hours is a window of its own.
async fn hourly_digests_across_fall_back(kind: DbKind) {
    let sunday = next_year(11, 1)
        .nth_weekday_of_month(1, Weekday::Sunday)
        .unwrap();
    let zone = "America/New_York";
    // 01:10 EDT, 05:10 UTC.
    let Some(s) = start(kind, local("UTC", sunday, 5, 10)).await else {
        return;
    };
    let app = &s.app;
    save_preferences(
        app,
        ALICE,
        json!({"digest": {"mode": "hourly"}, "timeZone": zone}),
    )
    .await;
    let first = app.send_to(ALICE, json!({"title": "first 01:10"})).await;
    // The end of the first 01:00 hour: 01:00 EST.
    kept_until(app, &first, local("UTC", sunday, 6, 0)).await;
    s.clock.set(local("UTC", sunday, 6, 0));
    let mails = s.sink.expect(1).await;
    assert!(text_of(&mails[0]).contains("first 01:10"));
    // 01:10 EST: the second 01:00 hour, closing at 02:00 EST.
    s.clock.set(local("UTC", sunday, 6, 10));
    let second = app.send_to(ALICE, json!({"title": "second 01:10"})).await;
    kept_until(app, &second, local("UTC", sunday, 7, 0)).await;
    s.clock.set(local("UTC", sunday, 7, 0));
    let mails = s.sink.expect(2).await;
    assert!(text_of(&mails[1]).contains("second 01:10"));
}
on_both_databases!(hourly_digests_across_fall_back);

/// Two workers claiming a closed window at once: one takes it whole, the other nothing.
async fn one_claim_takes_a_window_whole(kind: DbKind) {
    let day = next_year(6, 10);
    let Some(mut s) = start(kind, local("UTC", day, 10, 5)).await else {
        return;
    };
    save_preferences(&s.app, ALICE, json!({"digest": {"mode": "hourly"}})).await;
    let eleven = local("UTC", day, 11, 0);
    let mut ids = Vec::new();
    for title in ["a", "b", "c"] {
        let id = s.app.send_to(ALICE, json!({"title": title})).await;
        kept_until(&s.app, &id, eleven).await;
        ids.push(id);
    }
    s.app.stop_backend().await;
    let claim = |store: notifications_backend::testing::store::Store| {
        tokio::spawn(async move {
            store
                .claim_digest(eleven, Duration::from_secs(60), 8)
                .await
                .unwrap()
        })
    };
    let (one, other) = (s.app.db.store(), s.app.db.store());
    let (one, other) = tokio::join!(claim(one), claim(other));
    let (one, other) = (one.unwrap(), other.unwrap());
    let mut claimed: Vec<String> = one
        .iter()
        .chain(&other)
        .map(|r| r.notification_id.0.to_string())
        .collect();
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids);
    assert!(one.is_empty() || other.is_empty(), "{one:?}\n{other:?}");
}
on_both_databases!(one_claim_takes_a_window_whole);
