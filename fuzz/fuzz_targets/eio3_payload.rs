//! The Engine.IO v3 codecs (`engineio_proto::v3`): whatever bytes arrive as
//! a polling body (text when UTF-8, and as a binary payload) or as a
//! WebSocket frame, decoding never panics and stops at the first bad
//! record; the messages decoded re-encode, as text and as a binary
//! payload, to bodies that decode to the same messages; a frame's message
//! re-encodes to a frame that decodes to it.

#![no_main]

use bytes::Bytes;
use engineio_proto::{v3, EncodedMessage, Frame, Packet, Str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(records) = v3::decode_payload(body.clone(), false) {
            check_round_trip(records.collect());
        }
        let _ = v3::decode_frame(Frame::Text(Str::from(text)));
    }
    if let Ok(records) = v3::decode_payload(body.clone(), true) {
        check_round_trip(records.collect());
    }
    if let Ok(Packet::Message(message)) = v3::decode_frame(Frame::Binary(body)) {
        let frame = v3::encode_frame(EncodedMessage::from(message.clone()));
        assert_eq!(v3::decode_frame(frame), Ok(Packet::Message(message)));
    }
});

/// The messages before the first error re-encode both ways and decode back.
fn check_round_trip(records: Vec<Result<Packet, engineio_proto::DecodeError>>) {
    let errors = records.iter().filter(|r| r.is_err()).count();
    assert!(errors <= 1, "decoding goes on after an error");
    if let Some(position) = records.iter().position(Result::is_err) {
        assert_eq!(position, records.len() - 1, "an error is the last item");
    }
    let messages: Vec<_> = records
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|packet| match packet {
            Packet::Message(message) => Some(message),
            _ => None,
        })
        .collect();
    if messages.is_empty() {
        return;
    }
    let encoded: Vec<EncodedMessage> = messages.iter().cloned().map(EncodedMessage::from).collect();
    for binary_allowed in [false, true] {
        let (body, is_binary) = v3::encode_payload(&encoded, binary_allowed);
        let again: Vec<Packet> = v3::decode_payload(body, is_binary)
            .expect("our own payload")
            .collect::<Result<_, _>>()
            .expect("our own payload decodes");
        let expected: Vec<Packet> = messages.iter().cloned().map(Packet::Message).collect();
        assert_eq!(again, expected);
    }
}
