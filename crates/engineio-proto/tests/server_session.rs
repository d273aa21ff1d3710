//! The server session machine driven directly, for edge cases the pair
//! simulator's well-behaved client never produces.

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::server::{Input, Opening, Output, Server, ServerConfig, Session};
use engineio_proto::{
    CloseReason, CountingSidGenerator, Frame, Instant, RequestId, Str, TransportKind, WsId,
};

const T0: Instant = Instant::from_millis(1_000);

fn open_polling() -> Session {
    let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
    let mut session = server.open_session(T0, Opening::Polling(RequestId(1)));
    let outputs = drain(&mut session);
    assert!(matches!(
        &outputs[..],
        [Output::Respond {
            request: RequestId(1),
            ..
        }]
    ));
    session
}

fn drain(session: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| session.poll_output()).collect()
}

fn text(s: &'static str) -> Frame {
    Frame::Text(Str::from_static(s))
}

fn body_of(output: &Output) -> (RequestId, &[u8]) {
    match output {
        Output::Respond { request, response } => (*request, &response.body[..]),
        other => panic!("not a response: {other:?}"),
    }
}

/// Starts an upgrade on WebSocket 9 and answers the probe.
fn probe(session: &mut Session, at: Instant) {
    session.handle_input(at, Input::Upgrade(WsId(9)));
    session.handle_input(
        at,
        Input::WsFrame {
            ws: WsId(9),
            frame: text("2probe"),
        },
    );
    let outputs = drain(session);
    assert_eq!(
        outputs[0],
        Output::WsSend {
            ws: WsId(9),
            frame: text("3probe"),
            compress: true,
        }
    );
}

#[test]
fn upgrade_noops_come_every_tick_from_the_probe() {
    let mut session = open_polling();
    session.handle_input(T0, Input::Poll(RequestId(2)));
    assert!(drain(&mut session).is_empty());
    session.handle_input(T0, Input::Upgrade(WsId(9)));
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(9),
            frame: text("2probe"),
        },
    );
    // 3probe at once; the parked GET waits for the first tick.
    let outputs = drain(&mut session);
    assert_eq!(
        outputs,
        vec![Output::WsSend {
            ws: WsId(9),
            frame: text("3probe"),
            compress: true,
        }]
    );
    let tick = T0 + Duration::from_millis(100);
    assert_eq!(session.poll_timeout(), Some(tick));
    session.handle_input(tick, Input::Timeout);
    assert_eq!(body_of(&drain(&mut session)[0]), (RequestId(2), &b"6"[..]));
    // A client that keeps polling gets one NOOP per tick, not more.
    session.handle_input(tick + Duration::from_millis(1), Input::Poll(RequestId(3)));
    assert!(drain(&mut session).is_empty());
    session.handle_input(tick + Duration::from_millis(100), Input::Timeout);
    assert_eq!(body_of(&drain(&mut session)[0]), (RequestId(3), &b"6"[..]));
}

#[test]
fn a_get_racing_ahead_of_the_upgrade_packet_is_refused_like_after_it() {
    let mut session = open_polling();
    probe(&mut session, T0);
    // `2probe` and `5` were sent first, but the GET on another connection
    // arrives between them.
    session.handle_input(T0, Input::Poll(RequestId(2)));
    assert!(drain(&mut session).is_empty());
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(9),
            frame: text("5"),
        },
    );
    let outputs = drain(&mut session);
    assert_eq!(
        body_of(&outputs[0]),
        (RequestId(2), &br#"{"code":3,"message":"Bad request"}"#[..])
    );
    assert!(outputs.contains(&Output::Upgraded));
}

#[test]
fn a_poll_during_the_upgrade_carries_queued_messages_first() {
    let mut session = open_polling();
    probe(&mut session, T0);
    session.send(T0, "queued".into()).unwrap();
    session.handle_input(T0, Input::Poll(RequestId(2)));
    assert_eq!(
        body_of(&drain(&mut session)[0]),
        (RequestId(2), &b"4queued"[..])
    );
}

#[test]
fn upgrade_times_out_and_the_session_stays_on_polling() {
    let mut session = open_polling();
    session.handle_input(T0, Input::Upgrade(WsId(9)));
    session.handle_input(T0 + ServerConfig::default().upgrade_timeout, Input::Timeout);
    assert_eq!(drain(&mut session), vec![Output::WsClose { ws: WsId(9) }]);
    assert!(!session.is_upgrading());
    assert_eq!(session.transport(), TransportKind::Polling);
    // A later upgrade may still succeed.
    probe(&mut session, T0 + Duration::from_secs(11));
    session.handle_input(
        T0 + Duration::from_secs(11),
        Input::WsFrame {
            ws: WsId(9),
            frame: text("5"),
        },
    );
    assert!(drain(&mut session).contains(&Output::Upgraded));
    assert_eq!(session.transport(), TransportKind::WebSocket);
}

#[test]
fn second_websocket_while_upgrading_or_after_is_closed() {
    let mut session = open_polling();
    probe(&mut session, T0);
    session.handle_input(T0, Input::Upgrade(WsId(10)));
    assert_eq!(drain(&mut session), vec![Output::WsClose { ws: WsId(10) }]);
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(9),
            frame: text("5"),
        },
    );
    drain(&mut session);
    session.handle_input(T0, Input::Upgrade(WsId(11)));
    assert_eq!(drain(&mut session), vec![Output::WsClose { ws: WsId(11) }]);
    assert!(!session.is_closed());
}

#[test]
fn unexpected_probe_traffic_abandons_the_upgrade_only() {
    let mut session = open_polling();
    session.handle_input(T0, Input::Upgrade(WsId(9)));
    session.handle_input(
        T0,
        Input::WsFrame {
            ws: WsId(9),
            frame: text("4too early"),
        },
    );
    assert_eq!(drain(&mut session), vec![Output::WsClose { ws: WsId(9) }]);
    assert!(!session.is_closed());
    assert_eq!(session.transport(), TransportKind::Polling);
}

#[test]
fn ping_timeout_counts_from_queueing_not_delivery() {
    let config = ServerConfig::default();
    let mut session = open_polling();
    // No GET is parked: the PING waits in the buffer, the deadline runs anyway.
    let ping_at = T0 + config.ping_interval;
    session.handle_input(ping_at, Input::Timeout);
    assert_eq!(session.buffered(), 1);
    session.handle_input(ping_at + config.ping_timeout, Input::Poll(RequestId(2)));
    let outputs = drain(&mut session);
    // The deadline fires before the late GET is handled, which then finds
    // the session gone.
    assert_eq!(outputs[0], Output::Closed(CloseReason::PingTimeout));
    assert_eq!(
        body_of(&outputs[1]).1,
        br#"{"code":1,"message":"Session ID unknown"}"#
    );
}

#[test]
fn pong_postpones_the_next_ping() {
    let config = ServerConfig::default();
    let mut session = open_polling();
    let ping_at = T0 + config.ping_interval;
    session.handle_input(ping_at, Input::Poll(RequestId(2)));
    session.handle_input(ping_at, Input::Timeout);
    assert_eq!(body_of(&drain(&mut session)[0]), (RequestId(2), &b"2"[..]));
    let pong_at = ping_at + Duration::from_millis(5);
    session.handle_input(
        pong_at,
        Input::Post {
            request: RequestId(3),
            body: Bytes::from_static(b"3"),
        },
    );
    assert_eq!(body_of(&drain(&mut session)[0]), (RequestId(3), &b"ok"[..]));
    assert_eq!(session.poll_timeout(), Some(pong_at + config.ping_interval));
}

#[test]
fn a_ping_from_the_client_is_a_protocol_error() {
    let mut session = open_polling();
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"2"),
        },
    );
    let outputs = drain(&mut session);
    assert_eq!(body_of(&outputs[0]), (RequestId(2), &b"ok"[..]));
    assert_eq!(
        outputs[1],
        Output::Closed(CloseReason::TransportError(
            engineio_proto::TransportError::InvalidHeartbeatDirection
        ))
    );
}

#[test]
fn the_send_buffer_is_bounded() {
    let mut config = ServerConfig::default();
    config.max_buffered_packets = 3;
    let mut server = Server::new(config, CountingSidGenerator::default());
    let mut session = server.open_session(T0, Opening::Polling(RequestId(1)));
    drain(&mut session);
    for _ in 0..3 {
        session.send(T0, "x".into()).unwrap();
    }
    assert_eq!(
        session.send(T0, "x".into()),
        Err(engineio_proto::server::SendError::BufferFull)
    );
    // Reading drains it.
    session.handle_input(T0, Input::Poll(RequestId(2)));
    assert_eq!(body_of(&drain(&mut session)[0]).1, b"4x\x1e4x\x1e4x");
    assert!(session.send(T0, "x".into()).is_ok());
}

#[test]
fn graceful_close_over_polling_waits_for_a_get() {
    let mut session = open_polling();
    session.send(T0, "bye".into()).unwrap();
    session.close(T0);
    assert!(
        drain(&mut session).is_empty(),
        "nothing until the client polls"
    );
    assert_eq!(
        session.send(T0, "late".into()),
        Err(engineio_proto::server::SendError::Closed)
    );
    // What was buffered goes first, alone (as Node sends it: a client
    // would handle packets sent with the CLOSE after closing); the CLOSE
    // comes with the next GET.
    session.handle_input(T0, Input::Poll(RequestId(2)));
    let outputs = drain(&mut session);
    assert_eq!(outputs.len(), 1);
    assert_eq!(body_of(&outputs[0]), (RequestId(2), &b"4bye"[..]));
    session.handle_input(T0, Input::Poll(RequestId(3)));
    let outputs = drain(&mut session);
    assert_eq!(body_of(&outputs[0]), (RequestId(3), &b"1"[..]));
    assert_eq!(outputs[1], Output::Closed(CloseReason::ForcedClose));
}

#[test]
fn graceful_close_gives_up_after_the_close_timeout() {
    let mut session = open_polling();
    session.close(T0);
    session.handle_input(T0 + ServerConfig::default().close_timeout, Input::Timeout);
    assert_eq!(
        drain(&mut session),
        vec![Output::Closed(CloseReason::ForcedClose)]
    );
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn a_late_wake_up_does_not_extend_the_pong_deadline() {
    let config = ServerConfig::default();
    let mut session = open_polling();
    // The driver wakes 5 ms after the PING was due, then a GET arrives
    // exactly pingInterval + pingTimeout after the handshake.
    let due = T0 + config.ping_interval;
    session.handle_input(due + Duration::from_millis(5), Input::Timeout);
    session.handle_input(due + config.ping_timeout, Input::Poll(RequestId(2)));
    let outputs = drain(&mut session);
    assert_eq!(outputs[0], Output::Closed(CloseReason::PingTimeout));
}

#[test]
fn one_late_call_queues_the_ping_and_applies_its_deadline() {
    let config = ServerConfig::default();
    let mut session = open_polling();
    // No wake-up at all until after both deadlines.
    let late = T0 + config.ping_interval + config.ping_timeout + Duration::from_millis(1);
    session.handle_input(late, Input::Poll(RequestId(2)));
    let outputs = drain(&mut session);
    assert_eq!(outputs[0], Output::Closed(CloseReason::PingTimeout));
    assert_eq!(
        body_of(&outputs[1]).1,
        br#"{"code":1,"message":"Session ID unknown"}"#
    );
}

/// A POST of many packets: every one comes out, in order, then the `ok`.
#[test]
fn a_post_of_any_number_of_packets_is_delivered_whole() {
    let mut session = open_polling();
    let count = 300_000;
    let body: Vec<u8> = (0..count)
        .map(|i| format!("4{}", i % 10))
        .collect::<Vec<_>>()
        .join("\u{1e}")
        .into_bytes();
    assert!(body.len() <= ServerConfig::default().max_payload);
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from(body),
        },
    );
    let outputs = drain(&mut session);
    assert_eq!(outputs.len(), count + 1);
    for (i, output) in outputs[..count].iter().enumerate() {
        let expected = format!("{}", i % 10);
        assert_eq!(
            output,
            &Output::Message(engineio_proto::Message::Text(Str::from(expected.as_str())))
        );
    }
    assert_eq!(body_of(&outputs[count]), (RequestId(2), &b"ok"[..]));
    assert!(!session.is_closed());
}

/// Held messages wait, unanswered; everything else goes on; letting go
/// delivers the rest and answers the POST.
#[test]
fn held_messages_wait_while_the_session_goes_on() {
    let mut session = open_polling();
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"4a\x1e4b\x1e4c"),
        },
    );
    let first = session.poll_output().unwrap();
    assert_eq!(first, Output::Message("a".into()));
    session.hold_messages(T0, true);
    assert_eq!(session.poll_output(), None);
    assert!(session.has_inbound());
    // The application still sends, and a GET carries it.
    session.send(T0, "out".into()).unwrap();
    session.handle_input(T0, Input::Poll(RequestId(3)));
    assert_eq!(
        body_of(&drain(&mut session)[0]),
        (RequestId(3), &b"4out"[..])
    );
    // The heartbeat goes on: the PING comes on time.
    let ping_at = T0 + ServerConfig::default().ping_interval;
    session.handle_input(ping_at, Input::Poll(RequestId(4)));
    session.handle_input(ping_at, Input::Timeout);
    assert_eq!(body_of(&drain(&mut session)[0]), (RequestId(4), &b"2"[..]));
    session.hold_messages(ping_at, false);
    let rest = drain(&mut session);
    assert_eq!(rest[0], Output::Message("b".into()));
    assert_eq!(rest[1], Output::Message("c".into()));
    assert_eq!(body_of(&rest[2]), (RequestId(2), &b"ok"[..]));
    assert!(!session.has_inbound());
}

/// A client held for good still times out: its PONG deadline moves by
/// `pingInterval + pingTimeout` at most; its POST is answered.
#[test]
fn a_client_held_for_good_times_out() {
    let config = ServerConfig::default();
    let credit = config.ping_interval + config.ping_timeout;
    let mut session = open_polling();
    session.hold_messages(T0, true);
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"4a"),
        },
    );
    assert_eq!(session.poll_output(), None);
    let due = T0 + config.ping_interval;
    session.handle_input(due, Input::Timeout);
    drain(&mut session);
    let latest = due + config.ping_timeout + credit;
    assert_eq!(session.poll_timeout(), Some(latest));
    session.handle_input(latest - Duration::from_millis(1), Input::Timeout);
    assert!(!session.is_closed());
    session.handle_input(latest, Input::Timeout);
    let outputs = drain(&mut session);
    assert_eq!(body_of(&outputs[0]), (RequestId(2), &b"ok"[..]));
    assert_eq!(outputs[1], Output::Closed(CloseReason::PingTimeout));
}

/// The time a client is held (its PONG behind what the server does not
/// read) is added to its PONG deadline once the hold ends, hold by hold;
/// the time it is not held counts as usual.
#[test]
fn time_held_does_not_count_against_the_pong_deadline() {
    let config = ServerConfig::default();
    let ms = Duration::from_millis;
    let mut session = open_polling();
    let due = T0 + config.ping_interval;
    session.handle_input(due, Input::Timeout);
    drain(&mut session);
    let deadline = due + config.ping_timeout;
    assert_eq!(session.poll_timeout(), Some(deadline));
    // Held twice, 700 ms and 300 ms, before the deadline.
    session.hold_messages(due + ms(100), true);
    session.hold_messages(due + ms(800), false);
    session.hold_messages(deadline - ms(300), true);
    session.hold_messages(deadline, false);
    let deadline = deadline + ms(1_000);
    assert_eq!(session.poll_timeout(), Some(deadline));
    session.handle_input(deadline - ms(1), Input::Timeout);
    assert!(!session.is_closed());
    // The PONG comes in time: the next PING is due an interval later, with
    // a fresh deadline and credit.
    session.handle_input(
        deadline - ms(1),
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"3"),
        },
    );
    drain(&mut session);
    assert_eq!(
        session.poll_timeout(),
        Some(deadline - ms(1) + config.ping_interval)
    );
    assert!(!session.is_closed());
}

/// Not held, the deadline stands.
#[test]
fn a_hold_that_ended_before_the_ping_gives_no_credit() {
    let config = ServerConfig::default();
    let mut session = open_polling();
    session.hold_messages(T0, true);
    session.hold_messages(T0 + Duration::from_millis(500), false);
    let due = T0 + config.ping_interval;
    session.handle_input(due, Input::Timeout);
    drain(&mut session);
    session.handle_input(due + config.ping_timeout, Input::Timeout);
    assert_eq!(
        drain(&mut session),
        vec![Output::Closed(CloseReason::PingTimeout)]
    );
}

/// A second POST while the first is being delivered: 400, session closed
/// (Node: "data request overlap from client").
#[test]
fn overlapping_posts_close_the_session() {
    let mut session = open_polling();
    session.hold_messages(T0, true);
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"4a"),
        },
    );
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(3),
            body: Bytes::from_static(b"4b"),
        },
    );
    let outputs = drain(&mut session);
    let statuses: Vec<(RequestId, u16)> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Respond { request, response } => Some((*request, response.status)),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![(RequestId(3), 400), (RequestId(2), 200)]);
    assert_eq!(
        outputs.last(),
        Some(&Output::Closed(CloseReason::TransportError(
            engineio_proto::TransportError::OverlappingPost
        )))
    );
}

/// A body the driver could not read: Node's status, session closed.
#[test]
fn failed_post_bodies_close_the_session_with_nodes_status() {
    use engineio_proto::{PostFailure, TransportError};
    for (failure, status, error) in [
        (PostFailure::Timeout, 408, TransportError::BodyTimeout),
        (
            PostFailure::TooManyChunks,
            413,
            TransportError::TooManyChunks,
        ),
        (
            PostFailure::BinaryContent,
            400,
            TransportError::InvalidContent,
        ),
        (PostFailure::Aborted, 400, TransportError::BodyAborted),
    ] {
        let mut session = open_polling();
        session.handle_input(
            T0,
            Input::PostFailed {
                request: RequestId(2),
                failure,
            },
        );
        let outputs = drain(&mut session);
        assert!(matches!(
            &outputs[0],
            Output::Respond { request: RequestId(2), response } if response.status == status
        ));
        assert_eq!(
            outputs[1],
            Output::Closed(CloseReason::TransportError(error))
        );
    }
}

/// A WebSocket that broke the protocol ends the session with a reason.
#[test]
fn a_failed_websocket_closes_its_session() {
    use engineio_proto::WsFailure;
    for (failure, reason) in [
        (WsFailure::TooLarge, CloseReason::PayloadTooLarge),
        (
            WsFailure::Invalid,
            CloseReason::TransportError(engineio_proto::TransportError::InvalidWebSocket),
        ),
    ] {
        let mut server = Server::new(ServerConfig::default(), CountingSidGenerator::default());
        let mut session = server.open_session(T0, Opening::WebSocket(WsId(1)));
        drain(&mut session);
        session.handle_input(
            T0,
            Input::WsFailed {
                ws: WsId(1),
                failure,
            },
        );
        let outputs = drain(&mut session);
        assert_eq!(outputs.last(), Some(&Output::Closed(reason)));
    }
}

/// The machine counts messages and their data both ways, not heartbeats
/// nor framing, and remembers why it closed.
#[test]
fn traffic_and_the_close_reason_are_counted_by_the_machine() {
    use engineio_proto::Message;
    let mut session = open_polling();
    // The OPEN packet is not a message.
    assert!(session.take_traffic().is_empty());
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(2),
            body: Bytes::from_static(b"4hello\x1e3\x1ebAQID"),
        },
    );
    drain(&mut session);
    session
        .send(T0, Message::Text(Str::from_static("hey")))
        .unwrap();
    session
        .send(T0, Message::Binary(Bytes::from_static(&[1, 2])))
        .unwrap();
    let traffic = session.take_traffic();
    assert_eq!(
        (traffic.messages_in, traffic.bytes_in),
        (2, 5 + 3),
        "a text and a binary message in; the PONG is not counted"
    );
    assert_eq!((traffic.messages_out, traffic.bytes_out), (2, 3 + 2));
    assert!(session.take_traffic().is_empty(), "taken once");
    assert_eq!(session.close_reason(), None);
    session.handle_input(
        T0,
        Input::Post {
            request: RequestId(3),
            body: Bytes::from_static(b"1"),
        },
    );
    drain(&mut session);
    assert_eq!(session.close_reason(), Some(&CloseReason::PeerClose));
}
