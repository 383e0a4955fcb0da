use async_trait::async_trait;

/// Turns the entity refs of an entity-addressed send into the users who receive it.
///
/// The backend keeps only results whose kind is `user` and drops duplicates, so an implementation
/// may return refs of any kind. An error fails the send with a 400 that carries its message.
#[async_trait]
pub trait RecipientResolver: Send + Sync + 'static {
    async fn resolve(
        &self,
        entity_refs: &[String],
        excluded_entity_refs: &[String],
    ) -> Result<ResolvedRecipients, ResolveError>;
}

/// The users a send reaches, as entity refs (`user:<namespace>/<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedRecipients {
    pub user_entity_refs: Vec<String>,
}

/// Why recipients could not be resolved. The message is shown to the sender.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// An entity ref that cannot be parsed, or another problem with the request itself.
    #[error("{0}")]
    InvalidRef(String),
    /// The source of entities (a catalog) failed or could not be reached.
    #[error("{0}")]
    Unavailable(String),
}
