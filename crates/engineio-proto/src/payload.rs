//! HTTP long-polling payloads: packets joined by the record separator `\x1e`.
//!
//! Every record is a packet's text form, except binary messages, which are
//! written `b` followed by standard base64. A payload is UTF-8 text.
//!
//! ```
//! use engineio_proto::{payload, Packet, Message};
//! use bytes::Bytes;
//!
//! let body = Bytes::from_static(b"4hello\x1ebAQIDBA==");
//! let packets: Vec<Packet> = payload::decode(body).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(packets[0], Packet::Message("hello".into()));
//! assert_eq!(packets[1], Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))));
//! assert_eq!(payload::encode(&packets), Bytes::from_static(b"4hello\x1ebAQIDBA=="));
//! ```

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};

use crate::packet::{DecodeError, EncodedMessage, Message, Packet, Str};

/// The record separator between packets of a payload.
pub const SEPARATOR: u8 = 0x1e;

/// Standard alphabet, padding optional: peers differ on whether they pad.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Starts decoding an HTTP body. Fails at once when the body is not UTF-8;
/// otherwise yields the packets in order and stops after the first bad one.
///
/// An empty body is one empty record, which is an error, as in Node.
///
/// The work is linear in the body's size, however many packets it holds:
/// the body is checked as UTF-8 once, here, and each record is a view of it
/// that is not checked again.
pub fn decode(body: Bytes) -> Result<PayloadDecoder, DecodeError> {
    let text = Str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    Ok(PayloadDecoder { rest: Some(text) })
}

/// The packets of one payload, in order. See [`decode`].
#[derive(Debug, Clone)]
pub struct PayloadDecoder {
    /// What is left to decode; `None` once done or after an error.
    rest: Option<Str>,
}

impl Iterator for PayloadDecoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest.take()?;
        // The separator is ASCII, so both cuts are character boundaries and
        // `slice` cannot fail.
        let record = match rest.as_bytes().iter().position(|&b| b == SEPARATOR) {
            Some(at) => {
                self.rest = rest.slice(at + 1..rest.len());
                rest.slice(0..at).unwrap_or_default()
            }
            None => rest,
        };
        let decoded = decode_record(record);
        if decoded.is_err() {
            self.rest = None;
        }
        Some(decoded)
    }
}

fn decode_record(record: Str) -> Result<Packet, DecodeError> {
    if let Some(base64) = record.strip_prefix('b') {
        let data = LENIENT_BASE64
            .decode(base64)
            .map_err(|_| DecodeError::InvalidBase64)?;
        return Ok(Packet::Message(Message::Binary(Bytes::from(data))));
    }
    Packet::decode_text(record)
}

/// The packets of a polling body in either protocol revision, in order.
#[derive(Debug, Clone)]
pub(crate) enum Records {
    V4(PayloadDecoder),
    V3(crate::v3::PayloadDecoder),
}

impl Records {
    /// Starts decoding `body` as `protocol` writes it (`binary`: a v3
    /// binary payload).
    pub(crate) fn decode(
        body: Bytes,
        protocol: crate::Protocol,
        binary: bool,
    ) -> Result<Records, DecodeError> {
        match protocol {
            crate::Protocol::V4 => decode(body).map(Records::V4),
            crate::Protocol::V3 => crate::v3::decode_payload(body, binary).map(Records::V3),
        }
    }
}

impl Iterator for Records {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::V4(records) => records.next(),
            Records::V3(records) => records.next(),
        }
    }
}

/// Encodes packets into one payload.
pub fn encode<'a>(packets: impl IntoIterator<Item = &'a Packet>) -> Bytes {
    join(packets, Packet::write_in_payload)
}

/// Joins messages already in wire form into one payload.
pub fn encode_encoded<'a>(messages: impl IntoIterator<Item = &'a EncodedMessage>) -> Bytes {
    join(messages, EncodedMessage::write_in_payload)
}

/// Writes each item's record, separated by [`SEPARATOR`].
fn join<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    write: impl Fn(&T, &mut BytesMut),
) -> Bytes {
    let mut out = BytesMut::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&[SEPARATOR]);
        }
        write(item, &mut out);
    }
    out.freeze()
}

/// How many of the leading `packets` fit in one payload of at most
/// `max_payload` bytes. Always at least one when there is one, so a single
/// oversized packet still goes out (the peer decides whether to accept it).
pub fn count_fitting<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
    max_payload: usize,
) -> usize {
    let lengths = packets
        .into_iter()
        .enumerate()
        .map(|(i, packet)| usize::from(i > 0) + packet.encoded_len_in_payload());
    count_fitting_lengths(lengths, max_payload)
}

/// How many of the leading records, of these encoded lengths, fit in
/// `max_payload` bytes: at least one when there is one.
pub(crate) fn count_fitting_lengths(
    lengths: impl IntoIterator<Item = usize>,
    max_payload: usize,
) -> usize {
    let mut total = 0usize;
    let mut count = 0usize;
    for len in lengths {
        let next = total + len;
        if count > 0 && next > max_payload {
            break;
        }
        total = next;
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn decode_all(body: &[u8]) -> Vec<Result<Packet, DecodeError>> {
        decode(Bytes::copy_from_slice(body)).unwrap().collect()
    }

    #[test]
    fn protocol_document_examples() {
        // The examples of the Engine.IO v4 protocol document.
        let packets = vec![
            Packet::Message("hello".into()),
            Packet::Message("€".into()),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
        ];
        let wire = "4hello\x1e4€\x1ebAQIDBA==".as_bytes();
        assert_eq!(encode(&packets), Bytes::copy_from_slice(wire));
        let decoded: Vec<_> = decode_all(wire).into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, packets);
    }

    #[test]
    fn protocol_document_mixed_payload() {
        let wire = b"4hello\x1e2\x1e4world";
        let packets = vec![
            Packet::Message("hello".into()),
            Packet::PING,
            Packet::Message("world".into()),
        ];
        let decoded: Vec<_> = decode_all(wire).into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, packets);
        assert_eq!(encode(&packets), Bytes::from_static(wire));
    }

    #[test]
    fn heartbeat_and_probe_payloads() {
        assert_eq!(decode_all(b"2"), vec![Ok(Packet::PING)]);
        assert_eq!(
            decode_all(b"3\x1e6"),
            vec![Ok(Packet::PONG), Ok(Packet::Noop)]
        );
        assert_eq!(encode(&[Packet::Noop]), Bytes::from_static(b"6"));
        assert_eq!(encode(&[Packet::Close]), Bytes::from_static(b"1"));
    }

    #[test]
    fn stops_after_the_first_bad_record() {
        assert_eq!(
            decode_all(b"4a\x1eabc\x1e4b"),
            vec![
                Ok(Packet::Message("a".into())),
                Err(DecodeError::UnknownType(b'a'))
            ]
        );
        assert_eq!(decode_all(b""), vec![Err(DecodeError::Empty)]);
        assert_eq!(
            decode_all(b"4a\x1e"),
            vec![Ok(Packet::Message("a".into())), Err(DecodeError::Empty)]
        );
        assert_eq!(decode_all(b"b!!!"), vec![Err(DecodeError::InvalidBase64)]);
    }

    #[test]
    fn rejects_non_utf8_bodies() {
        assert_eq!(
            decode(Bytes::from_static(&[b'4', 0xff])).err(),
            Some(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn accepts_unpadded_base64() {
        assert_eq!(
            decode_all(b"bAQIDBA"),
            vec![Ok(Packet::Message(Message::Binary(Bytes::from_static(&[
                1, 2, 3, 4
            ]))))]
        );
    }

    /// Decoding must stay linear in the body: a body of many tiny packets
    /// once cost time quadratic in their number (the rest of the body was
    /// checked as UTF-8 again after every record). Counted, not timed.
    #[test]
    fn decoding_checks_each_byte_once() {
        for packets in [1usize, 1_000, 100_000] {
            let body = alloc::vec![*b"4a\x1e"; packets].concat();
            let body = Bytes::from(body[..body.len() - 1].to_vec());
            let before = crate::packet::work::validated();
            let decoded = decode(body.clone()).unwrap().count();
            let checked = crate::packet::work::validated() - before;
            assert_eq!(decoded, packets);
            assert!(
                checked <= body.len(),
                "{packets} packets: {checked} bytes checked for a body of {}",
                body.len()
            );
        }
    }

    #[test]
    fn count_fitting_respects_the_limit() {
        let packets = vec![
            Packet::Message("aaaa".into()), // 5 bytes
            Packet::Message("bbbb".into()), // +1+5 = 11
            Packet::Message("cccc".into()), // +1+5 = 17
        ];
        assert_eq!(count_fitting(&packets, 4), 1, "the first always goes");
        assert_eq!(count_fitting(&packets, 10), 1);
        assert_eq!(count_fitting(&packets, 11), 2);
        assert_eq!(count_fitting(&packets, 17), 3);
        assert_eq!(count_fitting(&[], 17), 0);
        let fitted = encode(&packets[..2]);
        assert_eq!(fitted.len(), 11);
    }
}
