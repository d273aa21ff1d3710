//! WebSockets for Engine.IO: the server's HTTP upgrade (the session task
//! then reads and writes the WebSocket itself, see `session.rs`), the
//! settings of both sides, and the client's frame reader and writer.

use std::sync::Arc;

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use engineio_proto::server::Opening;
use engineio_proto::{Dialect, Frame, Str};
use futures_channel::mpsc;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};

use super::session::{self, Handoff};
use super::{empty_reply, ws_id, HttpReply, RequestBody, Shared};
use crate::io::HyperIo;
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

/// A server-side WebSocket, once hyper has handed the connection over.
pub(crate) type ServerWs = WebSocketStream<HyperIo<hyper::upgrade::Upgraded>>;

/// A WebSocket whose `101 Switching Protocols` is on its way: it resolves
/// once hyper hands the connection over (`None` if it never does). The
/// session task polls it, then reads and writes the WebSocket itself.
pub(crate) type PendingWs = crate::ws_link::Opening<ServerWs>;

/// A WebSocket handshake: a new session over WebSocket.
/// `handshake` is the request's, when `allow_request` built it already.
pub(crate) fn open<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    dialect: Dialect,
    handshake: Option<crate::handshake::Handshake>,
) -> HttpReply {
    let Some(accept) = accept_key(&request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let handshake =
        Arc::new(handshake.unwrap_or_else(|| crate::handshake::Handshake::of(&request)));
    let session = shared.open_session(Opening::WebSocket(ws), dialect, &handshake);
    let sid = session.sid();
    let pending = pending_ws(shared, request);
    session::start(
        shared,
        session,
        None,
        Some((ws, pending)),
        handshake.clone(),
    );
    let mut reply = switching_protocols(accept);
    shared.handshake_headers(&mut reply, sid, &handshake.headers);
    reply
}

/// A WebSocket for an existing session: an upgrade attempt.
pub(crate) fn upgrade<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    mut inputs: mpsc::Sender<Handoff>,
) -> HttpReply {
    let Some(accept) = accept_key(&request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let socket = pending_ws(shared, request);
    // Register the WebSocket before any of its frames can arrive.
    if inputs.try_send(Handoff::Upgrade { ws, socket }).is_err() {
        return empty_reply(503);
    }
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

/// The WebSocket of `request`, once hyper hands the connection over.
fn pending_ws<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
) -> PendingWs {
    let on_upgrade = hyper::upgrade::on(request);
    let config = ws_config(
        shared.config.protocol.max_payload,
        shared.config.ws_read_buffer,
    );
    Box::pin(async move {
        match on_upgrade.await {
            Ok(upgraded) => Some(
                WebSocketStream::from_raw_socket(HyperIo(upgraded), Role::Server, Some(config))
                    .await,
            ),
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                None
            }
        }
    })
}

/// The WebSocket settings of both sides. tungstenite reads into a buffer
/// of `read_buffer` bytes that it zero-fills before every read attempt and
/// keeps for the connection's life: its 128 KiB default would be most of an
/// idle connection's memory and a 128 KiB `memset` per read. A few KiB hold
/// a burst of small messages; a larger message is read in several calls.
pub(crate) fn ws_config(max_payload: usize, read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
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

/// A frame as a WebSocket message (`None` for text that is not UTF-8,
/// which the protocol machines never produce).
pub(crate) fn ws_message(frame: Frame) -> Option<WsMessage> {
    match frame {
        Frame::Text(text) => async_tungstenite::tungstenite::Utf8Bytes::try_from(text.into_bytes())
            .ok()
            .map(WsMessage::Text),
        Frame::Binary(data) => Some(WsMessage::Binary(data)),
    }
}
