//! The Socket.IO server: namespaces, sockets, events and acks, on the
//! Engine.IO driver of [`crate::engine`].
//!
//! # Theory of operation
//!
//! Each Engine.IO session's task drives a `socketio_proto` connection
//! machine. What the machine tells the application (a namespace CONNECT, an
//! event, an ack, a disconnect) goes, in order, to one *connection task* per
//! client, which runs the namespace's connection handler and the sockets'
//! event handlers one at a time: the events of a socket are handled in order.
//! Handlers talk back (emit, ack, disconnect) through the session task's
//! bounded input queue.

mod broadcast;
mod machine;
mod middleware;
mod namespace;
mod recovery;
mod registry;
mod socket;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use engineio_proto::server::{HttpResponse, Session};
use engineio_proto::{RequestId, Str, WsId};
use futures_channel::{mpsc, oneshot};
use futures_util::{SinkExt, StreamExt};
use socketio_proto::recovery::{is_recoverable, RecoveryConfig};
use socketio_proto::server::{ConnectionConfig, Output};
use socketio_proto::{Packet, PacketKind};

use crate::adapter::{AdapterFactory, LocalAdapterFactory};
use crate::engine::random_sid;
use crate::engine::session::{spawn_task, Command, Input, INPUT_QUEUE};
use crate::engine::websocket::PendingWs;
use crate::engine::{EngineConfig, EngineServer, HttpReply, Mode, Shared};
use crate::handshake::Handshake;
pub(crate) use crate::locks::lock;
pub use crate::payload::{Payload, PayloadError};
use crate::runtime::Runtime;
use crate::HttpHandler;
pub use broadcast::{AckAnswer, AckStream, BroadcastError, BroadcastOperator};
pub use machine::AckError;
pub(crate) use machine::SioCommand;
use machine::SioMachine;
pub use middleware::{ConnectError, ConnectRequest};
pub(crate) use namespace::NamespaceState;
pub use namespace::{NamespaceRef, ServerAck};
use registry::Registry;
use socket::SocketInner;
pub use socket::{AckSender, Disconnected, EmitError, EventError, SocketRef};

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
}

impl std::fmt::Debug for SocketIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoConfig")
            .field("engine", &self.engine)
            .field("connection", &self.connection)
            .field("recovery", &self.recovery)
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
        ));
        let mode = SioMode {
            registry: registry.clone(),
            connection: config.connection,
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

    /// Declares namespace `nsp` and what to do with each socket that joins it
    /// (`io.of(nsp).on("connection", …)`).
    pub fn on_connection<F, Fut>(&self, nsp: &str, handler: F)
    where
        F: Fn(SocketRef) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.of(nsp).on_connection(handler);
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
}

impl<R: Runtime> Mode<R> for SioMode {
    fn start(
        &self,
        shared: &Arc<Shared<R>>,
        session: Session,
        pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
        ws: Option<(WsId, PendingWs)>,
        handshake: Arc<Handshake>,
    ) -> mpsc::Sender<Input> {
        let span = tracing::debug_span!("socketio_connection", sid = %session.sid());
        let machine = SioMachine::new(shared.clock.now(), session, &self.connection);
        let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(shared.config.app_queue);
        let task = ConnectionTask {
            registry: self.registry.clone(),
            commands: input_tx.clone(),
            sockets: HashMap::new(),
            handshake,
        };
        shared
            .runtime
            .spawn(Box::pin(tracing::Instrument::instrument(
                task.run(event_rx),
                span,
            )));
        spawn_task(shared, machine, input_tx, input_rx, event_tx, pending, ws)
    }
}

/// Runs the application side of one client connection.
struct ConnectionTask {
    registry: Arc<Registry>,
    commands: mpsc::Sender<Input>,
    sockets: HashMap<Str, SocketRef>,
    handshake: Arc<Handshake>,
}

impl ConnectionTask {
    async fn run(mut self, mut events: mpsc::Receiver<Output>) {
        while let Some(event) = events.next().await {
            match event {
                // Boxed, as `leave` below: the task's future is as large as
                // its largest await, and this one task per connection is
                // per-connection memory; connects and leaves are rare.
                Output::Connect { nsp, auth } => Box::pin(self.connect(nsp, auth)).await,
                Output::Event {
                    nsp,
                    data,
                    attachments,
                    ack,
                } => {
                    let Some(socket) = self.sockets.get(&nsp).cloned() else {
                        continue;
                    };
                    let Some((name, payload)) = Payload::split_event(&data, attachments) else {
                        continue;
                    };
                    // Boxed too: the allocation costs less than keeping
                    // the largest handler chain inline for every
                    // connection's whole life.
                    Box::pin(socket.dispatch(name, payload, ack)).await;
                }
                Output::Disconnect { nsp, reason } => {
                    tracing::debug!(%nsp, reason = reason.as_node_str(), "socket disconnected");
                    if let Some(socket) = self.sockets.remove(&nsp) {
                        Box::pin(self.leave(socket, reason.as_node_str(), is_recoverable(&reason)))
                            .await;
                    }
                }
                Output::Closed => break,
                // Acks of server emits and their timeouts have no API yet.
                _ => {}
            }
        }
        // The connection is gone: no socket of it may stay registered.
        let sockets: Vec<SocketRef> = self.sockets.drain().map(|(_, socket)| socket).collect();
        for socket in sockets {
            Box::pin(self.leave(socket, "transport close", true)).await;
        }
    }

    /// A socket left: its handlers run, then an emptied dynamic namespace
    /// goes away.
    async fn leave(&self, socket: SocketRef, reason: &'static str, recoverable: bool) {
        socket.left(reason, recoverable).await;
        if let Some(namespace) = socket.inner.namespace.upgrade() {
            self.registry.remove_if_empty(&namespace);
        }
    }

    async fn connect(&mut self, nsp: Str, auth: Option<Str>) {
        let auth = auth.unwrap_or_else(|| Str::from_static("{}"));
        let request = ConnectRequest {
            nsp: nsp.clone(),
            auth: auth.clone(),
            handshake: self.handshake.clone(),
        };
        let Some(namespace) = self.registry.lookup(&request) else {
            tracing::debug!(%nsp, "connect to an unknown namespace refused");
            let data = Str::from_static(r#"{"message":"Invalid namespace"}"#);
            self.send(SioCommand::Reject { nsp, data }).await;
            return;
        };
        let restored = namespace.recovery.as_ref().and_then(|r| r.restore(&auth));
        let recovered = restored.is_some();
        let (id, pid, rooms, missed, data) = match restored {
            // A recovered session skips the middlewares, as Node's default.
            Some(session) => (
                session.sid,
                Some(session.pid),
                session.rooms,
                session.missed,
                session.data,
            ),
            None => {
                let middlewares = namespace.middlewares();
                for middleware in middlewares {
                    if let Err(error) = middleware(request.clone()).await {
                        tracing::debug!(%nsp, ?error, "connect refused by a middleware");
                        let data = error.to_json();
                        self.send(SioCommand::Reject { nsp, data }).await;
                        // A refused client must not leave a dynamic namespace behind.
                        self.registry.remove_if_empty(&namespace);
                        return;
                    }
                }
                let pid = namespace.recovery.as_ref().map(|_| recovery::new_pid());
                let data = serde_json::Value::Null;
                (random_sid(), pid, Vec::new(), Vec::new(), data)
            }
        };
        self.send(SioCommand::Accept {
            nsp: nsp.clone(),
            sid: id,
            pid: pid.clone(),
        })
        .await;
        let socket = SocketRef {
            inner: Arc::new(SocketInner::new(
                nsp.clone(),
                id,
                pid,
                recovered,
                auth,
                data,
                self.handshake.clone(),
                self.commands.clone(),
                Arc::downgrade(&namespace),
            )),
        };
        namespace.add(&socket);
        tracing::debug!(%nsp, socket = %id, recovered, "socket connected");
        self.registry.keep(&namespace);
        for room in rooms {
            socket.join(&room);
        }
        // What the client missed while away, in order, before anything new.
        for packet in missed {
            let event = Packet {
                attachments: packet.attachments,
                ..Packet::new(PacketKind::Event, nsp.clone(), Some(packet.data))
            };
            self.send(SioCommand::Emit {
                nsp: nsp.clone(),
                packet: event.encode(),
                volatile: false,
            })
            .await;
        }
        self.sockets.insert(nsp, socket.clone());
        let handler = namespace.connection_handler();
        if let Some(handler) = handler {
            handler(socket).await;
        }
    }

    async fn send(&mut self, command: SioCommand) {
        let _ = self
            .commands
            .send(Input::Command(Command::Sio(command)))
            .await;
    }
}
