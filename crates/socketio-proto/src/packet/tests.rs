use super::*;
use alloc::vec;

fn decode_all(messages: Vec<Message>) -> Result<Vec<Packet>, DecodeError> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for message in messages {
        if let Some(packet) = decoder.decode(message)? {
            out.push(packet);
        }
    }
    assert!(!decoder.is_reassembling(), "left mid-packet");
    Ok(out)
}

fn text(s: &str) -> Message {
    Message::from(s)
}

fn bin(b: &'static [u8]) -> Message {
    Message::Binary(Bytes::from_static(b))
}

fn packet(kind: PacketKind, nsp: &str, id: Option<u64>, data: Option<&str>) -> Packet {
    Packet {
        kind,
        nsp: Str::from(nsp),
        id: id.map(AckId),
        data: data.map(Str::from),
        attachments: Vec::new(),
    }
}

/// Every example of the Socket.IO v5 protocol document: decodes to the
/// packet, and the packet encodes back to the same bytes.
#[test]
fn protocol_document_vectors() {
    let cases: Vec<(Vec<Message>, Packet)> = vec![
        (
            vec![text(r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#)],
            packet(
                PacketKind::Connect,
                "/admin",
                None,
                Some(r#"{"sid":"oSO0OpakMV_3jnilAAAA"}"#),
            ),
        ),
        (
            vec![text(r#"4{"message":"Not authorized"}"#)],
            packet(
                PacketKind::ConnectError,
                "/",
                None,
                Some(r#"{"message":"Not authorized"}"#),
            ),
        ),
        (
            vec![text(r#"2/admin,["bar"]"#)],
            packet(PacketKind::Event, "/admin", None, Some(r#"["bar"]"#)),
        ),
        (
            vec![text(r#"212["foo"]"#)],
            packet(PacketKind::Event, "/", Some(12), Some(r#"["foo"]"#)),
        ),
        (
            vec![text(r#"3/admin,13["bar"]"#)],
            packet(PacketKind::Ack, "/admin", Some(13), Some(r#"["bar"]"#)),
        ),
        (
            vec![text("1/admin,")],
            packet(PacketKind::Disconnect, "/admin", None, None),
        ),
        (
            vec![text("0")],
            packet(PacketKind::Connect, "/", None, None),
        ),
        (
            vec![text(r#"2["hey","Jude"]"#)],
            packet(PacketKind::Event, "/", None, Some(r#"["hey","Jude"]"#)),
        ),
        (
            vec![
                text(r#"51-["baz",{"_placeholder":true,"num":0}]"#),
                bin(&[1, 2, 3]),
            ],
            Packet {
                attachments: vec![Bytes::from_static(&[1, 2, 3])],
                ..packet(
                    PacketKind::Event,
                    "/",
                    None,
                    Some(r#"["baz",{"_placeholder":true,"num":0}]"#),
                )
            },
        ),
        (
            vec![
                text(
                    r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                ),
                bin(&[1]),
                bin(&[2]),
            ],
            Packet {
                attachments: vec![Bytes::from_static(&[1]), Bytes::from_static(&[2])],
                ..packet(
                    PacketKind::Event,
                    "/admin",
                    None,
                    Some(r#"["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
                )
            },
        ),
        (
            vec![
                text(r#"61-15["bar",{"_placeholder":true,"num":0}]"#),
                bin(&[9]),
            ],
            Packet {
                attachments: vec![Bytes::from_static(&[9])],
                ..packet(
                    PacketKind::Ack,
                    "/",
                    Some(15),
                    Some(r#"["bar",{"_placeholder":true,"num":0}]"#),
                )
            },
        ),
    ];
    for (wire, expected) in cases {
        let decoded = decode_all(wire.clone()).unwrap();
        assert_eq!(decoded, vec![expected.clone()], "{wire:?}");
        let encoded: Vec<Message> = expected.encode().messages().collect();
        assert_eq!(encoded, wire);
    }
}

#[test]
fn conformance_suite_packets() {
    // What the official test suite sends, and what it expects back.
    let ok = [
        "0",
        r#"0{"token":"123"}"#,
        "0/custom,",
        r#"0/custom,{"token":"abc"}"#,
        "0/random",
        "1/custom",
        r#"2["message",1,"2",{"3":[true]}]"#,
        r#"2456["message-with-ack",1,"2",{"3":[false]}]"#,
        r#"3456[1,"2",{"3":[false]}]"#,
    ];
    for wire in ok {
        assert!(decode_all(vec![text(wire)]).is_ok(), "{wire}");
    }
    let decoded = decode_all(vec![text("0/random")]).unwrap();
    assert_eq!(decoded[0].nsp.as_str(), "/random");
    // The malformed ones that must close the connection.
    for wire in [
        "abc",
        "2{}",
        "2abc[]",
        r#"2["connect"]"#,
        "2",
        "2[]",
        "1{}",
        "0[]",
        "4[]",
    ] {
        assert!(decode_all(vec![text(wire)]).is_err(), "{wire}");
    }
}

#[test]
fn binary_reassembly_is_a_state() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode(text(
            r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        )),
        Ok(None)
    );
    assert!(decoder.is_reassembling());
    assert_eq!(decoder.decode(bin(&[1])), Ok(None));
    let packet = decoder.decode(bin(&[2])).unwrap().unwrap();
    assert_eq!(packet.attachments.len(), 2);
    assert!(!decoder.is_reassembling());
}

/// A binary packet announcing no attachment is refused, as by
/// socket.io-parser 4.2.7 (GHSA-2m8v-j782-fhvr).
#[test]
fn zero_attachments_are_illegal() {
    let mut decoder = Decoder::default();
    for bad in [r#"50-["a"]"#, r#"60-[]"#, r#"500-["a"]"#] {
        assert_eq!(
            decoder.decode(text(bad)),
            Err(DecodeError::IllegalAttachments),
            "{bad}"
        );
    }
}

/// Placeholders are checked as socket.io-parser checks them when it puts
/// the attachments back (CVE-2022-2421): anything shaped like a
/// placeholder (`"_placeholder": true`) must index an attachment.
#[test]
fn forged_placeholders_are_refused() {
    let two = |json: &str| {
        let mut decoder = Decoder::default();
        decoder
            .decode(text(&alloc::format!("52-{json}")))
            .map(|partial| partial.is_none())
    };
    let valid = [
        r#"["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        r#"["a",{"num":1,"_placeholder":true}]"#,
        r#"["a",{"deep":[[{"_placeholder":true,"num":1.0}]]}]"#,
        r#"["a",{"_placeholder":true,"num":-0}]"#,
        // Not placeholders: the flag is not `true`.
        r#"["a",{"_placeholder":"true","num":"x"}]"#,
        r#"["a",{"_placeholder":false,"num":9}]"#,
        r#"["a",{"_placeholder":1}]"#,
        // The last duplicate wins, as in JSON.parse.
        r#"["a",{"_placeholder":true,"num":"x","num":0}]"#,
        r#"["a",{"_placeholder":true,"_placeholder":false}]"#,
    ];
    for json in valid {
        assert_eq!(two(json), Ok(true), "{json}");
    }
    let forged = [
        r#"["a",{"_placeholder":true,"num":"x"}]"#,
        r#"["a",{"_placeholder":true,"num":-1}]"#,
        r#"["a",{"_placeholder":true,"num":2}]"#,
        r#"["a",{"_placeholder":true,"num":5}]"#,
        r#"["a",{"_placeholder":true,"num":0.5}]"#,
        r#"["a",{"_placeholder":true,"num":1e400}]"#,
        r#"["a",{"_placeholder":true}]"#,
        r#"["a",{"_placeholder":true,"num":null}]"#,
        r#"["a",{"_placeholder":true,"num":{"_placeholder":true,"num":0}}]"#,
        r#"["a",{"_placeholder":true,"num":[0]}]"#,
        r#"["a",[{"x":{"_placeholder":true,"num":7}}]]"#,
        r#"["a",{"_pl\u0061ceholder":true,"num":3}]"#,
        r#"["a",{"_placeholder":true,"num":0,"num":"toString"}]"#,
    ];
    for json in forged {
        assert_eq!(two(json), Err(DecodeError::InvalidPlaceholder), "{json}");
    }
    // A plain event carries no attachments: placeholder-shaped data is
    // only data, as in Node.
    assert!(decode_all(vec![text(r#"2["a",{"_placeholder":true,"num":9}]"#)]).is_ok());
}

#[test]
fn reassembly_errors() {
    let mut decoder = Decoder::default();
    assert_eq!(
        decoder.decode(bin(&[1])),
        Err(DecodeError::UnexpectedBinary)
    );
    decoder
        .decode(text(r#"51-["a",{"_placeholder":true,"num":0}]"#))
        .unwrap();
    assert_eq!(
        decoder.decode(text(r#"2["b"]"#)),
        Err(DecodeError::UnexpectedText)
    );
    // The error resets the decoder.
    assert!(!decoder.is_reassembling());
    assert_eq!(
        decoder.decode(text(r#"511-["a"]"#)),
        Err(DecodeError::TooManyAttachments)
    );
    assert_eq!(
        decoder.decode(text(r#"599999999999999999999999-["a"]"#)),
        Err(DecodeError::TooManyAttachments)
    );
    for bad in [r#"5["a"]"#, r#"5-["a"]"#, r#"5x-["a"]"#, "5"] {
        assert_eq!(
            decoder.decode(text(bad)),
            Err(DecodeError::IllegalAttachments),
            "{bad}"
        );
    }
    let mut small = Decoder::new(DecoderConfig {
        max_attachments: 10,
        max_attachment_bytes: 4,
    });
    small.decode(text(r#"52-["a",1,2]"#)).unwrap();
    assert_eq!(small.decode(bin(&[1, 2, 3])), Ok(None));
    assert_eq!(
        small.decode(bin(&[4, 5])),
        Err(DecodeError::AttachmentsTooLarge)
    );
}

#[test]
fn ack_ids_are_bounded() {
    assert_eq!(
        decode_all(vec![text(r#"218446744073709551615["a"]"#)]).unwrap()[0].id,
        Some(AckId(u64::MAX))
    );
    assert_eq!(
        decode_all(vec![text(r#"218446744073709551616["a"]"#)]),
        Err(DecodeError::InvalidAckId)
    );
}

#[test]
fn event_shapes_follow_node() {
    for ok in [
        r#"2[1]"#,
        r#"2[1.5,"x"]"#,
        r#"2["message"]"#,
        r#"2["a",{"b":[1,{"c":null}]}]"#,
    ] {
        assert!(decode_all(vec![text(ok)]).is_ok(), "{ok}");
    }
    for bad in [
        r#"2[null]"#,
        r#"2[true]"#,
        r#"2[["a"]]"#,
        r#"2[{"a":1}]"#,
        r#"2["disconnecting"]"#,
        r#"2["a"]x"#,
        r#"2["a"]["b"]"#,
    ] {
        assert_eq!(
            decode_all(vec![text(bad)]),
            Err(DecodeError::InvalidPayload),
            "{bad}"
        );
    }
    // Escapes are resolved before the reserved-name check.
    assert!(decode_all(vec![text(r#"2["conn\u0065ct"]"#)]).is_err());
    // Connect errors carry an object or a string.
    assert!(decode_all(vec![text(r#"4"nope""#)]).is_ok());
    assert!(decode_all(vec![text(r#"4[]"#)]).is_err());
}

#[test]
fn json_whitespace_is_accepted_like_json_parse() {
    assert!(decode_all(vec![text(r#"2 ["a"] "#)]).is_ok());
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // Nested values after the event name are skipped iteratively; the
    // input's own size bounds the work.
    let deep = alloc::format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    assert!(decode_all(vec![text(&deep)]).is_ok());
    let unbalanced = alloc::format!("2[\"a\",{}]", "[".repeat(100_000));
    assert!(decode_all(vec![text(&unbalanced)]).is_err());
    // As the event name's neighbour, nesting hits serde_json's recursion limit.
    let deep_first = alloc::format!("2[{}1{}]", "[".repeat(100_000), "]".repeat(100_000));
    assert!(decode_all(vec![text(&deep_first)]).is_err());
}

#[test]
fn decoding_shares_the_input_buffer() {
    let wire = Str::from(r#"2/chat,7["a long enough event payload"]"#);
    let base = wire.as_bytes().as_ptr() as usize;
    let packet = decode_all(vec![Message::Text(wire)]).unwrap().remove(0);
    assert_eq!(packet.nsp.as_bytes().as_ptr() as usize, base + 1);
    assert_eq!(packet.data.unwrap().as_bytes().as_ptr() as usize, base + 8);
}
