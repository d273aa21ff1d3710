//! The Socket.IO server and client API, written once over a small
//! [`Runtime`] trait and runtime-neutral IO; a runtime crate (`runtime-tokio`,
//! `runtime-smol`) supplies the runtime and the listener.
//!
//! It offers the Socket.IO server ([`server`]: namespaces, middlewares,
//! event handlers run in order per socket, serde-typed payloads with binary
//! ([`payload`]), acks, rooms and broadcasts through a cluster-shaped
//! [`adapter`], connection state recovery) and the raw Engine.IO server
//! ([`engine`], what npm's `engine.io` offers), driven by `engineio-proto`
//! and `socketio-proto`.
//!
//! The client ([`client`]) runs natively and in the browser: built for
//! `wasm32-unknown-unknown`, this crate is the client alone, over the
//! browser's `fetch` and `WebSocket` (`client::Browser`); the server and
//! the native IO (hyper, rustls) are left out.

#![forbid(unsafe_code)]
// In the browser the crate is the client alone: helpers it shares with the
// server are partly unused there.
#![cfg_attr(target_arch = "wasm32", allow(dead_code))]

#[cfg(not(target_arch = "wasm32"))]
pub mod adapter;
pub mod client;
#[cfg(not(target_arch = "wasm32"))]
pub mod engine;
#[cfg(not(target_arch = "wasm32"))]
mod extensions;
mod handle;
#[cfg(not(target_arch = "wasm32"))]
mod handshake;
#[cfg(not(target_arch = "wasm32"))]
pub mod http;
#[cfg(not(target_arch = "wasm32"))]
mod http_compression;
#[cfg(not(target_arch = "wasm32"))]
mod io;
mod links;
mod listeners;
mod locks;
pub mod payload;
pub mod runtime;
#[cfg(not(target_arch = "wasm32"))]
pub mod server;
#[cfg(not(target_arch = "wasm32"))]
mod ws;
#[cfg(not(target_arch = "wasm32"))]
mod ws_link;

#[cfg(not(target_arch = "wasm32"))]
pub use extensions::Extensions;
#[cfg(not(target_arch = "wasm32"))]
pub use handshake::{Handshake, RemoteAddr};
#[cfg(not(target_arch = "wasm32"))]
pub use http_compression::HttpCompression;
#[cfg(not(target_arch = "wasm32"))]
pub use io::HyperIo;
pub use runtime::{BoxFuture, ClientRuntime, Clock, DynRuntime, Runtime, Sleep};
#[cfg(not(target_arch = "wasm32"))]
pub use runtime::{ConnectFuture, Stream};
#[cfg(not(target_arch = "wasm32"))]
pub use server::extract;
pub use socketio_proto::recovery::RecoveryConfig;
pub use socketio_proto::{JsonParser, MsgpackParser, PacketDecoder, Parser, SharedParser};
/// The WebSocket reader's entry points for cargo-fuzz (`--cfg fuzzing` only).
#[cfg(all(fuzzing, not(target_arch = "wasm32")))]
#[doc(hidden)]
pub use ws::fuzzing;
#[cfg(not(target_arch = "wasm32"))]
pub use ws::PerMessageDeflate;

/// Everything a parser of one's own needs (see `docs/parsers.md`): the
/// [`Parser`] and [`PacketDecoder`] traits, the packet types they read and
/// write, and the Engine.IO messages packets travel in.
pub mod parser {
    pub use engineio_proto::{Message, Str};
    pub use socketio_proto::msgpack;
    pub use socketio_proto::packet::RESERVED_EVENTS;
    pub use socketio_proto::parser::{JsonParser, PacketDecoder, Parser, SharedParser};
    pub use socketio_proto::{
        AckId, DecodeError, DecoderConfig, EncodedPacket, MsgpackParser, Packet, PacketKind,
    };
}

#[cfg(not(target_arch = "wasm32"))]
pub use adapter::{Adapter, AdapterError, BroadcastOptions, RemoteSocket};
#[cfg(not(target_arch = "wasm32"))]
pub use engine::{
    AllowRequest, ConnectionError, ConnectionErrorHook, Cookie, Cors, CorsOrigin, EngineConfig,
    EngineServer, EngineSocket, GenerateId, HeadersHook, SessionClosed,
};
pub use payload::{Args, Binary, Data, FromPayload, Payload, PayloadError, TypedEvent};
#[cfg(not(target_arch = "wasm32"))]
pub use server::{
    AckError, AckSender, AckStream, BroadcastError, BroadcastOperator, ConnectError,
    ConnectRequest, EmitError, EventError, NamespaceRef, NamespaceStats, RoomEvent, RoomParam,
    ServerAck, ServerStats, SocketIo, SocketIoConfig, SocketRef,
};

#[cfg(not(target_arch = "wasm32"))]
use std::future::Future;
#[cfg(not(target_arch = "wasm32"))]
use std::pin::Pin;

/// Something that answers HTTP requests: what a runtime crate's listener
/// serves. [`engine::EngineServer`] and [`SocketIo`] are.
#[cfg(not(target_arch = "wasm32"))]
pub trait HttpHandler: Clone + Send + Sync + 'static {
    /// Answers one request.
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = engine::HttpReply> + Send>>;

    /// How long a client may take to send a request's headers before the
    /// listener closes its connection (see [`http::DEFAULT_HEADER_TIMEOUT`]).
    fn header_timeout(&self) -> std::time::Duration {
        http::DEFAULT_HEADER_TIMEOUT
    }
}

#[cfg(not(target_arch = "wasm32"))]
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

    fn header_timeout(&self) -> std::time::Duration {
        self.config().header_timeout
    }
}
