//! Janus query strings (list, count, mark read), as the handlers check them: never a panic;
//! counts are never negative; dates come out canonical; and what is accepted, written back as
//! a query, reads to the same values.

#![no_main]

use libfuzzer_sys::fuzz_target;
use notifications_backend::fuzzing::{
    JANUS_COUNT, JANUS_LIST, JANUS_MARK_READ, JanusKind, JanusParam, check_param_count, janus_query,
};

/// Each route's parameters and the ones it requires.
const ROUTES: [(&[JanusParam], &[&str]); 3] = [
    (JANUS_LIST, &[]),
    (JANUS_COUNT, &[]),
    (JANUS_MARK_READ, &["messageId", "read"]),
];

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    // The handlers refuse long queries before the schema sees them.
    if check_param_count(query).is_err() {
        return;
    }
    for (params, required) in ROUTES {
        let Ok(parsed) = janus_query(query, params, required) else {
            continue;
        };
        let mut written = url::form_urlencoded::Serializer::new(String::new());
        for p in params {
            let value = match p.kind {
                JanusKind::Count => parsed.int(p.name).map(|n| {
                    assert!(n >= 0, "{}={n}", p.name);
                    n.to_string()
                }),
                JanusKind::Boolean => parsed.bool(p.name).map(|b| b.to_string()),
                JanusKind::Text | JanusKind::Choice(_) | JanusKind::DateTime => {
                    parsed.text(p.name).map(str::to_owned)
                }
            };
            if let Some(value) = value {
                written.append_pair(p.name, &value);
            }
        }
        let written = written.finish();
        let again = janus_query(&written, params, required).unwrap_or_else(|e| {
            panic!("{query:?} accepted, but not as written back, {written:?}: {e:?}")
        });
        for p in params {
            assert_eq!(again.int(p.name), parsed.int(p.name), "{written:?}");
            assert_eq!(again.bool(p.name), parsed.bool(p.name), "{written:?}");
            assert_eq!(again.text(p.name), parsed.text(p.name), "{written:?}");
        }
    }
});
