//! The Socket.IO client: Node's `Manager` and its namespace `Socket`s as one
//! state machine.
//!
//! # Theory of operation
//!
//! A [`ClientConnection`] owns an Engine.IO [`eio::Client`] (a fresh one per
//! (re)connection) and any number of namespace sockets multiplexed over it.
//! Its outputs are the engine's IO intents, wrapped as [`Output::Transport`],
//! plus application events; its inputs are the IO results, forwarded to the
//! engine with the same method names.
//!
//! Namespaces: [`ClientConnection::join`] makes a namespace *active*. Whenever
//! the engine is open, every active namespace that is not connected sends a
//! CONNECT with its auth (merged with `pid`/`offset` for connection state
//! recovery once the server granted a `pid`). A namespace whose auth must be
//! recomputed per attempt (Node's `auth` callback) asks for it with
//! [`Output::AuthRequest`], answered by [`ClientConnection::provide_auth`].
//!
//! Receiving: events that arrive between CONNECT and the server's answer (a
//! server restoring a session sends the missed events first) are held, as
//! Node's `receiveBuffer`, and delivered right after [`Output::Connected`].
//!
//! Sending: events to a connected namespace go out at once; otherwise they wait
//! in a bounded offline buffer (volatile ones are dropped) and go out, in order,
//! right after the namespace connects. Acks carry deadlines in one ordered set.
//! With `retries > 0` every emit goes through a per-namespace queue with one
//! packet in flight, re-sent after `ack_timeout` until acknowledged or out of
//! tries (at least once delivery).
//!
//! Reconnection: when the engine closes for any reason but
//! [`ClientConnection::close`] (or the server disconnecting the last
//! namespace), the machine waits a backoff delay (Node's formula with
//! injected randomness) and opens a new engine, up to
//! `reconnection_attempts`. A failed or timed-out open counts as an attempt.

use crate::ack::AckTable;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::time::Duration;

use bytes::Bytes;
pub use engineio_proto::client::Input;
use engineio_proto::client::{self as eio};
use engineio_proto::{CloseReason, Instant, Message, Str, TimerKind, TimerTable};
use serde::de::{self, Deserializer as _, IgnoredAny, SeqAccess, Visitor};

use crate::backoff::{Backoff, RandomSource};
use crate::packet::{
    AckId, DecodeError, DecoderConfig, EncodedPacket, Packet, PacketKind, MAIN_NAMESPACE,
};
use crate::parser::{PacketDecoder, SharedParser};
use alloc::boxed::Box;

/// Client settings, with the Node client's defaults.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Engine.IO settings (transports, upgrade).
    pub engine: eio::ClientConfig,
    /// Whether to reconnect after losing the connection. Node: true.
    pub reconnection: bool,
    /// Attempts before giving up; `None` is Node's `Infinity`.
    pub reconnection_attempts: Option<u32>,
    /// First reconnection delay. Node: 1 s.
    pub reconnection_delay: Duration,
    /// Largest reconnection delay. Node: 5 s.
    pub reconnection_delay_max: Duration,
    /// Jitter factor, 0 to 1. Node: 0.5.
    pub randomization_factor: f64,
    /// How long opening the engine may take before the attempt fails. Node: 20 s.
    pub timeout: Duration,
    /// Deadline of each try when `retries > 0` (Node's `ackTimeout`).
    pub ack_timeout: Option<Duration>,
    /// Extra tries of an unacknowledged emit (Node's `retries`). 0: no queue.
    pub retries: u32,
    /// Packets a namespace buffers while disconnected before emits fail.
    pub max_buffered_packets: usize,
    /// Limits on incoming binary packets.
    pub decoder: DecoderConfig,
    /// The packets' wire format (Node's `parser`): JSON by default; the
    /// peer must speak the same.
    pub parser: SharedParser,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            engine: eio::ClientConfig::default(),
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            timeout: Duration::from_secs(20),
            ack_timeout: None,
            retries: 0,
            max_buffered_packets: 1024,
            decoder: DecoderConfig::default(),
            parser: SharedParser::default(),
        }
    }
}

/// Why a namespace socket disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server disconnected the socket; it will not reconnect by itself.
    ServerDisconnect,
    /// The application left the namespace or closed the client.
    ClientDisconnect,
    /// The server sent something that is not Socket.IO.
    ParseError(DecodeError),
    /// The Engine.IO session ended; the client reconnects if configured to.
    Transport(CloseReason),
}

impl DisconnectReason {
    /// The reason string Node's client gives for the same event.
    pub const fn as_node_str(&self) -> &'static str {
        match self {
            DisconnectReason::ServerDisconnect => "io server disconnect",
            DisconnectReason::ClientDisconnect => "io client disconnect",
            DisconnectReason::ParseError(_) => "parse error",
            DisconnectReason::Transport(reason) => reason.as_node_str(),
        }
    }

    /// Whether the client will try to get the socket back on its own.
    pub const fn will_reconnect(&self) -> bool {
        matches!(
            self,
            DisconnectReason::ParseError(_) | DisconnectReason::Transport(_)
        )
    }
}

pub use crate::ack::AckError;

/// What the client asks of its driver or tells its application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An Engine.IO IO intent to carry out (request, WebSocket
    /// connect/send/close), or [`eio::Output::Upgraded`]: the session moved
    /// to WebSocket, so kept-alive polling connections will not be used
    /// again.
    Transport(eio::Output),
    /// The Engine.IO session opened (Node's Manager `open`).
    EngineOpen,
    /// The Engine.IO session ended (Node's Manager `close`).
    EngineClosed(CloseReason),
    /// Answer with [`ClientConnection::provide_auth`] so CONNECT can be sent.
    AuthRequest {
        /// The namespace.
        nsp: Str,
    },
    /// The namespace socket is connected.
    Connected {
        /// The namespace.
        nsp: Str,
        /// The socket id the server gave.
        sid: Str,
        /// Whether the server restored the previous session (rooms, data,
        /// missed packets follow as events).
        recovered: bool,
    },
    /// The server refused the namespace (middleware error), or the engine
    /// failed to open while the socket was connecting.
    ConnectError {
        /// The namespace.
        nsp: Str,
        /// The CONNECT_ERROR payload (`{"message":…,"data":…}`), if any.
        data: Option<Str>,
    },
    /// An event from the server.
    Event {
        /// The namespace.
        nsp: Str,
        /// The JSON array `[name, ...args]`.
        data: Str,
        /// Binary attachments referenced by placeholders in `data`.
        attachments: Vec<Bytes>,
        /// Set when the server awaits an answer: reply with [`ClientConnection::ack`].
        ack: Option<AckId>,
    },
    /// The server answered an emit.
    Ack {
        /// The namespace.
        nsp: Str,
        /// Which emit.
        id: AckId,
        /// The JSON array of the answer's arguments, if any.
        data: Option<Str>,
        /// Binary attachments of the answer.
        attachments: Vec<Bytes>,
    },
    /// An awaited ack will not come.
    AckFailed {
        /// The namespace.
        nsp: Str,
        /// Which emit.
        id: AckId,
        /// Why.
        error: AckError,
    },
    /// The namespace socket disconnected.
    Disconnected {
        /// The namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// A reconnection attempt starts (Node's `reconnect_attempt`), numbered from 1.
    ReconnectAttempt(u32),
    /// A reconnection succeeded after this many attempts (Node's `reconnect`).
    Reconnected(u32),
    /// Out of attempts (Node's `reconnect_failed`); the client is idle.
    ReconnectFailed,
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The namespace was never joined or was left.
    #[error("namespace not joined")]
    NotJoined,
    /// The offline buffer or the engine's buffer is full.
    #[error("send buffer full")]
    BufferFull,
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// The packet has attachments, and a binary placeholder in its data
    /// (`{"_placeholder":true,"num":N}`) that indexes none of them: a
    /// server would refuse it and close the connection.
    #[error("a binary placeholder in the data indexes no attachment")]
    InvalidPlaceholder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnginePhase {
    /// Not connected and not trying (before `connect`, after giving up).
    Idle,
    Opening,
    Open,
    /// Waiting for the backoff delay before the next attempt.
    WaitingToReconnect,
    /// `close` was called: nothing happens any more.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SocketPhase {
    /// Joined, waiting for the engine to open.
    Waiting,
    /// Waiting for [`ClientConnection::provide_auth`].
    AwaitingAuth,
    /// CONNECT sent.
    Connecting,
    Connected,
}

/// An emit that went through the retry queue.
#[derive(Debug, Clone)]
struct Queued {
    packet: Packet,
    tries: u32,
    /// A try is in flight (its deadline, with `ack_timeout`, is in
    /// `ClientConnection::tries`).
    in_flight: bool,
    /// The application asked for the ack (otherwise it is the queue's own).
    wants_ack: bool,
    /// Whether the WebSocket may compress it.
    compress: bool,
}

#[derive(Debug, Clone)]
struct Socket {
    phase: SocketPhase,
    /// The CONNECT payload, a JSON object.
    auth: Option<Str>,
    auth_on_demand: bool,
    /// Private session id granted by the server, for recovery.
    pid: Option<Str>,
    /// The last offset seen on an event, for recovery.
    last_offset: Option<Str>,
    /// Packets waiting for the socket to connect, with their ack ids.
    offline: VecDeque<(Option<AckId>, EncodedPacket)>,
    /// Events that arrived after CONNECT was sent and before the server's
    /// answer (Node's `receiveBuffer`): a server restoring a session sends
    /// the missed events first. Delivered right after `Connected`.
    early_events: VecDeque<Packet>,
    retry_queue: VecDeque<Queued>,
    next_ack: u64,
}

impl Socket {
    fn new(auth: Option<Str>, auth_on_demand: bool) -> Socket {
        Socket {
            phase: SocketPhase::Waiting,
            auth,
            auth_on_demand,
            pid: None,
            last_offset: None,
            offline: VecDeque::new(),
            early_events: VecDeque::new(),
            retry_queue: VecDeque::new(),
            next_ack: 0,
        }
    }

    fn take_ack_id(&mut self) -> AckId {
        let id = AckId(self.next_ack);
        self.next_ack += 1;
        id
    }
}

/// The client's own timers (ack deadlines live in the ack tables).
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The engine being opened took longer than `timeout`: the attempt failed.
    Open,
    /// The backoff delay before the next reconnection attempt is over.
    Reconnect,
}

impl TimerKind for Timer {
    const COUNT: usize = 2;
    fn slot(self) -> usize {
        self as usize
    }
}

/// The client: one engine connection, many namespaces. See the [module docs](self).
#[derive(Debug)]
pub struct ClientConnection<R> {
    config: ClientConfig,
    random: R,
    backoff: Backoff,
    phase: EnginePhase,
    engine: Option<eio::Client>,
    /// An engine closed on purpose that still has its goodbye to send (over
    /// polling, the DISCONNECT and CLOSE packets wait for the POST in
    /// flight). It gets its IO results until it reports itself closed.
    closing: Option<eio::Client>,
    /// Numbering continues across engines so stale IO results are ignored.
    next_io_id: u64,
    decoder: Box<dyn PacketDecoder>,
    sockets: BTreeMap<Str, Socket>,
    /// Every ack deadline, in firing order.
    /// Acks awaited without retries, by namespace and id, with whether
    /// their packet was sent yet.
    acks: AckTable<(Str, AckId), bool>,
    /// The deadlines of the retry queues' tries in flight.
    tries: AckTable<(Str, AckId), ()>,
    /// The open timeout and the reconnection delay.
    timers: TimerTable<Timer, { Timer::COUNT }>,
    /// Attempts of the current reconnection run (0: not reconnecting).
    reconnecting: u32,
    /// A socket.io 2.x server's own join of the main namespace, on the
    /// current engine.
    legacy_main: LegacyMain,
    outputs: VecDeque<Output>,
}

impl<R: RandomSource> ClientConnection<R> {
    /// A client that has not connected; `random` drives the backoff jitter.
    pub fn new(config: ClientConfig, random: R) -> Self {
        ClientConnection {
            backoff: Backoff::new(
                config.reconnection_delay,
                config.reconnection_delay_max,
                config.randomization_factor,
            ),
            decoder: config.parser.decoder(&config.decoder),
            config,
            random,
            phase: EnginePhase::Idle,
            engine: None,
            closing: None,
            next_io_id: 1,
            sockets: BTreeMap::new(),
            acks: AckTable::default(),
            tries: AckTable::default(),
            timers: TimerTable::default(),
            reconnecting: 0,
            legacy_main: LegacyMain::Awaiting,
            outputs: VecDeque::new(),
        }
    }

    /// Opens the engine (Node's `manager.open()`); joined namespaces connect
    /// once it is open.
    pub fn connect(&mut self, now: Instant) {
        self.fire_timers(now);
        if matches!(
            self.phase,
            EnginePhase::Idle | EnginePhase::WaitingToReconnect
        ) {
            self.timers.clear(Timer::Reconnect);
            self.open_engine(now);
        }
    }

    /// Joins `nsp` with an auth object (JSON). With `auth_on_demand`, the auth
    /// is asked for with [`Output::AuthRequest`] before every CONNECT instead.
    /// Opens the engine if needed.
    pub fn join(
        &mut self,
        now: Instant,
        nsp: Str,
        auth: Option<Str>,
        auth_on_demand: bool,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        if self.phase == EnginePhase::Closed {
            return Err(CommandError::Closed);
        }
        if !self.sockets.contains_key(&nsp) {
            self.sockets
                .insert(nsp.clone(), Socket::new(auth, auth_on_demand));
        }
        match self.phase {
            EnginePhase::Open => self.start_connect(now, &nsp),
            EnginePhase::Idle => self.open_engine(now),
            _ => {}
        }
        Ok(())
    }

    /// The answer to an [`Output::AuthRequest`]: sends CONNECT with `auth`.
    pub fn provide_auth(
        &mut self,
        now: Instant,
        nsp: &str,
        auth: Option<Str>,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        let socket = self.sockets.get_mut(nsp).ok_or(CommandError::NotJoined)?;
        socket.auth = auth;
        if socket.phase == SocketPhase::AwaitingAuth {
            self.send_connect(now, nsp);
        }
        Ok(())
    }

    /// Leaves `nsp` (DISCONNECT to the server if connected). Leaving the last
    /// namespace closes the engine, as in Node.
    pub fn leave(&mut self, now: Instant, nsp: &str) -> Result<(), CommandError> {
        self.fire_timers(now);
        let socket = self.sockets.remove(nsp).ok_or(CommandError::NotJoined)?;
        self.say_goodbye(now, Str::from(nsp), &socket);
        if self.sockets.is_empty() {
            self.shut_engine(now, EnginePhase::Idle);
        }
        Ok(())
    }

    /// Emits an event (`packet.kind` must be an event; its id is ignored).
    /// `volatile` drops it instead of buffering while disconnected.
    pub fn emit(
        &mut self,
        now: Instant,
        packet: Packet,
        volatile: bool,
    ) -> Result<(), CommandError> {
        self.emit_compress(now, packet, volatile, true)
    }

    /// [`Client::emit`], saying whether the WebSocket may compress the
    /// packet (Node's `socket.compress(false)`).
    pub fn emit_compress(
        &mut self,
        now: Instant,
        packet: Packet,
        volatile: bool,
        compress: bool,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        checked(&packet)?;
        if self.config.retries > 0 && !volatile {
            return self.enqueue(now, packet, false, compress).map(|_| ());
        }
        let socket = self
            .sockets
            .get(&packet.nsp)
            .ok_or(CommandError::NotJoined)?;
        let connected = socket.phase == SocketPhase::Connected;
        let nsp = packet.nsp.clone();
        let encoded = self
            .config
            .parser
            .encode(&Packet { id: None, ..packet })
            .with_compress(compress);
        if connected {
            self.write(now, &encoded)
        } else if volatile {
            Ok(())
        } else {
            self.buffer_offline(&nsp, None, encoded)
        }
    }

    /// Emits an event whose answer comes as [`Output::Ack`], or
    /// [`Output::AckFailed`] after `timeout` (or every retry). Returns the id
    /// the outputs will name.
    pub fn emit_with_ack(
        &mut self,
        now: Instant,
        packet: Packet,
        timeout: Option<Duration>,
    ) -> Result<AckId, CommandError> {
        self.emit_with_ack_compress(now, packet, timeout, true)
    }

    /// [`Client::emit_with_ack`], saying whether the WebSocket may
    /// compress the packet.
    pub fn emit_with_ack_compress(
        &mut self,
        now: Instant,
        packet: Packet,
        timeout: Option<Duration>,
        compress: bool,
    ) -> Result<AckId, CommandError> {
        self.fire_timers(now);
        checked(&packet)?;
        if self.config.retries > 0 {
            return self.enqueue(now, packet, true, compress);
        }
        let socket = self
            .sockets
            .get_mut(&packet.nsp)
            .ok_or(CommandError::NotJoined)?;
        let id = socket.take_ack_id();
        let connected = socket.phase == SocketPhase::Connected;
        let nsp = packet.nsp.clone();
        let encoded = self
            .config
            .parser
            .encode(&Packet {
                id: Some(id),
                ..packet
            })
            .with_compress(compress);
        if connected {
            self.write(now, &encoded)?;
        } else {
            self.buffer_offline(&nsp, Some(id), encoded)?;
        }
        self.acks
            .insert((nsp, id), timeout.map(|t| now + t), connected);
        Ok(id)
    }

    /// Answers the server's event `id` on `nsp` with `data` (a JSON array).
    pub fn ack(
        &mut self,
        now: Instant,
        nsp: &str,
        id: AckId,
        data: Str,
        attachments: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        let packet = Packet {
            kind: PacketKind::Ack,
            nsp: Str::from(nsp),
            id: Some(id),
            data: Some(data),
            attachments,
        };
        checked(&packet)?;
        let socket = self.sockets.get(nsp).ok_or(CommandError::NotJoined)?;
        if socket.phase != SocketPhase::Connected {
            return Err(CommandError::NotJoined);
        }
        self.write(now, &self.config.parser.encode(&packet))
    }

    /// Closes everything for good (Node's `socket.disconnect()` on every
    /// namespace plus `manager` close): no reconnection.
    pub fn close(&mut self, now: Instant) {
        self.fire_timers(now);
        let sockets = core::mem::take(&mut self.sockets);
        for (nsp, socket) in sockets {
            self.say_goodbye(now, nsp, &socket);
        }
        self.shut_engine(now, EnginePhase::Closed);
    }

    /// Drops the connection as if its transport had failed with `reason`:
    /// connected sockets get [`Output::Disconnected`] with it, acks of
    /// events already sent fail, and the client reconnects as configured.
    /// For a driver that cannot keep up with what the server sends. Does
    /// nothing unless the connection is opening or open.
    pub fn drop_connection(&mut self, now: Instant, reason: CloseReason) {
        self.fire_timers(now);
        if matches!(self.phase, EnginePhase::Opening | EnginePhase::Open) {
            self.engine_lost(now, reason);
        }
    }

    /// Whether the namespace socket is connected.
    pub fn is_connected(&self, nsp: &str) -> bool {
        self.sockets
            .get(nsp)
            .is_some_and(|s| s.phase == SocketPhase::Connected)
    }

    /// Outputs produced and not yet taken with [`ClientConnection::poll_output`]:
    /// a driver that cannot keep up (a slow network) refuses new emits
    /// past a bound of its choosing.
    pub fn queued_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The settings the client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether the engine is open.
    pub fn is_engine_open(&self) -> bool {
        self.phase == EnginePhase::Open
    }

    /// The engine of the current attempt, if any.
    pub fn engine(&self) -> Option<&eio::Client> {
        self.engine.as_ref()
    }

    // ---- inputs ----

    /// Feeds the result of a transport output, or [`Input::Timeout`]. Due
    /// timers fire first (ack deadlines, the open timeout, the reconnection
    /// delay, the engine's heartbeat watchdog); then the input goes to the
    /// engine and to a closing one: ids are unique across engines, so only
    /// the engine that made the request acts on it (a clone of a body or
    /// frame is a reference count). Drain [`ClientConnection::poll_output`]
    /// next.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.fire_timers(now);
        if matches!(input, Input::Timeout) {
            return;
        }
        if let Some(engine) = self.engine.as_mut() {
            engine.handle_input(now, input.clone());
        }
        self.drain_engine(now);
        if let Some(closing) = self.closing.as_mut() {
            closing.handle_input(now, input);
        }
        self.drain_closing();
    }

    /// Fires due timers: ack deadlines, the open timeout, the reconnection
    /// delay and the engine's heartbeat watchdog.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(((nsp, id), ())) = self.tries.pop_expired(now) {
            self.try_expired(now, nsp, id);
        }
        while let Some(((nsp, id), _)) = self.acks.pop_expired(now) {
            if let Some(socket) = self.sockets.get_mut(&nsp) {
                // Drop the packet if it is still waiting to be sent.
                socket.offline.retain(|(buffered, _)| *buffered != Some(id));
            }
            let error = AckError::Timeout;
            self.outputs.push_back(Output::AckFailed { nsp, id, error });
        }
        if self.timers.take_expired(Timer::Open, now).is_some() {
            // The open took too long: this attempt failed.
            self.engine_lost(
                now,
                CloseReason::TransportError(engineio_proto::TransportError::RequestFailed),
            );
        }
        if self.timers.take_expired(Timer::Reconnect, now).is_some() {
            self.outputs
                .push_back(Output::ReconnectAttempt(self.reconnecting));
            self.open_engine(now);
        }
        if let Some(engine) = self.engine.as_mut() {
            engine.handle_input(now, Input::Timeout);
        }
        self.drain_engine(now);
        if let Some(closing) = self.closing.as_mut() {
            closing.handle_input(now, Input::Timeout);
        }
        self.drain_closing();
    }

    /// The next output, if any. Drain after every call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest deadline of the client and its engine.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.acks.next_deadline(),
            self.tries.next_deadline(),
            self.timers.next(),
            self.engine.as_ref().and_then(eio::Client::poll_timeout),
            self.closing.as_ref().and_then(eio::Client::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----

    /// Carries out what the closing engine still asks for; drops it once
    /// it is closed. Messages the server sends meanwhile are ignored.
    fn drain_closing(&mut self) {
        let Some(closing) = self.closing.as_mut() else {
            return;
        };
        while let Some(output) = closing.poll_output() {
            match output {
                eio::Output::HttpRequest { .. }
                | eio::Output::WsSend { .. }
                | eio::Output::WsClose { .. }
                | eio::Output::WsConnect { .. } => {
                    self.outputs.push_back(Output::Transport(output));
                }
                _ => {}
            }
        }
        if closing.is_closed() {
            self.closing = None;
        }
    }

    /// Whether no engine is open, opening or still sending its goodbye:
    /// after [`ClientConnection::close`], the driver may stop once this
    /// holds and the outputs are drained.
    pub fn is_shut_down(&self) -> bool {
        self.engine.is_none() && self.closing.is_none()
    }

    fn open_engine(&mut self, now: Instant) {
        let mut engine = eio::Client::with_first_id(self.config.engine.clone(), self.next_io_id);
        self.phase = EnginePhase::Opening;
        self.timers.set(Timer::Open, now + self.config.timeout);
        if engine.connect(now).is_err() {
            self.engine = None;
            return self.engine_lost(
                now,
                CloseReason::TransportError(engineio_proto::TransportError::RequestFailed),
            );
        }
        self.engine = Some(engine);
        self.decoder = self.config.parser.decoder(&self.config.decoder);
        self.drain_engine(now);
    }

    /// Closes the engine without reconnecting, leaving the client in `phase`.
    /// An engine with a goodbye still to send is kept as `closing`.
    fn shut_engine(&mut self, now: Instant, phase: EnginePhase) {
        self.legacy_main = LegacyMain::Awaiting;
        self.phase = phase;
        self.timers.clear(Timer::Open);
        self.timers.clear(Timer::Reconnect);
        self.reconnecting = 0;
        // A later open starts a fresh run of attempts (Node's Manager resets
        // its backoff when it closes).
        self.backoff.reset();
        if let Some(engine) = self.engine.as_mut() {
            engine.close(now);
        }
        self.drain_engine(now);
        if let Some(engine) = self.engine.take() {
            // A closing engine sends at most its last POST: keep its ids
            // apart from those of the next engine.
            self.next_io_id = engine.next_id() + 4;
            self.closing = Some(engine);
            self.drain_closing();
        }
    }

    fn drain_engine(&mut self, now: Instant) {
        loop {
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            let Some(output) = engine.poll_output() else {
                self.next_io_id = engine.next_id();
                return;
            };
            match output {
                eio::Output::Opened(_) => self.engine_opened(now),
                eio::Output::Message(message) => self.handle_message(now, message),
                eio::Output::Closed(reason) => {
                    self.next_io_id = engine.next_id();
                    self.engine = None;
                    if !matches!(self.phase, EnginePhase::Closed | EnginePhase::Idle) {
                        self.engine_lost(now, reason);
                    }
                    return;
                }
                eio::Output::UpgradeFailed => {}
                transport => self.outputs.push_back(Output::Transport(transport)),
            }
        }
    }

    fn engine_opened(&mut self, now: Instant) {
        self.phase = EnginePhase::Open;
        self.timers.clear(Timer::Open);
        if self.reconnecting > 0 {
            self.outputs
                .push_back(Output::Reconnected(self.reconnecting));
            self.reconnecting = 0;
        }
        self.backoff.reset();
        self.outputs.push_back(Output::EngineOpen);
        let namespaces: Vec<Str> = self.sockets.keys().cloned().collect();
        for nsp in namespaces {
            self.start_connect(now, &nsp);
        }
    }

    /// The engine closed or failed to open: every socket is disconnected, and
    /// a reconnection is scheduled if allowed.
    fn engine_lost(&mut self, now: Instant, reason: CloseReason) {
        self.legacy_main = LegacyMain::Awaiting;
        let was_open = self.phase == EnginePhase::Open;
        if let Some(mut engine) = self.engine.take() {
            engine.close(now);
            while let Some(output) = engine.poll_output() {
                if let eio::Output::WsClose { .. } = output {
                    self.outputs.push_back(Output::Transport(output));
                }
            }
            self.next_io_id = engine.next_id();
        }
        self.timers.clear(Timer::Open);
        let namespaces: Vec<Str> = self.sockets.keys().cloned().collect();
        for nsp in namespaces {
            let Some(socket) = self.sockets.get_mut(&nsp) else {
                continue;
            };
            let phase = core::mem::replace(&mut socket.phase, SocketPhase::Waiting);
            self.transport_lost_acks(&nsp);
            match phase {
                SocketPhase::Connected => {
                    self.outputs.push_back(Output::Disconnected {
                        nsp,
                        reason: DisconnectReason::Transport(reason.clone()),
                    });
                }
                _ if !was_open => self
                    .outputs
                    .push_back(Output::ConnectError { nsp, data: None }),
                _ => {}
            }
        }
        if was_open {
            self.outputs.push_back(Output::EngineClosed(reason));
        }
        self.schedule_reconnect(now);
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if !self.config.reconnection || self.sockets.is_empty() {
            self.phase = EnginePhase::Idle;
            return;
        }
        let attempts = self.backoff.attempts();
        if self
            .config
            .reconnection_attempts
            .is_some_and(|max| attempts >= max)
        {
            self.backoff.reset();
            self.reconnecting = 0;
            self.phase = EnginePhase::Idle;
            self.outputs.push_back(Output::ReconnectFailed);
            return;
        }
        let delay = self.backoff.next_delay(&mut self.random);
        self.reconnecting = self.backoff.attempts();
        self.timers.set(Timer::Reconnect, now + delay);
        self.phase = EnginePhase::WaitingToReconnect;
    }

    fn start_connect(&mut self, now: Instant, nsp: &str) {
        let Some(socket) = self.sockets.get_mut(nsp) else {
            return;
        };
        if socket.phase != SocketPhase::Waiting {
            return;
        }
        if socket.auth_on_demand {
            socket.phase = SocketPhase::AwaitingAuth;
            self.outputs.push_back(Output::AuthRequest {
                nsp: Str::from(nsp),
            });
        } else {
            self.send_connect(now, nsp);
        }
    }

    /// Whether the server speaks Socket.IO v4 over Engine.IO v3 (socket.io
    /// 2.x): it joins the client to the main namespace by itself, takes a
    /// namespace's auth as the query of its CONNECT, answers without ids
    /// and knows no recovery.
    pub fn is_legacy(&self) -> bool {
        self.config.engine.protocol == engineio_proto::Protocol::V3
    }

    fn send_connect(&mut self, now: Instant, nsp: &str) {
        let legacy = self.is_legacy();
        let Some(socket) = self.sockets.get_mut(nsp) else {
            return;
        };
        socket.phase = SocketPhase::Connecting;
        socket.early_events.clear();
        if legacy {
            if nsp == MAIN_NAMESPACE {
                match self.legacy_main {
                    // The server joins it by itself: wait for its CONNECT.
                    LegacyMain::Awaiting => return,
                    // It already came, before this socket wanted it.
                    LegacyMain::Arrived => {
                        let packet = Packet::new(PacketKind::Connect, Str::from(nsp), None);
                        return self.handle_packet(now, packet);
                    }
                    // Taken and left since: ask again. A 2.x server answers
                    // only when `/` has middlewares ("packet already sent
                    // in initial handshake" otherwise), so the socket counts
                    // as connected at once; a refusal still disconnects it.
                    LegacyMain::Used => {
                        let packet = Packet::new(PacketKind::Connect, Str::from(nsp), None);
                        let encoded = self.config.parser.encode(&packet);
                        let _ = self.write(now, &encoded);
                        return self.handle_packet(now, packet);
                    }
                }
            }
            let target = legacy_namespace(nsp, socket.auth.as_deref());
            let packet = self.config.parser.encode(&Packet::new(
                PacketKind::Connect,
                Str::from(target),
                None,
            ));
            let _ = self.write(now, &packet);
            return;
        }
        let data = connect_payload(
            socket.auth.as_ref(),
            socket.pid.as_ref(),
            socket.last_offset.as_ref(),
        );
        let packet =
            self.config
                .parser
                .encode(&Packet::new(PacketKind::Connect, Str::from(nsp), data));
        let _ = self.write(now, &packet);
    }

    /// Queues every message of a packet on the engine, or none.
    fn write(&mut self, now: Instant, packet: &EncodedPacket) -> Result<(), CommandError> {
        let Some(engine) = self.engine.as_mut() else {
            return Err(CommandError::Closed);
        };
        if engine.send_capacity() < packet.message_count() {
            return Err(CommandError::BufferFull);
        }
        for message in packet.messages() {
            engine
                .send_compress(now, message, packet.compress())
                .map_err(|_| CommandError::Closed)?;
        }
        self.drain_engine(now);
        Ok(())
    }

    fn buffer_offline(
        &mut self,
        nsp: &str,
        id: Option<AckId>,
        packet: EncodedPacket,
    ) -> Result<(), CommandError> {
        let limit = self.config.max_buffered_packets;
        let socket = self.sockets.get_mut(nsp).ok_or(CommandError::NotJoined)?;
        if socket.offline.len() >= limit {
            return Err(CommandError::BufferFull);
        }
        socket.offline.push_back((id, packet));
        Ok(())
    }

    fn enqueue(
        &mut self,
        now: Instant,
        packet: Packet,
        wants_ack: bool,
        compress: bool,
    ) -> Result<AckId, CommandError> {
        let limit = self.config.max_buffered_packets;
        let socket = self
            .sockets
            .get_mut(&packet.nsp)
            .ok_or(CommandError::NotJoined)?;
        if socket.retry_queue.len() >= limit {
            return Err(CommandError::BufferFull);
        }
        let id = socket.take_ack_id();
        let nsp = packet.nsp.clone();
        socket.retry_queue.push_back(Queued {
            packet: Packet {
                id: Some(id),
                ..packet
            },
            tries: 0,
            in_flight: false,
            wants_ack,
            compress,
        });
        self.drain_queue(now, &nsp);
        Ok(id)
    }

    /// Sends the head of the retry queue if nothing is in flight.
    fn drain_queue(&mut self, now: Instant, nsp: &str) {
        let Some(socket) = self.sockets.get_mut(nsp) else {
            return;
        };
        if socket.phase != SocketPhase::Connected {
            return;
        }
        let Some(head) = socket.retry_queue.front_mut() else {
            return;
        };
        if head.in_flight {
            return;
        }
        let deadline = self.config.ack_timeout.map(|t| now + t);
        head.in_flight = true;
        head.tries += 1;
        let encoded = self
            .config
            .parser
            .encode(&head.packet)
            .with_compress(head.compress);
        let id = head.packet.id.unwrap_or(AckId(0));
        if deadline.is_some() {
            self.tries.insert((Str::from(nsp), id), deadline, ());
        }
        let _ = self.write(now, &encoded);
    }

    /// The try in flight of a retry queue's head timed out: send it again,
    /// or fail it once out of retries.
    fn try_expired(&mut self, now: Instant, nsp: Str, id: AckId) {
        let retries = self.config.retries;
        let Some(socket) = self.sockets.get_mut(&nsp) else {
            return;
        };
        let head = socket
            .retry_queue
            .front()
            .map(|q| (q.packet.id, q.tries, q.wants_ack));
        if let Some((Some(head_id), tries, wants_ack)) = head {
            if head_id == id {
                if tries > retries {
                    socket.retry_queue.pop_front();
                    if wants_ack {
                        self.outputs.push_back(Output::AckFailed {
                            nsp: nsp.clone(),
                            id,
                            error: AckError::Timeout,
                        });
                    }
                } else if let Some(head) = socket.retry_queue.front_mut() {
                    head.in_flight = false;
                }
                self.drain_queue(now, &nsp);
            }
        }
    }

    /// The application let go of a socket: DISCONNECT to the server if it
    /// was connected, its awaited acks fail, `Disconnected` is reported.
    fn say_goodbye(&mut self, now: Instant, nsp: Str, socket: &Socket) {
        if socket.phase == SocketPhase::Connected {
            let packet =
                self.config
                    .parser
                    .encode(&Packet::new(PacketKind::Disconnect, nsp.clone(), None));
            let _ = self.write(now, &packet);
        }
        self.forget_socket(&nsp, socket);
        self.outputs.push_back(Output::Disconnected {
            nsp,
            reason: DisconnectReason::ClientDisconnect,
        });
    }

    /// Fails the awaited acks of `nsp` that `pick` chooses (by whether
    /// their packet was sent), disarming their deadlines.
    fn fail_acks(&mut self, nsp: &Str, mut pick: impl FnMut(bool) -> bool) {
        for ((nsp, id), _) in self
            .acks
            .take_where(|(of, _), sent| of == nsp && pick(*sent))
        {
            let error = AckError::Disconnected;
            self.outputs.push_back(Output::AckFailed { nsp, id, error });
        }
    }

    /// A socket that is gone for good (left, closed, disconnected or
    /// refused by the server): every ack it awaits fails, those of its
    /// retry queue included, and none of their deadlines stays armed (the
    /// next socket of that namespace numbers its acks from 0 again).
    fn forget_socket(&mut self, nsp: &Str, socket: &Socket) {
        self.fail_acks(nsp, |_| true);
        for queued in &socket.retry_queue {
            let id = queued.packet.id.unwrap_or(AckId(0));
            self.tries.remove(&(nsp.clone(), id));
            if queued.wants_ack {
                self.outputs.push_back(Output::AckFailed {
                    nsp: nsp.clone(),
                    id,
                    error: AckError::Disconnected,
                });
            }
        }
    }

    /// The connection of a socket was lost and it will reconnect: as in
    /// Node, acks whose event already went out fail, those still buffered
    /// keep waiting; the retry queue is kept and its try in flight will be
    /// sent again once reconnected.
    fn transport_lost_acks(&mut self, nsp: &Str) {
        let Some(socket) = self.sockets.get_mut(nsp) else {
            return;
        };
        for queued in socket.retry_queue.iter_mut() {
            if core::mem::take(&mut queued.in_flight) {
                let id = queued.packet.id.unwrap_or(AckId(0));
                self.tries.remove(&(nsp.clone(), id));
            }
        }
        self.fail_acks(nsp, |sent| sent);
    }

    fn handle_message(&mut self, now: Instant, message: Message) {
        match self.decoder.decode(message) {
            Ok(Some(packet)) => self.handle_packet(now, packet),
            Ok(None) => {}
            Err(error) => {
                // Node's client closes the engine on a parse error and
                // reconnects.
                if let Some(engine) = self.engine.as_mut() {
                    engine.close(now);
                }
                self.disconnect_all_for(DisconnectReason::ParseError(error));
            }
        }
    }

    /// Marks every connected socket disconnected for `reason` (the engine
    /// close that follows then finds none connected).
    fn disconnect_all_for(&mut self, reason: DisconnectReason) {
        let namespaces: Vec<Str> = self.sockets.keys().cloned().collect();
        for nsp in namespaces {
            if let Some(socket) = self.sockets.get_mut(&nsp) {
                if socket.phase == SocketPhase::Connected {
                    socket.phase = SocketPhase::Waiting;
                    self.transport_lost_acks(&nsp);
                    self.outputs.push_back(Output::Disconnected {
                        nsp,
                        reason: reason.clone(),
                    });
                }
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        let legacy = self.is_legacy();
        if legacy && packet.kind == PacketKind::Connect && packet.nsp.as_str() == MAIN_NAMESPACE {
            let wanted = self
                .sockets
                .get(MAIN_NAMESPACE)
                .is_some_and(|socket| socket.phase == SocketPhase::Connecting);
            if !wanted {
                // Kept for a main socket joined later.
                self.legacy_main = LegacyMain::Arrived;
                return;
            }
            self.legacy_main = LegacyMain::Used;
        }
        let engine_sid = self.engine.as_ref().and_then(eio::Client::sid);
        let Some(socket) = self.sockets.get_mut(&packet.nsp) else {
            return;
        };
        match (packet.kind, &socket.phase) {
            (PacketKind::Connect, SocketPhase::Connecting) => {
                let reply = match (legacy, engine_sid) {
                    // socket.io 2.x: no id in the answer; the client's is
                    // the engine's, after the namespace unless it is `/`.
                    (true, Some(engine)) => Some(ConnectReply {
                        sid: if packet.nsp.as_str() == MAIN_NAMESPACE {
                            Str::from(engine.as_str())
                        } else {
                            Str::from(alloc::format!("{}#{engine}", packet.nsp))
                        },
                        pid: None,
                    }),
                    _ => packet.data.as_deref().and_then(parse_connect_reply),
                };
                let Some(reply) = reply else {
                    socket.phase = SocketPhase::Waiting;
                    return self.outputs.push_back(Output::ConnectError {
                        nsp: packet.nsp,
                        data: None,
                    });
                };
                let recovered = reply.pid.is_some() && reply.pid == socket.pid;
                socket.phase = SocketPhase::Connected;
                socket.pid = reply.pid;
                if !recovered {
                    socket.last_offset = None;
                }
                let offline: Vec<EncodedPacket> =
                    socket.offline.drain(..).map(|(_, p)| p).collect();
                for ((of, _), sent) in self.acks.values_mut() {
                    *sent |= *of == packet.nsp;
                }
                let early: Vec<Packet> = socket.early_events.drain(..).collect();
                self.outputs.push_back(Output::Connected {
                    nsp: packet.nsp.clone(),
                    sid: reply.sid,
                    recovered,
                });
                for event in early {
                    self.deliver_event(event);
                }
                for encoded in offline {
                    let _ = self.write(now, &encoded);
                }
                self.drain_queue(now, &packet.nsp);
            }
            (PacketKind::ConnectError, SocketPhase::Connecting)
            | (PacketKind::ConnectError, SocketPhase::Connected)
                if socket.phase == SocketPhase::Connecting || legacy =>
            {
                // As in Node, a refused namespace is given up.
                if let Some(socket) = self.sockets.remove(&packet.nsp) {
                    self.forget_socket(&packet.nsp, &socket);
                }
                self.outputs.push_back(Output::ConnectError {
                    nsp: packet.nsp,
                    data: packet.data,
                });
                if self.sockets.is_empty() {
                    self.shut_engine(now, EnginePhase::Idle);
                }
            }
            (PacketKind::Event, SocketPhase::Connected) => self.deliver_event(packet),
            // Bounded like the offline buffer; beyond it they are lost.
            (PacketKind::Event, SocketPhase::Connecting)
                if socket.early_events.len() < self.config.max_buffered_packets =>
            {
                socket.early_events.push_back(packet);
            }
            (PacketKind::Ack, SocketPhase::Connected) => {
                let Some(id) = packet.id else { return };
                self.handle_ack(now, packet.nsp, id, packet.data, packet.attachments);
            }
            (PacketKind::Disconnect, SocketPhase::Connected) => {
                let socket = self
                    .sockets
                    .remove(&packet.nsp)
                    .unwrap_or_else(|| Socket::new(None, false));
                self.forget_socket(&packet.nsp, &socket);
                self.outputs.push_back(Output::Disconnected {
                    nsp: packet.nsp,
                    reason: DisconnectReason::ServerDisconnect,
                });
                if self.sockets.is_empty() {
                    self.shut_engine(now, EnginePhase::Idle);
                }
            }
            // Anything else is out of place; Node ignores it.
            _ => {}
        }
    }

    /// Hands an event of a connected socket to the application, noting its
    /// recovery offset.
    fn deliver_event(&mut self, packet: Packet) {
        let data = packet.data.unwrap_or_default();
        if let Some(socket) = self.sockets.get_mut(&packet.nsp) {
            if socket.pid.is_some() {
                if let Some(offset) = last_string_argument(&data) {
                    socket.last_offset = Some(Str::from(offset));
                }
            }
        }
        self.outputs.push_back(Output::Event {
            nsp: packet.nsp,
            data,
            attachments: packet.attachments,
            ack: packet.id,
        });
    }

    fn handle_ack(
        &mut self,
        now: Instant,
        nsp: Str,
        id: AckId,
        data: Option<Str>,
        attachments: Vec<Bytes>,
    ) {
        let Some(socket) = self.sockets.get_mut(&nsp) else {
            return;
        };
        if socket
            .retry_queue
            .front()
            .is_some_and(|q| q.packet.id == Some(id))
        {
            let Some(head) = socket.retry_queue.pop_front() else {
                return;
            };
            self.tries.remove(&(nsp.clone(), id));
            if head.wants_ack {
                self.outputs.push_back(Output::Ack {
                    nsp: nsp.clone(),
                    id,
                    data,
                    attachments,
                });
            }
            return self.drain_queue(now, &nsp);
        }
        if self.acks.remove(&(nsp.clone(), id)).is_some() {
            self.outputs.push_back(Output::Ack {
                nsp,
                id,
                data,
                attachments,
            });
        }
    }
}

/// The CONNECT payload: the auth object, with `pid` and `offset` first when
/// recovering (Node: `Object.assign({pid, offset}, auth)`).
fn connect_payload(auth: Option<&Str>, pid: Option<&Str>, offset: Option<&Str>) -> Option<Str> {
    let Some(pid) = pid else { return auth.cloned() };
    let mut out = String::from("{\"pid\":");
    out.push_str(&json_string(pid));
    if let Some(offset) = offset {
        out.push_str(",\"offset\":");
        out.push_str(&json_string(offset));
    }
    if let Some(auth) = auth {
        let inner = auth
            .trim()
            .strip_prefix('{')
            .and_then(|a| a.strip_suffix('}'))
            .unwrap_or("")
            .trim();
        if !inner.is_empty() {
            out.push(',');
            out.push_str(inner);
        }
    }
    out.push('}');
    Some(Str::from(out))
}

/// Where a socket.io 2.x server's own join of the main namespace stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegacyMain {
    /// The engine opened; the server's CONNECT for `/` is still to come.
    Awaiting,
    /// It came while no main socket was connecting.
    Arrived,
    /// A main socket took it; joining `/` again needs a CONNECT.
    Used,
}

/// A namespace with a legacy client's auth as its query (socket.io-client
/// 2.x's `query` option): `/admin?token=1`; string values as they are,
/// others as JSON.
fn legacy_namespace(nsp: &str, auth: Option<&str>) -> String {
    let mut out = String::from(nsp);
    let Some(Ok(serde_json::Value::Object(entries))) =
        auth.map(serde_json::from_str::<serde_json::Value>)
    else {
        return out;
    };
    for (index, (key, value)) in entries.iter().enumerate() {
        out.push(if index == 0 { '?' } else { '&' });
        percent_encode(&mut out, key);
        out.push('=');
        match value {
            serde_json::Value::String(text) => percent_encode(&mut out, text),
            other => percent_encode(&mut out, &serde_json::to_string(other).unwrap_or_default()),
        }
    }
    out
}

/// Appends `text` percent-encoded as `encodeURIComponent` does.
fn percent_encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(char::from(byte)),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// The server's CONNECT reply `{"sid":…,"pid":…}`.
struct ConnectReply {
    sid: Str,
    pid: Option<Str>,
}

fn parse_connect_reply(json: &str) -> Option<ConnectReply> {
    #[derive(serde::Deserialize)]
    struct Reply {
        sid: String,
        #[serde(default)]
        pid: Option<String>,
    }
    let reply: Reply = serde_json::from_str(json).ok()?;
    Some(ConnectReply {
        sid: Str::from(reply.sid),
        pid: reply.pid.map(Str::from),
    })
}

/// The last element of a JSON array when it is a string (a recovery offset).
fn last_string_argument(json: &str) -> Option<String> {
    struct LastString;
    impl<'de> Visitor<'de> for LastString {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
            let mut last = None;
            while let Some(element) = seq.next_element::<MaybeString>()? {
                last = element.0;
            }
            Ok(last)
        }
    }
    struct MaybeString(Option<String>);
    impl<'de> de::Deserialize<'de> for MaybeString {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = MaybeString;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("any value")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<MaybeString, E> {
                    Ok(MaybeString(Some(String::from(s))))
                }
                fn visit_bool<E: de::Error>(self, _: bool) -> Result<MaybeString, E> {
                    Ok(MaybeString(None))
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<MaybeString, E> {
                    Ok(MaybeString(None))
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<MaybeString, E> {
                    Ok(MaybeString(None))
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<MaybeString, E> {
                    Ok(MaybeString(None))
                }
                fn visit_unit<E: de::Error>(self) -> Result<MaybeString, E> {
                    Ok(MaybeString(None))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(MaybeString(None))
                }
                fn visit_map<A: de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<MaybeString, A::Error> {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(MaybeString(None))
                }
            }
            d.deserialize_any(V)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(json);
    deserializer.deserialize_seq(LastString).ok().flatten()
}

/// Refuses a packet the server could not decode for its placeholders
/// ([`Packet::check_placeholders`]), before anything is queued.
fn checked(packet: &Packet) -> Result<(), CommandError> {
    packet
        .check_placeholders()
        .map_err(|_| CommandError::InvalidPlaceholder)
}

#[cfg(test)]
mod tests;
