//! Runs the `socketio` crate on tokio: [`TokioRuntime`], the server's
//! [`listen`] and the client's [`io`] / [`connect`].
//!
//! This crate holds no protocol logic: it spawns tasks, sleeps, accepts and
//! opens TCP connections and hands them to hyper, which calls the handler.
//! To mount the server inside your own hyper or axum application instead,
//! use [`SocketIoService`] or [`SocketIoLayer`].

#![forbid(unsafe_code)]

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Instant;

use hyper_util::rt::TokioIo;
use socketio::client::{ClientError, ClientOptions, ClientSocket, ConnectError};
use socketio::{BoxFuture, ClientRuntime, ConnectFuture, HttpHandler, Runtime};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use socketio;

mod tower;
pub use crate::tower::{SocketIoAttached, SocketIoLayer, SocketIoService};

/// The tokio runtime, as the `socketio` crate sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture) {
        tokio::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }
}

impl ClientRuntime for TokioRuntime {
    type Tcp = Compat<TcpStream>;

    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(stream.compat())
        })
    }
}

/// A client socket for the namespace of `url`, not yet connected: add
/// listeners, then `connect()` (see [`socketio::client::io`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use runtime_tokio::socketio::client::ClientOptions;
/// use runtime_tokio::socketio::Data;
///
/// let socket = runtime_tokio::io("http://127.0.0.1:3000/", ClientOptions::default())?;
/// socket.on("news", |_, Data(news): Data<String>, _| async move { println!("{news}") });
/// socket.connect().await?;
/// socket.emit("hello", "world")?;
/// # Ok(()) }
/// ```
pub fn io(url: &str, options: ClientOptions) -> Result<ClientSocket, ClientError> {
    socketio::client::io(TokioRuntime, url, options)
}

/// A connected client socket for the namespace of `url` (see
/// [`socketio::client::connect`]).
pub async fn connect(url: &str, options: ClientOptions) -> Result<ClientSocket, ConnectError> {
    socketio::client::connect(TokioRuntime, url, options).await
}

/// Binds `addr` and serves `handler` until an accept error that is not
/// transient.
pub async fn listen(addr: impl ToSocketAddrs, handler: impl HttpHandler) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    serve(listener, handler).await
}

/// Serves `handler` on connections accepted from `listener`.
pub async fn serve(listener: TcpListener, handler: impl HttpHandler) -> io::Result<()> {
    let listener = &listener;
    let accept = move || async move {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok((TokioIo::new(stream), peer))
    };
    socketio::http::accept_and_serve(TokioRuntime, accept, handler).await
}

/// The code of `docs/server.md` compiles and runs as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/server.md")]
pub struct ServerGuide;

/// The code of `docs/parsers.md` compiles and runs as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/parsers.md")]
pub struct ParsersGuide;

/// The code of `docs/client.md` compiles and runs as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/client.md")]
pub struct ClientGuide;
