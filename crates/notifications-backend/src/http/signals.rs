//! `/api/signals`: Backstage's signals WebSocket, so that its frontend connects unmodified. The
//! user token comes as the subprotocol and is echoed back; no token is the guest (everyone's
//! signals only); clients subscribe to channels with JSON frames and get `{channel, message}`.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use serde::Deserialize;

use super::AppState;
use crate::auth::Principal;
use crate::config::SignalsConfig;
use crate::error::Error;
use crate::signals::{FrameBudget, Peer, Subscription, Transport};

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
    let principal = match &offered {
        None => None,
        Some(token) => match state.auth.authenticate_token(token).await {
            Ok(principal) => Some(principal),
            Err(_) => return Ok(HttpResponse::Unauthorized().finish()),
        },
    };
    let protocols: Vec<&str> = offered.iter().map(String::as_str).collect();
    let (response, session, messages) = actix_ws::handle_with_protocols(&req, body, &protocols)
        .map_err(|e| Error::invalid(format!("Expected a WebSocket upgrade: {e}")))?;
    // Before the upgrade is answered, so that a refusal is a plain 429.
    let peer = peer_of(&req, principal.as_ref());
    let refs = principal.map_or_else(|| vec![GUEST.to_owned()], refs_of);
    let subscription = state
        .service
        .signals()
        .hub()
        .connect(refs, peer, Transport::WebSocket)
        .map_err(Error::from)?;
    actix_web::rt::spawn(serve(
        session,
        messages.max_frame_size(MAX_FRAME),
        subscription,
        state.signals.clone(),
    ));
    Ok(response)
}

/// Who a connection counts against: its client address, and its user if signed in.
pub fn peer_of(req: &HttpRequest, principal: Option<&Principal>) -> Peer {
    let user = match principal {
        Some(Principal::User { user_ref, .. }) => Some(user_ref.clone()),
        _ => None,
    };
    Peer::new(req.peer_addr().map(|a| a.ip()), user)
}

/// Why a connection ended.
enum End {
    ClientLeft,
    NoPong,
    FellBehind,
    Flooding,
    ServerStopping,
}

async fn serve(
    mut session: Session,
    mut messages: MessageStream,
    mut subscription: Subscription,
    config: SignalsConfig,
) {
    let ping_interval = config.ping_interval;
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let mut answered = true;
    let mut budget = FrameBudget::new(config.max_frames_per_second, Instant::now());
    let end = loop {
        tokio::select! {
            message = messages.recv() => match message {
                Some(Ok(Message::Text(text))) => {
                    if !budget.spend(Instant::now()) {
                        break End::Flooding;
                    }
                    command(&subscription, &text);
                }
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
        // Closed, not ignored: a client whose frames were dropped would believe itself
        // subscribed to what it is not; a closed one reconnects (Backstage's after 5 s).
        End::Flooding => {
            tracing::info!("closed a signals connection that sent too many frames");
            Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("too many frames".into()),
            })
        }
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
