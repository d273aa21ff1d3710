//! The Socket.IO connection machine as the session task drives it.

use bytes::Bytes;
use engineio_proto::server::Session;
use engineio_proto::{Frame, Instant, RequestId, Sid, Str, WsId};
use socketio_proto::server::{CommandError, Connection, ConnectionConfig, Output};
use socketio_proto::{AckId, EncodedPacket};

use crate::engine::session::{Command, Driven, Step};

/// What the application asks of a Socket.IO connection.
pub(crate) enum SioCommand {
    Accept {
        nsp: Str,
        sid: Sid,
    },
    Reject {
        nsp: Str,
        data: Str,
    },
    Emit {
        nsp: Str,
        packet: EncodedPacket,
    },
    Ack {
        nsp: Str,
        id: AckId,
        data: Str,
        attachments: Vec<Bytes>,
    },
    Disconnect {
        nsp: Str,
    },
}

/// A Socket.IO connection, driven by a session task.
pub(crate) struct SioMachine {
    pub(crate) conn: Connection,
}

impl SioMachine {
    pub(crate) fn new(now: Instant, session: Session, config: &ConnectionConfig) -> Self {
        SioMachine {
            conn: Connection::new(now, session, config),
        }
    }
}

impl Driven for SioMachine {
    type Event = Output;

    fn sid(&self) -> Sid {
        self.conn.engine().sid()
    }
    fn handle_poll(&mut self, now: Instant, request: RequestId) {
        self.conn.handle_poll(now, request)
    }
    fn handle_poll_aborted(&mut self, now: Instant, request: RequestId) {
        self.conn.handle_poll_aborted(now, request)
    }
    fn handle_post(&mut self, now: Instant, request: RequestId, body: Bytes) {
        self.conn.handle_post(now, request, body)
    }
    fn handle_upgrade(&mut self, now: Instant, ws: WsId) {
        self.conn.handle_upgrade(now, ws)
    }
    fn handle_ws_frame(&mut self, now: Instant, ws: WsId, frame: Frame) {
        self.conn.handle_ws_frame(now, ws, frame)
    }
    fn handle_ws_closed(&mut self, now: Instant, ws: WsId) {
        self.conn.handle_ws_closed(now, ws)
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now)
    }
    fn command(&mut self, now: Instant, command: Command) {
        let result = match command {
            Command::Sio(SioCommand::Accept { nsp, sid }) => self.conn.accept(now, &nsp, sid, None),
            Command::Sio(SioCommand::Reject { nsp, data }) => self.conn.reject(now, &nsp, data),
            Command::Sio(SioCommand::Emit { nsp, packet }) => self.conn.emit(now, &nsp, &packet),
            Command::Sio(SioCommand::Ack {
                nsp,
                id,
                data,
                attachments,
            }) => self.conn.ack(now, &nsp, id, data, attachments),
            Command::Sio(SioCommand::Disconnect { nsp }) => self.conn.disconnect(now, &nsp),
            Command::Close => {
                self.conn.close(now);
                Ok(())
            }
            Command::Send(_) => Ok(()),
        };
        // A client that does not read: end that one connection. Any other
        // error means the socket left meanwhile: nothing to do.
        if let Err(CommandError::BufferFull) = result {
            self.conn.close(now);
        }
    }
    fn poll_output(&mut self) -> Option<Step<Output>> {
        Some(match self.conn.poll_output()? {
            Output::Transport(transport) => Step::Transport(transport),
            Output::Upgraded => return self.poll_output(),
            event => Step::Event(event),
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.conn.poll_timeout()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed() && self.conn.engine().is_closed()
    }
}
