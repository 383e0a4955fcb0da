use serde::Deserialize;

use super::token::TokenError;

/// Why a call of a client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client was built wrong: a base URL that is not http(s), no token source, a bad key.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The token source failed; nothing was sent.
    #[error("could not obtain a token: {0}")]
    Token(#[source] TokenError),
    /// No answer, after every retry: the connection was refused or closed, or timed out.
    #[error("request failed after {attempts} attempt(s): {}", with_causes(.source))]
    Unreachable {
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// The backend answered with an error status (after every retry, for 429 and 5xx).
    /// Starts as upstream's node client's message does.
    #[error("Request failed with status {status}{}", server_message(.error))]
    Status {
        status: u16,
        attempts: u32,
        /// The backend's error (`{"error": {"name", "message"}}`), when the body is one.
        error: Option<ServerError>,
        /// The body as received.
        body: String,
    },
    /// A success whose body is not what the route answers.
    #[error("unexpected answer from the backend: {0}")]
    Decode(String),
}

/// The `error` of the backend's error body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ServerError {
    /// A stable name: `InputError`, `AuthenticationError`, `NotAllowedError`, `NotFoundError`,
    /// `IdempotencyKeyReusedError`, `ServiceUnavailableError`...
    pub name: String,
    pub message: String,
}

impl ServerError {
    pub(super) fn parse(body: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Body {
            error: ServerError,
        }
        serde_json::from_str::<Body>(body).ok().map(|b| b.error)
    }
}

/// reqwest's own message does not say why ("error sending request"): its causes do.
fn with_causes(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    message
}

fn server_message(error: &Option<ServerError>) -> String {
    error
        .as_ref()
        .map(|e| format!(": {}: {}", e.name, e.message))
        .unwrap_or_default()
}

impl ClientError {
    /// A stable, snake_case name of the kind of failure (for logs, metrics and scripts):
    /// `invalid_config`, `token_unavailable`, `unreachable`, `rejected` (a 4xx: the same
    /// request will fail again), `unavailable` (429 or 5xx: later may work), `bad_answer`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "invalid_config",
            Self::Token(_) => "token_unavailable",
            Self::Unreachable { .. } => "unreachable",
            Self::Status { status, .. } if super::retry::is_retryable_status(*status) => {
                "unavailable"
            }
            Self::Status { .. } => "rejected",
            Self::Decode(_) => "bad_answer",
        }
    }

    /// The HTTP status of the backend's answer, if it answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The backend's error, if it answered with one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Self::Status { error, .. } => error.as_ref(),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (the client has already retried what it may).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Token(_) | Self::Unreachable { .. } => true,
            Self::Status { status, .. } => super::retry::is_retryable_status(*status),
            Self::Config(_) | Self::Decode(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_say_what_the_backend_said() {
        let body = r#"{"error":{"name":"InputError","message":"Invalid link provided"},"request":{"method":"POST","url":"/"},"response":{"statusCode":400}}"#;
        let e = ClientError::Status {
            status: 400,
            attempts: 1,
            error: ServerError::parse(body),
            body: body.into(),
        };
        assert_eq!(
            e.to_string(),
            "Request failed with status 400: InputError: Invalid link provided"
        );
        assert_eq!((e.code(), e.status()), ("rejected", Some(400)));
        assert!(!e.is_transient());
        let e = ClientError::Status {
            status: 503,
            attempts: 4,
            error: ServerError::parse("<html>"),
            body: "<html>".into(),
        };
        assert_eq!(e.to_string(), "Request failed with status 503");
        assert_eq!(e.code(), "unavailable");
        assert!(e.is_transient());
    }
}
