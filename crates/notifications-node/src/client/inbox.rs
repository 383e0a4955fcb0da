use notifications_common::{
    Notification, NotificationListOptions, NotificationListResponse, NotificationPreferences,
    NotificationSettings, NotificationStatus, ReadAllFilters, ReadAllResponse, TopicsResponse,
    UpdateNotificationsRequest,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::transport::{Call, Transport};
use super::{ClientBuilder, ClientError};

/// A user's notifications, through the user routes, with that user's token: the calls of
/// upstream's frontend `NotificationsClient` (contract, section 5), with the same query
/// strings. Cheap to clone.
#[derive(Clone)]
pub struct NotificationsClient {
    transport: Transport,
}

impl NotificationsClient {
    /// `base_url`: where the notifications plugin is mounted, e.g.
    /// `http://localhost:7007/api/notifications`.
    pub fn builder(base_url: &str) -> ClientBuilder<Self> {
        ClientBuilder::new(base_url)
    }

    /// `GET /notifications`: the user's notifications and broadcasts, filtered, ordered and
    /// paged by `options`.
    pub async fn get_notifications(
        &self,
        options: &NotificationListOptions,
    ) -> Result<NotificationListResponse, ClientError> {
        let mut url = self.transport.url(&["notifications"]);
        list_query(&mut url, options);
        self.get(url).await
    }

    /// `GET /notifications/{id}`: one of the user's notifications, or a broadcast.
    pub async fn get_notification(&self, id: &str) -> Result<Notification, ClientError> {
        self.get(self.transport.url(&["notifications", id])).await
    }

    /// `POST /notifications/update`: marks read/unread, saved/unsaved; answers the notifications
    /// as they are now.
    pub async fn update_notifications(
        &self,
        update: &UpdateNotificationsRequest,
    ) -> Result<Vec<Notification>, ClientError> {
        self.with_body(Method::POST, &["notifications", "update"], update)
            .await
    }

    /// `POST /notifications/read-all` (beyond upstream): marks read every unread notification
    /// of the user, own and broadcast, that matches `filters` (all of them when it has none);
    /// returns how many it marked.
    pub async fn mark_all_read(&self, filters: &ReadAllFilters) -> Result<u64, ClientError> {
        let mut url = self.transport.url(&["notifications", "read-all"]);
        list_query(&mut url, &NotificationListOptions::from(filters.clone()));
        let answer: ReadAllResponse = self.without_body(Method::POST, url).await?;
        Ok(answer.updated)
    }

    /// `GET /status`: the read and unread counts.
    pub async fn get_status(&self) -> Result<NotificationStatus, ClientError> {
        self.get(self.transport.url(&["status"])).await
    }

    /// `GET /topics`: the topics of the user's notifications that match the filters of
    /// `options` (its paging, ordering and `topic` are not used, as upstream).
    pub async fn get_topics(
        &self,
        options: &NotificationListOptions,
    ) -> Result<Vec<String>, ClientError> {
        let mut url = self.transport.url(&["topics"]);
        filter_query(&mut url, options);
        let topics: TopicsResponse = self.get(url).await?;
        Ok(topics.topics)
    }

    /// `GET /settings`: the user's effective settings.
    pub async fn get_notification_settings(&self) -> Result<NotificationSettings, ClientError> {
        self.get(self.transport.url(&["settings"])).await
    }

    /// `POST /settings`: replaces the user's settings; answers the effective settings.
    pub async fn update_notification_settings(
        &self,
        settings: &NotificationSettings,
    ) -> Result<NotificationSettings, ClientError> {
        self.with_body(Method::POST, &["settings"], settings).await
    }

    /// `GET /preferences` (beyond upstream): the user's digest mode, time zone and quiet hours.
    pub async fn get_preferences(&self) -> Result<NotificationPreferences, ClientError> {
        self.get(self.transport.url(&["preferences"])).await
    }

    /// `PUT /preferences` (beyond upstream): replaces them; answers them as stored.
    pub async fn update_preferences(
        &self,
        preferences: &NotificationPreferences,
    ) -> Result<NotificationPreferences, ClientError> {
        self.with_body(Method::PUT, &["preferences"], preferences)
            .await
    }

    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, ClientError> {
        self.without_body(Method::GET, url).await
    }

    /// A call whose request is all in its URL. Retrying read-all is harmless too: it marks
    /// what is still unread.
    async fn without_body<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
    ) -> Result<T, ClientError> {
        self.transport
            .call(Call {
                method,
                url,
                body: None,
                idempotency_key: None,
            })
            .await
    }

    /// Every call with a body sets state (marks, a whole document): retrying it is harmless.
    async fn with_body<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::Config(format!("the request as JSON: {e}")))?;
        self.transport
            .call(Call {
                method,
                url: self.transport.url(path),
                body: Some(body),
                idempotency_key: None,
            })
            .await
    }
}

impl ClientBuilder<NotificationsClient> {
    pub fn build(self) -> Result<NotificationsClient, ClientError> {
        Ok(NotificationsClient {
            transport: self.transport()?,
        })
    }
}

impl std::fmt::Debug for NotificationsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationsClient")
            .field("base_url", &self.transport.base().as_str())
            .finish_non_exhaustive()
    }
}

/// The list's query, in upstream's order: `limit`, `offset`, `orderField`, the filters, then
/// `topic`.
pub fn list_query(url: &mut Url, options: &NotificationListOptions) {
    {
        let mut query = url.query_pairs_mut();
        if let Some(limit) = options.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(offset) = options.offset {
            query.append_pair("offset", &offset.to_string());
        }
        for order in &options.order {
            query.append_pair("orderField", &order.to_string());
        }
    }
    filter_query(url, options);
    if let Some(topic) = &options.topic {
        url.query_pairs_mut().append_pair("topic", topic);
    }
    drop_empty_query(url);
}

/// The filters both the list and the topics take, in upstream's order.
pub fn filter_query(url: &mut Url, options: &NotificationListOptions) {
    {
        let mut query = url.query_pairs_mut();
        if let Some(search) = options.search.as_deref().filter(|s| !s.is_empty()) {
            query.append_pair("search", search);
        }
        if let Some(read) = options.read {
            query.append_pair("read", &read.to_string());
        }
        if let Some(saved) = options.saved {
            query.append_pair("saved", &saved.to_string());
        }
        if let Some(after) = options.created_after {
            query.append_pair("createdAfter", &after.to_string());
        }
        if let Some(severity) = options.minimum_severity {
            query.append_pair("minimumSeverity", severity.as_str());
        }
    }
    drop_empty_query(url);
}

/// `query_pairs_mut` leaves a bare `?` when nothing was added.
fn drop_empty_query(url: &mut Url) {
    if url.query() == Some("") {
        url.set_query(None);
    }
}

#[cfg(test)]
mod tests {
    use notifications_common::{
        NotificationSeverity, OrderBy, OrderField, SortDirection, Timestamp,
    };

    use super::*;

    #[test]
    fn queries_follow_upstreams_order() {
        let mut url = Url::parse("http://h/api/notifications/notifications").unwrap();
        list_query(&mut url, &NotificationListOptions::default());
        assert_eq!(url.query(), None);
        let options = NotificationListOptions {
            offset: Some(10),
            limit: Some(5),
            order: vec![OrderBy {
                field: OrderField::Created,
                direction: SortDirection::Desc,
            }],
            topic: Some("a b".into()),
            search: Some("50%".into()),
            read: Some(false),
            saved: Some(true),
            created_after: Some(Timestamp::parse("2025-04-01T10:00:00Z").unwrap()),
            minimum_severity: Some(NotificationSeverity::High),
        };
        list_query(&mut url, &options);
        assert_eq!(
            url.query(),
            Some(
                "limit=5&offset=10&orderField=created%2Cdesc&search=50%25&read=false&saved=true\
                 &createdAfter=2025-04-01T10%3A00%3A00.000Z&minimumSeverity=high&topic=a+b"
            )
        );
        let mut url = Url::parse("http://h/api/notifications/topics").unwrap();
        filter_query(&mut url, &options);
        assert!(!url.query().unwrap().contains("limit") && !url.query().unwrap().contains("topic"));
    }
}
