//! WebSockets for Engine.IO sessions: the HTTP upgrade, then a reader task
//! feeding frames to the session and a writer task draining its queue.

use std::sync::Arc;

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use engineio_proto::server::Opening;
use engineio_proto::{Frame, Str, WsId};
use futures_channel::mpsc::{self, TryRecvError};
use futures_util::{SinkExt, StreamExt};
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};

use super::session::{self, Input, WsCommand};
use super::{empty_reply, ws_id, HttpReply, RequestBody, Shared};
use crate::io::HyperIo;
use crate::locks::lock;
use crate::runtime::Runtime;

/// Whether the request asks for a WebSocket.
pub(crate) fn is_upgrade_request<B>(request: &hyper::Request<B>) -> bool {
    let has_token = |name, token: &str| {
        request
            .headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    has_token(UPGRADE, "websocket") && has_token(CONNECTION, "upgrade")
}

/// A WebSocket handshake: a new session over WebSocket.
pub(crate) fn open<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
) -> HttpReply {
    let Some(accept) = accept_key(&request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let (writer, queue) = mpsc::channel(shared.config.ws_queue);
    let session = lock(&shared.router).open_session(shared.clock.now(), Opening::WebSocket(ws));
    let handshake = Arc::new(crate::handshake::Handshake::of(&request));
    let inputs = session::start(shared, session, None, Some((ws, writer)), handshake);
    spawn_connection(shared, request, ws, inputs, queue);
    switching_protocols(accept)
}

/// A WebSocket for an existing session: an upgrade attempt.
pub(crate) fn upgrade<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    mut inputs: mpsc::Sender<Input>,
) -> HttpReply {
    let Some(accept) = accept_key(&request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let (writer, queue) = mpsc::channel(shared.config.ws_queue);
    // Register the WebSocket before any of its frames can arrive.
    if inputs.try_send(Input::Upgrade { ws, writer }).is_err() {
        return empty_reply(503);
    }
    spawn_connection(shared, request, ws, inputs, queue);
    switching_protocols(accept)
}

fn accept_key<B>(request: &hyper::Request<B>) -> Option<String> {
    let key = request.headers().get(SEC_WEBSOCKET_KEY)?;
    Some(derive_accept_key(key.as_bytes()))
}

fn switching_protocols(accept: String) -> HttpReply {
    let mut reply = empty_reply(101);
    let headers = reply.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    reply
}

/// Once hyper hands over the connection: read frames into the session,
/// write the session's frames out.
fn spawn_connection<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    ws: WsId,
    mut inputs: mpsc::Sender<Input>,
    queue: mpsc::Receiver<WsCommand>,
) {
    let on_upgrade = hyper::upgrade::on(request);
    let runtime = shared.runtime.clone();
    let max_payload = shared.config.protocol.max_payload;
    shared.runtime.spawn(Box::pin(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                let _ = inputs.send(Input::WsClosed { ws }).await;
                return;
            }
        };
        let config = ws_config(max_payload);
        let stream =
            WebSocketStream::from_raw_socket(HyperIo(upgraded), Role::Server, Some(config)).await;
        let (sink, mut source) = stream.split();
        runtime.spawn(Box::pin(write_frames(sink, queue)));
        while let Some(message) = source.next().await {
            let frame = match read_frame(message) {
                Read::Frame(frame) => frame,
                Read::Skip => continue,
                Read::End => break,
            };
            if inputs.send(Input::WsFrame { ws, frame }).await.is_err() {
                return;
            }
        }
        let _ = inputs.send(Input::WsClosed { ws }).await;
    }));
}

/// The WebSocket settings of both sides. tungstenite reads into a buffer
/// of `read_buffer_size` bytes that it zero-fills before every read and
/// keeps for the connection's life: its 128 KiB default is most of an
/// idle connection's memory and a `memset` per read. 4 KiB holds a burst of
/// small messages; a larger one is read in several calls.
pub(crate) fn ws_config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

/// What one WebSocket message is to Engine.IO.
pub(crate) enum Read {
    /// A frame for the session.
    Frame(Frame),
    /// A ping, pong or fragment: nothing for the session.
    Skip,
    /// A close, an error, or text that is not UTF-8: the WebSocket is over.
    End,
}

/// Reads one message of a WebSocket (either side's).
pub(crate) fn read_frame(message: Result<WsMessage, WsError>) -> Read {
    match message {
        Ok(WsMessage::Text(text)) => match Str::from_utf8(Bytes::from(text)) {
            Ok(text) => Read::Frame(Frame::Text(text)),
            Err(_) => Read::End,
        },
        Ok(WsMessage::Binary(data)) => Read::Frame(Frame::Binary(data)),
        Ok(WsMessage::Close(_)) | Err(_) => Read::End,
        Ok(_) => Read::Skip,
    }
}

/// Writes a session's frames to a WebSocket (either side's) until told to
/// close or the queue is dropped, then closes it.
///
/// Frames queued together go out together: every command already waiting
/// is fed to the sink, and it is flushed once the queue is empty. One write
/// per burst instead of one per frame is most of the CPU an echo costs on
/// loopback (each `send` also runs the peer's receive path).
pub(crate) async fn write_frames<S>(mut sink: S, mut queue: mpsc::Receiver<WsCommand>)
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    'bursts: while let Some(first) = queue.next().await {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            let frame = match command {
                WsCommand::Frame(frame) => frame,
                WsCommand::Close => break 'bursts,
            };
            if let Some(message) = ws_message(frame) {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            next = match queue.try_recv() {
                Ok(command) => Some(command),
                // Nothing waiting: the burst is over.
                Err(TryRecvError::Empty) => None,
                // The queue is gone: flush what was fed, then close.
                Err(TryRecvError::Closed) => break 'bursts,
            };
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// A frame as a WebSocket message (`None` for text that is not UTF-8,
/// which the protocol machines never produce).
fn ws_message(frame: Frame) -> Option<WsMessage> {
    match frame {
        Frame::Text(text) => async_tungstenite::tungstenite::Utf8Bytes::try_from(text.into_bytes())
            .ok()
            .map(WsMessage::Text),
        Frame::Binary(data) => Some(WsMessage::Binary(data)),
    }
}
