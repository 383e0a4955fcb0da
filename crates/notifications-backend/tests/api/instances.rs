//! Several instances on one PostgreSQL, as a deployment scales out: under concurrent creates,
//! reads, read marks and webhook deliveries from every instance, no notification, delivery or
//! signal is lost or doubled, and the counts stay exact.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::signals::{Socket, next_frame, subscribed};
use crate::support::{self, Api, DbKind, SERVICE_TOKEN, TestDb};
use crate::webhook::{Hook, config};

const INSTANCES: usize = 3;
const SENDERS_PER_INSTANCE: usize = 2;
const SENDS_PER_SENDER: usize = 20;
const ALICE: &str = "user:default/alice";

/// Sends `SENDS_PER_SENDER` notifications to Alice through `api`; returns the ids acknowledged.
async fn send_all(api: Arc<Api>, instance: usize, sender: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..SENDS_PER_SENDER {
        let title = format!("instance {instance} sender {sender} send {n}");
        let r = api
            .post(
                "",
                SERVICE_TOKEN,
                &json!({"recipients": {"type": "entity", "entityRef": ALICE}, "payload": {"title": title}}),
            )
            .await;
        assert_eq!(r.status, 200, "{title}: {}", r.text);
        ids.push(r.body[0]["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Reads Alice's newest page through `api` and marks every other unread one read, until
/// `stop`; returns the ids it marked.
async fn read_and_mark(api: Arc<Api>, stop: Arc<std::sync::atomic::AtomicBool>) -> HashSet<String> {
    let token = support::user_token(ALICE);
    let mut marked = HashSet::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let r = api
            .get(
                "/notifications?limit=10&read=false&orderField=created,desc",
                &token,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let ids: Vec<String> = r.body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .step_by(2)
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        if !ids.is_empty() {
            let r = api
                .post(
                    "/notifications/update",
                    &token,
                    &json!({"ids": ids, "read": true}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            marked.extend(ids);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    marked
}

/// The new-notification signals a connection got until it stayed quiet, by notification id.
async fn new_notification_signals(socket: &mut Socket) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    while let Some(frame) = next_frame(socket, Duration::from_secs(2)).await {
        if frame["message"]["action"] == "new_notification" {
            let id = frame["message"]["notification_id"]
                .as_str()
                .unwrap()
                .to_owned();
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_sharing_postgres_lose_and_double_nothing() {
    let Some(db) = TestDb::create(DbKind::Postgres) else {
        return;
    };
    let hook = Hook::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..INSTANCES)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut processes = Vec::new();
    let mut apis = Vec::new();
    for dir in &dirs {
        let configs = support::config_files_with(dir.path(), &db.config_yaml(), &config(&hook, ""));
        let (process, api) = support::serve_binary(dir.path(), &configs, &[]).await;
        processes.push(process);
        apis.push(Arc::new(api));
    }
    let token = support::user_token(ALICE);
    let mut sockets = Vec::new();
    for api in &apis {
        sockets.push(subscribed(api, Some(&token)).await);
    }

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = apis
        .iter()
        .map(|api| tokio::spawn(read_and_mark(api.clone(), stop.clone())))
        .collect();
    let mut senders = Vec::new();
    for (instance, api) in apis.iter().enumerate() {
        for sender in 0..SENDERS_PER_INSTANCE {
            senders.push(tokio::spawn(send_all(api.clone(), instance, sender)));
        }
    }
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut marked = HashSet::new();
    for reader in readers {
        marked.extend(reader.await.unwrap());
    }
    let sent_set: HashSet<&String> = sent.iter().collect();
    assert_eq!(
        sent_set.len(),
        INSTANCES * SENDERS_PER_INSTANCE * SENDS_PER_SENDER
    );

    // Stored once each, and every instance reads the same inbox with exact counts.
    for api in &apis {
        let r = api.get("/notifications?limit=1000", &token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let stored: Vec<&str> = r.body["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap())
            .collect();
        assert_eq!(stored.len(), sent.len(), "stored once each");
        assert_eq!(
            stored.into_iter().collect::<HashSet<_>>(),
            sent.iter().map(String::as_str).collect::<HashSet<_>>()
        );
        let status = api.get("/status", &token).await.body;
        assert_eq!(status["read"], marked.len(), "{status}");
        assert_eq!(status["unread"], sent.len() - marked.len(), "{status}");
    }

    // Each connection, whatever instance it is on, got each new notification's signal once.
    for (i, socket) in sockets.iter_mut().enumerate() {
        let seen = new_notification_signals(socket).await;
        let missing: Vec<_> = sent.iter().filter(|id| !seen.contains_key(*id)).collect();
        assert!(
            missing.is_empty(),
            "instance {i} missed signals of {missing:?}"
        );
        let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(doubled.is_empty(), "instance {i} doubled {doubled:?}");
        assert_eq!(
            seen.len(),
            sent.len(),
            "instance {i}: only these notifications"
        );
    }

    // The webhook got each notification once, whichever instance delivered it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = hook.delivered();
        if delivered.len() >= sent.len() || Instant::now() > deadline {
            let mut by_notification: HashMap<String, usize> = HashMap::new();
            for requests in delivered.values() {
                for r in requests {
                    let id = r.json()["notification"]["id"].as_str().unwrap().to_owned();
                    *by_notification.entry(id).or_insert(0) += 1;
                }
            }
            for id in &sent {
                assert_eq!(by_notification.get(id), Some(&1), "{id} delivered once");
            }
            assert_eq!(by_notification.len(), sent.len());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(processes);
}
