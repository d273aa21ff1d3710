//! The Socket.IO server: namespaces, sockets, events and acks, on the
//! Engine.IO driver of [`crate::engine`].
//!
//! # Theory of operation
//!
//! Each Engine.IO session's task drives a `socketio_proto` connection
//! machine. What the machine tells the application (a namespace CONNECT, an
//! event, a disconnect) goes, in order, to one *connection task* per client
//! ([`connection`]), which starts the handlers in that order and lets them
//! run side by side, as Node does. Handlers talk back (emit, ack,
//! disconnect) by changing the connection's machine under its lock and
//! waking the session task (`engine::session::MachineHandle`).

mod broadcast;
mod connection;
pub mod extract;
mod machine;
mod middleware;
mod namespace;
mod recovery;
mod registry;
mod room_param;
mod socket;
mod stats;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engineio_proto::server::{HttpResponse, Session};
use engineio_proto::{RequestId, WsId};
use futures_channel::{mpsc, oneshot};
use socketio_proto::recovery::RecoveryConfig;
use socketio_proto::server::ConnectionConfig;
use socketio_proto::{Parser, SharedParser};

use crate::adapter::{AdapterFactory, LocalAdapterFactory};
use crate::engine::session::{spawn_task, Handoff};
use crate::engine::websocket::PendingWs;
use crate::engine::{EngineConfig, EngineServer, HttpReply, Mode, Shared};
use crate::handle::MachineHandle;
use crate::handshake::Handshake;
pub(crate) use crate::locks::lock;
pub use crate::payload::{Payload, PayloadError};
use crate::runtime::Runtime;
use crate::HttpHandler;
pub use broadcast::{AckAnswer, AckStream, BroadcastError, BroadcastOperator};
use connection::ConnectionTask;
pub use machine::AckError;
use machine::SioMachine;
pub use middleware::{ConnectError, ConnectRequest};
pub(crate) use namespace::NamespaceState;
pub use namespace::{NamespaceRef, RoomEvent, ServerAck};
use registry::Registry;
pub use room_param::RoomParam;
pub(crate) use socket::delivery;
pub use socket::{AckSender, Disconnected, EmitError, EventError, SocketRef};
pub(crate) use stats::{Delivery, Tally};
pub use stats::{NamespaceStats, ServerStats};

/// Settings of a [`SocketIo`] server.
#[derive(Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// Engine.IO settings; the path defaults to `/socket.io/`.
    pub engine: EngineConfig,
    /// Socket.IO connection settings (connect timeout, attachment limits).
    pub connection: ConnectionConfig,
    /// Connection state recovery (Node's `connectionStateRecovery`); off
    /// when `None`, as in Node.
    pub recovery: Option<RecoveryConfig>,
    /// Makes each namespace's adapter (Node's `adapter`): in memory by
    /// default; a cluster adapter shares rooms and broadcasts between
    /// servers.
    pub adapter: Arc<dyn AdapterFactory>,
    /// Events of one connection whose handlers have started (or wait for
    /// their turn) and not finished, beyond which the connection is closed
    /// as a flood (its sockets leave with `forced server close`). Handlers
    /// that finish at once never count for long: this bounds the handlers
    /// a client can keep waiting at the same time. Default 1024.
    pub max_pending_events: usize,
    /// Global state for handlers, one value per type: the
    /// [`State`](extract::State) extractor clones it out. Add values with
    /// [`SocketIoConfig::with_state`].
    pub state: ::http::Extensions,
    /// How long an `emit_with_ack` without a timeout of its own waits for
    /// the client's answer (a socket's, or each socket's of a broadcast);
    /// `None` (the default, as in Node): as long as the socket lives.
    pub ack_timeout: Option<std::time::Duration>,
    /// A handler (connection, event or disconnect) still running after
    /// this long is logged at `warn` with its namespace, socket and event,
    /// and again when it ends, with how long it took: what finds a handler
    /// stuck on a lock or a slow call. `None` (the default): not watched
    /// (a watched handler costs a timer).
    pub slow_handler: Option<std::time::Duration>,
}

/// What every namespace's handlers share: the global state and defaults.
pub(crate) struct HandlerSettings {
    pub(crate) state: ::http::Extensions,
    pub(crate) ack_timeout: Option<std::time::Duration>,
    /// The connections' wire format, for packets encoded once for many
    /// sockets (emits, broadcasts).
    pub(crate) parser: SharedParser,
    /// See [`SocketIoConfig::slow_handler`].
    pub(crate) slow_handler: Option<std::time::Duration>,
}

impl SocketIoConfig {
    /// Speaks `parser` to every client (Node's `parser` option): the
    /// clients must use the same one. [`MsgpackParser`] is
    /// `socket.io-msgpack-parser`'s wire format; the default is JSON.
    ///
    /// ```
    /// use socketio::{MsgpackParser, SocketIoConfig};
    ///
    /// let config = SocketIoConfig::default().with_parser(MsgpackParser);
    /// assert_eq!(config.connection.parser.name(), "msgpack");
    /// ```
    pub fn with_parser(mut self, parser: impl Parser) -> Self {
        self.connection.parser = SharedParser::new(parser);
        self
    }

    /// Adds `value` to the global state (replacing a value of the same
    /// type), for handlers that take [`State<T>`](extract::State). Keep it
    /// cheap to clone: an `Arc`, a connection pool.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use socketio::SocketIoConfig;
    ///
    /// struct Db;
    /// let config = SocketIoConfig::default().with_state(Arc::new(Db));
    /// ```
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }
}

impl std::fmt::Debug for SocketIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoConfig")
            .field("engine", &self.engine)
            .field("connection", &self.connection)
            .field("recovery", &self.recovery)
            .field("max_pending_events", &self.max_pending_events)
            .field("ack_timeout", &self.ack_timeout)
            .field("slow_handler", &self.slow_handler)
            .finish_non_exhaustive()
    }
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            engine: EngineConfig {
                path: "/socket.io/".into(),
                ..EngineConfig::default()
            },
            connection: ConnectionConfig::default(),
            recovery: None,
            adapter: Arc::new(LocalAdapterFactory),
            max_pending_events: 1024,
            state: ::http::Extensions::new(),
            ack_timeout: None,
            slow_handler: None,
        }
    }
}

/// A Socket.IO server. Cheap to clone; all clones share namespaces and
/// sessions. Serve it with a runtime crate's `listen`.
pub struct SocketIo<R: Runtime> {
    engine: EngineServer<R>,
    registry: Arc<Registry>,
}

impl<R: Runtime> Clone for SocketIo<R> {
    fn clone(&self) -> Self {
        SocketIo {
            engine: self.engine.clone(),
            registry: self.registry.clone(),
        }
    }
}

impl<R: Runtime> SocketIo<R> {
    /// A server with no namespace yet: add them with [`SocketIo::on_connection`].
    pub fn new(runtime: R, config: SocketIoConfig) -> Self {
        let registry = Arc::new(Registry::new(
            config.recovery,
            config.adapter,
            Arc::new(runtime.clone()),
            Arc::new(HandlerSettings {
                state: config.state,
                ack_timeout: config.ack_timeout,
                parser: config.connection.parser.clone(),
                slow_handler: config.slow_handler,
            }),
        ));
        let mode = SioMode {
            registry: registry.clone(),
            connection: config.connection,
            max_pending_events: config.max_pending_events,
        };
        SocketIo {
            engine: EngineServer::with_mode(runtime, config.engine, Box::new(mode)),
            registry,
        }
    }

    /// The namespace `nsp`, declared on first use (Node's `io.of(nsp)`).
    pub fn of(&self, nsp: &str) -> NamespaceRef {
        NamespaceRef {
            state: self.registry.of(nsp),
        }
    }

    /// A parent of dynamic namespaces (Node's `io.of(regex)` or
    /// `io.of(fn)`): a client connecting to an undeclared namespace whose
    /// CONNECT `matches` gets a new namespace of that name, which uses the
    /// parent's connection handler and middlewares (then its own). A
    /// broadcast on the parent reaches every child; `label` only names it
    /// in logs. Parents are tried in the order they were added.
    ///
    /// ```
    /// # fn setup<R: socketio::Runtime>(io: &socketio::SocketIo<R>) {
    /// let workspaces = io.dynamic_namespace("/workspace-*", |request| {
    ///     request.namespace().starts_with("/workspace-")
    /// });
    /// workspaces.on_connection(|socket| async move {
    ///     let _ = socket.emit("hello", socket.namespace()).await;
    /// });
    /// # }
    /// ```
    pub fn dynamic_namespace<F>(&self, label: &str, matches: F) -> NamespaceRef
    where
        F: Fn(&ConnectRequest) -> bool + Send + Sync + 'static,
    {
        NamespaceRef {
            state: self.registry.add_parent(label, Arc::new(matches)),
        }
    }

    /// Calls `listener` with every namespace sockets can join: those there
    /// now, then each one as it is created (Node's `new_namespace` event),
    /// dynamic children included (not their parents, which no socket
    /// joins). Each namespace is reported once. For instrumentation, with
    /// [`NamespaceRef::prepend_connection`] and
    /// [`NamespaceRef::on_room_event`]; it runs on the task that creates
    /// the namespace: keep it short.
    ///
    /// ```
    /// # fn setup<R: socketio::Runtime>(io: &socketio::SocketIo<R>) {
    /// io.on_namespace(|namespace| {
    ///     let name = namespace.name().to_owned();
    ///     namespace.prepend_connection(move |socket| {
    ///         println!("{} joined {name}", socket.id());
    ///     });
    /// });
    /// # }
    /// ```
    pub fn on_namespace(&self, listener: impl Fn(NamespaceRef) + Send + Sync + 'static) {
        self.registry.on_namespace(Arc::new(listener));
    }

    /// Declares namespace `nsp` and what to do with each socket that joins it
    /// (`io.of(nsp).on("connection", …)`).
    pub fn on_connection<F, Fut>(&self, nsp: &str, handler: F)
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of(nsp).on_connection(handler);
    }

    /// The main namespace `/` (Node's `io.sockets`). The methods below are
    /// shorthands for it, as Node's `io.emit`, `io.to`, `io.use`, … are.
    pub fn sockets(&self) -> NamespaceRef {
        self.of("/")
    }

    /// A middleware of the main namespace (Node's `io.use`).
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.sockets().use_middleware(middleware);
    }

    /// Emits `event` with one argument to every socket of the main
    /// namespace (Node's `io.emit`).
    pub async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), BroadcastError> {
        self.sockets().emit(event, value).await
    }

    /// A broadcast to every socket of the main namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        self.sockets().broadcast()
    }

    /// A broadcast to the main namespace's sockets in `rooms` (Node's
    /// `io.to` and `io.in`).
    pub fn to(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.sockets().to(rooms)
    }

    /// A broadcast to the main namespace's sockets not in `rooms` (Node's
    /// `io.except`).
    pub fn except(&self, rooms: impl RoomParam) -> BroadcastOperator {
        self.sockets().except(rooms)
    }

    /// A volatile broadcast on the main namespace (Node's `io.volatile`).
    pub fn volatile(&self) -> BroadcastOperator {
        self.sockets().volatile()
    }

    /// A broadcast on the main namespace, compressed or not (Node's
    /// `io.compress`).
    pub fn compress(&self, compress: bool) -> BroadcastOperator {
        self.sockets().compress(compress)
    }

    /// A broadcast to this server's sockets of the main namespace (Node's
    /// `io.local`).
    pub fn local(&self) -> BroadcastOperator {
        self.sockets().local()
    }

    /// A broadcast on the main namespace whose acks are awaited at most
    /// `timeout` (Node's `io.timeout`).
    pub fn timeout(&self, timeout: std::time::Duration) -> BroadcastOperator {
        self.sockets().timeout(timeout)
    }

    /// The main namespace's sockets, on every server of a cluster (Node's
    /// `io.fetchSockets()`).
    pub async fn fetch_sockets(
        &self,
    ) -> Result<Vec<crate::adapter::RemoteSocket>, crate::adapter::AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// The socket `id` of the main namespace, if it is connected to this
    /// server (Node's `io.sockets.sockets.get(id)`).
    pub fn get_socket(&self, id: engineio_proto::Sid) -> Option<SocketRef> {
        self.sockets().get_socket(id)
    }

    /// Closes every connection: each socket disconnects (`forced server
    /// close`) and each session ends after delivering what it buffered.
    pub async fn close(&self) {
        self.engine.close_all().await;
        for namespace in self.registry.all() {
            namespace.adapter().close().await;
        }
    }

    /// Answers a request on the Socket.IO path, whatever its body type
    /// (for embedding in another HTTP stack; see `runtime-tokio`'s tower
    /// service). Requests elsewhere get 404.
    pub fn handle<B: crate::engine::RequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        if self.engine.matches(&request) {
            self.engine.handle(request)
        } else {
            Box::pin(async { crate::engine::not_found() })
        }
    }

    /// Whether a request is for this server (its path is under the
    /// configured path).
    pub fn matches<B>(&self, request: &hyper::Request<B>) -> bool {
        self.engine.matches(request)
    }

    /// The Engine.IO server underneath.
    pub fn engine(&self) -> &EngineServer<R> {
        &self.engine
    }

    /// What the server did since it started: its engine's sessions and
    /// traffic ([`EngineStats`](crate::engine::EngineStats)), and each
    /// namespace's sockets, events, drops and ack timeouts. Cheap: counters
    /// read, nothing locked for long.
    pub fn stats(&self) -> ServerStats {
        let mut namespaces: Vec<NamespaceStats> = self
            .registry
            .namespaces()
            .iter()
            .map(|state| state.counters.snapshot(&state.name, state.socket_count()))
            .collect();
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        ServerStats {
            engine: self.engine.stats(),
            namespaces,
        }
    }

    /// The runtime the server runs on, for tasks and timers of one's own.
    pub fn runtime(&self) -> &R {
        self.engine.runtime()
    }

    /// Every namespace sockets can join now, declared or dynamic (Node's
    /// `io._nsps`); parents of dynamic namespaces are not among them.
    pub fn namespaces(&self) -> Vec<NamespaceRef> {
        self.registry
            .namespaces()
            .into_iter()
            .map(|state| NamespaceRef { state })
            .collect()
    }
}

impl<R: Runtime> HttpHandler for SocketIo<R> {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        self.engine.call(request)
    }

    fn header_timeout(&self) -> std::time::Duration {
        self.engine.header_timeout()
    }
}

/// Starts a Socket.IO connection on each new Engine.IO session.
struct SioMode {
    registry: Arc<Registry>,
    connection: ConnectionConfig,
    max_pending_events: usize,
}

impl<R: Runtime> Mode<R> for SioMode {
    fn start(
        &self,
        shared: &Arc<Shared<R>>,
        session: Session,
        pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
        ws: Option<(WsId, PendingWs)>,
        handshake: Arc<Handshake>,
    ) -> mpsc::Sender<Handoff> {
        let span = tracing::debug_span!("socketio_connection", sid = %session.sid());
        let machine = SioMachine::new(shared.clock.now(), session, &self.connection);
        let connection = Arc::new(MachineHandle::new(machine, shared.clock));
        let (event_tx, event_rx) = mpsc::channel(shared.config.app_queue);
        let task = ConnectionTask {
            registry: self.registry.clone(),
            connection: connection.clone(),
            handshake,
            max_pending: self.max_pending_events,
        };
        shared
            .runtime
            .spawn(Box::pin(tracing::Instrument::instrument(
                task.run(event_rx),
                span,
            )));
        spawn_task(shared, connection, event_tx, pending, ws)
    }
}
