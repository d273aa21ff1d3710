//! The msgpack parser: whatever bytes arrive as one binary message, the
//! decoder never panics and never allocates beyond the message's own size
//! several times over (libFuzzer's `-rss_limit_mb` and `-malloc_limit_mb`
//! watch that); a packet it accepts is valid for its kind (the JSON
//! parser's checks), and survives a round trip through the encoder: the
//! same kind, namespace, id and values, and the encoding is canonical from
//! the first re-encoding on.

#![no_main]

use bytes::Bytes;
use engineio_proto::Message;
use libfuzzer_sys::fuzz_target;
use socketio_proto::msgpack::{decode_packet, encode_packet};
use socketio_proto::{Decoder, DecoderConfig, MsgpackParser, Packet, PacketKind, SharedParser};

fuzz_target!(|data: &[u8]| {
    let wire = Bytes::copy_from_slice(data);
    let Ok(packet) = decode_packet(&wire) else {
        return;
    };
    check_valid(&packet);

    let encoded = Bytes::from(encode_packet(&packet));
    let again = decode_packet(&encoded).expect("our own encoding decodes");
    assert_eq!(
        (again.kind, &again.nsp, again.id),
        (packet.kind, &packet.nsp, packet.id)
    );
    assert_eq!(again.attachments, packet.attachments);
    assert_eq!(again.data, packet.data, "values changed in a round trip");
    assert_eq!(
        encode_packet(&again),
        encoded.to_vec(),
        "encoding is not canonical"
    );

    // Through the parser's own entry points too.
    let parser = SharedParser::new(MsgpackParser);
    let mut decoder = parser.decoder(&DecoderConfig::default());
    assert_eq!(
        decoder
            .decode(Message::Binary(wire))
            .expect("decoded above"),
        Some(packet)
    );
});

/// What the rest of the stack relies on: the data has the JSON parser's
/// shape for the kind, and only events and acks carry attachments.
fn check_valid(packet: &Packet) {
    if !matches!(packet.kind, PacketKind::Event | PacketKind::Ack) {
        assert!(packet.attachments.is_empty());
    }
    // The same packet through the JSON parser's checks: encoded as text
    // with its attachments, it decodes.
    let mut config = DecoderConfig::default();
    config.max_attachments = usize::MAX;
    let mut decoder = Decoder::new(config);
    let mut decoded = None;
    if packet.nsp.contains(',') || !packet.nsp.starts_with('/') {
        // Not expressible in the JSON parser's text form.
        return;
    }
    for message in packet.encode().messages() {
        decoded = decoder.decode(message).expect("valid for the JSON parser");
    }
    assert!(decoded.is_some());
}
