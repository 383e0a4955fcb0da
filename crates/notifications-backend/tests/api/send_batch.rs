//! PostgreSQL's send batcher: plain sends queued while its lanes are busy share one transaction,
//! each caller gets its own notifications and signals, and a send that fails fails alone.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use notifications_backend::testing::db::{Db, PgSession, PoolOptions, Target};
use notifications_backend::testing::store::{
    Committed, Recipient, SendContext, Store, StoredNotification,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::support::{DbKind, TestDb};

/// Sends that hold the lanes (at most this many lanes) while the others queue.
const OCCUPYING: usize = 4;

type Sent = JoinHandle<
    Result<Committed<Vec<StoredNotification>>, notifications_backend::testing::db::DbError>,
>;

fn send_to(store: &Store, user: &str) -> Sent {
    let (store, user) = (store.clone(), user.to_owned());
    tokio::spawn(async move {
        let send = SendContext {
            origin: "test".into(),
            created: OffsetDateTime::now_utc().into(),
            options: serde_json::Value::Null,
        };
        let payload = serde_json::from_value(json!({"title": format!("for {user}")})).unwrap();
        store
            .create_for_users(send, vec![Recipient::inbox_only(Some(user), payload)])
            .await
    })
}

/// Holds back every insert into `notification` until dropped or released.
struct Blocker(PgConnection);

impl Blocker {
    fn hold(url: &str) -> Self {
        let mut conn = PgConnection::establish(url).unwrap();
        conn.batch_execute("BEGIN; LOCK TABLE notification IN SHARE MODE")
            .unwrap();
        Self(conn)
    }

    fn release(mut self) {
        self.0.batch_execute("COMMIT").unwrap();
    }
}

/// Starts the occupying sends one by one (each lane takes one and waits on the lock), then the
/// `queued` ones, which wait in the queue; releases the lock once all of them are waiting.
async fn while_the_lanes_are_busy(
    url: &str,
    store: &Store,
    round: &str,
    queued: &[String],
) -> (Vec<Sent>, Vec<Sent>) {
    let blocker = Blocker::hold(url);
    let mut occupying = Vec::new();
    for i in 0..OCCUPYING {
        occupying.push(send_to(
            store,
            &format!("user:default/occupying-{round}{i}"),
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued: Vec<Sent> = queued.iter().map(|u| send_to(store, u)).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.release();
    (occupying, queued)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(url: &str, sql: &str) -> i64 {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_sends_share_a_transaction_and_fail_alone_postgres() {
    let Some(db) = TestDb::create(DbKind::Postgres) else {
        return;
    };
    let TestDb::Postgres { url, .. } = &db else {
        unreachable!()
    };
    let target = Target::Postgres {
        url: url.clone(),
        session: PgSession::default(),
    };
    let mut options = PoolOptions::for_target(&target);
    options.max_size = 8;
    let store = Store::new(Db::open(target, &options).unwrap());
    store.db().migrate().await.unwrap();

    // Round one: a send that breaks its batch (PostgreSQL refuses NUL in text) among good ones.
    let mut users: Vec<String> = (0..8).map(|i| format!("user:default/a{i}")).collect();
    users.insert(3, "user:default/bad\0".into());
    let (occupying, queued) = while_the_lanes_are_busy(url, &store, "a", &users).await;
    for sent in occupying {
        sent.await.unwrap().expect("the occupying sends are stored");
    }
    for (user, sent) in users.iter().zip(queued) {
        let result = sent.await.unwrap();
        if user.contains('\0') {
            assert!(result.is_err(), "the bad send fails");
        } else {
            let committed = result.unwrap_or_else(|e| panic!("{user} failed with its batch: {e}"));
            assert_eq!(committed.value.len(), 1);
        }
    }
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) AS n FROM notification WHERE user_ref LIKE 'user:default/a%'"
        ),
        8,
        "every good send stored once, the bad one not at all"
    );

    // Round two: good sends only, queued together, are one transaction; each caller gets its
    // own notification and its own signal.
    let users: Vec<String> = (0..10).map(|i| format!("user:default/b{i}")).collect();
    let (occupying, queued) = while_the_lanes_are_busy(url, &store, "b", &users).await;
    for sent in occupying {
        sent.await.unwrap().unwrap();
    }
    for (user, sent) in users.iter().zip(queued) {
        let committed = sent.await.unwrap().unwrap();
        let [stored] = &committed.value[..] else {
            panic!("one notification per send: {:?}", committed.value)
        };
        let n = &stored.notification;
        assert_eq!(n.user.as_deref(), Some(user.as_str()));
        assert!(!stored.updated_existing);
        let [signal] = &committed.signals[..] else {
            panic!("one signal per send: {:?}", committed.signals)
        };
        assert_eq!(signal.recipient.as_deref(), Some(user.as_str()));
        assert!(
            signal.message.contains(&n.id.to_string()),
            "{}",
            signal.message
        );
    }
    assert_eq!(
        count(
            url,
            "SELECT COUNT(DISTINCT xmin::text) AS n FROM notification \
             WHERE user_ref LIKE 'user:default/b%'"
        ),
        1,
        "the queued sends were written in one transaction"
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) AS n FROM signal_event WHERE recipient LIKE 'user:default/b%'"
        ),
        10
    );
}
