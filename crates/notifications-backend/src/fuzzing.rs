//! What the fuzz targets (`fuzz/` at the workspace root) call: parsers that sit behind private
//! handlers, reachable here without a server. Not an API: hidden, and free to change.

use std::path::Path;

use serde_json::Value;

use crate::config::ConfigError;
use crate::config::source::{Keep, parse_document};

pub use crate::config::source::overrides as app_config_overrides;
pub use crate::http::janus::parse_body as janus_body;
pub use crate::http::janus::schema::{
    COUNT as JANUS_COUNT, Kind as JanusKind, LIST as JANUS_LIST, MARK_READ as JANUS_MARK_READ,
    Param as JanusParam, create_body as janus_create_body, query as janus_query,
};
pub use crate::http::query::{check_param_count, none as no_params};
pub use crate::http::stream::last_event_id;

/// One app-config document with every key kept, resolved as a file in `dir` would be.
pub fn config_document(
    text: &str,
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, ConfigError> {
    parse_document(text, "<fuzz>", dir, &Keep::All, env)
}
