//! The Socket.IO client: Node's `io(url, options)`, its Manager and its
//! namespace sockets, on any runtime that can open TCP connections
//! ([`crate::ClientRuntime`]), and in the browser (`Browser`, on
//! `wasm32-unknown-unknown`; see `docs/browser.md`).
//!
//! A [`Manager`] is one connection to a server (Engine.IO over
//! long-polling, WebSocket, or polling upgraded to WebSocket, over TLS for
//! `https`/`wss`); it reconnects with backoff when the connection drops.
//! Each [`ClientSocket`] is one namespace multiplexed over it: listeners
//! start in the order events arrive and run side by side, emits wait in a
//! bounded buffer while disconnected, acks are awaited with a timeout (or
//! retried, with `retries`), the server's ack requests are answered from
//! listeners, and connection state recovery restores the session when the
//! server allows it. The protocol is the
//! `socketio-proto` client machine; this module only drives it.
//!
//! ```no_run
//! # async fn run<R: socketio::ClientRuntime>(runtime: R) -> Result<(), Box<dyn std::error::Error>> {
//! use socketio::client::{self, ClientOptions};
//! use socketio::payload::{Data, Payload};
//!
//! let socket = client::io(runtime, "http://127.0.0.1:3000/chat", ClientOptions::default())?;
//! socket.on("message", |_, Data(text): Data<String>, _| async move {
//!     println!("{text}");
//! });
//! socket.connect().await?;
//! socket.emit("message", "hello")?;
//! let answer = socket
//!     .emit_with_ack("sum", Payload::args(&(1, 2))?, Some(std::time::Duration::from_secs(5)))
//!     .await?;
//! assert_eq!(answer.first::<u32>()?, 3);
//! # Ok(()) }
//! ```

#[cfg(target_arch = "wasm32")]
pub(crate) mod browser;
mod driver;
mod handlers;
mod options;
mod socket;
#[cfg(not(target_arch = "wasm32"))]
mod transport;
// In the browser, `fetch` and `WebSocket` carry what native IO carries.
#[cfg(target_arch = "wasm32")]
use browser as transport;

use std::sync::Arc;

use engineio_proto::Str;
use socketio_proto::client::ClientConnection;

#[cfg(target_arch = "wasm32")]
pub use browser::Browser;
pub use engineio_proto::Transports;
pub use options::{AuthFuture, ClientError, ClientOptions};
/// The TLS library, for [`ClientOptions::tls_config`].
#[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
pub use rustls;
pub use socket::{AckError, AckSender, ClientSocket, ConnectError, EmitError};
pub use socketio_proto::client::DisconnectReason;

use crate::locks::lock;
use crate::runtime::ClientRuntime;
use driver::{Jitter, Shared};
use options::{fixed_auth, Auth, Endpoint};
use transport::ClientIo;

/// Opens nothing yet: makes the Manager of `url` and the socket of the
/// namespace its path names (Node's `io(url, { autoConnect: false })`).
/// Add listeners, then call [`ClientSocket::connect`].
pub fn io<R: ClientRuntime>(
    runtime: R,
    url: &str,
    options: ClientOptions,
) -> Result<ClientSocket, ClientError> {
    let (endpoint, nsp) = Endpoint::parse(url, &options)?;
    let manager = Manager::with_endpoint(runtime, endpoint, &options);
    Ok(manager.socket_with(&nsp, options.auth.clone()))
}

/// [`io`], then [`ClientSocket::connect`]: a connected socket. Events that
/// arrive before listeners are added are dropped; use [`io`] to add them
/// first.
pub async fn connect<R: ClientRuntime>(
    runtime: R,
    url: &str,
    options: ClientOptions,
) -> Result<ClientSocket, ConnectError> {
    let socket = io(runtime, url, options)?;
    socket.connect().await?;
    Ok(socket)
}

/// What happens to a [`Manager`]'s connection (Node's Manager events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManagerEvent {
    /// The connection opened (Node's `open`).
    Open,
    /// The connection closed, with Node's reason (`"transport close"`,
    /// `"ping timeout"`, …); sockets reconnect if allowed.
    Close(&'static str),
    /// A reconnection attempt starts, numbered from 1.
    ReconnectAttempt(u32),
    /// Reconnected after this many attempts.
    Reconnect(u32),
    /// Out of attempts; the client stays disconnected.
    ReconnectFailed,
}

/// One connection to a server, shared by the namespace sockets made from it
/// (Node's `Manager`). Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    pub(crate) handle: Arc<ClientHandle>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("host", &self.handle.shared.endpoint.host_header())
            .finish()
    }
}

/// Keeps the client alive: when the last handle (every [`Manager`] and
/// [`ClientSocket`] clone) is dropped, the client closes.
pub(crate) struct ClientHandle {
    pub(crate) shared: Arc<Shared>,
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        close(&self.shared);
    }
}

fn close(shared: &Shared) {
    shared.machine.apply(|state, now| {
        state.closed = true;
        state.conn.close(now);
    });
}

/// The runtime as the client's driver uses it.
fn client_io<R: ClientRuntime>(runtime: &R) -> Arc<dyn ClientIo> {
    #[cfg(not(target_arch = "wasm32"))]
    return Arc::new(transport::RuntimeIo(runtime.clone()));
    #[cfg(target_arch = "wasm32")]
    return browser::Platform::client_io(runtime);
}

impl Manager {
    /// A Manager for the server of `url` (its path is ignored: namespaces
    /// are chosen with [`Manager::socket`]). Connects once a socket does.
    pub fn new<R: ClientRuntime>(
        runtime: R,
        url: &str,
        options: &ClientOptions,
    ) -> Result<Manager, ClientError> {
        let (endpoint, _) = Endpoint::parse(url, options)?;
        Ok(Manager::with_endpoint(runtime, endpoint, options))
    }

    fn with_endpoint<R: ClientRuntime>(
        runtime: R,
        endpoint: Endpoint,
        options: &ClientOptions,
    ) -> Manager {
        let conn = ClientConnection::new(options.protocol.clone(), Jitter);
        let (shared, inputs) = Shared::new(
            client_io(&runtime),
            endpoint,
            conn,
            options.protocol.timeout,
        );
        let span = tracing::debug_span!("socketio_client", host = %shared.endpoint.host_header());
        let (deliveries, delivered) = futures_channel::mpsc::channel(driver::EVENT_QUEUE);
        runtime.spawn(Box::pin(tracing::Instrument::instrument(
            driver::run(shared.clone(), inputs, deliveries),
            span.clone(),
        )));
        let handle = Arc::new(ClientHandle { shared });
        let listeners = handlers::run(
            Arc::downgrade(&handle),
            delivered,
            options.max_pending_events,
        );
        runtime.spawn(Box::pin(tracing::Instrument::instrument(listeners, span)));
        Manager { handle }
    }

    /// The socket of namespace `nsp` on this connection, without auth
    /// (the same socket each time for the same namespace).
    pub fn socket(&self, nsp: &str) -> ClientSocket {
        self.socket_with(nsp, Auth::None)
    }

    /// The socket of `nsp`, sending `auth` (a JSON object) with CONNECT.
    pub fn socket_with_auth<T: serde::Serialize + ?Sized>(
        &self,
        nsp: &str,
        auth: &T,
    ) -> Result<ClientSocket, ClientError> {
        Ok(self.socket_with(nsp, fixed_auth(auth)?))
    }

    fn socket_with(&self, nsp: &str, auth: Auth) -> ClientSocket {
        let nsp = if nsp.starts_with('/') {
            Str::from(nsp)
        } else {
            Str::from(format!("/{nsp}"))
        };
        if let Some(inner) = self.handle.shared.machine.lock().sockets.get(&nsp) {
            return ClientSocket {
                handle: self.handle.clone(),
                inner: inner.clone(),
                compress: true,
            };
        }
        ClientSocket::create(self.handle.clone(), nsp, auth)
    }

    /// Adds a listener of the connection's events (open, close,
    /// reconnection attempts). It runs on the client's task: keep it short
    /// and spawn anything slow.
    pub fn on_event<F>(&self, listener: F)
    where
        F: Fn(&ManagerEvent) + Send + Sync + 'static,
    {
        lock(&self.handle.shared.manager_listeners).push(Arc::new(listener));
    }

    /// Closes the connection and every socket on it, for good. The
    /// goodbye (DISCONNECT per namespace, then CLOSE) goes out in the
    /// background; await [`Manager::closed`] to know it has.
    pub fn close(&self) {
        close(&self.handle.shared);
    }

    /// Completes once the client has stopped after [`Manager::close`]: its
    /// goodbye sent and its requests finished, or given up after a short
    /// grace period (2 s). For programs that exit right after closing.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.handle.shared.closed()
    }
}
