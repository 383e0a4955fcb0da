//! Idempotent sends: `Idempotency-Key` on POST /notifications (beyond upstream).

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::db_test;
use crate::support::{SERVICE_TOKEN, TestApp, USER};

/// A raw send with an `Idempotency-Key`: the status, the `Idempotent-Replayed` header and the
/// body as text.
async fn send_keyed(
    root: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> (u16, Option<String>, String) {
    let res = reqwest::Client::new()
        .post(format!("{root}/api/notifications"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = res.status().as_u16();
    let replayed = res
        .headers()
        .get("Idempotent-Replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, replayed, res.text().await.unwrap())
}

fn to_user(title: &str) -> Value {
    json!({"recipients": {"type": "entity", "entityRef": USER}, "payload": {"title": title}})
}

async fn total(app: &TestApp) -> u64 {
    app.list(USER, "").await["totalCount"].as_u64().unwrap()
}

db_test!(a_repeated_key_replays_the_first_answer, |app| {
    let (status, replayed, first) =
        send_keyed(&app.root, SERVICE_TOKEN, "k-1", &to_user("once")).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(replayed, None);
    // The same request serialised differently is the same request.
    let same =
        json!({"payload": {"title": "once"}, "recipients": {"entityRef": USER, "type": "entity"}});
    let (status, replayed, again) = send_keyed(&app.root, SERVICE_TOKEN, "k-1", &same).await;
    assert_eq!(status, 200);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again, first, "byte for byte the first answer");
    assert_eq!(total(&app).await, 1, "sent once");

    // Broadcasts too, and a send that reached nobody records its empty answer.
    let b = json!({"recipients": {"type": "broadcast"}, "payload": {"title": "all"}});
    let (_, _, first) = send_keyed(&app.root, SERVICE_TOKEN, "k-2", &b).await;
    let (_, replayed, again) = send_keyed(&app.root, SERVICE_TOKEN, "k-2", &b).await;
    assert_eq!((replayed.as_deref(), again), (Some("true"), first));
    let nobody = json!({"recipients": {"type": "entity", "entityRef": "group:default/empty"}, "payload": {"title": "x"}});
    let (status, _, first) = send_keyed(&app.root, SERVICE_TOKEN, "k-3", &nobody).await;
    assert_eq!((status, first.as_str()), (200, "[]"));
    let (_, replayed, _) = send_keyed(&app.root, SERVICE_TOKEN, "k-3", &nobody).await;
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(total(&app).await, 2);
});

db_test!(a_key_reused_for_another_request_is_a_422, |app| {
    let (status, _, _) = send_keyed(&app.root, SERVICE_TOKEN, "k", &to_user("first")).await;
    assert_eq!(status, 200);
    let (status, _, text) = send_keyed(&app.root, SERVICE_TOKEN, "k", &to_user("second")).await;
    assert_eq!(status, 422, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["name"], "IdempotencyKeyReusedError");
    assert_eq!(body["response"]["statusCode"], 422);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("'k'"),
        "{text}"
    );
    assert_eq!(total(&app).await, 1, "nothing sent for the second");
});

db_test!(keys_belong_to_their_origin_and_are_checked, |app| {
    let body = to_user("same");
    let (a, _, _) = send_keyed(&app.root, SERVICE_TOKEN, "shared", &body).await;
    let (b, replayed, _) = send_keyed(&app.root, "test-service2-token", "shared", &body).await;
    assert_eq!(
        (a, b, replayed),
        (200, 200, None),
        "another origin's key is its own"
    );
    assert_eq!(total(&app).await, 2);
    for bad in ["has space", &"k".repeat(256)] {
        let (status, _, text) = send_keyed(&app.root, SERVICE_TOKEN, bad, &body).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("Idempotency-Key"), "{text}");
    }
});

db_test!(concurrent_requests_with_one_key_create_once, |app| {
    // Half of them on a second instance of the deployment: the key lives in the database.
    let other = app.another_instance("", |b| b).await;
    let roots = [app.root.clone(), other.root()];
    let body = json!({"recipients": {"type": "entity", "entityRef": [USER, "user:default/other"]},
                      "payload": {"title": "race"}});
    let requests = (0..8).map(|i| {
        let root = roots[i % 2].clone();
        let body = body.clone();
        tokio::spawn(async move { send_keyed(&root, SERVICE_TOKEN, "race-key", &body).await })
    });
    let answers: Vec<_> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let first = &answers[0].2;
    for (status, _, text) in &answers {
        assert_eq!(*status, 200, "{text}");
        assert_eq!(text, first, "every answer is the one recorded");
    }
    let fresh = answers.iter().filter(|(_, r, _)| r.is_none()).count();
    assert_eq!(fresh, 1, "one request sent, the others replayed");
    assert_eq!(total(&app).await, 1);
    assert_eq!(app.list("user:default/other", "").await["totalCount"], 1);
});

db_test!(keys_expire_after_a_day_and_are_cleaned, |app| {
    let store = app.db.store();
    let (status, _, _) = send_keyed(&app.root, SERVICE_TOKEN, "daily", &to_user("one")).await;
    assert_eq!(status, 200);
    assert_eq!(
        store
            .delete_expired_idempotency_keys(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        0,
        "a fresh key stays"
    );
    let tomorrow = OffsetDateTime::now_utc() + Duration::hours(24) + Duration::seconds(1);
    assert_eq!(
        store
            .delete_expired_idempotency_keys(tomorrow)
            .await
            .unwrap(),
        1
    );
    let (status, replayed, _) =
        send_keyed(&app.root, SERVICE_TOKEN, "daily", &to_user("two")).await;
    assert_eq!((status, replayed), (200, None), "the key is free again");
    assert_eq!(total(&app).await, 2);
});

db_test!(
    the_sweeper_deletes_expired_keys_whatever_the_retention,
    config = "notifications:\n  retention: false\n",
    |app| {
        use diesel::RunQueryDsl;
        use notifications_backend::testing::db::DbConnection;

        let (status, _, _) = send_keyed(&app.root, SERVICE_TOKEN, "old", &to_user("one")).await;
        assert_eq!(status, 200);
        let store = app.db.store();
        let run = |sql: &'static str| {
            let store = store.clone();
            async move {
                store
                    .db()
                    .run(move |conn| {
                        Ok::<_, notifications_backend::testing::db::DbError>(match conn {
                            DbConnection::Sqlite(c) => diesel::sql_query(sql).execute(c)?,
                            DbConnection::Postgres(c) => diesel::sql_query(sql).execute(c)?,
                        })
                    })
                    .await
                    .unwrap()
            }
        };
        // Two days old ('2000-...' sorts before any recent SQLite timestamp text).
        let backdate = match &app.db {
            crate::support::TestDb::Sqlite { .. } => {
                "UPDATE idempotency_key SET created = '2000-01-01T00:00:00.000000Z'"
            }
            crate::support::TestDb::Postgres { .. } => {
                "UPDATE idempotency_key SET created = now() - interval '2 days'"
            }
        };
        assert_eq!(run(backdate).await, 1);
        let sweeper = notifications_backend::testing::cleaner::spawn_key_sweeper(store.clone());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // It sweeps at once on start; nothing is left to update once it did.
        while run("UPDATE idempotency_key SET response_status = 200").await != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the expired key stays"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        sweeper.abort();
    }
);
