//! `Last-Event-ID` (header, or `?lastEventId=`): never a panic; a query that is wrong on its own
//! is refused; otherwise a header decides; and an id that is accepted reads the same when sent
//! back either way.
//!
//! Input: the header value, a NUL byte, then the query string; no NUL means no header.

#![no_main]

use actix_web::http::header::HeaderValue;
use libfuzzer_sys::fuzz_target;
use notifications_backend::fuzzing::last_event_id;

fuzz_target!(|data: &[u8]| {
    let (header, query) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (Some(&data[..nul]), &data[nul + 1..]),
        None => (None, data),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let header = match header.map(HeaderValue::from_bytes) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return,
        None => None,
    };
    let result = last_event_id(header.as_ref(), query);
    let query_alone = last_event_id(None, query);
    if query_alone.is_err() {
        assert!(
            result.is_err(),
            "a wrong query is refused, whatever the header"
        );
    } else if header.is_some() {
        assert_eq!(
            format!("{result:?}"),
            format!("{:?}", last_event_id(header.as_ref(), "")),
            "the query must not change what the header says"
        );
    }
    if let Ok(Some(id)) = result {
        assert_eq!(
            last_event_id(Some(&HeaderValue::from(id)), "").ok(),
            Some(Some(id))
        );
        assert_eq!(
            last_event_id(None, &format!("lastEventId={id}")).ok(),
            Some(Some(id))
        );
    }
});
