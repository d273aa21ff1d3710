//! Serving accepted connections: what every runtime crate's listener does
//! once it has a connection, written once.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;

use crate::{HttpHandler, RemoteAddr, Runtime};

/// How long a client may take to send a request's headers before its
/// connection is closed (Node's `headersTimeout`: 60 s). The clock runs
/// from when the server starts reading a request, so an idle keep-alive
/// connection is closed after it too.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(60);

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
                let deadline = runtime.clock().now_std() + ACCEPT_BACKOFF;
                runtime.sleep_until(deadline).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        runtime.spawn(Box::pin(serve_connection(
            runtime.clone(),
            io,
            peer,
            handler.clone(),
        )));
    }
}

/// Serves HTTP/1.1 on one accepted connection (`io`, seen through hyper's
/// IO traits) until it closes, upgrades included (WebSockets). Each
/// request carries the peer's address as a [`RemoteAddr`] extension. A
/// client that does not send a request's headers within the handler's
/// [`HttpHandler::header_timeout`] is disconnected.
pub async fn serve_connection<R, I>(runtime: R, io: I, peer: SocketAddr, handler: impl HttpHandler)
where
    R: Runtime,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let header_timeout = handler.header_timeout();
    let service = service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(RemoteAddr(peer));
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.call(request).await) }
    });
    let connection = http1::Builder::new()
        .timer(RuntimeTimer {
            clock: runtime.clock(),
            runtime,
        })
        .header_read_timeout(header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "http connection ended with an error");
    }
}

/// hyper's timer on a [`Runtime`]'s sleeps and clock (taken once per
/// connection: hyper asks the time at every request).
#[derive(Clone)]
struct RuntimeTimer<R> {
    runtime: R,
    clock: crate::Clock,
}

impl<R: Runtime> hyper::rt::Timer for RuntimeTimer<R> {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn now(&self) -> Instant {
        self.clock.now_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SyncSleep(Mutex::new(self.runtime.sleep_until(deadline))))
    }
}

/// A runtime's sleep as hyper wants it: `Sync` too. Only ever polled
/// through `&mut`, so the mutex is never locked.
struct SyncSleep(Mutex<crate::Sleep>);

impl Future for SyncSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().0.get_mut() {
            Ok(sleep) => sleep.as_mut().poll(cx),
            // A panic while polling left it poisoned: treat it as expired.
            Err(_) => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for SyncSleep {}
