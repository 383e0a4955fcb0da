//! What every request leaves behind: a request id (the caller's `X-Request-Id` when it is sane,
//! else a new one) echoed in the answer and carried by every log line of the request through a
//! tracing span; one log line; and its latency in the request histogram, by method, matched
//! route (the pattern, never the path with its ids) and status.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use tracing::Instrument;

/// The header a request id is read from and echoed in.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest request id taken from a caller; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;
/// The route label of requests that matched no route: the raw path would make a series per
/// scanned URL.
const UNMATCHED: &str = "unmatched";

/// One log line per request: debug level, or warn for server errors. The query string is left
/// out (it may hold search terms).
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(req.headers().get(&REQUEST_ID));
    let span = tracing::info_span!("request", id = %id);
    let method = method_label(req.method());
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res,
        Err(e) => {
            // Handlers' errors are answers already; only a middleware's error gets here, and
            // actix answers it after this one (without the id: the request is gone).
            let status = e.as_response_error().status_code();
            record(started.elapsed(), method, None, status);
            span.in_scope(|| tracing::warn!(status = status.as_u16(), "request failed: {e}"));
            return Err(e);
        }
    };
    let elapsed = started.elapsed();
    let status = res.status();
    record(elapsed, method, res.request().match_pattern(), status);
    span.in_scope(|| {
        let path = res.request().path();
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let code = status.as_u16();
        if status >= StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(method, path, status = code, elapsed_ms, "request failed");
        } else {
            tracing::debug!(method, path, status = code, elapsed_ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// One sample of the request histogram. `route` is the matched pattern; `None` (no route
/// matched) is one label, whatever the path.
fn record(elapsed: Duration, method: &'static str, route: Option<String>, status: StatusCode) {
    metrics::histogram!(
        crate::metrics::HTTP_DURATION,
        "method" => method,
        "route" => route.unwrap_or_else(|| UNMATCHED.to_owned()),
        "status" => status.as_str().to_owned(),
    )
    .record(elapsed.as_secs_f64());
}

/// The caller's id when it is 1 to 128 visible ASCII characters (what fits a header and a log
/// line unescaped), else a new random one.
fn request_id(given: Option<&HeaderValue>) -> String {
    match given.map(HeaderValue::as_bytes) {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id.iter().all(|b| b.is_ascii_graphic()) =>
        {
            String::from_utf8_lossy(id).into_owned()
        }
        _ => format!("{:032x}", rand::random::<u128>()),
    }
}

/// The method as a label: the standard ones, else `other` (a label per invented method would
/// grow without bound).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let kept = HeaderValue::from_static("abc-123_X.y:z");
        assert_eq!(request_id(Some(&kept)), "abc-123_X.y:z");
        let long = HeaderValue::from_str(&"a".repeat(MAX_REQUEST_ID + 1)).unwrap();
        let spaced = HeaderValue::from_static("a b");
        let empty = HeaderValue::from_static("");
        let non_ascii = HeaderValue::from_bytes("é".as_bytes()).unwrap();
        for bad in [
            Some(&long),
            Some(&spaced),
            Some(&empty),
            Some(&non_ascii),
            None,
        ] {
            let id = request_id(bad);
            assert_eq!(id.len(), 32, "{bad:?} -> {id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(request_id(None), request_id(None));
    }
}
