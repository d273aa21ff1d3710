//! A server WebSocket as its session task holds it: the task reads frames
//! and writes its queue itself, with no task or channel in between (each
//! would cost a wake-up per message and memory per connection).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use engineio_proto::{Frame, WsFailure, WsId};
use futures_util::task::{ArcWake, AtomicWaker};
use futures_util::{Sink, StreamExt};

use super::websocket::{read_frame, ws_message, PendingWs, Read, ServerWs};

/// What a WebSocket's reading side produced.
pub(crate) enum LinkRead {
    /// A frame for the session.
    Frame(Frame),
    /// The client closed it, it failed, or the upgrade never completed.
    Ended,
    /// The client broke the WebSocket protocol: the link stopped reading
    /// and closes with the RFC 6455 code for it once the session closes it.
    Failed(WsFailure),
}

/// Where a WebSocket's writing side is.
pub(crate) enum LinkWrite {
    /// Everything is written, or the socket will wake the task when it can
    /// take more.
    Busy,
    /// It was closing and the close is done: drop it.
    Finished,
    /// Writing failed: the WebSocket is gone.
    Failed,
}

/// One WebSocket of a session.
pub(crate) struct WsLink {
    id: WsId,
    /// Until hyper hands the connection over.
    pending: Option<PendingWs>,
    stream: Option<ServerWs>,
    /// Frames not yet given to the WebSocket (while it is not writable, or
    /// before the upgrade completes).
    queued: VecDeque<Frame>,
    /// Frames given to the WebSocket, not yet flushed to the socket.
    unflushed: bool,
    /// The session closed it: write what is queued, then close.
    closing: bool,
    /// The close frame to send before closing, when the client broke the
    /// protocol (1009 too large, 1007 not UTF-8, 1002 anything else).
    close_frame: Option<CloseFrame>,
    /// How many frames may wait to be written.
    limit: usize,
    /// Whether reading may find something: see [`ReadInterest`].
    interest: Arc<ReadInterest>,
    /// Wakes `interest`; the reading side is polled with it.
    read_waker: Waker,
}

/// Set when the reading side was woken (the socket became readable, the
/// upgrade completed) or may have more buffered. The session task wakes
/// for many other reasons (a command per emit or broadcast), and polling
/// the WebSocket for nothing is not free: tungstenite zero-fills its read
/// buffer before every read attempt.
struct ReadInterest {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl ArcWake for ReadInterest {
    fn wake_by_ref(interest: &Arc<Self>) {
        interest.ready.store(true, Ordering::Release);
        interest.task.wake();
    }
}

impl WsLink {
    pub(crate) fn new(id: WsId, pending: PendingWs, limit: usize) -> WsLink {
        let interest = Arc::new(ReadInterest {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let read_waker = futures_util::task::waker(interest.clone());
        WsLink {
            interest,
            read_waker,
            id,
            pending: Some(pending),
            stream: None,
            queued: VecDeque::new(),
            unflushed: false,
            closing: false,
            close_frame: None,
            limit,
        }
    }

    pub(crate) fn id(&self) -> WsId {
        self.id
    }

    /// Queues a frame. The session task stops taking frames from its
    /// machine while [`WsLink::is_full`], so the queue stays at its limit.
    pub(crate) fn push(&mut self, frame: Frame) {
        self.queued.push_back(frame);
    }

    /// Whether as many frames wait as the limit allows: write before
    /// queueing more.
    pub(crate) fn is_full(&self) -> bool {
        self.queued.len() >= self.limit
    }

    /// Closes it once what is queued is written.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    /// Completes the upgrade without reading (while the session holds
    /// the client's messages, its frames can still be written); true when
    /// the upgrade failed.
    pub(crate) fn poll_upgrade(&mut self, cx: &mut Context<'_>) -> bool {
        if self.pending.is_none() {
            return false;
        }
        match complete_upgrade(&mut self.pending, &mut self.stream, cx) {
            Poll::Ready(true) => {
                // Whatever came with the upgrade is read once reading resumes.
                self.interest.ready.store(true, Ordering::Release);
                false
            }
            Poll::Ready(false) => true,
            Poll::Pending => false,
        }
    }

    /// Completes the upgrade, then reads the next frame.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<LinkRead> {
        self.interest.task.register(cx.waker());
        if !self.interest.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let WsLink {
            pending,
            stream,
            closing,
            close_frame,
            read_waker,
            ..
        } = self;
        let read = read_woken(
            pending,
            stream,
            *closing,
            &mut Context::from_waker(read_waker),
        );
        let read = read.map(|read| match read {
            ReadOutcome::Read(read) => read,
            ReadOutcome::Broken(failure, frame) => {
                // Nothing more is read from a client that broke the protocol.
                *closing = true;
                *close_frame = Some(frame);
                LinkRead::Failed(failure)
            }
        });
        if read.is_ready() {
            // More frames may be buffered, with no wake-up to come for them.
            self.interest.ready.store(true, Ordering::Release);
        }
        read
    }

    /// Writes what is queued and flushes it, as far as the socket takes it
    /// now; then, if closing, closes.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> LinkWrite {
        let Some(stream) = self.stream.as_mut() else {
            // Closed before the upgrade completed: nothing to say goodbye on.
            return if self.closing {
                LinkWrite::Finished
            } else {
                LinkWrite::Busy
            };
        };
        let mut stream = Pin::new(stream);
        while !self.queued.is_empty() {
            match stream.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return LinkWrite::Failed,
                Poll::Pending => return LinkWrite::Busy,
            }
            let Some(message) = self.queued.pop_front().and_then(ws_message) else {
                continue;
            };
            if stream.as_mut().start_send(message).is_err() {
                return LinkWrite::Failed;
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match stream.as_mut().poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return LinkWrite::Failed,
                Poll::Pending => return LinkWrite::Busy,
            }
        }
        if self.closing {
            if let Some(frame) = self.close_frame.take() {
                match stream.as_mut().poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return LinkWrite::Failed,
                    Poll::Pending => {
                        self.close_frame = Some(frame);
                        return LinkWrite::Busy;
                    }
                }
                if stream
                    .as_mut()
                    .start_send(WsMessage::Close(Some(frame)))
                    .is_err()
                {
                    return LinkWrite::Failed;
                }
            }
            return match stream.poll_close(cx) {
                Poll::Ready(_) => LinkWrite::Finished,
                Poll::Pending => LinkWrite::Busy,
            };
        }
        LinkWrite::Busy
    }
}

/// What the reading side found.
enum ReadOutcome {
    Read(LinkRead),
    /// The client broke the protocol: the failure, and the close frame
    /// RFC 6455 asks for.
    Broken(WsFailure, CloseFrame),
}

/// The failure and close frame for a read error that is the client's fault
/// (Node's `ws` closes with the same codes); `None` for IO errors and
/// closed connections.
fn broken(error: &WsError) -> Option<(WsFailure, CloseFrame)> {
    let (failure, code, reason) = match error {
        WsError::Capacity(_) => (
            WsFailure::TooLarge,
            CloseCode::Size,
            "Max payload size exceeded",
        ),
        WsError::Utf8(_) => (WsFailure::Invalid, CloseCode::Invalid, "Invalid UTF-8"),
        WsError::Protocol(_) => (WsFailure::Invalid, CloseCode::Protocol, "Protocol error"),
        _ => return None,
    };
    Some((
        failure,
        CloseFrame {
            code,
            reason: reason.into(),
        },
    ))
}

/// Polls the upgrade of a WebSocket that waits for one: ready with true
/// once the stream is there (at once if it already was), false when the
/// upgrade failed.
fn complete_upgrade(
    pending: &mut Option<PendingWs>,
    stream: &mut Option<ServerWs>,
    cx: &mut Context<'_>,
) -> Poll<bool> {
    let Some(upgrade) = pending.as_mut() else {
        return Poll::Ready(true);
    };
    let upgraded = std::task::ready!(upgrade.as_mut().poll(cx));
    *pending = None;
    let done = upgraded.is_some();
    *stream = upgraded;
    Poll::Ready(done)
}

/// The reading side, polled with its own waker: completes the upgrade,
/// then reads the next frame (nothing once the session closed it).
fn read_woken(
    pending: &mut Option<PendingWs>,
    stream: &mut Option<ServerWs>,
    closing: bool,
    cx: &mut Context<'_>,
) -> Poll<ReadOutcome> {
    let ended = Poll::Ready(ReadOutcome::Read(LinkRead::Ended));
    if !std::task::ready!(complete_upgrade(pending, stream, cx)) {
        return ended;
    }
    let Some(stream) = stream.as_mut().filter(|_| !closing) else {
        return Poll::Pending;
    };
    loop {
        let Some(message) = std::task::ready!(stream.poll_next_unpin(cx)) else {
            return ended;
        };
        if let Err(error) = &message {
            if let Some((failure, frame)) = broken(error) {
                tracing::debug!(%error, "websocket protocol error");
                return Poll::Ready(ReadOutcome::Broken(failure, frame));
            }
        }
        match read_frame(message) {
            Read::Frame(frame) => return Poll::Ready(ReadOutcome::Read(LinkRead::Frame(frame))),
            Read::Skip => continue,
            Read::End => return ended,
        }
    }
}
