//! Engine.IO v4 packets and their two wire forms.
//!
//! A packet is a type digit (`0` open … `6` noop) followed by its data. On a
//! WebSocket each packet is one frame: text frames carry the digit and the
//! data, and a binary frame is a binary message with no type byte at all. On
//! HTTP long-polling packets travel in payloads (see [`crate::payload`]), where
//! a binary message becomes `b` + base64.
//!
//! Decoding never copies text: a decoded packet's data is a slice of the input
//! [`Bytes`]. Encoding a binary message for a WebSocket is free for the same
//! reason.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

/// UTF-8 text held in shared, reference-counted [`Bytes`].
///
/// Cloning is a reference-count increment, so one encoded message can be
/// handed to many sessions without copying. The text is checked once, when
/// it is made: reading it (`as_str`, `Deref`, hashing as map keys) is free.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Str(ByteString);

// `ByteString` hashes, compares and orders exactly as `str` does, so maps
// keyed by `Str` can be queried with a `&str`.
impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self
    }
}

impl core::borrow::Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Str {
    /// Wraps a static string without copying.
    pub const fn from_static(s: &'static str) -> Str {
        Str(ByteString::from_static(s))
    }

    /// Checks that `bytes` are UTF-8 and wraps them without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Str, core::str::Utf8Error> {
        #[cfg(all(test, feature = "std"))]
        work::count_validated(bytes.len());
        ByteString::try_from(bytes).map(Str)
    }

    /// The text between the byte offsets of `range`, sharing the same
    /// buffer and not checked again; `None` when an end is out of bounds or
    /// not on a character boundary.
    pub fn slice(&self, range: core::ops::Range<usize>) -> Option<Str> {
        let part = self.0.get(range)?;
        Some(Str(self.0.slice_ref(part)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UTF-8 bytes, shared.
    pub fn as_bytes(&self) -> &Bytes {
        self.0.as_bytes()
    }

    /// The UTF-8 bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0.into_bytes()
    }

    /// The text from byte `start` on, sharing the same buffer. `start`
    /// must lie on a character boundary, which every caller in this crate
    /// ensures by slicing after an ASCII byte.
    fn slice_from(&self, start: usize) -> Str {
        Str(self.0.slice_ref(&self.0[start..]))
    }
}

/// How many bytes [`Str::from_utf8`] has checked on this thread: tests
/// count decoding work with it instead of timing it.
#[cfg(all(test, feature = "std"))]
pub(crate) mod work {
    use core::cell::Cell;

    std::thread_local! {
        static VALIDATED: Cell<usize> = const { Cell::new(0) };
    }

    pub(crate) fn count_validated(bytes: usize) {
        VALIDATED.with(|v| v.set(v.get() + bytes));
    }

    /// Bytes checked on this thread so far.
    pub(crate) fn validated() -> usize {
        VALIDATED.with(Cell::get)
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str(ByteString::from(s))
    }
}

impl From<&str> for Str {
    /// Copies the text into a new buffer.
    fn from(s: &str) -> Str {
        Str(ByteString::from(s))
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an application sends and receives: text or binary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message (a Socket.IO packet, for instance).
    Text(Str),
    /// A binary message (a Socket.IO attachment, for instance).
    Binary(Bytes),
}

impl Message {
    /// Size of the message's data in bytes, as counted against `maxPayload`.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(s) => s.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the message carries no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Message {
        Message::Text(Str::from(s))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Message {
        Message::Text(Str::from(s))
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Message {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Message {
        Message::Binary(Bytes::from(b))
    }
}

/// The type of a packet: the digit that starts its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: the handshake, sent by the server.
    Open,
    /// `1`: the session is closing.
    Close,
    /// `2`: heartbeat request (server → client), or upgrade probe `2probe`.
    Ping,
    /// `3`: heartbeat answer, or probe answer `3probe`.
    Pong,
    /// `4`: application data.
    Message,
    /// `5`: the client switches to the probed transport.
    Upgrade,
    /// `6`: nothing; used to end a pending long-poll during an upgrade.
    Noop,
}

impl PacketType {
    /// The ASCII digit of this type.
    pub const fn as_byte(self) -> u8 {
        match self {
            PacketType::Open => b'0',
            PacketType::Close => b'1',
            PacketType::Ping => b'2',
            PacketType::Pong => b'3',
            PacketType::Message => b'4',
            PacketType::Upgrade => b'5',
            PacketType::Noop => b'6',
        }
    }

    /// The type of a digit, if it is one.
    pub const fn from_byte(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// One Engine.IO packet.
///
/// `Close`, `Upgrade` and `Noop` carry no data; data after their digit is
/// ignored when decoding, as Node does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// The handshake JSON (see [`crate::Handshake`]).
    Open(Str),
    /// Close the session.
    Close,
    /// Heartbeat request; data is empty, or `probe` during an upgrade.
    Ping(Str),
    /// Heartbeat answer; data is empty, or `probe` during an upgrade.
    Pong(Str),
    /// Application data.
    Message(Message),
    /// Switch to the probed transport.
    Upgrade,
    /// Nothing.
    Noop,
}

impl Packet {
    /// A heartbeat ping with no data.
    pub const PING: Packet = Packet::Ping(Str::from_static(""));
    /// A heartbeat pong with no data.
    pub const PONG: Packet = Packet::Pong(Str::from_static(""));
    /// The upgrade probe `2probe`.
    pub const PING_PROBE: Packet = Packet::Ping(Str::from_static("probe"));
    /// The probe answer `3probe`.
    pub const PONG_PROBE: Packet = Packet::Pong(Str::from_static("probe"));

    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping(_) => PacketType::Ping,
            Packet::Pong(_) => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Whether this is the upgrade probe `2probe`.
    pub fn is_ping_probe(&self) -> bool {
        matches!(self, Packet::Ping(d) if d.as_str() == "probe")
    }

    /// Whether this is the probe answer `3probe`.
    pub fn is_pong_probe(&self) -> bool {
        matches!(self, Packet::Pong(d) if d.as_str() == "probe")
    }

    /// The text data of a packet, if it has text data.
    fn text_data(&self) -> Option<&Str> {
        match self {
            Packet::Open(s) | Packet::Ping(s) | Packet::Pong(s) => Some(s),
            Packet::Message(Message::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// Decodes the text form `<digit><data>` (a WebSocket text frame, or one
    /// record of a polling payload without the `b` binary form).
    pub fn decode_text(text: Str) -> Result<Packet, DecodeError> {
        let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
        let kind = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first))?;
        // The digit is ASCII, so byte 1 is a character boundary.
        let data = || text.slice_from(1);
        Ok(match kind {
            PacketType::Open => Packet::Open(data()),
            PacketType::Close => Packet::Close,
            PacketType::Ping => Packet::Ping(data()),
            PacketType::Pong => Packet::Pong(data()),
            PacketType::Message => Packet::Message(Message::Text(data())),
            PacketType::Upgrade => Packet::Upgrade,
            PacketType::Noop => Packet::Noop,
        })
    }

    /// Decodes a WebSocket frame.
    pub fn decode_frame(frame: Frame) -> Result<Packet, DecodeError> {
        match frame {
            Frame::Text(text) => Packet::decode_text(text),
            Frame::Binary(data) => Ok(Packet::Message(Message::Binary(data))),
        }
    }

    /// Encodes this packet as one WebSocket frame. A binary message is passed
    /// through without copying; anything else costs one small allocation.
    pub fn encode_frame(&self) -> Frame {
        match self {
            Packet::Message(Message::Binary(data)) => Frame::Binary(data.clone()),
            other => {
                let mut out = String::with_capacity(other.encoded_len_text());
                out.push(char::from(other.packet_type().as_byte()));
                if let Some(data) = other.text_data() {
                    out.push_str(data);
                }
                Frame::Text(Str::from(out))
            }
        }
    }

    /// Length of this packet inside a polling payload (binary as `b`+base64).
    pub fn encoded_len_in_payload(&self) -> usize {
        match self {
            Packet::Message(Message::Binary(data)) => 1 + base64_len(data.len()),
            other => other.encoded_len_text(),
        }
    }

    fn encoded_len_text(&self) -> usize {
        1 + self.text_data().map_or(0, |s| s.len())
    }

    /// Appends the payload form of this packet: the text form, or `b`+base64
    /// for a binary message.
    pub fn write_in_payload(&self, out: &mut BytesMut) {
        match self {
            Packet::Message(Message::Binary(data)) => {
                out.reserve(1 + base64_len(data.len()));
                out.put_u8(b'b');
                let start = out.len();
                out.resize(start + base64_len(data.len()), 0);
                let written = STANDARD
                    .encode_slice(data, &mut out[start..])
                    .expect("buffer sized by base64_len");
                debug_assert_eq!(written, base64_len(data.len()));
            }
            other => other.write_text(out),
        }
    }

    fn write_text(&self, out: &mut BytesMut) {
        out.put_u8(self.packet_type().as_byte());
        if let Some(data) = self.text_data() {
            out.extend_from_slice(data.as_bytes());
        }
    }
}

/// Padded base64 length of `n` bytes.
pub(crate) const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// One WebSocket message, as the transport layer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A text frame.
    Text(Str),
    /// A binary frame.
    Binary(Bytes),
}

impl Frame {
    /// Size of the frame's payload in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(s) => s.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A message in its wire form, made once and sent to any number of
/// sessions: each gets a reference-counted clone, not a copy. A text
/// message is held with its `4` type digit, which is both its WebSocket
/// frame's whole text and its record in a polling payload; binary data is
/// held as is (a polling payload base64-encodes it when it is written).
///
/// It also says whether the transport may compress it (Node's per-packet
/// `compress` option, on by default): a WebSocket with permessage-deflate
/// compresses it if it is over the threshold, and a polling response
/// holding it may be gzip- or deflate-encoded.
///
/// ```
/// use engineio_proto::{EncodedMessage, Frame, Message};
///
/// let hello = EncodedMessage::from(Message::from("hello"));
/// assert_eq!(hello.frame(), &Frame::Text("4hello".into()));
/// assert!(hello.compress());
/// assert!(!hello.with_compress(false).compress());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncodedMessage {
    frame: Frame,
    compress: bool,
}

impl EncodedMessage {
    const fn new(frame: Frame) -> EncodedMessage {
        EncodedMessage {
            frame,
            compress: true,
        }
    }

    /// A text message whose wire form `framed` already starts with the
    /// `4` type digit; `None` if it does not.
    pub fn from_framed_text(framed: Str) -> Option<EncodedMessage> {
        framed
            .as_bytes()
            .first()
            .is_some_and(|&b| b == PacketType::Message.as_byte())
            .then_some(EncodedMessage::new(Frame::Text(framed)))
    }

    /// The same message, with compression allowed or not (Node's
    /// `socket.compress(false)`); allowed by default.
    pub fn with_compress(mut self, compress: bool) -> EncodedMessage {
        self.compress = compress;
        self
    }

    /// Size of the message's data in bytes (without the `4` type digit):
    /// what [`Message::len`] says of the message it encodes.
    pub fn data_len(&self) -> usize {
        match &self.frame {
            Frame::Text(text) => text.len().saturating_sub(1),
            Frame::Binary(data) => data.len(),
        }
    }

    /// Whether the transport may compress it.
    pub fn compress(&self) -> bool {
        self.compress
    }

    /// The WebSocket frame that carries it.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// Takes the WebSocket frame that carries it.
    pub fn into_frame(self) -> Frame {
        self.frame
    }

    /// Appends its record in a polling payload.
    pub fn write_in_payload(&self, out: &mut BytesMut) {
        match &self.frame {
            Frame::Text(text) => out.extend_from_slice(text.as_bytes()),
            Frame::Binary(data) => {
                Packet::Message(Message::Binary(data.clone())).write_in_payload(out)
            }
        }
    }

    /// A heartbeat PING, in the same form (no allocation).
    pub(crate) const PING: EncodedMessage = EncodedMessage::new(Frame::Text(Str::from_static("2")));

    /// A heartbeat PONG (a v3 server's answer), in the same form.
    pub(crate) const PONG: EncodedMessage = EncodedMessage::new(Frame::Text(Str::from_static("3")));

    /// Any packet (an OPEN, a CLOSE, a client's queued packet), in the
    /// same form.
    pub(crate) fn control(packet: &Packet) -> EncodedMessage {
        EncodedMessage::new(packet.encode_frame())
    }
}

impl From<Message> for EncodedMessage {
    /// Encodes a message: one allocation for text, none for binary.
    fn from(message: Message) -> EncodedMessage {
        EncodedMessage::new(Packet::Message(message).encode_frame())
    }
}

/// Why bytes from a peer are not a valid packet or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A packet with no type digit (an empty frame or payload record).
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type digit nor `b`.
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// A `b` record whose base64 does not decode.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// An HTTP body that is not UTF-8 text.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
    /// A v3 payload record whose length is missing, not a number, or not
    /// the length of what follows.
    #[error("invalid record length in a v3 payload")]
    InvalidLength,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Str {
        Str::from(s)
    }

    #[test]
    fn decodes_every_text_packet_type() {
        let cases = [
            ("0{\"sid\":\"x\"}", Packet::Open(text("{\"sid\":\"x\"}"))),
            ("1", Packet::Close),
            ("2", Packet::PING),
            ("2probe", Packet::PING_PROBE),
            ("3", Packet::PONG),
            ("3probe", Packet::PONG_PROBE),
            ("4hello", Packet::Message("hello".into())),
            ("4", Packet::Message("".into())),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
            ("4€ and ünïcode", Packet::Message("€ and ünïcode".into())),
        ];
        for (wire, packet) in cases {
            assert_eq!(
                Packet::decode_text(text(wire)),
                Ok(packet.clone()),
                "{wire}"
            );
            assert_eq!(packet.encode_frame(), Frame::Text(text(wire)), "{wire}");
        }
    }

    #[test]
    fn data_after_close_upgrade_noop_is_ignored() {
        assert_eq!(Packet::decode_text(text("1x")), Ok(Packet::Close));
        assert_eq!(Packet::decode_text(text("5x")), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text(text("6x")), Ok(Packet::Noop));
    }

    #[test]
    fn rejects_bad_text_packets() {
        assert_eq!(Packet::decode_text(text("")), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text(text("abc")),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert_eq!(
            Packet::decode_text(text("7")),
            Err(DecodeError::UnknownType(b'7'))
        );
        // `b` is only meaningful inside a polling payload.
        assert_eq!(
            Packet::decode_text(text("bAQID")),
            Err(DecodeError::UnknownType(b'b'))
        );
    }

    #[test]
    fn binary_frames_are_raw_messages() {
        let data = Bytes::from_static(&[1, 2, 3, 4]);
        let packet = Packet::decode_frame(Frame::Binary(data.clone())).unwrap();
        assert_eq!(packet, Packet::Message(Message::Binary(data.clone())));
        assert_eq!(packet.encode_frame(), Frame::Binary(data));
    }

    #[test]
    fn decoding_shares_the_input_buffer() {
        let wire = text("4a long enough message");
        let base = wire.as_bytes().as_ptr();
        let Packet::Message(Message::Text(data)) = Packet::decode_text(wire).unwrap() else {
            panic!("not a text message");
        };
        assert_eq!(data.as_bytes().as_ptr(), base.wrapping_add(1));
    }

    #[test]
    fn payload_form_of_binary_is_b_base64() {
        let packet = Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4])));
        let mut out = BytesMut::new();
        packet.write_in_payload(&mut out);
        assert_eq!(&out[..], b"bAQIDBA==");
        assert_eq!(packet.encoded_len_in_payload(), out.len());
    }

    #[test]
    fn base64_len_matches_the_encoder() {
        for n in 0..20 {
            assert_eq!(base64_len(n), STANDARD.encode(alloc::vec![0u8; n]).len());
        }
    }
}
