//! GET/PUT /preferences (beyond upstream): digest mode, time zone and quiet hours, validated
//! field by field; upstream's /settings is untouched by them.

use notifications_common::{
    DigestMode, DigestPreference, NotificationPreferences, QuietWindow, Weekday,
};
use notifications_node::NotificationsClient;
use serde_json::{Value, json};

use crate::db_test;
use crate::support::{TestApp, USER};

const OTHER: &str = "user:default/other";
const PATH: &str = "/preferences";

fn defaults() -> Value {
    json!({"digest": {"mode": "immediate"}, "timeZone": "UTC", "quietHours": []})
}

async fn put(app: &TestApp, user: &str, body: &Value) -> crate::support::Response {
    app.request(
        reqwest::Method::PUT,
        PATH,
        Some(&app.user_token(user)),
        Some(body),
    )
    .await
}

db_test!(saved_per_user_and_replaced_whole, |app| {
    let token = app.user_token(USER);
    let r = app.get(PATH, &token).await;
    assert_eq!((r.status, &r.body), (200, &defaults()), "{}", r.text);
    let settings_before = app.get("/settings", &token).await.body;

    let wanted = json!({
        "digest": {"mode": "daily", "at": "08:30"},
        "timeZone": "america/new_york",
        "quietHours": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "07:00"},
            {"days": ["sat", "sun"], "start": "00:00", "end": "23:59"}
        ]
    });
    let r = put(&app, USER, &wanted).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut stored = wanted.clone();
    stored["timeZone"] = json!("America/New_York");
    assert_eq!(r.body, stored, "the zone under its canonical name");
    assert_eq!(app.get(PATH, &token).await.body, stored);
    // Another user's are their own; upstream's settings do not change.
    assert_eq!(app.get(PATH, &app.user_token(OTHER)).await.body, defaults());
    assert_eq!(app.get("/settings", &token).await.body, settings_before);

    // Alias names are kept under the zone's primary name; a null time is no time.
    let r = put(
        &app,
        USER,
        &json!({"timeZone": "US/Eastern", "digest": {"mode": "immediate", "at": null}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["timeZone"], "America/New_York");
    assert_eq!(r.body["digest"], json!({"mode": "immediate"}));

    // A PUT replaces the whole document: what it leaves out takes its default.
    let r = put(&app, USER, &json!({"digest": {"mode": "hourly"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let hourly = json!({"digest": {"mode": "hourly"}, "timeZone": "UTC", "quietHours": []});
    assert_eq!(app.get(PATH, &token).await.body, hourly);
});

db_test!(each_problem_is_a_400_naming_its_field, |app| {
    let token = app.user_token(USER);
    let kept = json!({"digest": {"mode": "hourly"}, "timeZone": "Europe/Paris", "quietHours": []});
    assert_eq!(put(&app, USER, &kept).await.status, 200);
    let window = |start: &str, end: &str| json!({"days": ["mon"], "start": start, "end": end});
    let many: Vec<Value> = (0..51).map(|_| window("22:00", "07:00")).collect();
    // The service's own checks: the message starts with the field.
    for (body, field) in [
        (json!({"timeZone": "Mars/Olympus"}), "timeZone"),
        (json!({"timeZone": "Etc/Unknown"}), "timeZone"),
        (json!({"timeZone": "UTC+3"}), "timeZone"),
        (json!({"digest": {"mode": "daily"}}), "digest.at"),
        (
            json!({"digest": {"mode": "daily", "at": "8:30"}}),
            "digest.at",
        ),
        (
            json!({"digest": {"mode": "hourly", "at": "08:30"}}),
            "digest.at",
        ),
        (
            json!({"quietHours": [window("22:00", "07:00"), window("09:00", "09:00")]}),
            "quietHours[1]",
        ),
        (
            json!({"quietHours": [window("25:00", "07:00")]}),
            "quietHours[0].start",
        ),
        (
            json!({"quietHours": [window("22:00", "7am")]}),
            "quietHours[0].end",
        ),
        (
            json!({"quietHours": [{"days": [], "start": "22:00", "end": "07:00"}]}),
            "quietHours[0].days",
        ),
        (json!({"quietHours": many}), "quietHours: at most 50"),
    ] {
        let r = put(&app, USER, &body).await;
        r.assert_error(400, "InputError");
        assert!(r.message().starts_with(field), "{body}: {}", r.text);
    }
    // What does not parse: the message names its path.
    for (body, path) in [
        (json!({"digest": {"mode": "weekly"}}), "digest.mode"),
        (
            json!({"quietHours": [{"days": ["monday"], "start": "22:00", "end": "07:00"}]}),
            "quietHours[0].days[0]",
        ),
        (json!({"timezone": "UTC"}), "timezone"),
        (json!({"timeZone": 3}), "timeZone"),
    ] {
        let r = put(&app, USER, &body).await;
        r.assert_error(400, "InputError");
        assert!(r.message().contains(path), "{body}: {}", r.text);
    }
    let r = app
        .request(
            reqwest::Method::PUT,
            "/preferences?x=1",
            Some(&token),
            Some(&kept),
        )
        .await;
    r.assert_error(400, "InputError");
    // Nothing refused was stored.
    assert_eq!(app.get(PATH, &token).await.body, kept);
});

db_test!(the_rust_client_reads_and_writes_them, |app| {
    let client = NotificationsClient::builder(&format!("{}/api/notifications", app.root))
        .token(app.user_token(USER))
        .build()
        .unwrap();
    assert_eq!(
        client.get_preferences().await.unwrap(),
        NotificationPreferences::default()
    );
    let wanted = NotificationPreferences {
        digest: DigestPreference {
            mode: DigestMode::Daily,
            at: Some("18:00".into()),
        },
        time_zone: "Asia/Kolkata".into(),
        quiet_hours: vec![QuietWindow {
            days: vec![Weekday::Sat, Weekday::Sun],
            start: "10:00".into(),
            end: "09:00".into(),
        }],
    };
    assert_eq!(client.update_preferences(&wanted).await.unwrap(), wanted);
    assert_eq!(client.get_preferences().await.unwrap(), wanted);
    let refused = NotificationPreferences {
        time_zone: "Nowhere/Special".into(),
        ..wanted.clone()
    };
    let e = client.update_preferences(&refused).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(client.get_preferences().await.unwrap(), wanted);
});
