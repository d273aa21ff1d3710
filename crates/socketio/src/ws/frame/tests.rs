use super::*;
use crate::ws::deflate::{accept_offer, Deflater, PerMessageDeflate};

const MAX: usize = 1000;

fn server() -> Decoder {
    Decoder::new(Role::Server, MAX, None)
}

fn masked(opcode: u8, fin: bool, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode(&mut out, opcode, false, payload, Some([1, 2, 3, 4]));
    if !fin {
        out[0] &= 0x7f;
    }
    out
}

/// A server's frame (unmasked), with FIN as given.
fn plain(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    encode(&mut out, opcode, rsv1, payload, None);
    if !fin {
        out[0] &= 0x7f;
    }
    out
}

fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Vec<Result<Event, Broken>> {
    let mut buf = BytesMut::from(bytes);
    let mut events = Vec::new();
    loop {
        match decoder.decode(&mut buf) {
            Ok(Decoded::Event(event)) => events.push(Ok(event)),
            Ok(Decoded::Need(_)) => return events,
            Err(broken) => {
                events.push(Err(broken));
                return events;
            }
        }
    }
}

fn text(s: &str) -> Result<Event, Broken> {
    Ok(Event::Message(Frame::Text(Str::from(s))))
}

#[test]
fn every_length_encoding_round_trips_for_both_roles() {
    for len in [0, 1, 125, 126, 127, 999, 1000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        for (role, mask) in [(Role::Server, Some([9, 8, 7, 6])), (Role::Client, None)] {
            let mut out = BytesMut::new();
            encode(&mut out, BINARY, false, &payload, mask);
            let mut decoder = Decoder::new(role, MAX, None);
            let events = decode_all(&mut decoder, &out);
            assert_eq!(
                events,
                vec![Ok(Event::Message(Frame::Binary(payload.clone().into())))]
            );
        }
    }
    // 16- and 64-bit lengths as the header writes them.
    let mut out = BytesMut::new();
    encode(&mut out, TEXT, false, &[b'a'; 126], None);
    assert_eq!(&out[..4], &[0x81, 126, 0, 126]);
    let mut out = BytesMut::new();
    encode(&mut out, BINARY, true, &vec![0; 65536], None);
    assert_eq!(&out[..10], &[0xc2, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn a_frame_arriving_a_byte_at_a_time_is_read_once_whole() {
    let frame = masked(TEXT, true, b"4hello");
    let mut decoder = server();
    let mut buf = BytesMut::new();
    for (i, byte) in frame.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        let decoded = decoder.decode(&mut buf).unwrap();
        if i + 1 < frame.len() {
            assert!(matches!(decoded, Decoded::Need(n) if n >= 1), "{decoded:?}");
        } else {
            assert_eq!(
                decoded,
                Decoded::Event(Event::Message(Frame::Text(Str::from("4hello"))))
            );
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn fragments_are_reassembled_around_control_frames() {
    let mut bytes = masked(TEXT, false, b"4he");
    bytes.extend_from_slice(&masked(PING, true, b"p"));
    bytes.extend_from_slice(&masked(CONTINUATION, false, b"ll"));
    bytes.extend_from_slice(&masked(PONG, true, b""));
    bytes.extend_from_slice(&masked(CONTINUATION, true, b"o"));
    bytes.extend_from_slice(&masked(CLOSE, true, &close_payload(1000, "bye")));
    let events = decode_all(&mut server(), &bytes);
    assert_eq!(
        events,
        vec![
            Ok(Event::Ping(Bytes::from_static(b"p"))),
            text("4hello"),
            Ok(Event::Close(Some(1000))),
        ]
    );
}

#[test]
fn protocol_errors_get_node_s_close_codes() {
    let code = |bytes: &[u8], decoder: &mut Decoder| match decode_all(decoder, bytes).pop() {
        Some(Err(broken)) => broken.code,
        other => panic!("{other:?}"),
    };
    // Unmasked to a server, masked to a client.
    let mut plain = BytesMut::new();
    encode(&mut plain, TEXT, false, b"4x", None);
    assert_eq!(code(&plain, &mut server()), 1002);
    let mut client = Decoder::new(Role::Client, MAX, None);
    assert_eq!(code(&masked(TEXT, true, b"4x"), &mut client), 1002);
    // Reserved bits, RSV1 without permessage-deflate, unknown opcodes.
    for first in [0xa1, 0x91, 0xc1, 0x83, 0x8b] {
        let mut frame = masked(TEXT, true, b"4x");
        frame[0] = first;
        assert_eq!(code(&frame, &mut server()), 1002, "{first:#x}");
    }
    // Control frames: fragmented, too long, a close with one byte or a
    // reserved code.
    assert_eq!(code(&masked(PING, false, b""), &mut server()), 1002);
    assert_eq!(code(&masked(PING, true, &[0; 126]), &mut server()), 1002);
    assert_eq!(code(&masked(CLOSE, true, &[3]), &mut server()), 1002);
    for reserved in [999, 1004, 1005, 1006, 1015, 2999, 5000] {
        let frame = masked(CLOSE, true, &close_payload(reserved, ""));
        assert_eq!(code(&frame, &mut server()), 1002, "{reserved}");
    }
    // Continuations out of place.
    assert_eq!(code(&masked(CONTINUATION, true, b"x"), &mut server()), 1002);
    let mut twice = masked(TEXT, false, b"4");
    twice.extend_from_slice(&masked(TEXT, true, b"4"));
    assert_eq!(code(&twice, &mut server()), 1002);
    // Not UTF-8: a text message, a close reason.
    assert_eq!(
        code(&masked(TEXT, true, &[b'4', 0xff]), &mut server()),
        1007
    );
    let mut reason = close_payload(1000, "");
    reason.push(0xff);
    assert_eq!(code(&masked(CLOSE, true, &reason), &mut server()), 1007);
}

#[test]
fn sizes_are_refused_from_the_header_before_anything_is_buffered() {
    // A header claiming 2^63 bytes.
    let mut header = BytesMut::from(&[0x81, 0xff][..]);
    header.extend_from_slice(&(1u64 << 63).to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    let broken = decode_all(&mut server(), &header)
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!((broken.code, broken.failure), (1009, WsFailure::TooLarge));
    // Fragments adding up past the limit.
    let mut bytes = masked(TEXT, false, &[b'a'; 600]);
    bytes.extend_from_slice(&masked(CONTINUATION, false, &[b'a'; 400]));
    let header_only = masked(CONTINUATION, true, &[b'a'; 1]);
    bytes.extend_from_slice(&header_only[..2]);
    let broken = decode_all(&mut server(), &bytes)
        .pop()
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.code, 1009);
    // Exactly the limit is fine.
    let events = decode_all(&mut server(), &masked(BINARY, true, &[7; MAX]));
    assert!(matches!(&events[..], [Ok(Event::Message(Frame::Binary(b)))] if b.len() == MAX));
}

#[test]
fn masking_matches_the_rfc_byte_by_byte() {
    for len in 0..40 {
        let data: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut fast = data.clone();
        apply_mask(&mut fast, mask);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, slow, "length {len}");
    }
    // RFC 6455 section 5.7: a masked "Hello".
    let frame = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut decoder = server();
    assert_eq!(decode_all(&mut decoder, &frame), vec![text("Hello")]);
}

#[test]
fn compressed_messages_are_inflated_whole_and_bounded() {
    let config = PerMessageDeflate::default().threshold(0);
    let (agreed, _) = accept_offer(&config, ["permessage-deflate"].into_iter())
        .unwrap()
        .unwrap();
    let mut deflater = Deflater::new(agreed);
    let mut decoder = Decoder::new(Role::Client, MAX, Some(Inflater::new(agreed)));
    // One frame, then the same message in three fragments.
    let message = "4".to_owned() + &"chat message ".repeat(40);
    let mut compressed = Vec::new();
    deflater
        .compress(message.as_bytes(), &mut compressed)
        .unwrap();
    assert!(compressed.len() < message.len() / 4);
    let mut bytes = plain(TEXT, true, true, &compressed);
    let mut again = Vec::new();
    deflater.compress(message.as_bytes(), &mut again).unwrap();
    let (a, rest) = again.split_at(again.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    bytes.extend_from_slice(&plain(TEXT, false, true, a));
    bytes.extend_from_slice(&plain(CONTINUATION, false, false, b));
    bytes.extend_from_slice(&plain(CONTINUATION, true, false, c));
    assert_eq!(
        decode_all(&mut decoder, &bytes),
        vec![text(&message), text(&message)]
    );
    // RSV1 on a continuation frame is a protocol error.
    let mut bad = plain(TEXT, false, true, &compressed);
    bad.extend_from_slice(&plain(CONTINUATION, true, true, b""));
    let mut decoder = Decoder::new(Role::Client, MAX, Some(Inflater::new(agreed)));
    assert_eq!(
        decode_all(&mut decoder, &bad)
            .pop()
            .unwrap()
            .unwrap_err()
            .code,
        1002
    );
    // A bomb: 100 KB of zeros in a few hundred bytes, over the limit.
    let mut bomb = Vec::new();
    Deflater::new(agreed)
        .compress(&vec![0; 100_000], &mut bomb)
        .unwrap();
    assert!(bomb.len() < MAX);
    let mut frame = BytesMut::new();
    encode(&mut frame, BINARY, true, &bomb, None);
    let mut decoder = Decoder::new(Role::Client, MAX, Some(Inflater::new(agreed)));
    let broken = decode_all(&mut decoder, &frame).pop().unwrap().unwrap_err();
    assert_eq!((broken.code, broken.failure), (1009, WsFailure::TooLarge));
    // Garbage.
    let mut frame = BytesMut::new();
    encode(&mut frame, BINARY, true, &[0xff; 20], None);
    let mut decoder = Decoder::new(Role::Client, MAX, Some(Inflater::new(agreed)));
    assert_eq!(
        decode_all(&mut decoder, &frame)
            .pop()
            .unwrap()
            .unwrap_err()
            .code,
        1007
    );
}
