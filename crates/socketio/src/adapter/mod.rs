//! Adapters: where a namespace's rooms live and how its broadcasts reach
//! sockets, on this server and on the others of a cluster.
//!
//! # Theory of operation
//!
//! Each namespace owns one [`Adapter`], made by the server's
//! [`AdapterFactory`] when the namespace is declared. The namespace tells it
//! which rooms its local sockets are in (`add_all`, `del`, `del_all`: plain
//! calls, room membership is always local state) and hands it every
//! selection-wide operation (broadcast, broadcast with acks, fetch, join,
//! leave, disconnect, server-side emit), which are async because a
//! cluster adapter forwards them to the other servers through a broker.
//!
//! The default, [`LocalAdapter`], serves a single server. A cluster adapter
//! (Redis, for one) wraps a `LocalAdapter` and calls its `*_local` methods
//! both for the local half of an operation and for operations that arrive
//! from other servers, so delivery, encoding once and the bounded queues are
//! written once.

mod local;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::runtime::DynRuntime;
use crate::server::{BroadcastOperator, NamespaceState, RoomParam};

// What an adapter crate needs to name, so it depends on this crate alone.
pub use crate::payload::Payload;
pub use crate::server::{AckAnswer, AckError, AckStream, BroadcastError, SocketRef};
pub use engineio_proto::{Sid, Str};
pub use futures_channel::oneshot;
pub use socketio_proto::recovery::{with_offset, MissedPacket, Restored};
pub use socketio_proto::rooms::Room;
pub use socketio_proto::{
    AckId, DecodeError, Decoder, DecoderConfig, EncodedPacket, Packet, PacketKind,
};

pub use local::LocalAdapter;

/// A boxed future an adapter returns: `Send`, borrowing the adapter.
pub type AdapterFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Which sockets an operation selects, and how a broadcast behaves (Node's
/// `BroadcastOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; empty selects every socket.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms.
    pub except: Vec<Room>,
    /// How the packet travels.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Every socket of the namespace.
    pub fn all() -> BroadcastOptions {
        BroadcastOptions::default()
    }

    /// Sockets in `rooms` (every socket if empty) but not in `except`.
    pub fn new(rooms: Vec<Room>, except: Vec<Room>) -> BroadcastOptions {
        BroadcastOptions {
            rooms,
            except,
            flags: BroadcastFlags::default(),
        }
    }
}

/// Broadcast modifiers (Node's `flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastFlags {
    /// Drop the packet for a socket that cannot take it at once (its
    /// transport is not writable, or its queue is full) instead of
    /// queueing it or reporting it as lagging.
    pub volatile: bool,
    /// Only this server's sockets: a cluster adapter does not forward it.
    pub local: bool,
    /// How long a broadcast with acks waits for each answer.
    pub timeout: Option<Duration>,
    /// Whether the transports may compress the packet (true unless
    /// `compress(false)`): see [`crate::SocketRef::compress`].
    pub compress: bool,
}

impl Default for BroadcastFlags {
    fn default() -> Self {
        BroadcastFlags {
            volatile: false,
            local: false,
            timeout: None,
            compress: true,
        }
    }
}

/// Why an adapter could not carry out an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The other servers did not all answer in time.
    #[error("adapter request timed out")]
    Timeout,
    /// The broker is unreachable; local sockets were still served.
    #[error("adapter unavailable: {0}")]
    Unavailable(String),
    /// Anything else the adapter reports.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// A socket found by [`Adapter::fetch_sockets`], on this server or another
/// (Node's `RemoteSocket`): a snapshot of its id, rooms and data.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteSocket {
    /// The socket id.
    pub id: Sid,
    /// The namespace.
    pub nsp: Str,
    /// The rooms it was in (its own id's room included).
    pub rooms: Vec<Room>,
    /// Its `data` (see [`SocketRef::data`]).
    pub data: serde_json::Value,
    /// Its handshake in the shape of Node's `socket.handshake` (`headers`,
    /// `query`, `auth`, `address`, `url`, `xdomain`, `secure`), as another
    /// server reported it; `null` for a local socket (its
    /// [`SocketRef::handshake`] has it all, and [`node_handshake`] makes
    /// Node's shape of it) and when the other server did not say.
    pub handshake: serde_json::Value,
    /// The socket itself when it lives on this server.
    pub local: Option<SocketRef>,
    /// The namespace it was fetched through, for its methods.
    pub(crate) scope: Scope,
}

/// The namespace a [`RemoteSocket`] acts through (set by `fetch_sockets`).
#[derive(Clone, Default)]
pub(crate) struct Scope(pub(crate) Option<Arc<NamespaceState>>);

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scope(..)")
    }
}

impl RemoteSocket {
    /// A snapshot of a local socket.
    pub fn of(socket: &SocketRef) -> RemoteSocket {
        RemoteSocket {
            id: socket.id(),
            nsp: Str::from(socket.namespace()),
            rooms: socket.room_list(),
            data: socket.data(),
            handshake: serde_json::Value::Null,
            local: Some(socket.clone()),
            scope: Scope(socket.inner.namespace.upgrade()),
        }
    }

    /// A snapshot of a socket on another server.
    pub fn remote(id: Sid, nsp: Str, rooms: Vec<Room>, data: serde_json::Value) -> RemoteSocket {
        RemoteSocket {
            id,
            nsp,
            rooms,
            data,
            handshake: serde_json::Value::Null,
            local: None,
            scope: Scope::default(),
        }
    }

    /// The same snapshot with the handshake another server reported.
    pub fn with_handshake(mut self, handshake: serde_json::Value) -> RemoteSocket {
        self.handshake = handshake;
        self
    }

    /// A broadcast to this socket alone, wherever it lives: through the
    /// adapter, as Node's `RemoteSocket` methods go (its own id is a room).
    /// A snapshot made with [`RemoteSocket::remote`] acts once
    /// `fetch_sockets` returned it (before, it knows no namespace and its
    /// methods reach nobody).
    fn operator(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.scope.0.clone()).to(self.id.as_str())
    }

    /// Emits `event` with one argument to the socket (Node's
    /// `remoteSocket.emit`).
    pub async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), BroadcastError> {
        self.operator().emit(event, value).await
    }

    /// Makes the socket join `rooms`, one room or several (Node's
    /// `remoteSocket.join`).
    pub async fn join(&self, rooms: impl RoomParam) -> Result<(), AdapterError> {
        self.operator().sockets_join(rooms).await
    }

    /// Makes the socket leave `rooms` (Node's `remoteSocket.leave`).
    pub async fn leave(&self, rooms: impl RoomParam) -> Result<(), AdapterError> {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects the socket; with `close`, its whole connection (Node's
    /// `remoteSocket.disconnect(close)`).
    pub async fn disconnect(&self, close: bool) -> Result<(), AdapterError> {
        self.operator().disconnect_sockets(close).await
    }
}

/// A local socket's handshake as Node's `socket.handshake` looks in JSON:
/// what a Node server of the cluster expects in a fetch response.
pub fn node_handshake(socket: &SocketRef) -> serde_json::Value {
    let handshake = socket.handshake();
    let mut headers = serde_json::Map::new();
    for (name, value) in &handshake.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            // Node joins repeated headers with ", ".
            Some(serde_json::Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), value.into());
            }
        }
    }
    let decode = engineio_proto::server::percent_decode;
    let query: serde_json::Map<String, serde_json::Value> = handshake
        .query_pairs()
        .filter(|(key, value)| !(key.is_empty() && value.is_empty()))
        .map(|(key, value)| (decode(key), decode(value).into()))
        .collect();
    let auth = serde_json::from_str(socket.auth()).unwrap_or_else(|_| serde_json::json!({}));
    let address = handshake.address.map(|a| a.ip().to_string());
    // In the order of Node's `buildHandshake`.
    serde_json::json!({
        "headers": headers,
        "time": handshake.time(),
        "address": address,
        "xdomain": handshake.headers.contains_key(http::header::ORIGIN),
        "secure": false,
        "issued": handshake.issued_millis(),
        "url": format!("/socket.io/?{}", handshake.query),
        "query": query,
        "auth": auth,
    })
}

impl fmt::Debug for SocketRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketRef")
            .field("id", &self.id())
            .field("nsp", &self.namespace())
            .finish()
    }
}

/// Where a namespace's rooms live and how selection-wide operations reach
/// sockets (Node's `Adapter`). Implement it to share rooms and broadcasts
/// between servers; wrap a [`LocalAdapter`] for the local half.
///
/// The membership calls are synchronous (rooms are local state, as in
/// Node); the selection-wide operations are async and may fail with an
/// [`AdapterError`] when the other servers cannot be reached, in which case
/// the local sockets must still have been served.
pub trait Adapter: Send + Sync + 'static {
    /// Puts a local socket in `rooms` (joining its own id's room on
    /// connect, or `socket.join`).
    fn add_all(&self, id: Sid, rooms: &[Room]);
    /// Takes a local socket out of `room`.
    fn del(&self, id: Sid, room: &Room);
    /// Forgets a local socket (it disconnected).
    fn del_all(&self, id: Sid);
    /// The rooms a local socket is in.
    fn socket_rooms(&self, id: Sid) -> Vec<Room>;

    /// Sends an EVENT packet to the selected sockets everywhere. The local
    /// ones that could not take it are reported as
    /// [`BroadcastError::Lagging`] (never with `volatile`).
    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<(), BroadcastError>>;

    /// Sends an EVENT asking each selected socket for an ack; the stream
    /// yields one answer (or error) per socket, within `opts.flags.timeout`.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<AckStream, BroadcastError>>;

    /// The selected sockets, everywhere.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> AdapterFuture<'_, Result<Vec<RemoteSocket>, AdapterError>>;

    /// Makes the selected sockets join `rooms`, everywhere.
    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>>;

    /// Makes the selected sockets leave `rooms`, everywhere.
    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> AdapterFuture<'_, Result<(), AdapterError>>;

    /// Disconnects the selected sockets, everywhere; `close` also closes
    /// their whole connections.
    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> AdapterFuture<'_, Result<(), AdapterError>>;

    /// Sends an event to the other servers' namespace (not this one), whose
    /// [`crate::NamespaceRef::on_server_event`] handlers run. With
    /// `ack_timeout`, waits that long for one answer per other server and
    /// returns them.
    fn server_side_emit(
        &self,
        event: String,
        payload: Payload,
        ack_timeout: Option<Duration>,
    ) -> AdapterFuture<'_, Result<Vec<Payload>, AdapterError>>;

    /// How many servers share this namespace (1 without a cluster).
    fn server_count(&self) -> AdapterFuture<'_, Result<usize, AdapterError>>;

    /// Every room with a socket in it, everywhere.
    fn all_rooms(&self) -> AdapterFuture<'_, Result<Vec<Room>, AdapterError>>;

    /// Starts the adapter (subscribes to the broker, for one) once its
    /// namespace is registered (Node's `adapter.init()`). The server spawns
    /// it and does not wait: operations that arrive first must not fail
    /// because of that.
    fn init(&self) -> AdapterFuture<'_, Result<(), AdapterError>> {
        Box::pin(async { Ok(()) })
    }

    /// Releases what the adapter holds (subscriptions, connections); the
    /// server calls it on close, and when it drops an emptied dynamic
    /// namespace.
    fn close(&self) -> AdapterFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether this adapter keeps connection state recovery itself, for
    /// the whole cluster (Node's adapters that implement `persistSession`
    /// and `restoreSession`, such as the Redis Streams adapter): its
    /// broadcasts give events their offsets, and with recovery on the
    /// server sends every event to a single socket through
    /// [`Adapter::broadcast`] too (as Node does), keeps the sessions of
    /// sockets that left with [`Adapter::persist_session`] and asks for
    /// them back with [`Adapter::restore_session`]. `false` (the default):
    /// the server keeps them in its own memory.
    fn keeps_sessions(&self) -> bool {
        false
    }

    /// Keeps a socket's session for `ttl` (the recovery's
    /// `max_disconnection_duration`), replacing what was kept: when it
    /// connects, changes rooms, every half `ttl` while it stays, and when
    /// it leaves for a recoverable reason (so a server that dies leaves
    /// its sockets' sessions behind). Only called when
    /// [`Adapter::keeps_sessions`].
    fn persist_session(&self, session: Session, ttl: Duration) -> AdapterFuture<'_, ()> {
        let _ = (session, ttl);
        Box::pin(async {})
    }

    /// Forgets the kept session with private id `pid` (its socket left
    /// for a reason that ends the session: a client or server
    /// disconnect). Only called when [`Adapter::keeps_sessions`].
    fn forget_session(&self, pid: Str) -> AdapterFuture<'_, ()> {
        let _ = pid;
        Box::pin(async {})
    }

    /// The session with private id `pid`, taken back (a session is restored
    /// once), with the events sent after `offset` that were meant for it;
    /// `None` when it is unknown or expired, or `offset` is. Only called
    /// when [`Adapter::keeps_sessions`].
    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> AdapterFuture<'_, Result<Option<Restored<serde_json::Value>>, AdapterError>> {
        let _ = (pid, offset);
        Box::pin(async { Ok(None) })
    }

    /// Starts socket `sid`, restored from session `pid` by
    /// [`Adapter::restore_session`]: `start` adds it to the namespace and
    /// its rooms, then queues the events it missed, given in order. An
    /// adapter whose broadcasts keep arriving while a session is restored
    /// (from other tasks: a stream reader) calls `start` with what it
    /// delivered meanwhile merged into `missed`, and keeps its deliveries
    /// out while `start` runs, so that the client gets every event once
    /// and in order. The default calls `start(missed)`.
    fn resume(
        &self,
        sid: Sid,
        pid: &str,
        missed: Vec<MissedPacket>,
        start: &mut dyn FnMut(Vec<MissedPacket>),
    ) {
        let _ = (sid, pid);
        start(missed);
    }
}

/// A socket's state, kept for connection state recovery by an adapter
/// that [keeps sessions](Adapter::keeps_sessions).
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The socket's id, which it takes back.
    pub sid: Sid,
    /// Its private id, what the client sends to come back.
    pub pid: Str,
    /// The rooms it was in.
    pub rooms: Vec<Room>,
    /// Its `data`.
    pub data: serde_json::Value,
}

/// Makes the adapter of each namespace (Node's `adapter` option).
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter for `namespace`, called once when it is declared.
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter>;
}

/// The default factory: a [`LocalAdapter`] per namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalAdapterFactory;

impl AdapterFactory for LocalAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        Arc::new(LocalAdapter::new(namespace))
    }
}

/// An adapter's handle on its namespace on this server: how it finds local
/// sockets and runs server-side event handlers. Holds the namespace weakly
/// (the namespace owns its adapter).
#[derive(Clone)]
pub struct LocalNamespace {
    name: Str,
    state: Weak<NamespaceState>,
    runtime: Arc<dyn DynRuntime>,
}

impl LocalNamespace {
    pub(crate) fn new(
        name: Str,
        state: Weak<NamespaceState>,
        runtime: Arc<dyn DynRuntime>,
    ) -> LocalNamespace {
        LocalNamespace {
            name,
            state,
            runtime,
        }
    }

    /// The server's runtime: for the adapter's background tasks and
    /// timeouts.
    pub fn runtime(&self) -> &Arc<dyn DynRuntime> {
        &self.runtime
    }

    /// Completes after `duration`, on the server's runtime.
    pub fn sleep(&self, duration: Duration) -> crate::runtime::Sleep {
        self.runtime
            .sleep_until(self.runtime.clock().now_std() + duration)
    }

    /// The namespace's name, e.g. `/` or `/chat`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local socket with this id, if it is connected.
    pub fn socket(&self, id: Sid) -> Option<SocketRef> {
        self.state.upgrade()?.socket(id)
    }

    /// Runs this namespace's server-side handlers of `event` for an event
    /// another server emitted, in order, and completes when they have run.
    /// The first answer goes to `ack` when the sender asked for one; if no
    /// handler answers (none listens, or none calls
    /// [`crate::ServerAck::send`]), `ack` is dropped — its receiver then
    /// fails at once, which an adapter reports as "no answer from this
    /// server".
    pub async fn deliver_server_event(
        &self,
        event: &str,
        payload: Payload,
        ack: Option<oneshot::Sender<Payload>>,
    ) {
        if let Some(state) = self.state.upgrade() {
            state.deliver_server_event(event, payload, ack).await;
        }
    }

    pub(crate) fn state(&self) -> Option<Arc<NamespaceState>> {
        self.state.upgrade()
    }
}

impl fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LocalNamespace").field(&self.name).finish()
    }
}
