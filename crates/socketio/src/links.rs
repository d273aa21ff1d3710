//! The WebSockets a driving task holds (a server's session task, the
//! client's driver), seen through one small trait so that the task's loop
//! is written once: natively a [`crate::ws_link::WsLink`] (our RFC 6455
//! codec over an upgraded connection), in the browser the browser's own
//! `WebSocket` (`crate::client::browser`).
//!
//! The helpers at the bottom poll a task's links and report one
//! [`LinkEvent`] at a time.

use std::task::{Context, Poll};

use engineio_proto::{Frame, WsFailure, WsId};

use crate::runtime::Sleep;

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

/// One WebSocket of a driving task.
pub(crate) trait Link {
    /// The machine's id for it.
    fn id(&self) -> WsId;

    /// Queues a frame. The task stops taking frames from its machine while
    /// [`Link::is_full`], so the queue stays at its limit. `compress`:
    /// whether permessage-deflate may compress it.
    fn push(&mut self, frame: Frame, compress: bool);

    /// Whether as many frames wait as the limit allows: write before
    /// queueing more.
    fn is_full(&self) -> bool;

    /// Closes it once what is queued is written.
    fn close(&mut self);

    /// Completes the opening without reading (while the task holds the
    /// peer's messages, its frames can still be written): `Opened` or
    /// `Ended` when it completed now.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Option<LinkRead>;

    /// Completes the opening (reporting it), then reads the next frame.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<LinkRead>;

    /// Writes what is queued, as far as the socket takes it now; then, if
    /// closing, closes.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> LinkWrite;
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
pub(crate) fn read_links<L: Link>(links: &mut [L], cx: &mut Context<'_>) -> Option<LinkEvent> {
    links.iter_mut().find_map(|link| match link.poll_read(cx) {
        Poll::Ready(read) => Some(link_event(link.id(), read)),
        Poll::Pending => None,
    })
}

/// The first link that opened or failed to, reading nothing (while the
/// task holds the peer's messages).
pub(crate) fn open_links<L: Link>(links: &mut [L], cx: &mut Context<'_>) -> Option<LinkEvent> {
    links
        .iter_mut()
        .find_map(|link| link.poll_open(cx).map(|read| link_event(link.id(), read)))
}

/// Writes every link's queue; the first that failed or finished closing
/// is reported as ended.
pub(crate) fn write_links<L: Link>(links: &mut [L], cx: &mut Context<'_>) -> Option<LinkEvent> {
    links.iter_mut().find_map(|link| match link.poll_write(cx) {
        LinkWrite::Busy => None,
        LinkWrite::Finished | LinkWrite::Failed => Some(LinkEvent::Ended(link.id())),
    })
}

/// Whether any link has as many frames queued as it may: the task takes
/// no more outputs from its machine until they are written.
pub(crate) fn any_full<L: Link>(links: &[L]) -> bool {
    links.iter().any(L::is_full)
}

/// The link with this id.
pub(crate) fn find<L: Link>(links: &mut [L], id: WsId) -> Option<&mut L> {
    links.iter_mut().find(|link| link.id() == id)
}

/// Writes the last frames of the links and closes them, until all are
/// closed or `grace` fires.
pub(crate) async fn close_links<L: Link>(links: &mut Vec<L>, mut grace: Sleep) {
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
    // Past the grace, what is left is dropped now: its connection closes
    // even if the caller goes on waiting for something else.
    links.clear();
}
