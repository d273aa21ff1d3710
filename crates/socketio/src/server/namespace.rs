//! A namespace: its handlers, its local sockets, and the adapter that holds
//! its rooms and carries its broadcasts.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use engineio_proto::{Sid, Str};
use futures_channel::oneshot;
use serde::Serialize;
use socketio_proto::recovery::RecoveryConfig;
use socketio_proto::rooms::Room;

use super::broadcast::{BroadcastError, BroadcastOperator};
use super::middleware::{self, ConnectError, ConnectRequest, Middleware};
use super::recovery::NamespaceRecovery;
use super::room_param::RoomParam;
use super::socket::SocketRef;
use super::HandlerSettings;
use crate::adapter::{Adapter, AdapterError, AdapterFactory, LocalNamespace};
use crate::locks::{lock, read, write};
use crate::runtime::DynRuntime;
use crate::server::Payload;

type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub(crate) type ConnectionHandler = Arc<dyn Fn(SocketRef) -> HandlerFuture + Send + Sync>;
type ServerEventHandler = Arc<dyn Fn(Payload, Option<ServerAck>) -> HandlerFuture + Send + Sync>;

/// A namespace's state on this server.
pub(crate) struct NamespaceState {
    pub(crate) name: Str,
    on_connection: RwLock<Option<ConnectionHandler>>,
    pub(crate) recovery: Option<NamespaceRecovery>,
    middlewares: RwLock<Vec<Middleware>>,
    /// The sockets connected to this server; their rooms are the adapter's.
    sockets: RwLock<HashMap<Sid, SocketRef>>,
    adapter: Arc<dyn Adapter>,
    server_handlers: RwLock<HashMap<String, Vec<ServerEventHandler>>>,
    /// For a dynamic namespace: the parent whose handler and middlewares it
    /// uses.
    parent: Option<Arc<NamespaceState>>,
    /// For a parent of dynamic namespaces: the children created so far.
    children: RwLock<Vec<Arc<NamespaceState>>>,
    /// Each socket's events are handled one after the other.
    sequential: AtomicBool,
    /// The server's state and defaults for handlers (read without a lock).
    pub(crate) handlers: Arc<HandlerSettings>,
    /// Listeners of the adapter's room changes; the flag spares the
    /// adapter any work while there are none.
    room_listeners: RwLock<Vec<RoomListener>>,
    has_room_listeners: AtomicBool,
    /// Run for each socket before the connection handler.
    connect_listeners: RwLock<Vec<ConnectListener>>,
    /// Run after each `set_data` of one of its sockets.
    data_listeners: RwLock<Vec<DataListener>>,
    /// What its sockets did ([`crate::SocketIo::stats`]).
    pub(crate) counters: super::stats::NamespaceCounters,
    /// Runs the tasks that keep sessions in an adapter.
    runtime: Arc<dyn DynRuntime>,
    /// Whether the task that refreshes kept sessions runs.
    keeping_sessions: AtomicBool,
}

/// A listener of [`RoomEvent`]s.
type RoomListener = Arc<dyn Fn(&RoomEvent) + Send + Sync>;

/// A listener of sockets connecting ([`NamespaceRef::prepend_connection`]).
type ConnectListener = Arc<dyn Fn(&SocketRef) + Send + Sync>;

/// A listener of data changes ([`NamespaceRef::on_data_change`]): the
/// socket (its new data) and the data it had.
type DataListener = Arc<dyn Fn(&SocketRef, &serde_json::Value) + Send + Sync>;

/// A change of the rooms of this server's sockets (Node's adapter events
/// `create-room`, `delete-room`, `join-room`, `leave-room`). A socket's
/// own room counts, as in Node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// The room has its first socket (`create-room`).
    Created(String),
    /// The room's last socket left (`delete-room`).
    Deleted(String),
    /// A socket joined the room (`join-room`).
    Joined {
        /// The room.
        room: String,
        /// The socket.
        socket: Sid,
    },
    /// A socket left the room (`leave-room`).
    Left {
        /// The room.
        room: String,
        /// The socket.
        socket: Sid,
    },
}

impl NamespaceState {
    pub(crate) fn new(
        name: &str,
        recovery: Option<RecoveryConfig>,
        adapters: &dyn AdapterFactory,
        parent: Option<Arc<NamespaceState>>,
        runtime: Arc<dyn DynRuntime>,
        handlers: Arc<HandlerSettings>,
    ) -> Arc<NamespaceState> {
        let name = Str::from(name);
        let clock = runtime.clock();
        Arc::new_cyclic(|weak| NamespaceState {
            adapter: adapters.create(LocalNamespace::new(
                name.clone(),
                weak.clone(),
                runtime.clone(),
            )),
            runtime,
            keeping_sessions: AtomicBool::new(false),
            name,
            on_connection: RwLock::new(None),
            recovery: recovery.map(|config| NamespaceRecovery::new(config, clock)),
            middlewares: RwLock::default(),
            sockets: RwLock::default(),
            server_handlers: RwLock::default(),
            parent,
            children: RwLock::default(),
            sequential: AtomicBool::new(false),
            handlers,
            room_listeners: RwLock::default(),
            has_room_listeners: AtomicBool::new(false),
            connect_listeners: RwLock::default(),
            data_listeners: RwLock::default(),
            counters: Default::default(),
        })
    }

    pub(crate) fn has_room_listeners(&self) -> bool {
        self.has_room_listeners.load(Ordering::Acquire)
    }

    /// Gives a room change to the listeners.
    pub(crate) fn room_event(&self, event: &RoomEvent) {
        let listeners = read(&self.room_listeners).clone();
        for listener in listeners {
            listener(event);
        }
    }

    pub(crate) fn add_child(&self, child: Arc<NamespaceState>) {
        write(&self.children).push(child);
    }

    pub(crate) fn remove_child(&self, child: &Arc<NamespaceState>) {
        write(&self.children).retain(|c| !Arc::ptr_eq(c, child));
    }

    pub(crate) fn parent(&self) -> Option<&Arc<NamespaceState>> {
        self.parent.as_ref()
    }

    /// Where a broadcast on this namespace goes: itself, or for a parent of
    /// dynamic namespaces, every child (Node's `ParentNamespace`).
    pub(crate) fn broadcast_targets(self: &Arc<Self>) -> Vec<Arc<NamespaceState>> {
        let children = read(&self.children);
        if children.is_empty() {
            vec![self.clone()]
        } else {
            children.clone()
        }
    }

    pub(crate) fn adapter(&self) -> &dyn Adapter {
        &*self.adapter
    }

    /// How long sessions are kept, when this namespace has connection
    /// state recovery on and its adapter keeps the sessions.
    pub(crate) fn session_ttl(&self) -> Option<std::time::Duration> {
        let recovery = self.recovery.as_ref()?;
        self.adapter
            .keeps_sessions()
            .then_some(recovery.config.max_disconnection_duration)
    }

    /// With an adapter that keeps sessions: stores `socket`'s session now,
    /// in the background, so that it survives this server dying (a server
    /// that is killed never gets to keep its sockets' sessions when they
    /// leave). Called when a socket connects or changes rooms, and for
    /// every socket every half of the sessions' lifetime.
    pub(crate) fn keep_session(&self, socket: &SocketRef) {
        let Some(ttl) = self.session_ttl() else {
            return;
        };
        if !socket.queue_session_write() {
            return;
        }
        let adapter = self.adapter.clone();
        let socket = socket.clone();
        self.runtime.spawn(Box::pin(async move {
            socket.write_session(&*adapter, ttl).await;
        }));
    }

    /// With an adapter that keeps sessions: starts the task that stores
    /// every socket's session again every half of their lifetime, so the
    /// kept sessions of a server that dies outlive it by at least half of
    /// it. Once per namespace; ends with the namespace.
    pub(crate) fn keep_sessions_alive(self: &Arc<Self>) {
        let Some(ttl) = self.session_ttl() else {
            return;
        };
        if self.keeping_sessions.swap(true, Ordering::AcqRel) {
            return;
        }
        let namespace = Arc::downgrade(self);
        let runtime = self.runtime.clone();
        let period = (ttl / 2).max(std::time::Duration::from_secs(1));
        self.runtime.spawn(Box::pin(async move {
            loop {
                runtime
                    .sleep_until(runtime.clock().now_std() + period)
                    .await;
                let Some(namespace) = namespace.upgrade() else {
                    return;
                };
                let sockets: Vec<SocketRef> = read(&namespace.sockets).values().cloned().collect();
                for socket in &sockets {
                    namespace.keep_session(socket);
                }
            }
        }));
    }

    /// Starts (`init`) or stops (`close`) the adapter in the background, on
    /// `runtime`: never under the registry's lock, never awaited by it.
    pub(crate) fn spawn_adapter(self: &Arc<Self>, runtime: &dyn DynRuntime, starting: bool) {
        if starting {
            self.keep_sessions_alive();
        }
        let adapter = self.adapter.clone();
        let nsp = self.name.clone();
        runtime.spawn(Box::pin(async move {
            if !starting {
                adapter.close().await;
            } else if let Err(error) = adapter.init().await {
                tracing::warn!(%nsp, %error, "adapter failed to start");
            }
        }));
    }

    /// Whether sockets handle their events one after the other: set on
    /// it, or on its parent.
    pub(crate) fn is_sequential(&self) -> bool {
        self.sequential.load(Ordering::Relaxed)
            || self.parent.as_ref().is_some_and(|p| p.is_sequential())
    }

    /// Runs the connect listeners on a socket that just connected: the
    /// namespace's own, then its parent's.
    pub(crate) fn connected(&self, socket: &SocketRef) {
        let listeners = read(&self.connect_listeners).clone();
        for listener in listeners {
            let run = std::panic::AssertUnwindSafe(|| listener(socket));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!(
                    handler = "prepend_connection",
                    "a handler panicked; the panic stops here"
                );
            }
        }
        if let Some(parent) = &self.parent {
            parent.connected(socket);
        }
    }

    /// Runs the data listeners after `socket.set_data`: the namespace's
    /// own, then its parent's.
    pub(crate) fn data_changed(&self, socket: &SocketRef, old: &serde_json::Value) {
        let listeners = read(&self.data_listeners).clone();
        for listener in listeners {
            listener(socket, old);
        }
        if let Some(parent) = &self.parent {
            parent.data_changed(socket, old);
        }
    }

    /// The connection handler: its own, or its parent's.
    pub(crate) fn connection_handler(&self) -> Option<ConnectionHandler> {
        let own = read(&self.on_connection).clone();
        own.or_else(|| self.parent.as_ref()?.connection_handler())
    }

    /// The parent's middlewares (if any) then its own, in order.
    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        let mut all = match &self.parent {
            Some(parent) => parent.middlewares(),
            None => Vec::new(),
        };
        all.extend(read(&self.middlewares).iter().cloned());
        all
    }

    pub(crate) fn socket(&self, id: Sid) -> Option<SocketRef> {
        read(&self.sockets).get(&id).cloned()
    }

    /// The connected sockets among `ids` (one lock for the whole list).
    pub(crate) fn sockets_by_id<'a>(&self, ids: impl Iterator<Item = &'a Sid>) -> Vec<SocketRef> {
        let sockets = read(&self.sockets);
        ids.filter_map(|id| sockets.get(id).cloned()).collect()
    }

    pub(crate) fn socket_count(&self) -> usize {
        read(&self.sockets).len()
    }

    /// Registers a connected socket, in the room named by its id.
    pub(crate) fn add(&self, socket: &SocketRef) {
        let id = socket.id();
        write(&self.sockets).insert(id, socket.clone());
        self.adapter.add_all(id, &[Room::from(id.as_str())]);
    }

    /// Forgets a socket and its rooms.
    pub(crate) fn remove(&self, id: Sid) {
        self.adapter.del_all(id);
        write(&self.sockets).remove(&id);
    }

    /// Whether `socket` itself is connected here: a socket recovered under
    /// the same id is another one, and an old handle is not it.
    pub(crate) fn holds(&self, socket: &SocketRef) -> bool {
        read(&self.sockets)
            .get(&socket.id())
            .is_some_and(|held| Arc::ptr_eq(&held.inner, &socket.inner))
    }

    /// Runs the handlers of a server-side event, in order; the first answer
    /// goes to `ack`.
    pub(crate) async fn deliver_server_event(
        &self,
        event: &str,
        payload: Payload,
        ack: Option<oneshot::Sender<Payload>>,
    ) {
        let handlers = read(&self.server_handlers)
            .get(event)
            .cloned()
            .unwrap_or_default();
        let ack = ack.map(|reply| ServerAck {
            reply: Arc::new(Mutex::new(Some(reply))),
        });
        for handler in handlers {
            handler(payload.clone(), ack.clone()).await;
        }
    }
}

/// Answers a server-side event whose sender waits for acks
/// ([`NamespaceRef::server_side_emit_with_ack`] on another server).
#[derive(Clone)]
pub struct ServerAck {
    /// Shared by the clones handed to several handlers: one answer only.
    reply: Arc<Mutex<Option<oneshot::Sender<Payload>>>>,
}

impl ServerAck {
    /// Sends this server's answer (the first one wins).
    pub fn send(&self, payload: Payload) {
        if let Some(reply) = lock(&self.reply).take() {
            let _ = reply.send(payload);
        }
    }
}

/// A namespace of a [`super::SocketIo`] server: its handlers, middlewares
/// and broadcasts to its sockets. Cheap to clone.
#[derive(Clone)]
pub struct NamespaceRef {
    pub(crate) state: Arc<NamespaceState>,
}

impl NamespaceRef {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Sets what to do with each socket that joins the namespace.
    pub fn on_connection<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ConnectionHandler = Arc::new(move |socket| Box::pin(handler(socket)));
        *write(&self.state.on_connection) = Some(handler);
    }

    /// Adds a listener run for each socket that connects, synchronously,
    /// before the connection handler (Node's
    /// `nsp.prependListener("connection", …)`), in the order added; a
    /// dynamic namespace runs its own, then its parent's. It sees the
    /// socket in its rooms with its missed events queued, and is the place
    /// for instrumentation to add the socket's listeners
    /// ([`SocketRef::on_any`], [`SocketRef::on_disconnect`], …) before any
    /// handler runs. Keep it short: it runs on the connection's task.
    pub fn prepend_connection(&self, listener: impl Fn(&SocketRef) + Send + Sync + 'static) {
        write(&self.state.connect_listeners).push(Arc::new(listener));
    }

    /// Adds a listener run synchronously after each
    /// [`SocketRef::set_data`] of one of the namespace's sockets, on the
    /// task that set it, with the data the socket had (what Node's Admin
    /// UI instrumentation learns through a proxy on `socket.data`); a
    /// dynamic namespace runs its own, then its parent's. Keep it short.
    pub fn on_data_change(
        &self,
        listener: impl Fn(&SocketRef, &serde_json::Value) + Send + Sync + 'static,
    ) {
        write(&self.state.data_listeners).push(Arc::new(listener));
    }

    /// Handles each socket's events one after the other (`true`), instead
    /// of Node's way (the default): there, handlers start in the order
    /// their events arrive and run side by side, so an awaiting handler
    /// never holds up the next event, an ack, or another namespace.
    ///
    /// Sequential handling gives strict order at a price: a handler that
    /// awaits holds up every later event of its socket, *including the
    /// acks it may be waiting for to be answered by its own events*; the
    /// waiting events count towards
    /// [`super::SocketIoConfig::max_pending_events`], so a socket whose
    /// handler is stuck gets its connection closed once that many wait.
    /// Other sockets, namespaces and heartbeats are never held up, and an
    /// ack answering one of the server's own `emit_with_ack` is not an
    /// event: it never waits. Set it before sockets connect; a dynamic
    /// namespace follows its parent.
    ///
    /// ```
    /// # fn setup<R: socketio::Runtime>(io: &socketio::SocketIo<R>) {
    /// let orders = io.of("/orders");
    /// orders.set_sequential(true);
    /// orders.on_connection(|socket| async move {
    ///     socket.on("place", || async move {
    ///         // Runs to the end before the next "place" of this socket starts.
    ///     });
    /// });
    /// # }
    /// ```
    pub fn set_sequential(&self, sequential: bool) {
        self.state.sequential.store(sequential, Ordering::Relaxed);
    }

    /// Adds a connection middleware (Node's `namespace.use`). Middlewares
    /// run in the order they were added, before the connection handler; the
    /// first error refuses the socket with a CONNECT_ERROR whose `message`
    /// and `data` the client's `connect_error` listener receives.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        write(&self.state.middlewares).push(middleware::boxed(middleware));
    }

    /// Adds a handler of `event` sent by another server of the cluster with
    /// [`NamespaceRef::server_side_emit`] (Node's `io.on(event, …)` for
    /// server-side events). With an ack, the sender waits for an answer.
    pub fn on_server_event<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(Payload, Option<ServerAck>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: ServerEventHandler =
            Arc::new(move |payload, ack| Box::pin(handler(payload, ack)));
        write(&self.state.server_handlers)
            .entry(event.to_owned())
            .or_default()
            .push(handler);
    }

    /// Sends `event` to this namespace on every other server of the cluster
    /// (Node's `serverSideEmit`); this server's handlers do not run. With
    /// the default adapter there is no other server, and it does nothing.
    pub async fn server_side_emit(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<(), AdapterError> {
        self.state
            .adapter
            .server_side_emit(event.to_owned(), payload, None)
            .await
            .map(drop)
    }

    /// Like [`NamespaceRef::server_side_emit`], then waits at most
    /// `timeout` for one answer per other server (Node's
    /// `serverSideEmitWithAck`); fails with [`AdapterError::Timeout`] when
    /// some did not answer.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Duration,
    ) -> Result<Vec<Payload>, AdapterError> {
        self.state
            .adapter
            .server_side_emit(event.to_owned(), payload, Some(timeout))
            .await
    }

    /// How many servers share this namespace (1 without a cluster adapter).
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.state.adapter.server_count().await
    }

    /// Every room with a socket in it, on every server (sockets' own id
    /// rooms included, as Node's `adapter.rooms`).
    pub async fn all_rooms(&self) -> Result<Vec<String>, AdapterError> {
        let rooms = self.state.adapter.all_rooms().await?;
        Ok(rooms.iter().map(|room| room.to_string()).collect())
    }

    /// A broadcast to the sockets in `rooms`, one room or several (Node's
    /// `to` and `in`).
    pub fn to(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// A broadcast to every socket except those in `rooms`.
    pub fn except(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }

    /// Adds a listener of the room changes of this server's sockets (Node's
    /// `nsp.adapter.on("create-room" | "delete-room" | "join-room" |
    /// "leave-room")`). It runs synchronously where the change happens
    /// (a join, a leave, a disconnect): keep it short.
    pub fn on_room_event(&self, listener: impl Fn(&RoomEvent) + Send + Sync + 'static) {
        write(&self.state.room_listeners).push(Arc::new(listener));
        self.state.has_room_listeners.store(true, Ordering::Release);
    }

    /// The socket of this server with id `id`, if it is connected here
    /// (Node's `nsp.sockets.get(id)`); see
    /// [`BroadcastOperator::fetch_sockets`] for every server of a cluster.
    pub fn get_socket(&self, id: Sid) -> Option<SocketRef> {
        self.state.sockets_by_id(std::iter::once(&id)).pop()
    }

    /// A broadcast that skips sockets that cannot take it at once.
    pub fn volatile(&self) -> BroadcastOperator {
        self.broadcast().volatile()
    }

    /// A broadcast compressed or not (Node's `namespace.compress`).
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.broadcast().compress(compress)
    }

    /// A broadcast to this server's sockets only.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// A broadcast whose acks are awaited at most `timeout`.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.broadcast().timeout(timeout)
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(Some(self.state.clone()))
    }

    /// Emits `event` with one argument to every socket (Node's `io.emit`).
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), BroadcastError> {
        self.broadcast().emit(event, value).await
    }

    /// How many sockets are connected to this server.
    pub fn socket_count(&self) -> usize {
        self.state.socket_count()
    }

    /// The namespace's adapter.
    pub fn adapter(&self) -> &dyn Adapter {
        self.state.adapter()
    }

    /// For a parent of dynamic namespaces
    /// ([`super::SocketIo::dynamic_namespace`]), the children created so
    /// far; empty otherwise.
    pub fn children(&self) -> Vec<NamespaceRef> {
        read(&self.state.children)
            .iter()
            .map(|state| NamespaceRef {
                state: state.clone(),
            })
            .collect()
    }
}
