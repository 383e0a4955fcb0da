//! The reusable error answers of the OpenAPI document, and the sets of them routes share. Each
//! is upstream's error body; the description says which `error.name` comes with it and why.
//! These types only describe answers to the document; nothing builds them.
#![allow(dead_code)]

use utoipa::{IntoResponses, ToResponse};

use super::error::ErrorBody;

/// The request is malformed (`InputError`): an unknown, empty or repeated query parameter, a
/// value out of its bounds, a body that is not the JSON the operation takes (too large, wrong
/// content type, a field of the wrong type or out of bounds), or a value the operation refuses
/// (e.g. an unknown settings channel, a link to a non-http(s) page).
#[derive(ToResponse)]
pub struct BadRequest(ErrorBody);

/// No credentials, or invalid or expired ones (`AuthenticationError`).
#[derive(ToResponse)]
pub struct Unauthenticated(ErrorBody);

/// Valid credentials that may not do this (`NotAllowedError`): a service token on a user's
/// route, a user token on a service's route, or (janus) a permission the policy denies.
#[derive(ToResponse)]
pub struct Forbidden(ErrorBody);

/// No such notification among the caller's and the broadcasts (`NotFoundError`).
#[derive(ToResponse)]
pub struct NotFound(ErrorBody);

/// A concurrent change got there first; try again (`ConflictError`).
#[derive(ToResponse)]
pub struct Conflict(ErrorBody);

/// The `Idempotency-Key` was used with another request (`IdempotencyKeyReusedError`).
#[derive(ToResponse)]
pub struct IdempotencyKeyReused(ErrorBody);

/// The caller holds as many live connections as it may (`TooManyRequestsError`).
#[derive(ToResponse)]
pub struct TooManyRequests(ErrorBody);

/// A dependency (the database, the catalog) is overloaded or down; try again
/// (`ServiceUnavailableError`).
#[derive(ToResponse)]
pub struct Unavailable(ErrorBody);

/// The body is larger than 100 kB (janus: `PayloadTooLargeError`).
#[derive(ToResponse)]
pub struct PayloadTooLarge(ErrorBody);

/// Every upstream route that takes a token can answer these.
#[derive(IntoResponses)]
pub enum Authenticated {
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthenticated(#[ref_response] Unauthenticated),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}
