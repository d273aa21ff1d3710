//! The msgpack parser: each packet is one binary message holding a msgpack
//! map `{type, data, nsp, id}`, byte-compatible with the npm package
//! `socket.io-msgpack-parser` 3.0 (which encodes with notepack.io 2.2).
//! Binary data travels in place as msgpack `bin`, so there are no
//! attachment messages.
//!
//! The rest of the stack works on JSON text with binary placeholders
//! ([`Packet`]); this module translates both ways, streaming on the way in
//! (no tree is built) and through a small ordered tree on the way out
//! (msgpack writes a container's length before its items). Values follow
//! notepack's reading, and JSON's writing of what JavaScript would hold:
//!
//! | msgpack | JSON text |
//! | --- | --- |
//! | `bin`, ext type 0 (a browser's `ArrayBuffer`) | a placeholder and an attachment |
//! | fixext 1 type 0 (`undefined`) | `null` in an array, left out of a map |
//! | fixext 8 type 0 (`Date`) | its ISO string, as `JSON.stringify` writes it |
//! | any other ext type `t` | `[t, <binary>]`, as notepack yields it |
//! | float NaN or ±infinity | `null` |
//! | a whole float | an integer |
//! | an integer, nil or boolean map key | its text |
//! | invalid UTF-8 | U+FFFD, as Node's `Buffer#toString` |
//!
//! Bounded like the JSON parser: nesting deeper than [`MAX_DEPTH`], a
//! length beyond the message's end, a reserved byte, trailing bytes, a
//! literal `{"_placeholder":true}` map and any other shape Node's parser
//! refuses are errors; every allocation is in proportion to the message,
//! itself bounded by the Engine.IO `max_payload`.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use bytes::Bytes;
use engineio_proto::{Message, Str};
use serde::de::{self, Deserialize, MapAccess, SeqAccess, Visitor};

use crate::packet::{
    check_shape, AckId, DecodeError, DecoderConfig, EncodedPacket, First, Packet, PacketKind, Shape,
};
use crate::parser::{PacketDecoder, Parser};

/// How deep a packet's data may nest: what `serde_json`'s default
/// recursion limit lets the handlers' deserialization read after us (127
/// levels); a binary value counts one level, as its placeholder object
/// does.
pub const MAX_DEPTH: usize = 127;

/// The msgpack parser (Node: `parser: require("socket.io-msgpack-parser")`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgpackParser;

impl Parser for MsgpackParser {
    fn name(&self) -> &str {
        "msgpack"
    }

    fn encode(&self, packet: &Packet) -> EncodedPacket {
        EncodedPacket::from_messages(Message::Binary(encode_packet(packet).into()), Vec::new())
    }

    /// Binary data travels inside the one message, which the Engine.IO
    /// `max_payload` bounds; the attachment limits of the JSON parser do
    /// not apply (Node's msgpack parser has none either).
    fn decoder(&self, _limits: &DecoderConfig) -> Box<dyn PacketDecoder> {
        Box::new(MsgpackDecoder)
    }
}

/// Reads msgpack packets: stateless, as each packet is one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgpackDecoder;

impl PacketDecoder for MsgpackDecoder {
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        match message {
            Message::Binary(data) => decode_packet(&data).map(Some),
            Message::Text(_) => Err(DecodeError::UnexpectedTextForBinaryParser),
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding: msgpack bytes to a Packet.

/// Decodes one msgpack packet.
pub fn decode_packet(data: &Bytes) -> Result<Packet, DecodeError> {
    let mut reader = Reader { data, at: 0 };
    let Token::Map(entries) = reader.token()? else {
        return Err(DecodeError::Msgpack("a packet is a map"));
    };
    let mut kind = None;
    let mut nsp = None;
    let mut id = Ok(None);
    let mut payload: Option<Payload> = None;
    let mut scratch = Transcoder::new(BinaryAs::Placeholder);
    for _ in 0..entries {
        let key = reader.token()?;
        let name = match key {
            Token::Str(range) => &data[range],
            other => {
                // Not a field of a packet: read (it must be well formed) and
                // drop, with its value.
                scratch.value(&mut reader, other, 0)?;
                b"" as &[u8]
            }
        };
        let value_start = reader.at;
        let value = reader.token()?;
        match name {
            b"type" => {
                kind = Some(packet_kind(&value));
                scratch.value(&mut reader, value, 0)?;
            }
            b"nsp" => {
                nsp = Some(match value {
                    Token::Str(range) => Some(text(data.slice(range))),
                    other => {
                        scratch.value(&mut reader, other, 0)?;
                        None
                    }
                })
            }
            b"id" => {
                id = match &value {
                    Token::Undefined => Ok(None),
                    other => whole(other).map(|n| Some(AckId(n))).ok_or(()),
                };
                scratch.value(&mut reader, value, 0)?;
            }
            b"data" => {
                let mut transcoder = Transcoder::new(BinaryAs::Placeholder);
                let item = transcoder.value(&mut reader, value, 0)?;
                payload = Some(Payload {
                    start: value_start,
                    item,
                    transcoder,
                });
            }
            _ => {
                scratch.value(&mut reader, value, 0)?;
            }
        }
        scratch.clear();
    }
    if reader.at != data.len() {
        return Err(DecodeError::Msgpack("trailing bytes"));
    }
    let kind = kind
        .flatten()
        .ok_or(DecodeError::Msgpack("invalid packet type"))?;
    let nsp = nsp
        .flatten()
        .ok_or(DecodeError::Msgpack("invalid namespace"))?;
    let id = id.map_err(|()| DecodeError::InvalidAckId)?;
    let (data, attachments) = match payload {
        None => {
            check_shape(kind, None)?;
            (None, Vec::new())
        }
        Some(payload) => payload.finish(data, kind)?,
    };
    Ok(Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    })
}

/// A packet's `data` as read, and where it starts.
struct Payload {
    start: usize,
    item: Item,
    transcoder: Transcoder,
}

impl Payload {
    /// The JSON text and attachments of a `kind` packet's data, checked as
    /// the JSON parser checks them.
    fn finish(
        self,
        data: &Bytes,
        kind: PacketKind,
    ) -> Result<(Option<Str>, Vec<Bytes>), DecodeError> {
        let shape = self.item.shape();
        check_shape(kind, shape)?;
        if shape.is_none() {
            return Ok((None, Vec::new()));
        }
        let Transcoder {
            out,
            attachments,
            literal_placeholder,
            ..
        } = self.transcoder;
        if matches!(kind, PacketKind::Event | PacketKind::Ack) {
            if literal_placeholder {
                // Binary travels as `bin`; a literal placeholder would
                // point at attachments it does not own.
                return Err(DecodeError::Msgpack("literal binary placeholder"));
            }
            return Ok((Some(Str::from(out)), attachments));
        }
        if attachments.is_empty() {
            // Elsewhere a placeholder is plain data, as with the JSON parser.
            return Ok((Some(Str::from(out)), attachments));
        }
        // Only events and acks carry attachments; elsewhere (a CONNECT's
        // auth) binary becomes what `JSON.stringify` makes of a Node
        // `Buffer`, as if the client had used the default parser.
        let mut again = Transcoder::new(BinaryAs::NodeBuffer);
        let mut reader = Reader {
            data,
            at: self.start,
        };
        let token = reader.token()?;
        again.value(&mut reader, token, 0)?;
        Ok((Some(Str::from(again.out)), Vec::new()))
    }
}

/// A packet type number as a kind: a whole number 0 to 4, as Node's
/// `isInteger` check.
fn packet_kind(token: &Token) -> Option<PacketKind> {
    Some(match whole(token)? {
        0 => PacketKind::Connect,
        1 => PacketKind::Disconnect,
        2 => PacketKind::Event,
        3 => PacketKind::Ack,
        4 => PacketKind::ConnectError,
        _ => return None,
    })
}

/// A non-negative whole number, however it was encoded.
fn whole(token: &Token) -> Option<u64> {
    match *token {
        Token::UInt(n) => Some(n),
        Token::Int(n) => u64::try_from(n).ok(),
        Token::Float(f)
            if (0.0..18_446_744_073_709_551_616.0).contains(&f) && f == (f as u64) as f64 =>
        {
            Some(f as u64)
        }
        _ => None,
    }
}

/// Text from a peer: as is when valid UTF-8 (no copy), else with U+FFFD
/// in place of each invalid sequence, as Node's `Buffer#toString` does.
fn text(bytes: Bytes) -> Str {
    match Str::from_utf8(bytes.clone()) {
        Ok(text) => text,
        Err(_) => Str::from(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// One msgpack item's head: a scalar whole, a container's length, or a
/// byte range of the message.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(core::ops::Range<usize>),
    Bin(core::ops::Range<usize>),
    Array(usize),
    Map(usize),
    Ext(i8, core::ops::Range<usize>),
    Undefined,
    /// Milliseconds since the epoch.
    Date(i64),
}

/// Reads tokens from a message, never past its end.
struct Reader<'a> {
    data: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<core::ops::Range<usize>, DecodeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or(DecodeError::Msgpack("length beyond the end of the message"))?;
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    /// A big-endian unsigned number of `len` bytes (at most 8).
    fn uint(&mut self, len: usize) -> Result<u64, DecodeError> {
        let range = self.take(len)?;
        Ok(self.data[range]
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b)))
    }

    /// A length of `len` bytes.
    fn len(&mut self, len: usize) -> Result<usize, DecodeError> {
        // At most 32 bits: fits a usize on every target with atomics.
        Ok(self.uint(len)? as usize)
    }

    fn ext_type(&mut self) -> Result<i8, DecodeError> {
        Ok(self.uint(1)? as u8 as i8)
    }

    /// A container of `len` items, each at least `min` bytes long: refused
    /// at once when the message is too short to hold them.
    fn container(&self, len: usize, min: usize) -> Result<usize, DecodeError> {
        let left = self.data.len() - self.at;
        if len.saturating_mul(min) > left {
            return Err(DecodeError::Msgpack("length beyond the end of the message"));
        }
        Ok(len)
    }

    /// An ext value of `len` bytes: type 0 is an `ArrayBuffer`.
    fn ext(&mut self, len: usize) -> Result<Token, DecodeError> {
        let kind = self.ext_type()?;
        let range = self.take(len)?;
        Ok(if kind == 0 {
            Token::Bin(range)
        } else {
            Token::Ext(kind, range)
        })
    }

    fn token(&mut self) -> Result<Token, DecodeError> {
        let marker = self.uint(1)? as u8;
        Ok(match marker {
            0x00..=0x7f => Token::UInt(u64::from(marker)),
            0x80..=0x8f => Token::Map(self.container(usize::from(marker & 0x0f), 2)?),
            0x90..=0x9f => Token::Array(self.container(usize::from(marker & 0x0f), 1)?),
            0xa0..=0xbf => Token::Str(self.take(usize::from(marker & 0x1f))?),
            0xc0 => Token::Nil,
            0xc1 => return Err(DecodeError::Msgpack("reserved byte 0xc1")),
            0xc2 => Token::Bool(false),
            0xc3 => Token::Bool(true),
            0xc4 => {
                let len = self.len(1)?;
                Token::Bin(self.take(len)?)
            }
            0xc5 => {
                let len = self.len(2)?;
                Token::Bin(self.take(len)?)
            }
            0xc6 => {
                let len = self.len(4)?;
                Token::Bin(self.take(len)?)
            }
            0xc7 => {
                let len = self.len(1)?;
                self.ext(len)?
            }
            0xc8 => {
                let len = self.len(2)?;
                self.ext(len)?
            }
            0xc9 => {
                let len = self.len(4)?;
                self.ext(len)?
            }
            0xca => Token::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Token::Float(f64::from_bits(self.uint(8)?)),
            0xcc => Token::UInt(self.uint(1)?),
            0xcd => Token::UInt(self.uint(2)?),
            0xce => Token::UInt(self.uint(4)?),
            0xcf => Token::UInt(self.uint(8)?),
            0xd0 => Token::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Token::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Token::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Token::Int(self.uint(8)? as i64),
            0xd4 => {
                let kind = self.ext_type()?;
                let range = self.take(1)?;
                if kind == 0 {
                    Token::Undefined
                } else {
                    Token::Ext(kind, range)
                }
            }
            0xd5 => Token::Ext(self.ext_type()?, self.take(2)?),
            0xd6 => Token::Ext(self.ext_type()?, self.take(4)?),
            0xd7 => {
                let kind = self.ext_type()?;
                if kind == 0 {
                    // notepack: a signed high word times 2^32 plus an
                    // unsigned low word.
                    let high = i64::from(self.uint(4)? as u32 as i32);
                    let low = self.uint(4)? as i64;
                    Token::Date(high * (1 << 32) + low)
                } else {
                    Token::Ext(kind, self.take(8)?)
                }
            }
            0xd8 => Token::Ext(self.ext_type()?, self.take(16)?),
            0xd9 => {
                let len = self.len(1)?;
                Token::Str(self.take(len)?)
            }
            0xda => {
                let len = self.len(2)?;
                Token::Str(self.take(len)?)
            }
            0xdb => {
                let len = self.len(4)?;
                Token::Str(self.take(len)?)
            }
            0xdc => {
                let len = self.len(2)?;
                Token::Array(self.container(len, 1)?)
            }
            0xdd => {
                let len = self.len(4)?;
                Token::Array(self.container(len, 1)?)
            }
            0xde => {
                let len = self.len(2)?;
                Token::Map(self.container(len, 2)?)
            }
            0xdf => {
                let len = self.len(4)?;
                Token::Map(self.container(len, 2)?)
            }
            0xe0..=0xff => Token::Int(i64::from(marker as i8)),
        })
    }
}

/// What a value turned out to be, as far as packet checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    /// `undefined`: nothing was written.
    Undefined,
    Object,
    Array(First),
    Str(First),
    Number,
    True,
    Other,
}

impl Item {
    /// The payload's outline, `None` for `undefined`.
    fn shape(self) -> Option<Shape> {
        Some(match self {
            Item::Undefined => return None,
            Item::Object => Shape::Object,
            Item::Array(first) => Shape::Array(first),
            Item::Str(_) => Shape::String,
            Item::Number | Item::True | Item::Other => Shape::Other,
        })
    }

    /// As an array's first element.
    fn first(self) -> First {
        match self {
            Item::Str(first) => first,
            Item::Number => First::Number,
            _ => First::Other,
        }
    }
}

/// What binary data becomes in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinaryAs {
    /// A placeholder, the bytes an attachment.
    Placeholder,
    /// `{"type":"Buffer","data":[…]}`, as `JSON.stringify` writes a Node
    /// `Buffer`.
    NodeBuffer,
}

/// Writes msgpack values as JSON text.
struct Transcoder {
    binary: BinaryAs,
    out: String,
    attachments: Vec<Bytes>,
    /// A map with `_placeholder: true` was written.
    literal_placeholder: bool,
}

impl Transcoder {
    fn new(binary: BinaryAs) -> Transcoder {
        Transcoder {
            binary,
            out: String::new(),
            attachments: Vec::new(),
            literal_placeholder: false,
        }
    }

    fn clear(&mut self) {
        self.out.clear();
        self.attachments.clear();
    }

    /// Writes the value that starts with `token` (its items still to read).
    fn value(
        &mut self,
        reader: &mut Reader,
        token: Token,
        depth: usize,
    ) -> Result<Item, DecodeError> {
        Ok(match token {
            Token::Nil => {
                self.out.push_str("null");
                Item::Other
            }
            Token::Bool(true) => {
                self.out.push_str("true");
                Item::True
            }
            Token::Bool(false) => {
                self.out.push_str("false");
                Item::Other
            }
            Token::UInt(n) => {
                let _ = write!(self.out, "{n}");
                Item::Number
            }
            Token::Int(n) => {
                let _ = write!(self.out, "{n}");
                Item::Number
            }
            Token::Float(f) => {
                if write_float(&mut self.out, f) {
                    Item::Number
                } else {
                    Item::Other
                }
            }
            Token::Str(range) => {
                let text = String::from_utf8_lossy(&reader.data[range]);
                write_json_str(&mut self.out, &text);
                Item::Str(First::of_str(&text))
            }
            Token::Date(millis) => match js_iso_date(millis) {
                // Written as its ISO string, but a `Date` to Node's checks:
                // not a string (no event name, no CONNECT_ERROR message).
                Some(date) => {
                    write_json_str(&mut self.out, &date);
                    Item::Other
                }
                None => {
                    self.out.push_str("null");
                    Item::Other
                }
            },
            Token::Undefined => Item::Undefined,
            Token::Bin(range) => {
                check_depth(depth + 1)?;
                self.binary(reader.data.slice(range));
                Item::Other
            }
            Token::Ext(kind, range) => {
                check_depth(depth + 2)?;
                let _ = write!(self.out, "[{kind},");
                self.binary(reader.data.slice(range));
                self.out.push(']');
                Item::Other
            }
            Token::Array(len) => {
                check_depth(depth + 1)?;
                self.out.push('[');
                let mut first = First::None;
                for index in 0..len {
                    if index > 0 {
                        self.out.push(',');
                    }
                    let token = reader.token()?;
                    let item = self.value(reader, token, depth + 1)?;
                    if item == Item::Undefined {
                        // `JSON.stringify` writes `undefined` in an array as null.
                        self.out.push_str("null");
                    }
                    if index == 0 {
                        first = item.first();
                    }
                }
                self.out.push(']');
                Item::Array(first)
            }
            Token::Map(len) => {
                check_depth(depth + 1)?;
                self.out.push('{');
                let mut empty = true;
                let mut placeholder = false;
                for _ in 0..len {
                    let entry_start = self.out.len();
                    if !empty {
                        self.out.push(',');
                    }
                    let key = reader.token()?;
                    let is_flag = self.key(reader, key)?;
                    self.out.push(':');
                    let token = reader.token()?;
                    let item = self.value(reader, token, depth + 1)?;
                    if item == Item::Undefined {
                        // `JSON.stringify` leaves the key out.
                        self.out.truncate(entry_start);
                        continue;
                    }
                    empty = false;
                    if is_flag {
                        placeholder = item == Item::True;
                    }
                }
                self.out.push('}');
                self.literal_placeholder |= placeholder;
                Item::Object
            }
        })
    }

    /// Writes a map key as a JSON string, as JavaScript turns it into a
    /// property name; whether it is `_placeholder`.
    fn key(&mut self, reader: &Reader, token: Token) -> Result<bool, DecodeError> {
        match token {
            Token::Str(range) => {
                let key = String::from_utf8_lossy(&reader.data[range]);
                write_json_str(&mut self.out, &key);
                Ok(key == "_placeholder")
            }
            Token::UInt(n) => {
                let _ = write!(self.out, "\"{n}\"");
                Ok(false)
            }
            Token::Int(n) => {
                let _ = write!(self.out, "\"{n}\"");
                Ok(false)
            }
            Token::Nil => {
                self.out.push_str("\"null\"");
                Ok(false)
            }
            Token::Bool(b) => {
                let _ = write!(self.out, "\"{b}\"");
                Ok(false)
            }
            _ => Err(DecodeError::Msgpack(
                "map key that is not a string or an integer",
            )),
        }
    }

    /// Writes binary data in place.
    fn binary(&mut self, bytes: Bytes) {
        match self.binary {
            BinaryAs::Placeholder => {
                let _ = write!(
                    self.out,
                    r#"{{"_placeholder":true,"num":{}}}"#,
                    self.attachments.len()
                );
                self.attachments.push(bytes);
            }
            BinaryAs::NodeBuffer => {
                self.out.push_str(r#"{"type":"Buffer","data":["#);
                for (index, byte) in bytes.iter().enumerate() {
                    if index > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{byte}");
                }
                self.out.push_str("]}");
            }
        }
    }
}

fn check_depth(depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        Err(DecodeError::Msgpack("nested too deep"))
    } else {
        Ok(())
    }
}

/// Whether `f` is a whole number strictly within i64's range, so `f as
/// i64` is exact.
fn is_whole_i64(f: f64) -> bool {
    f.is_finite() && f.abs() < 9_223_372_036_854_775_808.0 && f == (f as i64) as f64
}

/// Writes a float as JavaScript would hold it in JSON: whole numbers as
/// integers, NaN and infinities as `null` (returns false then).
fn write_float(out: &mut String, f: f64) -> bool {
    if !f.is_finite() {
        out.push_str("null");
        return false;
    }
    // As the encoder writes them back: whole numbers within i64's range
    // as integers (the same value: every such float is an exact integer).
    if is_whole_i64(f) {
        let _ = write!(out, "{}", f as i64);
    } else if let Some(number) = serde_json::Number::from_f64(f) {
        let _ = write!(out, "{number}");
    }
    true
}

/// Writes `text` as a JSON string.
fn write_json_str(out: &mut String, text: &str) {
    out.push('"');
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

/// Milliseconds since the epoch as JavaScript's `Date#toISOString` writes
/// them (years outside 0..=9999 as `+YYYYYY` / `-YYYYYY`); `None` beyond
/// a `Date`'s range of ±8.64e15 ms, an invalid date, which
/// `JSON.stringify` writes as `null`. By hand: the date crates at hand
/// refuse years before 1970 or after 9999, which a peer may send.
pub fn js_iso_date(millis: i64) -> Option<String> {
    const LIMIT: i64 = 8_640_000_000_000_000;
    if !(-LIMIT..=LIMIT).contains(&millis) {
        return None;
    }
    const DAY: i64 = 86_400_000;
    let (year, month, day) = civil_from_days(millis.div_euclid(DAY));
    let in_day = millis.rem_euclid(DAY);
    let (hours, minutes) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (seconds, millis) = (in_day / 1000 % 60, in_day % 1000);
    let mut out = String::with_capacity(27);
    let _ = match year {
        0..=9999 => write!(out, "{year:04}"),
        ..=-1 => write!(out, "-{:06}", -year),
        _ => write!(out, "+{year:06}"),
    };
    let _ = write!(
        out,
        "-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{millis:03}Z"
    );
    Some(out)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`: 400-year eras of 146,097 days, years starting in
/// March so that the leap day comes last).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------
// Encoding: a Packet to msgpack bytes.

/// Encodes a packet as notepack.io writes the object Node's server
/// builds: keys in its order (`{id, type, data, nsp}` for an ack, as
/// `socket.ack` makes it; `{type, data, id, nsp}` otherwise, as
/// `socket.emit`), integers in their smallest form, other numbers as
/// float64, binary as `bin`. The official client orders an ack's keys
/// `{type, id, data, nsp}` and adds `options`; decoders read keys in any
/// order, so ours writes the server's order on both sides.
pub fn encode_packet(packet: &Packet) -> Vec<u8> {
    let data = packet.data.as_deref().map(|json| {
        // Our own JSON: the application's, encoded by serde. Should it not
        // parse, the packet still goes out, with `null` data.
        serde_json::from_str::<Json>(json).unwrap_or(Json::Null)
    });
    let kind = match packet.kind {
        PacketKind::Connect => 0,
        PacketKind::Disconnect => 1,
        PacketKind::Event => 2,
        PacketKind::Ack => 3,
        PacketKind::ConnectError => 4,
    };
    let mut out =
        Vec::with_capacity(16 + packet.nsp.len() + packet.data.as_ref().map_or(0, |d| d.len()));
    let entries = 2 + u32::from(data.is_some()) + u32::from(packet.id.is_some());
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(&mut out, entries);
    let id = |out: &mut Vec<u8>| {
        if let Some(AckId(id)) = packet.id {
            let _ = rmp::encode::write_str(out, "id");
            let _ = rmp::encode::write_uint(out, id);
        }
    };
    if packet.kind == PacketKind::Ack {
        id(&mut out);
    }
    let _ = rmp::encode::write_str(&mut out, "type");
    let _ = rmp::encode::write_uint(&mut out, kind);
    if let Some(data) = &data {
        let _ = rmp::encode::write_str(&mut out, "data");
        write_value(&mut out, data, &packet.attachments);
    }
    if packet.kind != PacketKind::Ack {
        id(&mut out);
    }
    let _ = rmp::encode::write_str(&mut out, "nsp");
    let _ = rmp::encode::write_str(&mut out, &packet.nsp);
    out
}

/// A JSON value in the order it was written, strings borrowed when they
/// have no escapes.
#[derive(Debug)]
enum Json<'a> {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Json<'de>, E> {
        Ok(Json::UInt(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(value))
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(value.into())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            entries.push((key.0, map.next_value()?));
        }
        Ok(Json::Object(entries))
    }
}

/// A map key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Json::deserialize(deserializer)? {
            Json::Str(key) => Ok(Key(key)),
            _ => Err(de::Error::custom("a key is a string")),
        }
    }
}

/// The attachment a placeholder object stands for, if it is one whose
/// index is valid (`JSON.parse` semantics: the last of duplicate keys).
fn placeholder<'b>(
    entries: &[(Cow<'_, str>, Json<'_>)],
    attachments: &'b [Bytes],
) -> Option<&'b Bytes> {
    let field = |name: &str| {
        entries
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    };
    if !matches!(field("_placeholder"), Some(Json::Bool(true))) {
        return None;
    }
    let index = match field("num")? {
        Json::UInt(n) => usize::try_from(*n).ok()?,
        Json::Int(n) => usize::try_from(*n).ok()?,
        _ => return None,
    };
    attachments.get(index)
}

/// Writes a JSON value as msgpack, as notepack writes the JavaScript value.
fn write_value(out: &mut Vec<u8>, value: &Json, attachments: &[Bytes]) {
    match value {
        Json::Null => {
            let _ = rmp::encode::write_nil(out);
        }
        Json::Bool(b) => {
            let _ = rmp::encode::write_bool(out, *b);
        }
        Json::UInt(n) => {
            let _ = rmp::encode::write_uint(out, *n);
        }
        Json::Int(n) => {
            let _ = rmp::encode::write_sint(out, *n);
        }
        Json::Float(f) => {
            // notepack writes a whole number as an integer; within i64's
            // range so does this (JavaScript cannot tell 2.0 from 2).
            if is_whole_i64(*f) {
                let _ = rmp::encode::write_sint(out, *f as i64);
            } else {
                let _ = rmp::encode::write_f64(out, *f);
            }
        }
        Json::Str(text) => {
            let _ = rmp::encode::write_str(out, text);
        }
        Json::Array(items) => {
            let _ = rmp::encode::write_array_len(out, items.len() as u32);
            for item in items {
                write_value(out, item, attachments);
            }
        }
        Json::Object(entries) => {
            if let Some(bytes) = placeholder(entries, attachments) {
                let _ = rmp::encode::write_bin(out, bytes);
                return;
            }
            let _ = rmp::encode::write_map_len(out, entries.len() as u32);
            for (key, value) in entries {
                let _ = rmp::encode::write_str(out, key);
                write_value(out, value, attachments);
            }
        }
    }
}

#[cfg(test)]
mod tests;
