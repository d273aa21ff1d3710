//! One Engine.IO session on the server.
//!
//! # Theory of operation
//!
//! A session starts on the transport of its handshake: long-polling or a
//! WebSocket. Everything the application sends goes through one write buffer.
//! On a WebSocket the buffer is flushed as soon as anything is in it, one frame
//! per packet. On long-polling it is flushed into the single parked GET, all
//! packets in one payload; with no GET parked it waits for the next one.
//!
//! Heartbeat: a PING is queued `pingInterval` after the handshake and after
//! each PONG. The PONG deadline counts from when the PING is *queued*, not
//! from when a GET carries it, so a client that stops polling times out on
//! schedule.
//!
//! Upgrade (polling → WebSocket): the driver accepts a WebSocket with the sid
//! and feeds [`Input::Upgrade`]. The client sends `2probe` on it and
//! gets `3probe`; from then until the client's `5`, a parked GET receives a
//! NOOP every 100 ms (the first one tick after the probe, as in Node) so the
//! client can pause its polling. A GET still parked at `5` is refused like
//! any polling request after the upgrade. On `5` the WebSocket becomes the transport and the buffer moves
//! over to it: nothing queued is lost or duplicated and order is kept. Any
//! other packet on the probe, a timeout or the probe closing abandons the
//! upgrade and the session stays on polling.
//!
//! A POST body is decoded lazily: [`Input::Post`] keeps the body,
//! and each [`Session::poll_output`] that finds nothing else queued takes its
//! next record, so a body of any number of packets costs its own bytes and
//! no more. The POST is answered once its last packet is out. A driver whose
//! application cannot take more messages calls [`Session::hold_messages`]:
//! the rest of the body waits, unanswered, and the client (which sends one
//! POST at a time) sends nothing more meanwhile; heartbeats and everything
//! the application sends go on, and the time held is added to the client's
//! PONG deadline (within a bound). A second POST while one is being delivered
//! closes the session, as in Node.
//!
//! Every input first fires the timers due at its `now`, so an input that
//! arrives after a deadline sees the deadline's effect (a GET arriving after
//! the ping timeout finds the session closed).
//!
//! A closed session emits [`Output::Closed`] once; after that it refuses
//! requests with [`RequestError::UnknownSid`] and the driver should drop it
//! once its outputs are drained.

use alloc::collections::VecDeque;
use core::time::Duration;

use bytes::Bytes;

use alloc::string::String;
use core::fmt::Write as _;

use super::{ContentType, HttpResponse, Opening, RequestError, ServerConfig};
use crate::close::{CloseReason, TransportError};
use crate::handshake::Handshake;
use crate::packet::{DecodeError, EncodedMessage, Frame, Message, Packet};
use crate::payload::{self, Records};
use crate::sid::Sid;
use crate::time::{Instant, TimerKind, TimerTable};
use crate::transport::{Dialect, PostFailure, Protocol, RequestId, TransportKind, WsFailure, WsId};
use crate::v3;

/// How often a parked GET gets a NOOP while an upgrade is in progress (Node's value).
const UPGRADE_NOOP_INTERVAL: Duration = Duration::from_millis(100);

/// What the session asks of its driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Answer this HTTP request with this response.
    Respond {
        /// The request being answered.
        request: RequestId,
        /// The response.
        response: HttpResponse,
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
    /// A message from the client, for the application.
    Message(Message),
    /// The session now runs over WebSocket.
    Upgraded,
    /// The session is over. Emitted once; nothing but refusals follows.
    Closed(CloseReason),
}

/// Something that happened to a session: an HTTP request for it, an event
/// of one of its WebSockets, or time passing. Feed it to
/// [`Session::handle_input`], then drain [`Session::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A long-poll GET. Its response comes as an [`Output::Respond`]: now
    /// if packets are waiting, otherwise when there are some or at the next
    /// PING. A second GET while one is parked closes the session, as in Node.
    Poll(RequestId),
    /// The parked GET ended before it was answered (the client went away):
    /// the session closes, as in Node.
    PollAborted(RequestId),
    /// A POST with its whole body, or the first `max_payload() + 1` bytes
    /// of it. Its packets come out of [`Session::poll_output`] one by one
    /// (held back by [`Session::hold_messages`]); then it is answered `ok`.
    /// Answered at once with 413 for an oversized body, 400 for one that
    /// is not UTF-8 or arrives while the previous POST is still being
    /// delivered (all three close the session); a record that does not
    /// decode gets 400 and closes the session when it is reached.
    Post {
        /// The request, answered by an [`Output::Respond`].
        request: RequestId,
        /// Its body.
        body: Bytes,
    },
    /// A POST whose body is declared binary (`application/octet-stream`):
    /// a v3 client's binary payload, delivered as [`Input::Post`] is. A v4
    /// session answers 400 and closes, as Node does.
    BinaryPost {
        /// The request, answered by an [`Output::Respond`].
        request: RequestId,
        /// Its body.
        body: Bytes,
    },
    /// The driver could not read the body of a POST whole. Closes the
    /// session (Node's reasons) and answers the request: 408 for a timeout,
    /// 413 for too many chunks, 400 for binary content; an aborted request
    /// gets an answer nobody reads.
    PostFailed {
        /// The request.
        request: RequestId,
        /// What went wrong.
        failure: PostFailure,
    },
    /// A WebSocket carrying this session's sid was accepted: an upgrade
    /// attempt, under an id this session has not seen before. Refused
    /// with an [`Output::WsClose`] when the session is not an open polling
    /// session, is already upgrading, or upgrades are off.
    Upgrade(WsId),
    /// A frame arrived on a WebSocket (the session's or its upgrade
    /// probe); frames of any other WebSocket are ignored.
    WsFrame {
        /// The WebSocket.
        ws: WsId,
        /// The frame.
        frame: Frame,
    },
    /// The driver ended a WebSocket for breaking the WebSocket protocol
    /// (and closed it with the matching RFC 6455 code). The session closes
    /// if it ran on it; an upgrade on it is abandoned.
    WsFailed {
        /// The WebSocket.
        ws: WsId,
        /// How it broke the protocol.
        failure: WsFailure,
    },
    /// A WebSocket closed (by the peer or after an [`Output::WsClose`]).
    WsClosed(WsId),
    /// Time passed: fire every timer due (safe to feed early or often).
    Timeout,
}

/// Why [`Session::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closing or closed.
    #[error("session closed")]
    Closed,
    /// The client has not read `max_buffered_packets` packets yet.
    #[error("send buffer full")]
    BufferFull,
}

/// The session's timers.
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// The next PING is due (v4).
    Ping,
    /// The PING sent has gone unanswered too long (v4), or the client has
    /// not pinged for `pingInterval + pingTimeout` (v3): close.
    Pong,
    /// The upgrade in progress has taken too long: abandon it.
    Upgrade,
    /// Send a NOOP to a parked GET so the upgrading client can pause polling.
    UpgradeNoop,
    /// A closing polling session has waited too long for a GET: drop it.
    Close,
}

impl TimerKind for Timer {
    const COUNT: usize = 5;
    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// `close` was called; waiting for a GET to carry the CLOSE packet.
    Closing,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Long-polling, with the parked GET if there is one.
    Polling {
        parked: Option<RequestId>,
    },
    WebSocket(WsId),
}

#[derive(Debug, Clone, Copy)]
struct Upgrade {
    ws: WsId,
    /// The client's `2probe` was answered.
    probed: bool,
    /// When a parked GET last got a NOOP, to keep them to one per interval.
    last_noop: Option<Instant>,
}

/// A POST whose packets are still being handed out.
#[derive(Debug, Clone)]
struct Inbound {
    request: RequestId,
    records: Records,
    /// When the POST arrived: its packets count as received then (a PONG
    /// in it answers the PING as of that moment).
    received: Instant,
}

/// The settings a session keeps from [`ServerConfig`].
#[derive(Debug, Clone)]
struct Limits {
    ping_interval: Duration,
    ping_timeout: Duration,
    upgrade_timeout: Duration,
    close_timeout: Duration,
    max_payload: usize,
    max_buffered_packets: usize,
    upgrades_allowed: bool,
}

/// One Engine.IO session. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Session {
    sid: Sid,
    /// How the client encodes (protocol revision, polling variant).
    dialect: Dialect,
    limits: Limits,
    phase: Phase,
    transport: Transport,
    upgrade: Option<Upgrade>,
    /// Packets waiting for the transport.
    /// Packets in wire form: a message sent to many sessions is encoded once.
    buffer: VecDeque<EncodedMessage>,
    /// v3: a PONG waits in `buffer` (one answers every PING meanwhile).
    pong_queued: bool,
    /// The POST being delivered, packet by packet.
    inbound: Option<Inbound>,
    /// Set by [`Session::hold_messages`] (leave `inbound` alone for now):
    /// since when the client's PONG has been held, as far as its deadline
    /// is concerned.
    held_since: Option<Instant>,
    /// How much later the pending PONG deadline may still move for time
    /// the client was held (`pingInterval + pingTimeout` per PING).
    pong_credit: Duration,
    outputs: VecDeque<Output>,
    timers: TimerTable<Timer, { Timer::COUNT }>,
    /// Messages both ways since the driver last took them.
    traffic: Traffic,
    /// Set when the session ends.
    close_reason: Option<CloseReason>,
}

/// The messages a session carried (Node's engine `packet` and
/// `packetCreate` events with data): counted by the machine, taken by the
/// driver with [`Session::take_traffic`]. Bytes are the messages' data
/// (text or binary), without Engine.IO framing. Heartbeats and other
/// control packets do not count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages received from the client.
    pub messages_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Messages queued for the client.
    pub messages_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
}

impl Traffic {
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.messages_in == 0 && self.messages_out == 0
    }
}

impl Session {
    pub(super) fn new(
        now: Instant,
        sid: Sid,
        config: &ServerConfig,
        opening: Opening,
        dialect: Dialect,
    ) -> Session {
        let (transport, upgrades_allowed) = match opening {
            Opening::Polling(request) => (
                Transport::Polling {
                    parked: Some(request),
                },
                config.allow_upgrades && config.transports.websocket,
            ),
            Opening::WebSocket(ws) => (Transport::WebSocket(ws), false),
        };
        let mut session = Session {
            sid,
            dialect,
            limits: Limits {
                ping_interval: config.ping_interval,
                ping_timeout: config.ping_timeout,
                upgrade_timeout: config.upgrade_timeout,
                close_timeout: config.close_timeout,
                max_payload: config.max_payload,
                max_buffered_packets: config.max_buffered_packets,
                upgrades_allowed,
            },
            phase: Phase::Open,
            transport,
            upgrade: None,
            buffer: VecDeque::new(),
            pong_queued: false,
            inbound: None,
            held_since: None,
            pong_credit: Duration::ZERO,
            outputs: VecDeque::new(),
            timers: TimerTable::default(),
            traffic: Traffic::default(),
            close_reason: None,
        };
        let handshake = Handshake {
            sid,
            upgrades: if upgrades_allowed {
                alloc::vec![TransportKind::WebSocket.as_str().into()]
            } else {
                alloc::vec![]
            },
            ping_interval: duration_millis(config.ping_interval),
            ping_timeout: duration_millis(config.ping_timeout),
            max_payload: config.max_payload as u64,
        };
        session
            .buffer
            .push_back(EncodedMessage::control(&Packet::Open(handshake.to_json())));
        session.flush();
        match dialect.protocol {
            Protocol::V4 => session.set_timer(Timer::Ping, now + config.ping_interval),
            // v3: the client pings; it has an interval and a timeout to.
            Protocol::V3 => session.arm_pong(now, now + config.ping_interval + config.ping_timeout),
        }
        session
    }

    /// How the client encodes, as its handshake said.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The transport currently carrying the session.
    pub fn transport(&self) -> TransportKind {
        match self.transport {
            Transport::Polling { .. } => TransportKind::Polling,
            Transport::WebSocket(_) => TransportKind::WebSocket,
        }
    }

    /// Whether a WebSocket upgrade is in progress.
    pub fn is_upgrading(&self) -> bool {
        self.upgrade.is_some()
    }

    /// Whether the session has ended (its [`Output::Closed`] was emitted).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Why the session ended (what its [`Output::Closed`] said); `None`
    /// while it is open.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// The messages counted since the last call (see [`Traffic`]).
    pub fn take_traffic(&mut self) -> Traffic {
        core::mem::take(&mut self.traffic)
    }

    /// Whether a packet sent now would leave at once (Node's
    /// `transport.writable`): a WebSocket is open, or a long-poll GET is
    /// parked. A volatile emit is dropped when this is false, so a client
    /// that is between polls misses it instead of having it queued.
    pub fn is_writable(&self) -> bool {
        self.phase == Phase::Open
            && match self.transport {
                Transport::Polling { parked } => parked.is_some(),
                Transport::WebSocket(_) => true,
            }
    }

    /// Packets waiting for the client to read them.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// How many more messages [`Session::send`] accepts right now: a layer
    /// above that sends a packet as several messages checks this first, so a
    /// packet is never queued in part.
    pub fn send_capacity(&self) -> usize {
        if self.phase != Phase::Open {
            return 0;
        }
        self.limits
            .max_buffered_packets
            .saturating_sub(self.buffer.len() + self.outputs.len())
    }

    /// The largest POST body or WebSocket message this session accepts. A
    /// driver reads at most one byte more than this before
    /// feeding [`Input::Post`], so an oversized body costs bounded memory.
    pub fn max_payload(&self) -> usize {
        self.limits.max_payload
    }

    /// Feeds one input. Every input first fires the timers due at `now`,
    /// so an input that arrives after a deadline sees the deadline's effect.
    /// Drain [`Session::poll_output`] next.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.fire_timers(now);
        match input {
            Input::Poll(request) => self.poll(now, request),
            Input::PollAborted(request) => self.poll_aborted(request),
            Input::Post { request, body } => self.post(now, request, body, false),
            Input::BinaryPost { request, body } => self.post(now, request, body, true),
            Input::PostFailed { request, failure } => self.post_failed(request, failure),
            Input::Upgrade(ws) => self.upgrade(now, ws),
            Input::WsFrame { ws, frame } => self.ws_frame(now, ws, frame),
            Input::WsFailed { ws, failure } => self.ws_failed(ws, failure),
            Input::WsClosed(ws) => self.ws_closed(ws),
            Input::Timeout => {}
        }
    }

    fn poll(&mut self, now: Instant, request: RequestId) {
        let parked = match self.transport {
            _ if self.phase == Phase::Closed => {
                return self.refuse(request, RequestError::UnknownSid)
            }
            Transport::WebSocket(_) => return self.refuse(request, RequestError::BadRequest),
            Transport::Polling { parked } => parked,
        };
        if parked.is_some() {
            // Node closes the session on a second concurrent poll; the first
            // GET gets the CLOSE packet, this one a 400.
            self.close_with(CloseReason::TransportError(TransportError::OverlappingPoll));
            return self.refuse(request, RequestError::BadRequest);
        }
        self.transport = Transport::Polling {
            parked: Some(request),
        };
        self.flush();
        self.send_upgrade_noop(now);
    }

    fn poll_aborted(&mut self, request: RequestId) {
        if self.transport
            == (Transport::Polling {
                parked: Some(request),
            })
        {
            self.transport = Transport::Polling { parked: None };
            self.close_with(CloseReason::TransportClose);
        }
    }

    fn post(&mut self, now: Instant, request: RequestId, body: Bytes, binary: bool) {
        match self.transport {
            _ if self.phase == Phase::Closed => {
                return self.refuse(request, RequestError::UnknownSid)
            }
            Transport::WebSocket(_) => return self.refuse(request, RequestError::BadRequest),
            Transport::Polling { .. } => {}
        }
        if self.inbound.is_some() {
            self.refuse(request, RequestError::BadRequest);
            return self.close_with(CloseReason::TransportError(TransportError::OverlappingPost));
        }
        if body.len() > self.limits.max_payload {
            self.respond(request, HttpResponse::payload_too_large());
            return self.close_with(CloseReason::PayloadTooLarge);
        }
        if binary && self.dialect.protocol == Protocol::V4 {
            return self.post_failed(request, PostFailure::BinaryContent);
        }
        if self.phase != Phase::Open {
            return self.respond(request, HttpResponse::ok());
        }
        let protocol = self.dialect.protocol;
        let records = match self.dialect.jsonp {
            Some(_) => jsonp_payload(&body).and_then(|body| Records::decode(body, protocol, false)),
            None => Records::decode(body, protocol, binary),
        };
        match records {
            Ok(records) => {
                self.inbound = Some(Inbound {
                    request,
                    records,
                    received: now,
                })
            }
            Err(error) => self.reject_post(request, error),
        }
    }

    fn post_failed(&mut self, request: RequestId, failure: PostFailure) {
        if self.phase == Phase::Closed {
            return self.refuse(request, RequestError::UnknownSid);
        }
        let (status, error) = match failure {
            PostFailure::Timeout => (408, TransportError::BodyTimeout),
            PostFailure::TooManyChunks => (413, TransportError::TooManyChunks),
            PostFailure::Aborted => (400, TransportError::BodyAborted),
            PostFailure::BinaryContent => (400, TransportError::InvalidContent),
        };
        self.respond(request, HttpResponse::empty(status));
        self.close_with(CloseReason::TransportError(error));
    }

    /// Holds back (`true`) or lets out (`false`) the packets of a received
    /// POST: while held, [`Session::poll_output`] yields what is already
    /// queued and nothing more of the body, and the POST stays unanswered.
    /// A driver holds while its application cannot take more messages,
    /// and stops reading its WebSockets meanwhile. Nothing else waits:
    /// requests, heartbeats and sends go on.
    ///
    /// A held client's PONG waits behind what is not read, so the time it
    /// is held does not count against its deadline, up to `pingInterval +
    /// pingTimeout` more per PING: a client whose uploads the application
    /// reads slowly is not timed out for it (Node reads everything at
    /// once, so its PONGs are never held), and one held for good still
    /// times out.
    pub fn hold_messages(&mut self, now: Instant, hold: bool) {
        self.fire_timers(now);
        match (self.held_since, hold) {
            (None, true) => {
                self.held_since = Some(now);
                // While held, the deadline is the latest the credit allows;
                // it comes back to what was used when the hold ends.
                if let Some(due) = self.timers.get(Timer::Pong) {
                    self.set_timer(Timer::Pong, due + self.pong_credit);
                }
            }
            (Some(since), false) => {
                self.held_since = None;
                if let Some(latest) = self.timers.get(Timer::Pong) {
                    let used = now.saturating_duration_since(since).min(self.pong_credit);
                    self.set_timer(Timer::Pong, latest - self.pong_credit + used);
                    self.pong_credit -= used;
                }
            }
            _ => {}
        }
    }

    /// Arms the PONG deadline (v3: the next PING's), counted from `from`,
    /// with a fresh credit for time held.
    fn arm_pong(&mut self, from: Instant, deadline: Instant) {
        self.pong_credit = self.limits.ping_interval + self.limits.ping_timeout;
        let deadline = match &mut self.held_since {
            Some(since) => {
                *since = from;
                deadline + self.pong_credit
            }
            None => deadline,
        };
        self.set_timer(Timer::Pong, deadline);
    }

    fn reject_post(&mut self, request: RequestId, error: DecodeError) {
        self.refuse(request, RequestError::BadRequest);
        self.close_with(CloseReason::ParseError(error));
    }

    fn upgrade(&mut self, now: Instant, ws: WsId) {
        let can_upgrade = self.phase == Phase::Open
            && self.limits.upgrades_allowed
            && self.upgrade.is_none()
            && matches!(self.transport, Transport::Polling { .. });
        if !can_upgrade {
            self.outputs.push_back(Output::WsClose { ws });
            return;
        }
        self.upgrade = Some(Upgrade {
            ws,
            probed: false,
            last_noop: None,
        });
        self.set_timer(Timer::Upgrade, now + self.limits.upgrade_timeout);
    }

    fn ws_frame(&mut self, now: Instant, ws: WsId, frame: Frame) {
        if self.phase == Phase::Closed {
            return;
        }
        let oversized = frame.len() > self.limits.max_payload;
        if self.transport == Transport::WebSocket(ws) {
            if oversized {
                return self.close_with(CloseReason::PayloadTooLarge);
            }
            match self.decode_frame(frame) {
                Ok(packet) => self.handle_packet(now, packet),
                Err(error) => self.close_with(CloseReason::ParseError(error)),
            }
        } else if self.upgrade.is_some_and(|u| u.ws == ws) {
            match self.decode_frame(frame) {
                Ok(packet) if !oversized => self.handle_probe_packet(now, ws, packet),
                _ => self.abandon_upgrade(),
            }
        }
    }

    fn decode_frame(&self, frame: Frame) -> Result<Packet, DecodeError> {
        match self.dialect.protocol {
            Protocol::V4 => Packet::decode_frame(frame),
            Protocol::V3 => v3::decode_frame(frame),
        }
    }

    fn ws_failed(&mut self, ws: WsId, failure: WsFailure) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.transport == Transport::WebSocket(ws) {
            self.close_with(match failure {
                WsFailure::TooLarge => CloseReason::PayloadTooLarge,
                WsFailure::Invalid => CloseReason::TransportError(TransportError::InvalidWebSocket),
            });
        } else if self.upgrade.is_some_and(|u| u.ws == ws) {
            self.abandon_upgrade();
        }
    }

    fn ws_closed(&mut self, ws: WsId) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.transport == Transport::WebSocket(ws) {
            self.close_with(CloseReason::TransportClose);
        } else if self.upgrade.is_some_and(|u| u.ws == ws) {
            self.abandon_upgrade();
        }
    }

    /// Queues a message for the client. Fails once the session is closing,
    /// or when `max_buffered_packets` are already waiting for a client that
    /// does not read.
    pub fn send(&mut self, now: Instant, message: Message) -> Result<(), SendError> {
        self.send_encoded(now, EncodedMessage::from(message))
    }

    /// Queues a message already in wire form ([`Session::send`] encodes
    /// it first): what a broadcast encodes once and gives every session.
    pub fn send_encoded(&mut self, now: Instant, message: EncodedMessage) -> Result<(), SendError> {
        self.fire_timers(now);
        if self.phase != Phase::Open {
            return Err(SendError::Closed);
        }
        // Frames already handed out as outputs but not taken by the driver
        // count too: over WebSocket the buffer empties into them at once.
        if self.send_capacity() == 0 {
            return Err(SendError::BufferFull);
        }
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += message.data_len() as u64;
        self.buffer.push_back(message);
        self.flush();
        Ok(())
    }

    /// Closes the session after what is buffered has been delivered: over
    /// WebSocket at once; over polling, the buffered packets go with the
    /// next GET and the CLOSE with the one after (or after `close_timeout`
    /// without one). Emits [`Output::Closed`] with
    /// [`CloseReason::ForcedClose`].
    pub fn close(&mut self, now: Instant) {
        self.fire_timers(now);
        if self.phase != Phase::Open {
            return;
        }
        self.abandon_upgrade();
        self.drop_inbound();
        self.phase = Phase::Closing;
        self.timers.clear_all();
        self.set_timer(Timer::Close, now + self.limits.close_timeout);
        self.flush();
    }

    /// Fires every timer due at `now`.
    fn fire_timers(&mut self, now: Instant) {
        if self.take_expired(Timer::Close, now) {
            self.close_with(CloseReason::ForcedClose);
        }
        // The PING before its PONG deadline: one call made late must apply
        // both.
        if let Some(due) = self.timers.take_expired(Timer::Ping, now) {
            // A PING the client has not read yet already asks for a PONG: a
            // client that POSTs PONGs but never polls must not grow the buffer
            // by one PING per interval.
            if !self.buffer.contains(&EncodedMessage::PING) {
                self.buffer.push_back(EncodedMessage::PING);
            }
            // Counted from when the PING was due, not from a late wake-up:
            // the client gets exactly pingTimeout, never more.
            self.arm_pong(due, due + self.limits.ping_timeout);
            self.flush();
        }
        if self.take_expired(Timer::Pong, now) {
            self.close_with(CloseReason::PingTimeout);
        }
        if self.take_expired(Timer::Upgrade, now) {
            self.abandon_upgrade();
        }
        if self.take_expired(Timer::UpgradeNoop, now) {
            self.send_upgrade_noop(now);
        }
    }

    /// The next output, if any. Drain after every call. With nothing else
    /// queued, this decodes the next packet of a received POST (unless
    /// [`Session::hold_messages`] holds them).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return Some(output);
            }
            if self.held_since.is_some() {
                return None;
            }
            let inbound = self.inbound.as_mut()?;
            let (request, received) = (inbound.request, inbound.received);
            match inbound.records.next() {
                // A packet that closes the session answers the POST too.
                Some(Ok(packet)) => self.handle_packet(received, packet),
                Some(Err(error)) => {
                    self.inbound = None;
                    self.reject_post(request, error);
                }
                None => {
                    self.inbound = None;
                    self.respond(request, HttpResponse::ok());
                }
            }
        }
    }

    /// Whether packets of a received POST wait to be handed out.
    pub fn has_inbound(&self) -> bool {
        self.inbound.is_some()
    }

    /// When to feed [`Input::Timeout`] next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    fn handle_packet(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::Pong(_) if self.dialect.protocol == Protocol::V4 => {
                self.timers.clear(Timer::Pong);
                self.set_timer(Timer::Ping, now + self.limits.ping_interval);
            }
            Packet::Ping(_) if self.dialect.protocol == Protocol::V3 => {
                // v3: the client pings; answer, and give it another
                // interval and timeout.
                let deadline = now + self.limits.ping_interval + self.limits.ping_timeout;
                self.arm_pong(now, deadline);
                // One PONG waiting is answer enough: a client that pings
                // without reading must not grow the buffer (nor make each
                // PING search it).
                if self.phase == Phase::Open && !self.pong_queued {
                    self.buffer.push_back(EncodedMessage::PONG);
                    self.pong_queued = true;
                    self.flush();
                }
            }
            Packet::Ping(_) | Packet::Pong(_) => {
                self.close_with(CloseReason::TransportError(
                    TransportError::InvalidHeartbeatDirection,
                ));
            }
            Packet::Message(message) => {
                self.traffic.messages_in += 1;
                self.traffic.bytes_in += message.len() as u64;
                self.outputs.push_back(Output::Message(message))
            }
            Packet::Close => self.close_with(CloseReason::PeerClose),
            // Harmless and ignored, as in Node.
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn handle_probe_packet(&mut self, now: Instant, ws: WsId, packet: Packet) {
        if packet.is_ping_probe() {
            self.outputs.push_back(Output::WsSend {
                ws,
                frame: Packet::PONG_PROBE.encode_frame(),
                compress: true,
            });
            // The NOOP cadence starts at the probe, as in Node: the first
            // NOOP goes one tick later, never at once. The client may have
            // sent `5` and then a GET on another connection, and that GET can
            // reach us before the frames; answered at once it would get 200
            // where, a moment later, it gets the 400 of a post-upgrade poll.
            self.upgrade = Some(Upgrade {
                ws,
                probed: true,
                last_noop: Some(now),
            });
            self.send_upgrade_noop(now);
        } else if packet == Packet::Upgrade {
            self.complete_upgrade(ws);
        } else {
            self.abandon_upgrade();
        }
    }

    /// Ends a parked GET with a NOOP (unless it has real packets to carry) so
    /// the upgrading client can pause polling: at most one per 100 ms from
    /// the probe, so a client that keeps polling while it upgrades cannot
    /// make the server spin.
    fn send_upgrade_noop(&mut self, now: Instant) {
        let Some(upgrade) = self.upgrade.filter(|u| u.probed) else {
            return;
        };
        let Transport::Polling {
            parked: Some(request),
        } = self.transport
        else {
            return;
        };
        if !self.buffer.is_empty() {
            return self.flush();
        }
        if let Some(last) = upgrade.last_noop {
            if now < last + UPGRADE_NOOP_INTERVAL {
                return self.set_timer(Timer::UpgradeNoop, last + UPGRADE_NOOP_INTERVAL);
            }
        }
        self.upgrade = Some(Upgrade {
            last_noop: Some(now),
            ..upgrade
        });
        self.transport = Transport::Polling { parked: None };
        let noop = self.payload(&[EncodedMessage::control(&Packet::Noop)]);
        self.respond(request, noop);
    }

    fn complete_upgrade(&mut self, ws: WsId) {
        self.upgrade = None;
        self.timers.clear(Timer::Upgrade);
        self.timers.clear(Timer::UpgradeNoop);
        if let Transport::Polling {
            parked: Some(request),
        } = self.transport
        {
            // A real client pauses polling before it sends `5`, so a GET
            // still parked here was sent after the upgrade (on another
            // connection that raced ahead of the WebSocket): refuse it as
            // any polling request after the upgrade is refused. What is
            // buffered goes over the WebSocket.
            self.refuse(request, RequestError::BadRequest);
        }
        self.transport = Transport::WebSocket(ws);
        self.limits.upgrades_allowed = false;
        self.outputs.push_back(Output::Upgraded);
        self.flush();
    }

    fn abandon_upgrade(&mut self) {
        if let Some(upgrade) = self.upgrade.take() {
            self.timers.clear(Timer::Upgrade);
            self.timers.clear(Timer::UpgradeNoop);
            self.outputs.push_back(Output::WsClose { ws: upgrade.ws });
        }
    }

    /// Moves buffered packets onto the transport if it can take them. A
    /// closing session finishes once its CLOSE has gone out.
    fn flush(&mut self) {
        match self.transport {
            Transport::WebSocket(ws) => {
                let v3 = self.dialect.protocol == Protocol::V3;
                self.pong_queued = false;
                for message in self.buffer.drain(..) {
                    let compress = message.compress();
                    let frame = if v3 {
                        v3::encode_frame(message)
                    } else {
                        message.into_frame()
                    };
                    self.outputs.push_back(Output::WsSend {
                        ws,
                        frame,
                        compress,
                    });
                }
                if self.phase == Phase::Closing {
                    self.finish(CloseReason::ForcedClose);
                }
            }
            Transport::Polling {
                parked: Some(request),
            } => {
                // The CLOSE goes alone, in the GET after the last packets,
                // as Node sends it: a client handles a payload's packets
                // after the transport events it causes, so packets sent
                // with the CLOSE (a DISCONNECT) would come too late.
                let finishing = self.phase == Phase::Closing && self.buffer.is_empty();
                if finishing {
                    self.buffer
                        .push_back(EncodedMessage::control(&Packet::Close));
                } else if self.buffer.is_empty() {
                    return;
                }
                let response = self.payload(&self.buffer);
                self.buffer.clear();
                self.pong_queued = false;
                self.transport = Transport::Polling { parked: None };
                self.respond(request, response);
                if finishing {
                    self.finish(CloseReason::ForcedClose);
                }
            }
            Transport::Polling { parked: None } => {}
        }
    }

    /// Ends the session now, tearing down its transports: a parked GET gets
    /// CLOSE (NOOP when the client itself asked to close, as in Node), and
    /// every WebSocket is closed. Buffered packets are dropped.
    fn close_with(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        self.abandon_upgrade();
        self.drop_inbound();
        self.buffer.clear();
        self.pong_queued = false;
        match self.transport {
            Transport::Polling {
                parked: Some(request),
            } => {
                let last = if reason == CloseReason::PeerClose {
                    Packet::Noop
                } else {
                    Packet::Close
                };
                let response = self.payload(&[EncodedMessage::control(&last)]);
                self.transport = Transport::Polling { parked: None };
                self.respond(request, response);
            }
            // `finish` closes the WebSocket.
            Transport::WebSocket(_) | Transport::Polling { parked: None } => {}
        }
        self.finish(reason);
    }

    /// Stops delivering a POST's packets (the session is ending) and
    /// answers it `ok`, as a POST to a closing session is answered.
    fn drop_inbound(&mut self) {
        if let Some(inbound) = self.inbound.take() {
            self.respond(inbound.request, HttpResponse::ok());
        }
    }

    /// Marks the session closed and reports why.
    fn finish(&mut self, reason: CloseReason) {
        if let Transport::WebSocket(ws) = self.transport {
            self.outputs.push_back(Output::WsClose { ws });
        }
        self.phase = Phase::Closed;
        self.timers.clear_all();
        self.close_reason = Some(reason.clone());
        self.outputs.push_back(Output::Closed(reason));
    }

    /// A polling response carrying `messages` in the client's dialect.
    fn payload<'a>(
        &self,
        messages: impl IntoIterator<Item = &'a EncodedMessage> + Clone,
    ) -> HttpResponse {
        // As in Node: compressed if any packet in it may be.
        let compress = messages.clone().into_iter().any(EncodedMessage::compress);
        let (body, binary) = match self.dialect.protocol {
            Protocol::V4 => (payload::encode_encoded(messages), false),
            Protocol::V3 => v3::encode_payload(messages, self.dialect.binary_payloads),
        };
        let response = match self.dialect.jsonp {
            Some(index) => HttpResponse::payload(jsonp_response(index, &body)),
            None if binary => HttpResponse {
                content_type: ContentType::Binary,
                ..HttpResponse::payload(body)
            },
            None => HttpResponse::payload(body),
        };
        HttpResponse {
            compress,
            ..response
        }
    }

    fn refuse(&mut self, request: RequestId, error: RequestError) {
        self.respond(request, error.response());
    }

    fn respond(&mut self, request: RequestId, response: HttpResponse) {
        self.outputs
            .push_back(Output::Respond { request, response });
    }

    fn set_timer(&mut self, timer: Timer, at: Instant) {
        self.timers.set(timer, at);
    }

    fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        self.timers.take_expired(timer, now).is_some()
    }
}

/// A JSONP response: the payload as a JavaScript string literal, passed
/// to the client's callback `___eio[index]`, as Node writes it
/// (`JSON.stringify`, with U+2028 and U+2029 escaped too).
fn jsonp_response(index: u32, payload: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(payload);
    let mut out = String::with_capacity(payload.len() + 16);
    let _ = write!(out, "___eio[{index}](\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push_str("\");");
    Bytes::from(out)
}

/// The payload of a JSONP POST: the form field `d`, with the client's
/// escaped newlines undone as Node does (the two characters `\n` are a
/// newline, the three `\\n` the two `\n`).
fn jsonp_payload(body: &[u8]) -> Result<Bytes, DecodeError> {
    let form = core::str::from_utf8(body).map_err(|_| DecodeError::InvalidUtf8)?;
    let field = form
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "d")
        .map(|(_, value)| super::percent_decode(value))
        .next_back()
        .ok_or(DecodeError::Empty)?;
    let mut out = String::with_capacity(field.len());
    let mut rest = field.as_str();
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("\\n") {
            out.push('\n');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("\\\\n") {
            out.push_str("\\n");
            rest = tail;
        } else {
            out.push('\\');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Bytes::from(out))
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
