//! A Socket.IO server connection under arbitrary client and application
//! behaviour, on a virtual clock: an Engine.IO session (opened over polling
//! or WebSocket) wrapped in a `Connection`, then client POSTs and frames
//! (mostly well-formed Socket.IO packets, some garbage), polls, upgrades,
//! closes, time steps and application commands (accept, reject, emit,
//! emit_with_ack, ack, disconnect, close).
//!
//! After every input the outputs are drained and checked against a model of
//! the namespaces and acks (see `Model`):
//!
//! * no panic; fewer than `MAX_OUTPUTS_PER_STEP` outputs per input;
//! * `Closed` at most once, and after it no `Connect`, `Event`, `Ack` or
//!   `AckFailed`;
//! * a `Connect` only for a namespace with no pending CONNECT and no socket;
//!   at most one accept or reject succeeds per `Connect`, and a refused
//!   command changes nothing (`socket_id` stays as it was);
//! * `Event` and `Ack` only on accepted namespaces; `Disconnect` only for an
//!   accepted namespace, once per accept, and every socket is disconnected
//!   once the connection is closed;
//! * each ack id from `emit_with_ack` is fresh and gets exactly one of
//!   `Ack`, `AckFailed(Timeout)` (only with a deadline) and
//!   `AckFailed(Disconnected)` (only right before its socket's `Disconnect`,
//!   or as the connection closes), on its own namespace: when a socket
//!   goes, none of its acks is left unanswered; one with a timeout is
//!   answered past its deadline (checked at the end of the run);
//! * commands on a closed connection fail with `Closed` (or `NotConnected`);
//! * `poll_timeout()` is `None` once the connection and its session are
//!   closed, and after `handle_timeout(now)` never at or before `now`;
//! * everything the server sends (WebSocket frames, poll responses) decodes
//!   with a client's `Decoder`.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use engineio_fuzz::sio::{attachments, event, lossy, JsonSpec, PacketSpec};
use engineio_fuzz::{tracing, BodySpec, FrameSpec, Pick, MAX_OUTPUTS_PER_STEP};
use engineio_proto::server::{self as eio, Opening, Server, ServerConfig};
use engineio_proto::{
    payload, CountingSidGenerator, Instant, Packet as EioPacket, RequestId, Sid, Str,
    TransportKind, Transports, WsId,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use socketio_proto::server::{CommandError, Connection, ConnectionConfig, Input, Output};
use socketio_proto::{AckError, AckId, Decoder, DecoderConfig};

/// At most this many inputs per run.
const MAX_OPS: usize = 512;

#[derive(Arbitrary, Debug)]
struct Config {
    ping_interval_ms: u8,
    ping_timeout_ms: u8,
    upgrade_timeout_ms: u16,
    close_timeout_ms: u16,
    max_payload: u16,
    max_buffered_packets: u8,
    allow_upgrades: bool,
    connect_timeout_ms: u16,
    max_attachments: u8,
    max_attachment_bytes: u16,
}

impl Config {
    fn build(&self) -> (ServerConfig, ConnectionConfig) {
        let mut server = ServerConfig::default();
        server.ping_interval = ms(1 + u64::from(self.ping_interval_ms) * 2);
        server.ping_timeout = ms(1 + u64::from(self.ping_timeout_ms) * 2);
        server.upgrade_timeout = ms(1 + u64::from(self.upgrade_timeout_ms % 1000));
        server.close_timeout = ms(1 + u64::from(self.close_timeout_ms % 1000));
        server.max_payload = 64 + usize::from(self.max_payload) % (4096 - 64 + 1);
        server.max_buffered_packets = 1 + usize::from(self.max_buffered_packets % 24);
        server.transports = Transports::ALL;
        server.allow_upgrades = self.allow_upgrades;
        let mut connection = ConnectionConfig::default();
        connection.connect_timeout = ms(1 + u64::from(self.connect_timeout_ms % 4000));
        connection.decoder.max_attachments = usize::from(self.max_attachments % 13);
        connection.decoder.max_attachment_bytes = usize::from(self.max_attachment_bytes % 4096);
        (server, connection)
    }
}

/// A namespace as the application names it.
#[derive(Arbitrary, Debug, Clone)]
enum AppNsp {
    /// One announced by a `Connect` output, by index.
    Seen(u8),
    /// The most recently announced.
    Latest,
    Main,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Let virtual time pass (up to 2 s).
    Advance(u16),
    /// Let a little time pass (ms), then fire the timers.
    Tick(u8),
    Timeout,
    /// The client answers the heartbeat over its transport.
    Pong,
    Poll,
    /// A POST carrying the messages of these packets.
    Post(Vec<PacketSpec>),
    /// A packet's messages, one frame each.
    WsPacket {
        ws: Pick,
        packet: PacketSpec,
    },
    /// A new WebSocket for the session, its `2probe`, and `5` if `finish`.
    Upgrade {
        finish: bool,
    },
    /// Transport-level input, mostly disruptive.
    Transport(TransportOp),
    Accept {
        nsp: AppNsp,
        pid: Option<Vec<u8>>,
    },
    Reject {
        nsp: AppNsp,
        message: u8,
    },
    Emit {
        nsp: AppNsp,
        args: Vec<JsonSpec>,
        attachments: u8,
        /// Sent only if the transport is writable now.
        volatile: bool,
    },
    EmitWithAck {
        nsp: AppNsp,
        timeout_ms: Option<u16>,
        attachments: u8,
    },
    Ack {
        nsp: AppNsp,
        id: Pick,
        attachments: u8,
    },
    Disconnect(AppNsp),
    Close,
    /// The application sends the client away (`disconnect_all`), or the
    /// server shuts down (`shut_down`).
    SendAway {
        shut_down: bool,
    },
    /// The application is full (`true`) or has room again.
    Hold(bool),
}

#[derive(Arbitrary, Debug)]
enum TransportOp {
    PollAborted(Pick),
    PostRaw(BodySpec),
    /// An Engine.IO frame (probes, `5`, pongs, raw bytes).
    WsFrame {
        ws: Pick,
        frame: FrameSpec,
    },
    WsClosed(Pick),
}

#[derive(Arbitrary, Debug)]
struct Case {
    config: Config,
    websocket: bool,
    ops: Vec<Op>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the application and the client have seen of the connection.
#[derive(Default)]
struct Model {
    /// `Output::Closed` came.
    closed: bool,
    /// Namespaces whose `Connect` awaits an answer.
    pending: BTreeSet<Str>,
    /// Namespaces with an accepted socket (until its `Disconnect`).
    accepted: BTreeSet<Str>,
    /// Every namespace a `Connect` announced, in order.
    seen: Vec<Str>,
    /// Server acks awaiting `Ack` or `AckFailed`: their namespace and
    /// whether they have a deadline.
    acks: BTreeMap<u64, (Str, bool)>,
    /// Every ack id `emit_with_ack` returned.
    issued: Vec<u64>,
    /// Ack ids of client events (for `ack`).
    client_acks: Vec<u64>,
    /// The client's decoder of what the server sends.
    client: Decoder,
    /// Requests that are GETs (their answers are payloads to decode).
    polls: BTreeSet<RequestId>,
    /// WebSockets handed to the connection.
    ws: Vec<u64>,
    /// The WebSocket the server last sent on (its transport, once upgraded).
    last_ws_send: u64,
    next_id: u64,
    next_sid: u64,
}

impl Model {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn app_nsp(&self, nsp: &AppNsp) -> Str {
        match nsp {
            AppNsp::Seen(i) if !self.seen.is_empty() => {
                self.seen[usize::from(*i) % self.seen.len()].clone()
            }
            AppNsp::Latest if !self.seen.is_empty() => self.seen[self.seen.len() - 1].clone(),
            AppNsp::Seen(_) | AppNsp::Latest | AppNsp::Main => Str::from("/"),
            AppNsp::Raw(b) => Str::from(lossy(b)),
        }
    }

    /// Drains the outputs of one input and checks them.
    fn drain(&mut self, conn: &mut Connection) {
        let mut count = 0;
        while let Some(output) = conn.poll_output() {
            if tracing() {
                eprintln!("    -> {output:?}");
            }
            count += 1;
            assert!(count < MAX_OUTPUTS_PER_STEP, "unbounded outputs");
            match output {
                Output::Transport(transport) => self.client_receives(transport),
                Output::Upgraded => {}
                Output::Connect { nsp, .. } => {
                    assert!(!self.closed, "Connect after Closed");
                    assert!(!self.pending.contains(&nsp), "second Connect for {nsp:?}");
                    assert!(!self.accepted.contains(&nsp), "Connect for joined {nsp:?}");
                    self.pending.insert(nsp.clone());
                    self.seen.push(nsp);
                }
                Output::Event { nsp, data, ack, .. } => {
                    assert!(!self.closed, "Event after Closed");
                    assert!(self.accepted.contains(&nsp), "Event on {nsp:?}");
                    assert!(data.trim_start().starts_with('['), "event data {data:?}");
                    self.client_acks.extend(ack.map(|a| a.0));
                }
                Output::Ack { nsp, id, .. } => {
                    assert!(!self.closed, "Ack after Closed");
                    assert!(self.accepted.contains(&nsp), "Ack on {nsp:?}");
                    let pending = self.acks.remove(&id.0).map(|(n, _)| n);
                    assert_eq!(pending, Some(nsp), "Ack {id}");
                }
                Output::AckFailed { nsp, id, error } => {
                    assert!(!self.closed, "AckFailed after Closed");
                    let pending = self.acks.remove(&id.0);
                    match error {
                        AckError::Timeout => {
                            assert_eq!(pending, Some((nsp, true)), "AckFailed(Timeout) {id}")
                        }
                        _ => {
                            assert_eq!(pending.map(|(n, _)| n), Some(nsp), "AckFailed {id}")
                        }
                    }
                }
                Output::Disconnect { nsp, .. } => {
                    assert!(self.accepted.remove(&nsp), "Disconnect of {nsp:?}");
                    // Every ack of the socket was failed just before.
                    let left: Vec<_> = self.acks.iter().filter(|(_, (n, _))| *n == nsp).collect();
                    assert!(left.is_empty(), "{nsp:?} left with acks {left:?}");
                }
                Output::Closed => {
                    assert!(!self.closed, "Closed twice");
                    self.closed = true;
                }
            }
        }
        if conn.is_closed() {
            assert!(
                self.accepted.is_empty(),
                "closed with sockets {:?}",
                self.accepted
            );
            self.pending.clear();
            assert!(self.acks.is_empty(), "closed with acks {:?}", self.acks);
        }
        if self.closed {
            assert!(conn.is_closed(), "Closed but is_closed() is false");
            assert!(conn.engine().is_closed(), "Closed but the session is open");
        }
        if conn.is_closed() && conn.engine().is_closed() {
            assert!(self.closed, "the session closed without Closed");
            assert_eq!(conn.poll_timeout(), None, "timer armed after Closed");
        } else {
            assert!(
                conn.poll_timeout().is_some(),
                "an open connection has a timer"
            );
        }
        for nsp in &self.accepted {
            assert!(
                conn.socket_id(nsp).is_some(),
                "{nsp:?} accepted but no socket"
            );
        }
        for nsp in &self.seen {
            if !self.accepted.contains(nsp) {
                assert_eq!(conn.socket_id(nsp), None, "{nsp:?} has a socket");
            }
        }
    }

    /// What the client gets must decode.
    fn client_receives(&mut self, output: eio::Output) {
        match output {
            eio::Output::WsSend { ws, frame, .. } => {
                self.last_ws_send = ws.0;
                let packet = EioPacket::decode_frame(frame).expect("server frames decode");
                self.client_packet(packet);
            }
            eio::Output::Respond { request, response } => {
                if self.polls.contains(&request) && response.status == 200 {
                    let packets = payload::decode(response.body).expect("poll bodies are UTF-8");
                    for packet in packets {
                        self.client_packet(packet.expect("poll bodies decode"));
                    }
                }
            }
            eio::Output::WsClose { .. } => {}
            other => panic!("{other:?} forwarded as a transport output"),
        }
    }

    fn client_packet(&mut self, packet: EioPacket) {
        if let EioPacket::Message(message) = packet {
            if let Err(error) = self.client.decode(message) {
                panic!("the server sent something its client cannot decode: {error}");
            }
        }
    }
}

/// Checks a command's result: on a closed connection only `Closed` or
/// `NotConnected`; `Ok` only on an accepted namespace (`pending` for accept
/// and reject).
fn check_command<T>(result: &Result<T, CommandError>, was_closed: bool, allowed: bool, what: &str) {
    if was_closed {
        assert!(
            matches!(
                result,
                Err(CommandError::Closed | CommandError::NotConnected)
            ),
            "{what} on a closed connection"
        );
    }
    if result.is_ok() {
        assert!(allowed, "{what} succeeded on a namespace it should not");
    }
}

fuzz_target!(|input: Case| {
    let (server_config, config) = input.config.build();
    let max_payload = server_config.max_payload;
    let mut server = Server::new(server_config, CountingSidGenerator::default());
    let mut model = Model {
        client: Decoder::new({
            let mut c = DecoderConfig::default();
            c.max_attachments = usize::MAX;
            c.max_attachment_bytes = usize::MAX;
            c
        }),
        ..Model::default()
    };
    let mut now = Instant::ZERO;
    let id = model.fresh_id();
    let opening = if input.websocket {
        model.ws.push(id);
        model.last_ws_send = id;
        Opening::WebSocket(WsId(id))
    } else {
        model.polls.insert(RequestId(id));
        Opening::Polling(RequestId(id))
    };
    let session = server.open_session(now, opening);
    let mut conn = Connection::new(now, session, &config);
    model.drain(&mut conn);

    for op in input.ops.iter().take(MAX_OPS) {
        if tracing() {
            eprintln!("[{now:?}] {op:?}");
        }
        let was_closed = conn.is_closed();
        match op {
            Op::Advance(step) => {
                now = now + ms(u64::from(*step % 2000));
                continue;
            }
            Op::Tick(step) => {
                now = now + ms(u64::from(*step));
                conn.handle_input(now, Input::Timeout);
                model.drain(&mut conn);
                continue;
            }
            Op::Timeout => {
                conn.handle_input(now, Input::Timeout);
                model.drain(&mut conn);
                if let Some(next) = conn.poll_timeout() {
                    assert!(
                        next > now,
                        "deadline {next:?} due after handle_timeout({now:?})"
                    );
                }
                continue;
            }
            Op::Pong => {
                if conn.engine().transport() == TransportKind::WebSocket {
                    let ws = WsId(model.last_ws_send);
                    conn.handle_input(
                        now,
                        Input::WsFrame {
                            ws,
                            frame: EioPacket::PONG.encode_frame(),
                        },
                    );
                } else {
                    let request = RequestId(model.fresh_id());
                    conn.handle_input(
                        now,
                        Input::Post {
                            request,
                            body: payload::encode(&[EioPacket::PONG]),
                        },
                    );
                }
            }
            Op::Poll => {
                let request = RequestId(model.fresh_id());
                model.polls.insert(request);
                conn.handle_input(now, Input::Poll(request));
            }
            Op::Post(specs) => {
                let mut messages = Vec::new();
                for spec in specs.iter().take(16) {
                    messages.extend(spec.build(&model.seen, &model.issued).messages());
                }
                let packets: Vec<EioPacket> =
                    messages.into_iter().map(EioPacket::Message).collect();
                let request = RequestId(model.fresh_id());
                conn.handle_input(
                    now,
                    Input::Post {
                        request,
                        body: payload::encode(&packets),
                    },
                );
            }
            Op::WsPacket { ws, packet } => {
                let ws = WsId(ws.pick(&model.ws));
                for message in packet.build(&model.seen, &model.issued).messages() {
                    let frame = EioPacket::Message(message).encode_frame();
                    conn.handle_input(now, Input::WsFrame { ws, frame });
                    model.drain(&mut conn);
                }
            }
            Op::Upgrade { finish } => {
                let ws = WsId(model.fresh_id());
                model.ws.push(ws.0);
                conn.handle_input(now, Input::Upgrade(ws));
                model.drain(&mut conn);
                conn.handle_input(
                    now,
                    Input::WsFrame {
                        ws,
                        frame: EioPacket::PING_PROBE.encode_frame(),
                    },
                );
                if *finish {
                    model.drain(&mut conn);
                    conn.handle_input(
                        now,
                        Input::WsFrame {
                            ws,
                            frame: EioPacket::Upgrade.encode_frame(),
                        },
                    );
                }
            }
            Op::Transport(TransportOp::PollAborted(pick)) => {
                let known: Vec<u64> = model.polls.iter().map(|r| r.0).collect();
                conn.handle_input(now, Input::PollAborted(RequestId(pick.pick(&known))));
            }
            Op::Transport(TransportOp::PostRaw(body)) => {
                let request = RequestId(model.fresh_id());
                conn.handle_input(
                    now,
                    Input::Post {
                        request,
                        body: body.to_body(max_payload),
                    },
                );
            }
            Op::Transport(TransportOp::WsFrame { ws, frame }) => {
                let ws = WsId(ws.pick(&model.ws));
                conn.handle_input(
                    now,
                    Input::WsFrame {
                        ws,
                        frame: frame.to_frame(max_payload),
                    },
                );
            }
            Op::Transport(TransportOp::WsClosed(ws)) => {
                let ws = WsId(ws.pick(&model.ws));
                conn.handle_input(now, Input::WsClosed(ws));
            }
            Op::Accept { nsp, pid } => {
                let nsp = model.app_nsp(nsp);
                model.next_sid += 1;
                let sid = Sid::parse(&format!("sock{}", model.next_sid)).expect("a valid sid");
                let pid = pid.as_ref().map(|b| lossy(b));
                let before = conn.socket_id(&nsp);
                let result = conn.accept(now, &nsp, sid, pid.as_deref());
                check_command(&result, was_closed, model.pending.contains(&nsp), "accept");
                if result.is_ok() {
                    model.pending.remove(&nsp);
                    model.accepted.insert(nsp.clone());
                    assert_eq!(conn.socket_id(&nsp), Some(sid));
                } else if !conn.is_closed() {
                    assert_eq!(
                        conn.socket_id(&nsp),
                        before,
                        "a refused accept changed {nsp:?}"
                    );
                }
            }
            Op::Reject { nsp, message } => {
                let nsp = model.app_nsp(nsp);
                let data = format!("{{\"message\":\"refused {message}\"}}");
                let result = conn.reject(now, &nsp, Str::from(data));
                check_command(&result, was_closed, model.pending.contains(&nsp), "reject");
                if result.is_ok() {
                    model.pending.remove(&nsp);
                    assert_eq!(conn.socket_id(&nsp), None);
                }
            }
            Op::Emit {
                nsp,
                args,
                attachments: n,
                volatile,
            } => {
                let nsp = model.app_nsp(nsp);
                let packet = event(nsp.clone(), "srv", args, attachments(*n)).encode();
                // Placeholder-shaped data beside attachments that it does
                // not index is the application's mistake (Node's clients
                // refuse it too): an application does not send it.
                if !packet.attachments.is_empty()
                    && Decoder::default().decode(packet.head().clone()).is_err()
                {
                    continue;
                }
                let result = if *volatile {
                    conn.emit_volatile(now, &nsp, &packet).map(|sent| {
                        // Dropped only when the transport cannot take it now.
                        assert!(
                            sent || !conn.engine().is_writable(),
                            "volatile dropped while writable"
                        );
                    })
                } else {
                    conn.emit(now, &nsp, &packet)
                };
                check_command(&result, was_closed, model.accepted.contains(&nsp), "emit");
            }
            Op::EmitWithAck {
                nsp,
                timeout_ms,
                attachments: n,
            } => {
                let nsp = model.app_nsp(nsp);
                let packet = event(nsp.clone(), "srv", &[], attachments(*n));
                let timeout = timeout_ms.map(|t| ms(u64::from(t % 3000)));
                let result = conn.emit_with_ack(now, packet, timeout);
                check_command(
                    &result,
                    was_closed,
                    model.accepted.contains(&nsp),
                    "emit_with_ack",
                );
                if let Ok(AckId(id)) = result {
                    assert!(!model.issued.contains(&id), "ack id {id} issued twice");
                    model.issued.push(id);
                    model.acks.insert(id, (nsp, timeout.is_some()));
                }
            }
            Op::Ack {
                nsp,
                id,
                attachments: n,
            } => {
                let nsp = model.app_nsp(nsp);
                let id = AckId(id.pick(&model.client_acks));
                let attachments = attachments(*n);
                let mut data = String::from("[\"ok\"");
                for i in 0..attachments.len() {
                    data.push_str(&format!(",{{\"_placeholder\":true,\"num\":{i}}}"));
                }
                data.push(']');
                let result = conn.ack(now, &nsp, id, Str::from(data), attachments);
                check_command(&result, was_closed, model.accepted.contains(&nsp), "ack");
            }
            Op::Disconnect(nsp) => {
                let nsp = model.app_nsp(nsp);
                let result = conn.disconnect(now, &nsp);
                check_command(
                    &result,
                    was_closed,
                    model.accepted.contains(&nsp),
                    "disconnect",
                );
                if result.is_ok() {
                    assert_eq!(conn.socket_id(&nsp), None);
                }
            }
            Op::Close => {
                conn.close(now);
                assert!(conn.is_closed(), "close() left the connection open");
            }
            Op::SendAway { shut_down } => {
                if *shut_down {
                    conn.shut_down(now);
                } else {
                    conn.disconnect_all(now);
                }
                assert!(conn.is_closed(), "the connection stayed open");
                assert_eq!(conn.connected_namespaces().count(), 0);
            }
            Op::Hold(hold) => {
                conn.hold_messages(now, *hold);
            }
        }
        if was_closed {
            assert!(conn.is_closed(), "a closed connection reopened");
        }
        model.drain(&mut conn);
    }

    // Past every deadline, each ack that had one has been answered, has
    // timed out, or went with its socket.
    conn.hold_messages(now, false);
    now = now + Duration::from_secs(24 * 3600);
    conn.handle_input(now, Input::Timeout);
    model.drain(&mut conn);
    let unresolved: Vec<u64> = model
        .acks
        .iter()
        .filter(|(_, (_, deadline))| *deadline)
        .map(|(id, _)| *id)
        .collect();
    assert!(unresolved.is_empty(), "acks {unresolved:?} never resolved");
});
