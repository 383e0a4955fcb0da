//! Entity refs: never a panic; kind and namespace come out lower case and non-empty; the
//! displayed form parses back to the same parts; and the canonical form is a fixed point that
//! compares equal to the ref.
//!
//! Input: the ref, or a default kind, a newline, then the ref (as the catalog reads refs inside
//! an entity of namespace `ops`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use notifications_common::EntityRef;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let (default_kind, input) = match input.split_once('\n') {
        // A default kind comes from code (`user`, `group`), never with separators in it.
        Some((kind, rest)) if !kind.is_empty() && !kind.contains([':', '/']) => (Some(kind), rest),
        _ => (None, input),
    };
    let Ok(r) = EntityRef::parse_with_defaults(input, default_kind, "ops") else {
        return;
    };
    for part in [r.kind(), r.namespace()] {
        assert!(!part.is_empty());
        assert_eq!(part, part.to_ascii_lowercase());
    }
    assert!(!r.name().is_empty());

    let shown = r.to_string();
    let again = EntityRef::parse(&shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!(
        (again.kind(), again.namespace(), again.name()),
        (r.kind(), r.namespace(), r.name()),
        "{input:?} shown as {shown:?}"
    );

    let canonical = r.canonical();
    let parsed = EntityRef::parse(&canonical).unwrap_or_else(|e| panic!("{canonical:?}: {e}"));
    assert_eq!(parsed, r, "{input:?}");
    assert_eq!(parsed.canonical(), canonical, "{input:?}");
});
