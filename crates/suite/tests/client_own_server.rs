//! The Rust client against our own server, both from this workspace: the
//! scenarios of `client_scenarios` (also run against Node's server) over
//! each transport, plus what needs a server we control to the byte: one
//! that accepts connections and never answers.

mod client_scenarios;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_scenarios::{within, CompressFalse, Setup, TRANSPORTS};
use engineio_proto::Message;
use futures_util::{FutureExt, StreamExt};
use serde_json::json;
use socketio::adapter::{AckId, DecodeError, DecoderConfig, EncodedPacket, Packet, PacketKind};
use socketio::client::{ClientOptions, ConnectError, ManagerEvent};
use socketio::{Data, PacketDecoder, Parser, Payload, SharedParser, SocketIo, SocketIoConfig};
use suite::TestRuntime;

async fn events_acks_and_binary_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::events_and_acks(rt, &url, name, transports).await;
    }
}

/// Our client and our server, both with permessage-deflate (see
/// [`client_scenarios::compression`]).
async fn compression_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start_with(rt, |config| {
        config.engine.per_message_deflate = Some(socketio::PerMessageDeflate::default());
    })
    .await;
    let addr = suite::mirror::address(&url);
    for (name, transports) in TRANSPORTS {
        client_scenarios::compression(rt, addr, name, transports, CompressFalse::Honored).await;
    }
}

async fn namespaces_multiplexed_and_refused_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::namespaces(rt, &url, name, transports).await;
    }
}

async fn dynamic_auth_and_disconnect_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::dynamic_auth_and_server_disconnect(rt, &url, name, transports).await;
    }
}

/// Listeners start in arrival order and an awaiting one holds nothing up
/// (see [`client_scenarios::awaiting_listeners`]).
async fn awaiting_listeners_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::awaiting_listeners(rt, &url, name, transports).await;
    }
}

async fn ack_timeouts_and_retries_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::ack_timeouts(rt, &url, name, transports).await;
    }
}

async fn sent_away_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::sent_away(rt, &url, name, transports).await;
    }
}

async fn recovery_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::recovery(rt, &url, name, transports).await;
    }
}

/// A server that accepts TCP connections and never answers: the open
/// times out, the client retries as often as allowed, then gives up;
/// nothing hangs.
async fn a_server_that_never_answers_times_out<R: TestRuntime>(rt: R) {
    // A std listener on a thread of its own: it accepts and holds every
    // connection, reading nothing, for as long as the process lives.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    for (name, transports) in TRANSPORTS {
        let options = ClientOptions::default()
            .transports(transports)
            .timeout(Duration::from_millis(200))
            .reconnection(false);
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let outcome = within("a failed open", socket.connect()).await;
        assert_eq!(outcome, Err(ConnectError::Transport), "{name}");

        let options = ClientOptions::default()
            .transports(transports)
            .timeout(Duration::from_millis(100))
            .reconnection_attempts(2)
            .reconnection_delay(Duration::from_millis(20))
            .reconnection_delay_max(Duration::from_millis(40));
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let events = client_scenarios::manager_events(&socket);
        let outcome = within("giving up", socket.connect()).await;
        assert_eq!(outcome, Err(ConnectError::Failed), "{name}");
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events,
            [
                ManagerEvent::ReconnectAttempt(1),
                ManagerEvent::ReconnectAttempt(2),
                ManagerEvent::ReconnectFailed
            ],
            "{name}"
        );
        // Emits while it gives up still fail cleanly rather than hang.
        let ack = socket.emit_with_ack("x", Payload::empty(), Some(Duration::from_millis(50)));
        assert!(within("an ack after giving up", ack).await.is_err());
    }
}

/// Node's `path` option: a server mounted elsewhere than `/socket.io/`,
/// and a multiplexed namespace as the URL's path.
async fn a_custom_path_and_a_namespace_in_the_url<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.engine.path = String::from("/realtime/");
    let io = SocketIo::new(rt, config);
    io.on_connection("/games", |socket| async move {
        socket.on(
            "echo-ack",
            |payload: Payload, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            },
        );
    });
    let addr = rt.serve(io).await;
    for (name, transports) in TRANSPORTS {
        let options = ClientOptions::default()
            .transports(transports)
            .path("/realtime");
        let socket = within(
            "connect",
            socketio::client::connect(rt, &format!("http://{addr}/games"), options),
        )
        .await
        .unwrap();
        assert_eq!(socket.namespace(), "/games");
        let answer = client_scenarios::ask(&socket, "echo-ack", json!([name])).await;
        assert_eq!(answer, json!([name]));
        socket.disconnect();
    }
}

/// A listener that awaits an ack while the server floods the socket with
/// more events than the client's queue and backlog hold: as in Node, the
/// other listeners start meanwhile, in order, and the ack still arrives
/// (before, listeners ran one at a time, the driver stopped reading behind
/// the waiting one, and the ack never came).
async fn a_listener_awaiting_an_ack_during_a_flood<R: TestRuntime>(rt: R) {
    const FLOOD: u32 = 3_000;
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("flood", |socket: socketio::SocketRef| async move {
            for n in 1..=FLOOD {
                socket.emit("tick", &n).await.unwrap();
            }
        });
        socket.on(
            "echo-ack",
            |payload: Payload, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            },
        );
    });
    let url = format!("http://{}/", rt.serve(io).await);
    for (name, transports) in TRANSPORTS {
        let socket =
            socketio::client::io(rt, &url, ClientOptions::default().transports(transports))
                .unwrap();
        let (done, mut finished) = futures_channel::mpsc::unbounded();
        let started = Arc::new(Mutex::new(Vec::new()));
        let record = started.clone();
        socket.on("tick", move |socket, Data(n): Data<u32>, _| {
            record.lock().unwrap().push(n);
            let done = done.clone();
            async move {
                if n == 1 {
                    // The other ticks arrive and run while this waits.
                    let answer = socket
                        .emit_with_ack("echo-ack", Payload::single(&n).unwrap(), None)
                        .await
                        .unwrap();
                    assert_eq!(answer.first::<u32>().unwrap(), 1);
                }
                let _ = done.unbounded_send(n);
            }
        });
        within("connect", socket.connect()).await.unwrap();
        socket.emit("flood", &()).unwrap();
        let mut acked = false;
        for _ in 0..FLOOD {
            let n = within("the whole flood and the ack", finished.next()).await;
            acked |= n == Some(1);
        }
        assert!(acked, "{name}");
        let started = started.lock().unwrap().clone();
        assert_eq!(started, (1..=FLOOD).collect::<Vec<_>>(), "{name}");
        socket.disconnect();
    }
}

/// `disconnect` right after an emit: the event and the goodbye both reach
/// the server (over polling the goodbye waits for the POST in flight), so
/// the server sees Node's `client namespace disconnect`, not a dropped
/// transport.
async fn disconnect_after_an_emit_says_goodbye<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let (report, mut reports) = futures_channel::mpsc::unbounded();
    io.on_connection("/", move |socket| {
        let report = report.clone();
        async move {
            let seen = report.clone();
            socket.on("last", move |Data(n): Data<u32>| {
                let _ = seen.unbounded_send(format!("last {n}"));
                async {}
            });
            socket.on_disconnect(
                move |socketio::extract::Reason(reason): socketio::extract::Reason| {
                    let _ = report.unbounded_send(reason.to_owned());
                    async {}
                },
            );
        }
    });
    let url = format!("http://{}/", rt.serve(io).await);
    for (name, transports) in TRANSPORTS {
        let socket = within(
            "connect",
            socketio::client::connect(rt, &url, ClientOptions::default().transports(transports)),
        )
        .await
        .unwrap();
        socket.emit("last", &1).unwrap();
        socket.disconnect();
        drop(socket);
        let first = within("the event", reports.next()).await.unwrap();
        let second = within("the goodbye", reports.next()).await.unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("last 1", "client namespace disconnect"),
            "{name}"
        );
    }
}

/// More unfinished listeners than `max_pending_events`: the client drops
/// the connection (`transport error`) instead of growing without bound or
/// stopping its reading, then reconnects and is served again; the
/// listeners already started still finish.
async fn too_many_pending_listeners_drop_the_connection<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        let options = client_scenarios::options(transports, &format!("pending-{name}"))
            .max_pending_events(50);
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let mut inbox = client_scenarios::Inbox::attach(&socket);
        // Every "hold" listener waits until the test lets them all go.
        let (release, released) = futures_channel::oneshot::channel::<()>();
        let released = released.shared();
        let (ended, mut ends) = futures_channel::mpsc::unbounded();
        socket.on("hold", move |_, _: Payload, _| {
            let released = released.clone();
            let ended = ended.clone();
            async move {
                let _ = released.await;
                let _ = ended.unbounded_send(());
            }
        });
        within("connect", socket.connect()).await.unwrap();
        inbox.connected().await;
        // Not awaited: the connection drops before the answer comes.
        let _answer = socket.emit_with_ack(
            "burst",
            Payload::args(&json!([[["hold", 60]]])).unwrap(),
            None,
        );
        let reason = inbox.disconnected().await;
        assert_eq!(reason.as_node_str(), "transport error", "{name}");
        assert!(reason.will_reconnect(), "{name}");
        // The application catches up; the 51 started listeners finish.
        let _ = release.send(());
        for _ in 0..51 {
            within("the held listeners", ends.next()).await;
        }
        inbox.connected().await;
        let answer = client_scenarios::ask(&socket, "echo-ack", json!([name])).await;
        assert_eq!(answer, json!([name]), "{name}");
        socket.disconnect();
    }
}

/// The client's listener API beyond `on`: `on_any_outgoing` sees every
/// emit, `off` removes an event's listeners, `listener_count` counts them.
async fn outgoing_listeners_and_off<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    let socket = socketio::client::io(rt, &url, ClientOptions::default()).unwrap();
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = sent.clone();
    socket.on_any_outgoing(move |_, event, payload| {
        seen.lock()
            .unwrap()
            .push(format!("{event} {}", payload.args_json()));
    });
    let (echoed, mut echoes) = futures_channel::mpsc::unbounded();
    socket.on("echo", move |_, Data(n): Data<u32>, _| {
        let _ = echoed.unbounded_send(n);
        async {}
    });
    within("connect", socket.connect()).await.unwrap();
    socket.emit("echo", &1).unwrap();
    assert_eq!(within("the echo", echoes.next()).await, Some(1));
    assert_eq!(socket.listener_count("echo"), 1);
    socket.off("echo");
    assert_eq!(socket.listener_count("echo"), 0);
    socket.emit("echo", &2).unwrap();
    // Whenever the second echo is taken, no listener is left for it.
    let answer = client_scenarios::ask(&socket, "echo-ack", json!([3])).await;
    assert_eq!(answer, json!([3]));
    // No second echo reached a listener (the removed one's sender is
    // gone with it).
    assert!(!matches!(echoes.next().now_or_never(), Some(Some(_))));
    assert_eq!(
        *sent.lock().unwrap(),
        ["echo [1]", "echo [2]", "echo-ack [3]"]
    );

    // `off_any_outgoing`: later emits are not seen.
    socket.off_any_outgoing();
    client_scenarios::ask(&socket, "echo-ack", json!([4])).await;
    assert_eq!(sent.lock().unwrap().len(), 3);

    // Listeners are looked up when the client's listener task takes an
    // event, and an ack (answered by the driver) can overtake an earlier
    // event still queued there. So wait until every echo so far has been
    // taken: a sentinel sees its own.
    let flush = |mark: u32| {
        let (flushed, mut seen) = futures_channel::mpsc::unbounded();
        socket.on("echo", move |_, Data(n): Data<u32>, _| {
            let _ = flushed.unbounded_send(n);
            async {}
        });
        socket.emit("echo", &mark).unwrap();
        async move { while within("the flush", seen.next()).await != Some(mark) {} }
    };
    flush(99).await;
    socket.off("echo");

    // `on_any`, then `off_any`; `remove_all_listeners` clears the rest.
    let (any_seen, mut anys) = futures_channel::mpsc::unbounded();
    socket.on_any(move |_, event, _| {
        let _ = any_seen.unbounded_send(event);
        async {}
    });
    socket.on("echo", |_, _: Payload, _| async {});
    socket.emit("echo", &5).unwrap();
    assert_eq!(within("on_any", anys.next()).await.as_deref(), Some("echo"));
    socket.off_any();
    socket.emit("echo", &6).unwrap();
    client_scenarios::ask(&socket, "echo-ack", json!([7])).await;
    assert!(!matches!(anys.next().now_or_never(), Some(Some(_))));
    assert_eq!(socket.listener_count("echo"), 1);
    socket.remove_all_listeners();
    assert_eq!(socket.listener_count("echo"), 0);

    flush(100).await;
    socket.off("echo");

    // `once`: the first echo only.
    let (once_seen, mut onces) = futures_channel::mpsc::unbounded();
    socket.once("echo", move |_, Data(n): Data<u32>, _| {
        let _ = once_seen.unbounded_send(n);
        async {}
    });
    socket.emit("echo", &8).unwrap();
    assert_eq!(within("once", onces.next()).await, Some(8));
    assert_eq!(socket.listener_count("echo"), 0);
    socket.emit("echo", &9).unwrap();
    flush(101).await;
    assert!(!matches!(onces.next().now_or_never(), Some(Some(_))));
    socket.disconnect();
}

/// Node's `Manager`: `Manager::new`, `manager.socket(nsp)` on one
/// connection, `ManagerEvent::Open`, `on_any` before an event's own
/// listeners, an `Args` listener answering with `send_payload`, and
/// `manager.close()` disconnecting every socket for good.
async fn a_manager_and_its_sockets<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    let manager = socketio::client::Manager::new(rt, &url, &ClientOptions::default()).unwrap();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = events.clone();
    manager.on_event(move |event| {
        if let ManagerEvent::Open = event {
            seen.lock().unwrap().push("open".into());
        }
    });
    let main = manager.socket("/");
    let other = manager.socket("b");
    let order = events.clone();
    main.on_any(move |_, event, _| {
        order.lock().unwrap().push(format!("any {event}"));
        async {}
    });
    let own = events.clone();
    main.on(
        "question",
        move |_, socketio::Args((n,)): socketio::Args<(i64,)>, ack| {
            own.lock().unwrap().push(format!("own question {n}"));
            async move {
                let answer = Payload::args(&(n * 2,)).unwrap();
                ack.unwrap().send_payload(answer).unwrap();
            }
        },
    );
    let left = events.clone();
    for socket in [&main, &other] {
        let left = left.clone();
        socket.on_disconnect(move |socket, reason| {
            left.lock().unwrap().push(format!(
                "{} left: {}",
                socket.namespace(),
                reason.as_node_str()
            ));
            async {}
        });
    }
    within("connect /", main.connect()).await.unwrap();
    within("connect /b", other.connect()).await.unwrap();
    let echoed = client_scenarios::ask(&other, "echo-ack", json!(["b"])).await;
    assert_eq!(echoed, json!(["b"]));
    // The server asks; the listener answers with twice the number.
    let (answered, mut answers) = futures_channel::mpsc::unbounded();
    main.on("answer", move |_, Data(answer): Data<i64>, _| {
        let _ = answered.unbounded_send(answer);
        async {}
    });
    main.emit("ask", &21).unwrap();
    assert_eq!(within("the answer", answers.next()).await, Some(42));
    manager.close();
    within("closed", manager.closed()).await;
    // The disconnect listeners run on the client's listener task, after
    // the connection's end.
    let both_left = || {
        let events = events.lock().unwrap();
        events.iter().filter(|e| e.contains(" left: ")).count() == 2
    };
    within("the disconnects", async {
        while !both_left() {
            suite::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events.iter().filter(|e| *e == "open").count(),
        1,
        "{events:?}"
    );
    let asked = events.iter().position(|e| e == "any question").unwrap();
    assert_eq!(events[asked + 1], "own question 21", "{events:?}");
    assert!(
        events.iter().any(|e| e.starts_with("/ left: ")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("/b left: ")),
        "{events:?}"
    );
    assert!(!main.connected() && !other.connected());
}

/// Our client and our server speaking the msgpack parser, and then a
/// parser of the application's own ([`TaggedText`]): events and acks both
/// ways with nested binary, namespaces, room broadcasts recovered after a
/// cut, over every transport.
async fn parsers_with_own_server<R: TestRuntime>(rt: R) {
    for parser in [
        client_scenarios::msgpack as fn() -> SharedParser,
        tagged_text,
    ] {
        let url = suite::mirror::start_with(rt, |config| config.connection.parser = parser()).await;
        for (name, transports) in TRANSPORTS {
            let setup = Setup { transports, parser };
            client_scenarios::events_and_acks(rt, &url, name, setup).await;
            client_scenarios::namespaces(rt, &url, name, setup).await;
            client_scenarios::recovery(rt, &url, name, setup).await;
        }
    }
}

fn tagged_text() -> SharedParser {
    SharedParser::new(TaggedText)
}

/// A parser of our own, as an application might write one: a packet is a
/// text message `<kind>|<attachments>|<id>|<namespace>|<JSON>`, followed by
/// its attachments as binary messages.
#[derive(Debug)]
struct TaggedText;

impl Parser for TaggedText {
    fn name(&self) -> &str {
        "tagged-text"
    }

    fn encode(&self, packet: &Packet) -> EncodedPacket {
        let kind = match packet.kind {
            PacketKind::Connect => 'c',
            PacketKind::Disconnect => 'd',
            PacketKind::Event => 'e',
            PacketKind::Ack => 'a',
            PacketKind::ConnectError => 'x',
        };
        let id = packet.id.map(|id| id.0.to_string()).unwrap_or_default();
        let text = format!(
            "{kind}|{}|{id}|{}|{}",
            packet.attachments.len(),
            packet.nsp,
            packet.data.as_deref().unwrap_or("")
        );
        EncodedPacket::from_messages(Message::Text(text.into()), packet.attachments.clone())
    }

    fn decoder(&self, _limits: &DecoderConfig) -> Box<dyn PacketDecoder> {
        Box::new(TaggedTextDecoder::default())
    }
}

/// Reads [`TaggedText`] packets: the text, then as many binary messages as
/// it announced.
#[derive(Debug, Default)]
struct TaggedTextDecoder {
    partial: Option<(Packet, usize)>,
}

impl PacketDecoder for TaggedTextDecoder {
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        let text = match message {
            Message::Binary(bytes) => {
                let (mut packet, expected) =
                    self.partial.take().ok_or(DecodeError::UnexpectedBinary)?;
                packet.attachments.push(bytes);
                if packet.attachments.len() < expected {
                    self.partial = Some((packet, expected));
                    return Ok(None);
                }
                return Ok(Some(packet));
            }
            Message::Text(_) if self.partial.is_some() => return Err(DecodeError::UnexpectedText),
            Message::Text(text) => text,
        };
        let mut fields = text.splitn(5, '|');
        let mut field = || fields.next().ok_or(DecodeError::InvalidPayload);
        let kind = match field()? {
            "c" => PacketKind::Connect,
            "d" => PacketKind::Disconnect,
            "e" => PacketKind::Event,
            "a" => PacketKind::Ack,
            "x" => PacketKind::ConnectError,
            _ => return Err(DecodeError::InvalidPayload),
        };
        let expected: usize = field()?
            .parse()
            .map_err(|_| DecodeError::IllegalAttachments)?;
        let id = match field()? {
            "" => None,
            id => Some(AckId(id.parse().map_err(|_| DecodeError::InvalidAckId)?)),
        };
        let nsp = field()?.to_owned();
        let data = field()?;
        let packet = Packet {
            id,
            ..Packet::new(kind, nsp.into(), (!data.is_empty()).then(|| data.into()))
        };
        if expected == 0 {
            return Ok(Some(packet));
        }
        self.partial = Some((packet, expected));
        Ok(None)
    }
}

suite::on_each_runtime!(
    compression_with_own_server,
    parsers_with_own_server,
    a_manager_and_its_sockets,
    outgoing_listeners_and_off,
    events_acks_and_binary_with_own_server,
    namespaces_multiplexed_and_refused_by_own_server,
    dynamic_auth_and_disconnect_by_own_server,
    ack_timeouts_and_retries_with_own_server,
    awaiting_listeners_with_own_server,
    recovery_with_own_server,
    sent_away_by_own_server,
    a_server_that_never_answers_times_out,
    a_custom_path_and_a_namespace_in_the_url,
    a_listener_awaiting_an_ack_during_a_flood,
    disconnect_after_an_emit_says_goodbye,
    too_many_pending_listeners_drop_the_connection,
);
