use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Notification, NotificationSeverity, Timestamp};

/// The filters, ordering and paging of a list call (`GET /notifications`). `topics` takes the
/// filters only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationListOptions {
    pub offset: Option<u64>,
    /// No limit means every matching row (upstream has no default page size).
    pub limit: Option<u64>,
    /// Empty means `created` descending.
    pub order: Vec<OrderBy>,
    pub topic: Option<String>,
    /// Case-insensitive substring of the title or the description, matched literally.
    pub search: Option<String>,
    pub read: Option<bool>,
    pub saved: Option<bool>,
    pub created_after: Option<Timestamp>,
    pub minimum_severity: Option<NotificationSeverity>,
}

/// One `orderField` term: `<field>` or `<field>,asc|desc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub field: OrderField,
    pub direction: SortDirection,
}

/// The fields a list can be ordered by (the columns of a stored notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderField {
    Id,
    Title,
    Description,
    Severity,
    Link,
    Origin,
    Scope,
    Topic,
    Icon,
    Created,
    Updated,
    User,
    Read,
    Saved,
}

impl OrderField {
    pub const ALL: [Self; 14] = [
        Self::Id,
        Self::Title,
        Self::Description,
        Self::Severity,
        Self::Link,
        Self::Origin,
        Self::Scope,
        Self::Topic,
        Self::Icon,
        Self::Created,
        Self::Updated,
        Self::User,
        Self::Read,
        Self::Saved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Title => "title",
            Self::Description => "description",
            Self::Severity => "severity",
            Self::Link => "link",
            Self::Origin => "origin",
            Self::Scope => "scope",
            Self::Topic => "topic",
            Self::Icon => "icon",
            Self::Created => "created",
            Self::Updated => "updated",
            Self::User => "user",
            Self::Read => "read",
            Self::Saved => "saved",
        }
    }
}

impl FromStr for OrderField {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.as_str() == s).ok_or(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

impl SortDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.field.as_str(), self.direction.as_str())
    }
}

/// The wire form, `<field>` or `<field>,asc|desc` (ascending when the direction is left out):
/// every term there is.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for OrderBy {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let terms = OrderField::ALL.iter().flat_map(|field| {
            ["", ",asc", ",desc"].map(|direction| format!("{}{direction}", field.as_str()))
        });
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(terms))
            .description(Some(
                "`<field>` or `<field>,asc|desc`; ascending when no direction is given.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for OrderBy {}

/// `GET /notifications` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NotificationListResponse {
    /// Rows matching every filter, ignoring `offset` and `limit`.
    pub total_count: u64,
    pub notifications: Vec<Notification>,
}

/// `GET /status` answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationStatus {
    pub unread: u64,
    pub read: u64,
}

/// `POST /notifications/update` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateNotificationsRequest {
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
}

/// Which unread notifications `POST /notifications/read-all` marks read (beyond upstream): those
/// matching every filter given, as the list's filters of the same names; none given, all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadAllFilters {
    pub topic: Option<String>,
    pub search: Option<String>,
    pub saved: Option<bool>,
    pub created_after: Option<Timestamp>,
    pub minimum_severity: Option<NotificationSeverity>,
}

impl From<ReadAllFilters> for NotificationListOptions {
    /// The list options that select the same notifications, read or not.
    fn from(f: ReadAllFilters) -> Self {
        Self {
            topic: f.topic,
            search: f.search,
            saved: f.saved,
            created_after: f.created_after,
            minimum_severity: f.minimum_severity,
            ..Self::default()
        }
    }
}

/// `POST /notifications/read-all` answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadAllResponse {
    /// How many notifications (own and broadcast) were unread and are now read.
    pub updated: u64,
}

/// `GET /topics` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicsResponse {
    pub topics: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_fields_round_trip_their_names() {
        for f in OrderField::ALL {
            assert_eq!(f.as_str().parse::<OrderField>(), Ok(f));
        }
        assert!("priority".parse::<OrderField>().is_err());
        let o = OrderBy {
            field: OrderField::Created,
            direction: SortDirection::Desc,
        };
        assert_eq!(o.to_string(), "created,desc");
    }

    #[test]
    fn list_response_uses_camel_case() {
        let r = NotificationListResponse {
            total_count: 2,
            notifications: vec![],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"totalCount":2,"notifications":[]}"#
        );
    }
}
