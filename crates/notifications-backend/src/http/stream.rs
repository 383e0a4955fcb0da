//! `GET /api/notifications/stream`: the signals as Server-Sent Events, for clients and proxies
//! that cannot do WebSocket. Authenticated like every plugin route (bearer header); each event
//! carries its id, and a client that reconnects with `Last-Event-ID` gets what it missed within
//! the replay window (upstream drops events of reconnecting clients, issue #27225).

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::{StreamExt, stream};
use notifications_common::NOTIFICATIONS_CHANNEL;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::responses::{Authenticated, TooManyRequests};
use super::signals::{peer_of, refs_of};
use super::{AppState, query};
use crate::auth::Principal;
use crate::error::Error;
use crate::signals::{PublishedSignal, Subscription, Transport};

/// An event of the stream, as an EventSource reads it (for the OpenAPI document).
pub struct StreamEvent;

impl PartialSchema for StreamEvent {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .required("data")
            .property(
                "id",
                string("The signal's id: send it as `Last-Event-ID` to resume after it")
                    .pattern(Some("^[0-9]+$")),
            )
            .property(
                "event",
                string(
                    "`message`, or `reset` when the missed events cannot be replayed (the \
                     client reloads instead)",
                )
                .enum_values(Some(["message", "reset"])),
            )
            .property(
                "data",
                string("A signal as JSON, `{\"channel\", \"message\"}`; `{}` for `reset`"),
            )
            .into()
    }
}

impl ToSchema for StreamEvent {}

/// Where a reconnecting client resumes, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Describes the request; never built.
struct ResumeHeader {
    /// Resume after this event (browsers' EventSource sends it when it reconnects).
    #[param(rename = "Last-Event-ID", nullable = false)]
    last_event_id: Option<i64>,
}

/// How long a client waits before reconnecting (the `retry` field).
const RETRY_MS: u64 = 2000;

/// The caller's signals as Server-Sent Events, live, after those missed since `Last-Event-ID`.
#[utoipa::path(
    get, path = "/stream", tag = "signals", operation_id = "streamSignals",
    params(ResumeHeader, query::ResumeQuery),
    responses(
        (status = 200, description = "Events until the client leaves", content_type = "text/event-stream", body = StreamEvent),
        (status = 429, response = TooManyRequests),
        Authenticated,
    ),
    security(("bearer" = []))
)]
pub async fn stream(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let principal = req.extensions().get::<Principal>().cloned();
    let peer = peer_of(&req, principal.as_ref());
    let refs = match principal {
        Some(p @ Principal::User { .. }) => refs_of(p),
        Some(Principal::Service { .. }) => {
            return Err(Error::NotAllowed(
                "This endpoint does not allow 'service' credentials".into(),
            ));
        }
        None => return Err(Error::Unauthenticated("Missing credentials".into())),
    };
    let last_seen = last_event_id(req.headers().get("last-event-id"), req.query_string())?;
    // Connected before the replay is read, so that nothing falls between the two.
    let subscription =
        state
            .service
            .signals()
            .hub()
            .connect(refs.clone(), peer, Transport::EventStream)?;
    subscription.set_subscribed(NOTIFICATIONS_CHANNEL, true);
    let mut opening = format!("retry: {RETRY_MS}\n: connected\n\n").into_bytes();
    let mut replayed = HashSet::new();
    if let Some(after) = last_seen {
        let missed = state.service.missed_signals(refs, after).await?;
        if missed.incomplete {
            // The client cannot be brought up to date event by event: it reloads instead.
            opening.extend_from_slice(b"event: reset\ndata: {}\n\n");
        }
        for event in &missed.events {
            replayed.insert(event.id);
            opening.extend_from_slice(&event.sse);
        }
    }
    let live = Live {
        subscription,
        replayed,
        heartbeat: tokio::time::interval_at(
            tokio::time::Instant::now() + state.signals.heartbeat_interval,
            state.signals.heartbeat_interval,
        ),
    };
    let body = stream::once(async move { Ok::<_, actix_web::Error>(Bytes::from(opening)) }).chain(
        stream::unfold(live, |mut live| async move {
            let chunk = live.next().await?;
            Some((Ok(chunk), live))
        }),
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Proxies such as nginx would otherwise hold events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The id after which the client wants events: the `Last-Event-ID` header (sent by browsers'
/// EventSource on reconnection) or, for clients that cannot set headers, `?lastEventId=`. Both
/// must be event ids when given; the header wins. Takes the parts rather than the request so
/// that the fuzz targets can call it.
pub fn last_event_id(
    header: Option<&header::HeaderValue>,
    query_string: &str,
) -> Result<Option<i64>, Error> {
    let from_query = query::last_event_id(query_string)?;
    let Some(header) = header else {
        return Ok(from_query);
    };
    let header = header.to_str().unwrap_or_default().trim();
    header.parse::<i64>().map(Some).map_err(|_| {
        Error::invalid(format!(
            "Invalid Last-Event-ID {header:?}: expected an event id"
        ))
    })
}

struct Live {
    subscription: Subscription,
    /// Sent in the replay already; the live queue may hold them too.
    replayed: HashSet<i64>,
    heartbeat: tokio::time::Interval,
}

impl Live {
    /// The next chunk to send; `None` ends the response (the consumer fell behind: the client
    /// reconnects and resumes).
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                event = self.subscription.next() => {
                    let event: Arc<PublishedSignal> = event?;
                    if !self.replayed.remove(&event.id) {
                        return Some(event.sse.clone());
                    }
                }
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b": keepalive\n\n")),
            }
        }
    }
}
