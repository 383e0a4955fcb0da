//! The Rust clients of `notifications-node` against a real backend: sending (contract case 81)
//! with its retries, and the user client on every user route.

use std::time::{Duration, Instant};

use notifications_common::{
    ChannelSetting, NotificationListOptions, NotificationPayload, NotificationRecipients,
    NotificationSendOptions, NotificationSettings, NotificationSeverity, OrderBy, OrderField,
    OriginSetting, ReadAllFilters, SortDirection, Timestamp, UpdateNotificationsRequest,
};
use notifications_node::{
    ClientError, NotificationService, NotificationsClient, RetryPolicy, ServiceTokenSigner,
};
use serde_json::json;

use crate::db_test;
use crate::support::flaky::{Fault, FlakyProxy};
use crate::support::{KEY_BASE64, SERVICE, SERVICE_TOKEN, TestApp, USER};

/// Quick retries, so that the tests do not wait.
fn quick() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    }
}

fn service(root: &str) -> NotificationService {
    NotificationService::builder(&format!("{root}/api/notifications"))
        .token(SERVICE_TOKEN)
        .retry(quick())
        .build()
        .unwrap()
}

fn to_user(title: &str) -> NotificationSendOptions {
    NotificationSendOptions {
        recipients: NotificationRecipients::entities([USER]),
        payload: NotificationPayload {
            title: title.into(),
            ..Default::default()
        },
    }
}

async fn inbox_total(app: &TestApp) -> u64 {
    app.list(USER, "").await["totalCount"].as_u64().unwrap()
}

db_test!(case_81_send_posts_to_the_base_url, |app| {
    let sent = service(&app.root).send(to_user("from rust")).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].origin, SERVICE);
    assert_eq!(sent[0].user.as_deref(), Some(USER));
    let listed = app.list(USER, "").await;
    assert_eq!(listed["notifications"][0]["id"], sent[0].id.to_string());
    assert_eq!(listed["notifications"][0]["payload"]["title"], "from rust");

    // A 400 is the backend's answer, not retried, with its error.
    let mut bad = to_user("bad link");
    bad.payload.link = Some("javascript:alert(1)".into());
    let e = service(&app.root).send(bad).await.unwrap_err();
    assert!(
        e.to_string().starts_with("Request failed with status 400"),
        "{e}"
    );
    assert_eq!((e.status(), e.code()), (Some(400), "rejected"));
    assert_eq!(e.server_error().unwrap().name, "InputError");
    assert!(
        matches!(e, ClientError::Status { attempts: 1, .. }),
        "{e:?}"
    );
});

db_test!(signed_service_tokens_send_as_their_subject, |app| {
    let service = NotificationService::builder(&format!("{}/api/notifications/", app.root))
        .token_provider(ServiceTokenSigner::from_base64(KEY_BASE64, "my-ci").unwrap())
        .build()
        .unwrap();
    let sent = service.send(to_user("signed")).await.unwrap();
    assert_eq!(sent[0].origin, "my-ci");

    // Another key: 401, not retried.
    let foreign = NotificationService::builder(&format!("{}/api/notifications", app.root))
        .token_provider(ServiceTokenSigner::new(b"another-key-of-16+bytes", "x").unwrap())
        .retry(quick())
        .build()
        .unwrap();
    let e = foreign.send(to_user("refused")).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(
        matches!(e, ClientError::Status { attempts: 1, .. }),
        "{e:?}"
    );
    // A user token on the send route: 403.
    let as_user = NotificationService::builder(&format!("{}/api/notifications", app.root))
        .token(app.user_token(USER))
        .build()
        .unwrap();
    let e = as_user.send(to_user("refused")).await.unwrap_err();
    assert_eq!(e.server_error().unwrap().name, "NotAllowedError");
    assert_eq!(inbox_total(&app).await, 1);
});

db_test!(retried_sends_create_once, |app| {
    // The backend stores the send each time, but its answer is lost: twice a 503, then a
    // closed connection. The retries carry the first key and are answered with the replay.
    let proxy = FlakyProxy::start(
        &app.root,
        vec![
            Fault::ForwardThen503,
            Fault::ForwardThen503,
            Fault::ForwardThenClose,
        ],
    )
    .await;
    let sent = service(&proxy.root).send(to_user("once")).await.unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.method == "POST" && s.path == "/api/notifications")
    );
    let key = seen[0].idempotency_key.clone().expect("a key");
    assert!(
        seen.iter()
            .all(|s| s.idempotency_key.as_ref() == Some(&key)),
        "{seen:?}"
    );
    assert_eq!(
        inbox_total(&app).await,
        1,
        "one notification for four attempts"
    );
    assert_eq!(
        app.list(USER, "").await["notifications"][0]["id"],
        sent[0].id.to_string()
    );

    // The next send has a key of its own.
    service(&proxy.root).send(to_user("twice")).await.unwrap();
    assert_ne!(proxy.seen()[4].idempotency_key.as_ref(), Some(&key));
    assert_eq!(inbox_total(&app).await, 2);
});

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let Some(app) = TestApp::start(crate::support::DbKind::Sqlite, "").await else {
        return;
    };
    let proxy = FlakyProxy::start(&app.root, vec![Fault::Answer(429, Some(1))]).await;
    let started = Instant::now();
    service(&proxy.root).send(to_user("later")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as asked"
    );
    assert_eq!(proxy.seen().len(), 2);
    // A Retry-After beyond the policy's longest delay ends the retries.
    let proxy = FlakyProxy::start(&app.root, vec![Fault::Answer(429, Some(60))]).await;
    let e = service(&proxy.root)
        .send(to_user("much later"))
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(429), "unavailable"));
    assert_eq!(proxy.seen().len(), 1);
    assert_eq!(inbox_total(&app).await, 1);
}

#[tokio::test]
async fn persistent_failures_end_after_the_last_retry() {
    let faults = vec![Fault::Answer(503, None); 4];
    let proxy = FlakyProxy::start("http://127.0.0.1:9", faults).await;
    let e = service(&proxy.root).send(to_user("x")).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Status {
                status: 503,
                attempts: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_transient());
    // Nobody listening: retried, then unreachable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let e = service(&format!("http://{closed}"))
        .send(to_user("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Unreachable { attempts: 4, .. }),
        "{e:?}"
    );
    assert_eq!(e.code(), "unreachable");
}

db_test!(the_user_client_covers_every_user_route, |app| {
    let old = app
        .insert_at(
            Some(USER),
            json!({"title": "old build", "topic": "builds", "severity": "low"}),
            time::OffsetDateTime::now_utc() - time::Duration::days(3),
        )
        .await;
    let deploy = app
        .send_to(
            USER,
            json!({"title": "Deploy done", "topic": "deploys", "severity": "high"}),
        )
        .await;
    let broadcast = app
        .broadcast(json!({"title": "Maintenance 50% done"}))
        .await;
    let client = NotificationsClient::builder(&format!("{}/api/notifications", app.root))
        .token(app.user_token(USER))
        .build()
        .unwrap();

    let all = client
        .get_notifications(&NotificationListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.total_count, 3);
    let ids = |r: &notifications_common::NotificationListResponse| -> Vec<String> {
        r.notifications.iter().map(|n| n.id.to_string()).collect()
    };
    assert_eq!(ids(&all), [broadcast.clone(), deploy.clone(), old.clone()]);
    let page = client
        .get_notifications(&NotificationListOptions {
            limit: Some(1),
            offset: Some(1),
            order: vec![OrderBy {
                field: OrderField::Created,
                direction: SortDirection::Asc,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.total_count, ids(&page)), (3, vec![deploy.clone()]));
    let filtered = |options: NotificationListOptions| {
        let client = client.clone();
        async move { ids(&client.get_notifications(&options).await.unwrap()) }
    };
    let topic = NotificationListOptions {
        topic: Some("builds".into()),
        ..Default::default()
    };
    assert_eq!(filtered(topic).await, [old.as_str()]);
    let search = NotificationListOptions {
        search: Some("50%".into()),
        ..Default::default()
    };
    assert_eq!(filtered(search).await, [broadcast.as_str()]);
    let severe = NotificationListOptions {
        minimum_severity: Some(NotificationSeverity::High),
        ..Default::default()
    };
    assert_eq!(filtered(severe).await, [deploy.as_str()]);
    let recent = NotificationListOptions {
        created_after: Some(Timestamp::from(
            time::OffsetDateTime::now_utc() - time::Duration::days(1),
        )),
        ..Default::default()
    };
    assert_eq!(filtered(recent).await.len(), 2);

    let one = client.get_notification(&deploy).await.unwrap();
    assert_eq!(one.payload.title, "Deploy done");
    let e = client.get_notification("no/such id").await.unwrap_err();
    assert_eq!(e.server_error().unwrap().name, "NotFoundError");

    let marked = client
        .update_notifications(&UpdateNotificationsRequest {
            ids: vec![deploy.clone(), broadcast.clone()],
            read: Some(true),
            saved: Some(true),
        })
        .await
        .unwrap();
    assert_eq!(marked.len(), 2);
    assert!(marked.iter().all(|n| n.read.is_some() && n.saved.is_some()));
    let status = client.get_status().await.unwrap();
    assert_eq!((status.read, status.unread), (2, 1));
    let unread = NotificationListOptions {
        read: Some(false),
        ..Default::default()
    };
    assert_eq!(filtered(unread).await, [old.as_str()]);
    let saved = NotificationListOptions {
        saved: Some(true),
        ..Default::default()
    };
    assert_eq!(filtered(saved).await.len(), 2);

    assert_eq!(
        client
            .get_topics(&NotificationListOptions::default())
            .await
            .unwrap(),
        ["builds", "deploys"]
    );
    let read_topics = NotificationListOptions {
        read: Some(true),
        topic: Some("ignored by topics".into()),
        ..Default::default()
    };
    assert_eq!(client.get_topics(&read_topics).await.unwrap(), ["deploys"]);

    // Beyond upstream: mark all read, with every filter it takes sent as the server reads them.
    let deploys = ReadAllFilters {
        topic: Some("deploys".into()),
        ..Default::default()
    };
    assert_eq!(
        client.mark_all_read(&deploys).await.unwrap(),
        0,
        "read already"
    );
    let every_filter = ReadAllFilters {
        topic: Some("builds".into()),
        search: Some("OLD".into()),
        saved: Some(false),
        created_after: Some(Timestamp::from(
            time::OffsetDateTime::now_utc() - time::Duration::days(7),
        )),
        minimum_severity: Some(NotificationSeverity::Low),
    };
    assert_eq!(client.mark_all_read(&every_filter).await.unwrap(), 1);
    client
        .update_notifications(&UpdateNotificationsRequest {
            ids: vec![broadcast.clone()],
            read: Some(false),
            saved: None,
        })
        .await
        .unwrap();
    assert_eq!(
        client
            .mark_all_read(&ReadAllFilters::default())
            .await
            .unwrap(),
        1
    );
    let status = client.get_status().await.unwrap();
    assert_eq!((status.read, status.unread), (3, 0));

    let settings = client.get_notification_settings().await.unwrap();
    assert_eq!(settings.channels[0].id, "Web");
    let wanted = NotificationSettings {
        channels: vec![ChannelSetting {
            id: "Web".into(),
            enabled: None,
            origins: vec![OriginSetting {
                id: SERVICE.into(),
                enabled: false,
                topics: None,
            }],
        }],
    };
    let saved = client.update_notification_settings(&wanted).await.unwrap();
    assert!(!saved.channels[0].origins[0].enabled, "{saved:?}");
    assert_eq!(client.get_notification_settings().await.unwrap(), saved);

    // Service credentials on a user route: 403.
    let as_service = NotificationsClient::builder(&format!("{}/api/notifications", app.root))
        .token(SERVICE_TOKEN)
        .build()
        .unwrap();
    let e = as_service.get_status().await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), "rejected"));
});
