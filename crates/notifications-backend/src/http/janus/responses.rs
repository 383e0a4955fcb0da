//! Janus's own error answers for the OpenAPI document, and the set every janus route shares.
//! These types only describe answers to the document; nothing builds them.
#![allow(dead_code)]

use utoipa::{IntoResponses, ToResponse};

use super::JanusErrorBody;
use crate::http::responses::{Forbidden, Unauthenticated, Unavailable};

/// Janus: a body that is not JSON (`SyntaxError`), a query of more parameters than any route
/// takes, a link to a non-http(s) page (`InputError`), or, with `validationErrorStatus: 400`, a
/// request that does not match janus's schema (janus's `{"status", "err"}` body).
#[derive(ToResponse)]
pub struct JanusBadRequest(JanusErrorBody);

/// Janus answers its own checks with a 500 (`Error`, with janus's message: an unknown target,
/// paging that mixes zero and non-zero, a message that does not exist, a method the path does
/// not serve) and, by default, a request that does not match its schema (janus's `{"status",
/// "err"}` body).
#[derive(ToResponse)]
pub struct JanusFailure(JanusErrorBody);

/// Every janus route can answer these.
#[derive(IntoResponses)]
pub enum JanusErrors {
    #[response(status = 400)]
    BadRequest(#[ref_response] JanusBadRequest),
    #[response(status = 401)]
    Unauthenticated(#[ref_response] Unauthenticated),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 500)]
    Failure(#[ref_response] JanusFailure),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}
