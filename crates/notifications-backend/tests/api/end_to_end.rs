//! Issue 4's "done when": a send to a group with e-mail and Slack configured reaches the inbox,
//! each member's mailbox and Slack, as each user's settings say; an SMTP outage delays mail but
//! loses or repeats none.

use std::collections::BTreeSet;

use serde_json::json;

use crate::email::{Sink, free_port};
use crate::on_both_databases;
use crate::slack::FakeSlack;
use crate::support::{DbKind, SERVICE, TestApp};

async fn a_group_reaches_inbox_mail_and_slack(kind: DbKind) {
    let slack = FakeSlack::start().await;
    let port = free_port();
    let config = format!(
        r#"
notifications:
  catalog: {{files: ['{dir}/tests/fixtures/catalog/e2e.yaml']}}
  delivery: {{retryDelay: 50ms, maxRetryDelay: 200ms, pollInterval: 50ms, maxAttempts: 50}}
  processors:
    email:
      transportConfig: {{transport: smtp, hostname: 127.0.0.1, port: {port}}}
      sender: noreply@example.com
    slack:
      - token: xoxb-test-token
        apiUrl: {slack}
"#,
        dir = env!("CARGO_MANIFEST_DIR"),
        slack = slack.url
    );
    let Some(app) = TestApp::start(kind, &config).await else {
        return;
    };
    // cat wants no mail from this origin.
    let r = app
        .post(
            "/settings",
            &app.user_token("user:default/cat"),
            &json!({"channels": [{"id": "Email", "origins": [{"id": SERVICE, "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The SMTP server is down when the send is accepted.
    let created = app
        .send_ok(json!({
            "recipients": {"type": "entity", "entityRef": ["group:default/platform", "user:default/ann"]},
            "payload": {"title": "Deploy failed", "description": "see the logs", "severity": "high"}
        }))
        .await;
    let inbox: BTreeSet<&str> = created
        .iter()
        .map(|n| n["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        inbox,
        BTreeSet::from(["user:default/ann", "user:default/ben", "user:default/cat"])
    );
    for user in ["ann", "ben", "cat"] {
        let list = app.list(&format!("user:default/{user}"), "").await;
        assert_eq!(list["totalCount"], 1, "{user}'s inbox");
    }
    // Slack: the team's channel, and a DM to the explicitly named member.
    slack.wait_for("chat.postMessage", 2).await;
    assert_eq!(slack.channels("chat.postMessage"), ["C_PLATFORM", "U_ANN"]);

    // The SMTP server comes up: each member who wants mail gets one, once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sink = Sink::start(port, &[]).await;
    let mails = sink
        .expect_to(&["ann@example.com", "ben@example.com"])
        .await;
    assert!(
        mails.iter().all(|m| m["subject"] == "Deploy failed"),
        "{mails:?}"
    );
}
on_both_databases!(a_group_reaches_inbox_mail_and_slack);
