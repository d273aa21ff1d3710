//! The Socket.IO connection machine as the session task drives it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use engineio_proto::server::{Session, Traffic};
use engineio_proto::{CloseReason, Instant, Sid, Str, TransportKind};
use futures_channel::oneshot;
use socketio_proto::server::{CommandError, Connection, ConnectionConfig, Input, Output};
use socketio_proto::{AckId, Packet};

use crate::engine::session::{Driven, Step};
use crate::handle::MachineHandle;
use crate::payload::Payload;

/// Where the answer to a server emit goes.
pub(crate) type AckReply = oneshot::Sender<Result<Payload, AckError>>;

/// Why an awaited ack did not come: the deadline passed (`Timeout`), or the
/// socket disconnected first or the event could not be sent
/// (`Disconnected`). The same type as the client's protocol machine uses.
pub use socketio_proto::AckError;

/// The application's handle on a Socket.IO connection's machine.
pub(crate) type ConnectionHandle = Arc<MachineHandle<SioMachine>>;

/// A Socket.IO connection, driven by a session task.
pub(crate) struct SioMachine {
    conn: Connection,
    /// Server emits awaiting the client's ack.
    awaiting: HashMap<AckId, AckReply>,
}

impl SioMachine {
    pub(crate) fn new(now: Instant, session: Session, config: &ConnectionConfig) -> Self {
        SioMachine {
            conn: Connection::new(now, session, config),
            awaiting: HashMap::new(),
        }
    }

    /// The transport the connection runs on now.
    pub(crate) fn transport(&self) -> &'static str {
        self.conn.engine().transport().as_str()
    }

    /// The Engine.IO session's id.
    pub(crate) fn engine_id(&self) -> Sid {
        self.conn.engine().sid()
    }

    /// The connection machine, for a handle's change.
    pub(crate) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Emits an event that asks for an ack, compressed or not; the answer
    /// (or its absence) resolves `reply`.
    pub(crate) fn emit_with_ack(
        &mut self,
        now: Instant,
        packet: Packet,
        timeout: Option<Duration>,
        compress: bool,
        reply: AckReply,
    ) -> Result<(), CommandError> {
        match self
            .conn
            .emit_with_ack_compress(now, packet, timeout, compress)
        {
            Ok(id) => {
                self.awaiting.insert(id, reply);
                Ok(())
            }
            Err(error) => {
                let _ = reply.send(Err(AckError::Disconnected));
                Err(error)
            }
        }
    }
}

impl Driven for SioMachine {
    type Event = Output;

    fn sid(&self) -> Sid {
        self.conn.engine().sid()
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        self.conn.handle_input(now, input)
    }
    fn hold_messages(&mut self, now: Instant, hold: bool) {
        self.conn.hold_messages(now, hold)
    }
    fn close(&mut self, now: Instant) {
        // The server is shutting down (or nothing can reach the
        // connection any more).
        self.conn.shut_down(now);
    }
    fn poll_output(&mut self) -> Option<Step<Output>> {
        loop {
            match self.conn.poll_output()? {
                Output::Transport(transport) => return Some(Step::Transport(transport)),
                Output::Ack {
                    id,
                    data,
                    attachments,
                    ..
                } => {
                    if let Some(reply) = self.awaiting.remove(&id) {
                        let args = data.unwrap_or_else(|| Str::from_static("[]"));
                        let _ = reply.send(Ok(Payload::from_raw(args, attachments)));
                    }
                }
                Output::AckFailed { id, error, .. } => {
                    if let Some(reply) = self.awaiting.remove(&id) {
                        let _ = reply.send(Err(error));
                    }
                }
                event => return Some(Step::Event(event)),
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        // The connection machine owns every deadline, ack deadlines included.
        self.conn.poll_timeout()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed() && self.conn.engine().is_closed()
    }
    fn transport(&self) -> TransportKind {
        self.conn.engine().transport()
    }
    fn close_reason(&self) -> Option<&CloseReason> {
        self.conn.engine().close_reason()
    }
    fn take_traffic(&mut self) -> Traffic {
        self.conn.take_traffic()
    }
}
