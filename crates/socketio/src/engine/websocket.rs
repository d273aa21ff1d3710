//! The server's WebSocket handshake for Engine.IO: the HTTP upgrade, with
//! permessage-deflate when it is on (the session task then reads and writes
//! the WebSocket itself, see `session.rs` and `ws_link.rs`).

use std::sync::Arc;

use engineio_proto::server::Opening;
use engineio_proto::Dialect;
use futures_channel::mpsc;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
    UPGRADE,
};

use super::session::{self, Handoff};
use super::{empty_reply, ws_id, HttpReply, RequestBody, Shared};
use crate::io::HyperIo;
use crate::runtime::Runtime;
use crate::ws::deflate::{self, Agreed};
use crate::ws::frame::Role;
use crate::ws::{accept_key, Settings, UpgradedIo, WebSocket};

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

/// A WebSocket whose `101 Switching Protocols` is on its way: it resolves
/// once hyper hands the connection over (`None` if it never does). The
/// session task polls it, then reads and writes the WebSocket itself.
pub(crate) type PendingWs = crate::ws_link::Opening<UpgradedIo>;

/// A WebSocket handshake: a new session over WebSocket.
/// `handshake` is the request's, when `allow_request` built it already.
pub(crate) fn open<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    dialect: Dialect,
    handshake: Option<crate::handshake::Handshake>,
) -> HttpReply {
    let Some((accept, deflate)) = accept(shared, &request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let handshake =
        Arc::new(handshake.unwrap_or_else(|| crate::handshake::Handshake::of(&request)));
    let session = shared.open_session(Opening::WebSocket(ws), dialect, &handshake);
    let sid = session.sid();
    let pending = pending_ws(shared, request, deflate.as_ref().map(|(agreed, _)| *agreed));
    session::start(
        shared,
        session,
        None,
        Some((ws, pending)),
        handshake.clone(),
    );
    let mut reply = switching_protocols(accept, deflate);
    shared.handshake_headers(&mut reply, sid, &handshake.headers);
    reply
}

/// A WebSocket for an existing session: an upgrade attempt.
pub(crate) fn upgrade<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    mut inputs: mpsc::Sender<Handoff>,
) -> HttpReply {
    let Some((accept, deflate)) = accept(shared, &request) else {
        return empty_reply(400);
    };
    let ws = ws_id(shared);
    let socket = pending_ws(shared, request, deflate.as_ref().map(|(agreed, _)| *agreed));
    // Register the WebSocket before any of its frames can arrive.
    if inputs.try_send(Handoff::Upgrade { ws, socket }).is_err() {
        return empty_reply(503);
    }
    switching_protocols(accept, deflate)
}

/// What the `101` answers: the accept key, and permessage-deflate when
/// the server has it on and the client offered it. `None` for a request
/// without a key or with an extension offer that cannot be read (Node's
/// `ws` answers both `400`).
fn accept<R: Runtime, B>(
    shared: &Arc<Shared<R>>,
    request: &hyper::Request<B>,
) -> Option<(String, Option<(Agreed, String)>)> {
    let key = request.headers().get(SEC_WEBSOCKET_KEY)?;
    let deflate = match &shared.config.per_message_deflate {
        Some(config) => {
            let offers: Vec<&str> = request
                .headers()
                .get_all(SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .map(|value| value.to_str().ok())
                .collect::<Option<_>>()?;
            deflate::accept_offer(config, offers.into_iter()).ok()?
        }
        None => None,
    };
    Some((accept_key(key.as_bytes()), deflate))
}

fn switching_protocols(accept: String, deflate: Option<(Agreed, String)>) -> HttpReply {
    let mut reply = empty_reply(101);
    let headers = reply.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    if let Some(value) = deflate.and_then(|(_, answer)| HeaderValue::from_str(&answer).ok()) {
        headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
    }
    reply
}

/// The WebSocket of `request`, once hyper hands the connection over.
fn pending_ws<R: Runtime, B: RequestBody>(
    shared: &Arc<Shared<R>>,
    request: hyper::Request<B>,
    deflate: Option<Agreed>,
) -> PendingWs {
    let on_upgrade = hyper::upgrade::on(request);
    let settings = Settings {
        role: Role::Server,
        max_message: shared.config.protocol.max_payload,
        read_chunk: shared.config.ws_read_buffer,
        deflate,
    };
    Box::pin(async move {
        match on_upgrade.await {
            Ok(upgraded) => Some(WebSocket::new(HyperIo(upgraded), settings)),
            Err(error) => {
                tracing::debug!(%error, "websocket upgrade failed");
                None
            }
        }
    })
}
