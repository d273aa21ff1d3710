//! Property tests of the codecs: packets, payloads, handshakes, session ids
//! and the request router.
//!
//! * Round trips: WebSocket frames, polling payloads, handshake JSON.
//! * Totality: nothing a peer can send makes a decoder or the router panic,
//!   and the payload decoder's iteration is bounded and stops at the first
//!   error.
//! * `payload::count_fitting` packs as many packets as fit, never fewer.

// `prop_oneof!` expands to `Arc`s inside proptest's strategies; the crate's
// ban on `Arc` is about shared protocol state, which these tests have none of.
#![allow(clippy::disallowed_types)]

use bytes::Bytes;
use engineio_proto::server::{Method, Request, Route, Server, ServerConfig};
use engineio_proto::{
    payload, CountingSidGenerator, DecodeError, Frame, Handshake, Message, Packet, Sid, SidError,
    Str, MAX_SID_LEN,
};
use proptest::collection::vec;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Arbitrary text: any Unicode, plus short strings dense in the bytes the
/// codecs care about (digits, `b`, the separator, other controls, multibyte).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x20\\x1e0-9bA-Za-z+/=€ü\u{10348}]{0,24}",
    ]
}

/// Text the polling format can carry: no record separator.
fn payload_text() -> impl Strategy<Value = String> {
    any_text().prop_map(|s| s.replace('\u{1e}', ""))
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

/// Every packet variant, with text drawn from `text()`.
fn packet_with<S>(text: fn() -> S) -> impl Strategy<Value = Packet>
where
    S: Strategy<Value = String> + 'static,
{
    let str = move || text().prop_map(Str::from);
    prop_oneof![
        str().prop_map(Packet::Open),
        Just(Packet::Close),
        str().prop_map(Packet::Ping),
        str().prop_map(Packet::Pong),
        str().prop_map(|s| Packet::Message(Message::Text(s))),
        any_bytes().prop_map(|b| Packet::Message(Message::Binary(b))),
        Just(Packet::Upgrade),
        Just(Packet::Noop),
    ]
}

fn any_packet() -> impl Strategy<Value = Packet> {
    packet_with(any_text)
}

fn payload_packet() -> impl Strategy<Value = Packet> {
    packet_with(payload_text)
}

/// Bodies that look like payloads often enough to get past the first byte:
/// records of type bytes, base64, separators, multibyte UTF-8 and invalid
/// UTF-8, or plain arbitrary bytes.
fn payloadish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"\x1e".to_vec()),
        Just(b"4".to_vec()),
        Just(b"b".to_vec()),
        Just(b"2probe".to_vec()),
        Just(b"AQID".to_vec()),
        Just(b"BA==".to_vec()),
        Just(b"=".to_vec()),
        Just("€".as_bytes().to_vec()),
        Just(vec![0xe2, 0x82]), // truncated €
        Just(vec![0xff]),
        (0u8..=9).prop_map(|d| vec![b'0' + d]),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..64),
        vec(token, 0..24).prop_map(|t| t.concat()),
    ]
}

/// Query strings built from the keys and escapes the router reads, or any
/// string at all.
fn queryish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("EIO".to_string()),
        Just("transport".to_string()),
        Just("sid".to_string()),
        Just("=".to_string()),
        Just("&".to_string()),
        Just("4".to_string()),
        Just("3".to_string()),
        Just("polling".to_string()),
        Just("websocket".to_string()),
        Just("%".to_string()),
        Just("+".to_string()),
        Just("%2".to_string()),
        Just("%41".to_string()),
        Just("%ff".to_string()),
        Just("%e2%82%ac".to_string()),
        Just("€".to_string()),
        "[A-Za-z0-9_-]{1,30}",
        any::<String>(),
    ];
    prop_oneof![any::<String>(), vec(token, 0..16).prop_map(|t| t.concat())]
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![Just(Method::Get), Just(Method::Post), Just(Method::Other)]
}

fn decode_payload(body: Bytes) -> Vec<Result<Packet, DecodeError>> {
    payload::decode(body).expect("payload is UTF-8").collect()
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

// ---------------------------------------------------------------------------
// 1. Round trips
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn frame_round_trip(packet in any_packet()) {
        let frame = packet.encode_frame();
        // A binary message is a binary frame; everything else is text.
        prop_assert_eq!(
            matches!(frame, Frame::Binary(_)),
            matches!(packet, Packet::Message(Message::Binary(_)))
        );
        prop_assert_eq!(Packet::decode_frame(frame), Ok(packet));
    }

    #[test]
    fn text_frame_is_digit_then_data(packet in any_packet()) {
        if let Frame::Text(text) = packet.encode_frame() {
            prop_assert_eq!(text.as_bytes()[0], packet.packet_type().as_byte());
            prop_assert_eq!(Packet::decode_text(text), Ok(packet));
        }
    }

    #[test]
    fn payload_round_trip(packets in vec(payload_packet(), 1..16)) {
        let body = payload::encode(&packets);
        let decoded = decode_payload(body.clone());
        prop_assert_eq!(decoded, packets.iter().cloned().map(Ok).collect::<Vec<_>>());
        // The length the batching code counts with is the real one.
        let counted: usize = packets.iter().map(Packet::encoded_len_in_payload).sum::<usize>()
            + packets.len()
            - 1;
        prop_assert_eq!(body.len(), counted);
    }

    #[test]
    fn handshake_round_trip(
        random in any::<[u8; 16]>(),
        upgrades in vec("[a-z][a-z0-9_-]{0,11}", 0..4),
        ping_interval in any::<u32>(),
        ping_timeout in any::<u32>(),
        max_payload in any::<u32>(),
    ) {
        let handshake = Handshake {
            sid: Sid::from_random_bytes(random),
            upgrades,
            ping_interval: ping_interval.into(),
            ping_timeout: ping_timeout.into(),
            max_payload: max_payload.into(),
        };
        let json = handshake.to_json();
        // Node's key order is part of the wire format.
        let keys = ["\"sid\":", "\"upgrades\":", "\"pingInterval\":", "\"pingTimeout\":", "\"maxPayload\":"];
        let at: Vec<usize> = keys.iter().map(|k| json.find(k).expect("key present")).collect();
        prop_assert!(at.windows(2).all(|w| w[0] < w[1]), "key order in {}", json);
        prop_assert_eq!(Handshake::from_json(&json), Ok(handshake));
    }

    #[test]
    fn random_sids_parse_back(random in any::<[u8; 16]>()) {
        let sid = Sid::from_random_bytes(random);
        prop_assert_eq!(sid.as_str().len(), 22);
        prop_assert_eq!(Sid::parse(sid.as_str()), Ok(sid));
    }

    #[test]
    fn parsed_sids_survive_the_handshake(sid in "[!$'-*,-\\[\\]-~]{1,64}") {
        // Any id `Sid::parse` accepts can be written into the JSON unescaped.
        let sid = Sid::parse(&sid).expect("allowed characters");
        let handshake = Handshake {
            sid,
            upgrades: vec!["websocket".into()],
            ping_interval: 1,
            ping_timeout: 2,
            max_payload: 3,
        };
        let json = handshake.to_json();
        let expected = format!("{{\"sid\":\"{sid}\",");
        prop_assert!(json.starts_with(&expected));
        prop_assert_eq!(Handshake::from_json(&json), Ok(handshake));
    }
}

/// The polling format cannot carry text containing the record separator:
/// such a message comes back split into several records. This is the
/// protocol's limitation (Node behaves the same way), not the codec's.
#[test]
fn text_with_the_record_separator_splits_in_a_payload() {
    let packets = [Packet::Message("a\u{1e}4b".into())];
    let decoded = decode_payload(payload::encode(&packets));
    assert_eq!(
        decoded,
        vec![
            Ok(Packet::Message("a".into())),
            Ok(Packet::Message("b".into()))
        ]
    );
    // A separator followed by something that is not a packet type breaks
    // the payload instead.
    let decoded = decode_payload(payload::encode(&[Packet::Message("x\u{1e}y".into())]));
    assert_eq!(
        decoded,
        vec![
            Ok(Packet::Message("x".into())),
            Err(DecodeError::UnknownType(b'y'))
        ]
    );
    // On a WebSocket the same message is one frame and survives.
    let frame = packets[0].encode_frame();
    assert_eq!(Packet::decode_frame(frame), Ok(packets[0].clone()));
}

/// An empty packet list encodes to an empty body, which is not a payload.
#[test]
fn empty_payload_is_an_error() {
    let body = payload::encode(&[]);
    assert!(body.is_empty());
    assert_eq!(decode_payload(body), vec![Err(DecodeError::Empty)]);
}

// ---------------------------------------------------------------------------
// 2. Nothing a peer sends panics
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn payload_decode_is_total_and_bounded(body in payloadish_bytes()) {
        let separators = body.iter().filter(|&&b| b == payload::SEPARATOR).count();
        let is_utf8 = std::str::from_utf8(&body).is_ok();
        match payload::decode(Bytes::from(body)) {
            Err(error) => {
                prop_assert!(!is_utf8);
                prop_assert_eq!(error, DecodeError::InvalidUtf8);
            }
            Ok(decoder) => {
                prop_assert!(is_utf8);
                let mut items = 0usize;
                let mut seen_err = false;
                // `take` keeps a broken decoder from looping forever.
                for item in decoder.take(separators + 2) {
                    prop_assert!(!seen_err, "an item after an error");
                    seen_err = item.is_err();
                    items += 1;
                }
                prop_assert!(items >= 1, "a payload has at least one record");
                prop_assert!(items <= separators + 1, "{} items, {} separators", items, separators);
            }
        }
    }

    #[test]
    fn decoded_payload_packets_re_encode_to_their_records(body in payloadish_bytes()) {
        // Every record that decodes to a text packet is that packet's text form
        // (Close, Upgrade and Noop drop trailing data; binary may be unpadded).
        let Ok(text) = std::str::from_utf8(&body) else { return Ok(()) };
        let records: Vec<&str> = text.split('\u{1e}').collect();
        let decoded = decode_payload(Bytes::from(body.clone()));
        for (record, packet) in records.iter().zip(&decoded) {
            match packet {
                Ok(Packet::Message(Message::Binary(_))) => prop_assert!(record.starts_with('b')),
                Ok(Packet::Close | Packet::Upgrade | Packet::Noop) => {
                    let Frame::Text(wire) = packet.as_ref().unwrap().encode_frame() else {
                        unreachable!()
                    };
                    prop_assert!(record.starts_with(wire.as_str()));
                }
                Ok(packet) => {
                    prop_assert_eq!(packet.encode_frame(), Frame::Text(Str::from(*record)));
                }
                Err(_) => {}
            }
        }
    }

    #[test]
    fn decode_text_is_total(
        text in prop_oneof![
            any::<String>(),
            ("[0-9b]", any::<String>()).prop_map(|(d, s)| d + &s),
        ]
    ) {
        match Packet::decode_text(Str::from(text.as_str())) {
            Ok(packet) => {
                let Frame::Text(wire) = packet.encode_frame() else {
                    return Err(TestCaseError::fail("text decoded to a binary packet"));
                };
                match packet {
                    // Data after these digits is ignored.
                    Packet::Close | Packet::Upgrade | Packet::Noop => {
                        prop_assert!(text.starts_with(wire.as_str()));
                    }
                    _ => prop_assert_eq!(wire.as_str(), text.as_str()),
                }
            }
            Err(DecodeError::Empty) => prop_assert!(text.is_empty()),
            Err(DecodeError::UnknownType(b)) => prop_assert_eq!(Some(&b), text.as_bytes().first()),
            Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
        }
    }

    #[test]
    fn handshake_from_json_is_total(
        json in prop_oneof![
            any::<String>(),
            // Mutations of a valid handshake: truncated, or a character replaced.
            (0usize..200, any::<char>(), any::<bool>()).prop_map(|(at, c, truncate)| {
                let valid = r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
                let at = at.min(valid.len());
                if truncate {
                    valid[..at].to_string()
                } else {
                    let mut s = valid.to_string();
                    if at < s.len() {
                        s.replace_range(at..at + 1, c.encode_utf8(&mut [0; 4]));
                    }
                    s
                }
            }),
        ]
    ) {
        if let Ok(handshake) = Handshake::from_json(&json) {
            // Whatever is accepted is a well-formed handshake that re-encodes.
            prop_assert_eq!(Handshake::from_json(&handshake.to_json()), Ok(handshake));
        }
    }

    #[test]
    fn sid_parse_is_total(
        s in prop_oneof![any::<String>(), "[\\x00-\\x7f]{0,70}", "[A-Za-z0-9_-]{60,70}"]
    ) {
        match Sid::parse(&s) {
            Ok(sid) => {
                prop_assert_eq!(sid.as_str(), s.as_str());
                prop_assert!((1..=MAX_SID_LEN).contains(&s.len()));
                prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()
                    && !b"\"\\&#%+".contains(&b)));
            }
            Err(SidError::BadLength) => prop_assert!(s.is_empty() || s.len() > MAX_SID_LEN),
            Err(_) => prop_assert!((1..=MAX_SID_LEN).contains(&s.len())),
        }
    }

    #[test]
    fn route_is_total(query in queryish(), method in any_method(), websocket in any::<bool>()) {
        let server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
        let request = Request { method, query: &query, websocket };
        match server.route(&request) {
            Ok(Route::Handshake(..)) => prop_assert_eq!(method, Method::Get),
            Ok(Route::Poll(_)) => prop_assert!(method == Method::Get && !websocket),
            Ok(Route::Post(_)) => prop_assert!(method == Method::Post && !websocket),
            Ok(Route::Upgrade(_)) => prop_assert!(websocket),
            Err(error) => {
                let response = error.response();
                prop_assert!(response.status == 400 || response.status == 403);
                prop_assert!(serde_json_like(&response.body));
            }
        }
    }
}

/// The error bodies are `{"code":N,"message":"…"}`.
fn serde_json_like(body: &[u8]) -> bool {
    body.starts_with(b"{\"code\":") && body.ends_with(b"\"}")
}

// ---------------------------------------------------------------------------
// 3. count_fitting
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn count_fitting_packs_greedily(
        packets in vec(any_packet(), 0..12),
        max in prop_oneof![0usize..16, 0usize..400, Just(usize::MAX)],
    ) {
        let count = payload::count_fitting(&packets, max);
        prop_assert!(count <= packets.len());
        if packets.is_empty() {
            prop_assert_eq!(count, 0);
            return Ok(());
        }
        prop_assert!(count >= 1, "the first packet always goes");
        let fitted = payload::encode(&packets[..count]).len();
        prop_assert!(fitted <= max || count == 1, "{} bytes over {}", fitted, max);
        if count < packets.len() {
            let one_more = payload::encode(&packets[..count + 1]).len();
            prop_assert!(one_more > max, "packet {} would have fit ({} <= {})", count, one_more, max);
        }
    }
}
