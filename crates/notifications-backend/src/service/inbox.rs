//! What users do with their notifications: list, read one, mark, count, topics, settings.

use notifications_common::{
    Notification, NotificationId, NotificationListOptions, NotificationSettings,
    NotificationSignal, NotificationStatus, ReadAllFilters, UpdateNotificationsRequest, UserRef,
};

use super::{NotificationsService, settings};
use crate::error::Error;

impl NotificationsService {
    pub async fn list(
        &self,
        user: &UserRef,
        options: &NotificationListOptions,
    ) -> Result<(Vec<Notification>, u64), Error> {
        Ok(self.inner.store.list(user, options).await?)
    }

    /// One of the user's notifications (own or broadcast); ids that are not UUIDs are simply
    /// not found.
    pub async fn get(&self, user: &UserRef, id: &str) -> Result<Notification, Error> {
        let not_found = || Error::NotFound("Not found".into());
        let id: NotificationId = id.parse().map_err(|_| not_found())?;
        self.inner
            .store
            .get_many(user, vec![id])
            .await?
            .into_iter()
            .next()
            .ok_or_else(not_found)
    }

    /// Marks read/unread and saved/unsaved; answers with the user's notifications among the
    /// ids. A read change is signalled to the user's connections with the ids as sent.
    pub async fn update(
        &self,
        user: &UserRef,
        request: UpdateNotificationsRequest,
    ) -> Result<Vec<Notification>, Error> {
        // Ids that are not UUIDs cannot match anything; they stay in the signal, as upstream.
        let ids: Vec<NotificationId> = request
            .ids
            .iter()
            .filter_map(|id| id.parse().ok())
            .collect();
        let now = time::OffsetDateTime::now_utc();
        let mark = |flag: Option<bool>| flag.map(|on| on.then_some(now));
        let notification_ids = request.ids;
        let signal = request.read.map(|read| {
            if read {
                NotificationSignal::NotificationRead { notification_ids }
            } else {
                NotificationSignal::NotificationUnread { notification_ids }
            }
        });
        let committed = self
            .inner
            .store
            .mark(user, ids, mark(request.read), mark(request.saved), signal)
            .await?;
        self.inner.signals.publish(committed.signals);
        Ok(committed.value)
    }

    /// Marks read every unread notification of the user (own and broadcast) that matches
    /// `filters`; the change is signalled as a read mark is. Returns how many it marked.
    pub async fn mark_all_read(
        &self,
        user: &UserRef,
        filters: ReadAllFilters,
    ) -> Result<u64, Error> {
        let committed = self
            .inner
            .store
            .mark_all_read(user, &filters, time::OffsetDateTime::now_utc())
            .await?;
        self.inner.signals.publish(committed.signals);
        Ok(committed.value)
    }

    pub async fn status(&self, user: &UserRef) -> Result<NotificationStatus, Error> {
        Ok(self.inner.store.status(user).await?)
    }

    /// The topics of the user's notifications matching the filters of `options`.
    pub async fn topics(
        &self,
        user: &UserRef,
        options: &NotificationListOptions,
    ) -> Result<Vec<String>, Error> {
        Ok(self.inner.store.topics(user, options.into()).await?)
    }

    pub async fn settings(&self, user: &UserRef) -> Result<NotificationSettings, Error> {
        let (origins, topics) = self.inner.store.origins_and_topics(user).await?;
        let stored = self.inner.store.settings_of(user).await?;
        Ok(settings::effective(
            &self.inner.channels,
            &self.inner.defaults,
            origins,
            topics,
            &stored,
        ))
    }

    /// Replaces the user's settings with `new` and answers with the effective settings.
    pub async fn save_settings(
        &self,
        user: &UserRef,
        new: &NotificationSettings,
    ) -> Result<NotificationSettings, Error> {
        let rows = settings::rows_to_store(new, &self.inner.channels)?;
        self.inner.store.replace_settings(user, rows).await?;
        self.settings(user).await
    }
}
