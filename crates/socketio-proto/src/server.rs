//! One client connection on a Socket.IO server.
//!
//! # Theory of operation
//!
//! A [`Connection`] owns the Engine.IO [`Session`] it runs on. The driver
//! feeds it the session's own [`Input`] (a poll, a WebSocket frame, …,
//! [`Input::Timeout`]); the connection forwards it,
//! decodes the messages that come out into Socket.IO packets, and re-emits the
//! session's transport outputs unchanged as [`Output::Transport`]. The
//! composition is lazy: [`Connection::poll_output`] pulls the session's next
//! output only when its own queue is empty, so the packets of a large POST
//! are decoded one at a time, as the driver asks for them, and a driver whose
//! application is busy can hold them ([`Connection::hold_messages`]).
//!
//! Namespaces: a CONNECT for a namespace arrives as [`Output::Connect`], a
//! token the application answers with [`Connection::accept`] (after its
//! middlewares ran, with the socket id it chose) or [`Connection::reject`]
//! (`CONNECT_ERROR` with data). Until one namespace is accepted, a connect
//! timeout runs. As in Node, anything but a CONNECT for a namespace that is not
//! connected, a second CONNECT for one that is, a CONNECT_ERROR from the
//! client, or a packet that does not decode closes the whole connection.
//!
//! Acks: [`Connection::emit_with_ack`] returns an [`AckId`] with a deadline;
//! the client's ACK comes out as [`Output::Ack`], a missed deadline or a
//! socket gone first as [`Output::AckFailed`] (the same vocabulary as the
//! client's, see [`crate::AckError`]). Events that ask for an ack carry its id in
//! [`Output::Event`]; answer with [`Connection::ack`].
//!
//! Every input fires due timers first, like the Engine.IO session.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;
pub use engineio_proto::server::Input;
use engineio_proto::server::{self as eio, Session};
use engineio_proto::{CloseReason, Instant, Message, Protocol, Sid, Str, TimerKind, TimerTable};

use crate::ack::{AckError, AckTable};
use crate::packet::{
    AckId, DecodeError, DecoderConfig, EncodedPacket, Packet, PacketKind, MAIN_NAMESPACE,
};
use crate::parser::{PacketDecoder, SharedParser};
use alloc::boxed::Box;

/// Connection settings, with Node's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// How long a client may stay connected without joining any namespace.
    /// Node: 45 s.
    pub connect_timeout: Duration,
    /// Limits on incoming binary packets.
    pub decoder: DecoderConfig,
    /// The packets' wire format (Node's `parser`): JSON by default; the
    /// peer must speak the same.
    pub parser: SharedParser,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            connect_timeout: Duration::from_secs(45),
            decoder: DecoderConfig::default(),
            parser: SharedParser::default(),
        }
    }
}

/// Why a socket left its namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The server called [`Connection::disconnect`].
    ServerNamespaceDisconnect,
    /// The server closed the whole connection ([`Connection::close`], a
    /// connect timeout, or a protocol violation by the client).
    ForcedServerClose,
    /// The server is shutting down ([`Connection::shut_down`]).
    ServerShuttingDown,
    /// The client sent something that is not Socket.IO.
    ParseError(DecodeError),
    /// The Engine.IO session ended.
    Transport(CloseReason),
}

impl DisconnectReason {
    /// The reason string Node's Socket.IO gives for the same event.
    pub const fn as_node_str(&self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ForcedServerClose => "forced server close",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ParseError(_) => "parse error",
            DisconnectReason::Transport(reason) => reason.as_node_str(),
        }
    }
}

/// What the connection asks of its driver or tells its application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An Engine.IO transport output ([`eio::Output::Respond`],
    /// [`eio::Output::WsSend`] or [`eio::Output::WsClose`]) to carry out.
    Transport(eio::Output),
    /// The session moved to WebSocket.
    Upgraded,
    /// The client asks to join `nsp`: answer with [`Connection::accept`] or
    /// [`Connection::reject`].
    Connect {
        /// The namespace.
        nsp: Str,
        /// The handshake auth object as JSON, if the client sent one.
        auth: Option<Str>,
    },
    /// An event from a socket.
    Event {
        /// The namespace of the socket.
        nsp: Str,
        /// The JSON array `[name, ...args]`.
        data: Str,
        /// Binary attachments the placeholders in `data` refer to.
        attachments: Vec<Bytes>,
        /// Set when the client awaits an answer: reply with [`Connection::ack`].
        ack: Option<AckId>,
    },
    /// The client answered an [`Connection::emit_with_ack`].
    Ack {
        /// The namespace.
        nsp: Str,
        /// Which emit this answers.
        id: AckId,
        /// The JSON array of the answer's arguments, if any.
        data: Option<Str>,
        /// Binary attachments of the answer.
        attachments: Vec<Bytes>,
    },
    /// No answer will come to an [`Connection::emit_with_ack`]: its
    /// deadline passed, or its socket is gone (reported before the
    /// socket's [`Output::Disconnect`]).
    AckFailed {
        /// The namespace.
        nsp: Str,
        /// Which emit failed.
        id: AckId,
        /// Why.
        error: AckError,
    },
    /// The socket of `nsp` is gone.
    Disconnect {
        /// The namespace.
        nsp: Str,
        /// Why.
        reason: DisconnectReason,
    },
    /// The connection is over; nothing but transport refusals follows.
    Closed,
}

/// Why a command of the application was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No socket is connected on this namespace (or no CONNECT awaits an
    /// answer, for `accept` and `reject`).
    #[error("namespace not connected")]
    NotConnected,
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed,
    /// The client reads too slowly: its Engine.IO buffer cannot take the packet.
    #[error("send buffer full")]
    BufferFull,
}

/// The connection's own timers (ack deadlines live in the ack table).
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// No namespace joined by then: close.
    Connect,
}

impl TimerKind for Timer {
    const COUNT: usize = 1;
    fn slot(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    /// The CONNECT awaits the application's answer.
    Pending,
    /// Accepted, under this socket id.
    Connected(Sid),
}

/// One client connection. See the [module docs](self).
#[derive(Debug)]
pub struct Connection {
    engine: Session,
    /// Encodes what this connection sends.
    parser: SharedParser,
    /// Decodes what it receives.
    decoder: Box<dyn PacketDecoder>,
    namespaces: Namespaces,
    /// Emits awaiting the client's ack, with their namespace.
    acks: AckTable<AckId, Str>,
    next_ack: u64,
    /// The connect timeout (no namespace joined by then: close).
    timers: TimerTable<Timer, { Timer::COUNT }>,
    closed: bool,
    /// The latest time an input brought: the session's outputs are decoded
    /// lazily, by [`Connection::poll_output`], which takes no time.
    now: Instant,
    outputs: VecDeque<Output>,
}

/// A connection's namespaces and where each stands, sorted by name. Almost
/// every connection joins one or two namespaces, so this is a small sorted
/// `Vec`: a `BTreeMap` would allocate a whole node (over 1 KiB) per
/// connection.
#[derive(Debug, Default)]
struct Namespaces(Vec<(Str, Membership)>);

impl Namespaces {
    fn position(&self, nsp: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(name, _)| name.as_str().cmp(nsp))
    }

    fn get(&self, nsp: &str) -> Option<&Membership> {
        self.position(nsp).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, nsp: &str) -> Option<&mut Membership> {
        self.position(nsp).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, nsp: Str, membership: Membership) {
        match self.position(&nsp) {
            Ok(i) => self.0[i].1 = membership,
            Err(i) => {
                // Most connections join one namespace: room for one, not
                // the four a first push reserves.
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (nsp, membership))
            }
        }
    }

    fn remove(&mut self, nsp: &str) -> Option<Membership> {
        self.position(nsp).ok().map(|i| self.0.remove(i).1)
    }

    fn iter(&self) -> impl Iterator<Item = (&Str, &Membership)> {
        self.0.iter().map(|(nsp, membership)| (nsp, membership))
    }
}

impl IntoIterator for Namespaces {
    type Item = (Str, Membership);
    type IntoIter = alloc::vec::IntoIter<(Str, Membership)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl Connection {
    /// Wraps a freshly opened Engine.IO session (its handshake outputs are
    /// forwarded by the first drain). Drain [`Connection::poll_output`] next.
    pub fn new(now: Instant, engine: Session, config: &ConnectionConfig) -> Connection {
        let mut timers = TimerTable::default();
        timers.set(Timer::Connect, now + config.connect_timeout);
        let legacy = engine.dialect().protocol == Protocol::V3;
        let mut connection = Connection {
            engine,
            parser: config.parser.clone(),
            decoder: config.parser.decoder(&config.decoder),
            namespaces: Namespaces::default(),
            acks: AckTable::default(),
            next_ack: 0,
            timers,
            closed: false,
            now,
            outputs: VecDeque::new(),
        };
        if legacy {
            // Socket.IO v4 (socket.io 2.x clients): the main namespace is
            // joined without a CONNECT, as Node's `client.connect("/")`.
            connection.handle_packet(
                now,
                Packet::new(PacketKind::Connect, Str::from_static(MAIN_NAMESPACE), None),
            );
        }
        connection
    }

    /// Whether the client speaks Socket.IO v4 over Engine.IO v3 (socket.io
    /// 2.x): the main namespace is joined at once, a CONNECT names its
    /// namespace with the auth as a query (`/admin?token=1`), and the
    /// answer carries no socket id. (A middleware's refusal carries the
    /// error's `data`, or its message, alone: the application's to write.)
    pub fn is_legacy(&self) -> bool {
        self.engine.dialect().protocol == Protocol::V3
    }

    /// The Engine.IO session underneath (sid, transport, buffer level).
    pub fn engine(&self) -> &Session {
        &self.engine
    }

    /// The Engine.IO messages counted since the last call
    /// ([`Session::take_traffic`]).
    pub fn take_traffic(&mut self) -> engineio_proto::server::Traffic {
        self.engine.take_traffic()
    }

    /// The socket id on `nsp`, if a socket is connected there.
    pub fn socket_id(&self, nsp: &str) -> Option<Sid> {
        match self.namespaces.get(nsp) {
            Some(Membership::Connected(sid)) => Some(*sid),
            _ => None,
        }
    }

    /// The namespaces with a connected socket.
    pub fn connected_namespaces(&self) -> impl Iterator<Item = &Str> {
        self.namespaces
            .iter()
            .filter(|(_, m)| matches!(m, Membership::Connected(_)))
            .map(|(nsp, _)| nsp)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds one transport input or [`Input::Timeout`]: due timers fire
    /// first (the connect timeout, ack deadlines, the session's), then the
    /// session takes the input. Drain [`Connection::poll_output`] next; the
    /// messages it brings are decoded there, one per call.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.fire_timers(now);
        self.engine.handle_input(now, input);
    }

    /// Fires due timers (connect timeout, ack deadlines, the session's).
    fn fire_timers(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.timers.take_expired(Timer::Connect, now).is_some()
            && self.connected_namespaces().next().is_none()
        {
            self.close_with(now, DisconnectReason::ForcedServerClose);
        }
        while let Some((id, nsp)) = self.acks.pop_expired(now) {
            let error = AckError::Timeout;
            self.outputs.push_back(Output::AckFailed { nsp, id, error });
        }
        self.engine.handle_input(now, Input::Timeout);
    }

    /// Accepts the pending CONNECT for `nsp` under socket id `sid`, sending
    /// `{"sid":…}` (plus `pid` when `pid` is given, for connection state
    /// recovery). On an error nothing changes: a CONNECT refused for a full
    /// buffer stays pending.
    pub fn accept(
        &mut self,
        now: Instant,
        nsp: &str,
        sid: Sid,
        pid: Option<&str>,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        self.check_open()?;
        if self.namespaces.get(nsp) != Some(&Membership::Pending) {
            return Err(CommandError::NotConnected);
        }
        let data = match pid {
            _ if self.is_legacy() => None,
            Some(pid) => Some(alloc::format!(
                r#"{{"sid":"{sid}","pid":"{}"}}"#,
                escape_json(pid)
            )),
            None => Some(alloc::format!(r#"{{"sid":"{sid}"}}"#)),
        };
        let packet = Packet::new(PacketKind::Connect, Str::from(nsp), data.map(Str::from));
        // Write first: a refused accept (full buffer) leaves the CONNECT
        // pending, so the application can answer it again.
        self.write(now, &self.parser.encode(&packet))?;
        if let Some(membership) = self.namespaces.get_mut(nsp) {
            *membership = Membership::Connected(sid);
            self.timers.clear(Timer::Connect);
        }
        Ok(())
    }

    /// Refuses the pending CONNECT for `nsp` with a CONNECT_ERROR carrying
    /// `data` (a JSON object such as `{"message":"…","data":…}`). On an
    /// error the CONNECT stays pending.
    pub fn reject(&mut self, now: Instant, nsp: &str, data: Str) -> Result<(), CommandError> {
        self.fire_timers(now);
        self.check_open()?;
        if self.namespaces.get(nsp) != Some(&Membership::Pending) {
            return Err(CommandError::NotConnected);
        }
        let packet = Packet::new(PacketKind::ConnectError, Str::from(nsp), Some(data));
        // As in `accept`: a refused reject leaves the CONNECT pending.
        self.write(now, &self.parser.encode(&packet))?;
        self.namespaces.remove(nsp);
        Ok(())
    }

    /// Sends an already encoded packet (an EVENT, typically one encoded once
    /// for a whole broadcast) to the socket on `nsp`.
    pub fn emit(
        &mut self,
        now: Instant,
        nsp: &str,
        packet: &EncodedPacket,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        self.check_connected(nsp)?;
        self.write(now, packet)
    }

    /// Sends an already encoded packet only if it can leave at once
    /// (Node's `volatile` flag): over an open WebSocket, or to a parked
    /// long-poll GET. Returns whether it was sent; a dropped packet is not
    /// an error.
    pub fn emit_volatile(
        &mut self,
        now: Instant,
        nsp: &str,
        packet: &EncodedPacket,
    ) -> Result<bool, CommandError> {
        self.fire_timers(now);
        self.check_connected(nsp)?;
        if !self.engine.is_writable() {
            return Ok(false);
        }
        self.write(now, packet)?;
        Ok(true)
    }

    /// Sends an event that asks for an ack; the answer comes as
    /// [`Output::Ack`] or, after `timeout` or once the socket is gone,
    /// [`Output::AckFailed`].
    pub fn emit_with_ack(
        &mut self,
        now: Instant,
        packet: Packet,
        timeout: Option<Duration>,
    ) -> Result<AckId, CommandError> {
        self.emit_with_ack_compress(now, packet, timeout, true)
    }

    /// [`Connection::emit_with_ack`], saying whether the transport may
    /// compress the packet (Node's `socket.compress(false)`).
    pub fn emit_with_ack_compress(
        &mut self,
        now: Instant,
        mut packet: Packet,
        timeout: Option<Duration>,
        compress: bool,
    ) -> Result<AckId, CommandError> {
        self.fire_timers(now);
        self.check_connected(&packet.nsp)?;
        self.next_ack += 1;
        let id = AckId(self.next_ack);
        packet.kind = PacketKind::Event;
        packet.id = Some(id);
        let encoded = self.parser.encode(&packet).with_compress(compress);
        self.write(now, &encoded)?;
        self.acks.insert(id, timeout.map(|t| now + t), packet.nsp);
        Ok(id)
    }

    /// Answers the client's event `id` on `nsp` with `data` (a JSON array of
    /// arguments) and attachments.
    pub fn ack(
        &mut self,
        now: Instant,
        nsp: &str,
        id: AckId,
        data: Str,
        attachments: Vec<Bytes>,
    ) -> Result<(), CommandError> {
        self.fire_timers(now);
        self.check_connected(nsp)?;
        let packet = Packet {
            kind: PacketKind::Ack,
            nsp: Str::from(nsp),
            id: Some(id),
            data: Some(data),
            attachments,
        };
        self.write(now, &self.parser.encode(&packet))
    }

    /// Disconnects the socket on `nsp` (the client gets DISCONNECT); the
    /// connection stays open for its other namespaces. On an error nothing
    /// changes.
    pub fn disconnect(&mut self, now: Instant, nsp: &str) -> Result<(), CommandError> {
        self.fire_timers(now);
        self.check_connected(nsp)?;
        let packet = Packet::new(PacketKind::Disconnect, Str::from(nsp), None);
        // As in `accept`: on an error (a full buffer) the socket stays, so
        // client and server never disagree on who is connected.
        self.write(now, &self.parser.encode(&packet))?;
        self.leave(Str::from(nsp), DisconnectReason::ServerNamespaceDisconnect);
        Ok(())
    }

    /// Closes the connection: every socket disconnects (`forced server
    /// close`), then the Engine.IO session closes after delivering what is
    /// buffered. The client is not told its sockets are gone: it sees the
    /// session close and reconnects (use [`Connection::disconnect_all`] to
    /// send it away).
    pub fn close(&mut self, now: Instant) {
        self.fire_timers(now);
        self.close_with(now, DisconnectReason::ForcedServerClose);
    }

    /// Closes the connection because the server is shutting down: as
    /// [`Connection::close`], with reason `server shutting down` (Node's
    /// `io.close()`); the client reconnects, to another server or later.
    pub fn shut_down(&mut self, now: Instant) {
        self.fire_timers(now);
        self.close_with(now, DisconnectReason::ServerShuttingDown);
    }

    /// Sends the client away (Node's `socket.disconnect(true)`): every
    /// socket gets a DISCONNECT and leaves with `server namespace
    /// disconnect`, which connection state recovery does not keep; then the
    /// session closes once they are delivered. An official client stays
    /// away; one that comes back is a new session. A socket whose
    /// DISCONNECT finds the buffer full leaves all the same: that client
    /// sees the session close instead, and reconnects to a new session.
    pub fn disconnect_all(&mut self, now: Instant) {
        self.fire_timers(now);
        if self.closed {
            return;
        }
        let connected: Vec<Str> = self.connected_namespaces().cloned().collect();
        for nsp in connected {
            let packet = Packet::new(PacketKind::Disconnect, nsp.clone(), None);
            let _ = self.write(now, &self.parser.encode(&packet));
            self.leave(nsp, DisconnectReason::ServerNamespaceDisconnect);
        }
        self.close_with(now, DisconnectReason::ForcedServerClose);
    }

    /// The next output, if any. Drain after every call. Composition is
    /// lazy: with nothing queued here, this takes the session's next output
    /// and decodes it, so a POST of many packets is decoded one packet per
    /// call (see [`Connection::hold_messages`]).
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return Some(output);
            }
            let output = self.engine.poll_output()?;
            self.forward_engine_output(output);
        }
    }

    /// Holds back (`true`) or lets out (`false`) the client's messages not
    /// yet decoded: see [`Session::hold_messages`]. A driver holds while
    /// its application cannot take more events.
    pub fn hold_messages(&mut self, now: Instant, hold: bool) {
        self.engine.hold_messages(now, hold);
    }

    /// The earliest deadline of the connection and its session.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.timers.next(),
            self.acks.next_deadline(),
            self.engine.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn check_open(&self) -> Result<(), CommandError> {
        if self.closed {
            Err(CommandError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_connected(&self, nsp: &str) -> Result<(), CommandError> {
        self.check_open()?;
        match self.namespaces.get(nsp) {
            Some(Membership::Connected(_)) => Ok(()),
            _ => Err(CommandError::NotConnected),
        }
    }

    /// Queues every message of a packet, or none of them.
    fn write(&mut self, now: Instant, packet: &EncodedPacket) -> Result<(), CommandError> {
        if self.engine.send_capacity() < packet.message_count() {
            return Err(if self.engine.is_closed() {
                CommandError::Closed
            } else {
                CommandError::BufferFull
            });
        }
        for message in packet.encoded_messages() {
            self.engine
                .send_encoded(now, message)
                .map_err(|_| CommandError::Closed)?;
        }
        Ok(())
    }

    /// Forwards one output of the session, decoding a message.
    fn forward_engine_output(&mut self, output: eio::Output) {
        match output {
            eio::Output::Message(message) => self.handle_message(self.now, message),
            eio::Output::Upgraded => self.outputs.push_back(Output::Upgraded),
            eio::Output::Closed(reason) => self.engine_closed(reason),
            transport => self.outputs.push_back(Output::Transport(transport)),
        }
    }

    fn handle_message(&mut self, now: Instant, message: Message) {
        if self.closed {
            return;
        }
        match self.decoder.decode(message) {
            Ok(Some(packet)) => self.handle_packet(now, packet),
            Ok(None) => {}
            Err(error) => self.close_with(now, DisconnectReason::ParseError(error)),
        }
    }

    fn handle_packet(&mut self, now: Instant, mut packet: Packet) {
        if packet.kind == PacketKind::Connect && self.is_legacy() {
            // `/admin?token=1`: the namespace, and the query as the auth
            // (Node reads both from the URL; any data sent is ignored).
            let (nsp, query) = packet.nsp.split_once('?').unwrap_or((&packet.nsp, ""));
            let nsp = if nsp.is_empty() { MAIN_NAMESPACE } else { nsp };
            let auth = (!query.is_empty()).then(|| Str::from(query_as_json(query)));
            packet = Packet {
                nsp: Str::from(nsp),
                data: auth,
                ..packet
            };
        }
        let membership = self.namespaces.get(&packet.nsp).copied();
        match (packet.kind, membership) {
            (PacketKind::Connect, None) => {
                self.namespaces
                    .insert(packet.nsp.clone(), Membership::Pending);
                self.outputs.push_back(Output::Connect {
                    nsp: packet.nsp,
                    auth: packet.data,
                });
            }
            (PacketKind::Event, Some(Membership::Connected(_))) => {
                self.outputs.push_back(Output::Event {
                    nsp: packet.nsp,
                    data: packet.data.unwrap_or_default(),
                    attachments: packet.attachments,
                    ack: packet.id,
                });
            }
            (PacketKind::Ack, Some(Membership::Connected(_))) => {
                let Some(id) = packet.id else { return };
                // An ACK from another namespace is ignored and must leave the
                // pending one (and its deadline) in place.
                if self.acks.get(&id) == Some(&packet.nsp) {
                    self.acks.remove(&id);
                    self.outputs.push_back(Output::Ack {
                        nsp: packet.nsp,
                        id,
                        data: packet.data,
                        attachments: packet.attachments,
                    });
                }
            }
            (PacketKind::Disconnect, Some(Membership::Connected(_))) => {
                self.leave(packet.nsp, DisconnectReason::ClientNamespaceDisconnect);
            }
            // A second CONNECT, a CONNECT_ERROR from the client, or traffic
            // for a namespace it has not joined: Node closes the connection.
            _ => self.close_with(now, DisconnectReason::ForcedServerClose),
        }
    }

    /// Forgets the socket of `nsp`, failing its awaited acks first.
    fn leave(&mut self, nsp: Str, reason: DisconnectReason) {
        if let Some(Membership::Connected(_)) = self.namespaces.remove(&nsp) {
            self.fail_acks(|of| *of == nsp);
            self.outputs.push_back(Output::Disconnect { nsp, reason });
        }
    }

    /// Fails the awaited acks of the namespaces `pick` chooses.
    fn fail_acks(&mut self, mut pick: impl FnMut(&Str) -> bool) {
        for (id, nsp) in self.acks.take_where(|_, nsp| pick(nsp)) {
            let error = AckError::Disconnected;
            self.outputs.push_back(Output::AckFailed { nsp, id, error });
        }
    }

    /// Disconnects every socket and closes the session.
    fn close_with(&mut self, now: Instant, reason: DisconnectReason) {
        if self.closed {
            return;
        }
        self.drop_sockets(reason);
        self.engine.close(now);
    }

    /// Forgets every socket, reporting each as gone for `reason`.
    fn drop_sockets(&mut self, reason: DisconnectReason) {
        self.closed = true;
        self.timers.clear(Timer::Connect);
        self.fail_acks(|_| true);
        let namespaces = core::mem::take(&mut self.namespaces);
        for (nsp, membership) in namespaces {
            if let Membership::Connected(_) = membership {
                self.outputs.push_back(Output::Disconnect {
                    nsp,
                    reason: reason.clone(),
                });
            }
        }
    }

    fn engine_closed(&mut self, reason: CloseReason) {
        if !self.closed {
            self.drop_sockets(DisconnectReason::Transport(reason));
        }
        self.outputs.push_back(Output::Closed);
    }
}

/// Escapes a string for a JSON string literal.
/// A query string as a JSON object of strings (`URLSearchParams`: `+` is a
/// space, `%XX` decoded, the last of duplicate keys wins).
fn query_as_json(query: &str) -> alloc::string::String {
    let mut entries: alloc::vec::Vec<(alloc::string::String, alloc::string::String)> =
        alloc::vec::Vec::new();
    // Where each key is in `entries`: linear in the query, however many
    // keys a peer sends.
    let mut index = alloc::collections::BTreeMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (
            engineio_proto::server::percent_decode(key),
            engineio_proto::server::percent_decode(value),
        );
        match index.get(&key) {
            Some(&at) => entries[at] = (key, value),
            None => {
                index.insert(key.clone(), entries.len());
                entries.push((key, value));
            }
        }
    }
    let mut out = alloc::string::String::from("{");
    for (index, (key, value)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(&escape_json(key));
        out.push_str("\":\"");
        out.push_str(&escape_json(value));
        out.push('"');
    }
    out.push('}');
    out
}

fn escape_json(s: &str) -> alloc::string::String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .into()
}

#[cfg(test)]
mod tests;
