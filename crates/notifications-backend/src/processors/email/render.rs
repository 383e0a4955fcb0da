//! The mail of a notification: upstream's default template (subject = title; the description
//! and the link), with an optional Markdown body.

use notifications_common::Notification;
use url::Url;

use crate::html::{MARKDOWN_BODY_KEY, Reader, escape, markdown_to_html};
use crate::service::link::resolve_link;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

pub fn render(notification: &Notification, app_base_url: &Url) -> Rendered {
    let payload = &notification.payload;
    let link = link(payload.link.as_deref(), app_base_url);
    let markdown = payload
        .metadata
        .as_ref()
        .and_then(|m| m.get(MARKDOWN_BODY_KEY))
        .and_then(|v| v.as_str())
        .filter(|md| !md.trim().is_empty());
    let description = payload.description.as_deref().filter(|d| !d.is_empty());
    let link_html = format!(r#"<a href="{0}">{0}</a>"#, escape(&link));
    let html = match (markdown, description) {
        (Some(md), _) => format!(
            "{}<p>{link_html}</p>",
            markdown_to_html(md, app_base_url, Reader::Mail)
        ),
        (None, Some(description)) => format!("<p>{}<br/>{link_html}</p>", escape(description)),
        (None, None) => format!("<p>{link_html}</p>"),
    };
    let text = match markdown.or(description) {
        Some(body) => format!("{body}\n\n{link}"),
        None => link.clone(),
    };
    Rendered {
        subject: payload.title.clone(),
        html,
        text,
    }
}

/// One notification of a digest, with the time it came as its reader tells time.
#[derive(Clone, Debug)]
pub struct DigestEntry {
    pub notification: Notification,
    pub local_time: String,
}

/// The mail of a digest: in upstream's style (plain paragraphs, the link spelled out), one
/// paragraph per notification (title, severity and time, link), oldest first, then the inbox.
pub fn render_digest(entries: &[DigestEntry], app_base_url: &Url) -> Rendered {
    let subject = match entries.len() {
        1 => "1 new notification".to_owned(),
        n => format!("{n} new notifications"),
    };
    let inbox = link(None, app_base_url);
    let mut text = String::new();
    let mut html = String::new();
    for entry in entries {
        let payload = &entry.notification.payload;
        let link = link(payload.link.as_deref(), app_base_url);
        let severity = payload.severity.unwrap_or_default();
        let about = format!("{severity} · {}", entry.local_time);
        text.push_str(&format!("{}\n{about}\n{link}\n\n", payload.title));
        html.push_str(&format!(
            r#"<p><strong>{}</strong><br/>{}<br/><a href="{2}">{2}</a></p>"#,
            escape(&payload.title),
            escape(&about),
            escape(&link),
        ));
    }
    text.push_str(&format!("All notifications: {inbox}"));
    html.push_str(&format!(
        r#"<p><a href="{0}">All notifications</a></p>"#,
        escape(&inbox)
    ));
    Rendered {
        subject,
        html,
        text,
    }
}

/// The payload's link made absolute against `app.baseUrl`, or the inbox when there is none.
fn link(link: Option<&str>, app_base_url: &Url) -> String {
    match link.filter(|l| !l.is_empty()) {
        Some(link) => {
            resolve_link(link, app_base_url).map_or_else(|_| link.to_owned(), String::from)
        }
        None => format!(
            "{}/notifications",
            app_base_url.as_str().trim_end_matches('/')
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn notification(payload: serde_json::Value) -> Notification {
        serde_json::from_value(json!({
            "id": "9b3c7f8e-2a4d-4c1e-8f6a-1d2e3f4a5b6c",
            "user": "user:default/a",
            "created": "2026-01-01T00:00:00.000Z",
            "origin": "external:test",
            "payload": payload,
        }))
        .unwrap()
    }

    fn base() -> Url {
        Url::parse("https://backstage.example.com/").unwrap()
    }

    #[test]
    fn upstream_default_template() {
        let r = render(
            &notification(
                json!({"title": "Build failed", "description": "See <why>", "link": "/catalog/x"}),
            ),
            &base(),
        );
        assert_eq!(r.subject, "Build failed");
        assert_eq!(
            r.html,
            r#"<p>See &lt;why&gt;<br/><a href="https://backstage.example.com/catalog/x">https://backstage.example.com/catalog/x</a></p>"#
        );
        assert_eq!(
            r.text,
            "See <why>\n\nhttps://backstage.example.com/catalog/x"
        );
    }

    #[test]
    fn no_link_leads_to_the_inbox() {
        let r = render(&notification(json!({"title": "t"})), &base());
        let inbox = "https://backstage.example.com/notifications";
        assert_eq!(r.html, format!(r#"<p><a href="{inbox}">{inbox}</a></p>"#));
        assert_eq!(r.text, inbox);
        let r = render(
            &notification(json!({"title": "t", "link": "https://other.example.org/x?a=1&b=2"})),
            &base(),
        );
        assert!(
            r.html
                .contains(r#"href="https://other.example.org/x?a=1&amp;b=2""#),
            "{}",
            r.html
        );
    }

    #[test]
    fn markdown_body() {
        let md = "# Deploy\n\n**done** in [logs](/logs) and [bad](javascript:alert(1))\n\n<script>x</script>\n";
        let r = render(
            &notification(
                json!({"title": "t", "description": "plain", "metadata": {MARKDOWN_BODY_KEY: md}}),
            ),
            &base(),
        );
        assert!(r.html.starts_with("<h1>Deploy</h1>\n<p><strong>done</strong> in <a href=\"https://backstage.example.com/logs\">logs</a> and bad</p>\n&lt;script&gt;x&lt;/script&gt;"), "{}", r.html);
        assert!(!r.html.contains("plain"));
        assert!(!r.html.contains("<script>"));
        assert!(r.html.ends_with("</p>"));
        assert_eq!(
            r.text,
            format!("{md}\n\nhttps://backstage.example.com/notifications")
        );
    }
}
