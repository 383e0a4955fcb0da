//! PostgreSQL crashing under load: requests fail fast with 503, readiness says so, the service
//! recovers as soon as the database is back, and nothing acknowledged is lost or doubled.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{self, Api, SERVICE_TOKEN, USER};

/// The service aims at one second (issue 13); the bound leaves room for a loaded CI machine
/// while still failing the 10 s waits this replaced.
const FAST: Duration = Duration::from_millis(1500);
const SENDERS: usize = 4;

/// One create, as a sender saw it.
struct Outcome {
    title: String,
    status: u16,
    body: serde_json::Value,
    started: Instant,
    ended: Instant,
}

async fn send_until_stopped(api: Arc<Api>, sender: usize, stop: Arc<AtomicBool>) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut n = 0;
    // Half the senders broadcast: those wait for no settings read before they queue for a
    // batch, so they meet the batcher itself while the database is down.
    let recipients = if sender % 2 == 1 {
        json!({"type": "broadcast"})
    } else {
        json!({"type": "entity", "entityRef": USER})
    };
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let title = format!("sender {sender} send {n}");
        let started = Instant::now();
        let r = api
            .post(
                "",
                SERVICE_TOKEN,
                &json!({"recipients": recipients, "payload": {"title": title}}),
            )
            .await;
        let ended = Instant::now();
        if r.status != 200 {
            // Do not spin while the database is down.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        outcomes.push(Outcome {
            title,
            status: r.status,
            body: r.body,
            started,
            ended,
        });
    }
    outcomes
}

/// On a PostgreSQL cluster of its own, which it crashes and starts again. Durable: a crash of a
/// cluster without fsync and synchronous commit may lose what it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_fails_fast_and_loses_nothing_acknowledged() {
    if std::env::var_os("NOTIFICATIONS_TEST_PG_URL").is_none() && !support::in_ci() {
        return;
    }
    let pg = xtask::pg::TempPostgres::start(true).expect("a PostgreSQL cluster for this test");
    let database = format!(
        "backend:\n  database:\n    client: pg\n    connection: 'postgres://postgres@127.0.0.1:{}/outage'\n",
        pg.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let configs = support::config_files_with(dir.path(), &database, "");
    let (_process, api) = support::serve_binary(dir.path(), &configs, &[]).await;
    let api = Arc::new(api);
    let user = support::user_token(USER);

    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| tokio::spawn(send_until_stopped(api.clone(), i, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    tokio::task::block_in_place(|| pg.crash()).expect("PostgreSQL stops");
    // From here on the server is gone (pg_ctl waited for it).
    let crashed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // While it is down: reads and readiness fail fast, liveness holds.
    let started = Instant::now();
    let r = api.get("/notifications?limit=5", &user).await;
    r.assert_error(503, "ServiceUnavailableError");
    assert!(started.elapsed() < FAST, "list: {:?}", started.elapsed());
    let started = Instant::now();
    let r = api
        .request(
            reqwest::Method::GET,
            "/.backstage/health/v1/readiness",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(
        started.elapsed() < FAST,
        "readiness: {:?}",
        started.elapsed()
    );
    let r = api
        .request(
            reqwest::Method::GET,
            "/.backstage/health/v1/liveness",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let down_until = Instant::now();

    tokio::task::block_in_place(|| pg.start_again()).expect("PostgreSQL starts again");
    let back = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for sender in senders {
        outcomes.extend(sender.await.unwrap());
    }

    // Every create that met the database down was a 503 with upstream's body, answered fast.
    let mut during = 0;
    for o in outcomes
        .iter()
        .filter(|o| o.started > crashed + Duration::from_millis(200) && o.ended < down_until)
    {
        during += 1;
        assert_eq!(o.status, 503, "{}: {}", o.title, o.body);
        assert_eq!(o.body["error"]["name"], "ServiceUnavailableError");
        let took = o.ended - o.started;
        assert!(
            took < FAST,
            "{} took {took:?} with the database down",
            o.title
        );
    }
    assert!(
        during >= SENDERS,
        "creates were tried while it was down: {during}"
    );
    let slowest = outcomes
        .iter()
        .filter(|o| o.status == 503)
        .map(|o| o.ended - o.started)
        .max();
    // Once it is back, creates succeed at once.
    let first = outcomes
        .iter()
        .filter(|o| o.status == 200 && o.ended > back)
        .map(|o| o.ended)
        .min()
        .expect("creates succeed again");
    eprintln!(
        "outage: {during} creates refused, slowest 503 {slowest:?}; first success {:?} after the database was back",
        first - back
    );
    assert!(
        first - back < FAST,
        "first success {:?} after the database was back",
        first - back
    );
    assert!(
        outcomes.iter().all(|o| matches!(o.status, 200 | 503)),
        "only successes and 503s: {:?}",
        outcomes
            .iter()
            .filter(|o| !matches!(o.status, 200 | 503))
            .map(|o| (o.status, &o.body))
            .collect::<Vec<_>>()
    );

    // Every acknowledged create is stored exactly once.
    let r = api.get("/notifications?limit=100000", &user).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut stored: HashMap<String, usize> = HashMap::new();
    for n in r.body["notifications"].as_array().unwrap() {
        *stored
            .entry(n["payload"]["title"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let mut acknowledged = 0;
    for o in outcomes.iter().filter(|o| o.status == 200) {
        acknowledged += 1;
        assert_eq!(stored.get(&o.title), Some(&1), "{} stored once", o.title);
    }
    assert!(stored.values().all(|&n| n == 1), "nothing doubled");
    assert!(acknowledged > SENDERS, "the load was real");
}
