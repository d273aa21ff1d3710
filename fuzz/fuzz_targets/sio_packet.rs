//! Packet codec: whatever text arrives as one message, a fresh decoder never
//! panics, and a decoded packet (completed with attachments when it announced
//! some) survives a round trip through `Packet::encode`.
//!
//! Decoding normalises (`50-[..]` is a plain event, `/nsp` without its comma
//! gets one, `/,` disappears, leading zeros of numbers go), so the round trip
//! compares decoded packets, and the canonical text only from the second
//! encoding on.

#![no_main]

use bytes::Bytes;
use engineio_proto::{Message, Str};
use libfuzzer_sys::fuzz_target;
use socketio_proto::{DecodeError, Decoder, DecoderConfig, Packet, PacketKind};

fuzz_target!(|data: &[u8]| {
    // A binary message with no binary packet announced is always refused.
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode(Message::Binary(Bytes::copy_from_slice(data))),
        Err(DecodeError::UnexpectedBinary)
    );
    assert!(!decoder.is_reassembling());

    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let config = DecoderConfig::default();
    let mut decoder = Decoder::new(config.clone());
    let packet = match decoder.decode(Message::Text(Str::from(text))) {
        Ok(Some(packet)) => {
            assert!(!decoder.is_reassembling());
            assert!(packet.attachments.is_empty());
            packet
        }
        Ok(None) => {
            // A binary packet: complete it with as many attachments as it
            // announced, within the limit.
            assert!(decoder.is_reassembling());
            assert!(
                matches!(data[0], b'5' | b'6'),
                "{text:?} waits for attachments"
            );
            let announced = announced(text).expect("a waiting packet announced a count");
            assert!((1..=config.max_attachments).contains(&announced));
            let mut completed = None;
            for i in 0..announced {
                let attachment = Bytes::from(vec![i as u8; i]);
                match decoder.decode(Message::Binary(attachment)) {
                    Ok(None) => assert!(i + 1 < announced, "packet not completed"),
                    Ok(Some(packet)) => {
                        assert_eq!(i + 1, announced, "packet completed early");
                        completed = Some(packet);
                    }
                    Err(error) => panic!("attachment {i} refused: {error}"),
                }
            }
            assert!(!decoder.is_reassembling());
            let packet = completed.expect("completed");
            assert_eq!(packet.attachments.len(), announced);
            for (i, attachment) in packet.attachments.iter().enumerate() {
                assert_eq!(&attachment[..], &vec![i as u8; i][..]);
            }
            packet
        }
        Err(error) => {
            assert!(!decoder.is_reassembling());
            if data.is_empty() {
                assert_eq!(error, DecodeError::Empty);
            }
            return;
        }
    };

    let kind = match data[0] {
        b'0' => PacketKind::Connect,
        b'1' => PacketKind::Disconnect,
        b'2' | b'5' => PacketKind::Event,
        b'3' | b'6' => PacketKind::Ack,
        b'4' => PacketKind::ConnectError,
        other => panic!("packet decoded from type byte {other:#04x}"),
    };
    assert_eq!(packet.kind, kind);
    assert!(packet.nsp.starts_with('/'), "namespace {:?}", packet.nsp);
    assert!(!packet.nsp.contains(','), "namespace {:?}", packet.nsp);
    if kind == PacketKind::Event {
        assert!(packet.data.is_some(), "an event without data");
    }
    check_round_trip(&packet);
});

/// The attachment count of a `5`/`6` text: the digits before the `-`.
fn announced(text: &str) -> Option<usize> {
    let digits: &str = text[1..].split('-').next()?;
    let mut n = 0usize;
    for d in digits.bytes() {
        n = n.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
    }
    Some(n)
}

/// encode → decode gives the same packet, and encoding it again gives the
/// same messages (the first encoding is canonical).
fn check_round_trip(packet: &Packet) {
    let encoded = packet.encode();
    assert_eq!(encoded.message_count(), 1 + packet.attachments.len());
    let messages: Vec<Message> = encoded.messages().collect();
    assert_eq!(messages.len(), encoded.message_count());
    let last = messages.len() - 1;
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut again = None;
    for (i, message) in messages.into_iter().enumerate() {
        match decoder.decode(message) {
            Ok(None) => assert!(i < last, "re-encoded packet incomplete"),
            Ok(Some(packet)) => {
                assert_eq!(i, last, "re-encoded packet complete early");
                again = Some(packet);
            }
            Err(error) => panic!("re-encoded {:?} refused: {error}", encoded.head()),
        }
    }
    let again = again.expect("re-encoded packet decodes");
    assert_eq!(&again, packet, "wire {:?}", encoded.head());
    assert_eq!(again.encode(), encoded, "encoding is not canonical");
    let Message::Text(text) = encoded.head() else {
        panic!("the JSON parser writes text first");
    };
    assert_eq!(again.wire_type(), text.as_bytes()[0]);
}
