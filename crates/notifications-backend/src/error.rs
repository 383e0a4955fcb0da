//! The one error type of the service layer, with the stable names of upstream's error bodies.

use crate::db::DbError;

/// What went wrong, in terms a caller can act on. Each variant has a fixed HTTP status and a
/// stable `name` (upstream's error class names, which clients match on).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: 400 `InputError`.
    #[error("{0}")]
    InvalidInput(String),
    /// Missing or invalid credentials: 401 `AuthenticationError`.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials of the wrong kind: 403 `NotAllowedError`.
    #[error("{0}")]
    NotAllowed(String),
    /// 404 `NotFoundError`.
    #[error("{0}")]
    NotFound(String),
    /// A concurrent change got there first: 409 `ConflictError`; the caller may retry.
    #[error("{0}")]
    Conflict(String),
    /// An `Idempotency-Key` sent again with a different request: 422
    /// `IdempotencyKeyReusedError`.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The caller holds as many of a resource (signal connections) as it may: 429
    /// `TooManyRequestsError`.
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency (the database) is overloaded or down: 503 `ServiceUnavailableError`.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours: 500. The detail, with the chain of errors that caused it, is logged,
    /// never shown.
    #[error("{message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A fault of ours, saying what failed, caused by `source`.
    pub fn internal(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The message and every cause below it, for the log. A cause whose text its parent's
    /// message already ends with (thiserror's `"...: {0}"` over a `#[from]`) is not repeated.
    pub fn detail(&self) -> String {
        let mut detail = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            let text = e.to_string();
            if !detail.ends_with(&text) {
                detail.push_str(": ");
                detail.push_str(&text);
            }
            cause = e.source();
        }
        detail
    }

    /// Upstream's error class name, shown as `error.name`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InputError",
            Self::Unauthenticated(_) => "AuthenticationError",
            Self::NotAllowed(_) => "NotAllowedError",
            Self::NotFound(_) => "NotFoundError",
            Self::Conflict(_) => "ConflictError",
            Self::IdempotencyKeyReused(_) => "IdempotencyKeyReusedError",
            Self::TooManyRequests(_) => "TooManyRequestsError",
            Self::Unavailable(_) => "ServiceUnavailableError",
            Self::Internal { .. } => "Error",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidInput(_) => 400,
            Self::Unauthenticated(_) => 401,
            Self::NotAllowed(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::IdempotencyKeyReused(_) => 422,
            Self::TooManyRequests(_) => 429,
            Self::Unavailable(_) => 503,
            Self::Internal { .. } => 500,
        }
    }
}

impl From<crate::signals::Refused> for Error {
    fn from(e: crate::signals::Refused) -> Self {
        Self::TooManyRequests(e.to_string())
    }
}

impl From<DbError> for Error {
    /// Transient database conditions are the caller's to retry (409/503); anything else is ours.
    /// Answers never carry the database's own words (hosts, addresses, SQL): those are logged.
    fn from(e: DbError) -> Self {
        use diesel::result::{DatabaseErrorKind, Error as Diesel};
        let transient = e.is_transient();
        if let DbError::Query(Diesel::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) = e {
            return Self::Conflict(
                "The request conflicts with a concurrent change; try again".into(),
            );
        }
        if transient {
            tracing::warn!("database unavailable or busy: {e}");
            return Self::Unavailable("The database is unavailable or busy; try again".into());
        }
        Self::internal("database", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause() {
        let e = Error::from(DbError::Query(diesel::result::Error::NotFound));
        assert_eq!(e.status(), 500);
        let cause = std::error::Error::source(&e).expect("the database error is kept");
        assert!(cause.downcast_ref::<DbError>().is_some(), "{cause:?}");
        assert_eq!(e.detail(), "database: database error: Record not found");
    }
}
