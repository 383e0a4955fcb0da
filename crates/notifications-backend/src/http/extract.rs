//! Request extractors: the caller (by principal kind) and strictly parsed JSON bodies.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, http::header};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use notifications_common::UserRef;
use serde::de::DeserializeOwned;

use crate::auth::Principal;
use crate::error::Error;

/// Bodies larger than this are refused (upstream's body-parser default).
pub const BODY_LIMIT: usize = 100 * 1024;

fn principal(req: &HttpRequest) -> Result<Principal, Error> {
    req.extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("Missing credentials".into()))
}

/// The calling user (user routes refuse services).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_ref: UserRef,
}

impl FromRequest for CurrentUser {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal(req).and_then(|p| match p {
            Principal::User { user_ref, .. } => Ok(CurrentUser { user_ref }),
            Principal::Service { .. } => Err(Error::NotAllowed(
                "This endpoint does not allow 'service' credentials".into(),
            )),
        }))
    }
}

/// The calling service (the create route refuses users).
#[derive(Debug, Clone)]
pub struct CallingService {
    /// Becomes the origin of what the service sends.
    pub subject: String,
}

impl FromRequest for CallingService {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(principal(req).and_then(|p| match p {
            Principal::Service { subject } => Ok(CallingService { subject }),
            Principal::User { .. } => Err(Error::NotAllowed(
                "This endpoint does not allow 'user' credentials".into(),
            )),
        }))
    }
}

/// A JSON body: at most [`BODY_LIMIT`] bytes, types not coerced, errors naming the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = match req.mime_type() {
            Ok(None) => true,
            Ok(Some(mime)) => {
                mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")
            }
            Err(_) => false,
        };
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(Error::invalid("Content-Type must be application/json"));
            }
            let too_large =
                || Error::invalid(format!("Request body is larger than {BODY_LIMIT} bytes"));
            if declared_length.is_some_and(|l| l > BODY_LIMIT) {
                return Err(too_large());
            }
            let mut body = Vec::with_capacity(declared_length.unwrap_or(1024).min(BODY_LIMIT));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| Error::invalid(format!("Could not read the request body: {e}")))?;
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(JsonBody)
        })
    }
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "Request body is empty; a JSON object is required",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.is_syntax() || inner.is_eof() {
            Error::invalid(format!("Invalid request body: {inner}"))
        } else {
            Error::invalid(format!("Invalid request body at {path}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use notifications_common::NotificationSendOptions;

    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let err = parse_json::<NotificationSendOptions>(
            br#"{"recipients":{"type":"broadcast"},"payload":{"title":"t","severity":"urgent"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("payload.severity"), "{err}");
        let err = parse_json::<NotificationSendOptions>(br#"{"payload":{"title":"t"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("recipients"), "{err}");
        assert!(parse_json::<NotificationSendOptions>(b"{not json").is_err());
        assert!(parse_json::<NotificationSendOptions>(b"  ").is_err());
    }
}
