//! The response body of a signals WebSocket: the frames its session sends (pongs, pings, the
//! close) and its events, written straight from the hub's queue. An event costs its connection
//! one wake-up and no encoding (its frame was encoded once for every connection); there is no
//! task in between to wake.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;

use crate::signals::{Ended, Events, ws_frame};

/// 1013 "try again later": a client that is still there reconnects (Backstage's does after 5 s
/// unless closed with 1000 or 1001).
const TRY_AGAIN: u16 = 1013;
/// 1012 "service restart": Backstage's client reconnects, to another instance if any.
const RESTART: u16 = 1012;

pub struct Frames {
    /// actix-ws's body: what the session sends.
    session: BoxBody,
    events: Events,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    /// The connection left the hub by itself: only the session's frames (its close) follow.
    SessionOnly,
    /// The hub ended the connection and its close frame was sent.
    Closed,
}

impl Frames {
    pub fn new(session: BoxBody, events: Events) -> Self {
        Self {
            session,
            events,
            state: State::Live,
        }
    }
}

impl MessageBody for Frames {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.state == State::Closed {
            return Poll::Ready(None);
        }
        // The session's frames first: nothing may follow its close frame, after which its body
        // ends.
        if let Poll::Ready(chunk) = Pin::new(&mut this.session).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        if this.state == State::SessionOnly {
            return Poll::Pending;
        }
        match this.events.poll_next(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event.ws.clone()))),
            Poll::Ready(None) => {
                let close = match this.events.ended() {
                    None => {
                        this.state = State::SessionOnly;
                        return Poll::Pending;
                    }
                    Some(Ended::FellBehind) => {
                        ws_frame::close(TRY_AGAIN, "too slow: events were not read in time")
                    }
                    Some(Ended::Closed) => ws_frame::close(RESTART, "the server is stopping"),
                };
                this.state = State::Closed;
                Poll::Ready(Some(Ok(close)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
