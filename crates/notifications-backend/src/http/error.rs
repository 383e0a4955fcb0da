//! Error answers in upstream's shape:
//! `{"error": {"name", "message"}, "request": {"method", "url"}, "response": {"statusCode"}}`.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use super::PLUGIN_MOUNT;
use crate::error::Error;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request: RequestDetail,
    pub response: ResponseDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable error class name: InputError, AuthenticationError, NotAllowedError, NotFoundError,
    /// ConflictError, IdempotencyKeyReusedError, TooManyRequestsError, ServiceUnavailableError,
    /// Error; on janus's routes also SyntaxError and PayloadTooLargeError.
    pub name: String,
    pub message: String,
    /// Janus's body errors only: express's kind of failure (`entity.parse.failed`,
    /// `entity.too.large`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RequestDetail {
    pub method: String,
    /// The path relative to the plugin mount (`/api/notifications`; the whole path outside it),
    /// with the query.
    pub url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResponseDetail {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
}

impl RequestDetail {
    /// Outside the mount (janus's `extraBasePath`), the whole path.
    pub fn of(req: &HttpRequest) -> Self {
        let path = req.path();
        let relative = path
            .strip_prefix(PLUGIN_MOUNT)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or(path);
        let relative = if relative.is_empty() { "/" } else { relative };
        let url = match req.query_string() {
            "" => relative.to_owned(),
            q => format!("{relative}?{q}"),
        };
        Self {
            method: req.method().to_string(),
            url,
        }
    }
}

/// The full error answer for `error` raised while serving `request`.
pub fn error_response(error: &Error, request: RequestDetail) -> HttpResponse {
    let message = match error {
        Error::Internal { .. } => {
            // The detail may name tables or values: log it, show only a reference to the log.
            let log_id = log_id();
            let detail = error.detail();
            tracing::error!(log_id, method = %request.method, url = %request.url, "internal error: {detail}");
            format!("An internal error occurred logId={log_id}")
        }
        Error::Unavailable(detail) => {
            tracing::warn!(method = %request.method, url = %request.url, "unavailable: {detail}");
            error.to_string()
        }
        other => other.to_string(),
    };
    let status = error.status();
    let body = ErrorBody {
        error: ErrorDetail {
            name: error.name().to_owned(),
            message,
            kind: None,
        },
        request,
        response: ResponseDetail {
            status_code: status,
        },
    };
    super::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}

/// Twenty hex digits, like upstream's logId.
fn log_id() -> String {
    let bytes: [u8; 10] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Gives an error answer its request details (which `ResponseError` cannot see).
pub fn with_request_details(res: ServiceResponse) -> ServiceResponse<BoxBody> {
    let Some(error) = res.response().error().and_then(|e| e.as_error::<Error>()) else {
        return res.map_into_boxed_body();
    };
    let response = error_response(error, RequestDetail::of(res.request()));
    res.into_response(response)
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Without the request at hand; `with_request_details` replaces it on the plugin's routes.
    fn error_response(&self) -> HttpResponse {
        error_response(self, RequestDetail::default())
    }
}
