//! The application's view of one socket: its identity, event handlers and
//! middlewares, emits and ack answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::{Sid, Str};
use futures_channel::oneshot;
use serde::Serialize;
use socketio_proto::rooms::Room;
use socketio_proto::{AckId, EncodedPacket, Packet, PacketKind, SharedParser};

use super::broadcast::{AckAnswer, BroadcastOperator};
use super::extract::{EventContext, EventHandler, ExtractError, Typed};
use super::machine::{AckError, ConnectionHandle};
use super::namespace::NamespaceState;
use super::room_param::RoomParam;
use super::stats::{Delivery, Tally};
use crate::extensions::Extensions;
use crate::listeners::{any_listener, guarded, EventListener, EventListeners, ListenerFuture};
use crate::locks::lock;
use crate::payload::{Payload, PayloadError, TypedEvent};
use socketio_proto::server::CommandError;

type HandlerFuture = ListenerFuture;
type OutgoingHandler = Arc<dyn Fn(&SocketRef, &str, &Payload) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(EventContext) -> HandlerFuture + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(SocketRef, Arc<EventError>) -> HandlerFuture + Send + Sync>;
type EventMiddlewareFuture = Pin<Box<dyn Future<Output = Result<(), EventError>> + Send>>;
type EventMiddleware =
    Arc<dyn Fn(SocketRef, String, Payload) -> EventMiddlewareFuture + Send + Sync>;

/// The socket is gone (disconnected, or its connection closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("socket disconnected")]
pub struct Disconnected;

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments could not be encoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The socket is gone.
    #[error(transparent)]
    Disconnected(#[from] Disconnected),
    /// The client reads too slowly: `engine.protocol.max_buffered_packets`
    /// packets already wait for it. Nothing was queued; the connection
    /// stays (a client that stopped reading for good misses its heartbeat
    /// and is disconnected with `ping timeout`).
    #[error("send buffer full")]
    BufferFull,
    /// The adapter that keeps this namespace's sessions did not take the
    /// event (see [`SocketRef::emit_payload`]).
    #[error(transparent)]
    Adapter(crate::adapter::AdapterError),
}

impl From<CommandError> for EmitError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::BufferFull => EmitError::BufferFull,
            _ => EmitError::Disconnected(Disconnected),
        }
    }
}

/// Why an incoming event did not reach its listeners: a per-event
/// middleware refused it, or its arguments did not fit the listener's type.
/// Goes to the socket's [`SocketRef::on_error`] listeners (Node's `error`
/// event).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// A middleware refused the event with this message.
    #[error("{0}")]
    Rejected(String),
    /// An argument of `event`'s listener could not be extracted: the
    /// event's arguments did not deserialize into its type, or a state or
    /// extension it asks for is missing.
    #[error("invalid arguments for {event:?}: {error}")]
    InvalidArguments {
        /// The event name.
        event: String,
        /// Why.
        error: ExtractError,
    },
}

impl EventError {
    /// A refusal with `message`, for a middleware to return.
    pub fn rejected(message: impl Into<String>) -> EventError {
        EventError::Rejected(message.into())
    }
}

/// A socket's listeners. Besides the event listeners, the lists are
/// usually empty, and an empty `Vec` clones for free.
#[derive(Default)]
struct Listeners {
    events: EventListeners<SocketRef, AckSender>,
    outgoing: Vec<OutgoingHandler>,
    middlewares: Vec<EventMiddleware>,
    errors: Vec<ErrorHandler>,
    disconnecting: Vec<DisconnectHandler>,
    disconnect: Vec<DisconnectHandler>,
    upgrade: Vec<DisconnectHandler>,
}

pub(crate) struct SocketInner {
    pub(crate) nsp: Str,
    pub(crate) id: Sid,
    /// The private id, with connection state recovery on.
    pub(crate) pid: Option<Str>,
    /// Whether this socket took back a previous session.
    pub(crate) recovered: bool,
    pub(crate) auth: Str,
    /// The application's data for this socket (Node's `socket.data`).
    pub(crate) data: Mutex<serde_json::Value>,
    /// Typed values of this process's own (see [`Extensions`]).
    pub(crate) extensions: Extensions,
    pub(crate) handshake: Arc<crate::handshake::Handshake>,
    /// The connection's machine: every emit, ack and disconnect changes it
    /// under its lock and wakes its task.
    pub(crate) connection: ConnectionHandle,
    listeners: Mutex<Listeners>,
    /// Set once an outgoing listener exists, so broadcasts to sockets
    /// without one skip the lock and the event split.
    has_outgoing: AtomicBool,
    /// Weak: the namespace holds its sockets, not the other way round.
    pub(crate) namespace: Weak<NamespaceState>,
    /// The server's wire format, for what this socket emits.
    parser: SharedParser,
    /// With an adapter that keeps sessions: taken by each write of this
    /// socket's session, so they reach the adapter one at a time, each
    /// with the state as it is when its turn comes (the last write holds
    /// the latest state). `true` once the socket left: no more eager
    /// writes.
    session_writes: futures_util::lock::Mutex<bool>,
    /// A session write waits for its turn: the next change needs no other
    /// (that one reads the state when its turn comes). Bounds the writes
    /// of one socket to one waiting and one under way, however slow the
    /// adapter.
    session_write_queued: AtomicBool,
}

impl SocketInner {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        nsp: Str,
        id: Sid,
        pid: Option<Str>,
        recovered: bool,
        auth: Str,
        data: serde_json::Value,
        extensions: ::http::Extensions,
        handshake: Arc<crate::handshake::Handshake>,
        connection: ConnectionHandle,
        namespace: Weak<NamespaceState>,
    ) -> SocketInner {
        let parser = namespace
            .upgrade()
            .map(|namespace| namespace.handlers.parser.clone())
            .unwrap_or_default();
        SocketInner {
            nsp,
            id,
            pid,
            recovered,
            auth,
            data: Mutex::new(data),
            extensions: Extensions::from_map(extensions),
            handshake,
            connection,
            listeners: Mutex::default(),
            has_outgoing: AtomicBool::new(false),
            namespace,
            parser,
            session_writes: futures_util::lock::Mutex::new(false),
            session_write_queued: AtomicBool::new(false),
        }
    }
}

/// What became of an event queued for a socket, for the counters.
pub(crate) fn delivery(outcome: &Result<bool, CommandError>) -> Delivery {
    match outcome {
        Ok(true) => Delivery::Queued,
        Ok(false) => Delivery::SkippedVolatile,
        Err(CommandError::BufferFull) => Delivery::Lagging,
        Err(_) => Delivery::Gone,
    }
}

/// A handle on one socket (a client's connection to one namespace). Cheap
/// to clone.
#[derive(Clone)]
pub struct SocketRef {
    pub(crate) inner: Arc<SocketInner>,
    /// Whether this handle's emits may be compressed: see
    /// [`SocketRef::compress`].
    pub(crate) compress: bool,
}

impl SocketRef {
    /// The socket id.
    pub fn id(&self) -> Sid {
        self.inner.id
    }

    /// Whether connection state recovery restored this socket's previous
    /// session (id, rooms, missed events).
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// The application's data for this socket (Node's `socket.data`):
    /// `null` until set; kept across connection state recovery.
    pub fn data(&self) -> serde_json::Value {
        lock(&self.inner.data).clone()
    }

    /// Replaces the socket's data; then its namespace's
    /// [`NamespaceRef::on_data_change`](crate::NamespaceRef::on_data_change)
    /// listeners run.
    pub fn set_data(&self, data: serde_json::Value) {
        let old = std::mem::replace(&mut *lock(&self.inner.data), data);
        if let Some(namespace) = self.inner.namespace.upgrade() {
            namespace.keep_session(self);
            namespace.data_changed(self, &old);
        }
    }

    /// The socket's typed values (any `Clone + Send + Sync + 'static`,
    /// one per type), which handlers read with the
    /// [`Extension`](crate::extract::Extension) extractor. They start with
    /// what the HTTP request and the connection middlewares put there, and
    /// stay in this process (unlike [`SocketRef::data`]).
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// The server's global state of type `T`
    /// ([`crate::SocketIoConfig::with_state`]).
    pub(crate) fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.inner
            .namespace
            .upgrade()?
            .handlers
            .state
            .get::<T>()
            .cloned()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// The request that opened the connection: headers, query, address.
    pub fn handshake(&self) -> &crate::handshake::Handshake {
        &self.inner.handshake
    }

    /// The auth object the client sent with CONNECT (`{}` when none).
    pub fn auth(&self) -> &str {
        &self.inner.auth
    }

    /// Adds a listener of `event`: an `async` function or closure whose
    /// arguments are [extractors](crate::extract), in any order and number
    /// (the socket, `Data<T>`, `Option<Ack>`, `State<T>`, `Extension<T>`,
    /// …). Several may listen; they start in the order they were added. As
    /// in Node, listeners start in the order their events arrive and run
    /// side by side: one that awaits holds up nothing else (see
    /// [`crate::NamespaceRef::set_sequential`] for one event after the
    /// other). An argument that cannot be extracted (arguments of the wrong
    /// type) stops the listener and goes to the [`SocketRef::on_error`]
    /// listeners. When the client awaits an ack, every listener can take
    /// the [`AckSender`]; the first answer is sent.
    ///
    /// ```
    /// # fn register(socket: socketio::SocketRef) {
    /// use socketio::extract::{Ack, Data};
    /// use socketio::SocketRef;
    /// #[derive(serde::Deserialize)]
    /// struct Message { text: String }
    /// socket.on("message", |socket: SocketRef, Data(message): Data<Message>, ack: Option<Ack>| async move {
    ///     let _ = socket.to("room").emit("message", &message.text).await;
    ///     if let Some(ack) = ack {
    ///         let _ = ack.send(&"received").await;
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on<H, T>(&self, event: &str, handler: H)
    where
        H: EventHandler<T>,
    {
        let name: Arc<str> = Arc::from(event);
        let handler: EventListener<SocketRef, AckSender> = Arc::new(move |socket, payload, ack| {
            handler.call(EventContext {
                socket,
                event: name.clone(),
                payload,
                ack,
                reason: None,
            })
        });
        lock(&self.inner.listeners).events.on(event, handler);
    }

    /// Adds a listener of the [`TypedEvent`] `E`, its name and argument
    /// type declared once: `handler` gets the socket, the event, and the
    /// ack sender when the client awaits an answer. Arguments that do not
    /// read as `E` go to the [`SocketRef::on_error`] listeners.
    pub fn on_typed<E, F, Fut>(&self, handler: F)
    where
        E: TypedEvent,
        F: Fn(SocketRef, E, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on(
            E::NAME,
            move |socket: SocketRef, Typed(event): Typed<E>, ack: Option<AckSender>| {
                handler(socket, event, ack)
            },
        );
    }

    /// Emits the [`TypedEvent`] `event` under its declared name.
    pub async fn emit_typed<E: TypedEvent>(&self, event: &E) -> Result<(), EmitError> {
        self.emit_payload(E::NAME, event.to_payload()?).await
    }

    /// Adds a listener of `event` that runs for its next occurrence only
    /// (Node's `once`): it is removed before it starts.
    pub fn once<H, T>(&self, event: &str, handler: H)
    where
        H: EventHandler<T>,
    {
        let name: Arc<str> = Arc::from(event);
        let mut listeners = lock(&self.inner.listeners);
        let id = listeners.events.next_id();
        // Two occurrences may both have taken the list before the first
        // removes the listener: only one runs it.
        let fired = AtomicBool::new(false);
        let handler: EventListener<SocketRef, AckSender> = Arc::new(move |socket, payload, ack| {
            if fired.swap(true, Ordering::AcqRel) {
                return Box::pin(async {});
            }
            lock(&socket.inner.listeners).events.remove(&name, id);
            handler.call(EventContext {
                socket,
                event: name.clone(),
                payload,
                ack,
                reason: None,
            })
        });
        listeners.events.on(event, handler);
    }

    /// Removes every listener of `event` (Node's `off(event)` and
    /// `removeAllListeners(event)`; Rust closures cannot be compared, so
    /// one listener cannot be named). An occurrence already started still
    /// runs them.
    pub fn off(&self, event: &str) {
        // Dropped after the lock: a listener's captures may call back here.
        let _removed = lock(&self.inner.listeners).events.off(event);
    }

    /// Removes every listener of every event, `on_any` ones included
    /// (Node's `removeAllListeners()`).
    pub fn remove_all_listeners(&self) {
        let _removed = lock(&self.inner.listeners).events.clear();
    }

    /// How many listeners `event` has (Node's `listenerCount`).
    pub fn listener_count(&self, event: &str) -> usize {
        lock(&self.inner.listeners).events.count(event)
    }

    /// Adds a listener of every incoming event (Node's `onAny`), run before
    /// the event's own listeners with the event name.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, String, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.listeners)
            .events
            .on_any(any_listener(handler));
    }

    /// Adds a listener of every incoming event before the `on_any` ones
    /// already there (Node's `prependAny`).
    pub fn prepend_any<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, String, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.listeners)
            .events
            .prepend_any(any_listener(handler));
    }

    /// Removes every `on_any` listener (Node's `offAny()`).
    pub fn off_any(&self) {
        let _removed = lock(&self.inner.listeners).events.off_any();
    }

    /// Adds a listener of every event sent to this socket, by
    /// [`SocketRef::emit`] or by a broadcast that reaches it (Node's
    /// `onAnyOutgoing`). It runs synchronously on the emitting task, before
    /// the packet is queued: keep it short.
    pub fn on_any_outgoing<F>(&self, handler: F)
    where
        F: Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static,
    {
        lock(&self.inner.listeners).outgoing.push(Arc::new(handler));
        self.inner.has_outgoing.store(true, Ordering::Release);
    }

    /// Adds a middleware run on every incoming event before its listeners
    /// (Node's `socket.use`), in the order added. An error stops the event:
    /// no listener runs, and the error goes to the [`SocketRef::on_error`]
    /// listeners; the client is not told (answer it from there if needed).
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(SocketRef, String, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), EventError>> + Send + 'static,
    {
        let middleware: EventMiddleware =
            Arc::new(move |socket, event, payload| Box::pin(middleware(socket, event, payload)));
        lock(&self.inner.listeners).middlewares.push(middleware);
    }

    /// Adds a listener of the errors of incoming events (Node's `error`
    /// event): refusals by a middleware, arguments of the wrong type.
    /// Without one, they are logged at `debug`.
    pub fn on_error<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, Arc<EventError>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ErrorHandler = Arc::new(move |socket, error| Box::pin(handler(socket, error)));
        lock(&self.inner.listeners).errors.push(handler);
    }

    /// Runs `handler` when the socket disconnects: a function of
    /// [extractors](crate::extract) as for [`SocketRef::on`], among them
    /// [`Reason`](crate::extract::Reason), Node's reason string
    /// (`"client namespace disconnect"`, `"transport close"`, …).
    ///
    /// ```
    /// # fn register(socket: socketio::SocketRef) {
    /// use socketio::extract::Reason;
    /// socket.on_disconnect(|Reason(reason): Reason| async move {
    ///     println!("left: {reason}");
    /// });
    /// # }
    /// ```
    pub fn on_disconnect<H: EventHandler<T>, T>(&self, handler: H) {
        let handler: DisconnectHandler = Arc::new(move |event| handler.call(event));
        lock(&self.inner.listeners).disconnect.push(handler);
    }

    /// Runs `handler` when the connection moves from long-polling to
    /// WebSocket (Node's `socket.conn.on("upgrade")`); its arguments are
    /// extractors, as for [`SocketRef::on`]. See
    /// [`SocketRef::transport`].
    pub fn on_upgrade<H: EventHandler<T>, T>(&self, handler: H) {
        let handler: DisconnectHandler = Arc::new(move |event| handler.call(event));
        lock(&self.inner.listeners).upgrade.push(handler);
    }

    /// The transport the socket's connection runs on now: `"polling"` or
    /// `"websocket"` (Node's `socket.conn.transport.name`).
    pub fn transport(&self) -> &'static str {
        self.inner.connection.inspect(|machine| machine.transport())
    }

    /// The id of the Engine.IO connection under this socket (Node's
    /// `socket.conn.id`): one for every namespace a client joined over
    /// one connection. Keep it to yourself, as Node does: it names the
    /// connection in its requests.
    pub fn engine_id(&self) -> Sid {
        self.inner.connection.inspect(|machine| machine.engine_id())
    }

    /// Runs the upgrade listeners.
    pub(crate) async fn upgraded(&self) {
        let listeners = lock(&self.inner.listeners).upgrade.clone();
        for listener in listeners {
            let context = EventContext {
                socket: self.clone(),
                event: Arc::from("upgrade"),
                payload: Payload::empty(),
                ack: None,
                reason: None,
            };
            guarded("upgrade", || listener(context)).await;
        }
    }

    /// Runs `handler` when the socket is about to disconnect, while it is
    /// still in its rooms (Node's `disconnecting`); its arguments are
    /// extractors, as for [`SocketRef::on_disconnect`].
    pub fn on_disconnecting<H: EventHandler<T>, T>(&self, handler: H) {
        let handler: DisconnectHandler = Arc::new(move |event| handler.call(event));
        lock(&self.inner.listeners).disconnecting.push(handler);
    }

    /// Joins `rooms`: one room or several, `"a"` or `["a", "b"]` (no-op
    /// for those it is in already, or once disconnected).
    pub fn join(&self, rooms: impl RoomParam) {
        if let Some(namespace) = self.inner.namespace.upgrade() {
            if namespace.holds(self) {
                namespace
                    .adapter()
                    .add_all(self.inner.id, &rooms.into_rooms());
                namespace.keep_session(self);
            }
        }
    }

    /// Leaves `rooms`, one room or several.
    pub fn leave(&self, rooms: impl RoomParam) {
        if let Some(namespace) = self.inner.namespace.upgrade() {
            for room in rooms.into_rooms() {
                namespace.adapter().del(self.inner.id, &room);
            }
            namespace.keep_session(self);
        }
    }

    /// Writes this socket's session to `adapter` unless it left (in turn
    /// with its other writes: see `SocketInner::session_writes`).
    pub(crate) async fn write_session(&self, adapter: &dyn crate::adapter::Adapter, ttl: Duration) {
        let left = self.inner.session_writes.lock().await;
        // From here on, a change needs a write of its own.
        self.inner
            .session_write_queued
            .store(false, Ordering::Release);
        if *left {
            return;
        }
        if let Some(session) = self.session() {
            adapter.persist_session(session, ttl).await;
        }
        drop(left);
    }

    /// Whether a session write is needed now: `false` when one is already
    /// waiting for its turn (it will read this change).
    pub(crate) fn queue_session_write(&self) -> bool {
        !self.inner.session_write_queued.swap(true, Ordering::AcqRel)
    }

    /// This socket's session as an adapter keeps it, if it has a private id
    /// (connection state recovery is on).
    pub(crate) fn session(&self) -> Option<crate::adapter::Session> {
        Some(crate::adapter::Session {
            sid: self.inner.id,
            pid: self.inner.pid.clone()?,
            rooms: self.room_list(),
            data: self.data(),
        })
    }

    /// Whether the socket is still connected to its namespace (Node's
    /// `socket.connected`); false from its disconnect on, also once a
    /// recovered socket took its id back (that is another socket).
    pub fn connected(&self) -> bool {
        self.inner
            .namespace
            .upgrade()
            .is_some_and(|namespace| namespace.holds(self))
    }

    /// The rooms this socket is in (its own id's room included, as in Node).
    pub fn rooms(&self) -> Vec<String> {
        self.room_list()
            .iter()
            .map(|room| room.to_string())
            .collect()
    }

    /// The rooms this socket is in, as the adapter holds them.
    pub(crate) fn room_list(&self) -> Vec<Room> {
        match self.inner.namespace.upgrade() {
            Some(namespace) => namespace.adapter().socket_rooms(self.inner.id),
            None => Vec::new(),
        }
    }

    /// A broadcast to the sockets in `rooms` (one room or several), this
    /// one excluded (Node's `socket.to(room)`).
    pub fn to(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// A broadcast to every socket of the namespace but this one (Node's
    /// `socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOperator {
        let namespace = self.inner.namespace.upgrade();
        // Node excludes the sender through the room named by its id.
        BroadcastOperator::new(namespace).except(self.inner.id.as_str())
    }

    /// This socket, with its emits compressed or not (Node's
    /// `socket.compress(false)`): over a WebSocket with permessage-deflate
    /// negotiated, an event over the threshold is compressed unless sent
    /// through a handle from `compress(false)`; a long-polling response is
    /// gzip- or deflate-encoded unless every packet in it was sent so.
    /// Compression is allowed by default; the choice stays with the handle
    /// returned, not with the socket.
    ///
    /// ```no_run
    /// # async fn f(socket: socketio::SocketRef) -> Result<(), socketio::EmitError> {
    /// // Already compressed: deflate would only cost CPU.
    /// socket.compress(false).emit("frame", &"…jpeg as base64…").await?;
    /// # Ok(()) }
    /// ```
    pub fn compress(&self, compress: bool) -> SocketRef {
        SocketRef {
            inner: self.inner.clone(),
            compress,
        }
    }

    /// Emits `event` with one argument (a serde value; binary as
    /// [`crate::payload::Binary`]). Never waits: the packet is queued on
    /// the connection at once, or the emit fails
    /// ([`EmitError::BufferFull`] for a client that does not read).
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), EmitError> {
        self.emit_payload(event, Payload::single(value)?).await
    }

    /// Emits `event` with a payload (several arguments, binary attachments).
    ///
    /// With connection state recovery on and an adapter that
    /// [keeps sessions](crate::adapter::Adapter::keeps_sessions) (the Redis
    /// Streams adapter), the event goes through the adapter, which gives
    /// it its offset, as Node does; this then waits for the adapter (one
    /// round trip to Redis) and fails with [`EmitError::Adapter`] if it
    /// cannot be reached (the event was still sent, without an offset).
    pub async fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        // Recorded for recovery only where the namespace has it on (and
        // keeps the sessions itself).
        let mut record = false;
        if let Some(namespace) = self.inner.namespace.upgrade() {
            if namespace.recovery.is_some() {
                if namespace.adapter().keeps_sessions() {
                    return self.emit_through_adapter(&namespace, event, payload).await;
                }
                record = true;
            }
        }
        let packet = self.event_packet(event, payload, record)?;
        self.emit_encoded(&self.encode(&packet), false)?;
        Ok(())
    }

    /// [`SocketRef::emit_payload`] as a broadcast to this socket's own room.
    async fn emit_through_adapter(
        &self,
        namespace: &NamespaceState,
        event: &str,
        payload: Payload,
    ) -> Result<(), EmitError> {
        let data = payload.event_data(event)?;
        let (_, attachments) = payload.into_parts();
        let packet = Packet {
            attachments,
            ..Packet::new(PacketKind::Event, self.inner.nsp.clone(), Some(data))
        };
        let mut opts = crate::adapter::BroadcastOptions::new(
            vec![Room::from(self.inner.id.as_str())],
            Vec::new(),
        );
        opts.flags.compress = self.compress;
        match namespace.adapter().broadcast(packet, opts).await {
            Ok(()) => Ok(()),
            Err(crate::server::BroadcastError::Lagging(_)) => Err(EmitError::BufferFull),
            Err(crate::server::BroadcastError::Adapter(error)) => Err(EmitError::Adapter(error)),
            Err(error) => Err(EmitError::Adapter(crate::adapter::AdapterError::Other(
                Box::new(error),
            ))),
        }
    }

    /// Emits `event` only if it can leave at once (Node's
    /// `socket.volatile.emit`): over a WebSocket, or to a parked long-poll
    /// request, with room in the connection's queue. Otherwise it is
    /// dropped, and this still returns `Ok`. Never waits.
    pub fn emit_volatile(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        let packet = self.event_packet(event, payload, false)?;
        let _ = self.emit_encoded(&self.encode(&packet), true);
        Ok(())
    }

    /// Emits `event` and waits for the client's acknowledgement, at most
    /// `timeout` (`None`: the server's
    /// [`ack_timeout`](crate::SocketIoConfig::ack_timeout), or as long as
    /// the socket lives without one).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Result<Payload, AckError> {
        let packet = self
            .event_packet(event, payload, false)
            .map_err(|_| AckError::Disconnected)?;
        self.request_ack(packet, timeout, self.compress).await.1
    }

    /// Disconnects this socket from its namespace; the client sees `io
    /// server disconnect`.
    pub async fn disconnect(&self) -> Result<(), Disconnected> {
        let nsp = &self.inner.nsp;
        self.inner
            .connection
            .apply(|machine, now| machine.connection().disconnect(now, nsp))
            .map_err(|_| Disconnected)
    }

    /// Sends the client away (Node's `socket.disconnect(true)`): every
    /// socket of its connection, on every namespace, gets a DISCONNECT and
    /// leaves with `server namespace disconnect`, then the connection
    /// closes. The client sees `io server disconnect` and does not
    /// reconnect by itself; nothing is kept for connection state recovery,
    /// so a client that comes back is a new session that runs the
    /// middlewares.
    pub async fn close_connection(&self) -> Result<(), Disconnected> {
        self.inner.connection.apply(|machine, now| {
            let connection = machine.connection();
            if connection.is_closed() {
                return Err(Disconnected);
            }
            connection.disconnect_all(now);
            Ok(())
        })
    }

    /// An EVENT packet for this socket: recorded for connection state
    /// recovery when `record` (an ack request or volatile packet is not,
    /// as in Node), and shown to the outgoing listeners.
    fn event_packet(
        &self,
        event: &str,
        payload: Payload,
        record: bool,
    ) -> Result<Packet, PayloadError> {
        let mut data = payload.event_data(event)?;
        self.notify_outgoing_payload(event, &payload);
        let (_, attachments) = payload.into_parts();
        if let (true, Some(namespace)) = (record, self.inner.namespace.upgrade()) {
            if let Some(recovery) = &namespace.recovery {
                let own_room = [Room::from(self.inner.id.as_str())];
                data = recovery.record(data, &attachments, &own_room, &[]);
            }
        }
        Ok(Packet {
            attachments,
            ..Packet::new(PacketKind::Event, self.inner.nsp.clone(), Some(data))
        })
    }

    /// The packet in the server's wire format.
    pub(crate) fn encode(&self, packet: &Packet) -> EncodedPacket {
        self.inner
            .parser
            .encode(packet)
            .with_compress(self.compress)
    }

    /// Queues an encoded EVENT on the connection, and counts it. A
    /// volatile one is dropped (still `Ok`) unless the transport can take
    /// it at once.
    pub(crate) fn emit_encoded(
        &self,
        packet: &EncodedPacket,
        volatile: bool,
    ) -> Result<(), CommandError> {
        let outcome = self.queue_encoded(packet, volatile);
        if let Some(namespace) = self.inner.namespace.upgrade() {
            let mut tally = Tally::default();
            tally.add(delivery(&outcome));
            namespace.counters.delivered(&tally, false);
        }
        outcome.map(drop)
    }

    /// Queues an encoded EVENT on the connection: `Ok(false)` for a
    /// volatile one the transport could not take at once (dropped). Not
    /// counted: a broadcast counts its deliveries together.
    pub(crate) fn queue_encoded(
        &self,
        packet: &EncodedPacket,
        volatile: bool,
    ) -> Result<bool, CommandError> {
        let nsp = &self.inner.nsp;
        self.inner.connection.apply(|machine, now| {
            let connection = machine.connection();
            if volatile {
                connection.emit_volatile(now, nsp, packet)
            } else {
                connection.emit(now, nsp, packet).map(|()| true)
            }
        })
    }

    /// Queues an EVENT that asks for an ack without waiting; the future
    /// resolves to the answer, or `Disconnected` if it could not be queued.
    pub(crate) fn request_ack(
        &self,
        packet: Packet,
        timeout: Option<Duration>,
        compress: bool,
    ) -> impl Future<Output = AckAnswer> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let timeout = timeout.or_else(|| {
            self.inner
                .namespace
                .upgrade()
                .and_then(|namespace| namespace.handlers.ack_timeout)
        });
        // A refusal answers `reply` with the error.
        let queued = self
            .inner
            .connection
            .apply(|machine, now| machine.emit_with_ack(now, packet, timeout, compress, reply));
        let namespace = self.inner.namespace.clone();
        if let Some(namespace) = namespace.upgrade() {
            let mut tally = Tally::default();
            tally.add(delivery(&queued.map(|()| true)));
            namespace.counters.delivered(&tally, false);
        }
        let id = self.id();
        async move {
            let answer = answer.await.unwrap_or(Err(AckError::Disconnected));
            if let (Err(AckError::Timeout), Some(namespace)) = (&answer, namespace.upgrade()) {
                namespace.counters.ack_timed_out();
            }
            (id, answer)
        }
    }

    /// Shows an event's data (`["name", ...args]`) to the outgoing
    /// listeners, if there are any.
    pub(crate) fn notify_outgoing(&self, data: &Str, attachments: &[Bytes]) {
        if !self.inner.has_outgoing.load(Ordering::Acquire) {
            return;
        }
        if let Some((event, payload)) = Payload::split_event(data, attachments.to_vec()) {
            self.notify_outgoing_payload(&event, &payload);
        }
    }

    fn notify_outgoing_payload(&self, event: &str, payload: &Payload) {
        if !self.inner.has_outgoing.load(Ordering::Acquire) {
            return;
        }
        let listeners = lock(&self.inner.listeners).outgoing.clone();
        for listener in listeners {
            listener(self, event, payload);
        }
    }

    /// Gives an event error to the error listeners, or logs it.
    pub(crate) async fn report(&self, error: EventError) {
        let handlers = lock(&self.inner.listeners).errors.clone();
        if handlers.is_empty() {
            tracing::debug!(nsp = %self.inner.nsp, sid = %self.inner.id, %error, "event dropped");
            return;
        }
        let error = Arc::new(error);
        for handler in handlers {
            guarded("error", || handler(self.clone(), error.clone())).await;
        }
    }

    /// Runs the middlewares of one incoming event, in order, then its
    /// listeners side by side: the `on_any` ones, then the event's own,
    /// each started in that order (as Node calls them), the next one
    /// starting where the previous one first awaits.
    pub(crate) async fn dispatch(&self, event: String, payload: Payload, ack: Option<AckId>) {
        let (middlewares, started) = {
            let listeners = lock(&self.inner.listeners);
            (listeners.middlewares.clone(), listeners.events.of(&event))
        };
        for middleware in middlewares {
            let passed = guarded("middleware", || {
                middleware(self.clone(), event.clone(), payload.clone())
            })
            .await;
            match passed {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    self.report(error).await;
                    return;
                }
                // A middleware that panicked lets nothing through.
                None => return,
            }
        }
        let ack = ack.map(|id| AckSender {
            socket: self.clone(),
            id,
            sent: Arc::new(AtomicBool::new(false)),
        });
        started.run(self.clone(), event, payload, ack).await;
    }

    /// The socket left its namespace: run its disconnecting handlers,
    /// unregister it, then run its disconnect handlers.
    /// What a disconnect handler's extractors read.
    fn leaving(&self, event: &'static str, reason: &'static str) -> EventContext {
        EventContext {
            socket: self.clone(),
            event: Arc::from(event),
            payload: Payload::empty(),
            ack: None,
            reason: Some(reason),
        }
    }

    pub(crate) async fn left(&self, reason: &'static str, recoverable: bool) {
        if let Some(namespace) = self.inner.namespace.upgrade() {
            namespace.counters.disconnected(reason);
        }
        let disconnecting = std::mem::take(&mut lock(&self.inner.listeners).disconnecting);
        for handler in disconnecting {
            guarded("disconnecting", || {
                handler(self.leaving("disconnecting", reason))
            })
            .await;
        }
        if let Some(namespace) = self.inner.namespace.upgrade() {
            if let (Some(recovery), Some(pid)) = (&namespace.recovery, &self.inner.pid) {
                let adapter = namespace.adapter();
                match (adapter.keeps_sessions(), recoverable) {
                    (true, true) => {
                        let mut left = self.inner.session_writes.lock().await;
                        *left = true;
                        if let (Some(ttl), Some(session)) =
                            (namespace.session_ttl(), self.session())
                        {
                            adapter.persist_session(session, ttl).await;
                        }
                    }
                    // Kept since it connected: a socket that may not come
                    // back (kicked, or it left) must not find it.
                    (true, false) => {
                        let mut left = self.inner.session_writes.lock().await;
                        *left = true;
                        adapter.forget_session(pid.clone()).await;
                    }
                    (false, true) => {
                        let rooms = self.room_list();
                        recovery.persist(pid.clone(), self.inner.id, rooms, self.data());
                    }
                    (false, false) => {}
                }
            }
            namespace.remove(self.inner.id);
        }
        let disconnect = std::mem::take(&mut lock(&self.inner.listeners).disconnect);
        for handler in disconnect {
            guarded("disconnect", || handler(self.leaving("disconnect", reason))).await;
        }
        // Drop every other listener too: they may hold clones of this socket.
        // Dropped after the lock: a listener's captures may call back here.
        let _old = std::mem::take(&mut *lock(&self.inner.listeners));
        self.inner.has_outgoing.store(false, Ordering::Release);
    }
}

/// Answers an event whose sender awaits an acknowledgement. Answer once.
#[derive(Clone)]
pub struct AckSender {
    socket: SocketRef,
    id: AckId,
    /// Shared by the clones handed to several listeners: one answer only.
    sent: Arc<AtomicBool>,
}

impl AckSender {
    /// Answers with one argument (a serde value; binary as
    /// [`crate::payload::Binary`]).
    pub async fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EmitError> {
        let payload = Payload::single(value)?;
        self.send_payload(payload).await?;
        Ok(())
    }

    /// Answers with a payload as the ack's arguments.
    pub async fn send_payload(self, payload: Payload) -> Result<(), Disconnected> {
        if self.sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (data, attachments) = payload.into_parts();
        let nsp = &self.socket.inner.nsp;
        let id = self.id;
        self.socket
            .inner
            .connection
            .apply(|machine, now| machine.connection().ack(now, nsp, id, data, attachments))
            .map_err(|_| Disconnected)
    }
}
