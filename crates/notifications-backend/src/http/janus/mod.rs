//! The janus-idp notifications API (the legacy contract): create, list, count and mark read under
//! `<base>/notifications`, beside upstream's API on `/api/notifications` (see [`dispatch`]) and
//! on `notifications.legacyJanus.extraBasePath`.
//!
//! Janus's pipeline order is kept: body parsing (400/413), route (500 "Unknown operation"),
//! schema (500 `{"status","err"}`), authentication (401), permission (403), then the handler,
//! whose own checks are 500s with their message shown. Janus checked the schema before the
//! credentials (and clients see which error comes first), so the schema runs for anonymous
//! callers: before anything, a query of more parameters than any route takes is a 400.

mod dispatch;
pub(crate) mod responses;
pub(crate) mod schema;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Scope, guard, web};
use futures_util::StreamExt;
use notifications_common::{JanusCount, JanusCreateRequest, JanusCreateResponse, JanusMessage};
use serde::Serialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

pub use dispatch::dispatch;

use super::error::{ErrorBody, ErrorDetail, RequestDetail, ResponseDetail, error_response};
use super::extract::BODY_LIMIT;
use super::query::check_param_count;
use super::responses::PayloadTooLarge;
use super::{AppState, PLUGIN_MOUNT};
use crate::auth::{AuthError, Principal};
use crate::config::{ApiSide, JanusConfig};
use crate::service::janus::{
    Caller, Filters, JanusError, JanusService, ListRequest, PERMISSION_CREATE, PERMISSION_LIST,
    PERMISSION_UPDATE_READ, SchemaViolation, Via,
};
use crate::store::{MessageOrder, MessageScope, OrderColumn, Page};
use dispatch::Dispatched;
use responses::JanusErrors;

/// Janus's shared-secret header for callers without a token.
pub const SECRET_HEADER: &str = "notifications-secret";

/// Janus's paging defaults: page 1 of 20.
const DEFAULT_PAGE_SIZE: i64 = 20;

/// Registers the janus routes: on the plugin mount for the requests [`dispatch`] gave to janus,
/// and under the extra base path for every request. Call before [`super::configure`], so that
/// the janus scope is tried first.
pub fn configure(cfg: &mut web::ServiceConfig, config: &JanusConfig) {
    if !config.enabled {
        return;
    }
    if config.on_plugin_mount() {
        cfg.service(routes(PLUGIN_MOUNT).guard(guard::fn_guard(|ctx| {
            ctx.req_data().get::<Dispatched>() == Some(&Dispatched(ApiSide::Janus))
        })));
    }
    if let Some(base) = &config.extra_base_path {
        cfg.service(routes(base));
    }
}

fn routes(base: &str) -> Scope {
    // One trailing slash is ignored, as janus's router did.
    let resource = |path: &str| {
        web::resource([path.to_owned(), format!("{path}/")])
            .default_service(web::to(unknown_operation))
    };
    web::scope(base)
        .service(resource("/notifications").get(list).post(create))
        .service(resource("/notifications/count").get(count))
        .service(resource("/notifications/read").put(mark_read))
        .default_service(web::to(unknown_operation))
}

async fn unknown_operation(req: HttpRequest) -> HttpResponse {
    respond(&req, 500, Err(JanusError::UnknownOperation))
}

/// A user or system message: to `targetUsers` and the members of `targetGroups`
/// (`namespace/name`), or to everyone when both are empty or absent.
#[utoipa::path(
    post, path = "/notifications", tag = "janus", operation_id = "janusCreate",
    request_body = JanusCreateRequest,
    responses(
        (status = 200, description = "The message was stored", body = JanusCreateResponse),
        (status = 413, response = PayloadTooLarge),
        JanusErrors,
    ),
)]
pub(super) async fn create(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<AppState>,
    janus: web::Data<JanusService>,
) -> HttpResponse {
    let result = async {
        check_param_count(req.query_string())?;
        let body = read_body(&req, payload).await?;
        schema::query(req.query_string(), &[], &[]).map_err(schema_error)?;
        schema::create_body(&body).map_err(schema_error)?;
        let caller = identify(&req, &app, janus.config()).await?;
        janus.authorize(&caller, PERMISSION_CREATE)?;
        let request: JanusCreateRequest = serde_json::from_value(body)
            .map_err(|e| JanusError::Rejected(format!("invalid request body: {e}")))?;
        Ok(json(&janus.create(&caller, request).await?))
    }
    .await;
    respond(&req, janus.config().validation_error_status, result)
}

/// The caller's messages: page 1 of 20, newest first, of `messageScope=user` by default;
/// `pageSize=0&pageNumber=0` for all of them.
#[utoipa::path(
    get, path = "/notifications", tag = "janus", operation_id = "janusList",
    params(schema::ListQuery),
    responses(
        (status = 200, description = "The messages", body = Vec<JanusMessage>),
        JanusErrors,
    ),
)]
pub(super) async fn list(
    req: HttpRequest,
    app: web::Data<AppState>,
    janus: web::Data<JanusService>,
) -> HttpResponse {
    let result = async {
        check_param_count(req.query_string())?;
        let query = schema::query(req.query_string(), schema::LIST, &[]).map_err(schema_error)?;
        let caller = identify(&req, &app, janus.config()).await?;
        janus.authorize(&caller, PERMISSION_LIST)?;
        let page = page(query.int("pageSize"), query.int("pageNumber"))?;
        let column = match query.text("orderBy") {
            Some("title") => OrderColumn::Title,
            Some("message") => OrderColumn::Message,
            Some("topic") => OrderColumn::Topic,
            Some("origin") => OrderColumn::Origin,
            _ => OrderColumn::Created,
        };
        let request = ListRequest {
            filter: filters(&query),
            order: MessageOrder {
                column,
                ascending: query.text("orderByDirec") == Some("asc"),
            },
            page,
        };
        Ok(json(&janus.list(&caller.name, request).await?))
    }
    .await;
    respond(&req, janus.config().validation_error_status, result)
}

/// How many messages the same filters list, without paging.
#[utoipa::path(
    get, path = "/notifications/count", tag = "janus", operation_id = "janusCount",
    params(schema::CountQuery),
    responses(
        (status = 200, description = "The count", body = JanusCount),
        JanusErrors,
    ),
)]
pub(super) async fn count(
    req: HttpRequest,
    app: web::Data<AppState>,
    janus: web::Data<JanusService>,
) -> HttpResponse {
    let result = async {
        check_param_count(req.query_string())?;
        let query = schema::query(req.query_string(), schema::COUNT, &[]).map_err(schema_error)?;
        let caller = identify(&req, &app, janus.config()).await?;
        janus.authorize(&caller, PERMISSION_LIST)?;
        let count = janus.count(&caller.name, filters(&query)).await?;
        Ok(json(&JanusCount { count }))
    }
    .await;
    respond(&req, janus.config().validation_error_status, result)
}

/// Marks a message read or unread for the caller.
#[utoipa::path(
    put, path = "/notifications/read", tag = "janus", operation_id = "janusMarkRead",
    params(schema::MarkReadQuery),
    responses(
        (status = 200, description = "Marked (an empty body)"),
        JanusErrors,
    ),
)]
pub(super) async fn mark_read(
    req: HttpRequest,
    app: web::Data<AppState>,
    janus: web::Data<JanusService>,
) -> HttpResponse {
    let result = async {
        check_param_count(req.query_string())?;
        let query = schema::query(
            req.query_string(),
            schema::MARK_READ,
            schema::MARK_READ_REQUIRED,
        )
        .map_err(schema_error)?;
        let caller = identify(&req, &app, janus.config()).await?;
        janus.authorize(&caller, PERMISSION_UPDATE_READ)?;
        let (message_id, read) = (
            query.text("messageId").unwrap_or_default(),
            query.bool("read").unwrap_or_default(),
        );
        janus.mark_read(&caller.name, message_id, read).await?;
        Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
            .finish())
    }
    .await;
    respond(&req, janus.config().validation_error_status, result)
}

fn schema_error(violation: crate::service::janus::SchemaViolation) -> JanusError {
    JanusError::Schema(Box::new(violation))
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> HttpResponse {
    super::json(StatusCode::OK, value)
}

/// The filters list and count share; janus's default scope is the caller's own messages.
fn filters(query: &schema::Query) -> Filters {
    Filters {
        scope: match query.text("messageScope") {
            Some("all") => MessageScope::All,
            Some("system") => MessageScope::System,
            _ => MessageScope::User,
        },
        contains_text: query
            .text("containsText")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        created_after: query.text("createdAfter").map(str::to_owned),
        read: query.bool("read"),
    }
}

/// Janus's paging: each missing value takes its default (20, 1); `0`/`0` is no paging, and a
/// mix of zero and non-zero is refused.
fn page(size: Option<i64>, number: Option<i64>) -> Result<Option<Page>, JanusError> {
    let (size, number) = (size.unwrap_or(DEFAULT_PAGE_SIZE), number.unwrap_or(1));
    match (size, number) {
        (0, 0) => Ok(None),
        (0, _) | (_, 0) => Err(JanusError::Rejected(
            "pageSize and pageNumber must both be either 0 or greater than 0".into(),
        )),
        (size, number) => Ok(Some(Page {
            limit: size,
            offset: (number - 1).saturating_mul(size),
        })),
    }
}

/// Who is calling, as janus names users (`namespace/name`). A request with an `Authorization`
/// header must carry a valid user token (or a service token, when accepted); without one, the
/// shared secret (when configured) or `allowUnauthenticated` lets the caller in as the guest
/// user.
async fn identify(
    req: &HttpRequest,
    app: &AppState,
    config: &JanusConfig,
) -> Result<Caller, JanusError> {
    let guest = |via| Caller {
        name: config.guest_user.clone(),
        via,
    };
    if let Some(authorization) = req.headers().get(header::AUTHORIZATION) {
        return match app
            .auth
            .authenticate_header(authorization.to_str().ok())
            .await
        {
            Ok(Principal::User { user_ref, .. }) => Ok(Caller {
                name: user_ref
                    .as_str()
                    .strip_prefix("user:")
                    .unwrap_or(user_ref.as_str())
                    .to_owned(),
                via: Via::User,
            }),
            Ok(Principal::Service { subject }) if config.accept_service_tokens => {
                Ok(guest(Via::Service(subject)))
            }
            Ok(Principal::Service { .. }) => Err(JanusError::Unauthenticated(
                "This endpoint takes user tokens only".into(),
            )),
            Err(AuthError::Missing) => {
                Err(JanusError::Unauthenticated("No token specified".into()))
            }
            Err(e) => Err(JanusError::Unauthenticated(e.to_string())),
        };
    }
    match &config.external_caller_secret {
        Some(secret) => {
            let given = req
                .headers()
                .get(SECRET_HEADER)
                .map_or(&[][..], |v| v.as_bytes());
            if bool::from(given.ct_eq(secret.as_bytes())) {
                Ok(guest(Via::Secret))
            } else {
                Err(JanusError::Unauthenticated(
                    "Provided shared secret does not match.".into(),
                ))
            }
        }
        None if config.allow_unauthenticated => Ok(guest(Via::Anonymous)),
        None => Err(JanusError::Unauthenticated("Missing credentials".into())),
    }
}

/// The body as express's JSON parser gave it to janus: at most [`BODY_LIMIT`] bytes (413), JSON
/// objects or arrays only (400), and `{}` for an empty body or another content type.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Value, JanusError> {
    let too_large = || JanusError::Body {
        status: 413,
        message: "request entity too large".into(),
    };
    let is_json =
        req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
        });
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| JanusError::Body {
            status: 400,
            message: e.to_string(),
        })?;
        if body.len() + chunk.len() > BODY_LIMIT {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    parse_body(&body, is_json)
}

/// A whole body read as express's strict JSON parser did; `is_json`: its content type says JSON.
pub fn parse_body(body: &[u8], is_json: bool) -> Result<Value, JanusError> {
    let start = body
        .iter()
        .enumerate()
        .find(|(_, b)| !b.is_ascii_whitespace());
    let Some((start, &first)) = start.filter(|_| is_json) else {
        return Ok(json!({}));
    };
    let syntax = |message: String| JanusError::Body {
        status: 400,
        message,
    };
    // Strict mode: a top-level scalar is refused like malformed JSON.
    if !matches!(first, b'{' | b'[') {
        return Err(syntax(format!(
            "Unexpected token {} in JSON at position {start}",
            char::from(first)
        )));
    }
    serde_json::from_slice(body).map_err(|e| syntax(e.to_string()))
}

/// Every janus answer: the result, or the error in janus's shape.
fn respond(
    req: &HttpRequest,
    validation_status: u16,
    result: Result<HttpResponse, JanusError>,
) -> HttpResponse {
    let error = match result {
        Ok(response) => return response,
        Err(error) => error,
    };
    let (status, name, kind) = match error {
        JanusError::Schema(violation) => {
            let status = StatusCode::from_u16(validation_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = ValidationErrorBody {
                status: validation_status,
                err: vec![*violation],
            };
            return super::json(status, &JanusErrorBody::Validation(body));
        }
        JanusError::Other(e) => return error_response(&e, RequestDetail::of(req)),
        JanusError::Body { status: 413, .. } => {
            (413, "PayloadTooLargeError", Some("entity.too.large"))
        }
        JanusError::Body { .. } => (400, "SyntaxError", Some("entity.parse.failed")),
        JanusError::Unauthenticated(_) => (401, "AuthenticationError", None),
        JanusError::NotAllowed(_) => (403, "NotAllowedError", None),
        JanusError::UnknownOperation | JanusError::Rejected(_) => (500, "Error", None),
    };
    let body = ErrorBody {
        error: ErrorDetail {
            name: name.to_owned(),
            message: error.to_string(),
            kind,
        },
        request: RequestDetail::of(req),
        response: ResponseDetail {
            status_code: status,
        },
    };
    super::json(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &JanusErrorBody::Error(body),
    )
}

/// An error answer of janus's routes: upstream's body, or janus's own for a request its schema
/// refuses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum JanusErrorBody {
    Error(ErrorBody),
    Validation(ValidationErrorBody),
}

/// Janus's answer to a request that does not match its schema: the first violation, in the
/// words of janus's validator (ajv).
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationErrorBody {
    /// The answer's status again: 500 (janus's), or 400 with `validationErrorStatus: 400`.
    pub status: u16,
    /// Exactly one violation.
    pub err: Vec<SchemaViolation>,
}
