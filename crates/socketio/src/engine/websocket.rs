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
use futures_channel::mpsc;
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
        let config = WebSocketConfig::default()
            .max_message_size(Some(max_payload))
            .max_frame_size(Some(max_payload));
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
pub(crate) async fn write_frames<S>(mut sink: S, mut queue: mpsc::Receiver<WsCommand>)
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    while let Some(command) = queue.next().await {
        let message = match command {
            WsCommand::Frame(Frame::Text(text)) => {
                match async_tungstenite::tungstenite::Utf8Bytes::try_from(text.into_bytes()) {
                    Ok(text) => WsMessage::Text(text),
                    Err(_) => continue,
                }
            }
            WsCommand::Frame(Frame::Binary(data)) => WsMessage::Binary(data),
            WsCommand::Close => break,
        };
        if sink.send(message).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}
