use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn text(message: &str) -> EncodedMessage {
    EncodedMessage::from(Message::from(message))
}

fn binary(data: &'static [u8]) -> EncodedMessage {
    EncodedMessage::from(Message::Binary(Bytes::from_static(data)))
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_all(body: &[u8], binary: bool) -> Vec<Result<Packet, DecodeError>> {
    decode_payload(Bytes::copy_from_slice(body), binary)
        .unwrap()
        .collect()
}

/// The packets of the fixtures below, as Node's server holds them.
fn node_packets() -> Vec<EncodedMessage> {
    vec![
        EncodedMessage::control(&Packet::Open(r#"{"sid":"a"}"#.into())),
        text("héllo 😀"),
        binary(&[1, 2, 3]),
        EncodedMessage::control(&Packet::PING),
    ]
}

// Written by Node's engine.io 6.6.12 `parser-v3` (`encodePayload`) for
// the same packets, without and with binary support.

#[test]
fn a_text_payload_counts_utf16_units_as_node_does() {
    let expected = "12:0{\"sid\":\"a\"}9:4héllo 😀6:b4AQID1:2";
    let (body, is_binary) = encode_payload(&node_packets(), false);
    assert_eq!((&body[..], is_binary), (expected.as_bytes(), false));
    let decoded: Vec<Packet> = decode_all(expected.as_bytes(), false)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        decoded,
        vec![
            Packet::Open(r#"{"sid":"a"}"#.into()),
            Packet::Message("héllo 😀".into()),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3]))),
            Packet::PING,
        ]
    );
}

#[test]
fn a_binary_payload_is_written_as_node_writes_it() {
    let expected = hex(
        "000102ff307b22736964223a2261227d000102ff3468c3a96c6c6f20f09f98800104ff040102030001ff32",
    );
    let (body, is_binary) = encode_payload(&node_packets(), true);
    assert_eq!((&body[..], is_binary), (&expected[..], true));
    let decoded: Vec<Packet> = decode_all(&expected, true)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(decoded.len(), 4);
    assert_eq!(
        decoded[2],
        Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3])))
    );
    // Without a binary message, a client with binary support gets text.
    let (body, is_binary) = encode_payload(&[EncodedMessage::control(&Packet::Noop)], true);
    assert_eq!((&body[..], is_binary), (&b"1:6"[..], false));
}

#[test]
fn bad_text_payloads_stop_with_an_error() {
    // The length of "4h😀ll" is 6 units; what follows is no record.
    assert_eq!(
        decode_all("6:4h😀llo2:40".as_bytes(), false),
        vec![
            Ok(Packet::Message("h😀ll".into())),
            Err(DecodeError::InvalidLength)
        ]
    );
    // A length splitting a surrogate pair, a length beyond the body, no
    // colon, letters as a length, too many digits, a bad packet.
    for body in ["2:4😀", "9:4ab", "4ab", "x:4", "12345678901:4"] {
        assert_eq!(
            decode_all(body.as_bytes(), false),
            vec![Err(DecodeError::InvalidLength)],
            "{body}"
        );
    }
    assert_eq!(
        decode_all(b"2:9a", false),
        vec![Err(DecodeError::UnknownType(b'9'))]
    );
    assert_eq!(
        decode_all(b"4:b4!!", false),
        vec![Err(DecodeError::InvalidBase64)]
    );
    assert_eq!(
        decode_all(b"3:b2A", false),
        vec![Err(DecodeError::UnknownType(b'2'))]
    );
    assert_eq!(
        decode_payload(Bytes::new(), false).err(),
        Some(DecodeError::Empty)
    );
    // Empty records are skipped, as in Node.
    assert_eq!(decode_all(b"0:1:2", false), vec![Ok(Packet::PING)]);
}

#[test]
fn bad_binary_payloads_stop_with_an_error() {
    for body in [
        &[2u8, 1, 0xff, b'2'][..],     // neither text nor binary
        &[0, 1, 2][..],                // no 0xff
        &[0, 0xff, b'2'][..],          // no digits
        &[0, 10, 0xff, b'2'][..],      // a digit over 9
        &[0, 5, 0xff, b'2'][..],       // longer than the body
        &[1, 1, 0xff, 2][..],          // a binary ping
        &[0, 2, 0xff, b'4', 0xff][..], // text that is not UTF-8
    ] {
        assert!(decode_all(body, true)[0].is_err(), "{body:?}");
    }
    assert_eq!(decode_all(&[], true), vec![]);
}

#[test]
fn websocket_binary_frames_carry_their_type_byte() {
    let frame = encode_frame(binary(&[9, 8]));
    assert_eq!(frame, Frame::Binary(Bytes::from_static(&[4, 9, 8])));
    assert_eq!(
        decode_frame(frame),
        Ok(Packet::Message(Message::Binary(Bytes::from_static(&[
            9, 8
        ]))))
    );
    assert_eq!(encode_frame(text("hi")), Frame::Text("4hi".into()));
    assert_eq!(
        decode_frame(Frame::Text("b4AQI=".into())),
        Ok(Packet::Message(Message::Binary(Bytes::from_static(&[
            1, 2
        ]))))
    );
    assert_eq!(
        decode_frame(Frame::Text("2probe".into())),
        Ok(Packet::PING_PROBE)
    );
    assert_eq!(
        decode_frame(Frame::Binary(Bytes::new())),
        Err(DecodeError::Empty)
    );
}
