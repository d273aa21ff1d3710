//! A client's socket on one namespace: listeners, emits, acks.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use engineio_proto::Str;
use futures_channel::oneshot;
use serde::Serialize;
use socketio_proto::client::{AckError as ProtoAckError, CommandError, DisconnectReason};
use socketio_proto::{AckId, Packet, PacketKind};

use super::driver::{Shared, State};
use super::options::Auth;
use super::{ClientHandle, Manager};
use crate::listeners::{any_listener, EventListener, EventListeners, ListenerFuture};
use crate::locks::lock;
use crate::payload::{FromPayload, Payload, PayloadError, TypedEvent};

type HandlerFuture = ListenerFuture;
type ConnectHandler = Arc<dyn Fn(ClientSocket) -> HandlerFuture + Send + Sync>;
type ConnectErrorHandler = Arc<dyn Fn(ClientSocket, ConnectError) -> HandlerFuture + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(ClientSocket, DisconnectReason) -> HandlerFuture + Send + Sync>;

/// Why a namespace could not be connected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server refused the namespace (a middleware's error, or an
    /// unknown namespace): the message and data of Node's `connect_error`.
    /// Not retried.
    #[error("refused by the server: {message}")]
    Refused {
        /// The error's message.
        message: String,
        /// The error's `data`, if the middleware gave some.
        data: Option<serde_json::Value>,
    },
    /// The connection to the server could not be opened (refused, timed
    /// out, bad handshake). Retried while reconnection allows.
    #[error("the connection could not be opened")]
    Transport,
    /// Out of reconnection attempts (Node's `reconnect_failed`).
    #[error("reconnection failed")]
    Failed,
    /// The socket was disconnected or the client closed before it connected.
    #[error("socket closed")]
    Closed,
    /// The URL or the options are invalid.
    #[error(transparent)]
    Options(#[from] super::ClientError),
}

impl ConnectError {
    /// Reads a CONNECT_ERROR payload: `{"message":…,"data":…}`, or, from a
    /// socket.io 2.x server, the error's data alone or its message alone.
    pub(crate) fn refused(json: &str) -> ConnectError {
        use serde_json::Value;
        let (message, data) = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(mut error)) if error.contains_key("message") => {
                let message = match error.remove("message") {
                    Some(Value::String(message)) => message,
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                (message, error.remove("data").filter(|data| !data.is_null()))
            }
            Ok(Value::String(message)) => (message, None),
            Ok(data) => (String::new(), Some(data)),
            Err(_) => (json.to_owned(), None),
        };
        ConnectError::Refused { message, data }
    }
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments could not be encoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The socket has not been connected with [`ClientSocket::connect`], or
    /// was disconnected.
    #[error("socket not connected: call connect first")]
    NotConnected,
    /// The offline buffer (`max_buffered_packets`) or the transport's queue
    /// is full.
    #[error("send buffer full")]
    BufferFull,
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

impl From<CommandError> for EmitError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotJoined => EmitError::NotConnected,
            CommandError::BufferFull => EmitError::BufferFull,
            CommandError::InvalidPlaceholder => {
                EmitError::Payload(PayloadError::InvalidPlaceholder)
            }
            _ => EmitError::Closed,
        }
    }
}

/// Why an awaited ack did not come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The timeout passed (after every retry, with `retries`).
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected after the event was sent, or the client
    /// closed.
    #[error("socket has been disconnected")]
    Disconnected,
    /// The event could not be sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// A listener of the events this socket emits (Node's `onAnyOutgoing`).
type OutgoingListener = Arc<dyn Fn(&ClientSocket, &str, &Payload) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) events: EventListeners<ClientSocket, AckSender>,
    outgoing: Vec<OutgoingListener>,
    pub(crate) connect: Vec<ConnectHandler>,
    pub(crate) connect_error: Vec<ConnectErrorHandler>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
}

#[derive(Default)]
struct Status {
    id: Option<String>,
    recovered: bool,
    /// `connect` calls waiting for the outcome.
    waiters: Vec<oneshot::Sender<Result<(), ConnectError>>>,
}

/// The state of one namespace socket, shared by its handles, the driver
/// and the client's handler task.
pub(crate) struct SocketShared {
    pub(crate) nsp: Str,
    pub(crate) auth: Auth,
    status: Mutex<Status>,
    pub(crate) listeners: Mutex<Listeners>,
    /// Set once an outgoing listener exists, so emits skip the lock.
    has_outgoing: AtomicBool,
}

impl SocketShared {
    pub(crate) fn set_connected(&self, id: Option<String>, recovered: bool) {
        let mut status = lock(&self.status);
        status.id = id;
        status.recovered = recovered;
    }

    pub(crate) fn resolve_waiters(&self, outcome: Result<(), ConnectError>) {
        let waiters = std::mem::take(&mut lock(&self.status).waiters);
        for waiter in waiters {
            let _ = waiter.send(outcome.clone());
        }
    }
}

/// A socket on one namespace of a server (Node's client `Socket`). Cheap to
/// clone; every clone is the same socket. Several sockets made by
/// [`Manager::socket`] share one connection.
///
/// Register listeners, then [`ClientSocket::connect`]; events that arrive
/// for a name with no listener are dropped, as in Node.
#[derive(Clone)]
pub struct ClientSocket {
    pub(crate) handle: Arc<ClientHandle>,
    pub(crate) inner: Arc<SocketShared>,
    /// Whether this handle's emits may be compressed: see
    /// [`ClientSocket::compress`].
    pub(crate) compress: bool,
}

impl std::fmt::Debug for ClientSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSocket")
            .field("nsp", &&*self.inner.nsp)
            .field("id", &self.id())
            .finish()
    }
}

impl ClientSocket {
    /// Makes the socket of `nsp`.
    pub(crate) fn create(handle: Arc<ClientHandle>, nsp: Str, auth: Auth) -> ClientSocket {
        let inner = Arc::new(SocketShared {
            nsp: nsp.clone(),
            auth,
            status: Mutex::default(),
            listeners: Mutex::default(),
            has_outgoing: AtomicBool::new(false),
        });
        handle
            .shared
            .machine
            .lock()
            .sockets
            .insert(nsp, inner.clone());
        ClientSocket {
            handle,
            inner,
            compress: true,
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The socket id the server gave, while connected.
    pub fn id(&self) -> Option<String> {
        lock(&self.inner.status).id.clone()
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        lock(&self.inner.status).id.is_some()
    }

    /// Whether the last connection restored the previous session
    /// (connection state recovery): same id, rooms, and the events missed
    /// meanwhile were delivered.
    pub fn recovered(&self) -> bool {
        lock(&self.inner.status).recovered
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// The Manager of the connection, to open more namespaces on it or
    /// follow reconnections.
    pub fn manager(&self) -> Manager {
        Manager {
            handle: self.handle.clone(),
        }
    }

    /// Connects the socket (opening the connection if needed) and returns
    /// a future that completes when it is connected, or fails when the
    /// server refuses it, reconnection gives up, or the socket is
    /// disconnected first. The CONNECT request is made when this is
    /// called, not when the future is polled: emits made after this call
    /// are buffered and sent once connected. Also call it to reconnect
    /// after [`ClientSocket::disconnect`] or a server-side disconnect.
    pub fn connect(&self) -> impl Future<Output = Result<(), ConnectError>> + Send + 'static {
        let (waiter, outcome) = oneshot::channel();
        let started = self.start_connect(waiter);
        async move {
            started?;
            outcome.await.unwrap_or(Err(ConnectError::Closed))
        }
    }

    fn start_connect(
        &self,
        waiter: oneshot::Sender<Result<(), ConnectError>>,
    ) -> Result<(), ConnectError> {
        if self.connected() {
            let _ = waiter.send(Ok(()));
            return Ok(());
        }
        lock(&self.inner.status).waiters.push(waiter);
        let nsp = self.inner.nsp.clone();
        let (auth, on_demand) = match &self.inner.auth {
            Auth::None => (None, false),
            Auth::Fixed(value) => (Some(Str::from(value.to_string())), false),
            Auth::Dynamic(_) => (None, true),
        };
        self.shared()
            .machine
            .apply(|state, now| {
                if state.closed {
                    return Err(ConnectError::Closed);
                }
                state
                    .conn
                    .join(now, nsp, auth, on_demand)
                    .map_err(|_| ConnectError::Closed)
            })
            .inspect_err(|_| self.inner.resolve_waiters(Err(ConnectError::Closed)))
    }

    /// Disconnects the socket (Node's `socket.disconnect()`): the server
    /// sees `client namespace disconnect`, awaited acks fail, no
    /// reconnection. Disconnecting the last socket of a connection closes
    /// it. [`ClientSocket::connect`] connects again.
    pub fn disconnect(&self) {
        let nsp = self.inner.nsp.clone();
        let _ = self
            .shared()
            .machine
            .apply(|state, now| state.conn.leave(now, &nsp));
    }

    /// Adds a listener of `event`, run with the event's arguments as any
    /// [`FromPayload`] (`Payload`, `Data<T>`, `Args<(A, B)>`). As in Node,
    /// listeners start in the order their events arrive and run side by
    /// side: one that awaits (even an ack of the server) holds up nothing
    /// else. Past [`super::ClientOptions::max_pending_events`] unfinished
    /// events, the connection is dropped and reconnected. When the
    /// server awaits an ack, every listener gets the [`AckSender`]; the first
    /// answer is sent. Arguments that do not fit the type are logged and
    /// the listener is skipped.
    pub fn on<A, F, Fut>(&self, event: &str, handler: F)
    where
        A: FromPayload,
        F: Fn(ClientSocket, A, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = listener(event, handler);
        lock(&self.inner.listeners).events.on(event, listener);
    }

    /// Adds a listener of `event` that runs for its next occurrence only
    /// (Node's `once`): it is removed before it starts.
    pub fn once<A, F, Fut>(&self, event: &str, handler: F)
    where
        A: FromPayload,
        F: Fn(ClientSocket, A, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let inner = listener(event, handler);
        let name = event.to_owned();
        let mut listeners = lock(&self.inner.listeners);
        let id = listeners.events.next_id();
        // Two occurrences may both have taken the list before the first
        // removes the listener: only one runs it.
        let fired = AtomicBool::new(false);
        let once: EventListener<ClientSocket, AckSender> = Arc::new(move |socket, payload, ack| {
            if fired.swap(true, Ordering::AcqRel) {
                return Box::pin(async {});
            }
            lock(&socket.inner.listeners).events.remove(&name, id);
            inner(socket, payload, ack)
        });
        listeners.events.on(event, once);
    }

    /// Adds a listener of the [`TypedEvent`] `E`, its name and argument
    /// type declared once (see [`ClientSocket::on`] for how listeners
    /// run). Arguments that do not read as `E` are logged and skipped.
    pub fn on_typed<E, F, Fut>(&self, handler: F)
    where
        E: TypedEvent,
        F: Fn(ClientSocket, E, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on(E::NAME, move |socket, payload: Payload, ack| {
            let event = E::from_payload(&payload);
            let run = event.map(|event| handler(socket, event, ack));
            async move {
                match run {
                    Ok(run) => run.await,
                    Err(error) => {
                        tracing::warn!(event = E::NAME, %error, "event arguments do not fit the listener")
                    }
                }
            }
        });
    }

    /// Emits the [`TypedEvent`] `event` under its declared name.
    pub fn emit_typed<E: TypedEvent>(&self, event: &E) -> Result<(), EmitError> {
        self.emit_payload(E::NAME, event.to_payload()?)
    }

    /// Removes every listener of `event` (Node's `off(event)` and
    /// `removeAllListeners(event)`: closures cannot be compared, so one
    /// listener cannot be named).
    pub fn off(&self, event: &str) {
        // Dropped after the lock: a listener's captures may call back here.
        let _removed = lock(&self.inner.listeners).events.off(event);
    }

    /// Removes every event listener, `on_any` ones included.
    pub fn remove_all_listeners(&self) {
        let _removed = lock(&self.inner.listeners).events.clear();
    }

    /// How many listeners `event` has (Node's `listenerCount`).
    pub fn listener_count(&self, event: &str) -> usize {
        lock(&self.inner.listeners).events.count(event)
    }

    /// Removes every `on_any` listener (Node's `offAny()`).
    pub fn off_any(&self) {
        let _removed = lock(&self.inner.listeners).events.off_any();
    }

    /// Adds a listener of every event this socket emits (Node's
    /// `onAnyOutgoing`), with the event's name and arguments. It runs
    /// synchronously in `emit`, before the event is queued (Node calls it
    /// when a buffered event finally leaves; here an event emitted while
    /// disconnected is seen when it is emitted): keep it short.
    pub fn on_any_outgoing(
        &self,
        listener: impl Fn(&ClientSocket, &str, &Payload) + Send + Sync + 'static,
    ) {
        lock(&self.inner.listeners)
            .outgoing
            .push(Arc::new(listener));
        self.inner.has_outgoing.store(true, Ordering::Release);
    }

    /// Removes every `on_any_outgoing` listener (Node's `offAnyOutgoing()`).
    pub fn off_any_outgoing(&self) {
        let _removed = std::mem::take(&mut lock(&self.inner.listeners).outgoing);
        self.inner.has_outgoing.store(false, Ordering::Release);
    }

    /// Adds a listener of every event (Node's `onAny`), run before the
    /// event's own listeners with the event name.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(ClientSocket, String, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.inner.listeners)
            .events
            .on_any(any_listener(handler));
    }

    /// Runs `handler` each time the socket connects (reconnections
    /// included; check [`ClientSocket::recovered`]).
    pub fn on_connect<F, Fut>(&self, handler: F)
    where
        F: Fn(ClientSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ConnectHandler = Arc::new(move |socket| Box::pin(handler(socket)));
        lock(&self.inner.listeners).connect.push(handler);
    }

    /// Runs `handler` when a connection attempt fails (Node's
    /// `connect_error`): a refusal by the server, or a transport failure
    /// (each failed reconnection attempt).
    pub fn on_connect_error<F, Fut>(&self, handler: F)
    where
        F: Fn(ClientSocket, ConnectError) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ConnectErrorHandler =
            Arc::new(move |socket, error| Box::pin(handler(socket, error)));
        lock(&self.inner.listeners).connect_error.push(handler);
    }

    /// Runs `handler` when the socket disconnects, with the reason
    /// ([`DisconnectReason::as_node_str`] gives Node's string;
    /// [`DisconnectReason::will_reconnect`] tells whether the client
    /// reconnects by itself).
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(ClientSocket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: DisconnectHandler =
            Arc::new(move |socket, reason| Box::pin(handler(socket, reason)));
        lock(&self.inner.listeners).disconnect.push(handler);
    }

    /// This socket, with its emits compressed or not (Node's
    /// `socket.compress(false)`): with permessage-deflate negotiated
    /// ([`ClientOptions::per_message_deflate`](crate::client::ClientOptions::per_message_deflate)),
    /// an event over the threshold is compressed unless sent through a
    /// handle from `compress(false)`. The choice stays with the handle
    /// returned, not with the socket.
    ///
    /// ```no_run
    /// # fn f(socket: socketio::client::ClientSocket) -> Result<(), socketio::client::EmitError> {
    /// // Already compressed: deflate would only cost CPU.
    /// socket.compress(false).emit("photo", &"…jpeg as base64…")?;
    /// # Ok(()) }
    /// ```
    pub fn compress(&self, compress: bool) -> ClientSocket {
        ClientSocket {
            compress,
            ..self.clone()
        }
    }

    /// Emits `event` with one argument (a serde value; binary as
    /// [`crate::payload::Binary`]). While disconnected the event waits in a
    /// bounded buffer and is sent once connected.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, value: &T) -> Result<(), EmitError> {
        self.emit_payload(event, Payload::single(value)?)
    }

    /// Emits `event` with a payload (several arguments, attachments).
    pub fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        let packet = self.event_packet(event, payload)?;
        self.shared().machine.apply(|state, now| {
            has_room(state)?;
            Ok(state
                .conn
                .emit_compress(now, packet, false, self.compress)?)
        })
    }

    /// Emits `event` only if the socket is connected (Node's
    /// `socket.volatile.emit`); otherwise it is dropped, and this still
    /// returns `Ok`.
    pub fn emit_volatile(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        let packet = self.event_packet(event, payload)?;
        self.shared().machine.apply(|state, now| {
            if has_room(state).is_err() {
                return Ok(());
            }
            Ok(state.conn.emit_compress(now, packet, true, self.compress)?)
        })
    }

    /// Emits `event` and returns a future of the server's answer, failing
    /// after `timeout` (`None`: waits as long as the socket stays
    /// connected; with `retries`, the options' `ack_timeout` applies to
    /// each try instead). The event is queued when this is called, so
    /// emits keep their order whenever the futures are awaited.
    pub fn emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Payload, AckError>> + Send + 'static {
        let queued = self.queue_with_ack(event, payload, timeout);
        async move {
            let answer = queued?;
            match answer.await {
                Ok(Ok(payload)) => Ok(payload),
                Ok(Err(ProtoAckError::Timeout)) => Err(AckError::Timeout),
                _ => Err(AckError::Disconnected),
            }
        }
    }

    fn queue_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Result<oneshot::Receiver<Result<Payload, ProtoAckError>>, AckError> {
        let packet = self.event_packet(event, payload).map_err(EmitError::from)?;
        let nsp = self.inner.nsp.clone();
        let (reply, answer) = oneshot::channel();
        self.shared().machine.apply(|state, now| {
            has_room(state)?;
            let id = state
                .conn
                .emit_with_ack_compress(now, packet, timeout, self.compress)
                .map_err(EmitError::from)?;
            state.acks.insert((nsp, id), reply);
            Ok::<_, AckError>(())
        })?;
        Ok(answer)
    }

    fn event_packet(&self, event: &str, payload: Payload) -> Result<Packet, PayloadError> {
        let data = payload.event_data(event)?;
        if self.inner.has_outgoing.load(Ordering::Acquire) {
            let outgoing = lock(&self.inner.listeners).outgoing.clone();
            for listener in outgoing {
                listener(self, event, &payload);
            }
        }
        let (_, attachments) = payload.into_parts();
        Ok(Packet {
            attachments,
            ..Packet::new(PacketKind::Event, self.inner.nsp.clone(), Some(data))
        })
    }
}

/// Packets the driver has not yet carried out beyond which emits fail: the
/// network is slower than the application (same bound as the engine's own
/// send queue).
const MAX_QUEUED_OUTPUTS: usize = 4096;

/// A listener reading its arguments as `A`; arguments that do not fit are
/// logged and the listener skipped.
fn listener<A, F, Fut>(event: &str, handler: F) -> EventListener<ClientSocket, AckSender>
where
    A: FromPayload,
    F: Fn(ClientSocket, A, Option<AckSender>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let name = event.to_owned();
    Arc::new(move |socket, payload, ack| match A::from_payload(payload) {
        Ok(args) => Box::pin(handler(socket, args, ack)),
        Err(error) => {
            tracing::warn!(event = %name, %error, "event arguments do not fit the listener");
            Box::pin(async {})
        }
    })
}

fn has_room(state: &State) -> Result<(), EmitError> {
    if state.conn.queued_outputs() >= MAX_QUEUED_OUTPUTS {
        return Err(EmitError::BufferFull);
    }
    Ok(())
}

/// Answers an event the server emitted with an ack. The first answer
/// counts; dropping it without answering leaves the server waiting (until
/// its timeout).
#[derive(Clone)]
pub struct AckSender {
    shared: Weak<Shared>,
    nsp: Str,
    id: AckId,
    /// Shared by the clones given to each listener: one answer per event.
    answered: Arc<AtomicBool>,
}

impl std::fmt::Debug for AckSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckSender")
            .field("nsp", &&*self.nsp)
            .field("id", &self.id)
            .finish()
    }
}

impl AckSender {
    /// The answer to event `id` of `socket`.
    pub(crate) fn new(socket: &ClientSocket, id: AckId) -> AckSender {
        AckSender {
            shared: Arc::downgrade(&socket.handle.shared),
            nsp: socket.inner.nsp.clone(),
            id,
            answered: Arc::default(),
        }
    }

    /// Answers with one argument. Only the first answer to an event is
    /// sent; later ones return `Ok` and are dropped.
    pub fn send<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EmitError> {
        self.send_payload(Payload::single(value)?)
    }

    /// Answers with a payload (several arguments, attachments).
    pub fn send_payload(self, payload: Payload) -> Result<(), EmitError> {
        if self.answered.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let shared = self.shared.upgrade().ok_or(EmitError::Closed)?;
        let (args, attachments) = payload.into_parts();
        shared.machine.apply(|state, now| {
            state
                .conn
                .ack(now, &self.nsp, self.id, args, attachments)
                .map_err(EmitError::from)
        })
    }
}
