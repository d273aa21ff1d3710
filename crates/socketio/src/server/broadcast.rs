//! Broadcasts: one packet to every socket a room selection names.
//!
//! The packet is encoded once; every recipient gets a clone that shares its
//! buffers. Delivery never waits on a recipient: each connection's command
//! queue is bounded, and a recipient whose queue is full misses the packet and
//! is reported in [`BroadcastError::Lagging`] (an await here could deadlock two
//! connections broadcasting to each other, and an unbounded queue could grow
//! without limit behind a client that does not read).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::stream::{FuturesUnordered, Stream};

use engineio_proto::Sid;
use serde::Serialize;
use socketio_proto::rooms::Room;
use socketio_proto::{Packet, PacketKind};

use super::socket::{Payload, PayloadError, SocketRef};
use super::{AckError, NamespaceState, SioCommand};
use crate::engine::session::{Command, Input};

/// Why a broadcast did not reach every selected socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The arguments could not be encoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// These sockets' queues were full (clients that do not read): they
    /// missed this packet. Every other selected socket got it.
    #[error("{} socket(s) lagging", .0.len())]
    Lagging(Vec<Sid>),
}

/// A broadcast being built: target rooms, excluded rooms, then an emit.
/// No rooms means the whole namespace.
#[derive(Clone)]
pub struct BroadcastOperator {
    namespace: Arc<NamespaceState>,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

impl BroadcastOperator {
    pub(crate) fn new(namespace: Arc<NamespaceState>) -> Self {
        BroadcastOperator {
            namespace,
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// Also targets the sockets in `room`.
    pub fn to(mut self, room: &str) -> Self {
        self.rooms.push(Room::from(room));
        self
    }

    /// Leaves out the sockets in `room`.
    pub fn except(mut self, room: &str) -> Self {
        self.except.push(Room::from(room));
        self
    }

    /// The selected sockets (Node's `fetchSockets`, on this server).
    pub fn fetch_sockets(&self) -> Vec<SocketRef> {
        self.targets()
    }

    /// Makes every selected socket join `room` (Node's `socketsJoin`).
    pub fn sockets_join(&self, room: &str) {
        for socket in self.targets() {
            socket.join(room);
        }
    }

    /// Makes every selected socket leave `room` (Node's `socketsLeave`).
    pub fn sockets_leave(&self, room: &str) {
        for socket in self.targets() {
            socket.leave(room);
        }
    }

    /// Disconnects every selected socket (Node's `disconnectSockets`); their
    /// clients see `io server disconnect`.
    pub async fn disconnect_sockets(&self) {
        for socket in self.targets() {
            let _ = socket.disconnect().await;
        }
    }

    /// Emits `event` to every selected socket, each asked for an ack, and
    /// returns their answers as a stream, in the order they come (Node's
    /// `io.timeout(ms).emitWithAck`). Every selected socket yields exactly
    /// one item: its answer, or `AckError::Timeout` after `timeout`, or
    /// `AckError::Disconnected`.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Result<AckStream, BroadcastError> {
        let nsp = self.namespace.name.clone();
        // The event is encoded per socket (each carries its own ack id); the
        // data and attachments are shared.
        let data = payload.event_data(event)?;
        let answers = FuturesUnordered::new();
        for socket in self.targets() {
            let (reply, answer) = oneshot::channel();
            let packet = Packet {
                attachments: payload.attachments().to_vec(),
                ..Packet::new(PacketKind::Event, nsp.clone(), Some(data.clone()))
            };
            let command = Input::Command(Command::Sio(SioCommand::EmitWithAck {
                packet,
                timeout,
                reply,
            }));
            let id = socket.id();
            let sent = socket.inner.commands.clone().try_send(command).is_ok();
            answers.push(Box::pin(async move {
                let outcome = if sent {
                    answer.await.unwrap_or(Err(AckError::Disconnected))
                } else {
                    Err(AckError::Disconnected)
                };
                (id, outcome)
            }) as AckFuture);
        }
        Ok(AckStream { answers })
    }

    /// The ids of the sockets this broadcast reaches now.
    pub fn socket_ids(&self) -> Vec<Sid> {
        self.targets().iter().map(SocketRef::id).collect()
    }

    /// Emits `event` with one argument to every selected socket.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), BroadcastError> {
        self.emit_payload(event, Payload::single(value)?).await
    }

    /// Emits `event` with a payload to every selected socket.
    pub async fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), BroadcastError> {
        let nsp = self.namespace.name.clone();
        let mut data = payload.event_data(event)?;
        // Recorded even when no socket is selected now: a recovering client
        // may be away and get it on its return.
        if let Some(recovery) = &self.namespace.recovery {
            data = recovery.record(data, payload.attachments(), &self.rooms, &self.except);
        }
        let targets = self.targets();
        if targets.is_empty() {
            return Ok(());
        }
        let encoded = Packet {
            attachments: payload.attachments().to_vec(),
            ..Packet::new(PacketKind::Event, nsp.clone(), Some(data))
        }
        .encode();
        let mut lagging = Vec::new();
        for socket in &targets {
            let command = Input::Command(Command::Sio(SioCommand::Emit {
                nsp: nsp.clone(),
                packet: encoded.clone(),
            }));
            if socket.inner.commands.clone().try_send(command).is_err() {
                lagging.push(socket.id());
            }
        }
        if lagging.is_empty() {
            Ok(())
        } else {
            tracing::warn!(count = lagging.len(), "broadcast skipped lagging sockets");
            Err(BroadcastError::Lagging(lagging))
        }
    }

    /// The selected sockets, collected so no lock is held while sending.
    fn targets(&self) -> Vec<SocketRef> {
        let members = self.namespace.members();
        members
            .rooms
            .select(&self.rooms, &self.except)
            .filter_map(|id| members.sockets.get(id).cloned())
            .collect()
    }
}

type AckFuture = Pin<Box<dyn Future<Output = (Sid, Result<Payload, AckError>)> + Send>>;

/// The answers to a broadcast with acks: one item per selected socket, in
/// the order they arrive. Collect it with `StreamExt::collect` to wait for
/// all of them.
pub struct AckStream {
    answers: FuturesUnordered<AckFuture>,
}

impl AckStream {
    /// How many answers are still to come.
    pub fn pending(&self) -> usize {
        self.answers.len()
    }
}

impl Stream for AckStream {
    type Item = (Sid, Result<Payload, AckError>);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.answers).poll_next(cx)
    }
}
