//! Sans-IO Socket.IO v5 over [`engineio_proto`]: the packet codec with binary
//! attachments, the server and client connection state machines (namespaces,
//! acks, connection state recovery) and a rooms index. No IO, no async, no
//! clock; `no_std` + `alloc` without the default `std` feature.
//!
//! Every machine is driven like the Engine.IO ones: one `Input` (the
//! Engine.IO machine's own: the connection forwards it) or one command,
//! drain `poll_output` until `None`, sleep until the next input or
//! `poll_timeout`, then feed `Input::Timeout`.
//!
//! ```
//! use engineio_proto::server::{self as eio, Opening, Server, ServerConfig};
//! use engineio_proto::{CountingSidGenerator, Frame, Instant, Sid, Str, WsId};
//! use socketio_proto::server::{Connection, ConnectionConfig, Input, Output};
//!
//! let now = Instant::ZERO;
//! let mut engine = Server::new(ServerConfig::default(), CountingSidGenerator::default());
//! let session = engine.open_session(now, Opening::WebSocket(WsId(1)));
//! let mut conn = Connection::new(now, session, &ConnectionConfig::default());
//!
//! // The client joins the main namespace with an auth object.
//! let frame = Frame::Text(Str::from(r#"40{"token":"abc"}"#));
//! conn.handle_input(now, Input::WsFrame { ws: WsId(1), frame });
//! let mut frames = Vec::new();
//! while let Some(output) = conn.poll_output() {
//!     match output {
//!         // A CONNECT is a token: run middlewares, then accept or reject.
//!         Output::Connect { nsp, auth } => {
//!             assert_eq!(auth.as_deref(), Some(r#"{"token":"abc"}"#));
//!             conn.accept(now, &nsp, Sid::parse("socket1").unwrap(), None).unwrap();
//!         }
//!         Output::Transport(eio::Output::WsSend { frame: Frame::Text(text), .. }) => {
//!             frames.push(text.to_string())
//!         }
//!         _ => {}
//!     }
//! }
//! // The Engine.IO handshake, then the Socket.IO CONNECT reply.
//! assert!(frames[0].starts_with("0{"));
//! assert_eq!(frames[1], r#"40{"sid":"socket1"}"#);
//! ```

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod ack;
pub mod backoff;
pub mod client;
pub mod msgpack;
pub mod packet;
pub mod parser;
pub mod recovery;
pub mod rooms;
pub mod server;

pub use ack::AckError;
pub use msgpack::MsgpackParser;
pub use packet::{AckId, DecodeError, Decoder, DecoderConfig, EncodedPacket, Packet, PacketKind};
pub use parser::{JsonParser, PacketDecoder, Parser, SharedParser};
