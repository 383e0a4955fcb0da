//! The OpenAPI document, generated from the handlers' annotations: upstream's routes and their
//! deprecated aliases under the plugin's mount, and janus's routes (tag `janus`) wherever the
//! configuration serves them. Every operation lists each status it can answer; the error
//! answers are the reusable responses below, one definition each.

use actix_web::{HttpRequest, HttpResponse, web};
use notifications_common::OrderBy;
use notifications_common::bounds::NonEmptyText;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, SecurityRequirement};

use super::error::ErrorBody;
use super::janus::responses::{JanusBadRequest, JanusFailure};
use super::janus::{self, JanusErrorBody, SECRET_HEADER};
use super::query::Count;
use super::responses::*;
use super::{AppState, PLUGIN_MOUNT, notifications, preferences, query, settings, stream};
use crate::config::JanusConfig;
use crate::error::Error;

/// Upstream's routes, relative to the plugin's mount.
#[derive(OpenApi)]
#[openapi(
    paths(
        notifications::list, notifications::get_one, notifications::update,
        notifications::read_all, notifications::status, notifications::topics,
        notifications::create, settings::get, settings::save, preferences::get,
        preferences::save,
        stream::stream, serve,
    ),
    components(
        responses(
            BadRequest, Unauthenticated, Forbidden, NotFound, Conflict, IdempotencyKeyReused,
            TooManyRequests, Unavailable,
        ),
        // Those only parameters and responses name, which utoipa does not collect.
        schemas(ErrorBody, Count, NonEmptyText, OrderBy, notifications::IdempotencyKey),
    ),
    tags(
        (name = "notifications", description = "Upstream's notifications API (Backstage 0.6.9)"),
        (name = "settings", description = "Which channels, origins and topics reach the caller"),
        (name = "preferences", description = "How and when deliveries reach the caller (beyond upstream)"),
        (name = "signals", description = "Live updates as Server-Sent Events"),
        (name = "meta", description = "This document"),
    ),
)]
struct UpstreamApi;

/// Janus's routes, relative to where they are served.
#[derive(OpenApi)]
#[openapi(
    paths(janus::create, janus::list, janus::count, janus::mark_read),
    components(
        responses(
            JanusBadRequest, Unauthenticated, Forbidden, PayloadTooLarge, JanusFailure,
            Unavailable,
        ),
        schemas(ErrorBody, JanusErrorBody),
    ),
    tags((
        name = "janus",
        description = "The janus-idp notifications API (`@janus-idp/plugin-notifications-backend` \
                       1.6.0), served beside upstream's for janus's frontend and scripts",
    )),
)]
struct JanusApi;

#[derive(OpenApi)]
#[openapi(info(
    title = "notifications",
    description = "A Backstage-compatible notifications server. Errors have upstream's body: \
                   `{\"error\": {\"name\", \"message\"}, \"request\": {\"method\", \"url\"}, \
                   \"response\": {\"statusCode\"}}`; `error.name` tells the kind.",
))]
struct Root;

/// Paths upstream still serves for older clients (its node client posts to the bare mount):
/// each answers as the path it stands for, and is listed as a deprecated copy of it.
/// [`super::configure`] routes them.
const ALIASES: [(&str, &str, &str); 4] = [
    ("", "/notifications", "AtMount"),
    ("/", "/notifications", "AtMountSlash"),
    ("/update", "/notifications/update", "Alias"),
    ("/{id}", "/notifications/{id}", "Alias"),
];

/// Janus's routes that no upstream route shares a method and path with: the ones the shared
/// mount lists. (Janus's list and create share theirs with upstream's; which API answers such a
/// request depends on its parameters or body, which a document cannot say: see the `janus` tag
/// under `extraBasePath`.)
const JANUS_ONLY: [&str; 2] = ["/notifications/count", "/notifications/read"];

/// The document as JSON for this configuration: janus's routes where it serves them, and the
/// settings channels a user may name (`Web`, the processors', and the configured defaults').
pub fn document(janus_config: &JanusConfig, channels: &[String]) -> String {
    let mut upstream = UpstreamApi::openapi();
    for (alias, original, suffix) in ALIASES {
        if let Some(item) = upstream.paths.paths.get(original) {
            let mut item = item.clone();
            for operation in operations(&mut item) {
                operation.deprecated = Some(utoipa::openapi::Deprecated::True);
                operation.operation_id = operation.operation_id.take().map(|id| id + suffix);
            }
            upstream.paths.paths.insert(alias.to_owned(), item);
        }
    }
    settings_channels(&mut upstream, channels);
    let mut document = Root::openapi().nest(PLUGIN_MOUNT, upstream);
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    if janus_config.enabled {
        if janus_config.external_caller_secret.is_some() {
            components.add_security_scheme(
                "janusSecret",
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(SECRET_HEADER))),
            );
        }
        // In exclusive mode the mount serves janus alone (this document is not served there).
        if janus_config.on_plugin_mount() {
            let mut api = janus_api(janus_config, "");
            api.paths
                .paths
                .retain(|path, _| JANUS_ONLY.contains(&path.as_str()));
            document = document.nest(PLUGIN_MOUNT, api);
        }
        if let Some(base) = &janus_config.extra_base_path {
            document = document.nest(base, janus_api(janus_config, "OnExtraBasePath"));
        }
    }
    document.to_json().unwrap_or_else(|e| {
        tracing::error!("could not render the OpenAPI document: {e}");
        "{}".to_owned()
    })
}

/// Janus's API with the credentials this configuration takes, its operation ids suffixed.
fn janus_api(config: &JanusConfig, suffix: &str) -> Document {
    let mut security = vec![SecurityRequirement::new("bearer", Vec::<String>::new())];
    match &config.external_caller_secret {
        Some(_) => security.push(SecurityRequirement::new(
            "janusSecret",
            Vec::<String>::new(),
        )),
        None if config.allow_unauthenticated => security.push(SecurityRequirement::default()),
        None => {}
    }
    let mut api = JanusApi::openapi();
    for item in api.paths.paths.values_mut() {
        for operation in operations(item) {
            operation.security = Some(security.clone());
            operation.operation_id = operation.operation_id.take().map(|id| id + suffix);
        }
    }
    api
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// `POST /settings` takes only the channels that exist here; the schema lists them.
fn settings_channels(api: &mut Document, channels: &[String]) {
    let id = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("ChannelSetting"))
        .and_then(|schema| match schema {
            RefOr::T(Schema::Object(object)) => object.properties.get_mut("id"),
            _ => None,
        });
    if let Some(RefOr::T(Schema::Object(id))) = id {
        id.enum_values = Some(channels.iter().map(|c| c.as_str().into()).collect());
    }
}

/// Public, like any published API description: a client needs it before it has a token.
#[utoipa::path(
    get, path = "/openapi.json", tag = "meta", operation_id = "getOpenApiDocument",
    responses(
        (status = 200, description = "This document", content_type = "application/json"),
        (status = 400, response = BadRequest),
    ),
    security(()),
)]
pub async fn serve(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    query::none(req.query_string())?;
    Ok(HttpResponse::Ok()
        .content_type("application/json; charset=utf-8")
        .body(state.openapi.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole document, pretty-printed, so that a change to any route, schema or answer shows
    /// in review (`INSTA_UPDATE=always cargo test` accepts a deliberate one).
    fn snapshot(janus: &JanusConfig) -> String {
        let channels = ["Web".to_owned(), "email".to_owned()];
        let value: serde_json::Value = serde_json::from_str(&document(janus, &channels)).unwrap();
        serde_json::to_string_pretty(&value).unwrap()
    }

    #[test]
    fn upstream_alone() {
        let janus = JanusConfig {
            enabled: false,
            ..JanusConfig::default()
        };
        insta::assert_snapshot!(snapshot(&janus));
    }

    /// Janus on the shared mount and under an extra base path, with its shared secret.
    #[test]
    fn with_janus() {
        let janus = JanusConfig {
            extra_base_path: Some("/api/janus".to_owned()),
            external_caller_secret: Some("secret".into()),
            ..JanusConfig::default()
        };
        insta::assert_snapshot!(snapshot(&janus));
    }
}
