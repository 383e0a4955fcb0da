//! Crash safety (issue 14, item 5): the real binary, killed with SIGKILL again and again under a
//! mixed load and restarted on the same database, with e-mail going to a real SMTP server.
//!
//! Senders send again what got no answer, with the same `Idempotency-Key` when they had one (the
//! contract that makes a retry safe); an unkeyed create that got no answer is unknown: stored
//! once or not at all. Once the last restart's outbox has drained: every acknowledged send is
//! stored once, with its last content; every acknowledged mark is kept; the counts match the
//! rows (that is checked after each restart too); and every mail arrived as one message (one
//! `Message-ID`), in more than one copy only as the delivery queue's documented "at least once"
//! allows (see [`in_doubt`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notifications_backend::testing::store::{DeliveryRow, DeliveryStatus, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::process::Child;

use notifications_backend::testing::processors::email::CHANNEL;

use crate::email::{self, Sink, free_port};
use crate::on_both_databases;
use crate::support::{self, Api, DbKind, SERVICE_TOKEN, TestDb, user_token};

/// Every random choice (each sender's requests, when each kill comes) follows from it.
const SEED: u64 = 0x14_05;
const ROUNDS: usize = 5;
const SENDERS: usize = 6;
/// Scopes each sender re-sends.
const SCOPES: usize = 2;
/// The recipients and their addresses in the e-mail catalog (carol has none: no mail).
const USERS: [(&str, Option<&str>); 4] = [
    ("user:default/alice", Some("alice@example.com")),
    ("user:default/bob", Some("Bob@Example.com")),
    ("user:default/carol", None),
    ("user:default/dave", Some("dave@other.org")),
];
/// Where broadcasts are mailed: two addresses, so that each mail is a follow-up delivery.
const BROADCAST_TO: [&str; 2] = ["ops@example.com", "oncall@example.com"];

/// A claimed delivery: its row and the end of its lease.
type DeliveryLease = (uuid::Uuid, Option<time::OffsetDateTime>);

/// A mail as the sink identifies it: (To, Subject). Every send has a title of its own.
type Mail = (String, String);

#[derive(Clone, Debug)]
enum Op {
    /// To `users` (indexes in [`USERS`]), or a broadcast when there are none.
    Create {
        title: String,
        users: Vec<usize>,
        key: Option<String>,
    },
    /// The next version of one of the sender's scopes, always with a key.
    Resend { scope: usize, version: usize },
    /// `read` or `saved`, as the user.
    Mark {
        user: usize,
        id: String,
        field: &'static str,
    },
}

/// A create answered 200.
struct Created {
    title: String,
    users: Vec<usize>,
    /// The notification of each recipient ([`recipients`] order).
    ids: Vec<String>,
}

/// A notification re-sent in place, by one sender only, so that its versions are in order.
struct Scope {
    user: usize,
    id: Option<String>,
    /// The titles of the acknowledged versions.
    versions: Vec<String>,
}

/// What a sender did and what it was told.
struct Sender {
    n: usize,
    rng: StdRng,
    ops: usize,
    scopes: Vec<Scope>,
    /// A keyed request that got no answer: sent again, first, until it gets one.
    unanswered: Option<Op>,
    created: Vec<Created>,
    /// Unkeyed creates that got no answer.
    unknown: Vec<(String, Vec<usize>)>,
    marks: Vec<(usize, String, &'static str)>,
    unknown_marks: Vec<(usize, String, &'static str)>,
    retries: usize,
    replayed: usize,
    /// Answers other than 200 (none is expected).
    errors: Vec<String>,
}

struct Answer {
    status: u16,
    replayed: bool,
    body: Value,
}

/// `None` when no whole answer came (the server died): the request may or may not have had its
/// effect.
async fn post(
    http: &reqwest::Client,
    url: String,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> Option<Answer> {
    let mut request = http.post(url).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let res = request.send().await.ok()?;
    let status = res.status().as_u16();
    let replayed = res.headers().contains_key("Idempotent-Replayed");
    let body = res.bytes().await.ok()?;
    Some(Answer {
        status,
        replayed,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// The users who get a send to `users`: all of them for a broadcast.
fn recipients(users: &[usize]) -> Vec<usize> {
    if users.is_empty() {
        (0..USERS.len()).collect()
    } else {
        users.to_vec()
    }
}

/// The mails a stored send to `users` titled `title` makes.
fn mails_of(title: &str, users: &[usize]) -> Vec<Mail> {
    let to: Vec<&str> = if users.is_empty() {
        BROADCAST_TO.to_vec()
    } else {
        users.iter().filter_map(|&u| USERS[u].1).collect()
    };
    to.into_iter()
        .map(|a| (a.to_owned(), title.to_owned()))
        .collect()
}

impl Sender {
    fn new(n: usize) -> Self {
        Self {
            n,
            rng: StdRng::seed_from_u64(SEED + n as u64),
            ops: 0,
            scopes: (0..SCOPES)
                .map(|j| Scope {
                    user: (n + j) % USERS.len(),
                    id: None,
                    versions: Vec::new(),
                })
                .collect(),
            unanswered: None,
            created: Vec::new(),
            unknown: Vec::new(),
            marks: Vec::new(),
            unknown_marks: Vec::new(),
            retries: 0,
            replayed: 0,
            errors: Vec::new(),
        }
    }

    fn scope_name(&self, scope: usize) -> String {
        format!("s{}-{scope}", self.n)
    }

    fn version_title(&self, scope: usize, version: usize) -> String {
        format!("{}-v{version}", self.scope_name(scope))
    }

    fn next_op(&mut self) -> Op {
        self.ops += 1;
        let title = format!("c{}-{}", self.n, self.ops);
        let key = self.rng.random_bool(0.5).then(|| title.clone());
        let user = self.rng.random_range(0..USERS.len());
        let users = match self.rng.random_range(0..100) {
            0..20 if !self.created.is_empty() => {
                let created = &self.created[self.rng.random_range(0..self.created.len())];
                let i = self.rng.random_range(0..created.ids.len());
                return Op::Mark {
                    user: recipients(&created.users)[i],
                    id: created.ids[i].clone(),
                    field: if self.rng.random_bool(0.5) {
                        "read"
                    } else {
                        "saved"
                    },
                };
            }
            20..40 => {
                let scope = self.rng.random_range(0..SCOPES);
                return Op::Resend {
                    scope,
                    version: self.scopes[scope].versions.len() + 1,
                };
            }
            40..50 => vec![],
            50..60 => vec![user, (user + 1) % USERS.len()],
            _ => vec![user],
        };
        Op::Create { title, users, key }
    }

    async fn perform(&self, http: &reqwest::Client, api: &Api, op: &Op) -> Option<Answer> {
        match op {
            Op::Create { title, users, key } => {
                let recipients = if users.is_empty() {
                    json!({"type": "broadcast"})
                } else {
                    let refs: Vec<&str> = users.iter().map(|&u| USERS[u].0).collect();
                    json!({"type": "entity", "entityRef": refs})
                };
                let body = json!({"recipients": recipients, "payload": {"title": title}});
                let url = api.url("/notifications");
                post(http, url, SERVICE_TOKEN, key.as_deref(), &body).await
            }
            Op::Resend { scope, version } => {
                let title = self.version_title(*scope, *version);
                let body = json!({
                    "recipients": {"type": "entity", "entityRef": USERS[self.scopes[*scope].user].0},
                    "payload": {"title": title, "scope": self.scope_name(*scope)},
                });
                let url = api.url("/notifications");
                post(http, url, SERVICE_TOKEN, Some(&title), &body).await
            }
            Op::Mark { user, id, field } => {
                let mut body = json!({"ids": [id]});
                body[*field] = json!(true);
                let token = user_token(USERS[*user].0);
                post(http, api.url("/notifications/update"), &token, None, &body).await
            }
        }
    }

    /// Takes note of an answer; false when there was none.
    fn record(&mut self, op: Op, answer: Option<Answer>, retry: bool) -> bool {
        let Some(answer) = answer else {
            match op {
                Op::Create {
                    title,
                    users,
                    key: None,
                } => self.unknown.push((title, users)),
                Op::Mark { user, id, field } => self.unknown_marks.push((user, id, field)),
                keyed => self.unanswered = Some(keyed),
            }
            return false;
        };
        if answer.status != 200 {
            self.errors
                .push(format!("{op:?}: {} {}", answer.status, answer.body));
            return true;
        }
        if retry {
            self.retries += 1;
            self.replayed += usize::from(answer.replayed);
        }
        let ids: Vec<(Value, String)> = answer
            .body
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| (n["user"].clone(), n["id"].as_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        match op {
            Op::Create { title, users, .. } => {
                // A broadcast is one notification, the same for every user.
                let ids: Vec<String> = match (&users[..], &ids[..]) {
                    ([], [(_, id)]) => vec![id.clone(); USERS.len()],
                    _ => users
                        .iter()
                        .filter_map(|&u| {
                            ids.iter()
                                .find(|(user, _)| *user == USERS[u].0)
                                .map(|(_, id)| id.clone())
                        })
                        .collect(),
                };
                if ids.len() != recipients(&users).len() {
                    self.errors
                        .push(format!("{title}: answered {}", answer.body));
                }
                self.created.push(Created { title, users, ids });
            }
            Op::Resend { scope, version } => {
                let title = self.version_title(scope, version);
                let scope = &mut self.scopes[scope];
                match (&ids[..], &scope.id) {
                    ([(_, id)], None) => scope.id = Some(id.clone()),
                    ([(_, id)], Some(first)) if id == first => {}
                    _ => self.errors.push(format!(
                        "{title}: answered {} for {:?}",
                        answer.body, scope.id
                    )),
                }
                scope.versions.push(title);
            }
            Op::Mark { user, id, field } => self.marks.push((user, id, field)),
        }
        true
    }

    /// Sends until the server stops answering, and keeps what must be sent again; with `finish`,
    /// sends only that.
    async fn run(mut self, http: reqwest::Client, api: Arc<Api>, finish: bool) -> Self {
        loop {
            let (op, retry) = match self.unanswered.take() {
                Some(op) => (op, true),
                None if finish => return self,
                None => (self.next_op(), false),
            };
            let answer = self.perform(&http, &api, &op).await;
            if !self.record(op, answer, retry) {
                return self;
            }
        }
    }
}

/// Starts the binary on the test's data and database, and checks that every user's counts match
/// their rows.
async fn start(
    dir: &tempfile::TempDir,
    configs: &[std::path::PathBuf],
) -> (Child, Arc<Api>, Vec<Vec<Value>>) {
    let (child, api) = support::serve_binary(dir.path(), configs, &[]).await;
    let mut inboxes = Vec::new();
    for (user, _) in USERS {
        inboxes.push(inbox(&api, user).await);
    }
    (child, Arc::new(api), inboxes)
}

/// `user`'s whole inbox, once its counts (kept apart from the rows, by triggers) are checked
/// against it: the list's total, `/status`, and the unread list's total.
async fn inbox(api: &Api, user: &str) -> Vec<Value> {
    let token = user_token(user);
    let list = api.get("/notifications?limit=100000", &token).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let rows = list.body["notifications"].as_array().unwrap().clone();
    let unread = rows.iter().filter(|n| n["read"].is_null()).count();
    assert_eq!(
        list.body["totalCount"],
        rows.len(),
        "{user}: the list's total"
    );
    let status = api.get("/status", &token).await;
    assert_eq!(
        status.body,
        json!({"unread": unread, "read": rows.len() - unread}),
        "{user}: /status"
    );
    let unread_list = api.get("/notifications?read=false&limit=1", &token).await;
    assert_eq!(
        unread_list.body["totalCount"], unread,
        "{user}: the unread list's total"
    );
    rows
}

/// The mails that may arrive once more because of a kill: those of the e-mail deliveries
/// claimed and not finished when the process died. Deliveries are at least once (README,
/// "Processors and delivery"; `delivery.rs`): an attempt's outcome commits after the SMTP server
/// accepted the mail, so a kill between the two leaves the row claimed, and it is made again when
/// its lease runs out. No protocol can close that gap; what the service promises is that the copy
/// is the same message: the same `Message-ID`, which the test checks, so a receiver keeps one. A
/// broadcast's delivery made again queues its per-address follow-ups again, so each of its mails
/// may repeat, again as the same message.
/// Keyed by (row, lease): a row still under the lease of an earlier kill is the same attempt.
async fn in_doubt(store: &Store) -> Vec<(DeliveryLease, Vec<Mail>)> {
    let pending = store
        .deliveries(Some(DeliveryStatus::Pending), None, 1_000_000)
        .await;
    pending
        .unwrap()
        .iter()
        .filter(|r| r.channel == CHANNEL && r.locked_until.is_some())
        .map(|r| ((r.id, r.locked_until), mails_of_delivery(r)))
        .collect()
}

fn mails_of_delivery(row: &DeliveryRow) -> Vec<Mail> {
    let title = row.notification["payload"]["title"].as_str().unwrap();
    match row.user_ref.as_deref() {
        Some(user) => match user.strip_prefix("mailto:") {
            Some(address) => vec![(address.to_owned(), title.to_owned())],
            None => {
                let u = USERS.iter().position(|(r, _)| *r == user).unwrap();
                mails_of(title, &[u])
            }
        },
        None => mails_of(title, &[]),
    }
}

async fn killed_again_and_again_under_load(kind: DbKind) {
    let Some(db) = TestDb::create(kind) else {
        return;
    };
    let began = Instant::now();
    let port = free_port();
    let sink = Sink::start(port, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let broadcasts = format!(
        "broadcastConfig: {{receiver: config, receiverEmails: [{}]}}",
        BROADCAST_TO.join(", ")
    );
    // A short attempt timeout keeps the lease a kill leaves (2 × timeout + 1 s) short.
    let config = email::config(port, &broadcasts)
        .replace("maxAttempts: 30}", "maxAttempts: 30, timeout: 2s}");
    let configs = support::config_files(&db, dir.path(), &config);
    let store = db.store();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut senders: Vec<Sender> = (0..SENDERS).map(Sender::new).collect();
    let mut doubts = HashMap::new();

    for _ in 0..ROUNDS {
        let (mut child, api, _) = start(&dir, &configs).await;
        let tasks: Vec<_> = senders
            .drain(..)
            .map(|s| tokio::spawn(s.run(http.clone(), api.clone(), false)))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        child.kill().await.expect("SIGKILL");
        for task in tasks {
            senders.push(task.await.unwrap());
        }
        doubts.extend(in_doubt(&store).await);
    }

    // The last restart: what got no answer is sent again, then the outbox drains.
    let (_child, api, _) = start(&dir, &configs).await;
    let tasks: Vec<_> = senders
        .drain(..)
        .map(|s| tokio::spawn(s.run(http.clone(), api.clone(), true)))
        .collect();
    for task in tasks {
        senders.push(task.await.unwrap());
    }
    // The mails queued are made at the SMTP sink's pace (about 100 a second): a quiet machine
    // queues a few thousand in the rounds.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending = store
            .deliveries(Some(DeliveryStatus::Pending), None, 5)
            .await
            .unwrap();
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let shown: Vec<_> = pending
                .iter()
                .map(|r| (&r.user_ref, r.attempts, r.locked_until, &r.last_error))
                .collect();
            panic!("the outbox never drained: {shown:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut inboxes = Vec::new();
    for (user, _) in USERS {
        inboxes.push(inbox(&api, user).await);
    }

    let mut problems = Vec::new();
    let failed = store
        .deliveries(Some(DeliveryStatus::Failed), None, 100)
        .await
        .unwrap();
    for row in failed {
        problems.push(format!("delivery failed: {row:?}"));
    }
    // Per user: the rows by title, and what explains a row, a read or a saved mark.
    let by_title: Vec<HashMap<&str, Vec<&Value>>> = inboxes
        .iter()
        .map(|rows| {
            let mut titles: HashMap<&str, Vec<&Value>> = HashMap::new();
            for row in rows {
                titles
                    .entry(row["payload"]["title"].as_str().unwrap())
                    .or_default()
                    .push(row);
            }
            titles
        })
        .collect();
    let mut explained: Vec<HashSet<String>> = vec![HashSet::new(); USERS.len()];
    let mut may_be_marked = HashSet::new();
    let mut expected_mails: BTreeMap<Mail, usize> = BTreeMap::new();
    let stored = |u: usize, title: &str| by_title[u].get(title).cloned().unwrap_or_default();
    let (mut acknowledged, mut unknown_stored, mut unknown_lost) = (0, 0, 0);
    for sender in &senders {
        if let Some(op) = &sender.unanswered {
            problems.push(format!("never answered after the last restart: {op:?}"));
        }
        problems.extend(sender.errors.iter().cloned());
        for created in &sender.created {
            acknowledged += 1;
            for (u, id) in recipients(&created.users).into_iter().zip(&created.ids) {
                explained[u].insert(created.title.clone());
                let rows = stored(u, &created.title);
                if rows.len() != 1 || rows[0]["id"] != id.as_str() {
                    problems.push(format!(
                        "acknowledged {} ({id}) for {}: stored as {rows:?}",
                        created.title, USERS[u].0
                    ));
                }
            }
            for mail in mails_of(&created.title, &created.users) {
                expected_mails.insert(mail, 1);
            }
        }
        for (title, users) in &sender.unknown {
            let copies: Vec<usize> = recipients(users)
                .into_iter()
                .map(|u| {
                    explained[u].insert(title.clone());
                    stored(u, title).len()
                })
                .collect();
            // One transaction stores a send for all its recipients, or for none.
            match copies.iter().max() {
                Some(0) => unknown_lost += 1,
                Some(1) if copies.iter().all(|&c| c == 1) => {
                    unknown_stored += 1;
                    for mail in mails_of(title, users) {
                        expected_mails.insert(mail, 1);
                    }
                }
                _ => problems.push(format!("unanswered {title} stored {copies:?} times")),
            }
        }
        for scope in &sender.scopes {
            let Some(last) = scope.versions.last() else {
                continue;
            };
            let rows: Vec<&Value> = scope
                .versions
                .iter()
                .flat_map(|title| stored(scope.user, title))
                .collect();
            if rows.len() != 1
                || Some(rows[0]["id"].as_str().unwrap()) != scope.id.as_deref()
                || rows[0]["payload"]["title"] != last.as_str()
            {
                problems.push(format!(
                    "scope re-sent as {:?} (last {last}, id {:?}): stored as {rows:?}",
                    scope.versions, scope.id
                ));
            }
            for title in &scope.versions {
                explained[scope.user].insert(title.clone());
                // Each version is a delivery of its own, with the content of its send.
                for mail in mails_of(title, &[scope.user]) {
                    expected_mails.insert(mail, 1);
                }
            }
        }
        for (u, id, field) in sender.marks.iter().chain(&sender.unknown_marks) {
            may_be_marked.insert((*u, id.as_str(), *field));
        }
        for (u, id, field) in &sender.marks {
            let row = inboxes[*u].iter().find(|r| r["id"] == id.as_str());
            if row.is_none_or(|r| r[*field].is_null()) {
                problems.push(format!(
                    "acknowledged {field} of {id} by {} lost: {row:?}",
                    USERS[*u].0
                ));
            }
        }
    }
    for (u, rows) in inboxes.iter().enumerate() {
        for row in rows {
            let title = row["payload"]["title"].as_str().unwrap();
            if !explained[u].contains(title) {
                problems.push(format!("{} has a row nobody sent: {row}", USERS[u].0));
            }
            for field in ["read", "saved"] {
                let id = row["id"].as_str().unwrap();
                if !row[field].is_null() && !may_be_marked.contains(&(u, id, field)) {
                    problems.push(format!("{} has {field} set, unasked: {row}", USERS[u].0));
                }
            }
        }
    }

    // Mails: each once, plus once per attempt a kill cut after the SMTP server accepted it.
    for mails in doubts.values() {
        for mail in mails {
            if let Some(allowed) = expected_mails.get_mut(mail) {
                *allowed += 1;
            }
        }
    }
    // Each copy of one mail is the same message (its `Message-ID`), so the receiver sees it once.
    let mut received: BTreeMap<Mail, (usize, HashSet<String>)> = BTreeMap::new();
    for mail in sink.mails() {
        let key = (
            mail["to"].as_str().unwrap().to_owned(),
            mail["subject"].as_str().unwrap().to_owned(),
        );
        let (copies, ids) = received.entry(key).or_default();
        *copies += 1;
        ids.insert(mail["message_id"].as_str().unwrap_or("none").to_owned());
    }
    for (mail, allowed) in &expected_mails {
        let (got, ids) = received.get(mail).cloned().unwrap_or_default();
        if got == 0 || got > *allowed {
            problems.push(format!(
                "{mail:?} mailed {got} times (allowed 1..={allowed})"
            ));
        }
        if ids.len() > 1 {
            problems.push(format!(
                "{mail:?} mailed as {} messages: {ids:?}",
                ids.len()
            ));
        }
    }
    for (mail, (got, _)) in &received {
        if !expected_mails.contains_key(mail) {
            problems.push(format!("{mail:?} mailed {got} times, for nothing stored"));
        }
    }

    let retries: usize = senders.iter().map(|s| s.retries).sum();
    let replayed: usize = senders.iter().map(|s| s.replayed).sum();
    let marks: usize = senders.iter().map(|s| s.marks.len()).sum();
    let repeated: usize = received.values().map(|(n, _)| n - 1).sum();
    eprintln!(
        "crash ({kind:?}, seed {SEED:#x}): {ROUNDS} kills, {acknowledged} creates acknowledged, \
         unanswered unkeyed creates {unknown_stored} stored and {unknown_lost} not, {retries} \
         keyed retries ({replayed} replayed), {marks} marks, {} mails ({repeated} repeated, {} \
         attempts in doubt), {:?}",
        received.values().map(|(n, _)| n).sum::<usize>(),
        doubts.len(),
        began.elapsed()
    );
    assert!(
        problems.is_empty(),
        "seed {SEED:#x}, {} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // A loaded machine answers fewer requests per round; some in each, and a kill that cut a
    // keyed one, are what the checks need.
    assert!(
        acknowledged >= SENDERS * ROUNDS && retries > 0,
        "the load was too light to mean anything"
    );
}
on_both_databases!(killed_again_and_again_under_load);
