//! The Socket.IO server and client API, written once over a small
//! [`Runtime`] trait and runtime-neutral IO; a runtime crate (`runtime-tokio`,
//! `runtime-smol`) supplies the runtime and the listener.
//!
//! Today it offers the raw Engine.IO server ([`engine`], what npm's
//! `engine.io` offers) and a first Socket.IO server ([`server`]: namespaces,
//! event handlers run in order per socket, emits, acks), driven by
//! `engineio-proto` and `socketio-proto`.

#![forbid(unsafe_code)]

pub mod engine;
mod handshake;
mod io;
mod locks;
pub mod runtime;
pub mod server;

pub use handshake::{Handshake, RemoteAddr};
pub use io::HyperIo;
pub use runtime::{BoxFuture, Clock, Runtime, Sleep};
pub use socketio_proto::recovery::RecoveryConfig;

pub use engine::{AllowRequest, EngineConfig, EngineServer, EngineSocket, SessionClosed};
pub use server::{
    AckError, AckSender, AckStream, BroadcastOperator, ConnectError, ConnectRequest, NamespaceRef,
    Payload, SocketIo, SocketIoConfig, SocketRef,
};

use std::future::Future;
use std::pin::Pin;

/// Something that answers HTTP requests: what a runtime crate's listener
/// serves. [`engine::EngineServer`] is one; [`Router`] combines several.
pub trait HttpHandler: Clone + Send + Sync + 'static {
    /// Answers one request.
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = engine::HttpReply> + Send>>;
}

impl<R: Runtime> HttpHandler for engine::EngineServer<R> {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = engine::HttpReply> + Send>> {
        if self.matches(&request) {
            self.handle(request)
        } else {
            Box::pin(async { engine::not_found() })
        }
    }
}
