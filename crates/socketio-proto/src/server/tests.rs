//! The connection machine driven over a WebSocket session, with the packets
//! the official protocol test suite sends.

use super::*;
use alloc::string::ToString;
use alloc::vec;
use engineio_proto::server::{Opening, Server, ServerConfig};
use engineio_proto::{CountingSidGenerator, Frame, RequestId, WsId};

const WS: WsId = WsId(1);
const T0: Instant = Instant::from_millis(1_000);

struct Harness {
    conn: Connection,
    now: Instant,
    /// Frames the client received, as text (binary frames as `<bin:..>`).
    sent: Vec<alloc::string::String>,
    events: Vec<Output>,
    ws_closed: bool,
}

impl Harness {
    fn new() -> Harness {
        let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
        Harness::over(server.open_session(T0, Opening::WebSocket(WS)))
    }

    /// A connection over `session`, its handshake frame taken.
    fn over(session: eio::Session) -> Harness {
        let mut h = Harness {
            conn: Connection::new(T0, session, &ConnectionConfig::default()),
            now: T0,
            sent: Vec::new(),
            events: Vec::new(),
            ws_closed: false,
        };
        h.drain();
        assert!(h.sent.remove(0).starts_with("0{\"sid\""));
        h
    }

    fn drain(&mut self) {
        while let Some(output) = self.conn.poll_output() {
            match output {
                Output::Transport(eio::Output::WsSend { frame, .. }) => {
                    self.sent.push(match frame {
                        Frame::Text(t) => t.to_string(),
                        Frame::Binary(b) => alloc::format!("<bin:{:?}>", &b[..]),
                    })
                }
                Output::Transport(eio::Output::WsClose { .. }) => self.ws_closed = true,
                other => self.events.push(other),
            }
        }
    }

    fn frame(&mut self, frame: Frame) {
        self.conn
            .handle_input(self.now, Input::WsFrame { ws: WS, frame });
        self.drain();
    }

    fn text(&mut self, s: &str) {
        self.frame(Frame::Text(Str::from(s)));
    }

    fn binary(&mut self, b: &'static [u8]) {
        self.frame(Frame::Binary(Bytes::from_static(b)));
    }

    fn take_events(&mut self) -> Vec<Output> {
        core::mem::take(&mut self.events)
    }

    fn take_sent(&mut self) -> Vec<alloc::string::String> {
        core::mem::take(&mut self.sent)
    }

    /// Connects `nsp` with socket id `id`.
    fn connect(&mut self, connect: &str, nsp: &str, id: &str) {
        self.text(connect);
        let events = self.take_events();
        assert!(
            matches!(&events[..], [Output::Connect { nsp: n, .. }] if n.as_str() == nsp),
            "{events:?}"
        );
        self.conn
            .accept(self.now, nsp, Sid::parse(id).unwrap(), None)
            .unwrap();
        self.drain();
        let prefix = if nsp == "/" {
            alloc::string::String::from("40")
        } else {
            alloc::format!("40{nsp},")
        };
        let reply = alloc::format!(r#"{prefix}{{"sid":"{id}"}}"#);
        assert_eq!(self.take_sent(), vec![reply]);
    }
}

fn s(x: &str) -> Str {
    Str::from(x)
}

#[test]
fn connect_to_main_and_custom_namespaces() {
    let mut h = Harness::new();
    h.text("40");
    assert_eq!(
        h.take_events(),
        vec![Output::Connect {
            nsp: s("/"),
            auth: None
        }]
    );
    h.conn
        .accept(h.now, "/", Sid::parse("main1").unwrap(), None)
        .unwrap();
    h.drain();
    assert_eq!(h.take_sent(), vec![r#"40{"sid":"main1"}"#]);

    h.text(r#"40/custom,{"token":"abc"}"#);
    assert_eq!(
        h.take_events(),
        vec![Output::Connect {
            nsp: s("/custom"),
            auth: Some(s(r#"{"token":"abc"}"#))
        }]
    );
    h.conn
        .accept(h.now, "/custom", Sid::parse("c1").unwrap(), Some("p\"1"))
        .unwrap();
    h.drain();
    assert_eq!(
        h.take_sent(),
        vec![r#"40/custom,{"sid":"c1","pid":"p\"1"}"#]
    );
    assert_eq!(h.conn.connected_namespaces().count(), 2);
}

#[test]
fn rejected_namespace_gets_connect_error() {
    let mut h = Harness::new();
    h.text("40/random");
    assert_eq!(
        h.take_events(),
        vec![Output::Connect {
            nsp: s("/random"),
            auth: None
        }]
    );
    h.conn
        .reject(h.now, "/random", s(r#"{"message":"Invalid namespace"}"#))
        .unwrap();
    h.drain();
    assert_eq!(
        h.take_sent(),
        vec![r#"44/random,{"message":"Invalid namespace"}"#]
    );
    // The connection lives on and may try again.
    h.text("40/random,");
    assert_eq!(h.take_events().len(), 1);
    assert!(!h.conn.is_closed());
}

#[test]
fn invalid_first_packet_closes() {
    let mut h = Harness::new();
    h.text("4abc");
    assert!(h.ws_closed);
    assert!(h.conn.is_closed());
    assert_eq!(h.take_events(), vec![Output::Closed]);
}

#[test]
fn no_namespace_in_time_closes() {
    let mut h = Harness::new();
    let timeout = ConnectionConfig::default().connect_timeout;
    assert!(h.conn.poll_timeout().unwrap() <= T0 + timeout);
    h.conn.handle_input(T0 + timeout, Input::Timeout);
    h.drain();
    assert!(h.ws_closed && h.conn.is_closed());
}

#[test]
fn accepting_clears_the_connect_timeout() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    // A live client answers the heartbeat meanwhile (the first PING is due
    // before the connect timeout).
    h.now = T0 + ServerConfig::default().ping_interval;
    h.conn.handle_input(h.now, Input::Timeout);
    h.drain();
    h.text("3");
    let timeout = ConnectionConfig::default().connect_timeout;
    h.now = T0 + timeout;
    h.conn.handle_input(h.now, Input::Timeout);
    h.drain();
    assert!(!h.conn.is_closed());
}

#[test]
fn client_disconnect_keeps_the_session() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.connect("40/custom,", "/custom", "b");
    h.text("41/custom,");
    assert_eq!(
        h.take_events(),
        vec![Output::Disconnect {
            nsp: s("/custom"),
            reason: DisconnectReason::ClientNamespaceDisconnect
        }]
    );
    h.text(r#"42["message","to main"]"#);
    assert!(matches!(&h.take_events()[..], [Output::Event { nsp, .. }] if nsp.as_str() == "/"));
    assert!(!h.conn.is_closed());
}

#[test]
fn events_and_acks_from_the_client() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.text(r#"42["message",1,"2",{"3":[true]}]"#);
    assert_eq!(
        h.take_events(),
        vec![Output::Event {
            nsp: s("/"),
            data: s(r#"["message",1,"2",{"3":[true]}]"#),
            attachments: vec![],
            ack: None
        }]
    );
    h.text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#);
    let events = h.take_events();
    let Output::Event { ack: Some(id), .. } = &events[0] else {
        panic!("{events:?}")
    };
    h.conn
        .ack(h.now, "/", *id, s(r#"[1,"2",{"3":[false]}]"#), vec![])
        .unwrap();
    h.drain();
    assert_eq!(h.take_sent(), vec![r#"43456[1,"2",{"3":[false]}]"#]);
}

#[test]
fn binary_events_and_acks() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.text(r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
    h.binary(&[1, 2, 3]);
    assert!(
        h.take_events().is_empty(),
        "waits for the second attachment"
    );
    h.binary(&[4, 5, 6]);
    let events = h.take_events();
    let Output::Event {
        attachments,
        ack: Some(id),
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(attachments.len(), 2);
    h.conn
        .ack(
            h.now,
            "/",
            *id,
            s(r#"[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            attachments.clone(),
        )
        .unwrap();
    h.drain();
    assert_eq!(
        h.take_sent(),
        vec![
            r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#.to_string(),
            "<bin:[1, 2, 3]>".to_string(),
            "<bin:[4, 5, 6]>".to_string(),
        ]
    );
}

#[test]
fn malformed_packets_after_connecting_close() {
    for bad in [
        "4abc",
        "42{}",
        r#"42abc["a"]"#,
        r#"42/other,["a"]"#,
        "40",
        "44{}",
    ] {
        let mut h = Harness::new();
        h.connect("40", "/", "a");
        h.text(bad);
        assert!(h.conn.is_closed(), "{bad}");
        let events = h.take_events();
        assert!(
            matches!(events.first(), Some(Output::Disconnect { .. })),
            "{bad}: {events:?}"
        );
        assert_eq!(events.last(), Some(&Output::Closed), "{bad}");
    }
}

#[test]
fn server_acks_resolve_or_time_out() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    let packet = |name: &str| {
        Packet::new(
            PacketKind::Event,
            s("/"),
            Some(Str::from(alloc::format!(r#"["{name}"]"#))),
        )
    };
    let t = Duration::from_secs(5);
    let first = h.conn.emit_with_ack(h.now, packet("one"), Some(t)).unwrap();
    let second = h.conn.emit_with_ack(h.now, packet("two"), Some(t)).unwrap();
    h.drain();
    assert_eq!(
        h.take_sent(),
        vec![
            alloc::format!(r#"42{first}["one"]"#),
            alloc::format!(r#"42{second}["two"]"#)
        ]
    );
    h.text(&alloc::format!(r#"43{first}["ok"]"#));
    assert_eq!(
        h.take_events(),
        vec![Output::Ack {
            nsp: s("/"),
            id: first,
            data: Some(s(r#"["ok"]"#)),
            attachments: vec![]
        }]
    );
    // A duplicate or unknown ack is ignored.
    h.text(&alloc::format!(r#"43{first}["again"]"#));
    assert!(h.take_events().is_empty());
    h.now = T0 + t;
    h.conn.handle_input(h.now, Input::Timeout);
    h.drain();
    assert_eq!(
        h.take_events(),
        vec![Output::AckFailed {
            nsp: s("/"),
            id: second,
            error: crate::AckError::Timeout,
        }]
    );
}

#[test]
fn a_socket_that_leaves_fails_its_acks_first() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.connect("40/custom,", "/custom", "b");
    let event = |nsp: &str| Packet::new(PacketKind::Event, s(nsp), Some(s(r#"["q"]"#)));
    let main = h.conn.emit_with_ack(h.now, event("/"), None).unwrap();
    let custom = h
        .conn
        .emit_with_ack(h.now, event("/custom"), Some(Duration::from_secs(5)))
        .unwrap();
    h.drain();
    h.take_sent();
    // The client leaves `/custom`: only its ack fails, before the
    // Disconnect, and its deadline is disarmed.
    h.text("41/custom,");
    let events = h.take_events();
    assert_eq!(
        events,
        vec![
            Output::AckFailed {
                nsp: s("/custom"),
                id: custom,
                error: crate::AckError::Disconnected,
            },
            Output::Disconnect {
                nsp: s("/custom"),
                reason: DisconnectReason::ClientNamespaceDisconnect,
            },
        ]
    );
    assert!(h.conn.acks.contains(&main));
    // The connection closes: the rest fails too.
    h.conn.close(h.now);
    h.drain();
    let events = h.take_events();
    assert_eq!(
        events.first(),
        Some(&Output::AckFailed {
            nsp: s("/"),
            id: main,
            error: crate::AckError::Disconnected,
        })
    );
}

#[test]
fn server_disconnect_and_close() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.connect("40/custom,", "/custom", "b");
    h.conn.disconnect(h.now, "/custom").unwrap();
    h.drain();
    assert_eq!(h.take_sent(), vec!["41/custom,"]);
    assert_eq!(
        h.take_events(),
        vec![Output::Disconnect {
            nsp: s("/custom"),
            reason: DisconnectReason::ServerNamespaceDisconnect
        }]
    );
    assert_eq!(
        h.conn.emit(
            h.now,
            "/custom",
            &Packet::new(PacketKind::Event, s("/custom"), Some(s(r#"["x"]"#))).encode()
        ),
        Err(CommandError::NotConnected)
    );
    h.conn.close(h.now);
    h.drain();
    assert_eq!(
        h.take_events(),
        vec![
            Output::Disconnect {
                nsp: s("/"),
                reason: DisconnectReason::ForcedServerClose
            },
            Output::Closed
        ]
    );
    assert!(h.ws_closed);
}

#[test]
fn transport_loss_disconnects_every_socket() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.conn.handle_input(h.now, Input::WsClosed(WS));
    h.drain();
    assert_eq!(
        h.take_events(),
        vec![
            Output::Disconnect {
                nsp: s("/"),
                reason: DisconnectReason::Transport(CloseReason::TransportClose)
            },
            Output::Closed
        ]
    );
    assert_eq!(
        DisconnectReason::Transport(CloseReason::TransportClose).as_node_str(),
        "transport close"
    );
}

#[test]
fn a_binary_packet_is_queued_whole_or_not_at_all() {
    let mut config = ServerConfig::default();
    config.max_buffered_packets = 2;
    let mut server = Server::new(config, CountingSidGenerator::default());
    // Polling, so nothing drains the buffer.
    let session = server.open_session(T0, Opening::Polling(RequestId(1)));
    let mut conn = Connection::new(T0, session, &ConnectionConfig::default());
    conn.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"40"),
        },
    );
    while conn.poll_output().is_some() {}
    conn.accept(T0, "/", Sid::parse("a").unwrap(), None)
        .unwrap(); // 1 message buffered
    let binary = Packet {
        attachments: vec![Bytes::from_static(&[1]), Bytes::from_static(&[2])],
        ..Packet::new(
            PacketKind::Event,
            s("/"),
            Some(s(
                r#"["b",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            )),
        )
    };
    assert_eq!(
        conn.emit(T0, "/", &binary.encode()),
        Err(CommandError::BufferFull)
    );
    assert_eq!(conn.engine().buffered(), 1);
}

/// Volatile emits leave only when the transport can take them at once: over
/// long-polling, only while a GET is parked (Node's `transport.writable`).
#[test]
fn volatile_emits_need_a_writable_transport() {
    let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
    let session = server.open_session(T0, Opening::Polling(RequestId(1)));
    let mut conn = Connection::new(T0, session, &ConnectionConfig::default());
    // Collects the bodies of the responses, skipping the handshake and `ok`s.
    let bodies = |conn: &mut Connection| {
        let mut out = Vec::new();
        while let Some(output) = conn.poll_output() {
            if let Output::Transport(eio::Output::Respond { response, .. }) = output {
                let body = alloc::string::String::from_utf8_lossy(&response.body).into_owned();
                if body != "ok" && !body.starts_with("0{") {
                    out.push(body);
                }
            }
        }
        out
    };
    let _ = bodies(&mut conn);
    conn.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"40"),
        },
    );
    let _ = bodies(&mut conn);
    conn.accept(T0, "/", Sid::parse("v1").unwrap(), None)
        .unwrap();
    let event = |name: &str| {
        Packet::new(
            PacketKind::Event,
            s("/"),
            Some(Str::from(alloc::format!(r#"["{name}"]"#))),
        )
        .encode()
    };
    // The CONNECT reply waits for a GET: not writable.
    assert!(!conn.engine().is_writable());
    assert_eq!(conn.emit_volatile(T0, "/", &event("dropped")), Ok(false));
    conn.handle_input(T0, Input::Poll(RequestId(3)));
    assert_eq!(bodies(&mut conn), vec![r#"40{"sid":"v1"}"#]);
    // Nothing buffered, no GET parked: still not writable.
    assert_eq!(
        conn.emit_volatile(T0, "/", &event("dropped too")),
        Ok(false)
    );
    conn.handle_input(T0, Input::Poll(RequestId(4)));
    assert!(conn.engine().is_writable());
    assert_eq!(conn.emit_volatile(T0, "/", &event("sent")), Ok(true));
    assert_eq!(bodies(&mut conn), vec![r#"42["sent"]"#]);
    // A volatile emit to a namespace the client did not join is an error,
    // like any emit.
    assert!(conn.emit_volatile(T0, "/other", &event("x")).is_err());
}

/// Node's `socket.disconnect(true)`: a DISCONNECT on every namespace
/// first, each socket gone with `server namespace disconnect` (not kept by
/// connection state recovery), then the session closes.
#[test]
fn disconnect_all_sends_the_client_away() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.connect("40/custom,", "/custom", "b");
    h.conn.disconnect_all(h.now);
    h.drain();
    let mut sent = h.take_sent();
    sent.sort();
    assert_eq!(sent, vec!["41", "41/custom,"]);
    let events = h.take_events();
    assert_eq!(events.len(), 3, "{events:?}");
    for event in &events[..2] {
        assert!(matches!(
            event,
            Output::Disconnect {
                reason: DisconnectReason::ServerNamespaceDisconnect,
                ..
            }
        ));
    }
    assert_eq!(events[2], Output::Closed);
    assert!(h.ws_closed);
    assert!(!crate::recovery::is_recoverable(
        &DisconnectReason::ServerNamespaceDisconnect
    ));
    // Nothing more once closed.
    h.conn.disconnect_all(h.now);
    h.drain();
    assert!(h.take_sent().is_empty() && h.take_events().is_empty());
}

/// A server shutting down: `server shutting down`, which recovery keeps.
#[test]
fn shutting_down_keeps_sessions_recoverable() {
    let mut h = Harness::new();
    h.connect("40", "/", "a");
    h.conn.shut_down(h.now);
    h.drain();
    assert!(h.take_sent().is_empty());
    assert_eq!(
        h.take_events(),
        vec![
            Output::Disconnect {
                nsp: s("/"),
                reason: DisconnectReason::ServerShuttingDown
            },
            Output::Closed
        ]
    );
    assert!(crate::recovery::is_recoverable(
        &DisconnectReason::ServerShuttingDown
    ));
}

/// Over polling, a POST of many events is decoded one packet per
/// `poll_output`, and held back while the driver holds.
#[test]
fn events_of_a_post_are_decoded_lazily_and_can_be_held() {
    let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
    let session = server.open_session(T0, Opening::Polling(RequestId(1)));
    let mut conn = Connection::new(T0, session, &ConnectionConfig::default());
    let drain =
        |conn: &mut Connection| core::iter::from_fn(|| conn.poll_output()).collect::<Vec<_>>();
    drain(&mut conn);
    conn.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"40"),
        },
    );
    drain(&mut conn);
    conn.accept(T0, "/", Sid::parse("a").unwrap(), None)
        .unwrap();
    drain(&mut conn);
    let body: Vec<u8> = (0..2_000)
        .map(|i| alloc::format!(r#"42["e",{i}]"#))
        .collect::<Vec<_>>()
        .join("\u{1e}")
        .into_bytes();
    conn.handle_input(
        T0,
        Input::Post {
            request: RequestId(3),
            body: Bytes::from(body),
        },
    );
    let first = conn.poll_output().unwrap();
    assert!(matches!(&first, Output::Event { data, .. } if data.as_str() == r#"["e",0]"#));
    conn.hold_messages(T0, true);
    assert_eq!(conn.poll_output(), None);
    conn.hold_messages(T0, false);
    let rest = drain(&mut conn);
    assert_eq!(rest.len(), 2_000);
    for (i, output) in rest[..1_999].iter().enumerate() {
        let expected = alloc::format!(r#"["e",{}]"#, i + 1);
        assert!(
            matches!(output, Output::Event { data, .. } if data.as_str() == expected),
            "{output:?}"
        );
    }
    assert!(matches!(
        &rest[1_999],
        Output::Transport(eio::Output::Respond { request: RequestId(3), response }) if response.status == 200
    ));
}

/// A socket.io 2.x client (Engine.IO v3): the main namespace is joined at
/// once, a CONNECT's query is its auth, the answers carry no id.
#[test]
#[allow(clippy::field_reassign_with_default)] // ServerConfig is non_exhaustive
fn a_legacy_client_joins_the_main_namespace_without_asking() {
    let mut config = ServerConfig::default();
    config.allow_eio3 = true;
    let server = Server::new(config, CountingSidGenerator::default());
    let route = server
        .route(&engineio_proto::server::Request {
            method: engineio_proto::server::Method::Get,
            query: "EIO=3&transport=websocket",
            websocket: true,
        })
        .unwrap();
    let engineio_proto::server::Route::Handshake(_, dialect) = route else {
        panic!("{route:?}");
    };
    let session = server.open_session_as(
        T0,
        Sid::parse("engine1").unwrap(),
        Opening::WebSocket(WS),
        dialect,
    );
    let mut h = Harness::over(session);
    assert!(h.conn.is_legacy());
    // The main namespace, without a CONNECT from the client.
    assert_eq!(
        h.take_events(),
        [Output::Connect {
            nsp: Str::from("/"),
            auth: None
        }]
    );
    h.conn
        .accept(T0, "/", Sid::parse("engine1").unwrap(), Some("pid-ignored"))
        .unwrap();
    h.drain();
    assert_eq!(h.take_sent(), ["40"]);
    // Another namespace, its auth in the query.
    h.text("40/admin?token=a%20b&x=1&x=2,");
    assert_eq!(
        h.take_events(),
        [Output::Connect {
            nsp: Str::from("/admin"),
            auth: Some(Str::from(r#"{"token":"a b","x":"2"}"#))
        }]
    );
    h.conn
        .accept(T0, "/admin", Sid::parse("s2").unwrap(), None)
        .unwrap();
    h.drain();
    assert_eq!(h.take_sent(), ["40/admin,"]);
    // Events as in v5.
    h.text(r#"42/admin,1["hi"]"#);
    assert!(
        matches!(&h.take_events()[..], [Output::Event { nsp, ack: Some(AckId(1)), .. }] if nsp.as_str() == "/admin")
    );
}
