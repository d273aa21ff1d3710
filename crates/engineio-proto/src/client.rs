//! The Engine.IO client state machine.
//!
//! # Theory of operation
//!
//! The machine never touches the network: its outputs are IO *intents*
//! ([`Output::HttpRequest`], [`Output::WsConnect`], [`Output::WsSend`],
//! [`Output::WsClose`]) and its inputs are their results
//! ([`Input::HttpResponse`], [`Input::WsOpen`], …). Each
//! intent carries an id; results for ids the machine no longer cares about
//! (a request of a transport it left) are ignored.
//!
//! [`Client::connect`] opens the session over long-polling (a handshake GET)
//! or straight over a WebSocket, whichever [`ClientConfig::transports`]
//! allows first. Over polling, at most one GET and one POST are in flight:
//! the GET is reissued as soon as the previous one returns, and queued
//! packets go out in one POST of at most the server's `maxPayload`.
//!
//! When the handshake offers `websocket`, the machine probes it: it opens a
//! WebSocket with the sid and sends `2probe`. On `3probe` it stops sending
//! over polling and waits for the GET and POST in flight to return (the
//! server ends a parked GET with a NOOP), then sends `5` on the WebSocket,
//! which becomes the transport, and flushes what was queued meanwhile. A probe
//! that fails leaves the session on polling.
//!
//! Heartbeat: the server pings; the client answers each PING with a PONG, and
//! closes with [`CloseReason::PingTimeout`] when no PING arrives within
//! `pingInterval + pingTimeout` of the handshake or the last PING.
//!
//! With [`ClientConfig::protocol`] set to [`Protocol::V3`] (a socket.io 2.x
//! server), the client speaks Engine.IO v3 ([`crate::v3`]) as
//! engine.io-client 3 does: it asks for base64 payloads (`b64=1`), pings
//! `pingInterval` after the handshake and after each PONG, and gives up
//! when no PONG comes within `pingTimeout` of a PING, or nothing at all
//! within `pingInterval + pingTimeout`.

use alloc::collections::VecDeque;
use core::fmt;
use core::time::Duration;

use bytes::Bytes;

use crate::close::{CloseReason, TransportError};
use crate::handshake::Handshake;
use crate::packet::{EncodedMessage, Frame, Message, Packet};
use crate::payload;
use crate::sid::Sid;
use crate::time::{Instant, TimerKind, TimerTable};
use crate::transport::{Protocol, RequestId, TransportKind, Transports, WsId};
use crate::v3;

/// Client settings, with the Node client's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Transports to use. The session opens over polling when it is allowed,
    /// otherwise over WebSocket.
    pub transports: Transports,
    /// Whether to upgrade a polling session to WebSocket when the server offers it.
    pub upgrade: bool,
    /// Packets [`Client::send`] queues before failing with
    /// [`SendError::BufferFull`] (while connecting, upgrading or when the
    /// server reads slowly).
    pub max_buffered_packets: usize,
    /// The protocol revision to speak: v4, or v3 for socket.io 2.x servers.
    pub protocol: Protocol,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            transports: Transports::ALL,
            upgrade: true,
            max_buffered_packets: 4096,
            protocol: Protocol::V4,
        }
    }
}

/// The HTTP method of a request the client wants made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// Handshake or long-poll.
    Get,
    /// Packets to the server; the body is a payload (send it as
    /// `text/plain;charset=UTF-8`).
    Post,
}

/// The Engine.IO query parameters of a request: write it with `Display`
/// (`EIO=4&transport=polling&sid=…`) and append it to the endpoint URL,
/// after any query parameters of the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Query {
    /// The transport this request belongs to.
    pub transport: TransportKind,
    /// The session, once the handshake has named it.
    pub sid: Option<Sid>,
    /// The protocol revision (v3 asks for base64 payloads too).
    pub protocol: Protocol,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::V4 => write!(f, "EIO=4&transport={}", self.transport)?,
            Protocol::V3 => write!(f, "EIO=3&transport={}&b64=1", self.transport)?,
        }
        if let Some(sid) = self.sid {
            write!(f, "&sid={sid}")?;
        }
        Ok(())
    }
}

/// What the client asks of its driver, or tells its application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make this HTTP request to the Engine.IO endpoint, then report its
    /// result as [`Input::HttpResponse`] or [`Input::HttpError`].
    HttpRequest {
        /// Identifies the request in its result.
        request: RequestId,
        /// GET or POST.
        method: HttpMethod,
        /// Engine.IO query parameters.
        query: Query,
        /// The POST body (empty for GET).
        body: Bytes,
    },
    /// Open a WebSocket to the Engine.IO endpoint, then report
    /// [`Input::WsOpen`] or [`Input::WsClosed`].
    WsConnect {
        /// Identifies the WebSocket in its events.
        ws: WsId,
        /// Engine.IO query parameters.
        query: Query,
    },
    /// Send this frame on this WebSocket.
    WsSend {
        /// The WebSocket.
        ws: WsId,
        /// The frame.
        frame: Frame,
        /// Whether it may be compressed (permessage-deflate, when
        /// negotiated and the frame is over its threshold).
        compress: bool,
    },
    /// Close this WebSocket once the frames output before have been sent.
    WsClose {
        /// The WebSocket.
        ws: WsId,
    },
    /// The handshake completed: the session is open.
    Opened(Handshake),
    /// A message from the server, for the application.
    Message(Message),
    /// The session now runs over WebSocket.
    Upgraded,
    /// The WebSocket probe failed; the session stays on polling.
    UpgradeFailed,
    /// The session is over. Emitted once; the machine is inert afterwards.
    Closed(CloseReason),
}

/// The result of an IO intent the client asked for, or time passing. Feed
/// it to [`Client::handle_input`], then drain [`Client::poll_output`].
/// Results for requests or WebSockets the client no longer uses are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An [`Output::HttpRequest`] got a response (for a GET, read at most
    /// the server's `maxPayload` plus a margin).
    HttpResponse {
        /// The request.
        request: RequestId,
        /// Its HTTP status.
        status: u16,
        /// Its body.
        body: Bytes,
    },
    /// An [`Output::HttpRequest`] failed without a response (connection
    /// refused, reset, timed out): the session closes.
    HttpError(RequestId),
    /// The WebSocket of an [`Output::WsConnect`] connected.
    WsOpen(WsId),
    /// A frame arrived on a WebSocket.
    WsFrame {
        /// The WebSocket.
        ws: WsId,
        /// The frame.
        frame: Frame,
    },
    /// A WebSocket closed or failed (before or after connecting).
    WsClosed(WsId),
    /// Time passed: fire the heartbeat watchdog if due (safe to feed early
    /// or often).
    Timeout,
}

/// Why [`Client::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closing or closed, or was never connected.
    #[error("session closed")]
    Closed,
    /// `max_buffered_packets` are already queued.
    #[error("send buffer full")]
    BufferFull,
}

/// Why [`Client::connect`] refused to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// `connect` was already called on this machine.
    #[error("already connected")]
    AlreadyStarted,
    /// The configuration allows no transport.
    #[error("no transport allowed")]
    NoTransport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Waiting for the OPEN packet.
    Opening,
    Open,
    /// `close` was called while a POST was in flight; the CLOSE packet goes
    /// out with the next POST.
    Closing,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Polling {
        get: Option<RequestId>,
        post: Option<RequestId>,
    },
    WebSocket {
        ws: WsId,
        /// The WebSocket has connected (only false before a WebSocket handshake).
        connected: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeStage {
    /// Waiting for the WebSocket to connect.
    Connecting,
    /// `2probe` sent, waiting for `3probe`.
    Probing,
    /// `3probe` received: polling is pausing until its requests return.
    Pausing,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    ws: WsId,
    stage: ProbeStage,
}

/// The client's timers.
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// No PING (v3: no packet, or no PONG) in time: the server is gone.
    Heartbeat,
    /// v3: time to ping the server.
    Ping,
}

impl TimerKind for Timer {
    const COUNT: usize = 2;
    fn slot(self) -> usize {
        self as usize
    }
}

/// An Engine.IO client session. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Client {
    config: ClientConfig,
    phase: Phase,
    transport: Transport,
    probe: Option<Probe>,
    handshake: Option<Handshake>,
    /// Packets waiting for the transport.
    /// Each with whether the transport may compress it.
    buffer: VecDeque<(Packet, bool)>,
    outputs: VecDeque<Output>,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    /// v3: a PING went out and its PONG has not come back.
    ping_unanswered: bool,
    next_id: u64,
}

impl Client {
    /// A client that has not connected yet. Call [`Client::connect`] next.
    pub fn new(config: ClientConfig) -> Client {
        Client::with_first_id(config, 1)
    }

    /// Like [`Client::new`], numbering its requests and WebSockets from
    /// `first_id`. A layer that reconnects with a fresh client passes the
    /// previous one's [`Client::next_id`], so a late result of the old
    /// session's IO can never be taken for the new one's.
    pub fn with_first_id(config: ClientConfig, first_id: u64) -> Client {
        Client {
            config,
            phase: Phase::Idle,
            transport: Transport::Polling {
                get: None,
                post: None,
            },
            probe: None,
            handshake: None,
            buffer: VecDeque::new(),
            outputs: VecDeque::new(),
            timers: TimerTable::default(),
            ping_unanswered: false,
            next_id: first_id.saturating_sub(1),
        }
    }

    /// The id the next request or WebSocket will get.
    pub fn next_id(&self) -> u64 {
        self.next_id + 1
    }

    /// Starts the handshake: an HTTP GET, or a WebSocket when polling is not
    /// allowed. Drain [`Client::poll_output`] next.
    pub fn connect(&mut self, _now: Instant) -> Result<(), ConnectError> {
        if self.phase != Phase::Idle {
            return Err(ConnectError::AlreadyStarted);
        }
        let transports = self.config.transports;
        if transports.polling {
            self.phase = Phase::Opening;
            let request = self.request(HttpMethod::Get, Bytes::new());
            self.transport = Transport::Polling {
                get: Some(request),
                post: None,
            };
        } else if transports.websocket {
            self.phase = Phase::Opening;
            let ws = self.open_ws();
            self.transport = Transport::WebSocket {
                ws,
                connected: false,
            };
        } else {
            return Err(ConnectError::NoTransport);
        }
        Ok(())
    }

    /// The handshake, once the session is open.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// The session id, once the session is open.
    pub fn sid(&self) -> Option<Sid> {
        self.handshake.as_ref().map(|h| h.sid)
    }

    /// The transport currently carrying the session.
    pub fn transport(&self) -> TransportKind {
        match self.transport {
            Transport::Polling { .. } => TransportKind::Polling,
            Transport::WebSocket { .. } => TransportKind::WebSocket,
        }
    }

    /// Whether the session is open (handshake done, not closing).
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Packets queued and not yet handed to a transport.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// How many more messages [`Client::send`] accepts right now (so a layer
    /// above can queue a multi-message packet whole or not at all).
    pub fn send_capacity(&self) -> usize {
        if !matches!(self.phase, Phase::Opening | Phase::Open) {
            return 0;
        }
        self.config
            .max_buffered_packets
            .saturating_sub(self.buffer.len())
    }

    /// Queues a message. It goes out when the session is open and the
    /// transport can take it; while connecting or upgrading it waits.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<(), SendError> {
        self.send_compress(now, message, true)
    }

    /// [`Client::send`], saying whether the WebSocket may compress the
    /// message (Node's `socket.compress(false)`; long-polling bodies are
    /// never compressed).
    pub fn send_compress(
        &mut self,
        now: Instant,
        message: Message,
        compress: bool,
    ) -> Result<(), SendError> {
        self.fire_timers(now);
        if !matches!(self.phase, Phase::Opening | Phase::Open) {
            return Err(SendError::Closed);
        }
        if self.buffer.len() >= self.config.max_buffered_packets {
            return Err(SendError::BufferFull);
        }
        self.buffer.push_back((Packet::Message(message), compress));
        self.flush();
        Ok(())
    }

    /// Closes the session after what is queued has been handed to the
    /// transport, with a CLOSE packet to the server. Emits
    /// [`Output::Closed`] with [`CloseReason::ForcedClose`].
    pub fn close(&mut self, now: Instant) {
        self.fire_timers(now);
        match self.phase {
            Phase::Open => {}
            Phase::Idle | Phase::Opening => return self.close_with(CloseReason::ForcedClose),
            Phase::Closing | Phase::Closed => return,
        }
        // Closing first, so a probe that had paused polling does not resume it.
        self.phase = Phase::Closing;
        self.buffer.push_back((Packet::Close, true));
        self.abandon_probe(false);
        self.flush();
    }

    /// Feeds one input (firing the heartbeat watchdog first if due). Drain
    /// [`Client::poll_output`] next.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.fire_timers(now);
        match input {
            Input::HttpResponse {
                request,
                status,
                body,
            } => self.http_response(now, request, status, body),
            Input::HttpError(request) => self.http_error(request),
            Input::WsOpen(ws) => self.ws_open(ws),
            Input::WsFrame { ws, frame } => self.ws_frame(now, ws, frame),
            Input::WsClosed(ws) => self.ws_closed(now, ws),
            Input::Timeout => {}
        }
    }

    fn http_response(&mut self, now: Instant, request: RequestId, status: u16, body: Bytes) {
        let Transport::Polling { get, post } = self.transport else {
            return;
        };
        if self.phase == Phase::Closed {
            return;
        }
        if get == Some(request) {
            self.transport = Transport::Polling { get: None, post };
            if status != 200 {
                return self.fail_http(status);
            }
            self.handle_payload(now, body);
            self.after_polling_request(now);
        } else if post == Some(request) {
            self.transport = Transport::Polling { get, post: None };
            if status != 200 {
                return self.fail_http(status);
            }
            self.after_polling_request(now);
        }
    }

    fn http_error(&mut self, request: RequestId) {
        if let Transport::Polling { get, post } = self.transport {
            if get == Some(request) || post == Some(request) {
                self.close_with(CloseReason::TransportError(TransportError::RequestFailed));
            }
        }
    }

    fn ws_open(&mut self, ws: WsId) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.transport
            == (Transport::WebSocket {
                ws,
                connected: false,
            })
        {
            self.transport = Transport::WebSocket {
                ws,
                connected: true,
            };
        } else if let Some(probe) = self.probe.filter(|p| p.ws == ws) {
            if probe.stage == ProbeStage::Connecting {
                self.outputs.push_back(Output::WsSend {
                    ws,
                    frame: Packet::PING_PROBE.encode_frame(),
                    compress: true,
                });
                self.probe = Some(Probe {
                    ws,
                    stage: ProbeStage::Probing,
                });
            }
        }
    }

    fn ws_frame(&mut self, now: Instant, ws: WsId, frame: Frame) {
        if self.phase == Phase::Closed {
            return;
        }
        if matches!(self.transport, Transport::WebSocket { ws: current, .. } if current == ws) {
            match self.decode_frame(frame) {
                Ok(packet) => self.handle_packet(now, packet),
                Err(error) => self.close_with(CloseReason::ParseError(error)),
            }
        } else if let Some(probe) = self.probe.filter(|p| p.ws == ws) {
            let is_probe_answer = matches!(self.decode_frame(frame), Ok(p) if p.is_pong_probe());
            if probe.stage == ProbeStage::Probing && is_probe_answer {
                self.probe = Some(Probe {
                    ws,
                    stage: ProbeStage::Pausing,
                });
                self.after_polling_request(now);
            } else {
                self.abandon_probe(true);
            }
        }
    }

    fn ws_closed(&mut self, now: Instant, ws: WsId) {
        if self.phase == Phase::Closed {
            return;
        }
        if matches!(self.transport, Transport::WebSocket { ws: current, .. } if current == ws) {
            self.close_with(CloseReason::TransportClose);
        } else if self.probe.is_some_and(|p| p.ws == ws) {
            self.probe = None;
            self.outputs.push_back(Output::UpgradeFailed);
            // Polling may have paused for the probe: resume it.
            self.after_polling_request(now);
        }
    }

    /// Fires the heartbeat watchdog when due.
    fn fire_timers(&mut self, now: Instant) {
        if let Some(due) = self.timers.take_expired(Timer::Ping, now) {
            // v3: ping, and expect the PONG within pingTimeout.
            if let Some(timeout) = self.handshake.as_ref().map(Handshake::ping_timeout) {
                self.buffer.push_front((Packet::PING, true));
                self.ping_unanswered = true;
                self.timers.set(Timer::Heartbeat, due + timeout);
                self.flush();
            }
        }
        if self.timers.take_expired(Timer::Heartbeat, now).is_some() {
            self.close_with(CloseReason::PingTimeout);
        }
    }

    fn v3(&self) -> bool {
        self.config.protocol == Protocol::V3
    }

    fn decode_frame(&self, frame: Frame) -> Result<Packet, crate::packet::DecodeError> {
        if self.v3() {
            v3::decode_frame(frame)
        } else {
            Packet::decode_frame(frame)
        }
    }

    /// The next output, if any. Drain after every call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to feed [`Input::Timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn handle_payload(&mut self, now: Instant, body: Bytes) {
        let packets = match payload::Records::decode(body, self.config.protocol, false) {
            Ok(packets) => packets,
            Err(error) => return self.close_with(CloseReason::ParseError(error)),
        };
        for packet in packets {
            match packet {
                Ok(packet) => self.handle_packet(now, packet),
                Err(error) => return self.close_with(CloseReason::ParseError(error)),
            }
            if self.phase == Phase::Closed {
                return;
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        if self.v3() && self.phase != Phase::Opening {
            // v3: any packet shows the server alive (engine.io-client 3's
            // `heartbeat`), unless a PING waits for its PONG.
            if !self.ping_unanswered {
                self.reset_heartbeat(now);
            }
            if packet == Packet::PONG {
                self.schedule_ping(now);
                return;
            }
        }
        match (self.phase, packet) {
            (Phase::Opening, Packet::Open(json)) => self.handle_open(now, &json),
            (Phase::Opening, _) => self.close_with(CloseReason::TransportError(
                TransportError::InvalidHandshake,
            )),
            (Phase::Open | Phase::Closing, Packet::Ping(_)) => {
                self.reset_heartbeat(now);
                // The PONG jumps the queue so a backlog cannot delay it past
                // the server's timeout; one unsent PONG answers every PING.
                if self.buffer.front().map(|(packet, _)| packet) != Some(&Packet::PONG) {
                    self.buffer.push_front((Packet::PONG, true));
                }
                self.flush();
            }
            (Phase::Open | Phase::Closing, Packet::Message(message)) => {
                self.outputs.push_back(Output::Message(message))
            }
            (Phase::Open | Phase::Closing, Packet::Close) => {
                self.close_with(CloseReason::PeerClose)
            }
            // NOOPs end polls during upgrades; the rest is ignored, as in Node.
            _ => {}
        }
    }

    fn handle_open(&mut self, now: Instant, json: &str) {
        let Ok(handshake) = Handshake::from_json(json) else {
            return self.close_with(CloseReason::TransportError(
                TransportError::InvalidHandshake,
            ));
        };
        self.phase = Phase::Open;
        let probe_websocket = self.config.upgrade
            && self.config.transports.websocket
            && matches!(self.transport, Transport::Polling { .. })
            && handshake.offers_upgrade(TransportKind::WebSocket);
        self.handshake = Some(handshake.clone());
        self.outputs.push_back(Output::Opened(handshake));
        self.reset_heartbeat(now);
        if self.v3() {
            self.schedule_ping(now);
        }
        if probe_websocket {
            let ws = self.open_ws();
            self.probe = Some(Probe {
                ws,
                stage: ProbeStage::Connecting,
            });
        }
        self.flush();
    }

    /// v3: the next PING, `pingInterval` from now.
    fn schedule_ping(&mut self, now: Instant) {
        if let Some(handshake) = &self.handshake {
            let at = now + handshake.ping_interval();
            self.timers.set(Timer::Ping, at);
            self.ping_unanswered = false;
            self.reset_heartbeat(now);
        }
    }

    fn reset_heartbeat(&mut self, now: Instant) {
        if let Some(handshake) = &self.handshake {
            let deadline = now + heartbeat_window(handshake);
            self.timers.set(Timer::Heartbeat, deadline);
        }
    }

    /// After a GET or POST returned (or a probe changed state): keep polling,
    /// or finish the pause of an upgrade once nothing is in flight.
    fn after_polling_request(&mut self, _now: Instant) {
        let Transport::Polling { get, post } = self.transport else {
            return;
        };
        if !matches!(self.phase, Phase::Open | Phase::Closing) {
            return;
        }
        if let Some(probe) = self.probe.filter(|p| p.stage == ProbeStage::Pausing) {
            if get.is_none() && post.is_none() {
                self.complete_upgrade(probe.ws);
            }
            return;
        }
        if get.is_none() && self.phase == Phase::Open {
            let request = self.request(HttpMethod::Get, Bytes::new());
            self.transport = Transport::Polling {
                get: Some(request),
                post,
            };
        }
        self.flush();
    }

    fn complete_upgrade(&mut self, ws: WsId) {
        self.probe = None;
        self.outputs.push_back(Output::WsSend {
            ws,
            frame: encode_frame(self.v3(), &Packet::Upgrade),
            compress: true,
        });
        self.transport = Transport::WebSocket {
            ws,
            connected: true,
        };
        self.outputs.push_back(Output::Upgraded);
        self.flush();
    }

    /// Drops the probe WebSocket; `report` tells the application.
    fn abandon_probe(&mut self, report: bool) {
        if let Some(probe) = self.probe.take() {
            self.outputs.push_back(Output::WsClose { ws: probe.ws });
            if report {
                self.outputs.push_back(Output::UpgradeFailed);
            }
            if probe.stage == ProbeStage::Pausing {
                // Polling paused for this probe: resume it.
                let Transport::Polling { get: None, post } = self.transport else {
                    return;
                };
                if self.phase == Phase::Open {
                    let request = self.request(HttpMethod::Get, Bytes::new());
                    self.transport = Transport::Polling {
                        get: Some(request),
                        post,
                    };
                }
                self.flush();
            }
        }
    }

    /// Hands queued packets to the transport when it can take them. A
    /// closing client finishes once its CLOSE has been handed over.
    fn flush(&mut self) {
        if !matches!(self.phase, Phase::Open | Phase::Closing) || self.buffer.is_empty() {
            return;
        }
        let pausing = self.probe.is_some_and(|p| p.stage == ProbeStage::Pausing);
        match self.transport {
            Transport::WebSocket {
                ws,
                connected: true,
            } => {
                let mut closing = false;
                let v3 = self.v3();
                for (packet, compress) in self.buffer.drain(..) {
                    closing |= packet == Packet::Close;
                    let frame = encode_frame(v3, &packet);
                    self.outputs.push_back(Output::WsSend {
                        ws,
                        frame,
                        compress,
                    });
                }
                if closing {
                    self.close_with(CloseReason::ForcedClose);
                }
            }
            Transport::Polling { get, post: None } if !pausing => {
                let max_payload = self.handshake.as_ref().map_or(usize::MAX, |h| {
                    usize::try_from(h.max_payload).unwrap_or(usize::MAX)
                });
                let packets = self.buffer.iter().map(|(packet, _)| packet);
                let count = if self.v3() {
                    v3_count_fitting(packets, max_payload)
                } else {
                    payload::count_fitting(packets, max_payload)
                };
                let batch = self.buffer.range(..count).map(|(packet, _)| packet);
                let closing = batch.clone().any(|p| *p == Packet::Close);
                let body = if self.v3() {
                    let messages: alloc::vec::Vec<EncodedMessage> =
                        batch.map(EncodedMessage::control).collect();
                    v3::encode_payload(&messages, false).0
                } else {
                    payload::encode(batch)
                };
                self.buffer.drain(..count);
                let request = self.request(HttpMethod::Post, body);
                self.transport = Transport::Polling {
                    get,
                    post: Some(request),
                };
                if closing {
                    self.close_with(CloseReason::ForcedClose);
                }
            }
            _ => {}
        }
    }

    /// Ends the session now: the WebSockets close, buffered packets drop.
    fn close_with(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        // Closed before the probe is dropped, so dropping a paused probe
        // does not resume polling (a new GET, a POST of the buffer) for a
        // session that is ending.
        self.phase = Phase::Closed;
        self.abandon_probe(false);
        if let Transport::WebSocket { ws, .. } = self.transport {
            self.outputs.push_back(Output::WsClose { ws });
        }
        self.buffer.clear();
        self.timers.clear_all();
        self.outputs.push_back(Output::Closed(reason));
    }

    fn fail_http(&mut self, status: u16) {
        self.close_with(CloseReason::TransportError(TransportError::HttpStatus(
            status,
        )));
    }

    fn query(&self, transport: TransportKind) -> Query {
        Query {
            transport,
            sid: self.sid(),
            protocol: self.config.protocol,
        }
    }

    fn take_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn request(&mut self, method: HttpMethod, body: Bytes) -> RequestId {
        let request = RequestId(self.take_id());
        self.outputs.push_back(Output::HttpRequest {
            request,
            method,
            query: self.query(TransportKind::Polling),
            body,
        });
        request
    }

    fn open_ws(&mut self) -> WsId {
        let ws = WsId(self.take_id());
        self.outputs.push_back(Output::WsConnect {
            ws,
            query: self.query(TransportKind::WebSocket),
        });
        ws
    }
}

/// A packet as a WebSocket frame: v3 puts a binary message after its type
/// byte.
fn encode_frame(v3: bool, packet: &Packet) -> Frame {
    match packet {
        Packet::Message(Message::Binary(data)) if v3 => {
            v3::encode_frame(EncodedMessage::from(Message::Binary(data.clone())))
        }
        packet => packet.encode_frame(),
    }
}

/// How many of the leading `packets` fit in one v3 text payload of at most
/// `max_payload` bytes (at least one), each `<length>:` costing its digits.
fn v3_count_fitting<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
    max_payload: usize,
) -> usize {
    let lengths = packets.into_iter().map(|packet| {
        // The record's bytes bound its UTF-16 length, so its prefix too.
        let len = match packet {
            Packet::Message(Message::Binary(data)) => 2 + crate::packet::base64_len(data.len()),
            other => other.encoded_len_in_payload(),
        };
        len + 1 + decimal_digits(len)
    });
    payload::count_fitting_lengths(lengths, max_payload)
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// How long the client waits for a PING before giving up on the server.
pub fn heartbeat_window(handshake: &Handshake) -> Duration {
    handshake
        .ping_interval()
        .saturating_add(handshake.ping_timeout())
}
