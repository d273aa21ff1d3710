//! Client and server machines talking through the simulated network of
//! `sim/`, on a virtual clock: handshakes, messages, binary, the upgrade,
//! heartbeats, closes and misbehaving peers, with no sleeps.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{ClientConfig, HttpMethod};
use engineio_proto::server::{Method, ServerConfig};
use engineio_proto::{CloseReason, Message, TransportError, TransportKind, Transports};
use sim::{Seen, Sim};

const PING_INTERVAL: Duration = Duration::from_millis(300);
const PING_TIMEOUT: Duration = Duration::from_millis(200);

fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.ping_interval = PING_INTERVAL;
    config.ping_timeout = PING_TIMEOUT;
    config.upgrade_timeout = Duration::from_millis(1_000);
    config.max_payload = 1_000;
    config
}

fn client_config(transports: Transports, upgrade: bool) -> ClientConfig {
    let mut config = ClientConfig::default();
    config.transports = transports;
    config.upgrade = upgrade;
    config
}

fn polling_only() -> Sim {
    Sim::new(server_config(), client_config(Transports::POLLING, false))
}

fn websocket_only() -> Sim {
    Sim::new(server_config(), client_config(Transports::WEBSOCKET, false))
}

fn upgrading() -> Sim {
    Sim::new(server_config(), client_config(Transports::ALL, true))
}

fn text(s: &str) -> Message {
    Message::from(s)
}

fn binary(b: &'static [u8]) -> Message {
    Message::Binary(Bytes::from_static(b))
}

#[test]
fn handshake_over_polling() {
    let mut sim = polling_only();
    sim.connect();
    let sid = sim.sid();
    assert_eq!(sim.client_seen, vec![Seen::Opened(sid)]);
    let handshake = sim.client.handshake().unwrap();
    assert_eq!(handshake.ping_interval(), PING_INTERVAL);
    assert_eq!(handshake.ping_timeout(), PING_TIMEOUT);
    assert_eq!(handshake.max_payload, 1_000);
    assert_eq!(handshake.upgrades, vec!["websocket".to_string()]);
    assert_eq!(sim.client.transport(), TransportKind::Polling);
    assert_eq!(
        sim.session(sid).unwrap().transport(),
        TransportKind::Polling
    );
    // The handshake GET carried no sid; the poll after it does.
    assert_eq!(
        sim.client_requests[0],
        (HttpMethod::Get, "EIO=4&transport=polling".into())
    );
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        sim.client_requests[1],
        (
            HttpMethod::Get,
            format!("EIO=4&transport=polling&sid={sid}")
        )
    );
}

#[test]
fn handshake_over_websocket() {
    let mut sim = websocket_only();
    sim.connect();
    let sid = sim.sid();
    assert_eq!(sim.client.transport(), TransportKind::WebSocket);
    assert_eq!(
        sim.session(sid).unwrap().transport(),
        TransportKind::WebSocket
    );
    assert!(sim.client.handshake().unwrap().upgrades.is_empty());
    assert!(sim.client_requests.is_empty(), "no HTTP at all");
}

#[test]
fn messages_both_ways_over_polling() {
    let mut sim = polling_only();
    sim.connect();
    for i in 0..5 {
        sim.client_send(format!("up {i}"));
        sim.server_send(format!("down {i}"));
    }
    sim.run_for(Duration::from_millis(50));
    let up: Vec<Message> = (0..5).map(|i| text(&format!("up {i}"))).collect();
    let down: Vec<Message> = (0..5).map(|i| text(&format!("down {i}"))).collect();
    assert_eq!(sim.server_messages(), up);
    assert_eq!(sim.client_messages(), down);
}

#[test]
fn binary_over_polling_and_websocket() {
    for mut sim in [polling_only(), websocket_only()] {
        sim.connect();
        sim.client_send(binary(&[1, 2, 3, 4]));
        sim.client_send(text("between"));
        sim.server_send(binary(&[0, 255, 30]));
        sim.server_send(binary(&[]));
        sim.run_for(Duration::from_millis(50));
        assert_eq!(
            sim.server_messages(),
            vec![binary(&[1, 2, 3, 4]), text("between")]
        );
        assert_eq!(
            sim.client_messages(),
            vec![binary(&[0, 255, 30]), binary(&[])]
        );
    }
}

#[test]
fn polling_posts_respect_max_payload() {
    let mut sim = polling_only();
    sim.connect();
    // 30 messages of 100 bytes cannot fit in one 1,000-byte payload.
    let sent: Vec<Message> = (0..30).map(|i| text(&format!("{i:0>100}"))).collect();
    for m in &sent {
        sim.client.send(sim.now, m.clone()).unwrap();
    }
    sim.client_send(text("last"));
    sim.run_for(Duration::from_millis(100));
    let mut expected = sent.clone();
    expected.push(text("last"));
    assert_eq!(sim.server_messages(), expected);
    let posts = sim
        .client_requests
        .iter()
        .filter(|(m, _)| *m == HttpMethod::Post)
        .count();
    assert!(posts >= 4, "{posts} POSTs");
    assert!(sim.server_close_reason().is_none());
}

#[test]
fn upgrade_to_websocket() {
    let mut sim = upgrading();
    sim.connect();
    let sid = sim.sid();
    // The client's poll gets its NOOP one tick (100 ms) after the probe.
    sim.run_for(Duration::from_millis(150));
    assert_eq!(sim.client.transport(), TransportKind::WebSocket);
    assert_eq!(
        sim.session(sid).unwrap().transport(),
        TransportKind::WebSocket
    );
    assert!(sim.client_seen.contains(&Seen::Upgraded));
    assert!(sim.server_seen.contains(&(sid, Seen::Upgraded)));
    // After the upgrade, polling requests for the session are refused (code 3)
    // and the session lives on.
    let request = sim.inject_http(
        Method::Get,
        &format!("EIO=4&transport=polling&sid={sid}"),
        b"",
    );
    sim.run_for(Duration::from_millis(10));
    let refused = &sim.injected[&request];
    assert_eq!(refused.status, 400);
    assert_eq!(&refused.body[..], br#"{"code":3,"message":"Bad request"}"#);
    sim.client_send("still here");
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.server_messages(), vec![text("still here")]);
}

/// Messages flow both ways without pause while the session upgrades: none
/// lost, none duplicated, order kept, whichever transport carries each.
#[test]
fn upgrade_loses_nothing_and_keeps_order() {
    for latency_ms in [0, 1, 7, 40] {
        let mut sim = upgrading();
        sim.latency = Duration::from_millis(latency_ms);
        sim.connect();
        let mut up = Vec::new();
        let mut down = Vec::new();
        for i in 0..200 {
            let m = if i % 3 == 0 {
                binary(b"\x01\x02")
            } else {
                text(&format!("up {i}"))
            };
            sim.client_send(m.clone());
            up.push(m);
            let m = text(&format!("down {i}"));
            sim.server_send(m.clone());
            down.push(m);
            sim.run_for(Duration::from_micros(700));
        }
        sim.run_for(Duration::from_millis(200));
        assert!(
            sim.client_seen.contains(&Seen::Upgraded),
            "latency {latency_ms}"
        );
        assert_eq!(sim.server_messages(), up, "latency {latency_ms}");
        assert_eq!(sim.client_messages(), down, "latency {latency_ms}");
        assert!(sim.client_close_reason().is_none());
    }
}

#[test]
fn upgrade_sends_noop_to_a_parked_poll() {
    let mut sim = upgrading();
    sim.connect();
    sim.run_for(Duration::from_millis(50));
    // The client paused polling: its last GET was answered with a NOOP, and
    // no GET came after the upgrade.
    let gets = sim
        .client_requests
        .iter()
        .filter(|(m, _)| *m == HttpMethod::Get)
        .count();
    assert_eq!(gets, 2, "handshake and one poll: {:?}", sim.client_requests);
    assert_eq!(sim.client_messages(), vec![]);
}

#[test]
fn failed_probe_keeps_polling() {
    let mut config = server_config();
    config.allow_upgrades = false;
    let mut sim = Sim::new(config, client_config(Transports::ALL, true));
    sim.connect();
    // No upgrade offered: the client never probes.
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.client.transport(), TransportKind::Polling);
    sim.client_send("hi");
    sim.server_send("ho");
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.server_messages(), vec![text("hi")]);
    assert_eq!(sim.client_messages(), vec![text("ho")]);
}

#[test]
fn heartbeat_keeps_sessions_alive() {
    for mut sim in [polling_only(), websocket_only(), upgrading()] {
        sim.connect();
        sim.run_for(Duration::from_secs(60));
        assert!(sim.client.is_open(), "{:?}", sim.client_seen);
        assert!(sim.server_close_reason().is_none());
    }
}

#[test]
fn server_times_out_a_silent_client_exactly() {
    for mut sim in [polling_only(), websocket_only()] {
        sim.connect();
        let opened = sim.now - sim.latency;
        sim.partitioned = true;
        sim.run_for(Duration::from_secs(5));
        let (at, reason) = sim.server_close_reason().expect("server closed");
        assert_eq!(reason, CloseReason::PingTimeout);
        // The handshake was answered at `opened`; the PING was queued
        // pingInterval later, the session closed pingTimeout after that.
        assert_eq!(at, opened + PING_INTERVAL + PING_TIMEOUT);
        assert_eq!(sim.client_close_reason(), Some(CloseReason::PingTimeout));
    }
}

#[test]
fn client_times_out_a_silent_server() {
    let mut sim = websocket_only();
    sim.connect();
    let opened = sim.now;
    sim.partitioned = true;
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.client_close_reason(), Some(CloseReason::PingTimeout));
    // The watchdog window is pingInterval + pingTimeout from the handshake.
    assert_eq!(
        sim.client_closed_at,
        Some(opened + PING_INTERVAL + PING_TIMEOUT)
    );
    assert!(sim.client.poll_timeout().is_none());
}

#[test]
fn concurrent_get_closes_the_session() {
    let mut sim = polling_only();
    sim.connect();
    let sid = sim.sid();
    sim.run_for(Duration::from_millis(10)); // the client's GET is parked
    let second = sim.inject_http(
        Method::Get,
        &format!("EIO=4&transport=polling&sid={sid}"),
        b"",
    );
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.injected[&second].status, 400);
    assert_eq!(
        sim.server_close_reason().map(|(_, r)| r),
        Some(CloseReason::TransportError(TransportError::OverlappingPoll))
    );
    // The parked GET got a CLOSE packet.
    assert_eq!(sim.client_close_reason(), Some(CloseReason::PeerClose));
    // The sid is gone.
    let later = sim.inject_http(
        Method::Get,
        &format!("EIO=4&transport=polling&sid={sid}"),
        b"",
    );
    sim.run_for(Duration::from_millis(10));
    assert_eq!(
        &sim.injected[&later].body[..],
        br#"{"code":1,"message":"Session ID unknown"}"#
    );
}

#[test]
fn client_close_reaches_the_server() {
    for mut sim in [polling_only(), websocket_only(), upgrading()] {
        sim.connect();
        sim.run_for(Duration::from_millis(50));
        sim.client_send("bye");
        sim.client_close();
        sim.run_for(Duration::from_millis(50));
        assert_eq!(sim.client_close_reason(), Some(CloseReason::ForcedClose));
        assert_eq!(sim.server_messages(), vec![text("bye")]);
        assert_eq!(
            sim.server_close_reason().map(|(_, r)| r),
            Some(CloseReason::PeerClose)
        );
    }
}

#[test]
fn server_close_reaches_the_client() {
    for (mut sim, expected) in [
        (polling_only(), CloseReason::PeerClose),
        (websocket_only(), CloseReason::TransportClose),
    ] {
        sim.connect();
        sim.run_for(Duration::from_millis(50));
        sim.server_send("last words");
        sim.server_close();
        sim.run_for(Duration::from_millis(50));
        assert_eq!(
            sim.server_close_reason().map(|(_, r)| r),
            Some(CloseReason::ForcedClose)
        );
        assert_eq!(sim.client_messages(), vec![text("last words")]);
        assert_eq!(sim.client_close_reason(), Some(expected));
    }
}

#[test]
fn oversized_post_is_refused_and_closes() {
    let mut sim = polling_only();
    sim.connect();
    sim.client_send("x".repeat(2_000));
    sim.run_for(Duration::from_millis(50));
    assert_eq!(
        sim.server_close_reason().map(|(_, r)| r),
        Some(CloseReason::PayloadTooLarge)
    );
    assert_eq!(
        sim.client_close_reason(),
        Some(CloseReason::TransportError(TransportError::HttpStatus(413)))
    );
    assert!(sim.server_messages().is_empty());
}

#[test]
fn oversized_websocket_message_closes() {
    let mut sim = websocket_only();
    sim.connect();
    sim.client_send("x".repeat(2_000));
    sim.run_for(Duration::from_millis(50));
    assert_eq!(
        sim.server_close_reason().map(|(_, r)| r),
        Some(CloseReason::PayloadTooLarge)
    );
    assert_eq!(sim.client_close_reason(), Some(CloseReason::TransportClose));
}

#[test]
fn invalid_packet_closes_with_a_parse_error() {
    let mut sim = polling_only();
    sim.connect();
    let sid = sim.sid();
    let post = sim.inject_http(
        Method::Post,
        &format!("EIO=4&transport=polling&sid={sid}"),
        b"abc",
    );
    sim.run_for(Duration::from_millis(10));
    assert_eq!(sim.injected[&post].status, 400);
    assert!(matches!(
        sim.server_close_reason(),
        Some((_, CloseReason::ParseError(_)))
    ));
    // The client's parked GET got the CLOSE packet.
    assert_eq!(sim.client_close_reason(), Some(CloseReason::PeerClose));
}

#[test]
fn messages_sent_before_the_handshake_are_delivered() {
    let mut sim = upgrading();
    sim.client.connect(sim.now).unwrap();
    sim.client_send("early");
    sim.run_for(Duration::from_millis(50));
    assert_eq!(sim.server_messages(), vec![text("early")]);
}

#[test]
fn unknown_sid_and_bad_handshakes_are_refused() {
    let mut sim = polling_only();
    let cases: [(Method, &str, u16, &[u8]); 4] = [
        (
            Method::Get,
            "EIO=4&transport=polling&sid=nope",
            400,
            br#"{"code":1,"message":"Session ID unknown"}"#,
        ),
        (
            Method::Post,
            "EIO=4&transport=polling",
            400,
            br#"{"code":2,"message":"Bad handshake method"}"#,
        ),
        (
            Method::Get,
            "EIO=3&transport=polling",
            400,
            br#"{"code":5,"message":"Unsupported protocol version"}"#,
        ),
        (
            Method::Get,
            "EIO=4&transport=carrier-pigeon",
            400,
            br#"{"code":0,"message":"Transport unknown"}"#,
        ),
    ];
    let ids: Vec<_> = cases
        .iter()
        .map(|(m, q, _, _)| sim.inject_http(*m, q, b""))
        .collect();
    sim.run_for(Duration::from_millis(10));
    for (id, (_, query, status, body)) in ids.iter().zip(cases) {
        let response = &sim.injected[id];
        assert_eq!(response.status, status, "{query}");
        assert_eq!(&response.body[..], body, "{query}");
    }
}
