//! How packets look on the wire: the parser a server or client speaks
//! (Node's `parser` option). Every parser reads and writes the same
//! [`Packet`]: JSON text with binary placeholders plus attachments, which
//! is what the rest of the stack (handlers, acks, recovery, adapters) works
//! on, so a parser changes the bytes on the wire and nothing else.
//!
//! - [`JsonParser`], the default: socket.io-parser's text packets, binary
//!   data as attachment messages.
//! - [`MsgpackParser`](crate::msgpack::MsgpackParser): one binary msgpack
//!   message per packet, byte-compatible with `socket.io-msgpack-parser`.
//! - Your own: implement [`Parser`] and [`PacketDecoder`].
//!
//! Both ends of a connection must speak the same parser; a peer that does
//! not gets its connection closed with a [`DecodeError`].
//!
//! ```
//! use socketio_proto::parser::{JsonParser, SharedParser};
//! use socketio_proto::msgpack::MsgpackParser;
//! use socketio_proto::{Packet, PacketKind};
//!
//! let event = Packet::new(PacketKind::Event, "/".into(), Some(r#"["hi",1]"#.into()));
//! let json = SharedParser::new(JsonParser);
//! let msgpack = SharedParser::new(MsgpackParser);
//! // The same packet, in two wire forms.
//! assert_eq!(json.encode(&event).messages().count(), 1);
//! let mut decoder = msgpack.decoder(&Default::default());
//! let head = msgpack.encode(&event).head().clone();
//! assert_eq!(decoder.decode(head), Ok(Some(event)));
//! ```

use alloc::boxed::Box;
#[allow(clippy::disallowed_types)]
use alloc::sync::Arc;
use core::fmt;

use engineio_proto::Message;

use crate::packet::{DecodeError, Decoder, DecoderConfig, EncodedPacket, Packet};

/// A wire format for Socket.IO packets: encodes them, and makes a decoder
/// for each connection. Share one with [`SharedParser`].
pub trait Parser: fmt::Debug + Send + Sync + 'static {
    /// A short name for logs and comparisons (`"json"`, `"msgpack"`); two
    /// parsers with the same name are taken to be the same.
    fn name(&self) -> &str;

    /// The packet's wire form. Called once per packet, whatever the number
    /// of recipients (a broadcast shares the result).
    fn encode(&self, packet: &Packet) -> EncodedPacket;

    /// A decoder for one connection, within `limits`.
    fn decoder(&self, limits: &DecoderConfig) -> Box<dyn PacketDecoder>;
}

/// Reads one connection's Engine.IO messages as packets.
pub trait PacketDecoder: fmt::Debug + Send {
    /// Feeds one message. `Ok(None)`: the packet needs more messages (the
    /// JSON parser's attachments). After an error the connection is
    /// closed, so the decoder need not recover.
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError>;
}

/// The default parser: socket.io-parser's text packets, with binary data
/// as attachment messages after the text one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonParser;

impl Parser for JsonParser {
    fn name(&self) -> &str {
        "json"
    }

    fn encode(&self, packet: &Packet) -> EncodedPacket {
        packet.encode()
    }

    fn decoder(&self, limits: &DecoderConfig) -> Box<dyn PacketDecoder> {
        Box::new(Decoder::new(limits.clone()))
    }
}

impl PacketDecoder for Decoder {
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        Decoder::decode(self, message)
    }
}

/// A parser shared by a server's or a client's connections: cheap to
/// clone, [`JsonParser`] by default. Two are equal when their parsers'
/// [`name`](Parser::name)s are.
// The crate bans `Arc` for protocol state; a parser holds none (`&self`
// methods, no interior mutability by contract of `Sync` use here).
#[allow(clippy::disallowed_types)]
#[derive(Clone)]
pub struct SharedParser(Arc<dyn Parser>);

impl SharedParser {
    /// Shares `parser`.
    #[allow(clippy::disallowed_types)]
    pub fn new(parser: impl Parser) -> SharedParser {
        SharedParser(Arc::new(parser))
    }
}

impl Default for SharedParser {
    fn default() -> Self {
        SharedParser::new(JsonParser)
    }
}

impl core::ops::Deref for SharedParser {
    type Target = dyn Parser;

    fn deref(&self) -> &(dyn Parser + 'static) {
        &*self.0
    }
}

impl fmt::Debug for SharedParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq for SharedParser {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for SharedParser {}
