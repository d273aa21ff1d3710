//! RFC 6455 framing without IO: [`Decoder`] turns the bytes a peer sent
//! into messages, [`encode`] turns a message into a frame. Both sides of a
//! connection use them; [`super::WebSocket`] does the reading and writing.
//!
//! Our own rather than tungstenite's because permessage-deflate needs the
//! RSV1 bit of each frame, which tungstenite refuses (see
//! `docs/compression.md`). The checks and close codes are Node's `ws`'s.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use engineio_proto::{Frame, Str, WsFailure};

use super::deflate::{InflateError, Inflater};

/// Which end of the connection we are: a server reads masked frames and
/// writes plain ones, a client the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Client,
}

pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xa;

/// What a whole frame or message was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A text or binary message, reassembled and inflated.
    Message(Frame),
    /// A ping, to be answered with a pong carrying the same data.
    Ping(Bytes),
    /// A close frame, with its code when it had one.
    Close(Option<u16>),
}

/// What [`Decoder::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    Event(Event),
    /// The buffer ends in the middle of a frame: at least this many more
    /// bytes are needed.
    Need(usize),
}

/// The peer broke the protocol: what the session is told, and the close
/// frame RFC 6455 asks for (Node's `ws` sends the same codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) failure: WsFailure,
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

const TOO_LARGE: Broken = Broken {
    failure: WsFailure::TooLarge,
    code: 1009,
    reason: "Max payload size exceeded",
};

const NOT_UTF8: Broken = Broken {
    failure: WsFailure::Invalid,
    code: 1007,
    reason: "Invalid UTF-8",
};

const fn protocol(reason: &'static str) -> Broken {
    Broken {
        failure: WsFailure::Invalid,
        code: 1002,
        reason,
    }
}

/// A fragmented message being reassembled.
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

/// Reads frames, reassembles fragmented messages and inflates compressed
/// ones, every size checked against the message limit before anything is
/// buffered for it.
pub(crate) struct Decoder {
    role: Role,
    max_message: usize,
    inflater: Option<Inflater>,
    partial: Option<Partial>,
}

impl Decoder {
    /// `inflater` when permessage-deflate was agreed.
    pub(crate) fn new(role: Role, max_message: usize, inflater: Option<Inflater>) -> Decoder {
        Decoder {
            role,
            max_message,
            inflater,
            partial: None,
        }
    }

    /// Reads what `buf` holds: one event, or how much more a frame needs.
    /// Control frames in the middle of a fragmented message are events of
    /// their own, as RFC 6455 allows.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Broken> {
        loop {
            let Some(header) = self.header(buf)? else {
                return Ok(Decoded::Need(2usize.saturating_sub(buf.len()).max(1)));
            };
            let total = header.at + header.len;
            if buf.len() < total {
                return Ok(Decoded::Need(total - buf.len()));
            }
            let mut payload = buf.split_to(total);
            payload.advance(header.at);
            if let Some(mask) = header.mask {
                apply_mask(&mut payload, mask);
            }
            if let Some(event) = self.frame(&header, payload)? {
                return Ok(Decoded::Event(event));
            }
        }
    }

    /// The next frame's header, checked; `None` until it is all there.
    fn header(&self, buf: &BytesMut) -> Result<Option<Header>, Broken> {
        let [b0, b1, ..] = buf[..] else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        if b0 & 0x30 != 0 {
            return Err(protocol("RSV2 and RSV3 must be clear"));
        }
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        match opcode {
            CONTINUATION | TEXT | BINARY => {
                if rsv1 && (opcode == CONTINUATION || self.inflater.is_none()) {
                    return Err(protocol("RSV1 must be clear"));
                }
                match (&self.partial, opcode) {
                    (None, CONTINUATION) => return Err(protocol("invalid opcode 0")),
                    (Some(_), TEXT | BINARY) => {
                        return Err(protocol("invalid opcode in a fragmented message"))
                    }
                    _ => {}
                }
            }
            CLOSE | PING | PONG => {
                if !fin {
                    return Err(protocol("FIN must be set"));
                }
                if rsv1 {
                    return Err(protocol("RSV1 must be clear"));
                }
            }
            _ => return Err(protocol("invalid opcode")),
        }
        match (self.role, masked) {
            (Role::Server, false) => return Err(protocol("MASK must be set")),
            (Role::Client, true) => return Err(protocol("MASK must be clear")),
            _ => {}
        }
        let (len, mut at) = match b1 & 0x7f {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or_default()), 10),
                None => return Ok(None),
            },
            short => (u64::from(short), 2),
        };
        if opcode >= CLOSE && len > 125 {
            return Err(protocol("invalid payload length for a control frame"));
        }
        // The limit holds for the message so far, compressed or not.
        let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
        let room = self.max_message.saturating_sub(so_far) as u64;
        if opcode < CLOSE && len > room {
            return Err(TOO_LARGE);
        }
        let mask = if masked {
            let Some(key) = buf.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        Ok(Some(Header {
            fin,
            rsv1,
            opcode,
            at,
            len: len as usize,
            mask,
        }))
    }

    /// One whole frame, unmasked: an event, or `None` for a pong or a
    /// fragment.
    fn frame(&mut self, header: &Header, payload: BytesMut) -> Result<Option<Event>, Broken> {
        match header.opcode {
            PING => Ok(Some(Event::Ping(payload.freeze()))),
            PONG => Ok(None),
            CLOSE => close_code(&payload).map(|code| Some(Event::Close(code))),
            CONTINUATION => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(protocol("invalid opcode 0"));
                };
                partial.data.extend_from_slice(&payload);
                if !header.fin {
                    return Ok(None);
                }
                let Partial {
                    text,
                    compressed,
                    data,
                } = self.partial.take().expect("checked above");
                self.message(text, compressed, data).map(Some)
            }
            opcode if header.fin => self.message(opcode == TEXT, header.rsv1, payload).map(Some),
            opcode => {
                self.partial = Some(Partial {
                    text: opcode == TEXT,
                    compressed: header.rsv1,
                    data: payload,
                });
                Ok(None)
            }
        }
    }

    /// A whole message's data as the frame the session reads.
    fn message(&mut self, text: bool, compressed: bool, data: BytesMut) -> Result<Event, Broken> {
        let data = match (compressed, self.inflater.as_mut()) {
            (true, Some(inflater)) => match inflater.inflate(&data, self.max_message) {
                Ok(inflated) => Bytes::from(inflated),
                Err(InflateError::TooLarge) => return Err(TOO_LARGE),
                Err(InflateError::Invalid) => return Err(NOT_DEFLATE),
            },
            _ => data.freeze(),
        };
        let frame = if text {
            Frame::Text(Str::from_utf8(data).map_err(|_| NOT_UTF8)?)
        } else {
            Frame::Binary(data)
        };
        Ok(Event::Message(frame))
    }
}

/// Data that does not inflate: Node's `ws` closes with 1007 too.
const NOT_DEFLATE: Broken = Broken {
    failure: WsFailure::Invalid,
    code: 1007,
    reason: "Invalid compressed data",
};

struct Header {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    /// Where the payload starts.
    at: usize,
    len: usize,
    mask: Option<[u8; 4]>,
}

/// A close frame's code, checked as Node's `ws` checks it.
fn close_code(payload: &[u8]) -> Result<Option<u16>, Broken> {
    match payload {
        [] => Ok(None),
        [_] => Err(protocol("invalid payload length 1")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(protocol("invalid status code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(NOT_UTF8);
            }
            Ok(Some(code))
        }
    }
}

/// XORs `data` with the masking key, eight bytes at a time.
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or_default()) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// Appends one final frame to `out`: the header, then the payload, masked
/// with `mask` when there is one (a client's frames).
pub(crate) fn encode(
    out: &mut BytesMut,
    opcode: u8,
    rsv1: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    let len = payload.len();
    out.reserve(14 + len);
    out.put_u8(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.put_u8(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(mask_bit | 126);
        out.put_u16(len);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
    match mask {
        Some(mask) => {
            out.put_slice(&mask);
            let start = out.len();
            out.put_slice(payload);
            apply_mask(&mut out[start..], mask);
        }
        None => out.put_slice(payload),
    }
}

/// A close frame's payload: the code and the reason.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    payload
}

#[cfg(test)]
mod tests;
