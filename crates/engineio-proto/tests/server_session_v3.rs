//! The server session machine with Engine.IO v3 clients (socket.io 2.x,
//! Node's `allowEIO3`) and JSONP polling, on a virtual clock: the client
//! pings and the server answers, payloads are length-prefixed (binary
//! payloads for clients with binary support), WebSocket binary frames
//! carry their type byte, JSONP wraps payloads in a callback.

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::server::{ContentType, Input, Opening, Output, Server, ServerConfig, Session};
use engineio_proto::{
    CloseReason, CountingSidGenerator, Dialect, Frame, Instant, Message, Protocol, RequestId, Sid,
    Str, TransportError, WsId,
};

const T0: Instant = Instant::from_millis(1_000);

fn config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.allow_eio3 = true;
    config.ping_interval = Duration::from_millis(300);
    config.ping_timeout = Duration::from_millis(200);
    config
}

fn v3(binary_payloads: bool, jsonp: Option<u32>) -> Dialect {
    Dialect {
        protocol: Protocol::V3,
        binary_payloads,
        jsonp,
    }
}

fn drain(session: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| session.poll_output()).collect()
}

/// Opens a polling session and returns it with the handshake's body.
fn open(dialect: Dialect) -> (Session, Bytes, ContentType) {
    let server = Server::new(config(), CountingSidGenerator::default());
    let mut session = server.open_session_as(
        T0,
        Sid::parse("abc").unwrap(),
        Opening::Polling(RequestId(1)),
        dialect,
    );
    let outputs = drain(&mut session);
    let [Output::Respond { response, .. }] = &outputs[..] else {
        panic!("{outputs:?}");
    };
    (session, response.body.clone(), response.content_type)
}

fn respond(outputs: &[Output]) -> (&Bytes, ContentType) {
    match outputs {
        [Output::Respond { response, .. }] => (&response.body, response.content_type),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_handshake_is_a_length_prefixed_payload() {
    let (_, body, content_type) = open(v3(true, None));
    let text = std::str::from_utf8(&body).unwrap();
    let (length, open) = text.split_once(':').unwrap();
    assert_eq!(
        length.parse::<usize>().unwrap(),
        open.encode_utf16().count()
    );
    assert!(
        open.starts_with(
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200"#
        ),
        "{open}"
    );
    assert_eq!(content_type, ContentType::Payload);
}

#[test]
fn the_client_pings_and_the_server_answers() {
    let (mut session, _, _) = open(v3(false, None));
    // No server PING at pingInterval.
    let at = T0 + Duration::from_millis(350);
    session.handle_input(at, Input::Poll(RequestId(2)));
    assert!(
        drain(&mut session).is_empty(),
        "the server does not ping in v3"
    );
    // The client's PING is answered with a PONG.
    session.handle_input(
        at,
        Input::Post {
            request: RequestId(3),
            body: Bytes::from_static(b"1:2"),
        },
    );
    let outputs = drain(&mut session);
    assert!(outputs.iter().any(|o| matches!(o, Output::Respond { request: RequestId(2), response } if &response.body[..] == b"1:3")), "{outputs:?}");
    // Each PING buys pingInterval + pingTimeout from its arrival.
    session.handle_input(at + Duration::from_millis(499), Input::Timeout);
    assert!(!session.is_closed());
    session.handle_input(at + Duration::from_millis(500), Input::Timeout);
    assert!(drain(&mut session).contains(&Output::Closed(CloseReason::PingTimeout)));
}

#[test]
fn pings_without_reading_leave_one_pong_waiting() {
    let (mut session, _, _) = open(v3(false, None));
    for request in 2..5 {
        session.handle_input(
            T0,
            Input::Post {
                request: RequestId(request),
                body: Bytes::from_static(b"1:21:2"),
            },
        );
        drain(&mut session);
    }
    assert_eq!(session.buffered(), 1);
    session.handle_input(T0, Input::Poll(RequestId(9)));
    let outputs = drain(&mut session);
    assert_eq!(respond(&outputs).0, &Bytes::from_static(b"1:3"));
}

#[test]
fn a_pong_from_a_v3_client_is_the_wrong_direction() {
    let (mut session, _, _) = open(v3(false, None));
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"1:3"),
        },
    );
    assert!(
        drain(&mut session).contains(&Output::Closed(CloseReason::TransportError(
            TransportError::InvalidHeartbeatDirection
        )))
    );
}

#[test]
fn binary_payloads_go_to_clients_that_read_them() {
    for (binary_payloads, expected, content_type) in [
        (
            true,
            &b"\x01\x04\xff\x04\x01\x02\x03"[..],
            ContentType::Binary,
        ),
        (false, &b"6:b4AQID"[..], ContentType::Payload),
    ] {
        let (mut session, _, _) = open(v3(binary_payloads, None));
        session
            .send(T0, Message::Binary(Bytes::from_static(&[1, 2, 3])))
            .unwrap();
        session.handle_input(T0, Input::Poll(RequestId(2)));
        let outputs = drain(&mut session);
        assert_eq!(
            respond(&outputs),
            (&Bytes::from_static(expected), content_type)
        );
    }
}

#[test]
fn a_binary_post_is_a_binary_payload_in_v3_and_refused_in_v4() {
    let (mut session, _, _) = open(v3(true, None));
    // A text packet and a binary one, as socket.io-client 2.x posts them.
    let body = Bytes::from_static(b"\x00\x06\xff4hello\x01\x03\xff\x04\x09\x08");
    session.handle_input(
        T0,
        Input::BinaryPost {
            request: RequestId(2),
            body,
        },
    );
    let outputs = drain(&mut session);
    assert_eq!(
        outputs[..2],
        [
            Output::Message(Message::from("hello")),
            Output::Message(Message::Binary(Bytes::from_static(&[9, 8]))),
        ]
    );

    let mut server = Server::new(config(), CountingSidGenerator::default());
    let mut session = server.open_session(T0, Opening::Polling(RequestId(1)));
    drain(&mut session);
    session.handle_input(
        T0,
        Input::BinaryPost {
            request: RequestId(2),
            body: Bytes::from_static(b"4x"),
        },
    );
    let outputs = drain(&mut session);
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::Respond { response, .. } if response.status == 400)));
    assert!(
        outputs.contains(&Output::Closed(CloseReason::TransportError(
            TransportError::InvalidContent
        )))
    );
}

#[test]
fn websocket_frames_carry_the_type_byte_in_v3() {
    let server = Server::new(config(), CountingSidGenerator::default());
    let mut session = server.open_session_as(
        T0,
        Sid::parse("ws").unwrap(),
        Opening::WebSocket(WsId(1)),
        v3(true, None),
    );
    drain(&mut session);
    session
        .send(T0, Message::Binary(Bytes::from_static(&[7])))
        .unwrap();
    assert_eq!(
        drain(&mut session),
        [Output::WsSend {
            ws: WsId(1),
            frame: Frame::Binary(Bytes::from_static(&[4, 7])),
            compress: true,
        }]
    );
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(1),
            frame: Frame::Binary(Bytes::from_static(&[4, 5, 6])),
        },
    );
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(1),
            frame: Frame::Text(Str::from("2")),
        },
    );
    assert_eq!(
        drain(&mut session),
        [
            Output::Message(Message::Binary(Bytes::from_static(&[5, 6]))),
            Output::WsSend {
                ws: WsId(1),
                frame: Frame::Text(Str::from("3")),
                compress: true,
            },
        ]
    );
}

#[test]
fn jsonp_wraps_payloads_and_reads_forms() {
    let (mut session, body, content_type) = open(v3(false, Some(7)));
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.starts_with(r#"___eio[7]("97:0{"#), "{text}");
    assert!(text.contains(r#"0{\"sid\":\"abc\""#), "{text}");
    assert!(text.ends_with(r#"");"#), "{text}");
    assert_eq!(content_type, ContentType::Payload);
    // A form with `d`, newlines escaped by the client: `\n` is a newline,
    // `\\n` the two characters.
    let form = "d=8%3A4a%5Cnb%5C%5Cnc%E2%80%A8";
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from(form),
        },
    );
    let outputs = drain(&mut session);
    assert_eq!(
        outputs[0],
        Output::Message(Message::from("a\nb\\nc\u{2028}")),
        "{outputs:?}"
    );
    // What goes back escapes quotes, newlines and U+2028.
    session.send(T0, Message::from("q\"\n\u{2028}")).unwrap();
    session.handle_input(T0, Input::Poll(RequestId(3)));
    let outputs = drain(&mut session);
    let (body, _) = respond(&outputs);
    assert_eq!(&body[..], br#"___eio[7]("5:4q\"\n\u2028");"#);
}
