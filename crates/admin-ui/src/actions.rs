//! What the UI asks of the server (Node's `registerFeatureHandlers`):
//! `emit` an event, make sockets `join` or `leave` a room, `_disconnect`
//! them; each on a namespace, for all its sockets or those in a room (the
//! `filter`), across the cluster through the adapter.

use serde_json::value::RawValue;
use socketio::{BroadcastOperator, Payload, Runtime, SocketIo, SocketRef};

/// What the UI may do, as `config` announces it (Node's `Feature`).
pub(crate) const EMIT: &str = "EMIT";
pub(crate) const JOIN: &str = "JOIN";
pub(crate) const LEAVE: &str = "LEAVE";
pub(crate) const DISCONNECT: &str = "DISCONNECT";
pub(crate) const MJOIN: &str = "MJOIN";
pub(crate) const MLEAVE: &str = "MLEAVE";
pub(crate) const MDISCONNECT: &str = "MDISCONNECT";
pub(crate) const AGGREGATED_EVENTS: &str = "AGGREGATED_EVENTS";
pub(crate) const ALL_EVENTS: &str = "ALL_EVENTS";

/// The arguments of a command, each as raw JSON.
fn arguments(payload: &Payload) -> Vec<&RawValue> {
    serde_json::from_str(payload.args_json()).unwrap_or_default()
}

fn text(value: Option<&&RawValue>) -> Option<String> {
    serde_json::from_str::<String>(value?.get()).ok()
}

/// The sockets of `nsp`, or of its room `filter` when there is one (Node:
/// `filter ? io.of(nsp).in(filter) : io.of(nsp)`). Unlike Node's
/// `io.of(nsp)`, a namespace this server does not have is not created: a
/// command cannot make the server grow namespaces (nor reach a namespace
/// that exists only on other servers of a cluster).
fn selection<R: Runtime>(
    io: &SocketIo<R>,
    nsp: &str,
    filter: Option<String>,
) -> Option<BroadcastOperator> {
    let Some(namespace) = io.namespaces().into_iter().find(|n| n.name() == nsp) else {
        tracing::debug!(%nsp, "admin: no such namespace here");
        return None;
    };
    Some(match filter.filter(|room| !room.is_empty()) {
        Some(room) => namespace.to(room),
        None => namespace.broadcast(),
    })
}

/// Adds the handlers of the UI's commands to an admin socket.
pub(crate) fn register<R: Runtime>(io: &SocketIo<R>, socket: &SocketRef) {
    let server = io.clone();
    socket.on("emit", move |payload: Payload| {
        emit(server.clone(), payload)
    });
    let server = io.clone();
    socket.on("join", move |payload: Payload| {
        rooms(server.clone(), payload, true)
    });
    let server = io.clone();
    socket.on("leave", move |payload: Payload| {
        rooms(server.clone(), payload, false)
    });
    let server = io.clone();
    socket.on("_disconnect", move |payload: Payload| {
        disconnect(server.clone(), payload)
    });
}

/// `emit (nsp, filter, event, ...args)`: the arguments keep their binary
/// attachments.
async fn emit<R: Runtime>(io: SocketIo<R>, payload: Payload) {
    let args = arguments(&payload);
    let (Some(nsp), Some(event)) = (text(args.first()), text(args.get(2))) else {
        return;
    };
    let rest: Vec<&RawValue> = args.iter().skip(3).copied().collect();
    let Ok(json) = serde_json::to_string(&rest) else {
        return;
    };
    let forwarded = Payload::from_raw(json.into(), payload.attachments().to_vec());
    tracing::debug!(%nsp, %event, "admin: emit");
    let Some(sockets) = selection(&io, &nsp, text(args.get(1))) else {
        return;
    };
    if let Err(error) = sockets.emit_payload(&event, forwarded).await {
        tracing::debug!(%nsp, %event, %error, "admin: emit failed");
    }
}

/// `join` / `leave (nsp, room, filter)`.
async fn rooms<R: Runtime>(io: SocketIo<R>, payload: Payload, join: bool) {
    let args = arguments(&payload);
    let (Some(nsp), Some(room)) = (text(args.first()), text(args.get(1))) else {
        return;
    };
    tracing::debug!(%nsp, %room, join, "admin: rooms");
    let Some(sockets) = selection(&io, &nsp, text(args.get(2))) else {
        return;
    };
    let done = if join {
        sockets.sockets_join(room).await
    } else {
        sockets.sockets_leave(room).await
    };
    if let Err(error) = done {
        tracing::debug!(%nsp, %error, "admin: join or leave failed");
    }
}

/// `_disconnect (nsp, close, filter)`.
async fn disconnect<R: Runtime>(io: SocketIo<R>, payload: Payload) {
    let args = arguments(&payload);
    let Some(nsp) = text(args.first()) else {
        return;
    };
    let close = args
        .get(1)
        .and_then(|v| serde_json::from_str::<bool>(v.get()).ok())
        .unwrap_or(false);
    tracing::debug!(%nsp, close, "admin: disconnect");
    let Some(sockets) = selection(&io, &nsp, text(args.get(2))) else {
        return;
    };
    if let Err(error) = sockets.disconnect_sockets(close).await {
        tracing::debug!(%nsp, %error, "admin: disconnect failed");
    }
}
