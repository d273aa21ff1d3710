//! Property tests of the Socket.IO packet codec.
//!
//! * Round trips: any packet valid for its kind (namespace, ack id, a JSON
//!   payload of the right shape with placeholders nested anywhere, 0..5
//!   attachments) goes `encode` → `messages()` → `Decoder::decode` and comes
//!   back equal, and its encoding is canonical.
//! * Totality: no sequence of text and binary messages makes the decoder
//!   panic; it yields at most one packet per text message it accepted, is
//!   never left reassembling after an error, and whatever it yields
//!   round-trips.

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use bytes::Bytes;
use engineio_proto::{Message, Str};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value};
use socketio_proto::packet::RESERVED_EVENTS;
use socketio_proto::{
    AckId, DecodeError, Decoder, DecoderConfig, EncodedPacket, MsgpackParser, Packet, PacketKind,
    SharedParser,
};

/// The text message of a packet the JSON parser encoded.
fn text_of(encoded: &EncodedPacket) -> Str {
    match encoded.head() {
        Message::Text(text) => text.clone(),
        Message::Binary(_) => panic!("the JSON parser writes text first"),
    }
}

/// A payload with its placeholders replaced by the bytes they stand for,
/// and numbers as f64: what the application reads, whatever the parser.
fn resolved(packet: &Packet) -> Option<Value> {
    fn resolve(value: Value, attachments: &[Bytes]) -> Value {
        match value {
            Value::Object(map) => {
                if !attachments.is_empty() && map.get("_placeholder") == Some(&Value::Bool(true)) {
                    let num = map["num"].as_u64().unwrap() as usize;
                    return Value::String(format!("bytes {:?}", attachments[num]));
                }
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, resolve(v, attachments)))
                        .collect(),
                )
            }
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| resolve(v, attachments)).collect())
            }
            Value::Number(n) => serde_json::json!(n.as_f64()),
            other => other,
        }
    }
    let data = packet.data.as_deref()?;
    Some(resolve(
        serde_json::from_str(data).unwrap(),
        &packet.attachments,
    ))
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// `{"_placeholder":true,"num":n}`.
fn placeholder(num: u64) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), Value::from(num));
    Value::Object(map)
}

/// A leaf value. In a packet with attachments every placeholder indexes
/// one of them (anything else is refused, as by Node's parser); in one
/// without, placeholder-shaped objects are plain data.
fn leaf(attachments: u64) -> impl Strategy<Value = Value> {
    let nums = if attachments == 0 {
        0..8
    } else {
        0..attachments
    };
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Non-finite floats have no JSON form (`from` makes them null).
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/,0-9a-z€]{0,8}".prop_map(Value::String),
        nums.prop_map(placeholder),
    ]
}

/// Any JSON value, placeholders included at any depth.
fn json(attachments: u64) -> impl Strategy<Value = Value> {
    leaf(attachments).prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(("[a-z_]{0,6}", inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    vec(("[a-zA-Z_\"]{0,6}", json(0)), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect()))
}

/// An event name: a string that is not reserved, or a number.
fn event_name() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>()
            .prop_filter("reserved", |s| !RESERVED_EVENTS.contains(&s.as_str()))
            .prop_map(Value::String),
        Just(Value::from("message")),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

fn text(value: &Value) -> Str {
    Str::from(serde_json::to_string(value).expect("a Value serializes"))
}

/// `[name, ...args]`, with one placeholder per attachment appended.
fn event_data(attachments: usize) -> impl Strategy<Value = Str> {
    (event_name(), vec(json(attachments as u64), 0..4)).prop_map(move |(name, args)| {
        let mut items = vec![name];
        items.extend(args);
        items.extend((0..attachments as u64).map(placeholder));
        text(&Value::Array(items))
    })
}

fn ack_data(attachments: usize) -> impl Strategy<Value = Str> {
    vec(json(attachments as u64), 0..4).prop_map(move |mut args| {
        args.extend((0..attachments as u64).map(placeholder));
        text(&Value::Array(args))
    })
}

/// `/`, or `/` and anything without a comma.
fn namespace() -> impl Strategy<Value = Str> {
    prop_oneof![
        Just(Str::from("/")),
        "/[a-z0-9/_-]{1,8}".prop_map(Str::from),
        "/[^,]{0,12}".prop_map(Str::from),
    ]
}

fn attachments() -> impl Strategy<Value = Vec<Bytes>> {
    vec(vec(any::<u8>(), 0..32).prop_map(Bytes::from), 0..5)
}

/// Any packet valid for its kind.
fn any_packet() -> impl Strategy<Value = Packet> {
    let id = || proptest::option::of(any::<u64>().prop_map(AckId));
    let build = |kind, nsp, id, data, attachments| Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    };
    prop_oneof![
        (namespace(), id(), proptest::option::of(object())).prop_map(move |(nsp, id, auth)| build(
            PacketKind::Connect,
            nsp,
            id,
            auth.as_ref().map(text),
            Vec::new()
        )),
        (namespace(), id()).prop_map(move |(nsp, id)| build(
            PacketKind::Disconnect,
            nsp,
            id,
            None,
            Vec::new()
        )),
        (namespace(), id(), attachments()).prop_flat_map(move |(nsp, id, attachments)| {
            event_data(attachments.len()).prop_map(move |data| {
                build(
                    PacketKind::Event,
                    nsp.clone(),
                    id,
                    Some(data),
                    attachments.clone(),
                )
            })
        }),
        (namespace(), id(), attachments(), any::<bool>()).prop_flat_map(
            move |(nsp, id, attachments, bare)| {
                // An ACK without data is valid when it has no attachments.
                let bare = bare && attachments.is_empty();
                ack_data(attachments.len()).prop_map(move |data| {
                    build(
                        PacketKind::Ack,
                        nsp.clone(),
                        id,
                        (!bare).then_some(data),
                        attachments.clone(),
                    )
                })
            }
        ),
        (
            namespace(),
            id(),
            proptest::option::of(prop_oneof![
                object(),
                any::<String>().prop_map(Value::String)
            ])
        )
            .prop_map(move |(nsp, id, data)| build(
                PacketKind::ConnectError,
                nsp,
                id,
                data.as_ref().map(text),
                Vec::new()
            )),
    ]
}

/// Texts that often look like packets: a type digit, an attachment count,
/// a namespace, an id and JSON pieces, or anything at all.
fn packetish_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "[0-9]".prop_map(String::from),
        Just("-".to_string()),
        Just("/".to_string()),
        Just(",".to_string()),
        Just("/nsp,".to_string()),
        Just("[\"ev\"".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{}".to_string()),
        Just("\"connect\"".to_string()),
        Just(r#"{"_placeholder":true,"num":0}"#.to_string()),
        Just("18446744073709551616".to_string()),
        Just(" ".to_string()),
        "[^\\x00]{0,3}".prop_map(String::from),
    ];
    prop_oneof![
        vec(token, 0..10).prop_map(|tokens| tokens.concat()),
        any::<String>(),
        any_packet().prop_map(|p| text_of(&p.encode()).to_string()),
    ]
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => packetish_text().prop_map(|s| Message::Text(Str::from(s))),
        2 => vec(any::<u8>(), 0..16).prop_map(|b| Message::Binary(Bytes::from(b))),
    ]
}

/// `cases` per property, unless `PROPTEST_CASES` asks for a deeper run.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Feeds a packet's messages to a fresh decoder: `Ok(None)` for all but the
/// last, which completes it.
fn decode_messages(messages: Vec<Message>, config: DecoderConfig) -> Packet {
    let mut decoder = Decoder::new(config);
    let last = messages.len() - 1;
    let mut out = None;
    for (i, message) in messages.into_iter().enumerate() {
        match decoder.decode(message) {
            Ok(None) => assert!(i < last, "packet incomplete after its last message"),
            Ok(Some(packet)) => {
                assert_eq!(i, last, "packet complete before its last message");
                out = Some(packet);
            }
            Err(error) => panic!("message {i} refused: {error}"),
        }
    }
    assert!(!decoder.is_reassembling());
    out.expect("a packet")
}

// ---------------------------------------------------------------------------
// 1. Round trips
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn packet_round_trip(packet in any_packet()) {
        let encoded = packet.encode();
        prop_assert_eq!(encoded.message_count(), 1 + packet.attachments.len());
        prop_assert_eq!(text_of(&encoded).as_bytes()[0], packet.wire_type());
        let messages: Vec<Message> = encoded.messages().collect();
        prop_assert_eq!(messages.len(), encoded.message_count());
        prop_assert!(matches!(messages[0], Message::Text(_)));
        prop_assert!(messages[1..].iter().all(|m| matches!(m, Message::Binary(_))));

        let decoded = decode_messages(messages, DecoderConfig::default());
        prop_assert_eq!(&decoded, &packet);
        prop_assert_eq!(decoded.encode(), encoded);
    }

    /// Through the msgpack parser a packet is one binary message and comes
    /// back the same to the application: binary in place of each
    /// placeholder (renumbered in order of appearance), the same values.
    #[test]
    fn msgpack_round_trip(packet in any_packet()) {
        // An event's placeholder-shaped object without attachments is data
        // to the JSON parser; msgpack has `bin` for binary and refuses it.
        let literal = matches!(packet.kind, PacketKind::Event | PacketKind::Ack)
            && packet.attachments.is_empty()
            && packet.data.as_deref().is_some_and(|data| data.contains(r#""_placeholder":true"#));
        prop_assume!(!literal);
        let parser = SharedParser::new(MsgpackParser);
        let encoded = parser.encode(&packet);
        prop_assert_eq!(encoded.message_count(), 1);
        prop_assert!(matches!(encoded.head(), Message::Binary(_)));
        let decoded = parser
            .decoder(&DecoderConfig::default())
            .decode(encoded.head().clone())
            .unwrap()
            .unwrap();
        prop_assert_eq!((decoded.kind, &decoded.nsp, decoded.id), (packet.kind, &packet.nsp, packet.id));
        prop_assert_eq!(resolved(&decoded), resolved(&packet));
        // And it is stable from there on.
        prop_assert_eq!(parser.encode(&decoded), encoded);
    }

    /// The raw JSON goes out byte for byte as the application wrote it.
    #[test]
    fn payload_is_carried_verbatim(packet in any_packet()) {
        let encoded = packet.encode();
        if let Some(data) = &packet.data {
            prop_assert!(text_of(&encoded).ends_with(data.as_str()));
        }
        if packet.nsp.as_str() != "/" {
            let prefix = format!("{},", packet.nsp.as_str());
            prop_assert!(text_of(&encoded).contains(prefix.as_str()));
        }
    }

    /// A decoded packet, however its text was written, re-encodes to a text
    /// that decodes to the same packet (decoding normalises; the packets
    /// agree, not necessarily the texts).
    #[test]
    fn decoded_text_re_encodes(text in packetish_text()) {
        let mut decoder = Decoder::default();
        let Ok(Some(packet)) = decoder.decode(Message::Text(Str::from(text.as_str()))) else {
            return Ok(());
        };
        prop_assert!(packet.attachments.is_empty());
        prop_assert!(packet.nsp.starts_with('/') && !packet.nsp.contains(','));
        let decoded = decode_messages(packet.encode().messages().collect(), DecoderConfig::default());
        prop_assert_eq!(decoded, packet);
    }
}

#[test]
fn normalising_decodes() {
    let cases = [
        ("0/admin", "0/admin,"),
        (r#"2/,["a"]"#, r#"2["a"]"#),
        (r#"3007[]"#, r#"37[]"#),
        (
            r#"501-["a",{"_placeholder":true,"num":0}]"#,
            r#"51-["a",{"_placeholder":true,"num":0}]"#,
        ),
    ];
    for (wire, canonical) in cases {
        let mut decoder = Decoder::default();
        let mut packet = decoder.decode(Message::from(wire)).unwrap();
        if packet.is_none() {
            packet = decoder
                .decode(Message::Binary(Bytes::from_static(b"x")))
                .unwrap();
        }
        let packet = packet.expect(wire);
        assert_eq!(text_of(&packet.encode()).as_str(), canonical, "{wire}");
    }
}

// ---------------------------------------------------------------------------
// 2. Totality
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn decoder_is_total(
        messages in vec(any_message(), 0..24),
        max_attachments in 0usize..6,
        max_attachment_bytes in 0usize..48,
    ) {
        let mut config = DecoderConfig::default();
        config.max_attachments = max_attachments;
        config.max_attachment_bytes = max_attachment_bytes;
        let mut decoder = Decoder::new(config);
        // Texts accepted since the last packet or error: 0 or 1.
        let mut started = 0usize;
        for message in messages {
            let is_text = matches!(message, Message::Text(_));
            match decoder.decode(message) {
                Ok(Some(packet)) => {
                    if is_text {
                        prop_assert_eq!(started, 0, "a packet while reassembling");
                        prop_assert!(packet.attachments.is_empty());
                    } else {
                        prop_assert_eq!(started, 1, "a binary packet from no text");
                        prop_assert!(!packet.attachments.is_empty());
                        prop_assert!(packet.attachments.len() <= max_attachments);
                        let bytes: usize = packet.attachments.iter().map(Bytes::len).sum();
                        prop_assert!(bytes <= max_attachment_bytes);
                    }
                    started = 0;
                    prop_assert!(!decoder.is_reassembling());
                    let again = decode_messages(packet.encode().messages().collect(), DecoderConfig::default());
                    prop_assert_eq!(again, packet);
                }
                Ok(None) => {
                    prop_assert!(decoder.is_reassembling());
                    if is_text {
                        prop_assert_eq!(started, 0, "two texts for one packet");
                        started = 1;
                    } else {
                        prop_assert_eq!(started, 1);
                    }
                }
                Err(error) => {
                    prop_assert!(!decoder.is_reassembling(), "reassembling after {}", error);
                    if !is_text && started == 0 {
                        prop_assert_eq!(&error, &DecodeError::UnexpectedBinary);
                    }
                    if is_text && started == 1 {
                        prop_assert_eq!(&error, &DecodeError::UnexpectedText);
                    }
                    started = 0;
                }
            }
        }
    }

    /// A text message alone never yields more than one packet, and the
    /// packet of a text without attachments needs nothing more.
    #[test]
    fn one_packet_per_text(text in packetish_text()) {
        let mut decoder = Decoder::default();
        match decoder.decode(Message::Text(Str::from(text.as_str()))) {
            Ok(Some(_)) | Err(_) => prop_assert!(!decoder.is_reassembling()),
            Ok(None) => {
                prop_assert!(decoder.is_reassembling());
                prop_assert!(text.starts_with('5') || text.starts_with('6'));
                // Another text is refused and resets the decoder.
                prop_assert_eq!(
                    decoder.decode(Message::from("0")),
                    Err(DecodeError::UnexpectedText)
                );
                prop_assert!(!decoder.is_reassembling());
            }
        }
    }
}
