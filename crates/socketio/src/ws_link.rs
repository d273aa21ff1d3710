//! A WebSocket as the task that drives its protocol machine holds it, on
//! the server (a session task, [`crate::engine`]) and on the client (the
//! client's driver): the task reads frames and writes its queue itself,
//! with no task or channel in between (each would cost a wake-up per
//! message and memory per connection).
//!
//! A link starts with the future that produces the WebSocket (a server's
//! HTTP upgrade, a client's connect and handshake) and reports
//! [`LinkEvent::Opened`] once it is there. The task's loop sees it as a
//! [`Link`]; the helpers that poll a task's links are in [`crate::links`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use engineio_proto::{Frame, WsId};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::task::{ArcWake, AtomicWaker};

pub(crate) use crate::links::*;
use crate::ws::frame::Broken;
use crate::ws::{Read, WebSocket};

/// The WebSocket a link is waiting for: `None` when it never came.
pub(crate) type Opening<IO> = Pin<Box<dyn Future<Output = Option<WebSocket<IO>>> + Send>>;

/// The connection under a link's WebSocket: an upgraded HTTP connection,
/// plain or TLS.
pub(crate) trait WsIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> WsIo for T {}

/// Bytes a WebSocket may hold encoded and unwritten before the link stops
/// encoding more: the rest waits in the link's queue, which is bounded.
const WRITE_HIGH: usize = 64 * 1024;

/// One WebSocket of a session or a client.
pub(crate) struct WsLink<IO> {
    id: WsId,
    /// Until the WebSocket is there (hyper hands the connection over, or
    /// the client's handshake completes).
    pending: Option<Opening<IO>>,
    stream: Option<WebSocket<IO>>,
    /// Frames not yet given to the WebSocket (while it is not writable, or
    /// before the upgrade completes).
    /// Each with whether it may be compressed.
    queued: VecDeque<(Frame, bool)>,
    /// Frames given to the WebSocket, not yet flushed to the socket.
    unflushed: bool,
    /// The session closed it: write what is queued, then close.
    closing: bool,
    /// Why the peer broke the protocol (1009 too large, 1007 not UTF-8,
    /// 1002 anything else): the close frame says it.
    broken: Option<Broken>,
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
/// the WebSocket for nothing is not free: each read attempt zero-fills a
/// chunk of the read buffer (`futures-io` reads into initialised memory).
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

impl<IO: WsIo> WsLink<IO> {
    pub(crate) fn new(id: WsId, pending: Opening<IO>, limit: usize) -> WsLink<IO> {
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
            broken: None,
            limit,
        }
    }
}

impl<IO: WsIo> Link for WsLink<IO> {
    fn id(&self) -> WsId {
        self.id
    }

    fn push(&mut self, frame: Frame, compress: bool) {
        self.queued.push_back((frame, compress));
    }

    fn is_full(&self) -> bool {
        self.queued.len() >= self.limit
    }

    fn close(&mut self) {
        self.closing = true;
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Option<LinkRead> {
        self.pending.as_ref()?;
        match complete_opening(&mut self.pending, &mut self.stream, cx) {
            Poll::Ready(OpenState::Opened) => {
                // Whatever came with the opening is read once reading resumes.
                self.interest.ready.store(true, Ordering::Release);
                Some(LinkRead::Opened)
            }
            Poll::Ready(OpenState::Failed) => Some(LinkRead::Ended),
            Poll::Ready(OpenState::Done) | Poll::Pending => None,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<LinkRead> {
        self.interest.task.register(cx.waker());
        if !self.interest.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let WsLink {
            pending,
            stream,
            closing,
            broken,
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
            ReadOutcome::Broken(why) => {
                // Nothing more is read from a client that broke the protocol.
                tracing::debug!(reason = why.reason, "websocket protocol error");
                *closing = true;
                *broken = Some(why);
                LinkRead::Failed(why.failure)
            }
        });
        if read.is_ready() {
            // More frames may be buffered, with no wake-up to come for them.
            self.interest.ready.store(true, Ordering::Release);
        }
        read
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> LinkWrite {
        let Some(ws) = self.stream.as_mut() else {
            // Closed before the upgrade completed: nothing to say goodbye on.
            return if self.closing {
                LinkWrite::Finished
            } else {
                LinkWrite::Busy
            };
        };
        while !self.queued.is_empty() {
            if ws.buffered() >= WRITE_HIGH {
                match ws.poll_flush(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(_)) => return LinkWrite::Failed,
                    Poll::Pending => return LinkWrite::Busy,
                }
            }
            let Some((frame, compress)) = self.queued.pop_front() else {
                break;
            };
            if ws.send(&frame, compress).is_err() {
                return LinkWrite::Failed;
            }
            self.unflushed = true;
        }
        if self.unflushed {
            match ws.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return LinkWrite::Failed,
                Poll::Pending => return LinkWrite::Busy,
            }
        }
        if self.closing {
            ws.send_close(self.broken.map(|why| (why.code, why.reason)));
            return match ws.poll_shutdown(cx) {
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
    /// The peer broke the protocol.
    Broken(Broken),
}

/// Where a link's opening stands.
enum OpenState {
    /// It was open already.
    Done,
    /// It opened just now.
    Opened,
    /// It never will.
    Failed,
}

/// Polls the opening of a WebSocket that waits for one.
fn complete_opening<IO>(
    pending: &mut Option<Opening<IO>>,
    stream: &mut Option<WebSocket<IO>>,
    cx: &mut Context<'_>,
) -> Poll<OpenState> {
    let Some(opening) = pending.as_mut() else {
        return Poll::Ready(OpenState::Done);
    };
    let opened = std::task::ready!(opening.as_mut().poll(cx));
    *pending = None;
    let state = match opened {
        Some(_) => OpenState::Opened,
        None => OpenState::Failed,
    };
    *stream = opened;
    Poll::Ready(state)
}

/// The reading side, polled with its own waker: completes the opening
/// (reporting it), then reads the next frame (nothing once the machine
/// closed it).
fn read_woken<IO: WsIo>(
    pending: &mut Option<Opening<IO>>,
    stream: &mut Option<WebSocket<IO>>,
    closing: bool,
    cx: &mut Context<'_>,
) -> Poll<ReadOutcome> {
    match std::task::ready!(complete_opening(pending, stream, cx)) {
        OpenState::Done => {}
        OpenState::Opened => return Poll::Ready(ReadOutcome::Read(LinkRead::Opened)),
        OpenState::Failed => return Poll::Ready(ReadOutcome::Read(LinkRead::Ended)),
    }
    let Some(stream) = stream.as_mut().filter(|_| !closing) else {
        return Poll::Pending;
    };
    Poll::Ready(match std::task::ready!(stream.poll_read(cx)) {
        Read::Frame(frame) => ReadOutcome::Read(LinkRead::Frame(frame)),
        Read::Ended => ReadOutcome::Read(LinkRead::Ended),
        Read::Broken(why) => ReadOutcome::Broken(why),
    })
}
