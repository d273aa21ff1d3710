//! Sans-IO Engine.IO v4: packet codecs and the server and client session state
//! machines, with no IO, no async, no clock and no threads.
//!
//! Everything that can move time takes `now` as an [`Instant`] the caller
//! maps from its own clock; session ids come from a [`SidGenerator`] the
//! caller supplies. The crate is `no_std` + `alloc` (disable the default `std`
//! feature), so it runs in a game loop, on an embedded device, in a WASM page
//! or under a simulator as well as under tokio or smol.
//!
//! # The run loop
//!
//! Every state machine here has the same shape: feed it what happened as
//! one `Input` through `handle_input` (a request, a WebSocket frame, a
//! transport closing, or [`Input::Timeout`](server::Input::Timeout)), or a
//! command of the application (`send`, `close`); drain
//! [`poll_output`](server::Session::poll_output) until `None`; read
//! [`poll_timeout`](server::Session::poll_timeout), and sleep until the next
//! input or that deadline. Each machine's timers live in one
//! [`TimerTable`] keyed by its own `Timer` enum.
//!
//! ```
//! use engineio_proto::server::{Opening, Output, Server, ServerConfig};
//! use engineio_proto::{CountingSidGenerator, Instant, RequestId};
//!
//! let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
//! let now = Instant::ZERO;
//! // A handshake GET arrived; the driver gave it request id 1.
//! let mut session = server.open_session(now, Opening::Polling(RequestId(1)));
//! let mut handshake = None;
//! while let Some(output) = session.poll_output() {
//!     if let Output::Respond { request, response } = output {
//!         assert_eq!(request, RequestId(1));
//!         handshake = Some(response.body);
//!     }
//! }
//! assert!(handshake.unwrap().starts_with(b"0{\"sid\":"));
//! // The first PING is due `pingInterval` after the handshake.
//! assert_eq!(session.poll_timeout(), Some(now + server.config().ping_interval));
//! ```
//!
//! The [`client`] machine works the same way, with IO *intents* as outputs
//! (make this HTTP request, open this WebSocket) and their results as its
//! [`client::Input`].
//!
//! # Bad input
//!
//! Nothing a peer sends can make these machines panic, allocate without bound
//! or loop without bound: malformed packets close the session with a
//! [`CloseReason`], refused HTTP requests get Node's status and JSON error.
//! The fuzz targets in the workspace's `fuzz/` folder check it.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
mod close;
mod handshake;
pub mod packet;
pub mod payload;
pub mod server;
mod sid;
mod time;
mod transport;
pub mod v3;

pub use close::{CloseReason, TransportError};
pub use handshake::{Handshake, HandshakeError};
pub use packet::{DecodeError, EncodedMessage, Frame, Message, Packet, PacketType, Str};
pub use sid::{CountingSidGenerator, Sid, SidError, SidGenerator, MAX_SID_LEN};
pub use time::{Instant, TimerKind, TimerTable};
pub use transport::{
    Dialect, PostFailure, Protocol, RequestId, TransportKind, Transports, WsFailure, WsId,
};

/// The Engine.IO protocol revision this crate speaks (the `EIO` query value).
pub const PROTOCOL_VERSION: u8 = 4;
