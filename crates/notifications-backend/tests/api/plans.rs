//! The plans of the inbox reads real clients send, on both databases: each part of the user's
//! side walks the index named here and stops after the page, with no sort of the inbox and no
//! scan of the table; and those of the delivery worker's claims, each through its due index. A
//! dropped index or a query that stops matching one fails here.
//!
//! PostgreSQL plans by statistics, so the inbox (or the queue) is seeded with thousands of rows
//! and analysed; its plans are the generic ones the service runs (`Store::explain_list`),
//! searches excepted; SQLite plans by its rules (the service never runs ANALYZE), the same at any
//! size.

use notifications_backend::testing::http::{list_options, read_all_filters, topics_options};
use notifications_backend::testing::store::ListFilters;

use crate::db_test;
use crate::support::{DbKind, TestApp, USER};

/// 20,000 rows, half of them the fixture user's (a tenth read, a few saved, a tenth without
/// topic, a fifth updated), the rest spread over 50 other users; every thousandth has a needle
/// in its description; five broadcasts.
fn seed(app: &TestApp) {
    let (id, time, minutes, seconds, series, end) = match app.db.kind() {
        DbKind::Postgres => (
            "gen_random_uuid()",
            "now()",
            "now() - make_interval(mins => i)",
            "now() - make_interval(secs => i)",
            "SELECT i FROM generate_series(1, 20000) AS g (i)",
            "ANALYZE;",
        ),
        DbKind::Sqlite => (
            "lower(printf('%s-%s-4%s-a%s-%s', hex(randomblob(4)), hex(randomblob(2)), \
             substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6))))",
            "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')",
            "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '-' || i || ' minutes')",
            "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', '-' || i || ' seconds')",
            "WITH RECURSIVE g (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 20000) \
             SELECT i FROM g",
            "",
        ),
    };
    app.db.execute(&format!(
        "INSERT INTO notification (id, user_ref, title, description, severity, origin, topic, \
           created, updated, read, saved) \
         SELECT {id}, \
           CASE WHEN i % 2 = 0 THEN '{USER}' ELSE 'user:default/other-' || (i % 50) END, \
           'title ' || i, \
           CASE WHEN i % 1000 = 0 THEN 'a needle, number ' || i ELSE 'number ' || i END, \
           CASE (i / 2) % 4 WHEN 0 THEN 'critical' WHEN 1 THEN 'high' WHEN 2 THEN 'normal' \
             ELSE 'low' END, \
           'origin-' || (i % 7), \
           CASE WHEN (i / 2) % 10 = 0 THEN NULL ELSE 'topic-' || ((i / 2) % 20) END, \
           {minutes}, \
           CASE WHEN i % 5 = 0 THEN {seconds} END, \
           CASE WHEN i % 20 = 2 THEN {time} END, \
           CASE WHEN i % 200 = 4 THEN {time} END \
         FROM ({series}) AS numbers; \
         INSERT INTO broadcast (id, title, severity, origin, topic, created) \
         SELECT {id}, 'broadcast ' || i, 'normal', 'origin-1', 'topic-1', {minutes} \
         FROM ({series}) AS numbers WHERE i <= 5; \
         {end}"
    ));
}

/// A node of a plan and the nodes below it, as the lines of [`Store::explain_list`] give them.
struct Node<'a> {
    line: &'a str,
    children: Vec<Node<'a>>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// PostgreSQL's text plans mark nodes with `->` (the first line is the root); their detail
/// lines (`Index Cond`, `Sort Key`, ...) are not nodes. SQLite's lines are all nodes.
fn tree(lines: &[String], kind: DbKind) -> Vec<Node<'_>> {
    let nodes: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| kind == DbKind::Sqlite || *i == 0 || l.trim_start().starts_with("->"))
        .map(|(_, l)| (indent(l), l.trim_start().trim_start_matches("->").trim()))
        .collect();
    fn build<'a>(
        nodes: &[(usize, &'a str)],
        mut at: usize,
        depth: usize,
    ) -> (Vec<Node<'a>>, usize) {
        let mut level = Vec::new();
        while at < nodes.len() && nodes[at].0 == depth {
            let line = nodes[at].1;
            at += 1;
            let children = match nodes.get(at) {
                Some(&(d, _)) if d > depth => {
                    let (children, next) = build(nodes, at, d);
                    at = next;
                    children
                }
                _ => Vec::new(),
            };
            level.push(Node { line, children });
        }
        (level, at)
    }
    let mut roots = Vec::new();
    let mut at = 0;
    while at < nodes.len() {
        let (level, next) = build(&nodes, at, nodes[at].0);
        roots.extend(level);
        at = next.max(at + 1);
    }
    roots
}

/// How a plan reads the user's rows (`notification n`): for each access, the index used and
/// whether something sorts its rows (its parent on PostgreSQL, a temporary b-tree beside it on
/// SQLite).
fn user_walks(nodes: &[Node<'_>], parent: Option<&str>, out: &mut Vec<(String, bool)>) {
    for node in nodes {
        let reads_notification = node.line.contains(" on notification n")
            || node.line.starts_with("SEARCH n ")
            || node.line.starts_with("SCAN n ")
            || node.line == "SCAN n";
        if reads_notification {
            let index = node
                .line
                .split_whitespace()
                .skip_while(|w| *w != "INDEX" && *w != "using")
                .nth(1)
                .unwrap_or("<no index>")
                .to_owned();
            let sorted_by_parent = parent.is_some_and(|p| p.contains("Sort"));
            let sorted_beside = nodes
                .iter()
                .any(|sibling| sibling.line.starts_with("USE TEMP B-TREE"));
            out.push((index, sorted_by_parent || sorted_beside));
        }
        user_walks(&node.children, Some(node.line), out);
    }
}

/// The plan of `query` and how it reads the inbox.
async fn walks(app: &TestApp, query: &str) -> (Vec<(String, bool)>, String) {
    let options = list_options(query).unwrap();
    let plan = app
        .db
        .store()
        .explain_list(&USER.parse().unwrap(), &options)
        .await
        .unwrap();
    let mut walks = Vec::new();
    user_walks(&tree(&plan, app.db.kind()), None, &mut walks);
    (walks, plan.join("\n"))
}

async fn assert_walks(app: &TestApp, query: &str, expected: &[&str]) {
    let (walks, shown) = walks(app, query).await;
    assert!(!walks.is_empty(), "{query}: no read of the inbox?\n{shown}");
    for (index, sorted) in &walks {
        assert!(
            expected.contains(&index.as_str()),
            "{query}: reads the inbox through {index}, expected {expected:?}\n{shown}"
        );
        assert!(!sorted, "{query}: sorts the inbox\n{shown}");
    }
}

/// What Backstage's page and other clients send, with the index each part walks.
const SHAPES: &[(&str, &[&str])] = &[
    ("limit=20&offset=0", &["notification_user_created_idx"]),
    (
        "limit=20&offset=0&orderField=created,desc",
        &["notification_user_created_idx"],
    ),
    (
        "limit=20&offset=0&orderField=created,asc",
        &["notification_user_created_idx"],
    ),
    (
        "limit=20&offset=200&orderField=created,desc",
        &["notification_user_created_idx"],
    ),
    (
        "limit=20&offset=0&orderField=title,asc",
        &["notification_user_title_idx"],
    ),
    (
        "limit=20&offset=0&orderField=title,desc",
        &["notification_user_title_idx"],
    ),
    (
        "limit=20&offset=0&orderField=topic,asc",
        &["notification_user_topic_idx"],
    ),
    (
        "limit=20&offset=0&orderField=topic,desc",
        &["notification_user_topic_idx"],
    ),
    (
        "limit=20&offset=0&orderField=origin,asc",
        &["notification_user_origin_idx"],
    ),
    (
        "limit=20&offset=0&orderField=origin,desc",
        &["notification_user_origin_idx"],
    ),
    (
        "limit=20&offset=0&orderField=severity,desc",
        &["notification_user_severity_idx"],
    ),
    (
        "limit=20&offset=0&orderField=severity,asc",
        &["notification_user_severity_idx"],
    ),
    (
        "limit=20&offset=0&orderField=updated,desc",
        &["notification_user_updated_idx"],
    ),
    (
        "limit=20&offset=0&orderField=updated,asc",
        &["notification_user_updated_idx"],
    ),
    (
        "limit=20&offset=0&orderField=read,desc",
        &["notification_user_read_idx"],
    ),
    (
        "limit=20&offset=0&orderField=read,asc",
        &["notification_user_read_idx"],
    ),
    (
        "limit=20&offset=0&orderField=saved,desc",
        &[
            "notification_user_saved_idx",
            "notification_user_created_idx",
        ],
    ),
    (
        "limit=20&offset=0&orderField=saved,asc",
        &[
            "notification_user_saved_idx",
            "notification_user_created_idx",
        ],
    ),
    (
        "limit=20&offset=0&read=false&orderField=created,desc",
        &["notification_user_read_idx"],
    ),
    (
        "limit=20&offset=0&read=true&orderField=created,desc",
        &["notification_user_read_created_idx"],
    ),
    (
        "limit=20&offset=0&saved=true&orderField=created,desc",
        &["notification_user_saved_created_idx"],
    ),
    (
        "limit=20&offset=0&topic=topic-3&orderField=created,desc",
        &["notification_user_topic_idx"],
    ),
    (
        "limit=20&offset=0&minimumSeverity=high&orderField=created,desc",
        &["notification_user_severity_idx"],
    ),
    (
        "limit=20&offset=0&createdAfter=2020-01-01T00:00:00Z&orderField=created,desc",
        &["notification_user_created_idx"],
    ),
    // Backstage's notifications page as it opens.
    (
        "limit=5&offset=0&minimumSeverity=low&orderField=created,desc&read=false",
        &["notification_user_read_idx"],
    ),
];

db_test!(every_common_list_shape_walks_an_index, |app| {
    seed(&app);
    for (query, expected) in SHAPES {
        assert_walks(&app, query, expected).await;
    }
    // On PostgreSQL these are the generic plans the service runs (its connections keep one plan
    // per statement), with the user as a parameter, not plans for the values at hand.
    if app.db.kind() == DbKind::Postgres {
        let (_, shown) = walks(&app, "limit=20&offset=0&orderField=created,desc").await;
        assert!(shown.contains("$1"), "not the generic plan:\n{shown}");
    }
    // The check sees a sort: no index orders by description, so that page sorts the inbox.
    let (walks, shown) = walks(&app, "limit=20&offset=0&orderField=description,asc").await;
    assert!(
        walks
            .iter()
            .any(|(index, sorted)| *sorted || index == "<no index>"),
        "{shown}"
    );
});

// A rare text is found through the search index, not by reading the inbox; a common one walks
// the inbox newest first and stops after a page of matches.
db_test!(searches_use_the_search_index_when_it_pays, |app| {
    seed(&app);
    let rare = "limit=20&offset=0&search=Needle&orderField=created,desc";
    let store = app.db.store();
    let lists = store
        .explain_list(&USER.parse().unwrap(), &list_options(rare).unwrap())
        .await
        .unwrap();
    let topics = store
        .explain_topics(
            &USER.parse().unwrap(),
            ListFilters::from(&topics_options("search=Needle").unwrap()),
        )
        .await
        .unwrap();
    for plan in [lists, topics] {
        let shown = plan.join("\n");
        match app.db.kind() {
            DbKind::Postgres => {
                assert!(shown.contains("notification_title_trgm_idx"), "{shown}");
                assert!(
                    shown.contains("notification_description_trgm_idx"),
                    "{shown}"
                );
                assert!(!shown.contains("Seq Scan on notification"), "{shown}");
            }
            DbKind::Sqlite => {
                // The index's candidates, looked up by rowid: the inbox is not walked.
                assert!(
                    shown.contains("SEARCH n USING INTEGER PRIMARY KEY (rowid=?)"),
                    "{shown}"
                );
                assert!(
                    !shown.contains("SCAN n\n") && !shown.ends_with("SCAN n"),
                    "{shown}"
                );
            }
        }
    }
    assert_walks(
        &app,
        "limit=20&offset=0&search=number&orderField=created,desc",
        &["notification_user_created_idx"],
    )
    .await;
    // Found either way, with the same answer: the index only proposes candidates.
    let token = app.user_token(USER);
    let r = app.get("/notifications?search=NEEDLE", &token).await;
    assert_eq!(r.body["totalCount"], 20, "{}", r.text);
    let r = app.get("/notifications?search=eedl&limit=3", &token).await;
    assert_eq!(r.body["totalCount"], 20, "{}", r.text);
    assert_eq!(r.body["notifications"].as_array().unwrap().len(), 3);
    let r = app.get("/notifications?search=ne&limit=1", &token).await;
    assert!(r.body["totalCount"].as_u64().unwrap() >= 20, "{}", r.text);
});

db_test!(topics_probe_the_topic_index_once_per_topic, |app| {
    seed(&app);
    for query in ["read=false&minimumSeverity=low", "", "read=true"] {
        let filters = ListFilters::from(&topics_options(query).unwrap());
        let plan = app
            .db
            .store()
            .explain_topics(&USER.parse().unwrap(), filters)
            .await
            .unwrap();
        let mut walks = Vec::new();
        user_walks(&tree(&plan, app.db.kind()), None, &mut walks);
        let shown = plan.join("\n");
        assert!(!walks.is_empty(), "{query}: no read of the inbox?\n{shown}");
        for (index, sorted) in walks {
            assert_eq!(index, "notification_user_topic_idx", "{query}\n{shown}");
            assert!(!sorted, "{query}\n{shown}");
        }
    }
});

// Mark all read finds the user's unread rows through an index, not by reading the whole table:
// on SQLite always (its plans follow rules); on PostgreSQL when the filters keep a few of the
// user's rows (for most of a big inbox a scan of the table is its right choice).
db_test!(read_all_finds_the_rows_through_an_index, |app| {
    seed(&app);
    let hour_ago = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut queries = vec![
        "topic=topic-3".to_owned(),
        format!("createdAfter={hour_ago}"),
        "search=Needle".to_owned(),
        "saved=true".to_owned(),
    ];
    if app.db.kind() == DbKind::Sqlite {
        queries.push(String::new());
    }
    for query in queries {
        let filters = read_all_filters(&query).unwrap();
        let plan = app
            .db
            .store()
            .explain_mark_all_read(&USER.parse().unwrap(), &filters)
            .await
            .unwrap();
        let shown = plan.join("\n");
        let scans_table = plan.iter().any(|l| {
            let l = l.trim_start().trim_start_matches("->").trim();
            l.starts_with("Seq Scan on notification") || l == "SCAN n"
        });
        let uses_index = plan.iter().any(|l| {
            l.contains("Index Scan using notification_")
                || l.contains("Bitmap Index Scan on notification_")
                || l.contains("SEARCH n USING")
        });
        assert!(!scans_table && uses_index, "{query}:\n{shown}");
    }
});

/// 20,000 deliveries, as a queue that has run for a while holds them: most delivered, a few
/// failed, a twentieth pending for their channel (a third of them due, a few claimed by a
/// worker now) and a twentieth kept for 50 users' digests (a third of their windows closed).
fn seed_deliveries(app: &TestApp) {
    let (id, json, minutes, series, end) = match app.db.kind() {
        DbKind::Postgres => (
            "gen_random_uuid()",
            "'{}'::jsonb",
            "now() + make_interval(mins => ",
            "SELECT i FROM generate_series(1, 20000) AS g (i)",
            "ANALYZE delivery;",
        ),
        DbKind::Sqlite => (
            "lower(printf('%s-%s-4%s-a%s-%s', hex(randomblob(4)), hex(randomblob(2)), \
             substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6))))",
            "'{}'",
            "strftime('%Y-%m-%dT%H:%M:%f000Z', 'now', (",
            "WITH RECURSIVE g (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 20000) \
             SELECT i FROM g",
            "",
        ),
    };
    // Now plus `n` minutes (an SQL expression), as each database writes it.
    let at = |n: &str| match app.db.kind() {
        DbKind::Postgres => format!("{minutes}{n})"),
        DbKind::Sqlite => format!("{minutes}{n}) || ' minutes')"),
    };
    let (past, due_or_not, lease) = (
        at("-i"),
        at("CASE WHEN i % 3 = 0 THEN -i ELSE i END"),
        at("5"),
    );
    app.db.execute(&format!(
        "INSERT INTO delivery (id, notification_id, user_ref, channel, notification, options, \
           status, attempts, run_at, locked_until, created, updated, digest_at) \
         SELECT {id}, {id}, 'user:default/u' || (i % 50), \
           CASE WHEN i % 20 = 1 THEN 'email' ELSE CASE i % 3 WHEN 0 THEN 'email' \
             WHEN 1 THEN 'slack' ELSE 'webhook' END END, \
           {json}, {json}, \
           CASE WHEN i % 20 IN (0, 1) THEN 'pending' WHEN i % 100 = 2 THEN 'failed' \
             ELSE 'delivered' END, \
           CASE WHEN i % 20 = 1 THEN 0 ELSE 1 END, \
           CASE WHEN i % 20 IN (0, 1) THEN {due_or_not} ELSE {past} END, \
           CASE WHEN i % 200 = 0 THEN {lease} END, \
           {past}, \
           CASE WHEN i % 20 NOT IN (0, 1) THEN {past} END, \
           CASE WHEN i % 20 = 1 THEN {due_or_not} END \
         FROM ({series}) AS numbers; \
         {end}"
    ));
}

/// Whether the plan reads all of `delivery`: the table (PostgreSQL), or the table or a whole index
/// (SQLite's `SCAN`, where a `SEARCH` would bound it).
fn scans_deliveries(plan: &[String]) -> bool {
    plan.iter().any(|l| {
        let l = l.trim_start().trim_start_matches("->").trim();
        l.starts_with("Seq Scan on delivery") || l.starts_with("SCAN delivery")
    })
}

/// Whether the plan reads `delivery` through `index`.
fn uses_index(plan: &[String], index: &str) -> bool {
    plan.iter().any(|l| {
        l.contains(&format!("using {index} on delivery"))
            || l.contains(&format!("Bitmap Index Scan on {index} "))
            || l.contains(&format!("SEARCH delivery USING INDEX {index} "))
    })
}

/// Whether something in the plan sorts rows (not a DISTINCT's sort on SQLite).
fn sorts(plan: &[String]) -> bool {
    plan.iter().any(|l| {
        let l = l.trim_start().trim_start_matches("->").trim();
        l.starts_with("Sort") || l.starts_with("Incremental Sort") || l.ends_with("FOR ORDER BY")
    })
}

// The worker's statements find the rows they take through the index made for them, never by
// reading the queue's whole history or all its pending rows: they run at every poll of every
// instance. The plain claim walks the due rows oldest first and stops after its batch.
db_test!(delivery_claims_walk_the_due_indexes, |app| {
    seed_deliveries(&app);
    let plans = app
        .db
        .store()
        .explain_delivery_claims(
            time::OffsetDateTime::now_utc(),
            vec!["email".to_owned(), "slack".to_owned()],
            "user:default/u1".to_owned(),
        )
        .await
        .unwrap();
    // Abandoned rows are claimed ones whose lease ran out, found among the few claimed rows,
    // not among all the pending ones (held and kept rows wait there in numbers).
    for (statement, plan, indexes) in [
        ("abandon", &plans.abandon, &["delivery_leased_idx"]),
        ("claim", &plans.claim, &["delivery_due_idx"]),
        (
            "digest user",
            &plans.digest_user,
            &["delivery_digest_due_idx"],
        ),
        (
            "digest claim",
            &plans.digest_claim,
            &["delivery_digest_user_idx"],
        ),
    ] {
        let shown = plan.join("\n");
        assert!(!scans_deliveries(plan), "{statement} scans:\n{shown}");
        assert!(
            indexes.iter().any(|index| uses_index(plan, index)),
            "{statement}: not through {indexes:?}\n{shown}"
        );
    }
    for plan in [&plans.claim, &plans.digest_user] {
        assert!(!sorts(plan), "{}", plan.join("\n"));
    }
    // On PostgreSQL these are the generic plans the service runs.
    if app.db.kind() == DbKind::Postgres {
        let shown = plans.claim.join("\n");
        assert!(shown.contains("$2"), "not the generic plan:\n{shown}");
    }
});
