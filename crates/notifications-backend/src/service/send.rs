//! Creating notifications (`POST /notifications`): the processors' hooks, validation,
//! recipients, settings checks, one transaction for all recipients and their deliveries, then
//! signals.

use std::collections::HashSet;

use notifications_common::{
    EntityRef, Notification, NotificationId, NotificationPayload, NotificationRecipients,
    NotificationSendOptions, Timestamp, WEB_CHANNEL,
};

use notifications_node::ResolveError;

use super::idempotency::{self, SendAnswer};
use super::outcome::SendOutcome;
use super::processing::{self, Installed};
use super::{NotificationsService, link, settings, validate};
use crate::error::Error;
use crate::store::{Answer, IdempotentSend, Recipient, SendContext, Written};

impl NotificationsService {
    /// Sends from `origin` (the service principal's subject), once per `idempotency_key` when
    /// one is given.
    pub async fn send(
        &self,
        origin: &str,
        options: NotificationSendOptions,
        idempotency_key: Option<&str>,
    ) -> Result<SendAnswer, Error> {
        validate::short_text("origin", origin)?;
        let key = idempotency_key
            .map(|k| idempotency::keyed(k, &options))
            .transpose()?;
        if let Some(key) = &key {
            // A repeated request skips the processors too (their process_options may post).
            if let Some(recorded) = self
                .inner
                .store
                .idempotency_record(origin, &key.key)
                .await?
            {
                return idempotency::replay(key, recorded);
            }
        }
        // Checked before the processors see the send, too: a send refused here has no effect in
        // any processor's process_options (a Slack channel message, say).
        let options = normalized(options);
        validate::recipients(&options.recipients)?;
        self.check_payload(&options.payload)?;
        let options =
            normalized(processing::process_options(&self.inner.processors, options).await);
        self.check_payload(&options.payload)?;
        let send = SendContext {
            origin: origin.to_owned(),
            created: Timestamp::now(),
            options: serde_json::to_value(&options)
                .map_err(|e| Error::internal("send options as JSON", e))?,
        };
        let outcome = match &options.recipients {
            NotificationRecipients::Broadcast => self.send_broadcast(send, &options, key).await?,
            NotificationRecipients::Entity {
                entity_ref,
                exclude_entity_ref,
            } => {
                let excluded = exclude_entity_ref
                    .clone()
                    .map(|e| e.into_vec())
                    .unwrap_or_default();
                let users = self
                    .resolve_users(&entity_ref.clone().into_vec(), &excluded)
                    .await?;
                self.send_to_users(send, &options, users, key).await?
            }
        };
        Ok(outcome)
    }

    /// What a stored payload must be: a title, sane field lengths, a safe link.
    fn check_payload(&self, payload: &NotificationPayload) -> Result<(), Error> {
        if payload.title.is_empty() {
            return Err(Error::invalid(
                "Invalid notification request received: missing title",
            ));
        }
        validate::payload(payload)?;
        if let Some(l) = &payload.link {
            link::validate_link(l, &self.inner.app_base_url)?;
        }
        Ok(())
    }

    async fn send_broadcast(
        &self,
        send: SendContext,
        options: &NotificationSendOptions,
        key: Option<IdempotentSend>,
    ) -> Result<SendAnswer, Error> {
        // Broadcasts are not subject to anyone's settings, only to the processors' filters.
        let selected: Vec<&Installed> = self
            .inner
            .processors
            .iter()
            .filter(|p| p.accepts(&options.payload))
            .collect();
        let n = processing::pre_process(
            &selected,
            new_notification(&send, None, options),
            options,
            &|p| self.check_payload(p),
        )
        .await;
        let recipient = Recipient {
            user: None,
            id: n.id,
            payload: n.payload,
            web: true,
            channels: processing::delivery_channels(&selected),
        };
        let queued = !recipient.channels.is_empty();
        let store = &self.inner.store;
        let (committed, answer) = match store
            .create_broadcast_keyed(send, recipient, key, idempotency::answer)
            .await?
        {
            Written::Stored(committed, answer) => (committed, answer),
            Written::Used(key, recorded) => return idempotency::replay(&key, recorded),
        };
        metrics::counter!(crate::metrics::CREATED, "kind" => "broadcast").increment(1);
        self.inner.signals.publish(committed.signals);
        if queued {
            self.inner.deliveries_queued.notify_one();
        }
        Ok(answered(vec![SendOutcome(committed.value)], answer))
    }

    /// Each user gets the processors their settings allow (and the filters accept), and an
    /// inbox entry when their Web channel is on; all of it is stored in one transaction.
    async fn send_to_users(
        &self,
        send: SendContext,
        options: &NotificationSendOptions,
        users: Vec<String>,
        key: Option<IdempotentSend>,
    ) -> Result<SendAnswer, Error> {
        // Under a key even an empty answer is recorded, so that it is the one replayed.
        if users.is_empty() && key.is_none() {
            return Ok(SendAnswer::Sent(Vec::new()));
        }
        let settings = self.inner.store.users_settings(users.clone()).await?;
        let defaults = &self.inner.defaults;
        let topic = options.payload.topic.as_deref();
        let mut recipients = Vec::with_capacity(users.len());
        for user in users {
            let rows = settings.get(&user).map(Vec::as_slice).unwrap_or_default();
            let enabled = |channel: &str, topic: Option<&str>| {
                settings::is_enabled(channel, defaults, rows, &send.origin, topic)
            };
            let selected: Vec<&Installed> = self
                .inner
                .processors
                .iter()
                .filter(|p| p.accepts(&options.payload) && enabled(p.name(), topic))
                .collect();
            let n = processing::pre_process(
                &selected,
                new_notification(&send, Some(user.clone()), options),
                options,
                &|p| self.check_payload(p),
            )
            .await;
            let web = enabled(WEB_CHANNEL, n.payload.topic.as_deref());
            let channels = processing::delivery_channels(&selected);
            if web || !channels.is_empty() {
                recipients.push(Recipient {
                    user: Some(user),
                    id: n.id,
                    payload: n.payload,
                    web,
                    channels,
                });
            }
        }
        let queued = recipients.iter().any(|r| !r.channels.is_empty());
        let store = &self.inner.store;
        let (committed, answer) = match store
            .create_for_users_keyed(send, recipients, key, idempotency::answer)
            .await?
        {
            Written::Stored(committed, answer) => (committed, answer),
            Written::Used(key, recorded) => return idempotency::replay(&key, recorded),
        };
        let stored = committed.value;
        metrics::counter!(crate::metrics::CREATED, "kind" => "user").increment(stored.len() as u64);
        self.inner.signals.publish(committed.signals);
        if queued {
            self.inner.deliveries_queued.notify_one();
        }
        Ok(answered(
            stored.into_iter().map(SendOutcome).collect(),
            answer,
        ))
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
                // An outage is not the sender's fault: 503, so that clients retry. Its detail is
                // the catalog's (a remote answer, hosts): logged, never shown.
                ResolveError::Unavailable(detail) => {
                    tracing::warn!(detail, "recipients could not be resolved");
                    Error::Unavailable(message(&"the catalog is unavailable; try again"))
                }
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
}

/// What a send that stored `outcomes` answers: under a key, the answer it recorded.
fn answered(outcomes: Vec<SendOutcome>, recorded: Option<Answer>) -> SendAnswer {
    match recorded {
        None => SendAnswer::Sent(outcomes),
        Some(answer) => SendAnswer::Recorded {
            answer,
            replayed: false,
        },
    }
}

/// An empty topic or scope is none: upstream only honours a non-empty scope, and an empty topic
/// would show up as a nameless (and unsaveable) topic in the user's settings.
fn normalized(mut options: NotificationSendOptions) -> NotificationSendOptions {
    let payload = &mut options.payload;
    payload.topic = payload.topic.take().filter(|t| !t.is_empty());
    payload.scope = payload.scope.take().filter(|s| !s.is_empty());
    options
}

/// A new notification of this send for `user` (or everyone), before the processors.
fn new_notification(
    send: &SendContext,
    user: Option<String>,
    options: &NotificationSendOptions,
) -> Notification {
    Notification {
        id: NotificationId::generate(),
        user,
        created: send.created,
        saved: None,
        read: None,
        updated: None,
        origin: send.origin.clone(),
        payload: options.payload.clone(),
    }
}
