//! The Socket.IO client machine (`ClientConnection`) under an arbitrary
//! application and a hostile server, on a virtual clock. The application
//! joins and leaves namespaces (a few names, some invalid), emits with and
//! without acks, volatile or with attachments, answers server events (and
//! made-up ids), provides auth on demand, connects, drops the connection
//! (`drop_connection`, as when it falls behind) and closes; the server
//! answers the machine's IO intents (or stale and unknown ones) with
//! handshakes, Engine.IO payloads and frames carrying Socket.IO packets
//! (CONNECT replies with and without pid, CONNECT_ERROR, EVENT and ACK with
//! and without ids, binary events whose attachment count is right or not,
//! DISCONNECT, garbage), HTTP errors and statuses, WebSocket opens and
//! closes; time steps, sometimes to exactly `poll_timeout()`.
//!
//! After every input the outputs are drained and checked against a model of
//! the namespaces and acks built from the outputs (see `Driver::output`):
//!
//! * no panic; fewer than `MAX_OUTPUTS_PER_STEP` outputs per input;
//! * `Connected` only for a joined namespace that is not connected, while
//!   the engine is open; `recovered` only for a socket that was connected
//!   before; `Disconnected` for a server or transport reason only when
//!   connected, for the client's own reason only in the step of `leave` or
//!   `close`; `ConnectError` only when not connected; `Event` and `Ack`
//!   only on connected namespaces; `is_connected` agrees with the model;
//!   `EngineClosed` only after `EngineOpen`, with no namespace left connected;
//! * every `Ack`/`AckFailed` names an ack id `emit_with_ack` returned on that
//!   namespace and not yet answered; an id is never handed out again while
//!   its namespace still awaits it; `AckFailed(Timeout)` never before the
//!   emit's timeout (or `ack_timeout` with retries), never without one;
//!   leaving or being disconnected by the server fails every awaited ack
//!   first; losing the transport fails those already sent (Node's
//!   `_clearAcks`); without retries, an ack with a timeout is resolved once
//!   past every deadline (checked at the end of the run);
//! * commands: `join` fails only once closed; `leave`, `provide_auth`, `emit`
//!   refuse only namespaces not joined; `ack` only works when connected;
//! * bounded memory: without retries, a namespace that is not connected
//!   buffers exactly `max_buffered_packets` emits (and the emit that would
//!   be one too many fails with `BufferFull`; an ack that times out frees its
//!   slot); with retries, no more than that many emits enter the queue while
//!   nothing can leave it; events held before a CONNECT answer are at most
//!   `max_buffered_packets` (events per step are bounded by what the server
//!   sent in that step plus that many per `Connected`);
//! * reconnection: `ReconnectAttempt` numbered from 1 after each open or
//!   after the client went idle (every namespace gone), up to
//!   `reconnection_attempts`, then `ReconnectFailed`; none without
//!   `reconnection`;
//! * timers: `poll_timeout()` never in the past; after `handle_timeout(now)`
//!   strictly after `now`; `handle_timeout` 1 ms before the deadline does
//!   nothing;
//! * IO intents: request and WebSocket ids never reused, across engines;
//!   `WsSend`/`WsClose` only on WebSockets asked for, `WsSend` only on one
//!   that opened and did not close; every text message the client sends
//!   decodes as a Socket.IO packet (when only valid namespaces were joined);
//! * `close`: afterwards only the goodbye (POST, WebSocket frames and
//!   closes), `join` fails with `Closed`, and once `is_shut_down()` no timer.
//!
//! Every call fires the timers due at its `now` first; before application
//! commands and WebSocket closes the driver fires them itself, so that the
//! model sees their outputs before the command's result (or the close).

#![no_main]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use engineio_fuzz::sio::{
    attachments, event, write_args, JsonSpec, LeafSpec, NspSpec, PacketSpec as SioSpec,
};
use engineio_fuzz::{
    tracing, BodySpec, FrameSpec, HandshakeSpec, PacketSpec as EioSpec, Pick, ReqPick, Status,
    MAX_OUTPUTS_PER_STEP,
};
use engineio_proto::client::{HttpMethod, Output as EioOutput};
use engineio_proto::{
    payload, CloseReason, Frame, Instant, Message, Packet as EioPacket, RequestId, Str,
    TransportError, Transports, WsId,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use socketio_proto::backoff::SeededRandom;
use socketio_proto::client::{
    AckError, ClientConfig, ClientConnection, CommandError, DisconnectReason, Input, Output,
};
use socketio_proto::{AckId, Decoder, DecoderConfig, Packet, PacketKind};

/// At most this many inputs per run.
const MAX_OPS: usize = 512;

/// Limit for the `AroundLimit` bodies and frames (the client's own
/// `maxPayload` comes from the handshake).
const LIMIT: usize = 1000;

/// Namespaces the application may use that are not valid (no leading `/`,
/// a comma inside): joining them must not break anything.
const INVALID: [&str; 4] = ["", "chat", "/a,b", "/custom,"];

#[derive(Arbitrary, Debug)]
struct Config {
    transports: u8,
    upgrade: bool,
    engine_buffer: u8,
    reconnection: bool,
    attempts: Option<u8>,
    delay_ms: u16,
    delay_max_ms: u16,
    jitter: u8,
    open_timeout_ms: u16,
    retries: u8,
    ack_timeout_ms: Option<u16>,
    max_buffered: u8,
    max_attachments: u8,
    max_attachment_bytes: u16,
    seed: u64,
}

impl Config {
    fn build(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.engine.transports = match self.transports % 8 {
            0 => Transports::POLLING,
            1 => Transports::WEBSOCKET,
            // Every open fails at once.
            2 => Transports {
                polling: false,
                websocket: false,
            },
            _ => Transports::ALL,
        };
        config.engine.upgrade = self.upgrade;
        config.engine.max_buffered_packets = 1 + usize::from(self.engine_buffer % 32);
        config.reconnection = self.reconnection;
        config.reconnection_attempts = self.attempts.map(|n| u32::from(n % 5));
        config.reconnection_delay = ms(1 + u64::from(self.delay_ms % 2000));
        config.reconnection_delay_max = ms(1 + u64::from(self.delay_max_ms % 5000));
        config.randomization_factor = f64::from(self.jitter) / 255.0;
        config.timeout = ms(1 + u64::from(self.open_timeout_ms % 5000));
        config.retries = match self.retries % 8 {
            0..=4 => 0,
            n => u32::from(n - 4),
        };
        config.ack_timeout = self.ack_timeout_ms.map(|t| ms(u64::from(t % 3000)));
        config.max_buffered_packets = 1 + usize::from(self.max_buffered % 8);
        config.decoder.max_attachments = usize::from(self.max_attachments % 13);
        config.decoder.max_attachment_bytes = usize::from(self.max_attachment_bytes % 4096);
        config
    }
}

/// A namespace as the application names it.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum AppNsp {
    Main,
    /// One of `sio::NAMESPACES`.
    Named(u8),
    /// One joined before (maybe left since), by index.
    Joined(u8),
    /// The latest one an `AuthRequest` named.
    AuthAsked,
    /// One of [`INVALID`].
    Invalid(u8),
}

/// A Socket.IO packet (or Engine.IO packet) from the server.
#[derive(Arbitrary, Debug)]
enum ServerPacket {
    /// The CONNECT answer `{"sid":…,"pid":…}`; without `sid` it is invalid.
    Accept {
        nsp: NspSpec,
        pid: Option<u8>,
        sid: bool,
    },
    /// EVENT (ack ids made up), ACK (of the client's ids), DISCONNECT,
    /// CONNECT_ERROR or raw text, as the shared generator builds them.
    Packet(SioSpec),
    /// A binary event announcing `announced` attachments, followed by `sent`
    /// binary messages.
    Miscounted {
        nsp: NspSpec,
        announced: u8,
        sent: u8,
        ack: Option<u8>,
    },
    /// A CONNECT_ERROR without data.
    BareRefusal(NspSpec),
    /// An Engine.IO packet between the messages (PING, CLOSE, NOOP, …).
    Engine(EioSpec),
}

#[derive(Arbitrary, Debug)]
enum ResponseBody {
    /// `0{…}` then these packets, as a handshake GET returns.
    Handshake(HandshakeSpec, Vec<ServerPacket>),
    /// A payload of these packets.
    Packets(Vec<ServerPacket>),
    /// Raw bytes or Engine.IO packets.
    Body(BodySpec),
}

#[derive(Arbitrary, Debug)]
enum WsFrameSpec {
    Handshake(HandshakeSpec),
    /// One frame per message.
    Packet(ServerPacket),
    Frame(FrameSpec),
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Let virtual time pass (up to 5 s) without telling the machine.
    Advance(u16),
    /// `handle_timeout(now)`.
    Timeout,
    /// Move to exactly `poll_timeout()` and fire, or to 1 ms before it
    /// (where nothing may happen).
    Deadline {
        early: bool,
    },
    Connect,
    Join {
        nsp: AppNsp,
        auth: Option<Vec<(u8, LeafSpec)>>,
        on_demand: bool,
    },
    ProvideAuth {
        nsp: AppNsp,
        auth: Option<Vec<(u8, LeafSpec)>>,
    },
    Leave(AppNsp),
    Emit {
        nsp: AppNsp,
        args: Vec<JsonSpec>,
        attachments: u8,
        volatile: bool,
    },
    EmitWithAck {
        nsp: AppNsp,
        attachments: u8,
        timeout_ms: Option<u16>,
    },
    /// Answer a server event (`id` among the ids server events carried).
    Ack {
        nsp: AppNsp,
        id: Pick,
        attachments: u8,
    },
    Close,
    /// The application falls behind: `drop_connection` (a transport loss).
    DropConnection,
    /// The server completes the latest opening: the WebSocket opens and
    /// sends the handshake, or the handshake GET returns it.
    Open(HandshakeSpec),
    /// The server sends packets over the current transport: frames on the
    /// latest open WebSocket (preferred with `websocket`), or the answer to
    /// the GET in flight.
    Deliver {
        websocket: bool,
        packets: Vec<ServerPacket>,
    },
    HttpResponse {
        request: ReqPick,
        status: Status,
        body: ResponseBody,
    },
    HttpError(ReqPick),
    WsOpen(Pick),
    WsFrame {
        ws: Pick,
        frame: WsFrameSpec,
    },
    WsClosed(Pick),
}

#[derive(Arbitrary, Debug)]
struct Case {
    config: Config,
    ops: Vec<Op>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Machine = ClientConnection<SeededRandom>;

/// A joined namespace, as the outputs tell.
#[derive(Debug, Clone)]
struct Nsp {
    /// False after a bare CONNECT_ERROR that may have removed it (the
    /// machine says `ConnectError` without data for other reasons too).
    certain: bool,
    connected: bool,
    /// This socket was connected before (it may have a pid to recover).
    was_connected: bool,
    /// Which socket: a removed namespace joined again is a new one.
    socket: u64,
    /// Emits buffered while not connected (no retries), when known.
    offline: Option<usize>,
    /// Bumped at each `Connected` (the offline buffer is flushed then).
    generation: u64,
    /// Retry mode: emits queued since anything could leave the queue.
    burst: usize,
}

/// An ack the application awaits.
#[derive(Debug, Clone)]
struct Awaited {
    socket: u64,
    /// The earliest a `Timeout` may come, if one may come at all.
    earliest_timeout: Option<Instant>,
    /// Went through the retry queue.
    retry: bool,
    /// The machine counts it as sent (no retries).
    sent: bool,
    /// Buffered offline in this generation of its namespace.
    buffered: Option<u64>,
    /// Its socket was refused (CONNECT_ERROR) and dropped: Node would
    /// still time it out.
    orphan: bool,
    /// Its socket may have been dropped (bare CONNECT_ERROR).
    uncertain: bool,
}

/// What the current input is, for the checks that depend on it.
#[derive(Debug, Default)]
struct Step {
    count: usize,
    /// Bytes the server handed in (a bound on its messages).
    injected: usize,
    /// A message that decodes to a CONNECT_ERROR without data was handed in.
    bare_refusal: bool,
    events: usize,
    connected: usize,
    /// `leave` of this namespace.
    leaving: Option<Str>,
    closing: bool,
    /// The machine was not called (its clock may lag behind).
    idle: bool,
    /// In `connect`, which may take a scheduled attempt's place.
    connecting: bool,
}

#[derive(Default)]
struct Driver {
    now: Instant,
    retry_mode: bool,
    ack_timeout: Option<Duration>,
    max_buffered: usize,
    reconnection: bool,
    max_attempts: Option<u32>,
    step: Step,

    // The IO the machine asked for.
    ids: HashSet<u64>,
    requests: Vec<u64>,
    get: Option<RequestId>,
    post: Option<RequestId>,
    ws: Vec<u64>,
    ws_opened: HashSet<u64>,
    ws_gone: HashSet<u64>,
    /// Ack ids the client's events carried on the wire.
    client_ids: Vec<u64>,

    // The model.
    closed: bool,
    engine_open: bool,
    nsps: BTreeMap<Str, Nsp>,
    /// Every namespace joined, in order.
    joined: Vec<Str>,
    auth_asked: Vec<Str>,
    awaited: BTreeMap<(Str, u64), Awaited>,
    /// Ack ids of server events.
    server_ids: Vec<u64>,
    invalid_joined: bool,
    next_socket: u64,
    next_generation: u64,
    /// The last `ReconnectAttempt` of the current run, if the run is known.
    attempt: Option<u32>,
    /// `connect` calls since, each of which may take an attempt's place.
    slack: u32,
}

impl Driver {
    fn app_nsp(&self, nsp: AppNsp) -> Str {
        match nsp {
            AppNsp::Main => Str::from("/"),
            AppNsp::Named(i) => {
                let names = engineio_fuzz::sio::NAMESPACES;
                Str::from(names[usize::from(i) % names.len()])
            }
            AppNsp::Joined(i) if !self.joined.is_empty() => {
                self.joined[usize::from(i) % self.joined.len()].clone()
            }
            AppNsp::AuthAsked if !self.auth_asked.is_empty() => {
                self.auth_asked[self.auth_asked.len() - 1].clone()
            }
            AppNsp::Joined(_) | AppNsp::AuthAsked => Str::from("/"),
            AppNsp::Invalid(i) => Str::from(INVALID[usize::from(i) % INVALID.len()]),
        }
    }

    fn pick_request(&self, pick: ReqPick) -> RequestId {
        let latest = RequestId(self.requests.last().copied().unwrap_or(0));
        match pick {
            ReqPick::Get => self.get.unwrap_or(latest),
            ReqPick::Post => self.post.unwrap_or(latest),
            ReqPick::Any(p) => RequestId(p.pick(&self.requests)),
        }
    }

    /// The request's result is handed in: it is no longer in flight.
    fn settle(&mut self, request: RequestId) {
        if self.get == Some(request) {
            self.get = None;
        }
        if self.post == Some(request) {
            self.post = None;
        }
    }

    /// The latest WebSocket that opened and did not close.
    fn live_ws(&self) -> Option<WsId> {
        self.ws
            .iter()
            .rev()
            .find(|ws| self.ws_opened.contains(ws) && !self.ws_gone.contains(ws))
            .map(|ws| WsId(*ws))
    }

    fn new_socket(&mut self) -> Nsp {
        self.next_socket += 1;
        Nsp {
            certain: true,
            connected: false,
            was_connected: false,
            socket: self.next_socket,
            offline: Some(0),
            generation: 0,
            burst: 0,
        }
    }

    // ---- what the server hands in ----

    /// Notes what goes in: its size, and whether it may be a bare refusal.
    fn inject_packets(&mut self, packets: &[EioPacket]) {
        for packet in packets {
            if let EioPacket::Message(Message::Text(text)) = packet {
                self.step.injected += text.len();
                self.step.bare_refusal |= is_bare_refusal(text);
            } else {
                self.step.injected += 1;
            }
        }
    }

    fn inject_body(&mut self, body: &Bytes) {
        self.step.injected += body.len();
        if let Ok(packets) = payload::decode(body.clone()) {
            let packets: Vec<EioPacket> = packets.map_while(Result::ok).collect();
            self.inject_packets(&packets);
        }
    }

    fn inject_frame(&mut self, frame: &Frame) {
        if let Ok(packet) = EioPacket::decode_frame(frame.clone()) {
            self.inject_packets(&[packet]);
        }
        self.step.injected += match frame {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        };
    }

    fn build(&self, packets: &[ServerPacket]) -> Vec<EioPacket> {
        let mut out = Vec::new();
        for packet in packets.iter().take(16) {
            out.extend(self.build_one(packet));
        }
        out
    }

    fn build_one(&self, packet: &ServerPacket) -> Vec<EioPacket> {
        let messages = |packet: Packet| -> Vec<EioPacket> {
            packet.encode().messages().map(EioPacket::Message).collect()
        };
        match packet {
            ServerPacket::Accept { nsp, pid, sid } => {
                let mut data = String::from("{");
                if *sid {
                    data.push_str(r#""sid":"s0ck""#);
                }
                if let Some(pid) = pid {
                    if *sid {
                        data.push(',');
                    }
                    data.push_str(&format!(r#""pid":"p{}""#, pid % 4));
                }
                data.push('}');
                messages(Packet::new(
                    PacketKind::Connect,
                    nsp.to_nsp(&self.joined),
                    Some(Str::from(data)),
                ))
            }
            ServerPacket::Packet(spec) => {
                let mut ids = self.client_ids.clone();
                ids.extend(self.awaited.keys().map(|(_, id)| *id));
                spec.build(&self.joined, &ids)
                    .messages()
                    .into_iter()
                    .map(EioPacket::Message)
                    .collect()
            }
            ServerPacket::Miscounted {
                nsp,
                announced,
                sent,
                ack,
            } => {
                let announced = usize::from(announced % 13);
                let mut data = String::from("[\"bin\"");
                write_args(&mut data, &[], announced);
                let mut packet = Packet::new(
                    PacketKind::Event,
                    nsp.to_nsp(&self.joined),
                    Some(data.into()),
                );
                packet.id = ack.map(|a| AckId(u64::from(a)));
                packet.attachments = vec![Bytes::from_static(b"x"); announced];
                let mut out: Vec<EioPacket> = messages(packet).into_iter().take(1).collect();
                for i in 0..usize::from(sent % 16) {
                    out.push(EioPacket::Message(Message::Binary(Bytes::from(vec![
                        i as u8;
                        i + 1
                    ]))));
                }
                out
            }
            ServerPacket::BareRefusal(nsp) => messages(Packet::new(
                PacketKind::ConnectError,
                nsp.to_nsp(&self.joined),
                None,
            )),
            ServerPacket::Engine(spec) => vec![spec.to_packet()],
        }
    }

    // ---- what the client sends ----

    /// Every text message the client sends must decode (its attachments
    /// are not followed: a packet may straddle two engines' goodbyes).
    fn client_sends(&mut self, packet: EioPacket) {
        let EioPacket::Message(Message::Text(text)) = packet else {
            return;
        };
        match permissive_decoder().decode(Message::Text(text.clone())) {
            Ok(Some(packet)) => {
                if packet.kind == PacketKind::Event {
                    self.client_ids.extend(packet.id.map(|id| id.0));
                }
            }
            Ok(None) => {}
            Err(error) => assert!(
                self.invalid_joined,
                "the client sent {text:?}, which a server cannot decode: {error}"
            ),
        }
    }

    // ---- the outputs ----

    fn drain(&mut self, conn: &mut Machine) {
        while let Some(output) = conn.poll_output() {
            if tracing() {
                eprintln!("    -> {output:?}");
            }
            self.step.count += 1;
            assert!(self.step.count < MAX_OUTPUTS_PER_STEP, "unbounded outputs");
            self.output(output);
        }
    }

    fn output(&mut self, output: Output) {
        if self.closed {
            // The step of `close` may fail acks and report the goodbyes;
            // afterwards only the engine's goodbye goes out.
            let allowed = match &output {
                Output::Transport(EioOutput::HttpRequest { method, .. }) => {
                    *method == HttpMethod::Post
                }
                Output::Transport(EioOutput::WsSend { .. } | EioOutput::WsClose { .. }) => true,
                Output::AckFailed {
                    error: AckError::Disconnected,
                    ..
                }
                | Output::Disconnected {
                    reason: DisconnectReason::ClientDisconnect,
                    ..
                }
                | Output::EngineClosed(_) => self.step.closing,
                _ => false,
            };
            assert!(allowed, "{output:?} after close");
        }
        match output {
            Output::Transport(intent) => self.transport(intent),
            Output::EngineOpen => {
                assert!(!self.engine_open, "EngineOpen while open");
                self.engine_open = true;
                self.attempt = Some(0);
                self.slack = 0;
            }
            Output::EngineClosed(_) => {
                assert!(self.engine_open, "EngineClosed without EngineOpen");
                self.engine_open = false;
                let connected: Vec<&Str> = self
                    .nsps
                    .iter()
                    .filter(|(_, n)| n.connected)
                    .map(|(name, _)| name)
                    .collect();
                assert!(
                    connected.is_empty(),
                    "engine closed, {connected:?} connected"
                );
            }
            Output::AuthRequest { nsp } => {
                let state = self.nsps.get(&nsp);
                assert!(state.is_some(), "AuthRequest for {nsp:?}, not joined");
                assert!(
                    !state.is_some_and(|n| n.connected),
                    "AuthRequest for connected {nsp:?}"
                );
                self.auth_asked.push(nsp);
            }
            Output::Connected { nsp, recovered, .. } => {
                assert!(self.engine_open, "Connected {nsp:?} with no engine open");
                self.next_generation += 1;
                let generation = self.next_generation;
                let state = self
                    .nsps
                    .get_mut(&nsp)
                    .unwrap_or_else(|| panic!("Connected {nsp:?}, not joined"));
                assert!(!state.connected, "Connected {nsp:?} twice");
                if recovered {
                    assert!(
                        state.was_connected || !state.certain,
                        "{nsp:?} recovered a session it never had"
                    );
                }
                state.certain = true;
                state.connected = true;
                state.was_connected = true;
                state.offline = Some(0);
                state.generation = generation;
                let socket = state.socket;
                for ((name, _), awaited) in self.awaited.iter_mut() {
                    if *name == nsp && awaited.socket == socket && !awaited.uncertain {
                        awaited.sent = true;
                        awaited.buffered = None;
                    }
                }
                self.step.connected += 1;
            }
            Output::ConnectError { nsp, data } => {
                let state = self
                    .nsps
                    .get_mut(&nsp)
                    .unwrap_or_else(|| panic!("ConnectError {nsp:?}, not joined"));
                assert!(!state.connected, "ConnectError for connected {nsp:?}");
                if data.is_some() {
                    // The server refused it: the namespace is given up.
                    let socket = state.socket;
                    for ((name, _), awaited) in self.awaited.iter_mut() {
                        if *name == nsp && awaited.socket == socket {
                            awaited.orphan = true;
                        }
                    }
                    self.remove(&nsp);
                } else if self.step.bare_refusal {
                    state.certain = false;
                    state.offline = None;
                    let socket = state.socket;
                    for ((name, _), awaited) in self.awaited.iter_mut() {
                        if *name == nsp && awaited.socket == socket {
                            awaited.uncertain = true;
                        }
                    }
                    self.attempt = None;
                }
            }
            Output::Event { nsp, data, ack, .. } => {
                assert!(
                    self.nsps.get(&nsp).is_some_and(|n| n.connected),
                    "Event on {nsp:?}, not connected"
                );
                assert!(data.trim_start().starts_with('['), "event data {data:?}");
                self.server_ids.extend(ack.map(|a| a.0));
                self.step.events += 1;
            }
            Output::Ack { nsp, id, .. } => {
                assert!(
                    self.nsps.get(&nsp).is_some_and(|n| n.connected),
                    "Ack on {nsp:?}, not connected"
                );
                let awaited = self.awaited.remove(&(nsp.clone(), id.0));
                assert!(awaited.is_some(), "Ack {id} on {nsp:?}, not awaited");
                self.freed(&nsp);
            }
            Output::AckFailed { nsp, id, error } => {
                let awaited = self
                    .awaited
                    .remove(&(nsp.clone(), id.0))
                    .unwrap_or_else(|| panic!("AckFailed {id} on {nsp:?}, not awaited"));
                if error == AckError::Timeout {
                    let earliest = awaited
                        .earliest_timeout
                        .unwrap_or_else(|| panic!("ack {id} on {nsp:?} had no timeout"));
                    assert!(
                        self.now >= earliest,
                        "ack {id} on {nsp:?} timed out at {:?}, before {earliest:?}",
                        self.now
                    );
                    if let Some(state) = self.nsps.get_mut(&nsp) {
                        if awaited.buffered.is_some()
                            && awaited.buffered == Some(state.generation)
                            && awaited.socket == state.socket
                        {
                            state.offline = state.offline.map(|n| n - 1);
                        }
                    }
                }
                self.freed(&nsp);
            }
            Output::Disconnected { nsp, reason } => {
                let state = self
                    .nsps
                    .get_mut(&nsp)
                    .unwrap_or_else(|| panic!("Disconnected {nsp:?}, not joined"));
                let socket = state.socket;
                let connected = state.connected;
                match reason {
                    DisconnectReason::ClientDisconnect => {
                        assert!(
                            self.step.closing || self.step.leaving.as_ref() == Some(&nsp),
                            "{nsp:?} disconnected by the client without leave or close"
                        );
                        self.check_all_failed(&nsp, socket, "left");
                        self.remove(&nsp);
                    }
                    DisconnectReason::ServerDisconnect => {
                        assert!(connected, "server disconnected {nsp:?}, not connected");
                        self.check_all_failed(&nsp, socket, "disconnected by the server");
                        self.remove(&nsp);
                    }
                    // Transport, ParseError (and any reason added later).
                    _ => {
                        assert!(connected, "{nsp:?} lost its transport, not connected");
                        state.connected = false;
                        state.offline = Some(0);
                        let stuck: Vec<u64> = self
                            .awaited
                            .iter()
                            .filter(|((name, _), a)| {
                                *name == nsp
                                    && a.socket == socket
                                    && a.sent
                                    && !a.retry
                                    && !a.uncertain
                            })
                            .map(|((_, id), _)| *id)
                            .collect();
                        assert!(
                            stuck.is_empty(),
                            "{nsp:?} disconnected ({reason:?}) with sent acks {stuck:?} still awaited"
                        );
                    }
                }
            }
            Output::ReconnectAttempt(n) => {
                let slack = self.slack + u32::from(self.step.connecting);
                assert!(self.reconnection, "ReconnectAttempt without reconnection");
                assert!(n >= 1, "ReconnectAttempt(0)");
                if let Some(max) = self.max_attempts {
                    assert!(n <= max, "ReconnectAttempt({n}) beyond {max}");
                }
                if let Some(last) = self.attempt {
                    assert!(
                        n > last && n <= last + 1 + slack,
                        "ReconnectAttempt({n}) after attempt {last} (+{slack} connects)"
                    );
                }
                self.attempt = Some(n);
                self.slack = 0;
            }
            Output::Reconnected(n) => {
                let slack = self.slack + u32::from(self.step.connecting);
                assert!(n >= 1, "Reconnected(0)");
                if let Some(last) = self.attempt {
                    assert!(
                        n >= last && n <= last + slack,
                        "Reconnected({n}) after attempt {last} (+{slack} connects)"
                    );
                }
            }
            Output::ReconnectFailed => {
                let slack = self.slack + u32::from(self.step.connecting);
                assert!(self.reconnection, "ReconnectFailed without reconnection");
                let max = self
                    .max_attempts
                    .expect("ReconnectFailed with unlimited attempts");
                if let Some(last) = self.attempt {
                    assert!(
                        last <= max && max <= last + slack,
                        "ReconnectFailed after {last} attempts (+{slack} connects) of {max}"
                    );
                }
                self.attempt = Some(0);
                self.slack = 0;
            }
        }
    }

    fn transport(&mut self, intent: EioOutput) {
        match intent {
            EioOutput::HttpRequest {
                request,
                method,
                body,
                ..
            } => {
                assert!(self.ids.insert(request.0), "IO id {} reused", request.0);
                self.requests.push(request.0);
                match method {
                    HttpMethod::Get => self.get = Some(request),
                    HttpMethod::Post => {
                        self.post = Some(request);
                        let packets = payload::decode(body).expect("POST bodies are UTF-8");
                        for packet in packets {
                            self.client_sends(packet.expect("POST bodies decode"));
                        }
                    }
                }
            }
            EioOutput::WsConnect { ws, .. } => {
                assert!(self.ids.insert(ws.0), "IO id {} reused", ws.0);
                self.ws.push(ws.0);
            }
            EioOutput::WsSend { ws, frame, .. } => {
                assert!(self.ws.contains(&ws.0), "WsSend on unknown {ws:?}");
                assert!(
                    self.ws_opened.contains(&ws.0),
                    "WsSend before {ws:?} opened"
                );
                assert!(!self.ws_gone.contains(&ws.0), "WsSend on closed {ws:?}");
                let packet = EioPacket::decode_frame(frame).expect("client frames decode");
                self.client_sends(packet);
            }
            EioOutput::WsClose { ws } => {
                assert!(self.ws.contains(&ws.0), "WsClose of unknown {ws:?}");
                self.ws_gone.insert(ws.0);
            }
            other => panic!("{other:?} forwarded as a transport intent"),
        }
    }

    /// Something left a namespace's retry queue, or may have.
    fn freed(&mut self, nsp: &Str) {
        if let Some(state) = self.nsps.get_mut(nsp) {
            state.burst = 0;
        }
    }

    /// Before a socket goes (left, or disconnected by the server), every
    /// ack it awaited has failed.
    fn check_all_failed(&self, nsp: &Str, socket: u64, how: &str) {
        let left: Vec<u64> = self
            .awaited
            .iter()
            .filter(|((name, _), a)| name == nsp && a.socket == socket && !a.uncertain)
            .map(|((_, id), _)| *id)
            .collect();
        assert!(
            left.is_empty(),
            "{nsp:?} {how} with acks {left:?} neither answered nor failed"
        );
    }

    /// The socket of `nsp` is gone.
    fn remove(&mut self, nsp: &Str) {
        self.nsps.remove(nsp);
        if self.nsps.is_empty() {
            // The client goes idle: a new connection starts a new run of
            // attempts (Node resets its backoff when the manager closes).
            self.attempt = Some(0);
            self.slack = 0;
        } else if self.nsps.values().all(|n| !n.certain) {
            // Maybe idle.
            self.attempt = None;
        }
    }

    /// Checks after each input.
    fn end_step(&mut self, conn: &mut Machine) {
        self.drain(conn);
        let step = std::mem::take(&mut self.step);
        assert!(
            step.events <= step.injected + step.connected * self.max_buffered,
            "{} events from {} bytes and {} connects",
            step.events,
            step.injected,
            step.connected
        );
        if let Some(at) = conn.poll_timeout().filter(|_| !step.idle) {
            assert!(
                at >= self.now,
                "deadline {at:?} in the past at {:?}",
                self.now
            );
        }
        if let Some(nsp) = &step.leaving {
            assert!(
                !self.nsps.contains_key(nsp),
                "left {nsp:?} without Disconnected"
            );
        }
        let mut names: Vec<Str> = self.joined.clone();
        names.push(Str::from("/"));
        for name in names {
            let connected = self.nsps.get(&name).is_some_and(|n| n.connected);
            assert_eq!(
                conn.is_connected(&name),
                connected,
                "is_connected({name:?})"
            );
        }
        assert!(
            !conn.is_engine_open() || self.engine_open,
            "the engine is open without EngineOpen"
        );
        // It may close without EngineClosed when the client lets it go.
        self.engine_open = conn.is_engine_open();
        if self.closed {
            // Those a bare CONNECT_ERROR may have removed are gone too.
            let left: Vec<&Str> = self
                .nsps
                .iter()
                .filter(|(_, n)| n.certain)
                .map(|(name, _)| name)
                .collect();
            assert!(left.is_empty(), "{left:?} still joined after close");
            self.nsps.clear();
            assert!(!conn.is_engine_open() && conn.engine().is_none());
            if conn.is_shut_down() {
                assert_eq!(conn.poll_timeout(), None, "timer armed after close");
            }
        }
    }
}

/// Whether a text message is a CONNECT_ERROR without data.
fn is_bare_refusal(text: &Str) -> bool {
    let mut decoder = Decoder::new(DecoderConfig::default());
    matches!(
        decoder.decode(Message::Text(text.clone())),
        Ok(Some(Packet {
            kind: PacketKind::ConnectError,
            data: None,
            ..
        }))
    )
}

fn auth_of(entries: &Option<Vec<(u8, LeafSpec)>>) -> Option<Str> {
    entries.as_ref().map(|entries| {
        let mut out = String::new();
        JsonSpec::Object(entries.clone()).write(&mut out);
        Str::from(out)
    })
}

fuzz_target!(|input: Case| {
    let config = input.config.build();
    let mut driver = Driver {
        retry_mode: config.retries > 0,
        ack_timeout: config.ack_timeout,
        max_buffered: config.max_buffered_packets,
        reconnection: config.reconnection,
        max_attempts: config.reconnection_attempts,
        attempt: Some(0),
        ..Driver::default()
    };
    let mut conn = ClientConnection::new(config, SeededRandom::new(input.config.seed));
    driver.end_step(&mut conn);

    for op in input.ops.iter().take(MAX_OPS) {
        let now = driver.now;
        if tracing() {
            eprintln!("[{now:?}] {op:?}");
        }
        let was_closed = driver.closed;
        if conn.poll_timeout().is_some_and(|at| at <= now) {
            // An expiring try may take a plain emit out of a retry queue
            // without a word.
            for state in driver.nsps.values_mut() {
                state.burst = 0;
            }
        }
        if matches!(
            op,
            Op::Join { .. }
                | Op::ProvideAuth { .. }
                | Op::Leave(_)
                | Op::Emit { .. }
                | Op::EmitWithAck { .. }
                | Op::Ack { .. }
                | Op::Close
                | Op::DropConnection
        ) {
            // Commands fire due timers first: let them go before, so that
            // the result and what follows are the command's alone.
            conn.handle_input(now, Input::Timeout);
            driver.drain(&mut conn);
        }
        match op {
            Op::Advance(step) => {
                driver.now = now + ms(u64::from(*step % 5000));
                continue;
            }
            Op::Timeout => {
                conn.handle_input(now, Input::Timeout);
                driver.end_step(&mut conn);
                if let Some(at) = conn.poll_timeout() {
                    assert!(
                        at > now,
                        "deadline {at:?} due after handle_timeout({now:?})"
                    );
                }
                continue;
            }
            Op::Deadline { early } => {
                let Some(at) = conn.poll_timeout() else {
                    continue;
                };
                if *early {
                    let before = at - ms(1);
                    if before < now || before >= at {
                        continue;
                    }
                    driver.now = before;
                    conn.handle_input(before, Input::Timeout);
                    assert_eq!(
                        conn.poll_output(),
                        None,
                        "handle_timeout fired before the deadline {at:?}"
                    );
                } else {
                    driver.now = now.max(at);
                    conn.handle_input(driver.now, Input::Timeout);
                    driver.end_step(&mut conn);
                    if let Some(next) = conn.poll_timeout() {
                        assert!(
                            next > driver.now,
                            "deadline {next:?} due after firing {at:?}"
                        );
                    }
                }
                continue;
            }
            Op::Connect => {
                // It fires due timers, then may take the place of the
                // attempt scheduled next (which then has no output).
                driver.step.connecting = true;
                conn.connect(now);
                driver.drain(&mut conn);
                driver.step.connecting = false;
                driver.slack += 1;
            }
            Op::Join {
                nsp,
                auth,
                on_demand,
            } => {
                let nsp = driver.app_nsp(*nsp);
                let result = conn.join(now, nsp.clone(), auth_of(auth), *on_demand);
                if was_closed {
                    assert_eq!(result, Err(CommandError::Closed), "join after close");
                } else {
                    assert_eq!(result, Ok(()), "join refused");
                    driver.invalid_joined |= !nsp.starts_with('/') || nsp.contains(',');
                    if !driver.joined.contains(&nsp) {
                        driver.joined.push(nsp.clone());
                    }
                    match driver.nsps.get_mut(&nsp) {
                        // It exists now, old or new: which one is unknown.
                        Some(state) => state.certain = true,
                        None => {
                            let state = driver.new_socket();
                            driver.nsps.insert(nsp, state);
                        }
                    }
                }
            }
            Op::ProvideAuth { nsp, auth } => {
                let nsp = driver.app_nsp(*nsp);
                let result = conn.provide_auth(now, &nsp, auth_of(auth));
                match driver.nsps.get(&nsp) {
                    Some(state) if state.certain => assert_eq!(result, Ok(()), "provide_auth"),
                    Some(_) => {}
                    None => assert_eq!(result, Err(CommandError::NotJoined), "provide_auth"),
                }
            }
            Op::Leave(nsp) => {
                let nsp = driver.app_nsp(*nsp);
                driver.step.leaving = Some(nsp.clone());
                let result = conn.leave(now, &nsp);
                match driver.nsps.get(&nsp).map(|s| s.certain) {
                    Some(true) => assert_eq!(result, Ok(()), "leave"),
                    Some(false) => {}
                    None => assert_eq!(result, Err(CommandError::NotJoined), "leave"),
                }
                if result.is_err() {
                    driver.step.leaving = None;
                }
            }
            Op::Emit {
                nsp,
                args,
                attachments: n,
                volatile,
            } => {
                let nsp = driver.app_nsp(*nsp);
                let packet = event(nsp.clone(), "cli", args, attachments(*n));
                let decodes = placeholders_decode(&packet);
                let result = conn.emit(now, packet, *volatile);
                // The arguments may hold objects shaped like placeholders:
                // with attachments, one that indexes none of them would make
                // a server close the connection, so the emit is refused,
                // whatever the state; nothing else is.
                if decodes {
                    assert_ne!(
                        result,
                        Err(CommandError::InvalidPlaceholder),
                        "a valid emit"
                    );
                    driver.emitted(&nsp, result.map(|()| None), *volatile, None);
                } else {
                    assert_eq!(
                        result,
                        Err(CommandError::InvalidPlaceholder),
                        "an emit a server cannot decode"
                    );
                }
            }
            Op::EmitWithAck {
                nsp,
                attachments: n,
                timeout_ms,
            } => {
                let nsp = driver.app_nsp(*nsp);
                let timeout = timeout_ms.map(|t| ms(u64::from(t % 3000)));
                let packet = event(nsp.clone(), "cli", &[], attachments(*n));
                let result = conn.emit_with_ack(now, packet, timeout);
                driver.emitted(&nsp, result.map(Some), false, Some(timeout));
            }
            Op::Ack {
                nsp,
                id,
                attachments: n,
            } => {
                let nsp = driver.app_nsp(*nsp);
                let id = AckId(id.pick(&driver.server_ids));
                let attachments = attachments(*n);
                let mut data = String::from("[\"ok\"");
                write_args(&mut data, &[], attachments.len());
                let result = conn.ack(now, &nsp, id, Str::from(data), attachments);
                let connected = driver.nsps.get(&nsp).is_some_and(|n| n.connected);
                if !connected {
                    assert_eq!(
                        result,
                        Err(CommandError::NotJoined),
                        "ack while not connected"
                    );
                }
            }
            Op::Close => {
                driver.step.closing = true;
                driver.closed = true;
                conn.close(now);
            }
            Op::DropConnection => {
                let reason = CloseReason::TransportError(TransportError::Overloaded);
                conn.drop_connection(now, reason);
            }
            Op::Open(spec) => {
                let ws =
                    driver.ws.last().copied().filter(|ws| {
                        !driver.ws_opened.contains(ws) && !driver.ws_gone.contains(ws)
                    });
                let get = driver.get;
                match (ws, get) {
                    (Some(ws), get) if get.map_or(true, |g| g.0 < ws) => {
                        driver.ws_opened.insert(ws);
                        conn.handle_input(now, Input::WsOpen(WsId(ws)));
                        driver.drain(&mut conn);
                        let frame = spec.frame();
                        driver.inject_frame(&frame);
                        conn.handle_input(
                            now,
                            Input::WsFrame {
                                ws: WsId(ws),
                                frame,
                            },
                        );
                    }
                    (_, Some(get)) => {
                        let body = spec.payload(&[]);
                        driver.inject_body(&body);
                        driver.settle(get);
                        conn.handle_input(
                            now,
                            Input::HttpResponse {
                                request: get,
                                status: 200,
                                body,
                            },
                        );
                    }
                    _ => driver.step.idle = true,
                }
            }
            Op::Deliver { websocket, packets } => {
                let packets = driver.build(packets);
                let ws = driver.live_ws();
                match (ws, driver.get) {
                    (Some(ws), get) if *websocket || get.is_none() => {
                        driver.step.idle = packets.is_empty();
                        driver.inject_packets(&packets);
                        for packet in packets {
                            conn.handle_input(
                                now,
                                Input::WsFrame {
                                    ws,
                                    frame: packet.encode_frame(),
                                },
                            );
                            driver.drain(&mut conn);
                        }
                    }
                    (_, Some(get)) => {
                        driver.inject_packets(&packets);
                        driver.settle(get);
                        conn.handle_input(
                            now,
                            Input::HttpResponse {
                                request: get,
                                status: 200,
                                body: payload::encode(&packets),
                            },
                        );
                    }
                    _ => driver.step.idle = true,
                }
            }
            Op::HttpResponse {
                request,
                status,
                body,
            } => {
                let request = driver.pick_request(*request);
                let body = match body {
                    ResponseBody::Handshake(spec, packets) => {
                        let packets = driver.build(packets);
                        spec.payload(&packets)
                    }
                    ResponseBody::Packets(packets) => payload::encode(&driver.build(packets)),
                    ResponseBody::Body(spec) => spec.to_body(LIMIT),
                };
                driver.inject_body(&body);
                driver.settle(request);
                conn.handle_input(
                    now,
                    Input::HttpResponse {
                        request,
                        status: status.code(),
                        body,
                    },
                );
            }
            Op::HttpError(request) => {
                let request = driver.pick_request(*request);
                driver.settle(request);
                conn.handle_input(now, Input::HttpError(request));
            }
            Op::WsOpen(ws) => {
                let ws = ws.pick(&driver.ws);
                if !driver.ws_gone.contains(&ws) {
                    driver.ws_opened.insert(ws);
                }
                conn.handle_input(now, Input::WsOpen(WsId(ws)));
            }
            Op::WsFrame { ws, frame } => {
                let ws = WsId(ws.pick(&driver.ws));
                match frame {
                    WsFrameSpec::Handshake(spec) => {
                        let frame = spec.frame();
                        driver.inject_frame(&frame);
                        conn.handle_input(now, Input::WsFrame { ws, frame });
                    }
                    WsFrameSpec::Packet(packet) => {
                        let packets = driver.build_one(packet);
                        driver.inject_packets(&packets);
                        for packet in packets {
                            conn.handle_input(
                                now,
                                Input::WsFrame {
                                    ws,
                                    frame: packet.encode_frame(),
                                },
                            );
                            driver.drain(&mut conn);
                        }
                    }
                    WsFrameSpec::Frame(spec) => {
                        let frame = spec.to_frame(LIMIT);
                        driver.inject_frame(&frame);
                        conn.handle_input(now, Input::WsFrame { ws, frame });
                    }
                }
            }
            Op::WsClosed(ws) => {
                // Due timers fire first (a retry may go out on it): the
                // WebSocket is closed for what comes after.
                conn.handle_input(now, Input::Timeout);
                driver.drain(&mut conn);
                let ws = ws.pick(&driver.ws);
                driver.ws_gone.insert(ws);
                conn.handle_input(now, Input::WsClosed(WsId(ws)));
            }
        }
        if driver.step.injected > 0 {
            // The server may have acknowledged queued emits.
            for state in driver.nsps.values_mut() {
                state.burst = 0;
            }
        }
        driver.end_step(&mut conn);
    }

    // Past every deadline: without retries, every ack with a timeout has
    // been answered or has failed.
    driver.now = driver.now + Duration::from_secs(24 * 3600);
    conn.handle_input(driver.now, Input::Timeout);
    driver.end_step(&mut conn);
    let unresolved: Vec<(&Str, u64, &str)> = driver
        .awaited
        .iter()
        .filter(|(_, a)| !a.retry && !a.uncertain && a.earliest_timeout.is_some())
        .map(|((nsp, id), a)| (nsp, *id, if a.orphan { "refused" } else { "joined" }))
        .collect();
    assert!(unresolved.is_empty(), "acks {unresolved:?} never resolved");
});

/// Whether a server's decoder takes the placeholders of `packet`'s data
/// for its attachments (as a binary event on `/`).
fn placeholders_decode(packet: &Packet) -> bool {
    let Some(data) = packet
        .data
        .as_ref()
        .filter(|_| !packet.attachments.is_empty())
    else {
        return true;
    };
    let text = format!("5{}-{}", packet.attachments.len(), data);
    permissive_decoder()
        .decode(Message::Text(Str::from(text.as_str())))
        .is_ok()
}

/// A server's decoder without size limits: what it refuses, no server
/// takes.
fn permissive_decoder() -> Decoder {
    Decoder::new({
        let mut c = DecoderConfig::default();
        c.max_attachments = usize::MAX;
        c.max_attachment_bytes = usize::MAX;
        c
    })
}

impl Driver {
    /// Checks the result of `emit` (`timeout: None`) or `emit_with_ack`
    /// (`Some(timeout)`, the result the ack id) against the model.
    fn emitted(
        &mut self,
        nsp: &Str,
        result: Result<Option<AckId>, CommandError>,
        volatile: bool,
        timeout: Option<Option<Duration>>,
    ) {
        let Some(state) = self.nsps.get(nsp).cloned() else {
            assert_eq!(
                result,
                Err(CommandError::NotJoined),
                "emit to {nsp:?}, not joined"
            );
            return;
        };
        if state.certain {
            assert_ne!(
                result,
                Err(CommandError::NotJoined),
                "emit to joined {nsp:?}"
            );
        }
        let queued = self.retry_mode && !volatile;
        if queued {
            if result.is_ok() {
                let state = self.nsps.get_mut(nsp).expect("joined");
                state.burst += 1;
                assert!(
                    state.burst <= self.max_buffered,
                    "{} emits queued on {nsp:?} at once, limit {}",
                    state.burst,
                    self.max_buffered
                );
            }
        } else if !state.connected && state.certain {
            if volatile {
                assert_eq!(result, Ok(None), "volatile emit while not connected");
            } else if let Some(buffered) = state.offline {
                assert_eq!(
                    result.is_ok(),
                    buffered < self.max_buffered,
                    "emit to {nsp:?} with {buffered} of {} buffered: {result:?}",
                    self.max_buffered
                );
            }
            if result.is_ok() && !volatile {
                let state = self.nsps.get_mut(nsp).expect("joined");
                state.offline = state.offline.map(|n| n + 1);
            }
        }
        let Ok(Some(id)) = result else {
            return;
        };
        let key = (nsp.clone(), id.0);
        assert!(
            !self.awaited.contains_key(&key),
            "ack id {id} on {nsp:?} handed out again while awaited: {:?}",
            self.awaited[&key]
        );
        let earliest_timeout = if self.retry_mode {
            self.ack_timeout
        } else {
            timeout.flatten()
        }
        .map(|t| self.now + t);
        self.awaited.insert(
            key,
            Awaited {
                socket: state.socket,
                earliest_timeout,
                retry: self.retry_mode,
                sent: !self.retry_mode && state.connected,
                buffered: (!self.retry_mode && !state.connected).then_some(state.generation),
                orphan: false,
                uncertain: !state.certain,
            },
        );
    }
}
