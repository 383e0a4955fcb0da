//! Which API answers a request under `/api/notifications` when both are served there: the
//! deterministic dispatch of the legacy contract's section 6.3 (option A), or everything to
//! janus in exclusive mode (option B).

use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, web};
use futures_util::{Stream, StreamExt, stream};

use super::SECRET_HEADER;
use crate::config::{ApiSide, JanusConfig, JanusMount};
use crate::http::PLUGIN_MOUNT;
use crate::http::extract::BODY_LIMIT;
use crate::http::query::MAX_QUERY_PARAMS;
use crate::service::janus::JanusService;

/// Our own opt-in header (`janus` or `upstream`) for callers that the markers cannot tell apart;
/// neither real client sends it.
pub const API_HEADER: &str = "x-notifications-api";

/// The query parameters only janus's list takes.
const JANUS_LIST_MARKERS: [&str; 6] = [
    "pageSize",
    "pageNumber",
    "orderBy",
    "orderByDirec",
    "containsText",
    "messageScope",
];

/// The choice, left in the request's extensions for the janus scope's guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatched(pub ApiSide);

/// What the dispatch looks at.
#[derive(Debug, Default)]
pub struct Markers<'a> {
    /// The path below the mount, one trailing slash removed.
    pub path: &'a str,
    pub query_keys: Vec<String>,
    pub has_secret: bool,
    /// `X-Notifications-Api`, when `janus` or `upstream`.
    pub opt_in: Option<ApiSide>,
    /// The keys of a JSON object body; `None` for any other body.
    pub body_keys: Option<Vec<String>>,
}

/// The table of section 6.3, row by row; the first row that matches decides.
pub fn side(config: &JanusConfig, method: &Method, m: &Markers<'_>) -> ApiSide {
    if config.mount == JanusMount::Exclusive {
        return ApiSide::Janus;
    }
    let list = *method == Method::GET && m.path == "/notifications";
    let create = *method == Method::POST && m.path == "/notifications";
    let janus_only = (*method == Method::GET && m.path == "/notifications/count")
        || (*method == Method::PUT && m.path == "/notifications/read");
    if let Some(opt_in) = m.opt_in.filter(|_| list || create || janus_only) {
        return opt_in;
    }
    // 1
    if janus_only {
        return ApiSide::Janus;
    }
    if create {
        let has = |keys: &[&str]| {
            m.body_keys
                .as_ref()
                .is_some_and(|body| body.iter().any(|k| keys.contains(&k.as_str())))
        };
        return if has(&["recipients", "payload"]) {
            ApiSide::Upstream // 2
        } else if has(&["origin", "title"]) {
            ApiSide::Janus // 3
        } else {
            ApiSide::Upstream // 4: upstream's 400
        };
    }
    if list {
        if m.query_keys
            .iter()
            .any(|k| JANUS_LIST_MARKERS.contains(&k.as_str()))
            || m.has_secret
        {
            return ApiSide::Janus; // 5, 6
        }
        return config.ambiguous_list_goes_to; // 7
    }
    ApiSide::Upstream // 8
}

/// Runs before routing: tags every request under the mount with the API that answers it. Only
/// a create's body is read (and handed on intact), because only rows 2 to 4 need it.
pub async fn dispatch(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let janus = req
        .app_data::<web::Data<JanusService>>()
        .filter(|janus| janus.config().on_plugin_mount())
        .cloned();
    let below_mount = req.path().strip_prefix(PLUGIN_MOUNT).map(|rest| {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        rest.to_owned()
    });
    if let (Some(janus), Some(path)) = (janus, below_mount) {
        let body_keys = if *req.method() == Method::POST && path == "/notifications" {
            peek_body_keys(&mut req).await
        } else {
            None
        };
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let markers = Markers {
            path: &path,
            // Past the cap the chosen API refuses the query; the rest need not be decoded.
            query_keys: url::form_urlencoded::parse(req.query_string().as_bytes())
                .take(MAX_QUERY_PARAMS + 1)
                .map(|(k, _)| k.into_owned())
                .collect(),
            has_secret: header(SECRET_HEADER).is_some(),
            opt_in: header(API_HEADER).and_then(|v| match v.to_ascii_lowercase().as_str() {
                "janus" => Some(ApiSide::Janus),
                "upstream" => Some(ApiSide::Upstream),
                _ => None,
            }),
            body_keys,
        };
        let side = side(janus.config(), req.method(), &markers);
        tracing::debug!(method = %req.method(), path, api = ?side, "dispatched");
        req.extensions_mut().insert(Dispatched(side));
    }
    next.call(req).await
}

/// The top-level keys of a JSON object body (at most [`BODY_LIMIT`] bytes; the chosen API
/// enforces its own limit). The body is put back as read.
async fn peek_body_keys(req: &mut ServiceRequest) -> Option<Vec<String>> {
    let json =
        req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        });
    let mut payload = req.take_payload();
    let mut chunks: Vec<Result<Bytes, PayloadError>> = Vec::new();
    let mut read = 0;
    let mut complete = false;
    while read <= BODY_LIMIT {
        match payload.next().await {
            Some(Ok(chunk)) => {
                read += chunk.len();
                chunks.push(Ok(chunk));
            }
            Some(Err(e)) => {
                chunks.push(Err(e));
                break;
            }
            None => {
                complete = true;
                break;
            }
        }
    }
    let keys = if json && complete && chunks.iter().all(Result::is_ok) {
        let body: Vec<u8> = chunks.iter().flatten().flat_map(|c| c.to_vec()).collect();
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body)
            .ok()
            .map(|object| object.keys().cloned().collect())
    } else {
        None
    };
    let rest: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(stream::iter(chunks).chain(payload));
    req.set_payload(Payload::from(rest));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers<'a>(path: &'a str, query: &[&str]) -> Markers<'a> {
        Markers {
            path,
            query_keys: query.iter().map(|s| s.to_string()).collect(),
            ..Markers::default()
        }
    }

    fn with_body<'a>(keys: &[&str]) -> Markers<'a> {
        Markers {
            body_keys: Some(keys.iter().map(|s| s.to_string()).collect()),
            ..markers("/notifications", &[])
        }
    }

    #[test]
    fn the_table_row_by_row() {
        use ApiSide::{Janus, Upstream};
        let c = JanusConfig::default();
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
        // 1
        assert_eq!(side(&c, &get, &markers("/notifications/count", &[])), Janus);
        assert_eq!(side(&c, &put, &markers("/notifications/read", &[])), Janus);
        // 2: upstream's keys win even beside janus's
        assert_eq!(
            side(&c, &post, &with_body(&["recipients", "payload"])),
            Upstream
        );
        assert_eq!(side(&c, &post, &with_body(&["payload", "title"])), Upstream);
        // 3
        assert_eq!(side(&c, &post, &with_body(&["origin", "title"])), Janus);
        assert_eq!(side(&c, &post, &with_body(&["title"])), Janus);
        // 4
        assert_eq!(side(&c, &post, &with_body(&[])), Upstream);
        assert_eq!(side(&c, &post, &markers("/notifications", &[])), Upstream);
        // 5
        for key in JANUS_LIST_MARKERS {
            assert_eq!(side(&c, &get, &markers("/notifications", &[key])), Janus);
        }
        // 6
        let secret = Markers {
            has_secret: true,
            ..markers("/notifications", &["read"])
        };
        assert_eq!(side(&c, &get, &secret), Janus);
        // 7, and its switch
        for query in [&[][..], &["read"], &["createdAfter", "read"]] {
            assert_eq!(side(&c, &get, &markers("/notifications", query)), Upstream);
        }
        let flipped = JanusConfig {
            ambiguous_list_goes_to: Janus,
            ..JanusConfig::default()
        };
        assert_eq!(
            side(&flipped, &get, &markers("/notifications", &["read"])),
            Janus
        );
        // 8
        assert_eq!(side(&c, &get, &markers("/notifications/count", &[])), Janus);
        assert_eq!(side(&c, &get, &markers("/status", &["pageSize"])), Upstream);
        assert_eq!(
            side(&c, &Method::DELETE, &markers("/notifications", &[])),
            Upstream
        );
        assert_eq!(
            side(&c, &post, &markers("/notifications/read", &[])),
            Upstream
        );
        // Our opt-in header, on janus's routes only.
        let opt_in = |api: ApiSide, path| Markers {
            opt_in: Some(api),
            ..markers(path, &["pageSize"])
        };
        assert_eq!(
            side(&c, &get, &opt_in(Upstream, "/notifications")),
            Upstream
        );
        assert_eq!(
            side(&flipped, &get, &opt_in(Janus, "/notifications")),
            Janus
        );
        assert_eq!(side(&c, &get, &opt_in(Janus, "/status")), Upstream);
        // Exclusive: everything.
        let exclusive = JanusConfig {
            mount: JanusMount::Exclusive,
            ..JanusConfig::default()
        };
        assert_eq!(side(&exclusive, &get, &markers("/status", &[])), Janus);
    }
}
