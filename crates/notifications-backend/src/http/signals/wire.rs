//! The signals WebSocket's two directions, written here rather than through a session task:
//! the response body drains the connection's queue of events itself, so a delivered event costs
//! one wake-up of the connection (no task in between, no timer per frame), and every frame ready
//! at that wake-up goes out in one write. Each frame's text was encoded once for all connections
//! ([`PublishedSignal::frame`]); here it only gets its WebSocket header.
//!
//! [`PublishedSignal::frame`]: crate::signals::PublishedSignal

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Message, ProtocolError};
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::signals::Events;

/// Frames put in one chunk at most, so that one busy connection does not hold its worker.
const FRAMES_PER_CHUNK: usize = 64;

/// The client's frames, decoded from the upgraded request's payload.
pub struct Inbound {
    payload: web::Payload,
    buf: BytesMut,
    codec: Codec,
}

impl Inbound {
    /// `max_frame`: larger frames end the connection.
    pub fn new(payload: web::Payload, max_frame: usize) -> Self {
        Self {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_frame),
        }
    }

    /// The next frame; `None` once the client's side is closed.
    pub async fn recv(&mut self) -> Option<Result<Frame, ProtocolError>> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).transpose() {
                return Some(frame);
            }
            match self.payload.next().await {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// The response body: control frames from the reader (pongs, pings, its close), then the
/// connection's events. It ends after a close frame, and when its events end (the consumer fell
/// behind, or the server is stopping), with the close that tells the client why.
pub struct Outbound {
    events: Events,
    control: mpsc::Receiver<Message>,
    codec: Codec,
    buf: BytesMut,
    ended: bool,
    /// Dropped with the body: tells the reader that the connection is over.
    _over: oneshot::Sender<()>,
}

impl Outbound {
    /// The body, and the receiver that resolves once it is dropped.
    pub fn new(events: Events, control: mpsc::Receiver<Message>) -> (Self, oneshot::Receiver<()>) {
        let (over, on_over) = oneshot::channel();
        let body = Self {
            events,
            control,
            codec: Codec::new(),
            buf: BytesMut::new(),
            ended: false,
            _over: over,
        };
        (body, on_over)
    }

    fn encode(&mut self, message: Message) -> Result<(), ProtocolError> {
        self.codec.encode(message, &mut self.buf)
    }

    /// Encodes what is ready into `buf`; sets `ended` after the last frame.
    fn fill(&mut self, cx: &mut Context<'_>) -> Result<(), ProtocolError> {
        while let Poll::Ready(message) = self.control.poll_recv(cx) {
            let Some(message) = message else {
                // The reader is gone without a close: so is the client.
                self.ended = true;
                return Ok(());
            };
            let close = matches!(message, Message::Close(_));
            self.encode(message)?;
            if close {
                self.ended = true;
                return Ok(());
            }
        }
        for _ in 0..FRAMES_PER_CHUNK {
            match self.events.poll_next(cx) {
                Poll::Ready(Some(event)) => self.encode(Message::Text(event.frame.clone()))?,
                Poll::Ready(None) => {
                    let reason = if self.events.fell_behind() {
                        // 1013 "try again later": Backstage's client reconnects after 5 s.
                        CloseReason {
                            code: CloseCode::Again,
                            description: Some("too slow: events were not read in time".into()),
                        }
                    } else {
                        // 1012 "service restart": it reconnects, to another instance if any.
                        CloseReason {
                            code: CloseCode::Restart,
                            description: Some("the server is stopping".into()),
                        }
                    };
                    self.encode(Message::Close(Some(reason)))?;
                    self.ended = true;
                    return Ok(());
                }
                Poll::Pending => break,
            }
        }
        Ok(())
    }
}

impl Stream for Outbound {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.ended
            && let Err(e) = this.fill(cx)
        {
            this.ended = true;
            return Poll::Ready(Some(Err(actix_web::error::ErrorInternalServerError(e))));
        }
        if !this.buf.is_empty() {
            // The dispatcher copies the chunk into its write buffer and drops it, so the next
            // `split` reuses this allocation.
            return Poll::Ready(Some(Ok(this.buf.split().freeze())));
        }
        if this.ended {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;
    use crate::signals::{Limits, Peer, PublishedSignal, SignalHub, Transport};

    /// Control frames a test body may have waiting.
    const CONTROL: usize = 4;

    fn hub(queue_size: usize) -> SignalHub {
        SignalHub::new(Limits {
            queue_size,
            per_ip: 10,
            per_user: 10,
        })
    }

    fn event(id: i64) -> Arc<PublishedSignal> {
        Arc::new(PublishedSignal::new(
            id,
            None,
            "notifications".into(),
            format!(r#"{{"n":{id}}}"#),
        ))
    }

    /// A body for one subscribed connection, with the receiver told when it goes; the control
    /// sender and the membership are kept alive by the caller.
    fn body(
        hub: &SignalHub,
    ) -> (
        Outbound,
        oneshot::Receiver<()>,
        mpsc::Sender<Message>,
        crate::signals::Membership,
    ) {
        let subscription = hub
            .connect(
                vec!["user:default/a".into()],
                Peer::default(),
                Transport::WebSocket,
            )
            .unwrap();
        subscription.set_subscribed("notifications", true);
        let (membership, events) = subscription.into_parts();
        let (control, control_rx) = mpsc::channel(CONTROL);
        let (body, over) = Outbound::new(events, control_rx);
        (body, over, control, membership)
    }

    /// The next chunk if one is ready now.
    fn poll(body: &mut Outbound) -> Poll<Option<Bytes>> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        Pin::new(body)
            .poll_next(&mut cx)
            .map(|chunk| chunk.map(Result::unwrap))
    }

    /// The frames in a chunk, as a client decodes them.
    fn frames(chunk: Bytes) -> Vec<Frame> {
        let mut codec = Codec::new().client_mode();
        let mut buf = BytesMut::from(&chunk[..]);
        std::iter::from_fn(|| codec.decode(&mut buf).unwrap()).collect()
    }

    fn text(frame: &Frame) -> &str {
        match frame {
            Frame::Text(t) => std::str::from_utf8(t).unwrap(),
            other => panic!("not a text frame: {other:?}"),
        }
    }

    fn close_code(frame: &Frame) -> u16 {
        match frame {
            Frame::Close(Some(reason)) => reason.code.into(),
            other => panic!("not a close with a reason: {other:?}"),
        }
    }

    #[test]
    fn events_ready_together_go_out_in_one_chunk_after_control_frames() {
        let hub = hub(8);
        let (mut body, _, control, _membership) = body(&hub);
        assert!(poll(&mut body).is_pending());
        hub.deliver(&[event(1), event(2), event(3)]);
        control
            .try_send(Message::Pong(Bytes::from_static(b"p")))
            .unwrap();
        let Poll::Ready(Some(chunk)) = poll(&mut body) else {
            panic!("nothing ready")
        };
        let frames = frames(chunk);
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert!(matches!(&frames[0], Frame::Pong(p) if &p[..] == b"p"));
        assert_eq!(text(&frames[1]), &*event(1).frame);
        assert_eq!(text(&frames[3]), &*event(3).frame);
        assert!(poll(&mut body).is_pending());
    }

    #[test]
    fn a_consumer_that_fell_behind_gets_what_was_queued_then_1013() {
        let hub = hub(1);
        let (mut body, _, _control, _membership) = body(&hub);
        hub.deliver(&[event(1), event(2)]);
        let Poll::Ready(Some(chunk)) = poll(&mut body) else {
            panic!("nothing ready")
        };
        let frames = frames(chunk);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(text(&frames[0]), &*event(1).frame);
        assert_eq!(close_code(&frames[1]), 1013);
        assert_eq!(poll(&mut body), Poll::Ready(None));
    }

    #[test]
    fn a_stopping_server_closes_with_1012_and_a_reader_close_ends_the_body() {
        let hub = hub(8);
        let (mut stopping, _, _control, _membership) = body(&hub);
        let (mut left, _, control, _other) = body(&hub);
        hub.close_all();
        let Poll::Ready(Some(chunk)) = poll(&mut stopping) else {
            panic!("nothing ready")
        };
        assert_eq!(close_code(&frames(chunk)[0]), 1012);
        assert_eq!(poll(&mut stopping), Poll::Ready(None));

        // The reader's close comes first, and nothing follows it.
        control.try_send(Message::Close(None)).unwrap();
        let Poll::Ready(Some(chunk)) = poll(&mut left) else {
            panic!("nothing ready")
        };
        assert!(matches!(frames(chunk)[..], [Frame::Close(None)]));
        assert_eq!(poll(&mut left), Poll::Ready(None));
    }

    #[test]
    fn the_body_going_tells_the_reader() {
        let hub = hub(8);
        let (body, mut over, _control, _membership) = body(&hub);
        assert!((&mut over).now_or_never().is_none());
        drop(body);
        assert!(over.now_or_never().is_some());
    }
}
