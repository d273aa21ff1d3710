//! Engine.IO protocol revision 3, the wire format of socket.io 2.x clients,
//! which Node's server still speaks with `allowEIO3: true`. It differs from
//! v4 in framing only (the session rules differ in one place: the client
//! pings, see [`server`](crate::server)):
//!
//! * Polling payloads prefix each packet with its length,
//!   `<length>:<packet>`, the length counted in UTF-16 code units as
//!   JavaScript counts a string; a binary message is `b4<base64>` in such
//!   a payload.
//! * A client that can send binary (no `b64=1` in its query) gets a payload
//!   holding binary packets as a *binary payload*: per packet `0` (text) or
//!   `1` (binary), the length as one byte per decimal digit, `0xff`, then
//!   the packet: a text one in UTF-8, a binary one as its type byte (`4`)
//!   followed by the data. It may POST the same (`application/octet-stream`).
//! * A binary message on a WebSocket starts with its type byte, `4`.
//!
//! ```
//! use bytes::Bytes;
//! use engineio_proto::{v3, EncodedMessage, Message, Packet};
//!
//! let messages = [
//!     EncodedMessage::from(Message::from("héllo")),
//!     EncodedMessage::from(Message::Binary(Bytes::from_static(&[1, 2]))),
//! ];
//! // Text for a client without binary support…
//! let (text, binary) = v3::encode_payload(&messages, false);
//! assert_eq!((&text[..], binary), (&b"6:4h\xc3\xa9llo6:b4AQI="[..], false));
//! // …and a binary payload for one with.
//! let (body, binary) = v3::encode_payload(&messages, true);
//! assert!(binary);
//! let packets: Vec<Packet> = v3::decode_payload(body, true).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(packets, [Packet::Message(Message::from("héllo")), Packet::Message(Message::Binary(Bytes::from_static(&[1, 2])))]);
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::packet::{DecodeError, EncodedMessage, Frame, Message, Packet, PacketType, Str};

/// Most decimal digits a length may have (Node stops at 310; a length
/// beyond 10 digits cannot fit any body this crate accepts).
const MAX_LENGTH_DIGITS: usize = 10;

/// Starts decoding a v3 polling body: a binary payload when the request
/// said `application/octet-stream` (`binary`), text otherwise. Yields the
/// packets in order and stops after the first bad one; the work is linear
/// in the body's size.
pub fn decode_payload(body: Bytes, binary: bool) -> Result<PayloadDecoder, DecodeError> {
    if binary {
        return Ok(PayloadDecoder::Binary(Some(body)));
    }
    if body.is_empty() {
        // Node: an empty text payload is a parse error.
        return Err(DecodeError::Empty);
    }
    let text = Str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(PayloadDecoder::Text(Some(text)))
}

/// The packets of one v3 payload, in order. See [`decode_payload`].
#[derive(Debug, Clone)]
pub enum PayloadDecoder {
    /// What is left of a text payload; `None` once done or after an error.
    Text(Option<Str>),
    /// What is left of a binary payload.
    Binary(Option<Bytes>),
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = match self {
            PayloadDecoder::Text(rest) => next_text_record(rest)?,
            PayloadDecoder::Binary(rest) => next_binary_record(rest)?,
        };
        if decoded.is_err() {
            *self = PayloadDecoder::Text(None);
        }
        Some(decoded)
    }
}

/// The next `<length>:<packet>` record; `None` at the end. Empty records
/// (`0:`) are skipped, as in Node.
fn next_text_record(rest: &mut Option<Str>) -> Option<Result<Packet, DecodeError>> {
    loop {
        let text = rest.take()?;
        if text.is_empty() {
            return None;
        }
        let Some(colon) = text.as_bytes().iter().position(|&b| b == b':') else {
            return Some(Err(DecodeError::InvalidLength));
        };
        let Some(units) = parse_length(&text.as_bytes()[..colon]) else {
            return Some(Err(DecodeError::InvalidLength));
        };
        // Walk `units` UTF-16 code units from after the colon.
        let start = colon + 1;
        let mut counted = 0usize;
        let mut end = start;
        for c in text[start..].chars() {
            if counted >= units {
                break;
            }
            counted += c.len_utf16();
            end += c.len_utf8();
        }
        if counted != units {
            // Short, or the length splits a surrogate pair.
            return Some(Err(DecodeError::InvalidLength));
        }
        *rest = text.slice(end..text.len());
        if end == start {
            continue;
        }
        let record = text.slice(start..end).unwrap_or_default();
        return Some(decode_text(record));
    }
}

/// The next record of a binary payload; `None` at the end.
fn next_binary_record(rest: &mut Option<Bytes>) -> Option<Result<Packet, DecodeError>> {
    let mut bytes = rest.take()?;
    if bytes.is_empty() {
        return None;
    }
    let text = match bytes[0] {
        0 => true,
        1 => false,
        _ => return Some(Err(DecodeError::InvalidLength)),
    };
    let Some(end) = bytes.iter().skip(1).position(|&b| b == 0xff) else {
        return Some(Err(DecodeError::InvalidLength));
    };
    let digits = &bytes[1..1 + end];
    if digits.is_empty() || digits.len() > MAX_LENGTH_DIGITS || digits.iter().any(|&d| d > 9) {
        return Some(Err(DecodeError::InvalidLength));
    }
    let Some(length) = digits.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d))
    }) else {
        return Some(Err(DecodeError::InvalidLength));
    };
    let start = 2 + end;
    if bytes.len() - start < length {
        return Some(Err(DecodeError::InvalidLength));
    }
    let record = bytes.split_to(start + length).split_off(start);
    *rest = Some(bytes);
    Some(if text {
        Str::from_utf8(record)
            .map_err(|_| DecodeError::InvalidUtf8)
            .and_then(decode_text)
    } else {
        decode_binary(record)
    })
}

/// A decimal length of at most [`MAX_LENGTH_DIGITS`] digits.
fn parse_length(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > MAX_LENGTH_DIGITS {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// A text packet: `<digit><data>`, or `b<digit><base64>` for binary data.
pub fn decode_text(text: Str) -> Result<Packet, DecodeError> {
    let Some(encoded) = text.strip_prefix('b') else {
        return Packet::decode_text(text);
    };
    let (&kind, base64) = encoded.as_bytes().split_first().ok_or(DecodeError::Empty)?;
    if PacketType::from_byte(kind) != Some(PacketType::Message) {
        return Err(DecodeError::UnknownType(kind));
    }
    // Padding optional, as in v4 payloads: peers differ.
    let data = crate::payload::LENIENT_BASE64
        .decode(base64)
        .map_err(|_| DecodeError::InvalidBase64)?;
    Ok(Packet::Message(Message::Binary(Bytes::from(data))))
}

/// A binary packet: its type byte, then the data. Only a message carries
/// binary data.
fn decode_binary(mut data: Bytes) -> Result<Packet, DecodeError> {
    let kind = *data.first().ok_or(DecodeError::Empty)?;
    if kind != 4 {
        return Err(DecodeError::UnknownType(kind));
    }
    Ok(Packet::Message(Message::Binary(data.split_off(1))))
}

/// Encodes messages in wire form as one v3 payload; a binary payload when
/// `binary_allowed` (the client did not ask for `b64`) and one of them is
/// binary. Returns the body and whether it is a binary payload (sent as
/// `application/octet-stream`).
pub fn encode_payload<'a>(
    messages: impl IntoIterator<Item = &'a EncodedMessage> + Clone,
    binary_allowed: bool,
) -> (Bytes, bool) {
    let binary = binary_allowed
        && messages
            .clone()
            .into_iter()
            .any(|m| matches!(m.frame(), Frame::Binary(_)));
    let mut out = BytesMut::new();
    for message in messages {
        match (message.frame(), binary) {
            (Frame::Text(text), false) => {
                let units: usize = text.chars().map(char::len_utf16).sum();
                push_decimal(&mut out, units);
                out.put_u8(b':');
                out.extend_from_slice(text.as_bytes());
            }
            (Frame::Binary(data), false) => {
                let encoded = STANDARD.encode(data);
                push_decimal(&mut out, 2 + encoded.len());
                out.extend_from_slice(b":b4");
                out.extend_from_slice(encoded.as_bytes());
            }
            (Frame::Text(text), true) => {
                out.put_u8(0);
                push_digits(&mut out, text.len());
                out.put_u8(0xff);
                out.extend_from_slice(text.as_bytes());
            }
            (Frame::Binary(data), true) => {
                out.put_u8(1);
                push_digits(&mut out, 1 + data.len());
                out.put_u8(0xff);
                out.put_u8(4);
                out.extend_from_slice(data);
            }
        }
    }
    (out.freeze(), binary)
}

/// Writes `n` in decimal ASCII.
fn push_decimal(out: &mut BytesMut, n: usize) {
    let mut digits = [0u8; 20];
    let len = decimal(n, &mut digits);
    for &d in &digits[20 - len..] {
        out.put_u8(b'0' + d);
    }
}

/// Writes `n` as one byte per decimal digit (a binary payload's length).
fn push_digits(out: &mut BytesMut, n: usize) {
    let mut digits = [0u8; 20];
    let len = decimal(n, &mut digits);
    out.extend_from_slice(&digits[20 - len..]);
}

/// The decimal digits of `n`, right-aligned in `digits`; how many.
fn decimal(mut n: usize, digits: &mut [u8; 20]) -> usize {
    let mut len = 0;
    loop {
        digits[19 - len] = (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 {
            return len;
        }
    }
}

/// A message in wire form as a v3 WebSocket frame: text as in v4, binary
/// after its type byte `4` (one copy).
pub fn encode_frame(message: EncodedMessage) -> Frame {
    match message.into_frame() {
        Frame::Binary(data) => {
            let mut framed = BytesMut::with_capacity(1 + data.len());
            framed.put_u8(4);
            framed.extend_from_slice(&data);
            Frame::Binary(framed.freeze())
        }
        text => text,
    }
}

/// A v3 WebSocket frame as a packet: a text frame may also be
/// `b4<base64>`, a binary one starts with its type byte.
pub fn decode_frame(frame: Frame) -> Result<Packet, DecodeError> {
    match frame {
        Frame::Text(text) => decode_text(text),
        Frame::Binary(data) => decode_binary(data),
    }
}

#[cfg(test)]
mod tests;
