//! Runs the `socketio` crate on smol: [`SmolRuntime`], the server's
//! [`listen`] and the client's [`io`] / [`connect`].
//!
//! Like `runtime-tokio`, this crate holds no protocol logic: it spawns
//! tasks on smol's global executor, sleeps with `async-io` timers, accepts
//! and opens TCP connections, and hands connections to the HTTP code of the
//! `socketio` crate.
//!
//! ```no_run
//! use runtime_smol::socketio::{SocketIo, SocketIoConfig};
//! use runtime_smol::SmolRuntime;
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let io = SocketIo::new(SmolRuntime, SocketIoConfig::default());
//!         io.on_connection("/", |socket| async move {
//!             socket.on("ping", |socket: socketio::SocketRef| async move {
//!                 let _ = socket.emit("pong", &()).await;
//!             });
//!         });
//!         runtime_smol::listen("127.0.0.1:3000", io).await
//!     })
//! }
//! ```

#![forbid(unsafe_code)]

use std::io;
use std::time::Instant;

use smol::net::{AsyncToSocketAddrs, TcpListener, TcpStream};
use smol_hyper::rt::FuturesIo;
use socketio::client::{ClientError, ClientOptions, ClientSocket, ConnectError};
use socketio::{BoxFuture, ClientRuntime, ConnectFuture, HttpHandler, Runtime, Sleep};

pub use socketio;

/// The smol runtime (its global executor), as the `socketio` crate sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture) {
        smol::spawn(task).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

impl ClientRuntime for SmolRuntime {
    type Tcp = TcpStream;

    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })
    }
}

/// A client socket for the namespace of `url`, not yet connected: add
/// listeners, then `connect()` (see [`socketio::client::io`]).
pub fn io(url: &str, options: ClientOptions) -> Result<ClientSocket, ClientError> {
    socketio::client::io(SmolRuntime, url, options)
}

/// A connected client socket for the namespace of `url` (see
/// [`socketio::client::connect`]).
pub async fn connect(url: &str, options: ClientOptions) -> Result<ClientSocket, ConnectError> {
    socketio::client::connect(SmolRuntime, url, options).await
}

/// Binds `addr` and serves `handler` until an accept error that is not
/// transient.
pub async fn listen(addr: impl AsyncToSocketAddrs, handler: impl HttpHandler) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve(listener, handler).await
}

/// Serves `handler` on connections accepted from `listener`.
pub async fn serve(listener: TcpListener, handler: impl HttpHandler) -> io::Result<()> {
    let listener = &listener;
    let accept = move || async move {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((FuturesIo::new(stream), peer))
    };
    socketio::http::accept_and_serve(SmolRuntime, accept, handler).await
}

/// The code of `docs/runtimes.md` compiles as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/runtimes.md")]
pub struct RuntimesGuide;
