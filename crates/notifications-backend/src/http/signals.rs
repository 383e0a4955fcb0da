//! `/api/signals`: Backstage's signals WebSocket, so that its frontend connects unmodified. The
//! user token comes as the subprotocol and is echoed back; no token is the guest (everyone's
//! signals only); clients subscribe to channels with JSON frames and get `{channel, message}`.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use serde::Deserialize;

use super::AppState;
use crate::auth::Principal;
use crate::error::Error;
use crate::signals::{Subscription, Transport};

/// Where the signals plugin is mounted, as in Backstage.
pub const SIGNALS_MOUNT: &str = "/api/signals";
/// Who an unauthenticated (or non-user) connection acts as, as upstream.
const GUEST: &str = "user:default/guest";
/// Larger client frames are refused: a subscribe frame is tiny.
const MAX_FRAME: usize = 64 * 1024;

#[derive(Deserialize)]
struct Command {
    action: String,
    channel: String,
}

pub async fn health() -> HttpResponse {
    super::json(
        actix_web::http::StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
    )
}

/// The refs a connection acts as: a user's ownership refs, else the guest's.
pub fn refs_of(principal: Principal) -> Vec<String> {
    match principal {
        Principal::User { ownership_refs, .. } => ownership_refs,
        Principal::Service { .. } => vec![GUEST.to_owned()],
    }
}

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    // Browsers offer the token as the only subprotocol; the first offered value is echoed, as
    // upstream's ws library does (a browser fails the handshake otherwise).
    let offered = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let refs = match &offered {
        None => vec![GUEST.to_owned()],
        Some(token) => match state.auth.authenticate_token(token).await {
            Ok(principal) => refs_of(principal),
            Err(_) => return Ok(HttpResponse::Unauthorized().finish()),
        },
    };
    let protocols: Vec<&str> = offered.iter().map(String::as_str).collect();
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &protocols)
        .map_err(|e| Error::invalid(format!("Expected a WebSocket upgrade: {e}")))?;
    let subscription = state
        .service
        .signals()
        .hub()
        .connect(refs, Transport::WebSocket);
    actix_web::rt::spawn(serve(
        session,
        messages.max_frame_size(MAX_FRAME),
        subscription,
        state.signals.ping_interval,
    ));
    Ok(response)
}

/// Why a connection ended.
enum End {
    ClientLeft,
    NoPong,
    FellBehind,
    ServerStopping,
}

async fn serve(
    mut session: Session,
    mut messages: MessageStream,
    mut subscription: Subscription,
    ping_interval: Duration,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let mut answered = true;
    let end = loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(Ok(Message::Text(text))) => command(&subscription, &text),
                Some(Ok(Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        break End::ClientLeft;
                    }
                }
                Some(Ok(Message::Pong(_))) => answered = true,
                // Binary frames are ignored, as upstream.
                Some(Ok(Message::Binary(_) | Message::Continuation(_) | Message::Nop)) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break End::ClientLeft,
            },
            event = subscription.next() => match event {
                // A client that stops reading fills the socket's buffers and this send waits;
                // after a ping interval it has fallen behind (and could not answer pings).
                Some(event) => match tokio::time::timeout(
                    ping_interval,
                    session.text(event.frame.clone()),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break End::ClientLeft,
                    Err(_) => break End::FellBehind,
                },
                None if subscription.fell_behind() => break End::FellBehind,
                None => break End::ServerStopping,
            },
            _ = ping.tick() => {
                if !answered {
                    break End::NoPong;
                }
                answered = false;
                if session.ping(b"").await.is_err() {
                    break End::ClientLeft;
                }
            }
        }
    };
    drop(subscription);
    let reason = match end {
        End::ClientLeft => None,
        // 1013 "try again later": a client that is still there reconnects (Backstage's does
        // after 5 s unless closed with 1000 or 1001).
        End::NoPong => {
            tracing::debug!("dropped a signals connection that did not answer a ping");
            Some(CloseReason {
                code: CloseCode::Again,
                description: Some("no pong".into()),
            })
        }
        End::FellBehind => Some(CloseReason {
            code: CloseCode::Again,
            description: Some("too slow: events were not read in time".into()),
        }),
        // 1012 "service restart": Backstage's client reconnects, to another instance if any.
        End::ServerStopping => Some(CloseReason {
            code: CloseCode::Restart,
            description: Some("the server is stopping".into()),
        }),
    };
    // The client may be gone already.
    let _ = session.close(reason).await;
}

/// Subscribe and unsubscribe frames; anything else is ignored, as upstream.
fn command(subscription: &Subscription, text: &str) {
    let Ok(command) = serde_json::from_str::<Command>(text) else {
        return;
    };
    match command.action.as_str() {
        "subscribe" => subscription.set_subscribed(&command.channel, true),
        "unsubscribe" => subscription.set_subscribed(&command.channel, false),
        _ => {}
    }
}
