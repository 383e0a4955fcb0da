//! Text into HTML: what the service writes into mail bodies and its own pages is escaped here,
//! and notifications' Markdown bodies are rendered here, for mail and the web inbox alike.

use pulldown_cmark::{Alignment, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};
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

/// Where rendered Markdown is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// A mail reader: images are shown, and tables keep their alignment.
    Mail,
    /// The web inbox, under its Content-Security-Policy: no inline style (table alignment is
    /// left out), and no image (an image of this service would be a request with the reader's
    /// cookie; others are not loaded): an image is a link to it instead.
    Page,
}

/// CommonMark (with tables and strikethrough) to HTML. Raw HTML is shown as text, relative
/// links and images are made absolute, and a link or image of another scheme than http(s) and
/// mailto is left out, its text kept (mail readers have no base URL, and `javascript:` links
/// have no place in mail or page). E-mail autolinks (`<jane@example.com>`) stay addresses.
pub fn markdown_to_html(markdown: &str, app_base_url: &Url, reader: Reader) -> String {
    let safe_url = |link_type: LinkType, url: &str| -> Option<CowStr<'static>> {
        if link_type == LinkType::Email {
            // The writer puts `mailto:` before it.
            return Some(CowStr::from(url.to_owned()));
        }
        resolve_link(url, app_base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https" | "mailto"))
            .map(|u| CowStr::from(String::from(u)))
    };
    // What each open link or image became, so that its end goes with it (an image may sit in
    // a link).
    let mut open: Vec<Option<TagEnd>> = Vec::new();
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
            let url = safe_url(link_type, &dest_url);
            open.push(url.as_ref().map(|_| TagEnd::Link));
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
            let url = safe_url(link_type, &dest_url);
            let in_link = open.contains(&Some(TagEnd::Link));
            let (end, start) = match (url, reader) {
                (None, _) => (None, None),
                (Some(dest_url), Reader::Mail) => (
                    Some(TagEnd::Image),
                    Some(Tag::Image {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }),
                ),
                // A link in a link is no HTML: the alt text stays the outer link's.
                (Some(_), Reader::Page) if in_link => (None, None),
                (Some(dest_url), Reader::Page) => (
                    Some(TagEnd::Link),
                    Some(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }),
                ),
            };
            open.push(end);
            start.map(Event::Start)
        }
        Event::Start(Tag::Table(alignments)) if reader == Reader::Page => {
            Some(Event::Start(Tag::Table(vec![
                Alignment::None;
                alignments.len()
            ])))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => open.pop().flatten().map(Event::End),
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(md: &str, reader: Reader) -> String {
        markdown_to_html(
            md,
            &Url::parse("https://backstage.example.com/app").unwrap(),
            reader,
        )
    }

    #[test]
    fn raw_html_is_text() {
        for reader in [Reader::Mail, Reader::Page] {
            let html = render(
                "a <script>alert(1)</script> <img src=x onerror=alert(1)>\n\n<div onclick=x>b</div>",
                reader,
            );
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("<img"), "{html}");
            assert!(!html.contains("<div"), "{html}");
            assert!(html.contains("&lt;script&gt;"), "{html}");
        }
    }

    #[test]
    fn unsafe_links_and_images_keep_only_their_text() {
        for reader in [Reader::Mail, Reader::Page] {
            let html = render(
                "[bad](javascript:alert(1)) ![pic](data:image/png;base64,AA) \
                 [![inner](javascript:x)](https://ok.example/) [rel](/catalog) \
                 <javascript:alert(1)> <https://auto.example/>",
                reader,
            );
            // An autolink's text stays, as text.
            assert!(!html.contains("=\"javascript"), "{html}");
            assert!(!html.contains("data:"), "{html}");
            assert!(html.contains("bad"), "{html}");
            assert!(
                html.contains("<a href=\"https://ok.example/\">inner</a>"),
                "{html}"
            );
            assert!(
                html.contains("<a href=\"https://backstage.example.com/app/catalog\">rel</a>"),
                "{html}"
            );
            assert!(html.contains("href=\"https://auto.example/\""), "{html}");
            assert_eq!(html.matches("<a ").count(), html.matches("</a>").count());
        }
    }

    #[test]
    fn attributes_stay_attributes() {
        let html = render(
            "[t](https://x.example/ \"a\\\" onmouseover=\\\"x\") \n\n```js\" onload=\"x\nc\n```\n\n\
             <jane@example.com>",
            Reader::Page,
        );
        assert!(!html.contains("\" onmouseover"), "{html}");
        assert!(!html.contains("\" onload"), "{html}");
        assert!(html.contains("href=\"mailto:jane@example.com\""), "{html}");
    }

    #[test]
    fn the_page_gets_no_image_and_no_inline_style() {
        let md = "![a chart](https://img.example/c.png)\n\n[![in a link](/i.png)](https://x.example/)\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |";
        let page = render(md, Reader::Page);
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("style="), "{page}");
        assert!(
            page.contains("<a href=\"https://img.example/c.png\">a chart</a>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"https://x.example/\">in a link</a>"),
            "{page}"
        );
        let mail = render(md, Reader::Mail);
        assert!(
            mail.contains("<img src=\"https://img.example/c.png\""),
            "{mail}"
        );
        assert!(mail.contains("style=\"text-align: right\""), "{mail}");
    }
}
