use super::*;
use alloc::string::ToString;
use engineio_proto::{Frame, WsId};

#[test]
fn connect_payload_merges_recovery_fields_first() {
    let auth = Str::from(r#"{"token":"t"}"#);
    let pid = Str::from("p1");
    let offset = Str::from("o\"9");
    assert_eq!(connect_payload(Some(&auth), None, None), Some(auth.clone()));
    assert_eq!(connect_payload(None, None, None), None);
    assert_eq!(
        connect_payload(Some(&auth), Some(&pid), Some(&offset))
            .unwrap()
            .as_str(),
        r#"{"pid":"p1","offset":"o\"9","token":"t"}"#
    );
    assert_eq!(
        connect_payload(None, Some(&pid), None).unwrap().as_str(),
        r#"{"pid":"p1"}"#
    );
    assert_eq!(
        connect_payload(Some(&Str::from(" { } ")), Some(&pid), Some(&offset))
            .unwrap()
            .as_str(),
        r#"{"pid":"p1","offset":"o\"9"}"#
    );
}

#[test]
fn connect_reply_needs_a_sid() {
    let reply = parse_connect_reply(r#"{"sid":"s","pid":"p"}"#).unwrap();
    assert_eq!((reply.sid.as_str(), reply.pid.as_deref()), ("s", Some("p")));
    assert!(parse_connect_reply(r#"{"sid":"s"}"#).unwrap().pid.is_none());
    assert!(parse_connect_reply("{}").is_none());
    assert!(parse_connect_reply("[]").is_none());
}

#[test]
fn last_string_argument_reads_recovery_offsets() {
    assert_eq!(
        last_string_argument(r#"["ev",1,{"a":"b"},"off-1"]"#).as_deref(),
        Some("off-1")
    );
    assert_eq!(last_string_argument(r#"["ev","x",2]"#), None);
    assert_eq!(last_string_argument(r#"["ev",["nested"]]"#), None);
    assert_eq!(last_string_argument("not json"), None);
    assert_eq!(last_string_argument("[]"), None);
}

#[test]
fn disconnect_reasons_use_nodes_strings() {
    assert_eq!(
        DisconnectReason::ServerDisconnect.as_node_str(),
        "io server disconnect"
    );
    assert!(!DisconnectReason::ServerDisconnect.will_reconnect());
    assert!(DisconnectReason::Transport(CloseReason::PingTimeout).will_reconnect());
    assert_eq!(AckError::Timeout.to_string(), "operation has timed out");
}

/// A client whose backoff jitter is always 0.
type TestClient = ClientConnection<fn() -> u32>;

/// A client over WebSocket whose engine is open, with `/` joined and its
/// CONNECT sent.
fn connecting_client() -> (TestClient, WsId, Instant) {
    let mut config = ClientConfig::default();
    config.engine.transports = engineio_proto::Transports::WEBSOCKET;
    let mut client = ClientConnection::new(config, (|| 0) as fn() -> u32);
    let now = Instant::from_millis(0);
    client.join(now, Str::from("/"), None, false).unwrap();
    let ws = loop {
        match client.poll_output().expect("a websocket intent") {
            Output::Transport(eio::Output::WsConnect { ws, .. }) => break ws,
            _ => continue,
        }
    };
    client.handle_input(now, Input::WsOpen(ws));
    let open = r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    client.handle_input(
        now,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(open)),
        },
    );
    while client.poll_output().is_some() {}
    (client, ws, now)
}

#[test]
fn events_before_the_connect_answer_are_delivered_after_it_in_order() {
    let (mut client, ws, now) = connecting_client();
    // A server restoring a session sends the missed events, then CONNECT.
    for frame in [
        r#"42["missed",1,"o1"]"#,
        r#"42["missed",2,"o2"]"#,
        r#"40{"sid":"s","pid":"p"}"#,
    ] {
        client.handle_input(
            now,
            Input::WsFrame {
                ws,
                frame: Frame::Text(Str::from(frame)),
            },
        );
    }
    let outputs: Vec<Output> = core::iter::from_fn(|| client.poll_output()).collect();
    let summary: Vec<String> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Connected { sid, .. } => Some(alloc::format!("connected {sid}")),
            Output::Event { data, .. } => Some(data.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        summary,
        [
            "connected s",
            r#"["missed",1,"o1"]"#,
            r#"["missed",2,"o2"]"#
        ]
    );
    // Their offsets count: the next CONNECT resumes after the last one.
    client.handle_input(now, Input::WsClosed(ws));
    client.handle_input(Instant::from_millis(60_000), Input::Timeout);
    let ws = core::iter::from_fn(|| client.poll_output())
        .find_map(|output| match output {
            Output::Transport(eio::Output::WsConnect { ws, .. }) => Some(ws),
            _ => None,
        })
        .expect("a reconnection");
    let later = Instant::from_millis(60_000);
    client.handle_input(later, Input::WsOpen(ws));
    let open = r#"0{"sid":"f","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    client.handle_input(
        later,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(open)),
        },
    );
    let connect = core::iter::from_fn(|| client.poll_output())
        .find_map(|output| match output {
            Output::Transport(eio::Output::WsSend {
                frame: Frame::Text(text),
                ..
            }) if text.starts_with("40") => Some(text),
            _ => None,
        })
        .expect("a CONNECT");
    assert_eq!(connect.as_str(), r#"40{"pid":"p","offset":"o2"}"#);
}

/// A client over WebSocket with `/` connected (server sid `s1`).
fn connected_client(mut config: ClientConfig) -> (TestClient, WsId) {
    config.engine.transports = engineio_proto::Transports::WEBSOCKET;
    let mut client = ClientConnection::new(config, (|| 0) as fn() -> u32);
    let now = Instant::from_millis(0);
    client.join(now, Str::from("/"), None, false).unwrap();
    let ws = core::iter::from_fn(|| client.poll_output())
        .find_map(|output| match output {
            Output::Transport(eio::Output::WsConnect { ws, .. }) => Some(ws),
            _ => None,
        })
        .expect("a websocket intent");
    client.handle_input(now, Input::WsOpen(ws));
    let open = r#"0{"sid":"e","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    client.handle_input(
        now,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(open)),
        },
    );
    client.handle_input(
        now,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(r#"40{"sid":"s1"}"#)),
        },
    );
    while client.poll_output().is_some() {}
    (client, ws)
}

fn event(nsp: &str) -> Packet {
    Packet::new(
        PacketKind::Event,
        Str::from(nsp),
        Some(Str::from(r#"["e"]"#)),
    )
}

fn failed_acks(client: &mut TestClient) -> Vec<(String, u64, AckError)> {
    core::iter::from_fn(|| client.poll_output())
        .filter_map(|output| match output {
            Output::AckFailed { nsp, id, error } => Some((nsp.to_string(), id.0, error)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_refused_namespace_fails_its_acks_and_leaves_no_deadline_behind() {
    let (mut client, ws) = connected_client(ClientConfig::default());
    let t0 = Instant::from_millis(0);
    client.join(t0, Str::from("/a"), None, false).unwrap();
    let id = client
        .emit_with_ack(t0, event("/a"), Some(Duration::from_secs(5)))
        .unwrap();
    let refusal = r#"44/a,{"message":"refused"}"#;
    client.handle_input(
        t0,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(refusal)),
        },
    );
    assert_eq!(
        failed_acks(&mut client),
        [(String::from("/a"), id.0, AckError::Disconnected)]
    );
    // The namespace joined again numbers its acks from 0: the old deadline
    // must not fail the new ack early.
    let t1 = Instant::from_millis(1_000);
    client.join(t1, Str::from("/a"), None, false).unwrap();
    client.handle_input(
        t1,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from(r#"40/a,{"sid":"s2"}"#)),
        },
    );
    let again = client
        .emit_with_ack(t1, event("/a"), Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(again, id);
    client.handle_input(Instant::from_millis(5_000), Input::Timeout);
    assert!(failed_acks(&mut client).is_empty());
}

#[test]
fn with_retries_a_socket_that_goes_fails_its_queued_acks() {
    let config = ClientConfig {
        retries: 1,
        ack_timeout: Some(Duration::from_secs(1)),
        ..ClientConfig::default()
    };
    let (mut client, _ws) = connected_client(config);
    let now = Instant::from_millis(0);
    let id = client.emit_with_ack(now, event("/"), None).unwrap();
    client.leave(now, "/").unwrap();
    assert_eq!(
        failed_acks(&mut client),
        [(String::from("/"), id.0, AckError::Disconnected)]
    );
    client.close(now);
    while client.poll_output().is_some() {}
    assert!(client.is_shut_down());
    assert_eq!(client.poll_timeout(), None, "no try deadline stays armed");
}

#[test]
fn a_parse_error_fails_the_acks_already_sent() {
    let (mut client, ws) = connected_client(ClientConfig::default());
    let now = Instant::from_millis(0);
    let id = client.emit_with_ack(now, event("/"), None).unwrap();
    client.handle_input(
        now,
        Input::WsFrame {
            ws,
            frame: Frame::Text(Str::from("4x")),
        },
    );
    assert_eq!(
        failed_acks(&mut client),
        [(String::from("/"), id.0, AckError::Disconnected)]
    );
}

#[test]
fn a_client_gone_idle_starts_a_fresh_run_of_attempts() {
    let mut config = ClientConfig {
        reconnection_attempts: Some(1),
        ..ClientConfig::default()
    };
    config.engine.transports = engineio_proto::Transports::POLLING;
    let mut client = ClientConnection::new(config, (|| 0) as fn() -> u32);
    let now = Instant::from_millis(0);
    let fail_open = |client: &mut TestClient| {
        let request = core::iter::from_fn(|| client.poll_output())
            .find_map(|output| match output {
                Output::Transport(eio::Output::HttpRequest { request, .. }) => Some(request),
                _ => None,
            })
            .expect("a handshake request");
        client.handle_input(now, Input::HttpError(request));
        core::iter::from_fn(|| client.poll_output()).collect::<Vec<_>>()
    };
    client.join(now, Str::from("/"), None, false).unwrap();
    assert!(!fail_open(&mut client).contains(&Output::ReconnectFailed));
    client.leave(now, "/").unwrap();
    client.join(now, Str::from("/"), None, false).unwrap();
    let outputs = fail_open(&mut client);
    assert!(
        !outputs.contains(&Output::ReconnectFailed),
        "the attempt allowed is still there: {outputs:?}"
    );
}

#[test]
fn a_dropped_connection_disconnects_fails_acks_and_reconnects() {
    let (mut client, ws) = connected_client(ClientConfig::default());
    let now = Instant::from_millis(0);
    let id = client.emit_with_ack(now, event("/"), None).unwrap();
    let overloaded = CloseReason::TransportError(engineio_proto::TransportError::Overloaded);
    client.drop_connection(now, overloaded.clone());
    let outputs: Vec<Output> = core::iter::from_fn(|| client.poll_output()).collect();
    assert!(outputs.contains(&Output::Transport(eio::Output::WsClose { ws })));
    assert!(outputs.contains(&Output::AckFailed {
        nsp: Str::from("/"),
        id,
        error: AckError::Disconnected
    }));
    assert!(outputs.contains(&Output::Disconnected {
        nsp: Str::from("/"),
        reason: DisconnectReason::Transport(overloaded.clone()),
    }));
    assert_eq!(overloaded.as_node_str(), "transport error");
    // A reconnection is scheduled; dropping again meanwhile does nothing.
    let reconnect_at = client.poll_timeout().expect("a reconnection deadline");
    client.drop_connection(now, overloaded);
    assert!(client.poll_output().is_none());
    client.handle_input(reconnect_at, Input::Timeout);
    let reconnecting = core::iter::from_fn(|| client.poll_output())
        .any(|output| matches!(output, Output::Transport(eio::Output::WsConnect { .. })));
    assert!(reconnecting);
}

/// Application data holding an object shaped like a binary placeholder:
/// with attachments, one that indexes none of them is refused before
/// anything is sent (a server would close the connection on it); one that
/// indexes an attachment, or any such object without attachments, is data.
#[test]
fn a_placeholder_that_indexes_no_attachment_is_refused() {
    let (mut client, _) = connected_client(ClientConfig::default());
    let now = Instant::from_millis(1);
    let with = |json: &str, attachments: usize| Packet {
        attachments: alloc::vec![Bytes::from_static(b"\x01"); attachments],
        ..Packet::new(PacketKind::Event, Str::from("/"), Some(Str::from(json)))
    };
    let fake = r#"["e",{"_placeholder":true,"num":7},{"_placeholder":true,"num":0}]"#;
    assert_eq!(
        client.emit(now, with(fake, 1), false),
        Err(CommandError::InvalidPlaceholder)
    );
    assert_eq!(
        client.emit_with_ack(now, with(fake, 1), None),
        Err(CommandError::InvalidPlaceholder)
    );
    assert_eq!(
        client.ack(
            now,
            "/",
            AckId(1),
            Str::from(r#"[{"_placeholder":true,"num":3}]"#),
            alloc::vec![Bytes::new()]
        ),
        Err(CommandError::InvalidPlaceholder)
    );
    assert!(
        !core::iter::from_fn(|| client.poll_output())
            .any(|output| matches!(output, Output::Transport(eio::Output::WsSend { .. }))),
        "nothing is sent"
    );
    let fits = r#"["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#;
    assert_eq!(client.emit(now, with(fits, 1), false), Ok(()));
    assert_eq!(client.emit(now, with(fake, 0), false), Ok(()));
}
