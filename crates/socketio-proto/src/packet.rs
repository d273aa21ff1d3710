//! Socket.IO v5 packets: `<type>[<attachments>-][<namespace>,][<ack id>][<json>]`.
//!
//! The JSON part is kept as the raw text it arrived as (or was encoded to):
//! the codec checks its shape (an EVENT is an array whose first element is a
//! non-reserved name or a number, a CONNECT payload an object, …) without
//! building a tree, and never re-serializes it, so what goes out is
//! byte-identical to what the application encoded, key order included.
//!
//! A packet with binary attachments travels as one text message (type `5` or
//! `6`, with `{"_placeholder":true,"num":N}` where each buffer was) followed
//! by N binary messages. [`Decoder`] reassembles them: until the last
//! attachment arrives it answers `Ok(None)`, which is a state, not an error.

use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use bytes::Bytes;
use engineio_proto::{EncodedMessage, Message, PacketType, Str};
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// The Socket.IO protocol revision this crate speaks.
pub const PROTOCOL_VERSION: u8 = 5;

/// Event names the protocol reserves; an EVENT may not use them.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// The kind of a packet. Binary events and acks are [`PacketKind::Event`] and
/// [`PacketKind::Ack`] with attachments; the wire type (`5`, `6`) follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0`: join a namespace (client), or the server's acceptance.
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2` / `5`: an event `[name, ...args]`.
    Event,
    /// `3` / `6`: the answer to an event that asked for one.
    Ack,
    /// `4`: the server refused a namespace connection.
    ConnectError,
}

/// An acknowledgement id: the number a sender attaches to an event whose
/// answer it awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AckId(pub u64);

impl fmt::Display for AckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    /// What the packet is.
    pub kind: PacketKind,
    /// The namespace, `/` by default. Must start with `/` and contain no `,`.
    pub nsp: Str,
    /// The ack id, on events that await an answer and on acks.
    pub id: Option<AckId>,
    /// The JSON payload as compact text, if any.
    pub data: Option<Str>,
    /// Binary attachments, referenced from `data` by placeholders.
    pub attachments: Vec<Bytes>,
}

/// The default namespace.
pub const MAIN_NAMESPACE: &str = "/";

impl Packet {
    /// A packet of `kind` on `nsp` carrying `data`, with no id or attachments.
    pub fn new(kind: PacketKind, nsp: Str, data: Option<Str>) -> Packet {
        Packet {
            kind,
            nsp,
            id: None,
            data,
            attachments: Vec::new(),
        }
    }

    /// Whether a peer's decoder takes this packet's binary placeholders:
    /// with attachments, every `{"_placeholder":true,"num":N}` object in
    /// the data must index one of them. Application data can hold such an
    /// object by itself; sent as it is (as Node's parser would), the peer
    /// would refuse the packet and close the connection.
    pub fn check_placeholders(&self) -> Result<(), DecodeError> {
        match &self.data {
            Some(json) if !self.attachments.is_empty() => {
                check_placeholders(json, self.attachments.len())
            }
            _ => Ok(()),
        }
    }

    /// The wire type digit: `5`/`6` for events and acks with attachments.
    pub fn wire_type(&self) -> u8 {
        let binary = !self.attachments.is_empty();
        match self.kind {
            PacketKind::Connect => b'0',
            PacketKind::Disconnect => b'1',
            PacketKind::Event if binary => b'5',
            PacketKind::Event => b'2',
            PacketKind::Ack if binary => b'6',
            PacketKind::Ack => b'3',
            PacketKind::ConnectError => b'4',
        }
    }

    /// Encodes the packet once; the result can be handed to any number of
    /// sessions without encoding again.
    pub fn encode(&self) -> EncodedPacket {
        let mut text = alloc::string::String::with_capacity(
            9 + self.nsp.len() + self.data.as_ref().map_or(0, |d| d.len()),
        );
        // The Engine.IO message digit first: the same buffer is the
        // Engine.IO frame, so no session copies it again.
        text.push(char::from(PacketType::Message.as_byte()));
        text.push(self.wire_type() as char);
        if !self.attachments.is_empty() {
            // Writing to a String cannot fail.
            let _ = write!(text, "{}-", self.attachments.len());
        }
        if self.nsp.as_str() != MAIN_NAMESPACE {
            text.push_str(&self.nsp);
            text.push(',');
        }
        if let Some(id) = self.id {
            let _ = write!(text, "{id}");
        }
        if let Some(data) = &self.data {
            text.push_str(data);
        }
        let framed = Str::from(text);
        EncodedPacket {
            head: Message::Text(
                framed
                    .slice(1..framed.len())
                    .expect("starts with one ASCII digit"),
            ),
            frame: EncodedMessage::from_framed_text(framed).expect("starts with the message digit"),
            attachments: self.attachments.clone(),
            compress: true,
        }
    }
}

/// A packet in wire form: its first message (text for the default parser,
/// binary for msgpack), then its attachments as binary messages. Made once
/// and sent to any number of connections: cloning shares the buffers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncodedPacket {
    /// The first message.
    head: Message,
    /// The first message in Engine.IO wire form, sharing `head`'s bytes.
    frame: EncodedMessage,
    /// The binary messages that follow it.
    pub attachments: Vec<Bytes>,
    /// Whether the transport may compress it (Node's `compress` flag).
    compress: bool,
}

impl EncodedPacket {
    /// A packet made of `head` then `attachments`, for a
    /// [`Parser`](crate::parser::Parser) of one's own: one allocation for a
    /// text head, none for a binary one.
    pub fn from_messages(head: Message, attachments: Vec<Bytes>) -> EncodedPacket {
        EncodedPacket {
            frame: EncodedMessage::from(head.clone()),
            head,
            attachments,
            compress: true,
        }
    }

    /// The same packet, with compression allowed or not (Node's
    /// `socket.compress(false)`): a WebSocket with permessage-deflate
    /// compresses it when it is over the threshold, a polling response
    /// holding it may be gzip-encoded. Allowed by default.
    pub fn with_compress(mut self, compress: bool) -> EncodedPacket {
        self.compress = compress;
        self
    }

    /// Whether the transport may compress it.
    pub fn compress(&self) -> bool {
        self.compress
    }

    /// The first message.
    pub fn head(&self) -> &Message {
        &self.head
    }

    /// The Engine.IO messages to send, in order.
    pub fn messages(&self) -> impl Iterator<Item = Message> + '_ {
        core::iter::once(self.head.clone())
            .chain(self.attachments.iter().cloned().map(Message::Binary))
    }

    /// The Engine.IO messages to send, in order, in wire form: sending
    /// them to any number of sessions copies nothing.
    pub fn encoded_messages(&self) -> impl Iterator<Item = EncodedMessage> + '_ {
        core::iter::once(self.frame.clone())
            .chain(
                self.attachments
                    .iter()
                    .cloned()
                    .map(|data| EncodedMessage::from(Message::Binary(data))),
            )
            .map(|message| message.with_compress(self.compress))
    }

    /// How many Engine.IO messages this packet takes.
    pub fn message_count(&self) -> usize {
        1 + self.attachments.len()
    }
}

/// Why a message is not a valid Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty text message.
    #[error("empty packet")]
    Empty,
    /// The first byte is not a packet type.
    #[error("unknown packet type byte {0:#04x}")]
    UnknownType(u8),
    /// A binary packet whose attachment count is not `<digits>-`, or is 0
    /// (socket.io-parser 4.2.7 refuses both).
    #[error("illegal attachment count")]
    IllegalAttachments,
    /// A binary placeholder (`{"_placeholder":true,…}`) whose `num` is not
    /// an attachment index of its packet.
    #[error("illegal attachments")]
    InvalidPlaceholder,
    /// More attachments announced than the decoder allows.
    #[error("too many attachments")]
    TooManyAttachments,
    /// The attachments of one packet add up to more bytes than allowed.
    #[error("attachments too large")]
    AttachmentsTooLarge,
    /// An ack id that does not fit in 64 bits.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The JSON is malformed or has the wrong shape for the packet type.
    #[error("invalid payload")]
    InvalidPayload,
    /// A text message arrived while attachments were expected.
    #[error("text message while reassembling a binary packet")]
    UnexpectedText,
    /// A binary message arrived when no binary packet was announced.
    #[error("binary message with no binary packet announced")]
    UnexpectedBinary,
    /// A text message reached a parser that reads binary messages only
    /// (msgpack).
    #[error("text message where the parser reads binary ones")]
    UnexpectedTextForBinaryParser,
    /// Not a valid msgpack packet: malformed, truncated, followed by
    /// trailing bytes, nested too deep, or without a valid `type` or `nsp`.
    #[error("invalid msgpack packet: {0}")]
    Msgpack(&'static str),
}

/// Limits on what a [`Decoder`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// Most attachments one packet may announce (Node's `maxAttachments`: 10).
    pub max_attachments: usize,
    /// Most bytes the attachments of one packet may add up to.
    pub max_attachment_bytes: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            max_attachments: 10,
            max_attachment_bytes: 10_000_000,
        }
    }
}

/// Turns Engine.IO messages into packets, reassembling binary ones.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
    /// A binary packet waiting for attachments, and how many it expects.
    partial: Option<(Packet, usize)>,
    partial_bytes: usize,
}

impl Decoder {
    /// A decoder with these limits.
    pub fn new(config: DecoderConfig) -> Decoder {
        Decoder {
            config,
            partial: None,
            partial_bytes: 0,
        }
    }

    /// Whether a binary packet is waiting for attachments.
    pub fn is_reassembling(&self) -> bool {
        self.partial.is_some()
    }

    /// Feeds one Engine.IO message. `Ok(None)`: more attachments are needed.
    /// After an error the decoder is reset; the connection should be closed.
    pub fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        let result = match message {
            Message::Text(text) => self.decode_text(text),
            Message::Binary(data) => self.decode_binary(data),
        };
        if result.is_err() {
            self.partial = None;
            self.partial_bytes = 0;
        }
        result
    }

    fn decode_text(&mut self, text: Str) -> Result<Option<Packet>, DecodeError> {
        if self.partial.is_some() {
            return Err(DecodeError::UnexpectedText);
        }
        let (packet, expected) = decode_header_and_data(&text, &self.config)?;
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.partial = Some((packet, expected));
        self.partial_bytes = 0;
        Ok(None)
    }

    fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let Some((packet, expected)) = self.partial.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        self.partial_bytes = self.partial_bytes.saturating_add(data.len());
        if self.partial_bytes > self.config.max_attachment_bytes {
            return Err(DecodeError::AttachmentsTooLarge);
        }
        packet.attachments.push(data);
        if packet.attachments.len() < *expected {
            return Ok(None);
        }
        self.partial_bytes = 0;
        Ok(self.partial.take().map(|(packet, _)| packet))
    }
}

/// Decodes a text message; returns the packet and the number of attachments
/// still to come.
fn decode_header_and_data(
    text: &Str,
    config: &DecoderConfig,
) -> Result<(Packet, usize), DecodeError> {
    let bytes = text.as_bytes();
    let first = *bytes.first().ok_or(DecodeError::Empty)?;
    let (kind, binary) = match first {
        b'0' => (PacketKind::Connect, false),
        b'1' => (PacketKind::Disconnect, false),
        b'2' => (PacketKind::Event, false),
        b'3' => (PacketKind::Ack, false),
        b'4' => (PacketKind::ConnectError, false),
        b'5' => (PacketKind::Event, true),
        b'6' => (PacketKind::Ack, true),
        other => return Err(DecodeError::UnknownType(other)),
    };
    let mut at = 1;

    let mut expected = 0usize;
    if binary {
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || bytes.get(at + digits) != Some(&b'-') {
            return Err(DecodeError::IllegalAttachments);
        }
        for &d in &bytes[at..at + digits] {
            expected = expected
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
                .ok_or(DecodeError::TooManyAttachments)?;
        }
        if expected == 0 {
            return Err(DecodeError::IllegalAttachments);
        }
        if expected > config.max_attachments {
            return Err(DecodeError::TooManyAttachments);
        }
        at += digits + 1;
    }

    // Namespace: from a `/` up to the next `,` (consumed) or the end.
    let nsp = if bytes.get(at) == Some(&b'/') {
        let len = bytes[at..]
            .iter()
            .position(|&b| b == b',')
            .unwrap_or(bytes.len() - at);
        let nsp = slice(text, at, at + len);
        at = (at + len + 1).min(bytes.len());
        nsp
    } else {
        Str::from_static(MAIN_NAMESPACE)
    };

    let digits = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let id = if digits > 0 {
        let mut id = 0u64;
        for &d in &bytes[at..at + digits] {
            id = id
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(DecodeError::InvalidAckId)?;
        }
        at += digits;
        Some(AckId(id))
    } else {
        None
    };

    let data = (at < bytes.len()).then(|| slice(text, at, bytes.len()));
    check_payload(kind, data.as_deref())?;
    if let Some(json) = data.as_deref().filter(|_| expected > 0) {
        check_placeholders(json, expected)?;
    }
    Ok((
        Packet {
            kind,
            nsp,
            id,
            data,
            attachments: Vec::with_capacity(expected),
        },
        expected,
    ))
}

/// A sub-slice of `text` between ASCII positions (the codec only cuts after
/// ASCII bytes, so both ends are character boundaries).
fn slice(text: &Str, start: usize, end: usize) -> Str {
    text.slice(start..end).unwrap_or_default()
}

/// Checks every binary placeholder of a binary packet's JSON as Node's
/// parser does when it puts the attachments back: an object whose
/// `_placeholder` is `true` must have a `num` that indexes one of the
/// packet's `count` attachments. Stricter than Node in one way: `num` must
/// be a whole number (Node lets `0.5` through and yields `undefined`).
fn check_placeholders(json: &str, count: usize) -> Result<(), DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    PlaceholderWalk { count }
        .deserialize(&mut deserializer)
        .map_err(|_| DecodeError::InvalidPlaceholder)?;
    Ok(())
}

/// What a JSON value is, as far as a placeholder's fields care.
#[derive(Debug, Clone, Copy, Default)]
struct PlaceholderField {
    /// The value is `true` (a placeholder's flag).
    is_true: bool,
    /// The value is a whole number below the attachment count.
    is_index: bool,
}

/// Walks a JSON value, failing on an invalid placeholder anywhere in it.
#[derive(Clone, Copy)]
struct PlaceholderWalk {
    count: usize,
}

impl<'de> DeserializeSeed<'de> for PlaceholderWalk {
    type Value = PlaceholderField;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PlaceholderWalk {
    type Value = PlaceholderField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
        Ok(PlaceholderField {
            is_true: value,
            is_index: false,
        })
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
        Ok(PlaceholderField {
            is_true: false,
            is_index: usize::try_from(value).is_ok_and(|n| n < self.count),
        })
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
        Ok(PlaceholderField {
            is_true: false,
            is_index: usize::try_from(value).is_ok_and(|n| n < self.count),
        })
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
        // `-0` and `1.0` are indexes too; `0.5` and `1e400` are not.
        let whole = value >= 0.0 && value == (value as u64) as f64;
        Ok(PlaceholderField {
            is_true: false,
            is_index: whole && (value as u64) < self.count as u64,
        })
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(PlaceholderField::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(PlaceholderField::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(PlaceholderField::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // As with `JSON.parse`, the last of duplicate keys wins.
        let mut flag = false;
        let mut index = false;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let field = map.next_value_seed(self)?;
            match key {
                PlaceholderKey::Flag => flag = field.is_true,
                PlaceholderKey::Num => index = field.is_index,
                PlaceholderKey::Other => {}
            }
        }
        if flag && !index {
            return Err(de::Error::custom("illegal attachments"));
        }
        Ok(PlaceholderField::default())
    }
}

/// An object key, as far as placeholders care (escaped keys included,
/// since `JSON.parse` unescapes them too).
enum PlaceholderKey {
    Flag,
    Num,
    Other,
}

/// Reads an object key as a [`PlaceholderKey`].
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = PlaceholderKey;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = PlaceholderKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(match key {
            "_placeholder" => PlaceholderKey::Flag,
            "num" => PlaceholderKey::Num,
            _ => PlaceholderKey::Other,
        })
    }
}

/// Checks the payload's shape for the packet kind, as Node's parser does.
fn check_payload(kind: PacketKind, data: Option<&str>) -> Result<(), DecodeError> {
    let shape = match data {
        Some(json) => Some(shape_of(json).ok_or(DecodeError::InvalidPayload)?),
        None => None,
    };
    check_shape(kind, shape)
}

/// Checks a payload's outline (`None`: no payload) for the packet kind, as
/// Node's default parser does, whatever the parser that read it.
pub(crate) fn check_shape(kind: PacketKind, shape: Option<Shape>) -> Result<(), DecodeError> {
    let valid = match (kind, shape) {
        // An event needs at least its name; the others may come bare (an ACK
        // then carries no arguments).
        (PacketKind::Event, None) => false,
        (_, None) => true,
        (PacketKind::Connect, Some(shape)) => shape == Shape::Object,
        (PacketKind::Disconnect, Some(_)) => false,
        (PacketKind::ConnectError, Some(shape)) => matches!(shape, Shape::Object | Shape::String),
        (PacketKind::Event, Some(shape)) => {
            matches!(shape, Shape::Array(First::Name | First::Number))
        }
        (PacketKind::Ack, Some(shape)) => matches!(shape, Shape::Array(_)),
    };
    valid.then_some(()).ok_or(DecodeError::InvalidPayload)
}

/// The outline of a payload, as far as packet validation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    Array(First),
    String,
    Other,
}

/// The first element of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum First {
    /// A string that is not a reserved event name.
    Name,
    Reserved,
    Number,
    Other,
    /// The array is empty.
    None,
}

/// Parses `json` far enough to know its shape, without building a tree.
/// `None` when it is not exactly one valid JSON value.
fn shape_of(json: &str) -> Option<Shape> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let shape = deserializer.deserialize_any(ShapeVisitor).ok()?;
    deserializer.end().ok()?;
    Some(shape)
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Shape::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let first = seq.next_element_seed(FirstSeed)?.unwrap_or(First::None);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Array(first))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::String)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

impl First {
    /// A string as an event name: reserved or not.
    pub(crate) fn of_str(name: &str) -> First {
        if RESERVED_EVENTS.contains(&name) {
            First::Reserved
        } else {
            First::Name
        }
    }
}

/// Classifies the first element of an array.
struct FirstSeed;

impl<'de> DeserializeSeed<'de> for FirstSeed {
    type Value = First;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<First, D::Error> {
        deserializer.deserialize_any(FirstVisitor)
    }
}

struct FirstVisitor;

impl<'de> Visitor<'de> for FirstVisitor {
    type Value = First;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<First, E> {
        Ok(First::of_str(name))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<First, E> {
        Ok(First::Number)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<First, E> {
        Ok(First::Number)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<First, E> {
        Ok(First::Number)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<First, E> {
        Ok(First::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<First, E> {
        Ok(First::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<First, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(First::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(First::Other)
    }
}

#[cfg(test)]
mod tests;
