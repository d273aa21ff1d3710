//! Packet codec: whatever bytes arrive as a WebSocket frame, decoding never
//! panics, and a decoded packet survives a canonical round trip.

#![no_main]

use bytes::Bytes;
use engineio_proto::{Frame, Message, Packet, PacketType, Str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(text) = core::str::from_utf8(data) {
        // Both constructors must agree on what the text is.
        let via_from = Str::from(text);
        let via_utf8 = Str::from_utf8(bytes.clone()).expect("valid UTF-8 accepted");
        assert_eq!(via_from, via_utf8);
        assert_eq!(via_from.as_str(), text);

        match Packet::decode_text(via_from) {
            Ok(packet) => {
                assert_eq!(Some(packet.packet_type()), PacketType::from_byte(data[0]));
                check_round_trip(&packet);
                // Text-bearing packets keep their data verbatim; the others
                // drop whatever follows the digit.
                let expected_tail = match packet.packet_type() {
                    PacketType::Close | PacketType::Upgrade | PacketType::Noop => "",
                    _ => &text[1..],
                };
                match packet.encode_frame() {
                    Frame::Text(wire) => {
                        assert_eq!(wire.as_bytes()[0], data[0]);
                        assert_eq!(&wire.as_str()[1..], expected_tail);
                    }
                    Frame::Binary(_) => panic!("text packet encoded as a binary frame"),
                }
            }
            Err(_) => {
                // Only an empty text or an unknown type digit is refused.
                assert!(data.is_empty() || PacketType::from_byte(data[0]).is_none());
            }
        }

        let frame = Frame::Text(Str::from(text));
        assert_eq!(frame.len(), data.len());
        if let Ok(packet) = Packet::decode_frame(frame) {
            check_round_trip(&packet);
        }
    } else {
        assert!(Str::from_utf8(bytes.clone()).is_err());
    }

    // Any binary frame is a binary message, passed through unchanged.
    let packet =
        Packet::decode_frame(Frame::Binary(bytes.clone())).expect("binary frames always decode");
    assert_eq!(packet, Packet::Message(Message::Binary(bytes.clone())));
    check_round_trip(&packet);
    assert_eq!(packet.encode_frame(), Frame::Binary(bytes));
});

/// encode → decode gives the same packet, and encoding is then a fixed point.
fn check_round_trip(packet: &Packet) {
    let frame = packet.encode_frame();
    let again = Packet::decode_frame(frame.clone()).expect("an encoded packet decodes");
    assert_eq!(&again, packet);
    assert_eq!(again.encode_frame(), frame);

    // The payload form's announced length matches what is written.
    let mut out = bytes::BytesMut::new();
    packet.write_in_payload(&mut out);
    assert_eq!(out.len(), packet.encoded_len_in_payload());
}
