//! Where each key of a configuration document is written, so that a problem can be reported
//! with its line. serde_norway, which reads the values, does not keep positions; yaml-rust2's
//! event parser gives each key's.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::error::child_key;

/// The line (from 1) of each key in one document, by its dotted path as the errors write it
/// (`notifications.processors.webhook[0].url`).
#[derive(Debug, Default)]
pub(super) struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    pub(super) fn of(text: &str) -> Self {
        let mut recorder = Recorder::default();
        // The document has already been read by serde_norway, which reports its errors: one that
        // this parser cannot read just has no lines.
        let _ = Parser::new_from_str(text).load(&mut recorder, false);
        Self(recorder.lines)
    }

    /// The line of `key`, or else of its closest ancestor written in the document.
    pub(super) fn line(&self, key: &str) -> Option<usize> {
        self.closest(key).map(|(_, line)| line)
    }

    /// The closest ancestor of `key` (or `key` itself) written in the document, and its line.
    pub(super) fn closest<'k>(&self, key: &'k str) -> Option<(&'k str, usize)> {
        let mut key = key;
        loop {
            if let Some(line) = self.0.get(key) {
                return Some((key, *line));
            }
            key = key.get(..key.rfind(['.', '['])?)?;
        }
    }
}

/// Where `key` was set last among `documents` (in the order they apply, each an origin and its
/// lines): the document that writes the deepest part of its path, the later one on a tie.
pub(super) fn written<'d>(
    documents: &'d [(String, KeyLines)],
    key: &str,
) -> Option<(&'d str, usize)> {
    documents
        .iter()
        .filter_map(|(origin, lines)| {
            let (found, line) = lines.closest(key)?;
            Some((found.len(), origin.as_str(), line))
        })
        .max_by_key(|(depth, ..)| *depth)
        .map(|(_, origin, line)| (origin, line))
}

/// The collections being read, innermost last.
#[derive(Default)]
struct Recorder {
    open: Vec<Collection>,
    lines: HashMap<String, usize>,
}

enum Collection {
    /// A map, and the key whose value comes next (`None` while a key is expected).
    Map {
        path: String,
        key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

impl Recorder {
    /// The path of the value that starts now, at `line`, moving its parent on to the next
    /// entry. `None` for a key that is itself a collection, which Backstage configs do not have.
    fn next_value(&mut self, line: usize) -> Option<String> {
        match self.open.last_mut() {
            None => Some(String::new()),
            Some(Collection::Map { path, key }) => key.take().map(|key| child_key(path, &key)),
            Some(Collection::Sequence { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.lines.insert(item.clone(), line);
                Some(item)
            }
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(text, ..) => {
                if let Some(Collection::Map {
                    path,
                    key: key @ None,
                }) = self.open.last_mut()
                {
                    self.lines.insert(child_key(path, &text), mark.line());
                    *key = Some(text);
                } else {
                    self.next_value(mark.line());
                }
            }
            Event::Alias(_) => {
                self.next_value(mark.line());
            }
            Event::MappingStart(..) => {
                let path = self.next_value(mark.line()).unwrap_or_default();
                self.open.push(Collection::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value(mark.line()).unwrap_or_default();
                self.open.push(Collection::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.open.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_keys_have_their_lines() {
        let lines = KeyLines::of(
            "app:\n  title: x\nnotifications:\n  processors:\n    webhook:\n      - url: a\n        \
             hedaers: {A: b}\n      - {url: c, method: POST}\n  retention: {days: 90}\n",
        );
        assert_eq!(lines.line("app.title"), Some(2));
        assert_eq!(lines.line("notifications"), Some(3));
        assert_eq!(
            lines.line("notifications.processors.webhook[0].hedaers"),
            Some(7)
        );
        assert_eq!(
            lines.line("notifications.processors.webhook[0].hedaers.A"),
            Some(7)
        );
        assert_eq!(
            lines.line("notifications.processors.webhook[1].method"),
            Some(8)
        );
        assert_eq!(lines.line("notifications.processors.webhook[1]"), Some(8));
        assert_eq!(lines.line("notifications.retention.days"), Some(9));
    }

    #[test]
    fn a_key_not_written_falls_back_to_its_closest_ancestor() {
        let lines = KeyLines::of("notifications:\n  retention:\n    days: x\n");
        assert_eq!(lines.line("notifications.retention.days.extra"), Some(3));
        assert_eq!(lines.line("notifications.retention"), Some(2));
        assert_eq!(lines.line("backend.auth"), None);
    }

    #[test]
    fn the_document_writing_the_deepest_part_wins_and_later_ones_win_ties() {
        let documents = [
            (
                "base".to_owned(),
                KeyLines::of("notifications:\n  retention: 1\n"),
            ),
            (
                "local".to_owned(),
                KeyLines::of("notifications:\n  x: 1\n  retention: 2\n"),
            ),
            (
                "other".to_owned(),
                KeyLines::of("backend: {}\nnotifications: {}\n"),
            ),
        ];
        assert_eq!(
            written(&documents, "notifications.retention"),
            Some(("local", 3))
        );
        assert_eq!(
            written(&documents, "notifications.retention.days"),
            Some(("local", 3))
        );
        assert_eq!(
            written(&documents, "notifications.cleaner"),
            Some(("other", 2))
        );
        assert_eq!(written(&documents, "app.title"), None);
    }
}
