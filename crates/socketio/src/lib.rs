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

#![forbid(unsafe_code)]

pub mod adapter;
pub mod client;
pub mod engine;
mod extensions;
mod handle;
mod handshake;
pub mod http;
mod http_compression;
mod io;
mod listeners;
mod locks;
pub mod payload;
pub mod runtime;
pub mod server;
mod ws;
mod ws_link;

pub use extensions::Extensions;
pub use handshake::{Handshake, RemoteAddr};
pub use http_compression::HttpCompression;
pub use io::HyperIo;
pub use runtime::{
    BoxFuture, ClientRuntime, Clock, ConnectFuture, DynRuntime, Runtime, Sleep, Stream,
};
pub use server::extract;
pub use socketio_proto::recovery::RecoveryConfig;
pub use socketio_proto::{JsonParser, MsgpackParser, PacketDecoder, Parser, SharedParser};
/// The WebSocket reader's entry points for cargo-fuzz (`--cfg fuzzing` only).
#[cfg(fuzzing)]
#[doc(hidden)]
pub use ws::fuzzing;
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

pub use adapter::{Adapter, AdapterError, BroadcastOptions, RemoteSocket};
pub use engine::{
    AllowRequest, ConnectionError, ConnectionErrorHook, Cookie, Cors, CorsOrigin, EngineConfig,
    EngineServer, EngineSocket, GenerateId, HeadersHook, SessionClosed,
};
pub use payload::{Args, Binary, Data, FromPayload, Payload, PayloadError, TypedEvent};
pub use server::{
    AckError, AckSender, AckStream, BroadcastError, BroadcastOperator, ConnectError,
    ConnectRequest, EmitError, EventError, NamespaceRef, NamespaceStats, RoomEvent, RoomParam,
    ServerAck, ServerStats, SocketIo, SocketIoConfig, SocketRef,
};

use std::future::Future;
use std::pin::Pin;

/// Something that answers HTTP requests: what a runtime crate's listener
/// serves. [`engine::EngineServer`] and [`SocketIo`] are.
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
