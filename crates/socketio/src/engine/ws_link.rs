//! A server WebSocket as its session task holds it: the task reads frames
//! and writes its queue itself, with no task or channel in between (each
//! would cost a wake-up per message and memory per connection).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use engineio_proto::{Frame, WsId};
use futures_util::task::{ArcWake, AtomicWaker};
use futures_util::{Sink, StreamExt};

use super::websocket::{read_frame, ws_message, PendingWs, Read, ServerWs};

/// What a WebSocket's reading side produced.
pub(crate) enum LinkRead {
    /// A frame for the session.
    Frame(Frame),
    /// The client closed it, it failed, or the upgrade never completed.
    Ended,
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
    /// How many frames may wait before the client counts as not reading.
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
            limit,
        }
    }

    pub(crate) fn id(&self) -> WsId {
        self.id
    }

    /// Queues a frame; false when the queue is full: the client does not
    /// read, and the WebSocket should be dropped.
    pub(crate) fn push(&mut self, frame: Frame) -> bool {
        if self.queued.len() >= self.limit {
            return false;
        }
        self.queued.push_back(frame);
        true
    }

    /// Closes it once what is queued is written.
    pub(crate) fn close(&mut self) {
        self.closing = true;
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
            read_waker,
            ..
        } = self;
        let read = read_woken(
            pending,
            stream,
            *closing,
            &mut Context::from_waker(read_waker),
        );
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
            return match stream.poll_close(cx) {
                Poll::Ready(_) => LinkWrite::Finished,
                Poll::Pending => LinkWrite::Busy,
            };
        }
        LinkWrite::Busy
    }
}

/// The reading side, polled with its own waker: completes the upgrade,
/// then reads the next frame (nothing once the session closed it).
fn read_woken(
    pending: &mut Option<PendingWs>,
    stream: &mut Option<ServerWs>,
    closing: bool,
    cx: &mut Context<'_>,
) -> Poll<LinkRead> {
    if let Some(upgrade) = pending.as_mut() {
        match upgrade.as_mut().poll(cx) {
            Poll::Ready(Some(upgraded)) => {
                *pending = None;
                *stream = Some(upgraded);
            }
            Poll::Ready(None) => {
                *pending = None;
                return Poll::Ready(LinkRead::Ended);
            }
            Poll::Pending => return Poll::Pending,
        }
    }
    let Some(stream) = stream.as_mut().filter(|_| !closing) else {
        return Poll::Pending;
    };
    loop {
        let Some(message) = std::task::ready!(stream.poll_next_unpin(cx)) else {
            return Poll::Ready(LinkRead::Ended);
        };
        match read_frame(message) {
            Read::Frame(frame) => return Poll::Ready(LinkRead::Frame(frame)),
            Read::Skip => continue,
            Read::End => return Poll::Ready(LinkRead::Ended),
        }
    }
}
