//! Real-time signals: Backstage's WebSocket protocol (section 3.12 of the contract) with a real
//! WebSocket client, the Server-Sent Events stream with resume, and signals across two backend
//! processes on one PostgreSQL.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::on_both_databases;
use crate::support::{self, Api, DbKind, SERVICE_TOKEN, TestApp, USER};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";
/// Long enough for a signal that would come to have come.
const QUIET: Duration = Duration::from_millis(300);

/// Opens `/api/signals` on `api`, offering `token` as the subprotocol as Backstage's frontend does.
pub(crate) async fn open(
    api: &Api,
    token: Option<&str>,
) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
    let url = format!("{}/api/signals", api.root.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", token.parse().unwrap());
    }
    connect_async(request).await
}

/// Sends a command frame, then a ping: the server handles frames in order, so its pong means
/// the command took effect.
pub(crate) async fn command(socket: &mut Socket, action: &str, channel: &str) {
    socket
        .send(Message::text(
            json!({"action": action, "channel": channel}).to_string(),
        ))
        .await
        .unwrap();
    socket
        .send(Message::Ping(b"sync".to_vec().into()))
        .await
        .unwrap();
    loop {
        match next_message(socket, Duration::from_secs(10)).await {
            Some(Message::Pong(p)) if &p[..] == b"sync" => return,
            Some(Message::Text(t)) => panic!("unexpected frame before the pong: {t}"),
            Some(_) => {}
            None => panic!("no pong"),
        }
    }
}

pub(crate) async fn subscribed(api: &Api, token: Option<&str>) -> Socket {
    let (mut socket, _) = open(api, token).await.expect("connects");
    command(&mut socket, "subscribe", "notifications").await;
    socket
}

async fn next_message(socket: &mut Socket, wait: Duration) -> Option<Message> {
    match tokio::time::timeout(wait, socket.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        Ok(Some(Err(e))) => panic!("socket error: {e}"),
        Ok(None) | Err(_) => None,
    }
}

/// The next `{channel, message}` frame within `wait`, skipping control frames.
pub(crate) async fn next_frame(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_message(socket, left).await? {
            Message::Text(t) => return Some(serde_json::from_str(&t).expect("JSON frame")),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

pub(crate) async fn frame(socket: &mut Socket) -> Value {
    next_frame(socket, Duration::from_secs(10))
        .await
        .expect("a signal")
}

fn new_notification(id: &str) -> Value {
    json!({"channel": "notifications",
           "message": {"action": "new_notification", "notification_id": id}})
}

async fn the_token_is_echoed_and_each_user_gets_only_their_signals(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let alice_token = app.user_token(ALICE);
    let (mut alice, response) = open(&app, Some(&alice_token)).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        alice_token.as_str(),
        "the offered subprotocol is echoed"
    );
    command(&mut alice, "subscribe", "notifications").await;
    let mut bob = subscribed(&app, Some(&app.user_token(BOB))).await;

    let id = app.send_to(ALICE, json!({"title": "for alice"})).await;
    assert_eq!(frame(&mut alice).await, new_notification(&id));
    assert_eq!(
        next_frame(&mut bob, QUIET).await,
        None,
        "bob sees nothing of alice's"
    );

    let r = app
        .post(
            "/notifications/update",
            &alice_token,
            &json!({"ids": [id], "read": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        frame(&mut alice).await,
        json!({"channel": "notifications",
               "message": {"action": "notification_read", "notification_ids": [id]}})
    );
    let broadcast = app.broadcast(json!({"title": "all"})).await;
    assert_eq!(frame(&mut alice).await, new_notification(&broadcast));
    assert_eq!(frame(&mut bob).await, new_notification(&broadcast));
    assert_eq!(next_frame(&mut bob, QUIET).await, None);
}
on_both_databases!(the_token_is_echoed_and_each_user_gets_only_their_signals);

async fn a_guest_sees_broadcasts_only(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let (mut guest, response) = open(&app, None).await.expect("no token is the guest");
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    command(&mut guest, "subscribe", "notifications").await;
    app.send_to(USER, json!({"title": "mine"})).await;
    app.send_to("user:default/guest", json!({"title": "not a real user"}))
        .await;
    let id = app.broadcast(json!({"title": "all"})).await;
    // The guest's own address is honoured, as upstream: only broadcasts and the guest's.
    let first = frame(&mut guest).await;
    assert_eq!(first["message"]["action"], "new_notification");
    assert_eq!(frame(&mut guest).await, new_notification(&id));
    assert_eq!(next_frame(&mut guest, QUIET).await, None);

    // A service token acts as the guest too.
    let mut service = subscribed(&app, Some(SERVICE_TOKEN)).await;
    let id = app.broadcast(json!({"title": "again"})).await;
    assert_eq!(frame(&mut service).await, new_notification(&id));
}
on_both_databases!(a_guest_sees_broadcasts_only);

async fn an_invalid_token_is_refused(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    for token in ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"] {
        match open(&app, Some(token)).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("{token}: expected a 401, got {:?}", other.map(|r| r.1)),
        }
    }
    assert_eq!(app.signal_connections(), 0);
}
on_both_databases!(an_invalid_token_is_refused);

async fn unsubscribe_stops_a_channel(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let token = app.user_token(USER);
    let (mut socket, _) = open(&app, Some(&token)).await.unwrap();
    // Nothing before subscribing; malformed and binary frames are ignored.
    app.send_to(USER, json!({"title": "too early"})).await;
    socket.send(Message::text("{not json")).await.unwrap();
    socket
        .send(Message::Binary(b"\x00\x01".to_vec().into()))
        .await
        .unwrap();
    command(&mut socket, "subscribe", "other-channel").await;
    assert_eq!(next_frame(&mut socket, QUIET).await, None);

    command(&mut socket, "subscribe", "notifications").await;
    let id = app.send_to(USER, json!({"title": "now"})).await;
    assert_eq!(frame(&mut socket).await, new_notification(&id));
    command(&mut socket, "unsubscribe", "notifications").await;
    app.send_to(USER, json!({"title": "after"})).await;
    assert_eq!(next_frame(&mut socket, QUIET).await, None);
    command(&mut socket, "subscribe", "notifications").await;
    let id = app.send_to(USER, json!({"title": "again"})).await;
    assert_eq!(frame(&mut socket).await, new_notification(&id));
}
on_both_databases!(unsubscribe_stops_a_channel);

#[tokio::test]
async fn pings_are_answered_and_silent_clients_dropped() {
    let Some(app) = TestApp::start(
        DbKind::Sqlite,
        "notifications: {signals: {pingInterval: 200ms}, metrics: {enabled: true}}",
    )
    .await
    else {
        return;
    };
    let health = reqwest::get(format!("{}/api/signals/health", app.root))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    // A plain GET is not an upgrade: a 400 with the JSON error body.
    let plain = reqwest::get(format!("{}/api/signals", app.root))
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["name"], "InputError", "{body}");

    // A client that reads (and so answers pings, as tungstenite does) stays.
    let mut lively = subscribed(&app, Some(&app.user_token(USER))).await;
    let mut pinged = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        if let Some(Message::Ping(_)) = next_message(&mut lively, Duration::from_millis(100)).await
        {
            pinged = true;
        }
    }
    assert!(pinged, "the server pings");
    let id = app.send_to(USER, json!({"title": "still here"})).await;
    assert_eq!(frame(&mut lively).await, new_notification(&id));

    // One that never reads never answers: it is dropped after a ping interval or two.
    let _silent = subscribed(&app, Some(&app.user_token(USER))).await;
    assert_eq!(app.signal_connections(), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.signal_connections() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent client stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Connections are counted by transport (the recorder is the process's, shared by tests).
    let metrics = reqwest::get(format!("{}/metrics", app.root))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("notifications_signal_connections{transport=\"websocket\"}"),
        "{metrics}"
    );
    drop(lively);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.signal_connections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed client stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A graceful stop does not wait for live connections to leave by themselves (actix would wait
/// 30 s): WebSocket clients are told to reconnect (1012), event streams end.
#[tokio::test]
async fn a_graceful_stop_closes_live_connections() {
    let Some(mut app) = TestApp::start(DbKind::Sqlite, "").await else {
        return;
    };
    let mut socket = subscribed(&app, Some(&app.user_token(USER))).await;
    let mut stream = EventStream::connect(&app, &app.user_token(USER), None).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop_backend_gracefully())
        .await
        .expect("the stop does not wait for the clients");
    let close = loop {
        match next_message(&mut socket, Duration::from_secs(5)).await {
            Some(Message::Close(frame)) => break frame,
            Some(_) => {}
            None => panic!("no close frame"),
        }
    };
    assert_eq!(u16::from(close.expect("a close code").code), 1012);
    assert_eq!(stream.next().await, None, "the event stream ended");
}

// The event stream.

/// An open `GET /notifications/stream`, read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

/// One parsed server-sent event (or comment).
#[derive(Debug, PartialEq)]
enum Sse {
    Event {
        id: Option<i64>,
        name: Option<String>,
        data: Value,
    },
    Comment(String),
}

impl EventStream {
    async fn open(api: &Api, token: &str, last_event_id: Option<i64>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .get(api.url("/stream"))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        request.send().await.unwrap()
    }

    async fn connect(api: &Api, token: &str, last_event_id: Option<i64>) -> Self {
        let response = Self::open(api, token, last_event_id).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut stream = Self {
            response,
            buffer: String::new(),
        };
        assert_eq!(stream.next().await, Some(Sse::Comment("connected".into())));
        stream
    }

    /// The next event or comment within 10 s (`None`: the stream ended or nothing came).
    async fn next(&mut self) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(parsed) = parse_block(&block) {
                    return Some(parsed);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let chunk = tokio::time::timeout(left, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                _ => return None,
            }
        }
    }

    /// The next event, skipping heartbeats.
    async fn event(&mut self) -> (i64, Value) {
        loop {
            match self.next().await.expect("an event") {
                Sse::Event {
                    id: Some(id),
                    name: None,
                    data,
                } => return (id, data),
                Sse::Comment(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// An event block; `None` for a block with only a `retry` field.
fn parse_block(block: &str) -> Option<Sse> {
    let (mut id, mut name, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(": ") {
            return Some(Sse::Comment(comment.to_owned()));
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = Some(v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(v).unwrap());
        }
    }
    data.map(|data| Sse::Event { id, name, data })
}

async fn the_event_stream_resumes_after_a_dropped_connection(kind: DbKind) {
    let Some(app) =
        TestApp::start(kind, "notifications: {signals: {heartbeatInterval: 200ms}}").await
    else {
        return;
    };
    let token = app.user_token(ALICE);
    let mut stream = EventStream::connect(&app, &token, None).await;
    let first = app.send_to(ALICE, json!({"title": "1"})).await;
    let (first_event, data) = stream.event().await;
    assert_eq!(data, new_notification(&first));
    assert_eq!(
        stream.next().await,
        Some(Sse::Comment("keepalive".into())),
        "heartbeat comments keep the stream alive"
    );
    drop(stream);

    // Missed while away: two of alice's, one of bob's, a broadcast.
    let second = app.send_to(ALICE, json!({"title": "2"})).await;
    app.send_to(BOB, json!({"title": "bob's"})).await;
    let third = app.broadcast(json!({"title": "3"})).await;
    let mut stream = EventStream::connect(&app, &token, Some(first_event)).await;
    let (second_event, data) = stream.event().await;
    assert_eq!(data, new_notification(&second));
    let (third_event, data) = stream.event().await;
    assert_eq!(data, new_notification(&third));
    assert!(first_event < second_event && second_event < third_event);
    let fourth = app.send_to(ALICE, json!({"title": "4"})).await;
    let (fourth_event, data) = stream.event().await;
    assert_eq!(data, new_notification(&fourth));
    assert!(fourth_event > third_event);

    // Resuming from the newest gives what comes next, after (at most) a repeat of the events of
    // the seconds before it, which may have been on their way out of order.
    drop(stream);
    let mut stream = EventStream::connect(&app, &token, Some(fourth_event)).await;
    let r = app
        .post(
            "/notifications/update",
            &token,
            &json!({"ids": [fourth], "read": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    loop {
        let (id, data) = stream.event().await;
        if id > fourth_event {
            assert_eq!(data["message"]["action"], "notification_unread");
            break;
        }
        assert!(
            [first_event, second_event, third_event].contains(&id),
            "{id}: {data}"
        );
    }
}
on_both_databases!(the_event_stream_resumes_after_a_dropped_connection);

async fn the_event_stream_is_for_users(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "").await else {
        return;
    };
    let r = EventStream::open(&app, SERVICE_TOKEN, None).await;
    assert_eq!(r.status(), 403);
    let r = reqwest::get(app.url("/stream")).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = EventStream::open(&app, &app.user_token(USER), None).await;
    assert_eq!(r.status(), 200);
    let r = reqwest::Client::new()
        .get(app.url("/stream"))
        .bearer_auth(app.user_token(USER))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{body}"
    );
    // The query is checked as any route's (and when the header is there, which wins), and an
    // empty header is no event id.
    for (query, header) in [
        ("?lastEventId=9223372036854775808", Some("1")),
        ("?lastEventId=1&other=x", None),
        ("?lastEventId=", None),
        ("", Some("")),
    ] {
        let mut request = reqwest::Client::new()
            .get(app.url(&format!("/stream{query}")))
            .bearer_auth(app.user_token(USER));
        if let Some(header) = header {
            request = request.header("Last-Event-ID", header);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 400, "{query} {header:?}");
    }
}
on_both_databases!(the_event_stream_is_for_users);

async fn a_resume_from_before_the_window_is_told_to_reload(kind: DbKind) {
    let Some(app) = TestApp::start(kind, "notifications: {signals: {replayWindow: 1s}}").await
    else {
        return;
    };
    let token = app.user_token(USER);
    let mut stream = EventStream::connect(&app, &token, None).await;
    app.send_to(USER, json!({"title": "old"})).await;
    let (old_event, _) = stream.event().await;
    app.send_to(USER, json!({"title": "pruned too"})).await;
    let (pruned_too, _) = stream.event().await;
    let newest = app
        .send_to(USER, json!({"title": "kept as the newest"}))
        .await;
    stream.event().await;
    drop(stream);
    // Pruning runs every second; after the window only the newest event is left. Waited for
    // rather than slept on: a busy machine may run it late.
    let store = app.db.store();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store
        .signal_event_created(pruned_too)
        .await
        .unwrap()
        .is_some()
    {
        assert!(std::time::Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept = app.send_to(USER, json!({"title": "kept"})).await;
    let mut stream = EventStream::connect(&app, &token, Some(old_event)).await;
    assert_eq!(
        stream.next().await,
        Some(Sse::Event {
            id: None,
            name: Some("reset".into()),
            data: json!({})
        })
    );
    let (_, data) = stream.event().await;
    assert_eq!(data, new_notification(&newest));
    let (_, data) = stream.event().await;
    assert_eq!(data, new_notification(&kept));
}
on_both_databases!(a_resume_from_before_the_window_is_told_to_reload);

// Two processes on one PostgreSQL.

/// Sends through `api` until it is accepted (the first requests after a restart may meet a
/// pooled connection that died).
async fn send_until_accepted(api: &Api, user: &str, title: &str) -> String {
    for _ in 0..20 {
        let r = api
            .post(
                "",
                SERVICE_TOKEN,
                &json!({"recipients": {"type": "entity", "entityRef": user}, "payload": {"title": title}}),
            )
            .await;
        if r.status == 200 {
            return r.body[0]["id"].as_str().unwrap().to_owned();
        }
        assert_eq!(r.status, 503, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never accepted")
}

/// On a PostgreSQL cluster of its own, which it restarts: the shared test cluster cannot be.
#[tokio::test]
async fn signals_cross_processes_and_survive_a_database_restart() {
    if std::env::var_os("NOTIFICATIONS_TEST_PG_URL").is_none() && !support::in_ci() {
        return;
    }
    // Blocking calls on the test's thread: the backends are other processes.
    let pg = xtask::pg::TempPostgres::start(false).expect("a PostgreSQL cluster for this test");
    let database = format!(
        "backend:\n  database:\n    client: pg\n    connection: 'postgres://postgres@127.0.0.1:{}/signals'\n",
        pg.port()
    );
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let start = |dir: &std::path::Path| {
        let base = support::config_files_with(dir, &database, "");
        let dir = dir.to_owned();
        async move { support::serve_binary(&dir, &base, &[]).await }
    };
    let (_a_process, a) = start(dirs[0].path()).await;
    let (_b_process, b) = start(dirs[1].path()).await;
    let token = support::user_token;
    let mut on_b = subscribed(&b, Some(&token(ALICE))).await;
    let mut bob_on_b = subscribed(&b, Some(&token(BOB))).await;
    let mut on_a = subscribed(&a, Some(&token(ALICE))).await;

    let id = send_until_accepted(&a, ALICE, "through a").await;
    assert_eq!(
        frame(&mut on_b).await,
        new_notification(&id),
        "relayed to b"
    );
    assert_eq!(frame(&mut on_a).await, new_notification(&id), "local to a");
    assert_eq!(next_frame(&mut bob_on_b, QUIET).await, None);

    // The database restarts: the listeners reconnect, and what was committed before they did
    // is caught up.
    pg.restart().expect("PostgreSQL restarts");
    let id = send_until_accepted(&a, ALICE, "after the restart").await;
    assert_eq!(frame(&mut on_b).await, new_notification(&id));
    assert_eq!(frame(&mut on_a).await, new_notification(&id));
    let id = send_until_accepted(&b, ALICE, "through b").await;
    assert_eq!(frame(&mut on_a).await, new_notification(&id));
    assert_eq!(frame(&mut on_b).await, new_notification(&id));
    assert_eq!(next_frame(&mut on_b, QUIET).await, None, "exactly once");
    assert_eq!(next_frame(&mut bob_on_b, QUIET).await, None);
}
