//! Socket.IO client and server machines on the simulated network of `sim/`:
//! namespaces, middleware-style refusals, events and acks both ways (binary
//! too), timeouts, disconnects each way, reconnection with backoff, retries.

mod sim;

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::Transports;
use sim::{ServerSaw, Sim};
use socketio_proto::client::{self, AckError, ClientConfig, DisconnectReason};

fn config(transports: Transports) -> ClientConfig {
    let mut config = ClientConfig::default();
    config.engine.transports = transports;
    config
}

fn all_transports() -> Vec<Sim> {
    vec![
        Sim::new(config(Transports::POLLING)),
        Sim::new(config(Transports::WEBSOCKET)),
        Sim::new(config(Transports::ALL)),
    ]
}

/// Long enough to connect and, over polling with upgrade, to finish the
/// upgrade: the client's re-poll may cross the probe and then waits for the
/// next NOOP tick (100 ms, Node's cadence).
const SETTLE: Duration = Duration::from_millis(150);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn connected_namespaces(sim: &Sim) -> Vec<String> {
    sim.client_saw
        .iter()
        .filter_map(|o| match o {
            client::Output::Connected { nsp, .. } => Some(nsp.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn several_namespaces_over_one_connection() {
    for mut sim in all_transports() {
        sim.join("/", None);
        sim.join("/chat", Some(r#"{"user":"ann"}"#));
        sim.run_for(ms(50));
        assert_eq!(connected_namespaces(&sim), ["/", "/chat"]);
        assert!(sim.server_saw.contains(&ServerSaw::Connected {
            nsp: "/chat".into(),
            auth: Some(r#"{"user":"ann"}"#.into())
        }));
        // One Engine.IO session carries both.
        assert_eq!(
            sim.sockets
                .keys()
                .map(|(sid, _)| *sid)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            1
        );
        sim.client_emit("/chat", r#"["msg","hi"]"#);
        sim.client_emit("/", r#"["msg","main"]"#);
        sim.run_for(ms(20));
        assert_eq!(
            sim.server_events(),
            [
                ("/chat".to_string(), r#"["msg","hi"]"#.to_string()),
                ("/".to_string(), r#"["msg","main"]"#.to_string())
            ]
        );
    }
}

#[test]
fn middleware_style_refusal_reaches_the_client() {
    let mut sim = Sim::new(config(Transports::WEBSOCKET));
    sim.join("/", None);
    sim.join("/private", Some(r#"{"token":"wrong"}"#));
    sim.run_for(ms(50));
    assert!(sim.client_saw.contains(&client::Output::ConnectError {
        nsp: "/private".into(),
        data: Some(r#"{"message":"unauthorized","data":{"reason":"bad token"}}"#.into()),
    }));
    assert!(sim.client.is_connected("/"));
    assert!(!sim.client.is_connected("/private"));
    // With the right token it works.
    sim.join("/private", Some(r#"{"token":"secret"}"#));
    sim.run_for(ms(50));
    assert!(sim.client.is_connected("/private"));
}

#[test]
fn refusing_the_only_namespace_closes_the_engine() {
    let mut sim = Sim::new(config(Transports::WEBSOCKET));
    sim.join("/nope", None);
    sim.run_for(ms(50));
    assert!(sim.client_saw.contains(&client::Output::ConnectError {
        nsp: "/nope".into(),
        data: Some(r#"{"message":"Invalid namespace"}"#.into()),
    }));
    assert!(!sim.client.is_engine_open());
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.connected_count(),
        0,
        "no reconnection for a refused namespace"
    );
}

#[test]
fn acks_both_ways() {
    for mut sim in all_transports() {
        sim.join("/", None);
        sim.run_for(SETTLE);
        // Client → server, answered by the server application.
        let id = sim.client_emit_with_ack("/", r#"["sum",1,2]"#, Some(Duration::from_secs(1)));
        sim.run_for(ms(20));
        assert!(sim.client_saw.contains(&client::Output::Ack {
            nsp: "/".into(),
            id,
            data: Some("[1,2]".into()),
            attachments: vec![]
        }));
        // Server → client, answered by the client application.
        let server_id = sim.server_emit_with_ack("/", r#"["ask","q"]"#, Duration::from_secs(1));
        sim.run_for(ms(20));
        let asked = sim.client_saw.iter().find_map(|o| match o {
            client::Output::Event { ack: Some(id), .. } => Some(*id),
            _ => None,
        });
        let asked = asked.expect("the client saw the question");
        let now = sim.now;
        sim.client
            .ack(now, "/", asked, r#"["answer"]"#.into(), vec![])
            .unwrap();
        sim.run_for(ms(20));
        assert!(sim.server_saw.contains(&ServerSaw::Ack {
            nsp: "/".into(),
            id: server_id,
            data: Some(r#"["answer"]"#.into())
        }));
    }
}

#[test]
fn ack_timeouts_both_ways() {
    let mut sim = Sim::new(config(Transports::WEBSOCKET));
    sim.join("/", None);
    sim.run_for(ms(50));
    // The server asks; the client application never answers.
    let server_id = sim.server_emit_with_ack("/", r#"["ask"]"#, ms(500));
    sim.run_for(ms(499));
    assert!(!sim.server_saw.contains(&ServerSaw::AckTimeout {
        nsp: "/".into(),
        id: server_id
    }));
    sim.run_for(ms(1));
    assert!(sim.server_saw.contains(&ServerSaw::AckTimeout {
        nsp: "/".into(),
        id: server_id
    }));
    // The client asks while disconnected from every server; the deadline runs.
    sim.server_down = true;
    sim.drop_connections();
    sim.run_for(ms(5));
    let id = sim.client_emit_with_ack("/", r#"["lost"]"#, Some(ms(300)));
    sim.run_for(ms(300));
    assert!(sim.client_saw.contains(&client::Output::AckFailed {
        nsp: "/".into(),
        id,
        error: AckError::Timeout
    }));
}

#[test]
fn binary_events_and_acks() {
    for mut sim in all_transports() {
        sim.join("/", None);
        sim.run_for(SETTLE);
        sim.client_emit_binary(
            "/",
            r#"["echo",{"file":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1}]}]"#,
            vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[0, 255])],
        );
        sim.run_for(ms(50));
        assert!(sim.server_saw.contains(&ServerSaw::Event {
            nsp: "/".into(),
            data: r#"["echo",{"file":{"_placeholder":true,"num":0},"parts":[{"_placeholder":true,"num":1}]}]"#.into(),
            attachments: 2
        }));
        let echoed = sim.client_saw.iter().find_map(|o| match o {
            client::Output::Event { attachments, .. } if !attachments.is_empty() => {
                Some(attachments.clone())
            }
            _ => None,
        });
        assert_eq!(
            echoed,
            Some(vec![
                Bytes::from_static(&[1, 2, 3]),
                Bytes::from_static(&[0, 255])
            ])
        );
    }
}

#[test]
fn disconnect_from_each_side() {
    let mut sim = Sim::new(config(Transports::ALL));
    sim.join("/", None);
    sim.join("/chat", None);
    sim.run_for(ms(50));
    // The client leaves one namespace; the session stays.
    let now = sim.now;
    sim.client.leave(now, "/chat").unwrap();
    sim.run_for(ms(20));
    assert!(sim.server_saw.contains(&ServerSaw::Disconnected {
        nsp: "/chat".into(),
        reason: "client namespace disconnect".into()
    }));
    assert!(sim.client.is_connected("/"));
    // The server disconnects the other: the client gives it up, and with no
    // namespace left closes the engine without reconnecting.
    sim.server_disconnect("/");
    sim.run_for(ms(20));
    assert!(sim.client_saw.contains(&client::Output::Disconnected {
        nsp: "/".into(),
        reason: DisconnectReason::ServerDisconnect
    }));
    sim.run_for(Duration::from_secs(30));
    assert!(!sim.client.is_engine_open());
    assert_eq!(
        sim.connected_count(),
        2,
        "no reconnection after io server disconnect"
    );
}

#[test]
fn reconnects_with_backoff_after_the_server_restarts() {
    for mut sim in all_transports() {
        sim.join("/", None);
        sim.run_for(SETTLE);
        let lost_at = sim.now;
        sim.server_down = true;
        sim.drop_connections();
        sim.run_for(ms(10));
        assert!(sim.client_saw.iter().any(|o| matches!(
            o,
            client::Output::Disconnected {
                reason: DisconnectReason::Transport(_),
                ..
            }
        )));
        // Offline emits are buffered.
        sim.client_emit("/", r#"["while","away"]"#);
        // Attempts fail while the server is down; the delays follow Node's
        // backoff: 1 s, 2 s, 4 s, capped at 5 s, each ±50 % jitter.
        sim.run_for(Duration::from_secs(20));
        let mut previous = lost_at;
        let bounds = [(500, 1_500), (1_000, 3_000), (2_000, 5_000), (2_500, 5_000)];
        assert!(sim.attempt_times.len() >= 4, "{:?}", sim.attempt_times);
        for (at, (low, high)) in sim.attempt_times.iter().zip(bounds) {
            let gap = *at - previous;
            assert!(
                gap >= ms(low) && gap <= ms(high + 10),
                "gap {gap:?} not in {low}..{high} ms"
            );
            previous = *at;
        }
        let numbers: Vec<u32> = sim
            .client_saw
            .iter()
            .filter_map(|o| match o {
                client::Output::ReconnectAttempt(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(numbers[..4], [1, 2, 3, 4]);
        // The server is back: the next attempt succeeds and the buffer drains once.
        sim.server_down = false;
        sim.run_for(Duration::from_secs(6));
        assert!(sim.client.is_connected("/"), "{:?}", sim.client_saw);
        assert!(sim
            .client_saw
            .iter()
            .any(|o| matches!(o, client::Output::Reconnected(_))));
        let away: Vec<_> = sim
            .server_events()
            .into_iter()
            .filter(|(_, d)| d == r#"["while","away"]"#)
            .collect();
        assert_eq!(away.len(), 1);
    }
}

#[test]
fn gives_up_after_the_configured_attempts() {
    let mut config = config(Transports::WEBSOCKET);
    config.reconnection_attempts = Some(3);
    let mut sim = Sim::new(config);
    sim.join("/", None);
    sim.run_for(ms(50));
    sim.server_down = true;
    sim.drop_connections();
    sim.run_for(Duration::from_secs(60));
    let attempts = sim
        .client_saw
        .iter()
        .filter(|o| matches!(o, client::Output::ReconnectAttempt(_)))
        .count();
    assert_eq!(attempts, 3);
    assert_eq!(
        sim.client_saw
            .iter()
            .filter(|o| **o == client::Output::ReconnectFailed)
            .count(),
        1
    );
    assert!(sim.client.poll_timeout().is_none(), "idle after giving up");
}

#[test]
fn retries_deliver_at_least_once() {
    let mut config = config(Transports::WEBSOCKET);
    config.retries = 3;
    config.ack_timeout = Some(ms(200));
    let mut sim = Sim::new(config);
    sim.join("/", None);
    sim.run_for(ms(50));
    // Every emit is acked by the server application; all arrive in order.
    for i in 0..5 {
        sim.client_emit("/", &format!(r#"["n",{i}]"#));
    }
    sim.run_for(ms(200));
    let got: Vec<String> = sim.server_events().into_iter().map(|(_, d)| d).collect();
    assert_eq!(got.len(), 5, "{got:?}");
    for (i, data) in got.iter().enumerate() {
        assert!(data.ends_with(&format!(r#"["n",{i}]"#)), "{data}");
    }
    // While the server is unreachable the head is retried on reconnection.
    sim.server_down = true;
    sim.drop_connections();
    sim.run_for(ms(10));
    let id = {
        let now = sim.now;
        let packet = socketio_proto::Packet::new(
            socketio_proto::PacketKind::Event,
            "/".into(),
            Some(r#"["late"]"#.into()),
        );
        sim.client.emit_with_ack(now, packet, None).unwrap()
    };
    sim.server_down = false;
    sim.run_for(Duration::from_secs(10));
    let late = sim
        .server_events()
        .into_iter()
        .filter(|(_, d)| d.contains("late"))
        .count();
    assert!(late >= 1);
    assert!(sim
        .client_saw
        .iter()
        .any(|o| matches!(o, client::Output::Ack { id: got, .. } if *got == id)));
}

/// Connection state recovery: the client drops off, misses events, comes back
/// and receives exactly the missed ones, once, in order, under its old id.
#[test]
fn recovery_restores_missed_packets_once_in_order() {
    for transports in [Transports::WEBSOCKET, Transports::POLLING, Transports::ALL] {
        let mut sim = Sim::with_recovery(config(transports));
        sim.join("/", None);
        sim.run_for(SETTLE);
        let socket = *sim.sockets.values().next().expect("a socket");
        sim.server_emit_to_socket(socket, r#"["n",1]"#);
        sim.server_emit_to_socket(socket, r#"["n",2]"#);
        sim.run_for(ms(20));
        // The network fails; both sides notice through their heartbeats.
        sim.partitioned = true;
        sim.run_for(ms(600));
        assert!(sim.sockets.is_empty(), "the server saw the socket go");
        for n in 3..=5 {
            sim.server_emit_to_socket(socket, &format!(r#"["n",{n}]"#));
        }
        sim.partitioned = false;
        sim.run_for(Duration::from_secs(10));
        let recovered = sim
            .client_saw
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    client::Output::Connected {
                        recovered: true,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(recovered, 1, "{transports:?}: {:?}", sim.client_saw);
        assert_eq!(
            *sim.sockets.values().next().unwrap(),
            socket,
            "same socket id"
        );
        let events: Vec<String> = sim.client_events().into_iter().map(|(_, d)| d).collect();
        let expected: Vec<String> = (1..=5)
            .map(|n| format!(r#"["n",{n},"run1-{}"]"#, n - 1))
            .collect();
        assert_eq!(events, expected, "{transports:?}");
    }
}

#[test]
fn recovery_needs_an_offset() {
    let mut sim = Sim::with_recovery(config(Transports::WEBSOCKET));
    sim.join("/", None);
    sim.run_for(ms(50));
    // No event was ever received: the client has a pid but no offset, so the
    // server cannot recover and hands out a new session.
    sim.partitioned = true;
    sim.run_for(ms(600));
    sim.partitioned = false;
    sim.run_for(Duration::from_secs(10));
    let connects: Vec<bool> = sim
        .client_saw
        .iter()
        .filter_map(|o| match o {
            client::Output::Connected { recovered, .. } => Some(*recovered),
            _ => None,
        })
        .collect();
    assert_eq!(connects, [false, false]);
}

#[test]
fn binary_acks() {
    for mut sim in all_transports() {
        sim.join("/", None);
        sim.run_for(SETTLE);
        // The server application acks with the event's own arguments and
        // attachments, so a binary emit gets a binary ack.
        let now = sim.now;
        let packet = socketio_proto::Packet {
            attachments: vec![Bytes::from_static(b"\x00\x01")],
            ..socketio_proto::Packet::new(
                socketio_proto::PacketKind::Event,
                "/".into(),
                Some(r#"["upload",{"_placeholder":true,"num":0}]"#.into()),
            )
        };
        let id = sim
            .client
            .emit_with_ack(now, packet, Some(ms(500)))
            .unwrap();
        sim.run_for(ms(50));
        assert!(
            sim.client_saw.contains(&client::Output::Ack {
                nsp: "/".into(),
                id,
                data: Some(r#"[{"_placeholder":true,"num":0}]"#.into()),
                attachments: vec![Bytes::from_static(b"\x00\x01")],
            }),
            "{:?}",
            sim.client_saw
        );
    }
}
