use async_trait::async_trait;

/// Why a [`TokenProvider`] could not give a token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// Where the bearer token of each request comes from. Asked before every attempt, so a
/// provider may refresh expiring tokens.
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    async fn token(&self) -> Result<String, TokenError>;
}

/// One token for every request (e.g. a static `externalAccess` token).
pub struct StaticToken(String);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn token(&self) -> Result<String, TokenError> {
        Ok(self.0.clone())
    }
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}
