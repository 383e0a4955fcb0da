//! `GET /metrics`: the counters in Prometheus' text format (no authentication: enable it only
//! where the listener is not public, or restrict the path at the proxy).

use actix_web::HttpResponse;
use actix_web::http::header;

pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(crate::metrics::handle().render())
}
