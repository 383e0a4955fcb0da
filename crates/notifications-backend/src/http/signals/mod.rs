//! `/api/signals`: Backstage's signals WebSocket, so that its frontend connects unmodified. The
//! user token comes as the subprotocol and is echoed back; without one, the web inbox's
//! sign-in (from its own pages), else the guest (everyone's signals only); clients subscribe to
//! channels with JSON frames and get `{channel, message}`.

mod wire;

use std::time::Instant;

use actix_http::ws::{CloseCode, CloseReason, Frame, Message};
use actix_web::body::{BodyStream, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use crate::auth::Principal;
use crate::config::SignalsConfig;
use crate::error::Error;
use crate::inbox::{self, WebAuth};
use crate::signals::{FrameBudget, Membership, Peer, Transport};
use wire::{Inbound, Outbound};

pub use notifications_common::SIGNALS_MOUNT;
/// Who an unauthenticated (or non-user) connection acts as, as upstream.
const GUEST: &str = "user:default/guest";
/// Larger client frames are refused: a subscribe frame is tiny.
const MAX_FRAME: usize = 64 * 1024;
/// Control frames (pongs, pings, the close) waiting for the writer. A client that lets them pile
/// up is not reading: it misses its pongs and is dropped.
const CONTROL_QUEUE: usize = 8;

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
        // The web inbox's session cookie or a trusted proxy's header, from this service's own
        // pages only (else another site's page could listen as the user): else the guest.
        None => req
            .app_data::<web::Data<WebAuth>>()
            .filter(|web| inbox::request_allowed(&req, web))
            .and_then(|web| inbox::ambient_principal(&req, web)),
        Some(token) => match state.auth.authenticate_token(token).await {
            Ok(principal) => Some(principal),
            Err(_) => return Ok(HttpResponse::Unauthorized().finish()),
        },
    };
    let mut response = actix_http::ws::handshake(req.head())
        .map_err(|e| Error::invalid(format!("Expected a WebSocket upgrade: {e}")))?;
    if let Some(protocol) = &offered {
        response.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol.as_str()));
    }
    // Before the upgrade is answered, so that a refusal is a plain 429.
    let peer = peer_of(&req, principal.as_ref());
    let refs = principal.map_or_else(|| vec![GUEST.to_owned()], refs_of);
    let subscription = state
        .service
        .signals()
        .hub()
        .connect(refs, peer, Transport::WebSocket)
        .map_err(Error::from)?;
    let (membership, events) = subscription.into_parts();
    let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (outbound, over) = Outbound::new(events, control_rx);
    actix_web::rt::spawn(serve(
        Inbound::new(body, MAX_FRAME),
        control,
        membership,
        over,
        state.signals.clone(),
    ));
    Ok(response
        .message_body(BodyStream::new(outbound).boxed())?
        .into())
}

/// Who a connection counts against: its client address, and its user if signed in.
pub fn peer_of(req: &HttpRequest, principal: Option<&Principal>) -> Peer {
    let user = match principal {
        Some(Principal::User { user_ref, .. }) => Some(user_ref.to_string()),
        _ => None,
    };
    Peer::new(req.peer_addr().map(|a| a.ip()), user)
}

/// Why the reader ended a connection.
enum End {
    ClientLeft,
    NoPong,
    Flooding,
}

/// Reads the client's frames and pings it; events go out through the [`Outbound`] body, which
/// also ends the connection when its events end (see there).
async fn serve(
    mut inbound: Inbound,
    control: mpsc::Sender<Message>,
    membership: Membership,
    mut over: oneshot::Receiver<()>,
    config: SignalsConfig,
) {
    let ping_interval = config.ping_interval;
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    let mut answered = true;
    let mut budget = FrameBudget::new(config.max_frames_per_second, Instant::now());
    // A full control queue drops the frame: its client is not reading (and misses its pongs).
    let end = loop {
        tokio::select! {
            frame = inbound.recv() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    if !budget.spend(Instant::now()) {
                        break End::Flooding;
                    }
                    command(&membership, &text);
                }
                Some(Ok(Frame::Ping(bytes))) => {
                    let _ = control.try_send(Message::Pong(bytes));
                }
                Some(Ok(Frame::Pong(_))) => answered = true,
                // Binary frames are ignored, as upstream.
                Some(Ok(Frame::Binary(_) | Frame::Continuation(_))) => {}
                Some(Ok(Frame::Close(_)) | Err(_)) | None => break End::ClientLeft,
            },
            // The body ended (and sent its close), or the connection is gone.
            _ = &mut over => return,
            _ = ping.tick() => {
                if !answered {
                    break End::NoPong;
                }
                answered = false;
                let _ = control.try_send(Message::Ping(Bytes::new()));
            }
        }
    };
    drop(membership);
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
        // Closed, not ignored: a client whose frames were dropped would believe itself
        // subscribed to what it is not; a closed one reconnects (Backstage's after 5 s).
        End::Flooding => {
            tracing::info!("closed a signals connection that sent too many frames");
            Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("too many frames".into()),
            })
        }
    };
    // Then dropping `control` ends the body even when the queue was full.
    let _ = control.try_send(Message::Close(reason));
}

/// Subscribe and unsubscribe frames; anything else is ignored, as upstream.
fn command(membership: &Membership, text: &[u8]) {
    let Ok(command) = serde_json::from_slice::<Command>(text) else {
        return;
    };
    match command.action.as_str() {
        "subscribe" => membership.set_subscribed(&command.channel, true),
        "unsubscribe" => membership.set_subscribed(&command.channel, false),
        _ => {}
    }
}
