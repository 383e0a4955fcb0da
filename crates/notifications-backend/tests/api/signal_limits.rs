//! What one client may hold of the signals registry: connections per address and per user
//! (both transports), and frames per WebSocket connection; and that a disconnect removes that
//! connection only.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::on_both_databases;
use crate::signals::{Socket, command, next_frame, open, subscribed};
use crate::support::{Api, DbKind, TestApp};

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";

/// The refusal of a WebSocket upgrade: its status and JSON error body.
async fn refused_upgrade(api: &Api, token: Option<&str>) -> (u16, Value) {
    match open(api, token).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let body = serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!("not a JSON body ({e}): {}", String::from_utf8_lossy(body))
            });
            (response.status().as_u16(), body)
        }
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.1)),
    }
}

fn assert_too_many(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["name"], "TooManyRequestsError", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(what),
        "{body}"
    );
    assert_eq!(body["response"]["statusCode"], 429, "{body}");
}

async fn wait_for_connections(app: &TestApp, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.signal_connections() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections, expected {n}",
            app.signal_connections()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_user_and_an_address_hold_at_most_their_caps(kind: DbKind) {
    let Some(app) = TestApp::start(
        kind,
        "notifications: {signals: {maxConnectionsPerIp: 4, maxConnectionsPerUser: 2}}",
    )
    .await
    else {
        return;
    };
    let alice = app.user_token(ALICE);
    let mut first = subscribed(&app, Some(&alice)).await;
    let mut second = subscribed(&app, Some(&alice)).await;
    // A third of alice's, over either transport, is one too many.
    let (status, body) = refused_upgrade(&app, Some(&alice)).await;
    assert_too_many(status, &body, "for this user");
    let r = reqwest::Client::new()
        .get(app.url("/stream"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_too_many(status, &r.json().await.unwrap(), "for this user");
    assert_eq!(app.signal_connections(), 2, "refusals are not registered");

    // Bob and an anonymous client fill the address (every test client is 127.0.0.1): the
    // anonymous guest counts by address only.
    let mut bob = subscribed(&app, Some(&app.user_token(BOB))).await;
    let mut guest = subscribed(&app, None).await;
    let (status, body) = refused_upgrade(&app, None).await;
    assert_too_many(status, &body, "from this address");
    let (status, body) = refused_upgrade(&app, Some(&app.user_token("user:default/carol"))).await;
    assert_too_many(status, &body, "from this address");

    // A disconnect frees exactly its place, and the others still get their signals.
    second.close(None).await.unwrap();
    wait_for_connections(&app, 3).await;
    let id = app.broadcast(json!({"title": "still here"})).await;
    for socket in [&mut first, &mut bob, &mut guest] {
        let frame = next_frame(socket, Duration::from_secs(10))
            .await
            .expect("a signal");
        assert_eq!(frame["message"]["notification_id"], id.as_str());
    }
    let mut again = subscribed(&app, Some(&alice)).await;
    let id = app.send_to(ALICE, json!({"title": "for alice"})).await;
    for socket in [&mut first, &mut again] {
        let frame = next_frame(socket, Duration::from_secs(10))
            .await
            .expect("a signal");
        assert_eq!(frame["message"]["notification_id"], id.as_str());
    }
    assert_eq!(next_frame(&mut bob, Duration::from_millis(300)).await, None);
}
on_both_databases!(a_user_and_an_address_hold_at_most_their_caps);

/// The next close frame's code within 5 s, skipping other frames.
async fn close_code(socket: &mut Socket) -> u16 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return u16::from(frame.expect("a close code").code);
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_floods_frames_is_closed() {
    let Some(app) = TestApp::start(
        DbKind::Sqlite,
        "notifications: {signals: {maxFramesPerSecond: 5}}",
    )
    .await
    else {
        return;
    };
    // Within the burst (twice the rate): a client subscribing as Backstage's does is served.
    let (mut polite, _) = open(&app, None).await.unwrap();
    for channel in ["a", "b", "c", "d"] {
        command(&mut polite, "subscribe", channel).await;
    }
    command(&mut polite, "subscribe", "notifications").await;

    let (mut flood, _) = open(&app, None).await.unwrap();
    for i in 0..50 {
        let frame = json!({"action": "subscribe", "channel": format!("c{i}")}).to_string();
        // The server may close (and the send fail) before the last ones.
        if flood.send(Message::text(frame)).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut flood).await, 1008, "policy violation");
    wait_for_connections(&app, 1).await;
    let id = app.broadcast(json!({"title": "for the polite one"})).await;
    let frame = next_frame(&mut polite, Duration::from_secs(10))
        .await
        .expect("a signal");
    assert_eq!(frame["message"]["notification_id"], id.as_str());
}
