use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use bytes::Bytes;
use engineio_proto::{Message, Str};

use super::{decode_packet, encode_packet, js_iso_date, MsgpackDecoder, MAX_DEPTH};
use crate::packet::{AckId, DecodeError, Packet, PacketKind};
use crate::parser::PacketDecoder;

fn hex(text: &str) -> Bytes {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .into()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
}

fn packet(kind: PacketKind, nsp: &str, data: Option<&str>) -> Packet {
    Packet::new(kind, Str::from(nsp), data.map(Str::from))
}

// Byte strings below were written by socket.io-msgpack-parser 3.0.2
// (notepack.io 2.2.0) for the same packets, as Node's server builds them;
// the interop suite (suite/tests/msgpack.rs) compares against the live
// package too.

#[test]
fn an_event_with_binary_is_written_as_node_writes_it() {
    let event = Packet {
        attachments: vec![Bytes::from_static(&[1, 2])],
        ..packet(
            PacketKind::Event,
            "/",
            Some(r#"["hi",1,-1,1.5,null,true,{"a":{"_placeholder":true,"num":0}}]"#),
        )
    };
    let expected =
        "83a47479706502a46461746197a2686901ffcb3ff8000000000000c0c381a161c4020102a36e7370a12f";
    assert_eq!(to_hex(&encode_packet(&event)), expected);
    assert_eq!(decode_packet(&hex(expected)), Ok(event));
}

#[test]
fn an_ack_puts_its_id_first_as_node_does() {
    let mut ack = packet(PacketKind::Ack, "/chat", Some("[]"));
    ack.id = Some(AckId(7));
    let expected = "84a2696407a47479706503a46461746190a36e7370a52f63686174";
    assert_eq!(to_hex(&encode_packet(&ack)), expected);
    assert_eq!(decode_packet(&hex(expected)), Ok(ack));
}

#[test]
fn connect_and_disconnect_are_written_as_node_writes_them() {
    let connect = packet(PacketKind::Connect, "/", Some(r#"{"sid":"abc"}"#));
    let expected = "83a47479706500a46461746181a3736964a3616263a36e7370a12f";
    assert_eq!(to_hex(&encode_packet(&connect)), expected);
    assert_eq!(decode_packet(&hex(expected)), Ok(connect));

    let disconnect = packet(PacketKind::Disconnect, "/", None);
    let expected = "82a47479706501a36e7370a12f";
    assert_eq!(to_hex(&encode_packet(&disconnect)), expected);
    assert_eq!(decode_packet(&hex(expected)), Ok(disconnect));
}

#[test]
fn numbers_take_their_smallest_form_and_whole_floats_are_integers() {
    let event = packet(
        PacketKind::Event,
        "/",
        Some(r#"["x",300,-200,70000,5000000000,-5000000000,2.0,-0.0]"#),
    );
    // notepack: uint16, int16, uint32, uint64, int64, then 2 and 0 as
    // fixints (JavaScript cannot tell 2.0 from 2).
    assert_eq!(
        to_hex(&encode_packet(&event)),
        "83a47479706502a46461746198a178cd012cd1ff38ce00011170cf000000012a05f200\
         d3fffffffed5fa0e000200a36e7370a12f"
    );
}

#[test]
fn undefined_and_dates_read_as_json_stringify_writes_them() {
    // ["x", undefined, new Date(0), 300, -200, 70000, 5e9, -5e9] from Node.
    let wire = hex(
        "83a47479706502a46461746198a178d40000d7000000000000000000cd012cd1ff38ce00011170\
         cf000000012a05f200d3fffffffed5fa0e00a36e7370a12f",
    );
    let decoded = decode_packet(&wire).unwrap();
    assert_eq!(
        decoded.data.as_deref(),
        Some(r#"["x",null,"1970-01-01T00:00:00.000Z",300,-200,70000,5000000000,-5000000000]"#)
    );
    // In a map, an undefined value leaves its key out.
    let wire = hex("83a474797065 02 a464617461 92 a178 82 a161 d40000 a162 01 a36e7370 a12f");
    assert_eq!(
        decode_packet(&wire).unwrap().data.as_deref(),
        Some(r#"["x",{"b":1}]"#)
    );
}

#[test]
fn every_binary_form_becomes_an_attachment_in_place() {
    // bin 8, ext 8 type 0 (a browser's ArrayBuffer), and another ext type,
    // which notepack yields as [type, buffer].
    let wire =
        hex("83 a474797065 02 a464617461 94 a162 c40101 c7020041 42 d5 05 0102 a36e7370 a12f");
    let decoded = decode_packet(&wire).unwrap();
    assert_eq!(
        decoded.data.as_deref(),
        Some(
            r#"["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},[5,{"_placeholder":true,"num":2}]]"#
        )
    );
    assert_eq!(
        decoded.attachments,
        vec![
            Bytes::from_static(&[1]),
            Bytes::from_static(b"AB"),
            Bytes::from_static(&[1, 2])
        ]
    );
}

#[test]
fn binary_in_a_connect_reads_as_a_json_node_buffer() {
    // {type: 0, data: {token: <bin 01 02>}, nsp: "/"}: only events and acks
    // carry attachments.
    let wire = hex("83 a474797065 00 a464617461 81 a5746f6b656e c4020102 a36e7370 a12f");
    let decoded = decode_packet(&wire).unwrap();
    assert_eq!(
        decoded.data.as_deref(),
        Some(r#"{"token":{"type":"Buffer","data":[1,2]}}"#)
    );
    assert!(decoded.attachments.is_empty());
}

#[test]
fn fields_come_in_any_order_and_unknown_ones_are_skipped() {
    // The official client adds `options: {compress: true}`.
    let wire = hex(
        "85 a36e7370 a12f a76f7074696f6e73 81 a8636f6d7072657373 c3 a26964 05 \
         a464617461 91 a161 a474797065 02",
    );
    let mut expected = packet(PacketKind::Event, "/", Some(r#"["a"]"#));
    expected.id = Some(AckId(5));
    assert_eq!(decode_packet(&wire), Ok(expected));
}

#[test]
fn strings_are_escaped_and_invalid_utf8_replaced() {
    // ["q\"\\\n\u0001", "\xff"]
    let wire = hex("83 a474797065 02 a464617461 92 a5 71225c0a01 a1 ff a36e7370 a12f");
    assert_eq!(
        decode_packet(&wire).unwrap().data.as_deref(),
        Some("[\"q\\\"\\\\\\n\\u0001\",\"\u{fffd}\"]")
    );
}

#[test]
fn nan_infinities_and_integer_keys_read_as_javascript_holds_them() {
    // [ "n", NaN (float64), Infinity (float32), 2.0 (float64), {1: true} ]
    let wire = hex(
        "83 a474797065 02 a464617461 95 a16e cb7ff8000000000000 ca7f800000 \
         cb4000000000000000 81 01 c3 a36e7370 a12f",
    );
    assert_eq!(
        decode_packet(&wire).unwrap().data.as_deref(),
        Some(r#"["n",null,null,2,{"1":true}]"#)
    );
}

/// The inputs of socketioxide's 2026 msgpack advisories, and their kin:
/// each closes the connection with a reason, and allocates nothing in
/// proportion to a length the message does not hold.
#[test]
fn hostile_inputs_are_refused() {
    let refused = |wire: Bytes| decode_packet(&wire).unwrap_err();

    // Deep nesting: arrays in arrays, past the limit.
    let mut wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161").to_vec();
    wire.extend(core::iter::repeat_n(0x91, MAX_DEPTH + 1));
    wire.push(0xc0);
    assert_eq!(
        refused(wire.into()),
        DecodeError::Msgpack("nested too deep")
    );
    // Exactly as deep as allowed: accepted, and readable by serde_json,
    // which the handlers' deserialization uses.
    let mut wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161").to_vec();
    wire.extend(core::iter::repeat_n(0x91, MAX_DEPTH - 1));
    wire.push(0xc0);
    let deepest = decode_packet(&wire.into()).unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(deepest.data.as_deref().unwrap()).is_ok());

    // A length larger than the data: array 32 of 4 billion items, str 32,
    // bin 32, map 32.
    for header in [
        "dd ffffffff",
        "db ffffffff 41",
        "c6 ffffffff",
        "df ffffffff",
    ] {
        let wire = hex(&alloc::format!(
            "83 a474797065 02 a36e7370 a12f a464617461 {header}"
        ));
        assert_eq!(
            refused(wire),
            DecodeError::Msgpack("length beyond the end of the message"),
            "{header}"
        );
    }

    // A map that ends in a key without a value.
    let wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161 81 a16b");
    assert_eq!(
        refused(wire),
        DecodeError::Msgpack("length beyond the end of the message")
    );

    // Ext types: a truncated fixext, an ext 32 longer than the message.
    for ext in ["d4 05", "d8 01 0000", "c9 ffffffff 01"] {
        let wire = hex(&alloc::format!(
            "83 a474797065 02 a36e7370 a12f a464617461 92 a161 {ext}"
        ));
        assert_eq!(
            refused(wire),
            DecodeError::Msgpack("length beyond the end of the message"),
            "{ext}"
        );
    }

    // The reserved byte, trailing bytes, a bare value, a map key that is
    // a container.
    let wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161 c1");
    assert_eq!(refused(wire), DecodeError::Msgpack("reserved byte 0xc1"));
    let wire = hex("82 a474797065 01 a36e7370 a12f 00");
    assert_eq!(refused(wire), DecodeError::Msgpack("trailing bytes"));
    assert_eq!(
        refused(hex("92 02 a12f")),
        DecodeError::Msgpack("a packet is a map")
    );
    let wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161 81 90 01");
    assert!(matches!(refused(wire), DecodeError::Msgpack(_)));

    // A literal placeholder cannot point at attachments.
    let wire = hex("83 a474797065 02 a36e7370 a12f a464617461 92 a161 \
         82 ac5f706c616365686f6c646572 c3 a36e756d 00");
    assert_eq!(
        refused(wire),
        DecodeError::Msgpack("literal binary placeholder")
    );
}

#[test]
fn packets_are_checked_as_node_checks_them() {
    let refused = |wire: &str| decode_packet(&hex(wire)).unwrap_err();
    // type 5, a string type, no type, a float type.
    assert_eq!(
        refused("82 a474797065 05 a36e7370 a12f"),
        DecodeError::Msgpack("invalid packet type")
    );
    assert_eq!(
        refused("82 a474797065 a132 a36e7370 a12f"),
        DecodeError::Msgpack("invalid packet type")
    );
    assert_eq!(
        refused("81 a36e7370 a12f"),
        DecodeError::Msgpack("invalid packet type")
    );
    assert_eq!(
        refused("82 a474797065 cb3ff8000000000000 a36e7370 a12f"),
        DecodeError::Msgpack("invalid packet type")
    );
    // A whole float is an integer, as Number.isInteger says.
    assert!(decode_packet(&hex("82 a474797065 cb3ff0000000000000 a36e7370 a12f")).is_ok());
    // No namespace, a number as namespace.
    assert_eq!(
        refused("81 a474797065 01"),
        DecodeError::Msgpack("invalid namespace")
    );
    assert_eq!(
        refused("82 a474797065 01 a36e7370 01"),
        DecodeError::Msgpack("invalid namespace")
    );
    // An event whose data is not an array, or names a reserved event; a
    // DISCONNECT with data; a CONNECT whose auth is not an object.
    assert_eq!(
        refused("83 a474797065 02 a36e7370 a12f a464617461 a161"),
        DecodeError::InvalidPayload
    );
    assert_eq!(
        refused("83 a474797065 02 a36e7370 a12f a464617461 91 aa646973636f6e6e656374"),
        DecodeError::InvalidPayload
    );
    assert_eq!(
        refused("83 a474797065 01 a36e7370 a12f a464617461 90"),
        DecodeError::InvalidPayload
    );
    assert_eq!(
        refused("83 a474797065 00 a36e7370 a12f a464617461 90"),
        DecodeError::InvalidPayload
    );
    // An event without data (found by the fuzzer).
    assert_eq!(
        refused("82 a474797065 02 a36e7370 a12f"),
        DecodeError::InvalidPayload
    );
    // An id that is negative or not a number; `undefined` is no id.
    assert_eq!(
        refused("83 a474797065 03 a36e7370 a12f a26964 ff"),
        DecodeError::InvalidAckId
    );
    assert_eq!(
        refused("83 a474797065 03 a36e7370 a12f a26964 c0"),
        DecodeError::InvalidAckId
    );
    assert_eq!(
        decode_packet(&hex("83 a474797065 01 a36e7370 a12f a26964 d40000"))
            .unwrap()
            .id,
        None
    );
}

#[test]
fn the_decoder_reads_binary_messages_only() {
    let mut decoder = MsgpackDecoder;
    assert_eq!(
        decoder.decode(Message::Text(Str::from("2[\"a\"]"))),
        Err(DecodeError::UnexpectedTextForBinaryParser)
    );
    let wire = hex("82 a474797065 01 a36e7370 a12f");
    assert_eq!(
        decoder.decode(Message::Binary(wire)),
        Ok(Some(packet(PacketKind::Disconnect, "/", None)))
    );
}

#[test]
fn dates_print_as_javascript_prints_them() {
    assert_eq!(js_iso_date(0).unwrap(), "1970-01-01T00:00:00.000Z");
    assert_eq!(js_iso_date(-1).unwrap(), "1969-12-31T23:59:59.999Z");
    assert_eq!(
        js_iso_date(951_782_400_000).unwrap(),
        "2000-02-29T00:00:00.000Z"
    );
    assert_eq!(
        js_iso_date(8_640_000_000_000_000).unwrap(),
        "+275760-09-13T00:00:00.000Z"
    );
    assert_eq!(
        js_iso_date(-62_198_755_200_000).unwrap(),
        "-000001-01-01T00:00:00.000Z"
    );
    assert_eq!(js_iso_date(8_640_000_000_000_001), None);
    assert_eq!(js_iso_date(i64::MIN), None);
}
