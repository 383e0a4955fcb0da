//! `GET /notifications` and `GET /topics` query strings: never a panic, and whatever the server
//! accepts, the inbox client writes back as a query the server reads to the same options.

#![no_main]

use libfuzzer_sys::fuzz_target;
use notifications_backend::testing::http::{list_options, topics_options};
use notifications_common::NotificationListOptions;
use notifications_node::fuzzing::{filter_query, list_query};
use url::Url;

fn round_trip(
    options: &NotificationListOptions,
    write: fn(&mut Url, &NotificationListOptions),
    read: fn(&str) -> Result<NotificationListOptions, notifications_backend::testing::error::Error>,
) {
    let mut url = Url::parse("http://localhost/api/notifications/notifications").unwrap();
    write(&mut url, options);
    let query = url.query().unwrap_or("");
    let again = read(query).unwrap_or_else(|e| panic!("{options:?} written as {query:?}: {e}"));
    assert_eq!(&again, options, "written as {query:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(options) = list_options(query) {
        round_trip(&options, list_query, list_options);
    }
    if let Ok(options) = topics_options(query) {
        round_trip(&options, filter_query, topics_options);
    }
});
