//! Listing, getting, status and topics (contract 8.2).

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::db_test;
use crate::support::{USER, ids};

const OTHER: &str = "user:default/other";

fn ago(d: Duration) -> OffsetDateTime {
    OffsetDateTime::now_utc() - d
}

db_test!(case_34_read_shape_has_every_key, |app| {
    let b = app
        .insert_at(
            None,
            json!({"title": "b", "severity": "high"}),
            ago(Duration::seconds(2)),
        )
        .await;
    let u = app.send_to(USER, json!({"title": "u"})).await;
    let list = app.list(USER, "").await;
    assert_eq!(list["totalCount"], 2);
    assert_eq!(ids(&list["notifications"]), [u.clone(), b]);
    let n = &list["notifications"][0];
    for key in ["saved", "read", "updated"] {
        assert_eq!(n[key], Value::Null, "{key}");
    }
    assert_eq!(
        n["payload"],
        json!({"title": "u", "description": null, "link": null, "severity": "normal", "topic": null, "scope": null, "icon": null})
    );
    assert_eq!(n["user"], USER);
    assert_eq!(list["notifications"][1]["user"], Value::Null);
    assert_eq!(list["notifications"][1]["payload"]["severity"], "high");
});

db_test!(
    case_35_36_38_users_see_their_own_and_all_broadcasts,
    |app| {
        let n1 = app
            .insert_at(Some(USER), json!({"title": "n1"}), ago(Duration::hours(1)))
            .await;
        let n3 = app
            .insert_at(None, json!({"title": "n3"}), ago(Duration::seconds(25)))
            .await;
        let n2 = app.send_to(USER, json!({"title": "n2"})).await;
        let n0 = app
            .insert_at(
                Some(OTHER),
                json!({"title": "n0"}),
                ago(Duration::minutes(10)),
            )
            .await;
        assert_eq!(
            app.list_ids(USER, "").await,
            [n2.clone(), n3.clone(), n1.clone()]
        );
        // 36/38: a broadcast read by one user stays unread for another, and is never "theirs".
        let token = app.user_token(USER);
        app.post(
            "/notifications/update",
            &token,
            &json!({"ids": [n3], "read": true}),
        )
        .await;
        let mine = app.list(USER, "").await;
        assert_eq!(mine["notifications"][1]["user"], Value::Null);
        assert!(mine["notifications"][1]["read"].is_string());
        let theirs = app.list(OTHER, "").await;
        assert_eq!(ids(&theirs["notifications"]), [n3.clone(), n0]);
        assert_eq!(theirs["notifications"][0]["read"], Value::Null);
        app.post(
            "/notifications/update",
            &app.user_token(OTHER),
            &json!({"ids": [n3], "read": true}),
        )
        .await;
        let theirs = app.list(OTHER, "").await;
        assert!(theirs["notifications"][0]["read"].is_string());
        assert_eq!(theirs["notifications"][0]["user"], Value::Null);
    }
);

db_test!(case_37_read_filter, |app| {
    let n1 = app
        .insert_at(Some(USER), json!({"title": "n1"}), ago(Duration::hours(1)))
        .await;
    let n3 = app
        .insert_at(None, json!({"title": "n3"}), ago(Duration::minutes(1)))
        .await;
    let n2 = app.broadcast(json!({"title": "n2"})).await;
    app.post(
        "/notifications/update",
        &app.user_token(USER),
        &json!({"ids": [n1, n3], "read": true}),
    )
    .await;
    assert_eq!(
        app.list_ids(USER, "read=true").await,
        [n3.clone(), n1.clone()]
    );
    assert_eq!(app.list_ids(USER, "read=false").await, [n2.as_str()]);
    assert_eq!(app.list_ids(USER, "").await, [n2, n3, n1]);
});

db_test!(case_39_search_is_case_insensitive_and_literal, |app| {
    let hit = app
        .broadcast(json!({"title": "Notification 1 - please find me"}))
        .await;
    app.send_to(USER, json!({"title": "Notification 2"})).await;
    app.send_to(OTHER, json!({"title": "also find me"})).await;
    let desc = app
        .send_to(
            USER,
            json!({"title": "x", "description": "FIND ME in the description"}),
        )
        .await;
    assert_eq!(app.list_ids(USER, "search=find%20me").await, [desc, hit]);
    // % and _ are literal characters, not wildcards.
    let pct = app.send_to(USER, json!({"title": "50% off_today"})).await;
    app.send_to(USER, json!({"title": "500 offXtoday"})).await;
    assert_eq!(app.list_ids(USER, "search=0%25%20off_").await, [pct]);
    assert_eq!(app.list_ids(USER, "search=%25").await.len(), 1);
    // non-ASCII case folding
    let umlaut = app.send_to(USER, json!({"title": "ÄRGER im Büro"})).await;
    assert_eq!(app.list_ids(USER, "search=%C3%A4rger").await, [umlaut]);
});

db_test!(case_40_created_after_is_inclusive, |app| {
    app.insert_at(Some(USER), json!({"title": "old"}), ago(Duration::hours(1)))
        .await;
    let fresh = app.send_to(USER, json!({"title": "fresh"})).await;
    let after = (OffsetDateTime::now_utc() - Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        app.list_ids(USER, &format!("createdAfter={}", after.replace('+', "%2B")))
            .await,
        [fresh.as_str()]
    );
    let created = app.list(USER, "limit=1").await["notifications"][0]["created"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.list_ids(USER, &format!("createdAfter={created}")).await,
        [fresh]
    );
});

db_test!(case_41_topic_filter_is_exact, |app| {
    let n1 = app
        .send_to(USER, json!({"title": "n1", "topic": "efgh-topic"}))
        .await;
    app.send_to(USER, json!({"title": "n2", "topic": "gh-topic"}))
        .await;
    app.broadcast(json!({"title": "n3", "topic": "fgh-topic"}))
        .await;
    app.send_to(USER, json!({"title": "n4", "topic": "EFGH-topic"}))
        .await;
    assert_eq!(app.list_ids(USER, "topic=efgh-topic").await, [n1]);
});

db_test!(case_42_minimum_severity, |app| {
    let mut created = Vec::new();
    for (i, sev) in [
        Some("normal"),
        None,
        Some("critical"),
        Some("high"),
        Some("low"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut payload = json!({"title": format!("n{i}")});
        if let Some(s) = sev {
            payload["severity"] = json!(s);
        }
        created.push(
            app.insert_at(Some(USER), payload, ago(Duration::minutes(10 - i as i64)))
                .await,
        );
    }
    // newest first: low, high, critical, (normal), normal
    let [normal, unset, critical, high, low] = created.try_into().unwrap();
    assert_eq!(
        app.list_ids(USER, "minimumSeverity=normal").await,
        [
            high.clone(),
            critical.clone(),
            unset.clone(),
            normal.clone()
        ]
    );
    assert_eq!(
        app.list_ids(USER, "minimumSeverity=critical").await,
        [critical.as_str()]
    );
    assert_eq!(
        app.list_ids(USER, "minimumSeverity=high").await,
        [high.clone(), critical.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "minimumSeverity=low").await,
        [low, high, critical, unset, normal]
    );
});

db_test!(case_43_45_paging, |app| {
    let mut all = Vec::new();
    for i in 0..6 {
        all.push(
            app.insert_at(
                Some(USER),
                json!({"title": format!("u{i}")}),
                ago(Duration::minutes(20 - i)),
            )
            .await,
        );
    }
    all.push(
        app.insert_at(None, json!({"title": "b"}), ago(Duration::minutes(1)))
            .await,
    );
    app.insert_at(
        Some(OTHER),
        json!({"title": "o"}),
        ago(Duration::seconds(1)),
    )
    .await;
    all.reverse();
    assert_eq!(app.list_ids(USER, "").await, all);
    let page1 = app.list(USER, "limit=3&offset=0").await;
    assert_eq!(page1["totalCount"], 7);
    assert_eq!(ids(&page1["notifications"]), all[..3]);
    assert_eq!(app.list_ids(USER, "limit=3&offset=3").await, all[3..6]);
    assert_eq!(app.list_ids(USER, "limit=3&offset=6").await, all[6..]);
    assert_eq!(app.list_ids(USER, "offset=5").await, all[5..]);
    // 45: limit=0 counts without rows.
    let empty = app.list(USER, "limit=0").await;
    assert_eq!(
        (empty["notifications"].clone(), empty["totalCount"].clone()),
        (json!([]), json!(7))
    );
});

db_test!(case_44_order_fields, |app| {
    let n1 = app
        .insert_at(
            Some(USER),
            json!({"title": "n1", "topic": "efgh"}),
            ago(Duration::minutes(3)),
        )
        .await;
    let n3 = app
        .insert_at(
            Some(USER),
            json!({"title": "n3", "topic": "fgh"}),
            ago(Duration::minutes(2)),
        )
        .await;
    let n2 = app
        .insert_at(
            None,
            json!({"title": "n2", "topic": "gh"}),
            ago(Duration::minutes(1)),
        )
        .await;
    let (a, b, c) = (n1.clone(), n3.clone(), n2.clone());
    assert_eq!(
        app.list_ids(USER, "orderField=created,asc").await,
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=created,desc").await,
        [c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=topic,asc").await,
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=topic").await,
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=topic,desc").await,
        [c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=title,asc&limit=2&offset=0")
            .await,
        [a.clone(), c.clone()]
    );
    assert_eq!(
        app.list_ids(USER, "orderField=title,desc&limit=2&offset=2")
            .await,
        [a.as_str()]
    );
    // several terms, and NULLs last in both directions
    let no_topic = app
        .insert_at(Some(USER), json!({"title": "z"}), ago(Duration::minutes(4)))
        .await;
    assert_eq!(
        app.list_ids(USER, "orderField=topic,desc").await.last(),
        Some(&no_topic)
    );
    assert_eq!(
        app.list_ids(USER, "orderField=topic,asc").await.last(),
        Some(&no_topic)
    );
    assert_eq!(
        app.list_ids(USER, "orderField=user,asc&orderField=created,desc")
            .await,
        [b, a, no_topic, c]
    );
});

// What the OpenAPI document allows is answered, as upstream answers it (the property test sent
// each of these and got a 400).
db_test!(schema_valid_queries_are_answered, |app| {
    let older = app
        .insert_at(
            Some(USER),
            json!({"title": "b", "topic": "x"}),
            ago(Duration::hours(1)),
        )
        .await;
    let newer = app.send_to(USER, json!({"title": "a", "topic": "x"})).await;
    // A field ordered by again changes nothing.
    assert_eq!(
        app.list_ids(
            USER,
            "orderField=topic&orderField=created,desc&orderField=topic,desc"
        )
        .await,
        [newer.clone(), older.clone()]
    );
    // No maximum on paging.
    assert_eq!(
        app.list_ids(USER, "limit=9223372036854775808&offset=0")
            .await,
        [newer, older]
    );
    assert!(
        app.list_ids(USER, "offset=99999999999999999999")
            .await
            .is_empty()
    );
    // A date-time past the year 9999 in UTC is a bound nothing is created after.
    assert!(
        app.list_ids(USER, "createdAfter=9999-12-31T23:59:59-01:00")
            .await
            .is_empty()
    );
});

db_test!(case_46_invalid_queries_are_400, |app| {
    let token = app.user_token(USER);
    for query in [
        "orderField=created,sideways",
        "orderField=nonexistent",
        "limit=-1",
        "limit=abc",
        "offset=1.5",
        "read=yes",
        "saved=1",
        "foo=bar",
        "search=",
        "createdAfter=notadate",
        "minimumSeverity=urgent",
        "sort=created",
        "topic=a&topic=b",
        &vec!["orderField=topic"; 15].join("&"),
        "createdAfter=2025-04-0%C3%A91",
        "topic=a%00b",
    ] {
        let r = app.get(&format!("/notifications?{query}"), &token).await;
        r.assert_error(400, "InputError");
        assert_eq!(r.body["request"]["url"], format!("/notifications?{query}"));
    }
    let r = app
        .get("/notifications?createdAfter=notadate", &token)
        .await;
    assert_eq!(r.message(), "Unexpected date format");
    let r = app.get("/notifications?foo=bar", &token).await;
    assert_eq!(r.message(), "Unknown query parameter 'foo'");
});

db_test!(case_47_status_counts_own_and_broadcasts, |app| {
    let token = app.user_token(USER);
    assert_eq!(
        app.get("/status", &token).await.body,
        json!({"unread": 0, "read": 0})
    );
    let n1 = app.send_to(USER, json!({"title": "n1"})).await;
    app.send_to(USER, json!({"title": "n2"})).await;
    let n3 = app.broadcast(json!({"title": "n3"})).await;
    app.broadcast(json!({"title": "n4"})).await;
    app.send_to(OTHER, json!({"title": "n5"})).await;
    app.post(
        "/notifications/update",
        &token,
        &json!({"ids": [n1, n3], "read": true}),
    )
    .await;
    assert_eq!(
        app.get("/status", &token).await.body,
        json!({"unread": 2, "read": 2})
    );
    assert_eq!(
        app.get("/status", &app.user_token(OTHER)).await.body,
        json!({"unread": 3, "read": 0})
    );
    app.get("/status?x=1", &token)
        .await
        .assert_error(400, "InputError");
});

db_test!(case_48_get_one, |app| {
    let token = app.user_token(USER);
    let mine = app
        .send_to(
            USER,
            json!({"title": "mine", "description": "d", "topic": "t", "link": "/catalog",
                                        "severity": "critical", "icon": "docs"}),
        )
        .await;
    let theirs = app.send_to(OTHER, json!({"title": "theirs"})).await;
    let b = app.broadcast(json!({"title": "b"})).await;
    // 69: every field reads back unchanged.
    let r = app.get(&format!("/notifications/{mine}"), &token).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["payload"],
        json!({"title": "mine", "description": "d", "link": "/catalog", "severity": "critical", "topic": "t", "scope": null, "icon": "docs"})
    );
    let r = app.get(&format!("/notifications/{theirs}"), &token).await;
    r.assert_error(404, "NotFoundError");
    assert_eq!(r.message(), "Not found");
    let r = app.get(&format!("/notifications/{b}"), &token).await;
    assert_eq!((r.status, r.body["user"].clone()), (200, Value::Null));
    // the deprecated alias
    assert_eq!(
        app.get(&format!("/{mine}"), &token).await.body["id"],
        mine.as_str()
    );
    // Not a UUID: 404 on both databases (upstream gives a 500 on PostgreSQL).
    for bad in ["not-a-uuid", "update", "1", "%27%20OR%201%3D1"] {
        app.get(&format!("/notifications/{bad}"), &token)
            .await
            .assert_error(404, "NotFoundError");
    }
    app.get(&format!("/notifications/{mine}?x=1"), &token)
        .await
        .assert_error(400, "InputError");
});

db_test!(case_49_50_51_topics, |app| {
    let token = app.user_token(USER);
    app.insert_at(
        Some(USER),
        json!({"title": "Notification 1", "topic": "efgh-topic", "severity": "critical"}),
        ago(Duration::minutes(4)),
    )
    .await;
    app.insert_at(
        Some(USER),
        json!({"title": "Notification 2", "topic": "gh-topic"}),
        ago(Duration::minutes(3)),
    )
    .await;
    app.insert_at(
        None,
        json!({"title": "Notification 3", "topic": "fgh-topic"}),
        ago(Duration::minutes(2)),
    )
    .await;
    app.insert_at(
        Some(USER),
        json!({"title": "Notification 4"}),
        ago(Duration::minutes(1)),
    )
    .await;
    app.insert_at(
        Some(OTHER),
        json!({"title": "Notification 5", "topic": "other-topic"}),
        ago(Duration::minutes(1)),
    )
    .await;
    let topics = |q: &'static str| {
        let token = token.clone();
        let app = &app;
        async move { app.get(&format!("/topics{q}"), &token).await }
    };
    assert_eq!(
        topics("").await.body,
        json!({"topics": ["efgh-topic", "fgh-topic", "gh-topic"]})
    );
    assert_eq!(
        topics("?search=Notification%203").await.body,
        json!({"topics": ["fgh-topic"]})
    );
    assert_eq!(
        topics("?minimumSeverity=critical").await.body,
        json!({"topics": ["efgh-topic"]})
    );
    assert_eq!(topics("?read=true").await.body, json!({"topics": []}));
    topics("?limit=5").await.assert_error(400, "InputError");
    topics("?topic=x").await.assert_error(400, "InputError");
    topics("?orderField=created")
        .await
        .assert_error(400, "InputError");
});

db_test!(case_52_services_cannot_use_user_routes, |app| {
    let id = app.send_to(USER, json!({"title": "t"})).await;
    let service = crate::support::SERVICE_TOKEN;
    for path in [
        "/notifications",
        "/",
        &format!("/notifications/{id}"),
        "/status",
        "/settings",
        "/topics",
    ] {
        let r = app.get(path, service).await;
        r.assert_error(403, "NotAllowedError");
        assert_eq!(
            r.message(),
            "This endpoint does not allow 'service' credentials"
        );
    }
    app.post(
        "/notifications/update",
        service,
        &json!({"ids": [id], "read": true}),
    )
    .await
    .assert_error(403, "NotAllowedError");
    app.post("/settings", service, &json!({"channels": []}))
        .await
        .assert_error(403, "NotAllowedError");
});

/// Status and the unfiltered (or read/unread only) totalCount come from counts the database
/// keeps as rows change (`inbox_count`); after every kind of change they must agree with the
/// inbox as listed.
async fn assert_counts(app: &crate::support::TestApp, user: &str, step: &str) {
    let all = app.list(user, "").await;
    let rows = all["notifications"].as_array().unwrap();
    let read = rows.iter().filter(|n| !n["read"].is_null()).count();
    let unread = rows.len() - read;
    assert_eq!(all["totalCount"], rows.len(), "{step}: totalCount");
    let status = app.get("/status", &app.user_token(user)).await;
    assert_eq!(
        status.body,
        json!({"unread": unread, "read": read}),
        "{step}: status"
    );
    for (query, expected) in [("read=true&limit=1", read), ("read=false&limit=1", unread)] {
        assert_eq!(
            app.list(user, query).await["totalCount"],
            expected,
            "{step}: {query}"
        );
    }
}

db_test!(counts_follow_every_change_of_the_inbox, |app| {
    let token = app.user_token(USER);
    let mark = |ids: Vec<&str>, read: bool| {
        let body = json!({"ids": ids, "read": read});
        let app = &app;
        let token = &token;
        async move {
            let r = app.post("/notifications/update", token, &body).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
    };
    assert_counts(&app, USER, "empty").await;

    let scoped = app
        .send_to(USER, json!({"title": "s", "scope": "the-scope"}))
        .await;
    let plain = app.send_to(USER, json!({"title": "p"})).await;
    let third = app.send_to(USER, json!({"title": "t"})).await;
    let b = app.broadcast(json!({"title": "b"})).await;
    app.send_to(OTHER, json!({"title": "o"})).await;
    assert_counts(&app, USER, "sent").await;

    mark(vec![&scoped, &b, &plain], true).await;
    mark(vec![&plain], true).await;
    assert_counts(&app, USER, "marked read, twice for one").await;

    // A re-send with the same scope updates the row and makes it unread again.
    let again = app
        .send_to(USER, json!({"title": "s2", "scope": "the-scope"}))
        .await;
    assert_eq!(again, scoped);
    assert_counts(&app, USER, "re-sent by scope").await;

    // PostgreSQL keeps the changes apart until folded (every second in a server): counts must
    // be right before and after.
    app.db.store().fold_inbox_counts().await.unwrap();
    assert_counts(&app, USER, "folded").await;
    mark(vec![&plain, &third], false).await;
    assert_counts(&app, USER, "marked unread").await;
    mark(vec![&third, &b], true).await;
    assert_counts(&app, USER, "read again").await;
    assert_counts(&app, OTHER, "the other user").await;

    // The retention cleaner deletes everything older than its cutoff.
    let later = OffsetDateTime::now_utc() + Duration::minutes(1);
    assert_eq!(
        app.db.store().delete_inactive_since(later).await.unwrap(),
        5
    );
    assert_counts(&app, USER, "after retention").await;
    app.db.store().fold_inbox_counts().await.unwrap();
    assert_counts(&app, USER, "after retention, folded").await;
    assert_counts(&app, OTHER, "the other user after retention").await;
    assert_eq!(app.list(USER, "").await["totalCount"], 0);
});

// A page cuts each side of the inbox (own notifications, broadcasts) to its first
// limit + offset rows in the requested order before merging them: every page must still be
// the matching slice of the whole ordered inbox, for every ordering.
const SEVERITIES: [&str; 4] = ["critical", "high", "normal", "low"];

db_test!(pages_are_slices_of_the_whole_ordering, |app| {
    let token = app.user_token(USER);
    let mut own = Vec::new();
    for i in 0..6 {
        let topic = if i % 3 == 0 {
            json!(null)
        } else {
            json!(format!("t{}", i % 3))
        };
        own.push(
            app.insert_at(
                Some(USER),
                json!({"title": format!("own {}", (i * 7) % 6), "topic": topic,
                       "severity": SEVERITIES[(i % 4) as usize]}),
                ago(Duration::minutes(30 - i)),
            )
            .await,
        );
    }
    let mut broadcasts = Vec::new();
    for i in 0..4 {
        broadcasts.push(
            app.insert_at(
                None,
                json!({"title": format!("b {i}"), "topic": "t1"}),
                ago(Duration::minutes(27 - 2 * i)),
            )
            .await,
        );
    }
    app.insert_at(
        Some(OTHER),
        json!({"title": "o"}),
        ago(Duration::minutes(1)),
    )
    .await;
    // Read marks on both sides: a status row for one broadcast.
    let r = app
        .post(
            "/notifications/update",
            &token,
            &json!({"ids": [own[1], own[4], broadcasts[2]], "read": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            "/notifications/update",
            &token,
            &json!({"ids": [own[2], broadcasts[1]], "saved": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Each order (and filter) reads the index parts of both sides; the pages must still be
    // slices of the one ordering, NULLs last, ties broken the same way.
    for order in [
        "",
        "orderField=created,asc",
        "orderField=title,asc",
        "orderField=title,desc",
        "orderField=topic,asc",
        "orderField=topic,desc",
        "orderField=read,desc",
        "orderField=read,asc",
        "orderField=saved,desc",
        "orderField=saved,asc",
        "orderField=severity,asc",
        "orderField=origin,desc",
        "orderField=updated,desc",
        "orderField=user,asc&orderField=created,desc",
        "orderField=user,desc&orderField=title,asc",
        "read=false&orderField=created,desc",
        "read=true&orderField=created,asc",
        "saved=true&orderField=created,desc",
        "minimumSeverity=high&orderField=created,desc",
        "minimumSeverity=low&read=false&orderField=created,desc",
        "topic=t1&orderField=created,asc",
        "read=false&orderField=topic,desc",
    ] {
        let whole = app.list_ids(USER, order).await;
        if !order.contains('=') || order.starts_with("orderField") {
            assert_eq!(whole.len(), 10, "{order}");
        }
        for (limit, offset) in [(2, 0), (3, 1), (2, 5), (4, 6), (1, 9), (5, 8), (3, 12)] {
            let page = app
                .list_ids(USER, &format!("{order}&limit={limit}&offset={offset}"))
                .await;
            let end = (offset + limit).min(whole.len());
            let expected = whole.get(offset..end).unwrap_or_default();
            assert_eq!(page, expected, "{order} limit={limit} offset={offset}");
        }
    }
});
