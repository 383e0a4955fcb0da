//! Creating notifications (`POST /notifications`): validation, recipients, the Web-channel
//! settings check, one transaction for all recipients, then signals.

use std::collections::HashSet;

use notifications_common::{
    EntityRef, FreshNotification, Notification, NotificationRecipients, NotificationSendOptions,
    NotificationSignal, Timestamp, WEB_CHANNEL,
};
use serde::{Serialize, Serializer};

use notifications_node::ResolveError;

use super::{NotificationsService, link, settings, validate};
use crate::error::Error;
use crate::store::{NewNotification, StoredNotification};

/// One element of the create answer: a new notification in upstream's in-memory shape, or a
/// notification a re-send with the same scope updated, as stored.
#[derive(Clone, Debug)]
pub struct SendOutcome(pub StoredNotification);

impl SendOutcome {
    pub fn notification(&self) -> &Notification {
        &self.0.notification
    }
}

impl Serialize for SendOutcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.updated_existing {
            self.0.notification.serialize(serializer)
        } else {
            FreshNotification(&self.0.notification).serialize(serializer)
        }
    }
}

impl NotificationsService {
    /// Sends from `origin` (the service principal's subject).
    pub async fn send(
        &self,
        origin: &str,
        options: NotificationSendOptions,
    ) -> Result<Vec<SendOutcome>, Error> {
        let NotificationSendOptions {
            recipients,
            mut payload,
        } = options;
        // An empty topic or scope is none: upstream only honours a non-empty scope, and an empty
        // topic would show up as a nameless (and unsaveable) topic in the user's settings.
        payload.topic = payload.topic.filter(|t| !t.is_empty());
        payload.scope = payload.scope.filter(|s| !s.is_empty());
        if payload.title.is_empty() {
            return Err(Error::invalid(
                "Invalid notification request received: missing title",
            ));
        }
        validate::short_text("origin", origin)?;
        validate::payload(&payload)?;
        if let Some(l) = &payload.link {
            link::validate_link(l, &self.inner.app_base_url)?;
        }
        let new = NewNotification {
            origin: origin.to_owned(),
            payload,
            created: Timestamp::now(),
        };
        match recipients {
            NotificationRecipients::Broadcast => {
                let stored = self.inner.store.create_broadcast(new).await?;
                self.inner
                    .signals
                    .to_everyone(NotificationSignal::NewNotification {
                        notification_id: stored.notification.id.to_string(),
                    });
                Ok(vec![SendOutcome(stored)])
            }
            NotificationRecipients::Entity {
                entity_ref,
                exclude_entity_ref,
            } => {
                let excluded = exclude_entity_ref.map(|e| e.into_vec()).unwrap_or_default();
                let users = self
                    .resolve_users(&entity_ref.into_vec(), &excluded)
                    .await?;
                let users = self.with_web_enabled(users, &new).await?;
                let stored = self.inner.store.create_for_users(new, users).await?;
                for s in &stored {
                    if let Some(user) = &s.notification.user {
                        self.inner.signals.to_user(
                            user,
                            NotificationSignal::NewNotification {
                                notification_id: s.notification.id.to_string(),
                            },
                        );
                    }
                }
                Ok(stored.into_iter().map(SendOutcome).collect())
            }
        }
    }

    /// The distinct users (canonical refs, in resolver order) the entity refs stand for.
    async fn resolve_users(
        &self,
        refs: &[String],
        excluded: &[String],
    ) -> Result<Vec<String>, Error> {
        let message = |cause: &dyn std::fmt::Display| {
            format!("Failed to send user notifications; caused by Error: {cause}")
        };
        let failed = |cause: &dyn std::fmt::Display| Error::invalid(message(cause));
        let resolved = self
            .inner
            .resolver
            .resolve(refs, excluded)
            .await
            .map_err(|e| match e {
                // An outage is not the sender's fault: 503, so that clients retry.
                ResolveError::Unavailable(_) => Error::Unavailable(message(&e)),
                ResolveError::InvalidRef(_) => failed(&e),
            })?;
        let mut seen = HashSet::new();
        let mut users = Vec::new();
        for r in resolved.user_entity_refs {
            let entity = EntityRef::parse(&r).map_err(|e| failed(&e))?;
            if !entity.is_kind("user") {
                continue;
            }
            let canonical = entity.canonical();
            validate::short_text("recipient entity ref", &canonical)?;
            if seen.insert(canonical.clone()) {
                users.push(canonical);
            }
        }
        Ok(users)
    }

    /// Drops the users whose settings turn the Web channel off for this origin and topic
    /// (one query for all of them).
    async fn with_web_enabled(
        &self,
        users: Vec<String>,
        n: &NewNotification,
    ) -> Result<Vec<String>, Error> {
        if users.is_empty() {
            return Ok(users);
        }
        let rows = self
            .inner
            .store
            .channel_settings(WEB_CHANNEL, users.clone())
            .await?;
        let topic = n.payload.topic.as_deref();
        Ok(users
            .into_iter()
            .filter(|user| {
                let user_rows = rows.get(user).map(Vec::as_slice).unwrap_or_default();
                settings::is_enabled(
                    WEB_CHANNEL,
                    &self.inner.defaults,
                    user_rows,
                    &n.origin,
                    topic,
                )
            })
            .collect())
    }
}
