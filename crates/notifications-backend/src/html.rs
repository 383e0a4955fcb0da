//! Text into HTML: what the service writes into mail bodies and its own pages is escaped here,
//! and notifications' Markdown bodies are rendered here, for mail and the web inbox alike.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use url::Url;

use crate::service::link::resolve_link;

/// `payload.metadata` key of a Markdown body, shown in place of the description.
pub const MARKDOWN_BODY_KEY: &str = "backstage.io/body.markdown";

/// `text` as HTML text or attribute value (quoted with either quote).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// CommonMark (with tables and strikethrough) to HTML. Raw HTML is shown as text, relative
/// links and images are made absolute, and a link or image of another scheme than http(s) and
/// mailto is left out, its text kept (mail readers have no base URL, and `javascript:` links
/// have no place in mail or page).
pub fn markdown_to_html(markdown: &str, app_base_url: &Url) -> String {
    let safe_url = |url: &str| -> Option<CowStr<'static>> {
        resolve_link(url, app_base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https" | "mailto"))
            .map(|u| CowStr::from(String::from(u)))
    };
    // Whether each open link or image was kept, so that its end goes with it (an image may
    // sit in a link).
    let mut kept: Vec<bool> = Vec::new();
    let events = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    )
    .filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let url = safe_url(&dest_url);
            kept.push(url.is_some());
            url.map(|dest_url| {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            })
        }
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let url = safe_url(&dest_url);
            kept.push(url.is_some());
            url.map(|dest_url| {
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            })
        }
        Event::End(end @ (TagEnd::Link | TagEnd::Image)) => {
            kept.pop().unwrap_or(true).then_some(Event::End(end))
        }
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(md: &str) -> String {
        markdown_to_html(md, &Url::parse("https://backstage.example.com/").unwrap())
    }

    #[test]
    fn raw_html_is_text() {
        let html = render("a <script>alert(1)</script> <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn unsafe_links_and_images_keep_only_their_text() {
        let html = render(
            "[bad](javascript:alert(1)) ![pic](data:image/png;base64,AA) \
             [![inner](javascript:x)](https://ok.example/) [rel](/catalog)",
        );
        assert!(!html.contains("javascript"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(html.contains("bad"), "{html}");
        assert!(
            html.contains("<a href=\"https://ok.example/\">inner</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"https://backstage.example.com/catalog\">rel</a>"),
            "{html}"
        );
        assert_eq!(html.matches("<a ").count(), html.matches("</a>").count());
    }
}
