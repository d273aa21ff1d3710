//! Mounting a [`SocketIo`] server inside another HTTP stack (hyper, axum,
//! anything built on tower): a [`Service`] that answers the Socket.IO path,
//! and a [`Layer`] that answers it in front of an inner service and passes
//! every other request through.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use socketio::engine::RequestBody;
use socketio::{Runtime, SocketIo};
use tower_layer::Layer;
use tower_service::Service;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A tower service answering Socket.IO requests (others get 404). Mount it
/// on the Socket.IO path, e.g. axum's
/// `Router::new().route_service("/socket.io/", SocketIoService::new(io))`.
#[derive(Clone)]
pub struct SocketIoService<R: Runtime> {
    io: SocketIo<R>,
}

impl<R: Runtime> SocketIoService<R> {
    /// Serves `io`.
    pub fn new(io: SocketIo<R>) -> Self {
        SocketIoService { io }
    }
}

impl<R: Runtime, B: RequestBody> Service<hyper::Request<B>> for SocketIoService<R> {
    type Response = hyper::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let reply = self.io.handle(request);
        Box::pin(async move { Ok(reply.await) })
    }
}

/// A tower layer that answers Socket.IO requests and hands every other
/// request to the service it wraps (Node's `io.attach(httpServer)`).
#[derive(Clone)]
pub struct SocketIoLayer<R: Runtime> {
    io: SocketIo<R>,
}

impl<R: Runtime> SocketIoLayer<R> {
    /// Puts `io` in front of the inner service.
    pub fn new(io: SocketIo<R>) -> Self {
        SocketIoLayer { io }
    }
}

impl<R: Runtime, S> Layer<S> for SocketIoLayer<R> {
    type Service = SocketIoAttached<R, S>;

    fn layer(&self, inner: S) -> Self::Service {
        SocketIoAttached {
            io: self.io.clone(),
            inner,
        }
    }
}

/// The service [`SocketIoLayer`] builds.
#[derive(Clone)]
pub struct SocketIoAttached<R: Runtime, S> {
    io: SocketIo<R>,
    inner: S,
}

impl<R, S, B, ResBody> Service<hyper::Request<B>> for SocketIoAttached<R, S>
where
    R: Runtime,
    S: Service<hyper::Request<B>, Response = hyper::Response<ResBody>>,
    S::Future: Send + 'static,
    B: RequestBody,
{
    type Response = hyper::Response<Either<Full<Bytes>, ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        if self.io.matches(&request) {
            let reply = self.io.handle(request);
            Box::pin(async move { Ok(reply.await.map(Either::Left)) })
        } else {
            let inner = self.inner.call(request);
            Box::pin(async move { Ok(inner.await?.map(Either::Right)) })
        }
    }
}
