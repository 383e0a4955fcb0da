//! The janus-idp notifications API beside upstream's (the legacy janus contract). Numbered
//! cases are those of its section 5; the fixture catalog is its fixture.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_test;
use crate::on_both_databases;
use crate::support::{DbKind, Response, SERVICE_TOKEN, TestApp, TestDb};

const MOUNT: &str = "/api/notifications";
const LEGACY: &str = "/api/notifications-legacy";

/// The fixture catalog, the extra base path, and `$extra` (lines indented under
/// `legacyJanus`, or a whole `notifications` key such as `externalCallerSecret`).
macro_rules! janus_config {
    ($($extra:literal)?) => {
        concat!(
            "notifications:\n  catalog: {files: ['",
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/catalog/janus-conformance.yaml']}\n",
            "  legacyJanus:\n    extraBasePath: /api/notifications-legacy\n",
            $($extra)?
        )
    };
}

/// The contract's fixture wiring: janus on Backstage's legacy backend let anonymous callers in,
/// and every user create.
const OPEN: &str = janus_config!("    allowUnauthenticated: true\n    userCreators: ['*']\n");

/// One janus request: `user` (`alice`...) sends a user token; `headers` adds more.
struct Call<'a> {
    method: Method,
    url: String,
    user: Option<&'a str>,
    headers: Vec<(&'a str, String)>,
    body: Option<(&'a str, Vec<u8>)>,
}

impl<'a> Call<'a> {
    fn new(app: &TestApp, method: Method, path: &str) -> Self {
        // Paths without a base are janus's, on the shared mount.
        let url = if path.starts_with("/api/") {
            format!("{}{path}", app.root)
        } else {
            format!("{}{MOUNT}{path}", app.root)
        };
        Self {
            method,
            url,
            user: None,
            headers: Vec::new(),
            body: None,
        }
    }

    fn by(mut self, user: &'a str) -> Self {
        self.user = Some(user);
        self
    }

    fn header(mut self, name: &'a str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn json(mut self, body: &Value) -> Self {
        self.body = Some(("application/json", serde_json::to_vec(body).unwrap()));
        self
    }

    fn raw(mut self, content_type: &'a str, body: &[u8]) -> Self {
        self.body = Some((content_type, body.to_vec()));
        self
    }

    async fn send(self, app: &TestApp) -> Response {
        let mut req = reqwest::Client::new().request(self.method, &self.url);
        if let Some(user) = self.user {
            req = req.bearer_auth(app.user_token(&format!("user:default/{user}")));
        }
        for (name, value) in self.headers {
            req = req.header(name, value);
        }
        if let Some((content_type, body)) = self.body {
            req = req.header("content-type", content_type).body(body);
        }
        Response::read(req.send().await.expect("request sent")).await
    }
}

fn get(app: &TestApp, path: &str) -> Call<'static> {
    Call::new(app, Method::GET, path)
}

fn post(app: &TestApp, path: &str) -> Call<'static> {
    Call::new(app, Method::POST, path)
}

fn put(app: &TestApp, path: &str) -> Call<'static> {
    Call::new(app, Method::PUT, path)
}

/// Creates a message as `user` (a janus frontend's dev page does) and returns its id.
async fn create(app: &TestApp, user: &str, body: Value) -> String {
    let r = post(app, "/notifications")
        .by(user)
        .json(&body)
        .send(app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.body["messageId"].as_str().expect("messageId").to_owned();
    assert_eq!(r.body, json!({"messageId": id}), "that key only");
    id
}

/// The list answer (a bare array) for `user`. Without parameters, on the legacy path: on the
/// shared mount such a request is upstream's (row 7 of the dispatch).
async fn list(app: &TestApp, user: &str, query: &str) -> Vec<Value> {
    let path = if query.is_empty() {
        format!("{LEGACY}/notifications")
    } else {
        format!("/notifications?{query}")
    };
    let r = get(app, &path).by(user).send(app).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.body.as_array().expect("a bare array").clone()
}

async fn titles(app: &TestApp, user: &str, query: &str) -> Vec<String> {
    list(app, user, query)
        .await
        .iter()
        .map(|m| m["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn count(app: &TestApp, user: &str, query: &str) -> i64 {
    let r = get(app, &format!("/notifications/count?{query}"))
        .by(user)
        .send(app)
        .await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r.body["count"].as_i64().expect("a JSON number")
}

/// Every message, whoever the reader.
async fn total(app: &TestApp) -> usize {
    list(app, "alice", "messageScope=system&pageSize=0&pageNumber=0")
        .await
        .len()
        + list(app, "alice", "messageScope=user&pageSize=0&pageNumber=0")
            .await
            .len()
        + list(app, "bob", "messageScope=user&pageSize=0&pageNumber=0")
            .await
            .len()
}

/// A janus error in the framework's body: status, name and message.
fn assert_framework_error(r: &Response, status: u16, name: &str, message: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.body["error"]["name"], name, "{}", r.text);
    assert_eq!(r.body["error"]["message"], message, "{}", r.text);
    assert_eq!(r.body["response"]["statusCode"], status, "{}", r.text);
    assert!(r.body["request"]["method"].is_string(), "{}", r.text);
}

/// A schema violation: 500 `{"status":500,"err":[one]}`; returns the violation.
fn schema_violation(r: &Response) -> Value {
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["status"], 500, "{}", r.text);
    let err = r.body["err"].as_array().expect("err");
    assert_eq!(err.len(), 1, "{}", r.text);
    err[0].clone()
}

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4)
}

db_test!(creates_targets_and_scopes, config = OPEN, |app| {
    // 1: anonymous (allowed here), a system message.
    let r = post(&app, "/notifications")
        .json(&json!({"title": "System one", "origin": "o"}))
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type.starts_with("application/json"));
    let system = r.body["messageId"].as_str().unwrap().to_owned();
    assert!(is_uuid_v4(&system), "{system}");
    // 19, 2: a user token may create; alice's message.
    let to_alice = create(
        &app,
        "alice",
        json!({"title": "To Alice", "origin": "o", "targetUsers": ["default/alice"]}),
    )
    .await;
    // 3, 4: groups, matched against memberOf (full ref for alice, short form for bob).
    let team_a = create(
        &app,
        "bob",
        json!({"title": "Team A msg", "origin": "o", "targetGroups": ["default/team-a"]}),
    )
    .await;
    let team_b = create(
        &app,
        "bob",
        json!({"title": "Team B msg", "origin": "o", "targetGroups": ["default/team-b"]}),
    )
    .await;
    // 5, 20: empty arrays make a system message; actions keep their order and get ids.
    let empty = create(
        &app,
        "alice",
        json!({"title": "empty arrays", "origin": "o", "targetUsers": [], "targetGroups": [], "actions": []}),
    )
    .await;
    let with_actions = create(
        &app,
        "alice",
        json!({"title": "actions", "origin": "o", "message": "m", "topic": "t", "targetUsers": ["default/carol"],
               "actions": [{"title": "a1", "url": "http://x/1"}, {"title": "a2", "url": "http://x/2"}]}),
    )
    .await;

    // 21, 2: alice's default list: her user-scope messages, newest first.
    let alice = list(&app, "alice", "").await;
    let ids: Vec<&str> = alice.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [team_a.as_str(), to_alice.as_str()]);
    let item = &alice[1];
    assert_eq!(
        item.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "actions",
            "created",
            "id",
            "isSystem",
            "message",
            "origin",
            "readByUser",
            "title",
            "topic"
        ]
    );
    assert_eq!(
        (
            item["isSystem"].clone(),
            item["readByUser"].clone(),
            item["origin"].clone()
        ),
        (json!(false), json!(false), json!("o"))
    );
    // 22
    assert_eq!(
        (
            item["message"].clone(),
            item["topic"].clone(),
            item["actions"].clone()
        ),
        (Value::Null, Value::Null, json!([]))
    );
    let created = item["created"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok()
            && created.len() == 24
            && created.ends_with('Z'),
        "{created}"
    );
    // 2, 3: carol sees alice's message in no scope; bob does not see team-a's.
    assert!(
        !titles(&app, "carol", "messageScope=all")
            .await
            .contains(&"To Alice".to_owned())
    );
    assert_eq!(titles(&app, "bob", "").await, ["Team B msg"]);
    // 4
    assert_eq!(list(&app, "bob", "").await[0]["id"], team_b);
    // 23: exactly the system messages, for anyone.
    let system_titles = titles(&app, "carol", "messageScope=system").await;
    assert_eq!(system_titles, ["empty arrays", "System one"]);
    let systems = list(&app, "bob", "messageScope=system").await;
    assert!(systems.iter().all(|m| m["isSystem"] == true));
    assert_eq!(systems[0]["id"], empty);
    assert_eq!(systems[0]["actions"], json!([]));
    // 24
    let mut all = titles(&app, "alice", "messageScope=all").await;
    all.sort();
    assert_eq!(
        all,
        ["System one", "Team A msg", "To Alice", "empty arrays"]
    );
    // 20
    let carol = list(&app, "carol", "").await;
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0]["id"], with_actions);
    assert_eq!(
        (carol[0]["message"].clone(), carol[0]["topic"].clone()),
        (json!("m"), json!("t"))
    );
    let actions = carol[0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 2);
    for (action, (title, url)) in actions
        .iter()
        .zip([("a1", "http://x/1"), ("a2", "http://x/2")])
    {
        assert_eq!(
            action.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["id", "title", "url"]
        );
        assert_eq!(
            (action["title"].as_str(), action["url"].as_str()),
            (Some(title), Some(url))
        );
        assert!(is_uuid_v4(action["id"].as_str().unwrap()));
    }
    assert_ne!(actions[0]["id"], actions[1]["id"]);
    // 40: no credentials act as default/guest, who sees only system messages.
    let r = get(&app, "/notifications?messageScope=all")
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["isSystem"] == true)
    );
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    // 43: a JSON number.
    assert_eq!(count(&app, "alice", "").await, 2);
    let r = get(&app, "/notifications/count")
        .by("alice")
        .send(&app)
        .await;
    assert_eq!(r.text, r#"{"count":2}"#);
});

db_test!(create_refusals, config = OPEN, |app| {
    create(&app, "alice", json!({"title": "before", "origin": "o"})).await;
    let before = total(&app).await;
    let refused = |body: Value| {
        let app = &app;
        async move {
            post(app, "/notifications")
                .by("alice")
                .json(&body)
                .send(app)
                .await
        }
    };
    // 6: the form check wins over existence, over the whole list.
    let r =
        refused(json!({"title": "t", "origin": "o", "targetUsers": ["default/nobody", "alice"]}))
            .await;
    assert_framework_error(
        &r,
        500,
        "Error",
        "users and groups must be of the form: namespace/name",
    );
    // 7, 8
    let r = refused(json!({"title": "t", "origin": "o", "targetUsers": ["default/nobody"]})).await;
    assert_framework_error(&r, 500, "Error", "user 'default/nobody' does not exist");
    let r =
        refused(json!({"title": "t", "origin": "o", "targetGroups": ["default/nogroup"]})).await;
    assert_framework_error(&r, 500, "Error", "group 'default/nogroup' does not exist");
    // Groups are checked before users.
    let r = refused(json!({"title": "t", "origin": "o", "targetUsers": ["default/nobody"], "targetGroups": ["default/nogroup"]})).await;
    assert_eq!(
        r.body["error"]["message"],
        "group 'default/nogroup' does not exist"
    );
    // 9
    let e = schema_violation(&refused(json!({"origin": "o"})).await);
    assert_eq!(
        e,
        json!({"instancePath": "/requestBody", "schemaPath": "#/properties/requestBody/required",
               "keyword": "required", "params": {"missingProperty": "title"},
               "message": "must have required property 'title'"})
    );
    // 11
    for body in [
        json!({"origin": "o", "title": 1}),
        json!({"origin": "o", "title": "t", "message": null}),
    ] {
        let e = schema_violation(&refused(body).await);
        assert_eq!(
            (e["keyword"].as_str(), e["message"].as_str()),
            (Some("type"), Some("must be string"))
        );
    }
    // 12
    let e = schema_violation(
        &refused(json!({"origin": "o", "title": "t", "actions": [{"title": "a"}]})).await,
    );
    assert_eq!(
        (e["instancePath"].clone(), e["params"].clone()),
        (
            json!("/requestBody/actions/0"),
            json!({"missingProperty": "url"})
        )
    );
    // 13
    let r =
        refused(json!({"origin": "o", "title": "t", "actions": [{"title": "", "url": "u"}]})).await;
    assert_framework_error(&r, 500, "Error", "Both action title and url are mandatory.");
    // 17: a duplicate target rolls the whole message back.
    let r = refused(
        json!({"origin": "o", "title": "dup", "targetUsers": ["default/alice", "default/alice"]}),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.text);
    // 18
    let e = schema_violation(
        &refused(json!({"origin": "o", "title": "t", "targetUsers": "default/alice"})).await,
    );
    assert_eq!(e["message"], "must be array");
    assert_eq!(total(&app).await, before, "nothing refused was stored");
    // 16, 15: empty strings are fine; other keys are ignored.
    create(
        &app,
        "alice",
        json!({"title": "", "origin": "", "severity": "high"}),
    )
    .await;
    let r = post(&app, &format!("{LEGACY}/notifications"))
        .by("alice")
        .json(&json!({"title": "t", "origin": "o", "recipients": {"type": "broadcast"}}))
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(total(&app).await, before + 2);
    // 10, 14: bodies the shared mount gives to upstream (no janus key), on the legacy path.
    for (content_type, body) in [
        ("application/json", &b"{}"[..]),
        ("application/x-www-form-urlencoded", b"title=t&origin=o"),
    ] {
        let r = post(&app, &format!("{LEGACY}/notifications"))
            .by("alice")
            .raw(content_type, body)
            .send(&app)
            .await;
        assert_eq!(
            schema_violation(&r)["params"],
            json!({"missingProperty": "origin"})
        );
    }
    for body in [&b"{\"title\": "[..], b"\"str\""] {
        let r = post(&app, &format!("{LEGACY}/notifications"))
            .by("alice")
            .raw("application/json", body)
            .send(&app)
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(r.body["error"]["name"], "SyntaxError");
    }
});

db_test!(list_paging_ordering_and_filters, config = OPEN, |app| {
    // 25
    for i in 0..25 {
        create(
            &app,
            "alice",
            json!({"title": format!("m{i:02}"), "origin": "o", "targetUsers": ["default/alice"]}),
        )
        .await;
    }
    let page = titles(&app, "alice", "").await;
    assert_eq!(page.len(), 20);
    assert_eq!(
        (page[0].as_str(), page[19].as_str()),
        ("m24", "m05"),
        "newest first"
    );
    assert_eq!(
        list(&app, "alice", "pageSize=0&pageNumber=0").await.len(),
        25
    );
    assert_eq!(
        titles(&app, "alice", "pageSize=5").await,
        ["m24", "m23", "m22", "m21", "m20"]
    );
    // 26
    for t in ["b1", "b2", "b3", "b4"] {
        create(
            &app,
            "alice",
            json!({"title": t, "origin": "o", "targetUsers": ["default/bob"]}),
        )
        .await;
    }
    assert_eq!(
        titles(&app, "bob", "pageSize=2&pageNumber=2").await,
        ["b2", "b1"]
    );
    assert_eq!(
        titles(&app, "bob", "pageSize=2&pageNumber=3").await,
        Vec::<String>::new()
    );
    let refused = |query: &'static str| {
        let app = &app;
        async move {
            get(app, &format!("/notifications?{query}"))
                .by("alice")
                .send(app)
                .await
        }
    };
    // 27
    for query in ["pageSize=0", "pageNumber=0", "pageSize=0&pageNumber=1"] {
        assert_framework_error(
            &refused(query).await,
            500,
            "Error",
            "pageSize and pageNumber must both be either 0 or greater than 0",
        );
    }
    // 28 to 32
    assert_eq!(
        schema_violation(&refused("pageSize=-1&pageNumber=1").await)["keyword"],
        "minimum"
    );
    for query in ["pageSize=abc", "pageSize=2.5"] {
        assert_eq!(
            schema_violation(&refused(query).await)["message"],
            "must be integer"
        );
    }
    for query in ["orderBy=id", "orderByDirec=DESC", "messageScope=foo"] {
        assert_eq!(
            schema_violation(&refused(query).await)["keyword"],
            "enum",
            "{query}"
        );
    }
    let e = schema_violation(&refused("messageScope=all&user=default/alice").await);
    assert_eq!(
        (
            e["keyword"].clone(),
            e["params"]["additionalProperty"].clone()
        ),
        (json!("additionalProperties"), json!("user"))
    );
    for query in [
        "messageScope=user&read=yes",
        "messageScope=user&read=1",
        "messageScope=user&read=",
    ] {
        assert_eq!(
            schema_violation(&refused(query).await)["message"],
            "must be boolean"
        );
    }
    // 37: a bare date is refused; no zone, or a space and an offset, are accepted.
    assert_eq!(
        schema_violation(&refused("messageScope=user&createdAfter=2024-01-01").await)["keyword"],
        "format"
    );
    for query in [
        "messageScope=user&createdAfter=2024-01-01T00:00:00",
        "messageScope=user&createdAfter=2024-01-01%2000:00:00%2B02:00",
    ] {
        assert!(refused(query).await.body.is_array(), "{query}");
    }
    // 42
    let r = get(&app, "/notifications/?pageSize=1")
        .by("alice")
        .send(&app)
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{}", r.text);
    // 39
    for path in ["/notifications?messageScope=all", "/notifications/count"] {
        let r = get(&app, path).by("zed").send(&app).await;
        assert_framework_error(&r, 500, "Error", "user 'default/zed' does not exist");
    }
});

db_test!(list_text_time_read_and_order, config = OPEN, |app| {
    // 38's titles, byte order (upper case first) on both databases.
    let system = create(&app, "alice", json!({"title": "System one", "origin": "o"})).await;
    create(
        &app,
        "alice",
        json!({"title": "Team A msg", "origin": "o", "targetGroups": ["default/team-a"]}),
    )
    .await;
    create(&app, "alice", json!({"title": "To Alice", "origin": "o", "message": "Hello ALICE", "targetUsers": ["default/alice"]})).await;
    create(
        &app,
        "alice",
        json!({"title": "empty arrays", "origin": "o", "targetUsers": []}),
    )
    .await;
    assert_eq!(
        titles(
            &app,
            "alice",
            "orderBy=title&orderByDirec=asc&messageScope=all"
        )
        .await,
        ["System one", "Team A msg", "To Alice", "empty arrays"]
    );
    assert_eq!(
        titles(
            &app,
            "alice",
            "orderBy=title&orderByDirec=desc&messageScope=all"
        )
        .await,
        ["empty arrays", "To Alice", "Team A msg", "System one"]
    );
    // NULL messages: last going up, first going down.
    assert_eq!(
        titles(
            &app,
            "alice",
            "orderBy=message&orderByDirec=asc&messageScope=all"
        )
        .await[0],
        "To Alice"
    );
    assert_eq!(
        titles(
            &app,
            "alice",
            "orderBy=message&orderByDirec=desc&messageScope=all"
        )
        .await[3],
        "To Alice"
    );
    // 34, 35
    assert_eq!(
        titles(&app, "alice", "containsText=alice&messageScope=all").await,
        ["To Alice"]
    );
    assert_eq!(
        titles(&app, "alice", "containsText=TEAM").await,
        ["Team A msg"]
    );
    assert_eq!(
        list(&app, "alice", "containsText=%25&messageScope=all")
            .await
            .len(),
        4
    );
    assert_eq!(
        list(&app, "alice", "containsText=&messageScope=all")
            .await
            .len(),
        4
    );
    // 33, 51: alice reads the system message; bob's state stays.
    let r = put(
        &app,
        &format!("/notifications/read?messageId={system}&read=true"),
    )
    .by("alice")
    .send(&app)
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let read = list(&app, "alice", "messageScope=all&read=true").await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0]["id"].as_str(), &read[0]["readByUser"]),
        (Some(system.as_str()), &json!(true))
    );
    let unread = titles(&app, "alice", "messageScope=all&read=false").await;
    assert_eq!(unread.len(), 3);
    assert!(
        unread.contains(&"empty arrays".to_owned()),
        "never-touched system messages are unread"
    );
    let bob = list(&app, "bob", "messageScope=system").await;
    assert!(bob.iter().all(|m| m["readByUser"] == false));
    // 44
    for query in [
        "messageScope=all&read=false",
        "messageScope=all&read=true",
        "containsText=a&messageScope=system",
    ] {
        assert_eq!(
            count(&app, "alice", query).await as usize,
            list(&app, "alice", &format!("{query}&pageSize=0&pageNumber=0"))
                .await
                .len(),
            "{query}"
        );
    }
    // 45
    let r = get(&app, "/notifications/count?pageSize=1")
        .by("alice")
        .send(&app)
        .await;
    assert_eq!(schema_violation(&r)["keyword"], "additionalProperties");
    // 36: strictly after; a time without a zone is UTC.
    let all = list(
        &app,
        "alice",
        "messageScope=all&orderBy=created&orderByDirec=asc",
    )
    .await;
    let first_created = all[0]["created"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    create(&app, "alice", json!({"title": "later", "origin": "o"})).await;
    let after = titles(
        &app,
        "alice",
        &format!("messageScope=all&createdAfter={first_created}"),
    )
    .await;
    assert!(
        !after.contains(&all[0]["title"].as_str().unwrap().to_owned()),
        "{after:?}"
    );
    assert!(after.contains(&"later".to_owned()));
    let no_zone = first_created.trim_end_matches('Z');
    assert_eq!(
        titles(
            &app,
            "alice",
            &format!("messageScope=all&createdAfter={no_zone}")
        )
        .await,
        after
    );
    assert_eq!(
        list(
            &app,
            "alice",
            "messageScope=all&createdAfter=2999-01-01T00:00:00.000Z"
        )
        .await,
        Vec::<Value>::new()
    );
});

db_test!(mark_read_and_unread, config = OPEN, |app| {
    let to_alice = create(
        &app,
        "alice",
        json!({"title": "t", "origin": "o", "targetUsers": ["default/alice"]}),
    )
    .await;
    let mark = |user: &'static str, query: String| {
        let app = &app;
        async move {
            put(app, &format!("/notifications/read?{query}"))
                .by(user)
                .send(app)
                .await
        }
    };
    // 46
    let r = mark("alice", format!("messageId={to_alice}&read=true")).await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    assert_eq!(count(&app, "alice", "read=true").await, 1);
    assert_eq!(list(&app, "alice", "").await[0]["readByUser"], true);
    // Marking is idempotent.
    assert_eq!(
        mark("alice", format!("messageId={to_alice}&read=true"))
            .await
            .status,
        200
    );
    // 47
    assert_eq!(
        mark("alice", format!("messageId={to_alice}&read=false"))
            .await
            .status,
        200
    );
    assert_eq!(count(&app, "alice", "read=true").await, 0);
    assert_eq!(count(&app, "alice", "read=false").await, 1);
    // 48
    let e = schema_violation(&mark("alice", format!("messageId={to_alice}")).await);
    assert_eq!(
        (e["instancePath"].clone(), e["params"].clone()),
        (json!("/query"), json!({"missingProperty": "read"}))
    );
    // 49, on both databases.
    let r = mark("alice", "messageId=nope&read=true".into()).await;
    assert_framework_error(&r, 500, "Error", "message ID nope does not exist");
    let unknown = uuid::Uuid::new_v4();
    let r = mark("alice", format!("messageId={unknown}&read=true")).await;
    assert_framework_error(
        &r,
        500,
        "Error",
        &format!("message ID {unknown} does not exist"),
    );
    // 50
    assert_eq!(
        schema_violation(&mark("alice", format!("messageId={to_alice}&read=TRUE")).await)["message"],
        "must be boolean"
    );
    // 52, fixed: a message carol does not see is one that does not exist for her, and stays
    // invisible.
    let r = mark("carol", format!("messageId={to_alice}&read=true")).await;
    assert_framework_error(
        &r,
        500,
        "Error",
        &format!("message ID {to_alice} does not exist"),
    );
    assert_eq!(
        list(&app, "carol", "messageScope=all").await,
        Vec::<Value>::new()
    );
    // Group members may mark their group's messages.
    let team_a = create(
        &app,
        "bob",
        json!({"title": "g", "origin": "o", "targetGroups": ["default/team-a"]}),
    )
    .await;
    assert_eq!(
        mark("alice", format!("messageId={team_a}&read=true"))
            .await
            .status,
        200
    );
    assert_eq!(
        mark("bob", format!("messageId={team_a}&read=true"))
            .await
            .status,
        500
    );
});

/// `notifications.externalCallerSecret` of [`SECRET`] (at least 32 bytes).
const CALLER_SECRET: &str = "s3cret-of-thirty-two-bytes-or-more";
const SECRET: &str = janus_config!(
    "    userCreators: [default/alice]\n  externalCallerSecret: s3cret-of-thirty-two-bytes-or-more\n"
);

db_test!(shared_secret, config = SECRET, |app| {
    let id = create(&app, "alice", json!({"title": "t", "origin": "o"})).await;
    // 53, 54
    let upper = CALLER_SECRET.to_uppercase();
    for secret in [None, Some("wrong"), Some(upper.as_str())] {
        let mut call = get(&app, "/notifications/count");
        if let Some(secret) = secret {
            call = call.header("notifications-secret", secret);
        }
        let r = call.send(&app).await;
        assert_framework_error(
            &r,
            401,
            "AuthenticationError",
            "Provided shared secret does not match.",
        );
    }
    // 55: the secret lets a caller in as default/guest (header name in any case).
    let r = post(&app, "/notifications")
        .header("Notifications-Secret", CALLER_SECRET)
        .json(&json!({"title": "from a script", "origin": "ci"}))
        .send(&app)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = get(&app, "/notifications?messageScope=system")
        .header("notifications-secret", CALLER_SECRET)
        .send(&app)
        .await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(2), "{}", r.text);
    // 56
    let r = put(
        &app,
        &format!("/notifications/read?messageId={id}&read=true"),
    )
    .by("alice")
    .header("notifications-secret", "wrong")
    .send(&app)
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // 57
    for authorization in ["Bearer garbage", "Basic eDp5"] {
        let r = get(&app, "/notifications/count")
            .header("authorization", authorization)
            .header("notifications-secret", CALLER_SECRET)
            .send(&app)
            .await;
        assert_eq!(r.status, 401, "{authorization}: {}", r.text);
        assert_eq!(r.body["error"]["name"], "AuthenticationError");
    }
    // 58: the schema is checked before credentials.
    let r = get(&app, "/notifications?messageScope=bad")
        .send(&app)
        .await;
    assert_eq!(schema_violation(&r)["keyword"], "enum");
});

db_test!(
    writes_are_refused_by_default,
    config = janus_config!(),
    |app| {
        for call in [
            get(&app, "/notifications/count"),
            post(&app, "/notifications").json(&json!({"title": "t", "origin": "o"})),
            put(
                &app,
                &format!(
                    "/notifications/read?messageId={}&read=true",
                    uuid::Uuid::new_v4()
                ),
            ),
        ] {
            let r = call.send(&app).await;
            assert_framework_error(&r, 401, "AuthenticationError", "Missing credentials");
        }
        // Service tokens are refused (acceptServiceTokens is off): a sender is not a janus
        // caller.
        for call in [
            post(&app, "/notifications").json(&json!({"title": "t", "origin": "Security Team"})),
            get(&app, "/notifications?messageScope=system"),
        ] {
            let r = call
                .header("authorization", &format!("Bearer {SERVICE_TOKEN}"))
                .send(&app)
                .await;
            assert_framework_error(
                &r,
                401,
                "AuthenticationError",
                "This endpoint takes user tokens only",
            );
        }
        // Users may not create (userCreators is empty), on either path; they still read.
        for path in ["/notifications", "/api/notifications-legacy/notifications"] {
            let r = post(&app, path)
                .by("alice")
                .json(&json!({"title": "t", "origin": "Security Team"}))
                .send(&app)
                .await;
            assert_framework_error(
                &r,
                403,
                "NotAllowedError",
                "The user default/alice is not authorized to notifications.create",
            );
        }
        assert_eq!(
            list(&app, "alice", "messageScope=all").await,
            Vec::<Value>::new()
        );
    }
);

db_test!(
    writes_as_configured,
    config = janus_config!("    userCreators: [default/alice]\n    acceptServiceTokens: true\n"),
    |app| {
        // Only the users listed create.
        create(&app, "alice", json!({"title": "from alice", "origin": "o"})).await;
        let r = post(&app, "/notifications")
            .by("bob")
            .json(&json!({"title": "from bob", "origin": "o"}))
            .send(&app)
            .await;
        assert_framework_error(
            &r,
            403,
            "NotAllowedError",
            "The user default/bob is not authorized to notifications.create",
        );
        // Accepted service tokens act as the guest user, who is not a user of `userCreators`.
        let r = post(&app, "/notifications")
            .header("authorization", &format!("Bearer {SERVICE_TOKEN}"))
            .json(&json!({"title": "from a service", "origin": "svc"}))
            .send(&app)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = get(&app, "/notifications?messageScope=system")
            .header("authorization", &format!("Bearer {SERVICE_TOKEN}"))
            .send(&app)
            .await;
        assert_eq!(r.body.as_array().map(Vec::len), Some(2), "{}", r.text);
        // Action URLs lead to http(s) pages: absolute, or relative to the app (as upstream's
        // links); anything else is a 400 and nothing is stored.
        let with_url = |url: &str| json!({"title": "t", "origin": "o", "actions": [{"title": "ok", "url": "https://example.com"}, {"title": "a", "url": url}]});
        for url in [
            "javascript:alert(document.cookie)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "http://[::1",
        ] {
            let r = post(&app, "/notifications")
                .by("alice")
                .json(&with_url(url))
                .send(&app)
                .await;
            r.assert_error(400, "InputError");
            assert!(
                r.message().starts_with("Invalid link provided"),
                "{url}: {}",
                r.text
            );
        }
        for url in [
            "http://x/1",
            "https://example.com/a?b=c",
            "/catalog/default",
            "docs/x",
        ] {
            create(&app, "alice", with_url(url)).await;
        }
        assert_eq!(
            list(&app, "alice", "messageScope=system&pageSize=0&pageNumber=0")
                .await
                .len(),
            6,
            "two before, four with good URLs"
        );
    }
);

// A query of thousands of parameters took a worker's time before anything refused it, from
// anonymous callers too: it is a 400 first, before the schema and the credentials.
db_test!(
    overlong_queries_are_refused_first,
    config = janus_config!(),
    |app| {
        let many: Vec<String> = (0..2000).map(|i| format!("k{i}=v")).collect();
        let many = many.join("&");
        for call in [
            get(&app, &format!("/notifications?messageScope=all&{many}")),
            get(&app, &format!("/notifications/count?{many}")),
            put(&app, &format!("/notifications/read?{many}")),
            post(&app, &format!("/notifications?{many}"))
                .json(&json!({"title": "t", "origin": "o"})),
            get(&app, &format!("{LEGACY}/notifications?{many}")),
        ] {
            let r = call.send(&app).await;
            r.assert_error(400, "InputError");
            assert_eq!(
                r.message(),
                "Too many query parameters: at most 64 are accepted"
            );
        }
        // Up to the cap, janus's own answers, in janus's order: the schema, then credentials.
        let at_cap = vec!["messageScope=all"; 64].join("&");
        let r = get(&app, &format!("/notifications?{at_cap}"))
            .send(&app)
            .await;
        assert_eq!(schema_violation(&r)["message"], "must be string");
        let r = get(&app, "/notifications?messageScope=all")
            .send(&app)
            .await;
        assert_framework_error(&r, 401, "AuthenticationError", "Missing credentials");
        // Upstream's list is capped the same way (after its credentials).
        let upstream = vec!["orderField=created"; 65].join("&");
        let r = app
            .get(
                &format!("/notifications?{upstream}"),
                &app.user_token("user:default/alice"),
            )
            .await;
        r.assert_error(400, "InputError");
        assert_eq!(
            r.message(),
            "Too many query parameters: at most 64 are accepted"
        );
    }
);

/// The first line `log` has about `id`.
async fn logged(log: &crate::support::Log, id: &str) -> String {
    for _ in 0..200 {
        if let Some(line) = log.lock().unwrap().iter().find(|l| l.contains(id)) {
            return line.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing logged about {id}: {:#?}", log.lock().unwrap());
}

/// Janus stores no creator (its tables and answers stay janus's), so the binary logs who
/// created each message: the origin is the sender's word, the caller is not.
#[tokio::test]
async fn creators_are_logged() {
    let db = TestDb::create(DbKind::Sqlite).expect("SQLite");
    let dir = tempfile::tempdir().unwrap();
    let configs = crate::support::config_files(
        &db,
        dir.path(),
        janus_config!("    userCreators: [default/alice]\n    acceptServiceTokens: true\n"),
    );
    let (_process, api, log) = crate::support::serve_binary_logged(dir.path(), &configs, &[]).await;
    let body = json!({"title": "t", "origin": "Security Team"});
    let alice = crate::support::user_token("user:default/alice");
    let mut ids = Vec::new();
    for token in [alice.as_str(), SERVICE_TOKEN] {
        let r = api.post("/notifications", token, &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        ids.push(r.body["messageId"].as_str().unwrap().to_owned());
    }
    for (id, caller) in [
        (&ids[0], "caller=default/alice via=user"),
        (
            &ids[1],
            "caller=default/guest via=service:external:test-service",
        ),
    ] {
        let line = logged(&log, id).await;
        assert!(
            line.contains("janus message created")
                && line.contains(caller)
                && line.contains(r#"origin="Security Team""#),
            "{line}"
        );
    }
}

db_test!(
    strictness_switches,
    config = janus_config!(
        "    acceptServiceTokens: false\n    validationErrorStatus: 400\n    allowUnauthenticated: true\n    guestUser: default/ghost\n"
    ),
    |app| {
        // 60: janus 1.6.0 checked every token as a user token.
        let r = get(&app, "/notifications/count")
            .header("authorization", &format!("Bearer {SERVICE_TOKEN}"))
            .send(&app)
            .await;
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.body["error"]["name"], "AuthenticationError");
        // The optional 400 for schema violations.
        let r = get(&app, "/notifications?messageScope=bad")
            .send(&app)
            .await;
        assert_eq!(
            (r.status, r.body["status"].clone()),
            (400, json!(400)),
            "{}",
            r.text
        );
        assert_eq!(r.body["err"][0]["keyword"], "enum");
        // 41: the guest user must be in the catalog to list.
        let r = get(&app, "/notifications?messageScope=all")
            .send(&app)
            .await;
        assert_framework_error(&r, 500, "Error", "user 'default/ghost' does not exist");
    }
);

db_test!(
    a_policy_denies_permissions,
    config = janus_config!(
        "    allowUnauthenticated: true\n    userCreators: ['*']\n    permissions:\n      deny:\n        - {permission: notifications.update.read, users: [default/alice]}\n        - {permission: notifications.create, users: [default/guest]}\n"
    ),
    |app| {
        // 59: before the handler, so even for a message that does not exist.
        let r = put(
            &app,
            &format!(
                "/notifications/read?messageId={}&read=true",
                uuid::Uuid::new_v4()
            ),
        )
        .by("alice")
        .send(&app)
        .await;
        assert_framework_error(
            &r,
            403,
            "NotAllowedError",
            "The user default/alice is not authorized to notifications.update.read",
        );
        let r = post(&app, "/notifications")
            .json(&json!({"title": "t", "origin": "o"}))
            .send(&app)
            .await;
        assert_framework_error(
            &r,
            403,
            "NotAllowedError",
            "The user default/guest is not authorized to notifications.create",
        );
        // Not denied: allowed.
        let id = create(&app, "alice", json!({"title": "t", "origin": "o"})).await;
        let r = put(
            &app,
            &format!("/notifications/read?messageId={id}&read=true"),
        )
        .by("bob")
        .send(&app)
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(count(&app, "alice", "messageScope=all").await, 1);
    }
);

db_test!(unknown_operations_and_large_bodies, config = OPEN, |app| {
    // 62, on the legacy path (on the shared mount, upstream answers these).
    for (method, path) in [
        (Method::DELETE, "/notifications"),
        (Method::GET, "/notifications/abc"),
        (Method::POST, "/notifications/read"),
        (Method::GET, "/"),
        (Method::GET, ""),
    ] {
        let r = Call::new(&app, method.clone(), &format!("{LEGACY}{path}"))
            .by("alice")
            .send(&app)
            .await;
        assert_framework_error(&r, 500, "Error", "Unknown operation");
        // Outside the plugin's mount, the path as asked (not cut at a shared prefix).
        assert_eq!(
            r.body["request"]["url"],
            format!("{LEGACY}{path}"),
            "{}",
            r.text
        );
    }
    assert_eq!(
        Call::new(&app, Method::DELETE, "/notifications/x")
            .by("alice")
            .send(&app)
            .await
            .status,
        404,
        "upstream's answer on the shared mount"
    );
    // 63
    let big = json!({"title": "t", "origin": "o", "message": "x".repeat(101 * 1024)});
    let r = post(&app, &format!("{LEGACY}/notifications"))
        .by("alice")
        .json(&big)
        .send(&app)
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    // Everything of the API works on the legacy path.
    let id = create(
        &app,
        "alice",
        json!({"title": "t", "origin": "o", "targetUsers": ["default/alice"]}),
    )
    .await;
    let r = get(&app, &format!("{LEGACY}/notifications/count/"))
        .by("alice")
        .send(&app)
        .await;
    assert_eq!(r.body, json!({"count": 1}));
    let r = put(
        &app,
        &format!("{LEGACY}/notifications/read?messageId={id}&read=true"),
    )
    .by("alice")
    .send(&app)
    .await;
    assert_eq!(r.status, 200);
    let r = get(&app, &format!("{LEGACY}/notifications"))
        .by("alice")
        .send(&app)
        .await;
    assert_eq!(r.body[0]["readByUser"], true, "{}", r.text);
});

db_test!(
    the_dispatch_table_on_the_shared_mount,
    config = OPEN,
    |app| {
        let upstream_id = app
            .send_to("user:default/alice", json!({"title": "upstream"}))
            .await;
        let janus_id = create(
            &app,
            "alice",
            json!({"title": "janus", "origin": "o", "targetUsers": ["default/alice"]}),
        )
        .await;
        let is_upstream_list = |r: &Response| r.status == 200 && r.body["totalCount"].is_number();
        // 1
        assert_eq!(count(&app, "alice", "").await, 1);
        let r = put(
            &app,
            &format!("/notifications/read?messageId={janus_id}&read=true"),
        )
        .by("alice")
        .send(&app)
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // 2: upstream's send, and upstream's rules (users may not send there).
        let upstream_send = json!({"recipients": {"type": "broadcast"}, "payload": {"title": "b"}});
        let r = app.send(upstream_send.clone()).await;
        assert!(r.body[0]["payload"]["title"] == "b", "{}", r.text);
        // Row 2 comes before row 6: janus's secret header does not take an upstream send.
        let r = post(&app, "/notifications")
            .header("authorization", &format!("Bearer {SERVICE_TOKEN}"))
            .header("notifications-secret", "anything")
            .json(&upstream_send)
            .send(&app)
            .await;
        assert!(r.body[0]["payload"]["title"] == "b", "{}", r.text);
        let r = post(&app, "/notifications")
            .by("alice")
            .json(&upstream_send)
            .send(&app)
            .await;
        r.assert_error(403, "NotAllowedError");
        let r = post(&app, "/notifications")
            .by("alice")
            .json(&json!({"title": "t", "origin": "o", "payload": {"title": "t"}}))
            .send(&app)
            .await;
        r.assert_error(403, "NotAllowedError");
        // 3 (above, in `create`), 4: upstream's 400.
        for body in [json!({}), json!([1]), json!({"foo": 1})] {
            app.send(body).await.assert_error(400, "InputError");
        }
        // 5
        for query in [
            "pageSize=20",
            "pageNumber=1",
            "orderBy=created",
            "orderByDirec=asc",
            "containsText=j",
            "messageScope=user",
        ] {
            assert_eq!(titles(&app, "alice", query).await, ["janus"], "{query}");
        }
        // 6
        let r = get(&app, "/notifications?read=true")
            .by("alice")
            .header("notifications-secret", "anything")
            .send(&app)
            .await;
        assert_eq!(r.body[0]["id"], janus_id, "{}", r.text);
        // 7: what upstream's frontend sends goes upstream.
        let created_after = "2020-01-01T00:00:00.000Z";
        for query in [
            "",
            "read=false",
            "read=true",
            &format!("createdAfter={created_after}"),
        ] {
            let r = get(&app, &format!("/notifications?{query}"))
                .by("alice")
                .send(&app)
                .await;
            assert!(is_upstream_list(&r), "{query}: {}", r.text);
        }
        let r = get(&app, "/notifications?read=false")
            .by("alice")
            .send(&app)
            .await;
        assert!(
            crate::support::ids(&r.body["notifications"]).contains(&upstream_id),
            "{}",
            r.text
        );
        // 8: upstream's routes, with what looks like janus's markers.
        assert_eq!(
            app.get("/status?pageSize=1", &app.user_token("user:default/alice"))
                .await
                .status,
            400
        );
        let r = app
            .get(
                &format!("/notifications/{upstream_id}"),
                &app.user_token("user:default/alice"),
            )
            .await;
        assert_eq!(r.body["id"], upstream_id);
        for path in ["", "/"] {
            let r = get(&app, &format!("{MOUNT}{path}?pageSize=1"))
                .by("alice")
                .send(&app)
                .await;
            r.assert_error(400, "InputError");
            assert!(is_upstream_list(
                &get(&app, &format!("{MOUNT}{path}"))
                    .by("alice")
                    .send(&app)
                    .await
            ));
        }
        // Our opt-in header.
        let r = get(&app, "/notifications")
            .by("alice")
            .header("x-notifications-api", "janus")
            .send(&app)
            .await;
        assert_eq!(r.body[0]["id"], janus_id, "{}", r.text);
        let r = get(&app, "/notifications?pageSize=1")
            .by("alice")
            .header("X-Notifications-Api", "upstream")
            .send(&app)
            .await;
        r.assert_error(400, "InputError");
    }
);

db_test!(
    ambiguous_lists_may_go_to_janus,
    config = janus_config!(
        "    allowUnauthenticated: true\n    userCreators: ['*']\n    ambiguousListGoesTo: janus\n"
    ),
    |app| {
        create(
            &app,
            "alice",
            json!({"title": "janus", "origin": "o", "targetUsers": ["default/alice"]}),
        )
        .await;
        assert_eq!(titles(&app, "alice", "").await, ["janus"]);
        assert_eq!(titles(&app, "alice", "read=false").await, ["janus"]);
        // Upstream's other routes are unaffected.
        let r = app
            .get("/status", &app.user_token("user:default/alice"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
);

db_test!(
    exclusive_mount,
    config = janus_config!(
        "    allowUnauthenticated: true\n    userCreators: ['*']\n    mount: exclusive\n"
    ),
    |app| {
        let id = create(
            &app,
            "alice",
            json!({"title": "janus", "origin": "o", "targetUsers": ["default/alice"]}),
        )
        .await;
        assert_eq!(list(&app, "alice", "").await[0]["id"], id);
        // 10 on the plugin's own mount.
        let r = post(&app, "/notifications")
            .raw("application/json", b"{}")
            .send(&app)
            .await;
        assert_eq!(
            schema_violation(&r)["params"],
            json!({"missingProperty": "origin"})
        );
        for (method, path) in [
            (Method::GET, "/status"),
            (Method::DELETE, "/notifications"),
            (Method::GET, "/"),
        ] {
            let r = Call::new(&app, method, &format!("{MOUNT}{path}"))
                .by("alice")
                .send(&app)
                .await;
            assert_framework_error(&r, 500, "Error", "Unknown operation");
        }
    }
);

db_test!(
    janus_off_on_the_mount,
    config = janus_config!("    allowUnauthenticated: true\n    mount: off\n"),
    |app| {
        // Upstream answers everything there; the legacy path still serves janus.
        let r = get(&app, "/notifications/count")
            .by("alice")
            .send(&app)
            .await;
        r.assert_error(404, "NotFoundError");
        let r = get(&app, &format!("{LEGACY}/notifications/count"))
            .by("alice")
            .send(&app)
            .await;
        assert_eq!(r.body, json!({"count": 0}));
    }
);

// The exact requests of the unmodified janus frontend (the contract's 1.6), with a user token;
// its send page needs users allowed to create.
db_test!(
    what_the_janus_frontend_sends,
    config = janus_config!("    userCreators: ['*']\n"),
    |app| {
        let iso =
            |t: time::OffsetDateTime| notifications_backend::testing::service::janus::iso_millis(t);
        let now = time::OffsetDateTime::now_utc();
        let page_load = iso(now - time::Duration::minutes(1));
        let week_ago = iso(now - time::Duration::days(7));
        // The dev page's create, with a user token.
        let personal = create(&app, "alice", json!({"origin": "dev", "title": "Personal", "message": "m", "topic": "t",
        "targetUsers": ["default/alice"], "actions": [{"title": "open", "url": "https://example.com"}]})).await;
        let update = create(&app, "bob", json!({"origin": "dev", "title": "Update"})).await;
        // The sidebar icon's poll.
        assert_eq!(
            count(&app, "alice", "messageScope=user&read=false").await,
            1
        );
        let latest = list(&app, "alice", &format!("pageSize=1&pageNumber=1&orderBy=created&orderByDirec=desc&createdAfter={page_load}&messageScope=system")).await;
        assert_eq!(
            (latest[0]["id"].as_str(), &latest[0]["readByUser"]),
            (Some(update.as_str()), &json!(false))
        );
        // The page's tabs, "unread only", each followed by its count.
        for (scope, id) in [("user", &personal), ("system", &update)] {
            for created_after in [week_ago.as_str(), "1970-01-01T00:00:00.000Z"] {
                let filters =
                    format!("createdAfter={created_after}&messageScope={scope}&read=false");
                let page = list(
                    &app,
                    "alice",
                    &format!("orderBy=created&orderByDirec=asc&pageSize=5&pageNumber=1&{filters}"),
                )
                .await;
                assert_eq!(page.len(), 1, "{filters}");
                assert_eq!(&page[0]["id"], id);
                assert!(!page[0]["created"].as_str().unwrap().is_empty());
                assert_eq!(count(&app, "alice", &filters).await, 1);
                let page = list(
                    &app,
                    "alice",
                    &format!("pageSize=5&pageNumber=1&containsText=pers&{filters}"),
                )
                .await;
                assert_eq!(page.len(), usize::from(scope == "user"));
            }
        }
        // The read toggle.
        let r = put(
            &app,
            &format!("/notifications/read?messageId={personal}&read=true"),
        )
        .by("alice")
        .send(&app)
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            count(&app, "alice", "messageScope=user&read=false").await,
            0
        );
        let r = put(
            &app,
            &format!("/notifications/read?messageId={personal}&read=false"),
        )
        .by("alice")
        .send(&app)
        .await;
        assert_eq!(r.status, 200);
        let items = list(&app, "alice", "pageSize=5&pageNumber=1&messageScope=user").await;
        assert_eq!(items[0]["actions"][0]["url"], "https://example.com");
    }
);

/// A database janus 1.x created (its tables, its rows) is used as it is: it starts without
/// this service's tables.
async fn adopts_a_janus_database(kind: DbKind) {
    let Some(db) = TestDb::create_empty(kind) else {
        return;
    };
    let (id_type, bool_true, bool_false) = match kind {
        DbKind::Sqlite => ("char(36)", "1", "0"),
        DbKind::Postgres => ("uuid", "true", "false"),
    };
    let message = "8b8f2d36-3b8e-4c4f-9d9e-2f6b1e3a6c01";
    let system = "1c0d7d1e-58f4-4b8a-8a8e-7e9f6a5b4c02";
    let ddl = format!(
        "CREATE TABLE messages (id {id_type} NOT NULL PRIMARY KEY, origin varchar(255) NOT NULL, \
           created varchar(255), title varchar(255) NOT NULL, message text, topic varchar(255), \
           is_system boolean NOT NULL);
         CREATE INDEX messages_created_index ON messages (created);
         CREATE INDEX messages_is_system_index ON messages (is_system);
         CREATE TABLE users (message_id {id_type} NOT NULL REFERENCES messages (id) ON DELETE CASCADE, \
           \"user\" varchar(255) NOT NULL, read boolean DEFAULT {bool_false}, PRIMARY KEY (message_id, \"user\"));
         CREATE INDEX users_message_id_index ON users (message_id);
         CREATE INDEX users_user_index ON users (\"user\");
         CREATE TABLE \"groups\" (message_id {id_type} NOT NULL REFERENCES messages (id) ON DELETE CASCADE, \
           \"group\" varchar(255) NOT NULL, PRIMARY KEY (message_id, \"group\"));
         CREATE INDEX groups_message_id_index ON \"groups\" (message_id);
         CREATE INDEX groups_group_index ON \"groups\" (\"group\");
         CREATE TABLE actions (id {id_type} NOT NULL, message_id {id_type} NOT NULL REFERENCES messages (id) \
           ON DELETE CASCADE, url varchar(255) NOT NULL, title varchar(255) NOT NULL);
         CREATE INDEX actions_message_id_index ON actions (message_id);
         INSERT INTO messages VALUES ('{message}', 'my-origin', '2024-03-06T14:00:00.123Z', 'My title', \
           'I have nothing to tell', 'my-topic', {bool_false});
         INSERT INTO messages VALUES ('{system}', 'ops', '2024-03-07T09:30:00.000Z', 'Maintenance', NULL, NULL, {bool_true});
         INSERT INTO \"groups\" VALUES ('{message}', 'default/team-b');
         INSERT INTO users VALUES ('{system}', 'default/bob', {bool_true});
         INSERT INTO actions VALUES ('5e1b0c1e-0000-4000-8000-000000000001', '{message}', 'http://foo.bar', 'my-title');"
    );
    db.store()
        .db()
        .run(move |conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute(&ddl)
                .map_err(notifications_backend::testing::db::DbError::from)
        })
        .await
        .expect("janus's tables and rows");
    let app = TestApp::start_on(db, janus_config!("    userCreators: ['*']\n"), None).await;
    let all = list(&app, "bob", "messageScope=all").await;
    assert_eq!(
        all,
        [
            json!({"id": system, "created": "2024-03-07T09:30:00.000Z", "isSystem": true, "readByUser": true,
                   "origin": "ops", "title": "Maintenance", "message": null, "topic": null, "actions": []}),
            json!({"id": message, "created": "2024-03-06T14:00:00.123Z", "isSystem": false, "readByUser": false,
                   "origin": "my-origin", "title": "My title", "message": "I have nothing to tell", "topic": "my-topic",
                   "actions": [{"id": "5e1b0c1e-0000-4000-8000-000000000001", "url": "http://foo.bar", "title": "my-title"}]}),
        ]
    );
    assert_eq!(count(&app, "bob", "read=false").await, 1);
    create(
        &app,
        "alice",
        json!({"title": "new", "origin": "o", "targetGroups": ["default/team-b"]}),
    )
    .await;
    assert_eq!(count(&app, "bob", "").await, 2);
}

on_both_databases!(adopts_a_janus_database);
