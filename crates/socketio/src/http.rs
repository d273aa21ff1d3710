//! Serving accepted connections: what every runtime crate's listener does
//! once it has a connection, written once.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::future::Future;
use std::time::Instant;

use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::{HttpHandler, RemoteAddr, Runtime};

/// How long a listener pauses after a transient accept error.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Whether an accept error is worth waiting out ([`ACCEPT_BACKOFF`]) rather
/// than ending the listener: a connection reset before it was accepted, or
/// the process out of file descriptors (EMFILE, ENFILE) under load.
pub fn is_transient_accept_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || error
        .raw_os_error()
        .is_some_and(|code| code == 23 || code == 24)
}

/// A runtime crate's `serve`: takes connections from `accept` (the
/// runtime's listener, with the stream set up and seen through hyper's IO
/// traits) and serves each on a task of `runtime`, until an accept error
/// that is not transient.
pub async fn accept_and_serve<R, A, Fut, I>(
    runtime: R,
    mut accept: A,
    handler: impl HttpHandler,
) -> io::Result<()>
where
    R: Runtime,
    A: FnMut() -> Fut,
    Fut: Future<Output = io::Result<(I, SocketAddr)>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    loop {
        let (io, peer) = match accept().await {
            Ok(accepted) => accepted,
            Err(error) if is_transient_accept_error(&error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%error, "accept failed");
                runtime.sleep_until(Instant::now() + ACCEPT_BACKOFF).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        runtime.spawn(Box::pin(serve_connection(io, peer, handler.clone())));
    }
}

/// Serves HTTP/1.1 on one accepted connection (`io`, seen through hyper's
/// IO traits) until it closes, upgrades included (WebSockets). Each
/// request carries the peer's address as a [`RemoteAddr`] extension.
pub async fn serve_connection<I>(io: I, peer: SocketAddr, handler: impl HttpHandler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(RemoteAddr(peer));
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.call(request).await) }
    });
    let connection = http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "http connection ended with an error");
    }
}
