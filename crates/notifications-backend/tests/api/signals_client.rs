//! The signals subscriber of `notifications-node` against a real backend: each user's signals,
//! reconnecting (and subscribing again) after the connection drops, refused tokens.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use notifications_common::NotificationSignal;
use notifications_node::{
    RetryPolicy, SignalEvent, SignalsError, SignalsSubscriber, TokenError, TokenProvider,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::db_test;
use crate::support::{SERVICE_TOKEN, TestApp};

const ALICE: &str = "user:default/alice";
const BOB: &str = "user:default/bob";
/// Long enough for a signal that would come to have come.
const QUIET: Duration = Duration::from_millis(300);
/// Long enough for an event that must come.
const SOON: Duration = Duration::from_secs(10);

/// Quick reconnects, so that the tests do not wait.
fn quick(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

async fn subscribe(root: &str, token: &str) -> SignalsSubscriber {
    SignalsSubscriber::builder(root)
        .token(token)
        .reconnect(quick(u32::MAX))
        .connect()
        .await
        .expect("subscribes")
}

/// The next event within [`SOON`], which must come.
async fn next(signals: &mut SignalsSubscriber) -> SignalEvent {
    tokio::time::timeout(SOON, signals.next())
        .await
        .expect("an event in time")
        .expect("the subscription goes on")
        .expect("no error")
}

/// Asserts that nothing comes within [`QUIET`].
async fn nothing(signals: &mut SignalsSubscriber) {
    if let Ok(event) = tokio::time::timeout(QUIET, signals.next()).await {
        panic!("unexpected {event:?}");
    }
}

fn new(id: &str) -> SignalEvent {
    SignalEvent::Notification(NotificationSignal::NewNotification {
        notification_id: id.into(),
    })
}

async fn mark(app: &TestApp, user: &str, id: &str, read: bool) {
    let r = app
        .post(
            "/notifications/update",
            &app.user_token(user),
            &json!({"ids": [id], "read": read}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

db_test!(each_user_gets_their_signals_and_broadcasts, |app| {
    let mut alice = subscribe(&app.root, &app.user_token(ALICE)).await;
    // The notifications plugin's URL works as the base URL too.
    let mut bob = subscribe(
        &format!("{}/api/notifications", app.root),
        &app.user_token(BOB),
    )
    .await;

    let for_bob = app.send_to(BOB, json!({"title": "for bob"})).await;
    let for_alice = app.send_to(ALICE, json!({"title": "for alice"})).await;
    assert_eq!(next(&mut alice).await, new(&for_alice), "not bob's");
    assert_eq!(next(&mut bob).await, new(&for_bob));

    mark(&app, ALICE, &for_alice, true).await;
    assert_eq!(
        next(&mut alice).await,
        SignalEvent::Notification(NotificationSignal::NotificationRead {
            notification_ids: vec![for_alice.clone()]
        })
    );
    mark(&app, ALICE, &for_alice, false).await;
    assert_eq!(
        next(&mut alice).await,
        SignalEvent::Notification(NotificationSignal::NotificationUnread {
            notification_ids: vec![for_alice.clone()]
        })
    );

    let all = app.broadcast(json!({"title": "all"})).await;
    assert_eq!(next(&mut alice).await, new(&all));
    assert_eq!(next(&mut bob).await, new(&all));
    nothing(&mut alice).await;
    nothing(&mut bob).await;
});

db_test!(without_a_token_only_broadcasts_come_as_a_stream, |app| {
    let guest = SignalsSubscriber::builder(&app.root)
        .connect()
        .await
        .expect("no token is the guest");
    let mut guest = Box::pin(guest.into_stream());
    app.send_to(ALICE, json!({"title": "alice's"})).await;
    let all = app.broadcast(json!({"title": "all"})).await;
    let event = tokio::time::timeout(SOON, guest.next()).await.unwrap();
    assert_eq!(event.unwrap().unwrap(), new(&all));
});

db_test!(a_refused_token_is_an_error_not_a_retry, |app| {
    for token in ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"] {
        let result = SignalsSubscriber::builder(&app.root)
            .token(token)
            .connect()
            .await;
        match result {
            Err(e @ SignalsError::Unauthorized) => {
                assert_eq!(e.code(), "unauthorized");
                assert!(!e.is_transient());
            }
            other => panic!("{token}: expected Unauthorized, got {other:?}"),
        }
    }
    // A backend that is not there is another error.
    let nobody = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", nobody.local_addr().unwrap());
    drop(nobody);
    let result = SignalsSubscriber::builder(&root)
        .token(SERVICE_TOKEN)
        .connect()
        .await;
    assert!(
        matches!(result, Err(SignalsError::Unreachable(_))),
        "{result:?}"
    );
    assert_eq!(app.signal_connections(), 0);
});

db_test!(reconnects_and_subscribes_again_after_a_drop, |app| {
    let proxy = CutProxy::start(&app.root).await;
    let tokens = Tokens::new(app.user_token(ALICE), usize::MAX);
    let mut alice = SignalsSubscriber::builder(&proxy.root)
        .token_provider(tokens.clone())
        .reconnect(quick(u32::MAX))
        .connect()
        .await
        .unwrap();
    let first = app.send_to(ALICE, json!({"title": "first"})).await;
    assert_eq!(next(&mut alice).await, new(&first));

    // The backend side drops, and refuses connections for a while: the subscriber retries
    // with backoff until it can connect.
    proxy.refuse(true);
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = proxy.accepted();
    assert!(refused >= 2, "retried while refused: {refused} connections");
    proxy.refuse(false);
    assert_eq!(next(&mut alice).await, SignalEvent::Reconnected);
    assert!(tokens.calls() >= 2, "a token for each connection");

    // Subscribed again: signals come as before.
    let second = app.send_to(ALICE, json!({"title": "second"})).await;
    assert_eq!(next(&mut alice).await, new(&second));
    mark(&app, ALICE, &second, true).await;
    assert_eq!(
        next(&mut alice).await,
        SignalEvent::Notification(NotificationSignal::NotificationRead {
            notification_ids: vec![second]
        })
    );

    // Once more, without refusals.
    proxy.cut();
    assert_eq!(next(&mut alice).await, SignalEvent::Reconnected);
    let third = app.send_to(ALICE, json!({"title": "third"})).await;
    assert_eq!(next(&mut alice).await, new(&third));
    nothing(&mut alice).await;

    // Dropping the subscriber closes its connection, for good.
    let accepted = proxy.accepted();
    drop(alice);
    let deadline = tokio::time::Instant::now() + SOON;
    while app.signal_connections() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "still connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(proxy.accepted(), accepted, "no reconnect after the drop");
});

db_test!(
    a_token_refused_at_a_reconnect_ends_the_subscription,
    |app| {
        let proxy = CutProxy::start(&app.root).await;
        // The first token is alice's; the refreshed ones are refused.
        let tokens = Tokens::new(app.user_token(ALICE), 1);
        let mut alice = SignalsSubscriber::builder(&proxy.root)
            .token_provider(tokens.clone())
            .reconnect(quick(u32::MAX))
            .connect()
            .await
            .unwrap();
        proxy.cut();
        let end = tokio::time::timeout(SOON, alice.next()).await.unwrap();
        assert!(
            matches!(end, Some(Err(SignalsError::Unauthorized))),
            "{end:?}"
        );
        assert!(alice.next().await.is_none(), "the subscription ended");
        assert_eq!(tokens.calls(), 2, "not retried with a refused token");
    }
);

db_test!(reconnecting_gives_up_after_the_policys_retries, |app| {
    let proxy = CutProxy::start(&app.root).await;
    let mut alice = SignalsSubscriber::builder(&proxy.root)
        .token(app.user_token(ALICE))
        .reconnect(quick(2))
        .connect()
        .await
        .unwrap();
    proxy.refuse(true);
    proxy.cut();
    let end = tokio::time::timeout(SOON, alice.next()).await.unwrap();
    assert!(
        matches!(end, Some(Err(SignalsError::Unreachable(_)))),
        "{end:?}"
    );
    assert!(alice.next().await.is_none());
    // The first connection, then the first reconnect and its two retries.
    assert_eq!(proxy.accepted(), 1 + 3);
});

/// A user token at first, then a refused one after `good_for` calls; counts the calls.
#[derive(Clone)]
struct Tokens {
    good: String,
    good_for: usize,
    calls: Arc<AtomicUsize>,
}

impl Tokens {
    fn new(good: String, good_for: usize) -> Self {
        Self {
            good,
            good_for,
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenProvider for Tokens {
    async fn token(&self) -> Result<String, TokenError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(if call < self.good_for {
            self.good.clone()
        } else {
            "not-a-token".into()
        })
    }
}

/// A TCP proxy in front of a backend whose connections can be cut, and which can refuse new
/// ones (accepted, then closed at once), as a restarting backend does.
struct CutProxy {
    /// `http://127.0.0.1:<port>`
    root: String,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
    refusing: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CutProxy {
    async fn start(backend_root: &str) -> Self {
        let backend = backend_root
            .strip_prefix("http://")
            .expect("an http root")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let root = format!("http://{}", listener.local_addr().unwrap());
        let live = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (live, refusing, accepted) = (live.clone(), refusing.clone(), accepted.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    if refusing.load(Ordering::SeqCst) {
                        continue;
                    }
                    let backend = backend.clone();
                    let pipe = tokio::spawn(async move {
                        let Ok(mut upstream) = TcpStream::connect(&backend).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                    live.lock().unwrap().push(pipe);
                }
            }
        });
        Self {
            root,
            live,
            refusing,
            accepted,
            task,
        }
    }

    /// Closes every open connection.
    fn cut(&self) {
        for pipe in self.live.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Connections accepted so far (refused ones included).
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
