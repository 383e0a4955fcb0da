//! Strict query strings, as upstream's OpenAPI validator enforces them since 0.6.6: unknown
//! parameters, empty values and wrong types are 400s.

use std::sync::LazyLock;

use notifications_common::bounds::NonEmptyText;
use notifications_common::{
    NotificationListOptions, NotificationSeverity, OrderBy, OrderField, ReadAllFilters,
    SortDirection, Timestamp,
};
use utoipa::openapi::RefOr;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::Error;

/// The parameters of `GET /notifications`: those its OpenAPI description declares, so that the
/// document and the parser cannot disagree.
static LIST_PARAMS: LazyLock<Vec<Parameter>> =
    LazyLock::new(|| [declared::<PageParams>(), declared::<FilterParams>()].concat());
/// The parameters of `GET /topics`: the filters without topic and paging.
static TOPICS_PARAMS: LazyLock<Vec<Parameter>> = LazyLock::new(declared::<FilterParams>);
static RESUME_PARAMS: LazyLock<Vec<Parameter>> = LazyLock::new(declared::<ResumeQuery>);
static READ_ALL_PARAMS: LazyLock<Vec<Parameter>> = LazyLock::new(declared::<ReadAllParams>);
/// The most `orderField`s a list takes: one per field is all an ordering can use.
const MAX_ORDER_TERMS: usize = OrderField::ALL.len();

/// More query parameters than any route takes (the most is upstream's list: nine, and a few
/// `orderField`s). A longer query is refused before anything decodes it.
pub const MAX_QUERY_PARAMS: usize = 64;

/// Refuses a query string of more than [`MAX_QUERY_PARAMS`] pairs, counted without decoding
/// (empty pairs, as in `a=1&&b=2`, are skipped as the decoder skips them).
pub fn check_param_count(query: &str) -> Result<(), Error> {
    let count = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .take(MAX_QUERY_PARAMS + 1)
        .count();
    if count > MAX_QUERY_PARAMS {
        return Err(Error::invalid(format!(
            "Too many query parameters: at most {MAX_QUERY_PARAMS} are accepted"
        )));
    }
    Ok(())
}

/// The filters of `GET /notifications` and `GET /topics`, for the OpenAPI document ([`Params`]
/// parses them).
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Describes the query; never built.
pub struct FilterParams {
    /// Case-insensitive text in the title or the description.
    #[param(value_type = Option<NonEmptyText>)]
    search: Option<String>,
    /// `true`: only read ones; `false`: only unread ones.
    read: Option<bool>,
    /// `true`: only saved ones; `false`: only unsaved ones.
    saved: Option<bool>,
    /// Only notifications created at or after this instant. A date-time without an offset is
    /// read as UTC, a bare date as its midnight UTC.
    #[param(value_type = Option<String>, format = DateTime)]
    created_after: Option<String>,
    /// Only notifications at least this severe.
    minimum_severity: Option<NotificationSeverity>,
}

/// The paging, ordering and topic of `GET /notifications`, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Describes the query; never built.
pub struct PageParams {
    /// Rows to skip, after ordering.
    #[param(value_type = Option<Count>)]
    offset: Option<u64>,
    /// Rows to return; every row when absent.
    #[param(value_type = Option<Count>)]
    limit: Option<u64>,
    /// Repeatable, the first term sorts first; `created,desc` when absent. A field named again
    /// changes nothing. At most one term per field.
    #[param(value_type = Option<Vec<OrderBy>>, max_items = 14, style = Form, explode)]
    order_field: Option<Vec<String>>,
    /// Exactly this topic.
    #[param(value_type = Option<NonEmptyText>)]
    topic: Option<String>,
}

/// The filters of `POST /notifications/read-all`: the list's, but `read` (it marks unread
/// ones) and with `topic`; declared by taking them from the list's, so they read alike.
pub struct ReadAllParams;

impl IntoParams for ReadAllParams {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let topic = PageParams::into_params(&parameter_in)
            .into_iter()
            .filter(|p| p.name == "topic");
        FilterParams::into_params(&parameter_in)
            .into_iter()
            .filter(|p| p.name != "read")
            .chain(topic)
            .collect()
    }
}

/// `?lastEventId=` of the event stream, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Describes the query; never built.
pub struct ResumeQuery {
    /// `Last-Event-ID`, for clients that cannot set headers.
    last_event_id: Option<i64>,
}

/// The query parameters `P` describes; a repeatable one is declared `explode`.
fn declared<P: IntoParams>() -> Vec<Parameter> {
    P::into_params(|| Some(ParameterIn::Query))
}

/// Decoded `name=value` pairs, checked against the parameters a route accepts.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str, accepted: &[Parameter]) -> Result<Self, Error> {
        check_param_count(query)?;
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (i, (name, value)) in pairs.iter().enumerate() {
            let Some(parameter) = accepted.iter().find(|p| p.name == *name) else {
                return Err(Error::invalid(format!("Unknown query parameter '{name}'")));
            };
            if value.is_empty() {
                return Err(Error::invalid(format!(
                    "Empty value found for query parameter '{name}'"
                )));
            }
            // PostgreSQL cannot compare text with NUL in it.
            if value.contains('\0') {
                return Err(Error::invalid(format!(
                    "request/query/{name} must not contain NUL characters"
                )));
            }
            let repeatable = parameter.explode == Some(true);
            if !repeatable && pairs.iter().take(i).any(|(n, _)| n == name) {
                return Err(Error::invalid(format!(
                    "request/query/{name} must be given at most once"
                )));
            }
        }
        Ok(Self(pairs))
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer ≥ 0 without a maximum, as upstream's: one larger than this service counts
    /// is the most it counts (all rows, or past the last).
    fn non_negative(&self, name: &str) -> Result<Option<u64>, Error> {
        self.one(name)
            .map(|v| {
                let digits = v.strip_prefix('+').unwrap_or(v);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(digits.parse().unwrap_or(u64::MAX));
                }
                Err(match v.parse::<i64>() {
                    Ok(_) => Error::invalid(format!("request/query/{name} must be >= 0")),
                    Err(_) => Error::invalid(format!("request/query/{name} must be integer")),
                })
            })
            .transpose()
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        self.one(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::invalid(format!(
                    "request/query/{name} must be equal to one of the allowed values: true, false"
                ))),
            })
            .transpose()
    }

    /// Every list option; parameters the route does not accept were refused by `parse`.
    fn options(&self) -> Result<NotificationListOptions, Error> {
        let minimum_severity = self
            .one("minimumSeverity")
            .map(|v| {
                serde_json::from_value::<NotificationSeverity>(serde_json::Value::String(v.into())).map_err(|_| {
                    Error::invalid(
                        "request/query/minimumSeverity must be equal to one of the allowed values: \
                         critical, high, normal, low",
                    )
                })
            })
            .transpose()?;
        let created_after = self
            .one("createdAfter")
            .map(|v| Timestamp::parse(v).map_err(|_| Error::invalid("Unexpected date format")))
            .transpose()?;
        if self.all("orderField").count() > MAX_ORDER_TERMS {
            return Err(Error::invalid(format!(
                "request/query/orderField must NOT have more than {MAX_ORDER_TERMS} items"
            )));
        }
        let mut order: Vec<OrderBy> = Vec::new();
        for value in self.all("orderField") {
            let term = order_by(value)?;
            // A field named again changes nothing (the earlier term orders by it already), as in
            // upstream's SQL; it is left out of ours.
            if order.iter().all(|o| o.field != term.field) {
                order.push(term);
            }
        }
        Ok(NotificationListOptions {
            offset: self.non_negative("offset")?,
            limit: self.non_negative("limit")?,
            order,
            topic: self.one("topic").map(str::to_owned),
            search: self.one("search").map(str::to_owned),
            read: self.boolean("read")?,
            saved: self.boolean("saved")?,
            created_after,
            minimum_severity,
        })
    }
}

/// `field` or `field,asc|desc`.
fn order_by(value: &str) -> Result<OrderBy, Error> {
    let (field, direction) = match value.split_once(',') {
        Some((field, direction)) => (field, Some(direction)),
        None => (value, None),
    };
    let field = field.parse::<OrderField>().map_err(|()| {
        let names: Vec<&str> = OrderField::ALL.iter().map(|f| f.as_str()).collect();
        Error::invalid(format!(
            "Invalid order field '{field}', must be one of {}",
            names.join(", ")
        ))
    })?;
    let direction = match direction {
        None | Some("asc") => SortDirection::Asc,
        Some("desc") => SortDirection::Desc,
        Some(_) => {
            return Err(Error::invalid(
                "Invalid order field order, must be asc or desc",
            ));
        }
    };
    Ok(OrderBy { field, direction })
}

pub fn list_options(query: &str) -> Result<NotificationListOptions, Error> {
    Params::parse(query, &LIST_PARAMS)?.options()
}

/// The filters of `GET /topics` (no topic, ordering or paging).
pub fn topics_options(query: &str) -> Result<NotificationListOptions, Error> {
    Params::parse(query, &TOPICS_PARAMS)?.options()
}

/// The filters of `POST /notifications/read-all`.
pub fn read_all_filters(query: &str) -> Result<ReadAllFilters, Error> {
    let options = Params::parse(query, &READ_ALL_PARAMS)?.options()?;
    Ok(ReadAllFilters {
        topic: options.topic,
        search: options.search,
        saved: options.saved,
        created_after: options.created_after,
        minimum_severity: options.minimum_severity,
    })
}

/// `?lastEventId=` of the event stream.
pub fn last_event_id(query: &str) -> Result<Option<i64>, Error> {
    let params = Params::parse(query, &RESUME_PARAMS)?;
    params
        .one("lastEventId")
        .map(|v| {
            v.parse().map_err(|_| {
                Error::invalid(format!("Invalid Last-Event-ID {v:?}: expected an event id"))
            })
        })
        .transpose()
}

/// For routes that take no parameters at all.
pub fn none(query: &str) -> Result<(), Error> {
    Params::parse(query, &[]).map(|_| ())
}

/// A non-negative integer without an upper bound (upstream's paging: larger values than this
/// service can count are taken as the largest it can).
pub struct Count;

impl PartialSchema for Count {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .into()
    }
}

impl ToSchema for Count {}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(query: &str) -> String {
        list_options(query).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_list_parameter() {
        let o = list_options(
            "limit=10&offset=5&orderField=created,asc&orderField=topic&topic=t&search=a%20b\
             &read=true&saved=false&createdAfter=2025-01-01T00:00:00Z&minimumSeverity=high",
        )
        .unwrap();
        assert_eq!((o.limit, o.offset), (Some(10), Some(5)));
        assert_eq!(o.order.len(), 2);
        assert_eq!(o.order[1].direction, SortDirection::Asc);
        assert_eq!(o.search.as_deref(), Some("a b"));
        assert_eq!((o.read, o.saved), (Some(true), Some(false)));
        assert_eq!(o.minimum_severity, Some(NotificationSeverity::High));
        assert_eq!(
            o.created_after.unwrap().to_string(),
            "2025-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn strictness_matches_upstream() {
        assert_eq!(err("foo=bar"), "Unknown query parameter 'foo'");
        assert_eq!(
            err("search="),
            "Empty value found for query parameter 'search'"
        );
        assert_eq!(
            err("orderField=created,sideways"),
            "Invalid order field order, must be asc or desc"
        );
        assert!(err("orderField=nope").starts_with("Invalid order field 'nope'"));
        assert!(err(&vec!["orderField=id"; 15].join("&")).contains("more than 14 items"));
        assert!(err("limit=-1").contains(">= 0"));
        assert!(err("limit=abc").contains("integer"));
        assert!(err("read=yes").contains("allowed values"));
        assert_eq!(err("createdAfter=notadate"), "Unexpected date format");
        assert!(err("minimumSeverity=urgent").contains("allowed values"));
        assert!(err("topic=a&topic=b").contains("at most once"));
        assert!(err("topic=a%00b").contains("NUL"));
        assert!(list_options("").unwrap().order.is_empty());
    }

    #[test]
    fn a_field_ordered_by_again_changes_nothing() {
        let o = list_options("orderField=topic&orderField=created&orderField=topic,desc").unwrap();
        let terms: Vec<String> = o.order.iter().map(ToString::to_string).collect();
        assert_eq!(terms, ["topic,asc", "created,asc"]);
        assert_eq!(
            list_options(&vec!["orderField=id"; 14].join("&"))
                .unwrap()
                .order
                .len(),
            1
        );
    }

    #[test]
    fn paging_has_no_maximum() {
        let o =
            list_options("limit=9223372036854775808&offset=%2B99999999999999999999999").unwrap();
        assert_eq!(
            (o.limit, o.offset),
            (Some(9_223_372_036_854_775_808), Some(u64::MAX))
        );
    }

    #[test]
    fn parameters_are_counted_before_decoding() {
        let pairs = |n: usize| vec!["orderField=created"; n].join("&");
        assert!(check_param_count(&pairs(MAX_QUERY_PARAMS)).is_ok());
        assert!(check_param_count(&format!("&&{}&", pairs(MAX_QUERY_PARAMS))).is_ok());
        assert_eq!(
            err(&pairs(MAX_QUERY_PARAMS + 1)),
            "Too many query parameters: at most 64 are accepted"
        );
        assert!(none(&pairs(MAX_QUERY_PARAMS + 1)).is_err());
    }

    #[test]
    fn topics_refuses_paging_and_topic() {
        assert!(topics_options("limit=5").is_err());
        assert!(topics_options("topic=x").is_err());
        assert_eq!(
            topics_options("search=Notification%203")
                .unwrap()
                .search
                .as_deref(),
            Some("Notification 3")
        );
        assert!(none("x=1").is_err());
        assert!(none("").is_ok());
    }
}
