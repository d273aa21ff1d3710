//! Sans-IO Socket.IO v5 over [`engineio_proto`]: the packet codec with binary
//! attachments, the server and client connection state machines (namespaces,
//! acks, connection state recovery) and a rooms index. No IO, no async, no
//! clock; `no_std` + `alloc` without the default `std` feature.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backoff;
pub mod client;
pub mod packet;
pub mod recovery;
pub mod rooms;
pub mod server;

pub use packet::{AckId, DecodeError, Decoder, DecoderConfig, EncodedPacket, Packet, PacketKind};
