//! The server's async driver itself (hyper, the session tasks, the
//! Socket.IO connection tasks, the application's handlers) on a
//! deterministic executor with a virtual clock (`engineio_fuzz::sim`):
//! scheduling drawn from a seed, connections as in-memory pipes, a hostile
//! client writing requests, bodies (bursts of thousands of packets
//! included), partial bodies, upgrades, WebSocket frames and raw bytes,
//! resetting and half-closing connections and not reading them; and an
//! application whose handlers answer, echo, sleep, stall at a gate, ask
//! the client back, broadcast or disconnect.
//!
//! Raw Engine.IO (an application that echoes with `EngineSocket::send`,
//! which waits for room: the cycle of waits the polling wedge was) or
//! Socket.IO, with small queues and limits so that every bound is reached.
//!
//! Checked:
//! * no panic, no task polled more than `POLL_BUDGET` times without the
//!   clock moving (a busy loop);
//! * memory: at most `MAX_LIVE_BYTES` allocated at any time;
//! * after the client stops, the clock runs on (through every timer) with
//!   the stalled handlers still stalled: every session ends, and the server
//!   closes every connection (every request was answered, or it timed out
//!   and its connection was closed);
//! * then the gates open and the server is dropped: every task ends, and
//!   what the run allocated is freed.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engineio_fuzz::sim::{self, ClientEnd, Executor, Gate, Sim};
use engineio_fuzz::sio::PacketSpec as SioSpec;
use engineio_fuzz::{tracing, BodySpec, FrameSpec};
use engineio_proto::{payload, Packet as EioPacket, Str};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use smol_hyper::rt::FuturesIo;
use socketio::engine::{EngineConfig, EngineServer, EngineSocket, GenerateId};
use socketio::payload::Payload;
use socketio::runtime::Runtime;
use socketio::server::{AckSender, SocketIo, SocketIoConfig, SocketRef};

/// Bytes allocated now, and the most at once since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most bytes a run may hold at once beyond what was live before it: its
/// queues and limits are small, so this is generous.
const MAX_LIVE_BYTES: usize = 64 << 20;
/// Bytes a finished run may leave allocated (caches filled once per
/// thread, such as hyper's date header).
const MAX_LEFT_BYTES: usize = 256 << 10;
/// Polls without the clock moving before the run counts as a busy loop.
const POLL_BUDGET: usize = 500_000;
/// Connections open at once.
const CONNECTIONS: usize = 6;
/// Each direction of a connection holds this many bytes in flight.
const PIPE_CAPACITY: usize = 16 << 10;
/// Rounds of writing, running and reading before the world counts as
/// never settling (the clock does not move meanwhile, so nothing can go on
/// for ever legitimately).
const SETTLE_ROUNDS: usize = 100_000;
/// Steps per run.
const MAX_STEPS: usize = 128;
/// How long the clock runs on after the client stops: past every timeout
/// of the configuration (the longest are the 30 s body and 60 s header
/// timeouts at most, and Socket.IO's 45 s connect timeout).
const DRAIN: Duration = Duration::from_secs(600);
/// Timers fired while draining, at most.
const DRAIN_TIMERS: usize = 100_000;

#[derive(Arbitrary, Debug)]
struct Setup {
    seed: u64,
    socketio: bool,
    ping_interval_ms: u16,
    ping_timeout_ms: u16,
    max_payload: u16,
    max_buffered_packets: u8,
    app_queue: u8,
    ws_queue: u8,
    body_timeout_ms: u16,
    header_timeout_ms: u16,
    max_body_chunks: u8,
    max_pending_events: u8,
    compression: bool,
    on_connect: Behaviour,
    behaviours: Vec<Behaviour>,
}

/// What the application does with a message (raw) or an event (Socket.IO).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Behaviour {
    Nothing,
    /// Raw: sends it back. Socket.IO: acks it.
    Answer,
    /// Sends it back as an event (Socket.IO), then acks.
    Echo,
    Sleep(u16),
    /// Waits at the gate the harness opens after the drain.
    Stall,
    /// Asks the client back (Socket.IO `emit_with_ack`, with or without a
    /// timeout) and acks with the answer; raw: sends it twice.
    AskBack(Option<u16>),
    /// Joins a room and emits to it.
    Broadcast,
    Disconnect,
    CloseConnection,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Handshake {
        conn: u8,
        websocket: bool,
    },
    Poll {
        conn: u8,
        session: u8,
    },
    Post {
        conn: u8,
        session: u8,
        body: Body,
    },
    Upgrade {
        conn: u8,
        session: u8,
    },
    Frame {
        conn: u8,
        frame: Frame,
    },
    Raw {
        conn: u8,
        bytes: Vec<u8>,
    },
    /// The client half-closes.
    Shutdown {
        conn: u8,
    },
    /// The client drops the connection.
    Reset {
        conn: u8,
    },
    /// The client stops reading this connection, or reads it again.
    ToggleReading {
        conn: u8,
    },
    Advance {
        ms: u16,
    },
    NextTimer,
    OpenGate,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Eio(BodySpec),
    Sio(Vec<SioSpec>),
    /// A CONNECT (optionally) and `count` events in one body.
    Burst {
        count: u16,
        connect: bool,
        acks: bool,
    },
    /// Declares `declared` bytes, sends `sent` of them.
    Partial {
        declared: u16,
        sent: u16,
    },
}

#[derive(Arbitrary, Debug)]
enum Frame {
    Eio(FrameSpec),
    Sio(SioSpec),
    Burst {
        count: u8,
    },
    Ping(Vec<u8>),
    Close,
    /// A frame header claiming this many bytes, and none of them.
    Claim(u64),
}

#[derive(Arbitrary, Debug)]
struct Run {
    setup: Setup,
    steps: Vec<Step>,
}

/// One connection as the client sees it.
struct Conn {
    end: ClientEnd,
    /// Bytes written but not yet taken by the pipe.
    outbox: Vec<u8>,
    /// Bytes read and not yet parsed.
    inbox: Vec<u8>,
    websocket: bool,
    /// Raw bytes were written: what comes back may not parse (a `HEAD`'s
    /// response announces a body it does not carry).
    raw: bool,
    reading: bool,
    requests: usize,
    responses: usize,
}

struct World {
    executor: Executor,
    sim: Sim,
    server: Server,
    conns: Vec<Option<Conn>>,
    sids: Vec<String>,
    path: &'static str,
    gate: Gate,
    trace: bool,
}

#[derive(Clone)]
enum Server {
    Raw(EngineServer<Sim>),
    Sio(SocketIo<Sim>),
}

fn ms(value: u16, max: u64) -> Duration {
    Duration::from_millis(u64::from(value) % max + 1)
}

fn behaviour(behaviours: &[Behaviour], n: usize) -> Behaviour {
    if behaviours.is_empty() {
        Behaviour::Answer
    } else {
        behaviours[n % behaviours.len()]
    }
}

fn engine_config(setup: &Setup) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = ms(setup.ping_interval_ms, 5_000);
    config.protocol.ping_timeout = ms(setup.ping_timeout_ms, 5_000);
    config.protocol.upgrade_timeout = Duration::from_secs(10);
    config.protocol.max_payload = usize::from(setup.max_payload).max(64);
    config.protocol.max_buffered_packets = usize::from(setup.max_buffered_packets % 16) + 1;
    config.app_queue = usize::from(setup.app_queue % 8) + 1;
    config.ws_queue = usize::from(setup.ws_queue % 16) + 1;
    config.body_timeout = ms(setup.body_timeout_ms, 30_000);
    config.header_timeout = ms(setup.header_timeout_ms, 60_000);
    config.max_body_chunks = usize::from(setup.max_body_chunks % 64) + 1;
    if !setup.compression {
        config.http_compression = None;
    }
    // Session ids in order, so that a run replays the same way.
    let next = Arc::new(AtomicUsize::new(0));
    config.generate_id = Some(GenerateId::new(move |_| {
        format!("sid{:05}", next.fetch_add(1, Ordering::Relaxed))
    }));
    config
}

fn raw_server(sim: &Sim, setup: &Setup, gate: &Gate) -> EngineServer<Sim> {
    let behaviours: Arc<[Behaviour]> = setup.behaviours.iter().copied().take(8).collect();
    let spawner = sim.clone();
    let runtime = sim.clone();
    let gate = gate.clone();
    let config = engine_config(setup);
    EngineServer::new(sim.clone(), config, move |socket: EngineSocket| {
        let behaviours = behaviours.clone();
        let runtime = runtime.clone();
        let gate = gate.clone();
        spawner.spawn(Box::pin(echo(socket, behaviours, runtime, gate)));
    })
}

/// The raw application: each message as `behaviours` say, in order, one at
/// a time; `send` waits while the session's buffer is full.
async fn echo(mut socket: EngineSocket, behaviours: Arc<[Behaviour]>, sim: Sim, gate: Gate) {
    let mut n = 0;
    while let Some(message) = socket.recv().await {
        let times = match behaviour(&behaviours, n) {
            Behaviour::Nothing => 0,
            Behaviour::Answer | Behaviour::Echo | Behaviour::Broadcast => 1,
            Behaviour::AskBack(_) => 2,
            Behaviour::Sleep(t) => {
                sim.sleep_until(sim.clock().now_std() + ms(t, 10_000)).await;
                1
            }
            Behaviour::Stall => {
                gate.wait().await;
                1
            }
            Behaviour::Disconnect | Behaviour::CloseConnection => {
                socket.close().await;
                0
            }
        };
        n += 1;
        for _ in 0..times {
            if socket.send(message.clone()).await.is_err() {
                return;
            }
        }
    }
}

fn sio_server(sim: &Sim, setup: &Setup, gate: &Gate) -> SocketIo<Sim> {
    let mut config = SocketIoConfig::default();
    config.engine = engine_config(setup);
    config.engine.path = "/socket.io/".into();
    config.max_pending_events = usize::from(setup.max_pending_events % 64) + 1;
    let io = SocketIo::new(sim.clone(), config);
    let behaviours: Arc<[Behaviour]> = setup.behaviours.iter().copied().take(8).collect();
    let on_connect = setup.on_connect;
    let counter = Arc::new(AtomicUsize::new(0));
    let sim = sim.clone();
    let gate = gate.clone();
    io.on_connection("/", move |socket: SocketRef| {
        let behaviours = behaviours.clone();
        let counter = counter.clone();
        let sim = sim.clone();
        let gate = gate.clone();
        async move {
            for event in ["message", "chat"] {
                let behaviours = behaviours.clone();
                let counter = counter.clone();
                let sim = sim.clone();
                let gate = gate.clone();
                socket.on(
                    event,
                    move |socket: SocketRef, payload: Payload, ack: Option<AckSender>| {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let what = behaviour(&behaviours, n);
                        let sim = sim.clone();
                        let gate = gate.clone();
                        async move { handle(what, socket, payload, ack, &sim, &gate).await }
                    },
                );
            }
            match on_connect {
                Behaviour::Sleep(t) => sim.sleep_until(sim.clock().now_std() + ms(t, 10_000)).await,
                Behaviour::Stall => gate.wait().await,
                Behaviour::Disconnect => {
                    let _ = socket.disconnect().await;
                }
                _ => {}
            }
        }
    });
    io
}

/// A Socket.IO handler doing `what`.
async fn handle(
    what: Behaviour,
    socket: SocketRef,
    payload: Payload,
    ack: Option<AckSender>,
    sim: &Sim,
    gate: &Gate,
) {
    let mut answer = payload.clone();
    match what {
        Behaviour::Nothing => return,
        Behaviour::Answer => {}
        Behaviour::Echo => {
            let _ = socket.emit_payload("echo", payload).await;
        }
        Behaviour::Sleep(t) => sim.sleep_until(sim.clock().now_std() + ms(t, 10_000)).await,
        Behaviour::Stall => gate.wait().await,
        Behaviour::AskBack(timeout) => {
            let timeout = timeout.map(|t| ms(t, 10_000));
            match socket.emit_with_ack("ask", payload, timeout).await {
                Ok(reply) => answer = reply,
                Err(_) => return,
            }
        }
        Behaviour::Broadcast => {
            socket.join("room");
            let _ = socket.to("room").emit_payload("room", payload).await;
        }
        Behaviour::Disconnect => {
            let _ = socket.disconnect().await;
            return;
        }
        Behaviour::CloseConnection => {
            let _ = socket.close_connection().await;
            return;
        }
    }
    if let Some(ack) = ack {
        let _ = ack.send_payload(answer).await;
    }
}

/// An Engine.IO frame as a client's WebSocket text or binary frame.
fn data_frame(frame: engineio_proto::Frame) -> Vec<u8> {
    match frame {
        engineio_proto::Frame::Text(text) => ws_frame(1, text.as_bytes()),
        engineio_proto::Frame::Binary(bytes) => ws_frame(2, &bytes),
    }
}

/// A client's WebSocket frame: FIN, `opcode`, masked. Written here, not
/// taken from `socketio`'s encoder: the harness must also build against
/// old code (`mutants/old_code.patch`), and an oracle should not share
/// the code it checks.
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Socket.IO packets as Engine.IO messages.
fn sio_messages(specs: &[SioSpec]) -> Vec<EioPacket> {
    let seen = [Str::from("/")];
    specs
        .iter()
        .take(32)
        .flat_map(|spec| spec.build(&seen, &[0, 1, 2, 3]).messages())
        .map(EioPacket::Message)
        .collect()
}

/// Socket.IO packets as Engine.IO messages (`0` is a CONNECT to `/`, `2`
/// an EVENT): a CONNECT first when `connect`, then `count` events, each
/// with an ack id when `acks`.
fn burst(count: usize, connect: bool, acks: bool) -> Vec<EioPacket> {
    let mut packets = Vec::with_capacity(count + 1);
    if connect {
        packets.push(EioPacket::Message(engineio_proto::Message::Text(
            Str::from("0"),
        )));
    }
    for i in 0..count {
        let text = if acks {
            format!("2{i}[\"message\",{i}]")
        } else {
            format!("2[\"chat\",{i}]")
        };
        packets.push(EioPacket::Message(engineio_proto::Message::Text(
            Str::from(text),
        )));
    }
    packets
}

impl World {
    fn new(setup: &Setup) -> World {
        let (executor, sim) = Executor::new(setup.seed);
        let gate = Gate::default();
        let (server, path) = if setup.socketio {
            (Server::Sio(sio_server(&sim, setup, &gate)), "/socket.io/")
        } else {
            (Server::Raw(raw_server(&sim, setup, &gate)), "/engine.io/")
        };
        World {
            executor,
            sim,
            server,
            conns: (0..CONNECTIONS).map(|_| None).collect(),
            sids: Vec::new(),
            path,
            gate,
            trace: tracing(),
        }
    }

    /// Why sessions closed so far, for the trace.
    fn closed(&self) -> Vec<(&'static str, u64)> {
        let stats = match &self.server {
            Server::Raw(engine) => engine.stats(),
            Server::Sio(io) => io.engine().stats(),
        };
        stats.closed().collect()
    }

    fn session_count(&self) -> usize {
        match &self.server {
            Server::Raw(engine) => engine.session_count(),
            Server::Sio(io) => io.engine().session_count(),
        }
    }

    /// The connection in slot `conn`, opened (and served) if there is none.
    fn conn(&mut self, conn: u8) -> &mut Conn {
        let slot = usize::from(conn) % CONNECTIONS;
        if self.conns[slot].is_none() {
            let (client, server) = sim::connection(PIPE_CAPACITY);
            let peer = SocketAddr::from(([127, 0, 0, 1], 40_000 + slot as u16));
            let io = FuturesIo::new(server);
            let task = match self.server.clone() {
                Server::Raw(engine) => Box::pin(socketio::http::serve_connection(
                    self.sim.clone(),
                    io,
                    peer,
                    engine,
                )) as socketio::BoxFuture,
                Server::Sio(sio) => Box::pin(socketio::http::serve_connection(
                    self.sim.clone(),
                    io,
                    peer,
                    sio,
                )),
            };
            self.sim.spawn(task);
            self.conns[slot] = Some(Conn {
                end: client,
                outbox: Vec::new(),
                inbox: Vec::new(),
                websocket: false,
                raw: false,
                reading: true,
                requests: 0,
                responses: 0,
            });
        }
        self.conns[slot].as_mut().expect("just opened")
    }

    fn sid(&self, session: u8) -> String {
        if self.sids.is_empty() {
            "unknown".into()
        } else {
            self.sids[usize::from(session) % self.sids.len()].clone()
        }
    }

    fn request(&mut self, conn: u8, head: String, body: &[u8]) {
        let conn = self.conn(conn);
        conn.outbox.extend_from_slice(head.as_bytes());
        conn.outbox.extend_from_slice(body);
        conn.requests += 1;
    }

    fn query(&self, transport: &str, sid: Option<&str>) -> String {
        let mut query = format!("{}?EIO=4&transport={transport}", self.path);
        if let Some(sid) = sid {
            query.push_str("&sid=");
            query.push_str(sid);
        }
        query
    }

    fn upgrade_request(&self, sid: Option<&str>) -> String {
        format!(
            "GET {} HTTP/1.1\r\nHost: sim\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            self.query("websocket", sid)
        )
    }

    fn post(&mut self, conn: u8, session: u8, body: &[u8], declared: usize) {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: sim\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {declared}\r\n\r\n",
            self.query("polling", Some(&self.sid(session)))
        );
        self.request(conn, head, body);
    }

    fn step(&mut self, step: &Step, limit: usize) {
        match step {
            Step::Handshake { conn, websocket } => {
                if *websocket {
                    let head = self.upgrade_request(None);
                    self.request(*conn, head, b"");
                } else {
                    let head = format!(
                        "GET {} HTTP/1.1\r\nHost: sim\r\n\r\n",
                        self.query("polling", None)
                    );
                    self.request(*conn, head, b"");
                }
            }
            Step::Poll { conn, session } => {
                let head = format!(
                    "GET {} HTTP/1.1\r\nHost: sim\r\n\r\n",
                    self.query("polling", Some(&self.sid(*session)))
                );
                self.request(*conn, head, b"");
            }
            Step::Post {
                conn,
                session,
                body,
            } => match body {
                Body::Eio(spec) => {
                    let body = spec.to_body(limit);
                    self.post(*conn, *session, &body, body.len());
                }
                Body::Sio(specs) => {
                    let body = payload::encode(&sio_messages(specs));
                    self.post(*conn, *session, &body, body.len());
                }
                Body::Burst {
                    count,
                    connect,
                    acks,
                } => {
                    let body = payload::encode(&burst(usize::from(*count % 4096), *connect, *acks));
                    self.post(*conn, *session, &body, body.len());
                }
                Body::Partial { declared, sent } => {
                    let declared = usize::from(*declared) + 1;
                    let sent = usize::from(*sent) % declared;
                    let body = vec![b'4'; sent];
                    self.post(*conn, *session, &body, declared);
                }
            },
            Step::Upgrade { conn, session } => {
                let head = self.upgrade_request(Some(&self.sid(*session)));
                self.request(*conn, head, b"");
            }
            Step::Frame { conn, frame } => {
                let bytes = match frame {
                    Frame::Eio(spec) => data_frame(spec.to_frame(limit)),
                    Frame::Sio(spec) => sio_messages(std::slice::from_ref(spec))
                        .iter()
                        .flat_map(|packet| data_frame(packet.encode_frame()))
                        .collect(),
                    Frame::Burst { count } => burst(usize::from(*count), true, true)
                        .iter()
                        .flat_map(|packet| data_frame(packet.encode_frame()))
                        .collect(),
                    Frame::Ping(data) => ws_frame(9, &data[..data.len().min(125)]),
                    Frame::Close => ws_frame(8, &1000u16.to_be_bytes()),
                    Frame::Claim(len) => {
                        let mut header = vec![0x81, 0x80 | 127];
                        header.extend_from_slice(&len.to_be_bytes());
                        header.extend_from_slice(&[0; 4]);
                        header
                    }
                };
                self.conn(*conn).outbox.extend_from_slice(&bytes);
            }
            Step::Raw { conn, bytes } => {
                let bytes = &bytes[..bytes.len().min(engineio_fuzz::MAX_RAW)];
                let conn = self.conn(*conn);
                conn.raw = true;
                conn.outbox.extend_from_slice(bytes);
            }
            Step::Shutdown { conn } => {
                if let Some(conn) = &self.conns[usize::from(*conn) % CONNECTIONS] {
                    conn.end.shutdown();
                }
            }
            Step::Reset { conn } => {
                self.conns[usize::from(*conn) % CONNECTIONS] = None;
            }
            Step::ToggleReading { conn } => {
                if let Some(conn) = &mut self.conns[usize::from(*conn) % CONNECTIONS] {
                    conn.reading = !conn.reading;
                }
            }
            Step::Advance { ms } => self.executor.advance(Duration::from_millis(u64::from(*ms))),
            Step::NextTimer => {
                self.executor.advance_to_next_timer();
            }
            Step::OpenGate => self.gate.open(),
        }
        self.settle();
    }

    /// Runs the server until it waits for the client or the clock, the
    /// client writing what it has and reading what it is sent.
    fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let mut moved = false;
            for conn in self.conns.iter_mut().flatten() {
                if !conn.end.writable() {
                    // Nobody will read it.
                    conn.outbox.clear();
                }
                if !conn.outbox.is_empty() {
                    let taken = conn.end.write(&conn.outbox);
                    conn.outbox.drain(..taken);
                    moved |= taken > 0;
                }
            }
            let polls = match self.executor.run(POLL_BUDGET) {
                Ok(polls) => polls,
                Err(sim::Livelock) => panic!("tasks kept waking for {POLL_BUDGET} polls"),
            };
            moved |= polls > 0;
            for slot in 0..CONNECTIONS {
                let Some(conn) = &mut self.conns[slot] else {
                    continue;
                };
                if !conn.reading {
                    continue;
                }
                let before = conn.inbox.len();
                conn.end.read(&mut conn.inbox);
                moved |= conn.inbox.len() > before;
                let sids = parse(conn, self.trace, slot);
                self.sids.extend(sids);
                // The newest 32 stay addressable.
                let excess = self.sids.len().saturating_sub(32);
                self.sids.drain(..excess);
            }
            if !moved {
                return;
            }
        }
        panic!("the server and the client kept exchanging for {SETTLE_ROUNDS} rounds without the clock moving");
    }
}

/// Takes the complete responses (and WebSocket frames) out of `conn.inbox`;
/// returns the session ids of handshakes among them.
fn parse(conn: &mut Conn, trace: bool, slot: usize) -> Vec<String> {
    let mut sids = Vec::new();
    loop {
        if conn.websocket {
            let Some((opcode, payload, used)) = server_frame(&conn.inbox) else {
                break;
            };
            if trace {
                eprintln!(
                    "conn {slot} <- ws {opcode} {:?}",
                    String::from_utf8_lossy(&payload)
                );
            }
            if opcode == 1 && payload.starts_with(b"0{") {
                sids.extend(sid_of(&payload));
            }
            conn.inbox.drain(..used);
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&conn.inbox) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) => break,
            Err(_) if conn.raw => {
                conn.inbox.clear();
                break;
            }
            Err(error) => panic!("the server wrote a malformed response ({error}): {:?}", {
                String::from_utf8_lossy(&conn.inbox[..conn.inbox.len().min(200)])
            }),
        };
        let status = response.code.unwrap_or(0);
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        if status == 101 {
            conn.websocket = true;
            conn.responses += 1;
            conn.inbox.drain(..head);
            continue;
        }
        if conn.inbox.len() < head + length {
            break;
        }
        let body = &conn.inbox[head..head + length];
        if trace {
            eprintln!(
                "conn {slot} <- {status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
        if status == 200 && body.starts_with(b"0{") {
            sids.extend(sid_of(body));
        }
        // Raw bytes may make requests too (or get a 400): responses are
        // counted for the report, not checked against requests.
        conn.responses += 1;
        conn.inbox.drain(..head + length);
    }
    sids
}

/// A server's (unmasked) frame at the start of `bytes`: opcode, payload,
/// bytes used.
fn server_frame(bytes: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if bytes.len() < 2 {
        return None;
    }
    assert_eq!(bytes[1] & 0x80, 0, "a server frame is never masked");
    let (len, start) = match bytes[1] & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2usize),
    };
    let payload = bytes.get(start..start.checked_add(len)?)?;
    Some((bytes[0] & 0x0f, payload.to_vec(), start + len))
}

fn sid_of(open: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(open).ok()?;
    let start = text.find("\"sid\":\"")? + 7;
    let end = start + text[start..].find('"')?;
    Some(text[start..end].to_owned())
}

fuzz_target!(|run: Run| {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    {
        let mut world = World::new(&run.setup);
        let limit = usize::from(run.setup.max_payload).max(64);
        for step in run.steps.iter().take(MAX_STEPS) {
            if world.trace {
                eprintln!("step {step:?}");
            }
            world.step(step, limit);
            if world.trace {
                eprintln!(
                    "sessions {}, closed {:?}",
                    world.session_count(),
                    world.closed()
                );
            }
        }

        // The client stops sending and reads everything; the clock runs on
        // through every timer, the stalled handlers still stalled.
        for conn in world.conns.iter_mut().flatten() {
            conn.reading = true;
            conn.outbox.clear();
        }
        world.settle();
        let deadline = sim::now() + DRAIN;
        let mut timers = 0;
        while sim::now() < deadline && world.executor.advance_to_next_timer().is_some() {
            timers += 1;
            assert!(
                timers <= DRAIN_TIMERS,
                "timers kept firing: {DRAIN_TIMERS} in the drain"
            );
            world.settle();
        }
        assert_eq!(
            world.session_count(),
            0,
            "a session outlived every timeout with its client gone"
        );
        for (slot, conn) in world.conns.iter().enumerate() {
            if let Some(conn) = conn {
                assert!(
                    conn.end.closed_by_server(),
                    "connection {slot} still open: {} requests, {} responses",
                    conn.requests,
                    conn.responses
                );
            }
        }

        // Every handler may finish now; then nothing is left running.
        world.gate.open();
        for conn in &mut world.conns {
            *conn = None;
        }
        world.settle();
        let World {
            mut executor,
            server,
            ..
        } = world;
        drop(server);
        for _ in 0..DRAIN_TIMERS {
            if let Err(sim::Livelock) = executor.run(POLL_BUDGET) {
                panic!("tasks kept waking for {POLL_BUDGET} polls");
            }
            if executor.live_tasks() == 0 || executor.advance_to_next_timer().is_none() {
                break;
            }
        }
        assert_eq!(executor.live_tasks(), 0, "tasks outlived the server");
    }
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(peak <= MAX_LIVE_BYTES, "a run held {peak} bytes at once");
    let left = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    assert!(left <= MAX_LEFT_BYTES, "a run left {left} bytes allocated");
});
