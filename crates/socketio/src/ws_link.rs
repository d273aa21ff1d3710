//! A WebSocket as the task that drives its protocol machine holds it, on
//! the server (a session task, [`crate::engine`]) and on the client (the
//! client's driver): the task reads frames and writes its queue itself,
//! with no task or channel in between (each would cost a wake-up per
//! message and memory per connection).
//!
//! A link starts with the future that produces the WebSocket (a server's
//! HTTP upgrade, a client's connect and handshake) and reports
//! [`LinkEvent::Opened`] once it is there. The helpers at the bottom poll a
//! task's links and report one [`LinkEvent`] at a time.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use engineio_proto::{Frame, WsFailure, WsId};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::task::{ArcWake, AtomicWaker};

use crate::runtime::Sleep;
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

/// What a WebSocket's reading side produced.
pub(crate) enum LinkRead {
    /// The WebSocket is there (the upgrade or the connect completed).
    Opened,
    /// A frame for the machine.
    Frame(Frame),
    /// The peer closed it, it failed, or it never opened.
    Ended,
    /// The peer broke the WebSocket protocol: the link stopped reading
    /// and closes with the RFC 6455 code for it once the machine closes it.
    Failed(WsFailure),
}

/// One thing that happened to one of a task's links.
pub(crate) enum LinkEvent {
    /// It opened.
    Opened(WsId),
    /// A frame arrived on it.
    Frame(WsId, Frame),
    /// The peer broke the WebSocket protocol on it.
    Failed(WsId, WsFailure),
    /// It is gone: closed by the peer, failed, never opened, or finished
    /// closing. Drop it.
    Ended(WsId),
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

    pub(crate) fn id(&self) -> WsId {
        self.id
    }

    /// Queues a frame. The session task stops taking frames from its
    /// machine while [`WsLink::is_full`], so the queue stays at its limit.
    /// `compress`: whether permessage-deflate may compress it.
    pub(crate) fn push(&mut self, frame: Frame, compress: bool) {
        self.queued.push_back((frame, compress));
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

    /// Completes the opening without reading (while the task holds the
    /// peer's messages, its frames can still be written): `Opened` or
    /// `Ended` when it completed now.
    pub(crate) fn poll_open(&mut self, cx: &mut Context<'_>) -> Option<LinkRead> {
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

    /// Completes the opening (reporting it), then reads the next frame.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<LinkRead> {
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

    /// Writes what is queued and flushes it, as far as the socket takes it
    /// now; then, if closing, closes.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> LinkWrite {
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

fn link_event(id: WsId, read: LinkRead) -> LinkEvent {
    match read {
        LinkRead::Opened => LinkEvent::Opened(id),
        LinkRead::Frame(frame) => LinkEvent::Frame(id, frame),
        LinkRead::Ended => LinkEvent::Ended(id),
        LinkRead::Failed(failure) => LinkEvent::Failed(id, failure),
    }
}

/// The first link that opened, read something, or ended.
pub(crate) fn read_links<IO: WsIo>(
    links: &mut [WsLink<IO>],
    cx: &mut Context<'_>,
) -> Option<LinkEvent> {
    links.iter_mut().find_map(|link| match link.poll_read(cx) {
        Poll::Ready(read) => Some(link_event(link.id(), read)),
        Poll::Pending => None,
    })
}

/// The first link that opened or failed to, reading nothing (while the
/// task holds the peer's messages).
pub(crate) fn open_links<IO: WsIo>(
    links: &mut [WsLink<IO>],
    cx: &mut Context<'_>,
) -> Option<LinkEvent> {
    links
        .iter_mut()
        .find_map(|link| link.poll_open(cx).map(|read| link_event(link.id(), read)))
}

/// Writes every link's queue; the first that failed or finished closing
/// is reported as ended.
pub(crate) fn write_links<IO: WsIo>(
    links: &mut [WsLink<IO>],
    cx: &mut Context<'_>,
) -> Option<LinkEvent> {
    links.iter_mut().find_map(|link| match link.poll_write(cx) {
        LinkWrite::Busy => None,
        LinkWrite::Finished | LinkWrite::Failed => Some(LinkEvent::Ended(link.id())),
    })
}

/// Whether any link has as many frames queued as it may: the task takes
/// no more outputs from its machine until they are written.
pub(crate) fn any_full<IO: WsIo>(links: &[WsLink<IO>]) -> bool {
    links.iter().any(WsLink::is_full)
}

/// The link with this id.
pub(crate) fn find<IO: WsIo>(links: &mut [WsLink<IO>], id: WsId) -> Option<&mut WsLink<IO>> {
    links.iter_mut().find(|link| link.id() == id)
}

/// Writes the last frames of the links and closes them, until all are
/// closed or `grace` fires.
pub(crate) async fn close_links<IO: WsIo>(links: &mut Vec<WsLink<IO>>, mut grace: Sleep) {
    if links.is_empty() {
        return;
    }
    for link in links.iter_mut() {
        link.close();
    }
    futures_util::future::poll_fn(|cx| {
        links.retain_mut(|link| matches!(link.poll_write(cx), LinkWrite::Busy));
        if links.is_empty() || grace.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
