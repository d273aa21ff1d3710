//! Broadcast operators: a selection of sockets (rooms, exceptions, flags)
//! and what to do with it, carried out by the namespace's adapter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, SelectAll, Stream, StreamExt};

use bytes::Bytes;
use engineio_proto::{Sid, Str};
use serde::Serialize;
use socketio_proto::{Packet, PacketKind};

use super::namespace::NamespaceState;
use super::room_param::RoomParam;
use super::AckError;
use crate::adapter::{AdapterError, BroadcastOptions, RemoteSocket, Scope};
use crate::payload::{Payload, PayloadError, TypedEvent};

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
    /// The adapter could not reach the other servers; this server's
    /// sockets got the packet.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}

/// A broadcast being built (Node's `BroadcastOperator`): target rooms,
/// excluded rooms and flags, then an operation. No rooms means the whole
/// namespace.
#[derive(Clone)]
pub struct BroadcastOperator {
    /// `None` for the socket of a namespace that is gone: it reaches nobody.
    namespace: Option<Arc<NamespaceState>>,
    opts: BroadcastOptions,
}

impl BroadcastOperator {
    pub(crate) fn new(namespace: Option<Arc<NamespaceState>>) -> Self {
        BroadcastOperator {
            namespace,
            opts: BroadcastOptions::default(),
        }
    }

    /// Also targets the sockets in `rooms`, one room or several (Node's
    /// `to` and `in`).
    pub fn to(mut self, rooms: impl RoomParam) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Leaves out the sockets in `rooms`, one room or several.
    pub fn except(mut self, rooms: impl RoomParam) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// Drops the packet for sockets that cannot take it at once (a polling
    /// client between two requests, a full queue) instead of queueing it or
    /// reporting them as lagging (Node's `volatile`).
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Whether the transports may compress the packet (Node's
    /// `compress`; allowed by default): see [`crate::SocketRef::compress`].
    /// A cluster adapter carries the choice to the other servers.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = compress;
        self
    }

    /// Only this server's sockets, even with a cluster adapter (Node's
    /// `local`).
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// How long [`BroadcastOperator::emit_with_ack`] waits for each answer
    /// (Node's `timeout`); without it, answers are awaited as long as their
    /// sockets live.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// The namespaces this operator acts on: its own, or a dynamic parent's
    /// children.
    fn targets(&self) -> Vec<Arc<NamespaceState>> {
        match &self.namespace {
            Some(namespace) => namespace.broadcast_targets(),
            None => Vec::new(),
        }
    }

    /// The selection and flags built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// The selected sockets, on every server (Node's `fetchSockets`).
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, AdapterError> {
        let mut sockets = Vec::new();
        for namespace in self.targets() {
            let found = namespace.adapter().fetch_sockets(self.opts.clone()).await?;
            let scope = Scope(Some(namespace.clone()));
            sockets.extend(found.into_iter().map(|mut socket| {
                socket.scope = scope.clone();
                socket
            }));
        }
        Ok(sockets)
    }

    /// Makes every selected socket join `rooms`, one room or several
    /// (Node's `socketsJoin`).
    pub async fn sockets_join(&self, rooms: impl RoomParam) -> Result<(), AdapterError> {
        let rooms = rooms.into_rooms();
        for namespace in self.targets() {
            let rooms = rooms.clone();
            namespace
                .adapter()
                .add_sockets(self.opts.clone(), rooms)
                .await?;
        }
        Ok(())
    }

    /// Makes every selected socket leave `rooms`, one room or several
    /// (Node's `socketsLeave`).
    pub async fn sockets_leave(&self, rooms: impl RoomParam) -> Result<(), AdapterError> {
        let rooms = rooms.into_rooms();
        for namespace in self.targets() {
            let rooms = rooms.clone();
            namespace
                .adapter()
                .del_sockets(self.opts.clone(), rooms)
                .await?;
        }
        Ok(())
    }

    /// Disconnects every selected socket (Node's `disconnectSockets`); their
    /// clients see `io server disconnect`. With `close`, their whole
    /// connections close (every namespace of them).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        for namespace in self.targets() {
            namespace
                .adapter()
                .disconnect_sockets(self.opts.clone(), close)
                .await?;
        }
        Ok(())
    }

    /// Emits `event` with one argument to every selected socket.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), BroadcastError> {
        self.emit_payload(event, Payload::single(value)?).await
    }

    /// Emits the [`TypedEvent`] `event` under its declared name.
    pub async fn emit_typed<E: TypedEvent>(&self, event: &E) -> Result<(), BroadcastError> {
        self.emit_payload(E::NAME, event.to_payload()?).await
    }

    /// Emits `event` with a payload to every selected socket. The packet is
    /// encoded once for all of them. Every socket that can take it gets it,
    /// whatever the error reports.
    pub async fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), BroadcastError> {
        let data = payload.event_data(event)?;
        let (_, attachments) = payload.into_parts();
        let mut outcome = Ok(());
        for namespace in self.targets() {
            let packet = event_packet(&namespace, data.clone(), attachments.clone());
            let result = namespace
                .adapter()
                .broadcast(packet, self.opts.clone())
                .await;
            outcome = merge_outcomes(outcome, result);
        }
        outcome
    }

    /// Emits `event` to every selected socket, each asked for an ack, and
    /// returns their answers as a stream, in the order they come (Node's
    /// `io.timeout(ms).emitWithAck`). Every selected socket yields exactly
    /// one item: its answer, or `AckError::Timeout` after the
    /// [`BroadcastOperator::timeout`], or `AckError::Disconnected`.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<AckStream, BroadcastError> {
        let data = payload.event_data(event)?;
        let (_, attachments) = payload.into_parts();
        let mut answers = AckStream::empty();
        for namespace in self.targets() {
            let packet = event_packet(&namespace, data.clone(), attachments.clone());
            let stream = namespace
                .adapter()
                .broadcast_with_ack(packet, self.opts.clone())
                .await?;
            answers.merge(stream);
        }
        Ok(answers)
    }
}

fn event_packet(namespace: &NamespaceState, data: Str, attachments: Vec<Bytes>) -> Packet {
    Packet {
        attachments,
        ..Packet::new(PacketKind::Event, namespace.name.clone(), Some(data))
    }
}

/// Keeps every lagging socket of several broadcasts, or the first other
/// error.
fn merge_outcomes(
    so_far: Result<(), BroadcastError>,
    next: Result<(), BroadcastError>,
) -> Result<(), BroadcastError> {
    match (so_far, next) {
        (Ok(()), next) => next,
        (Err(BroadcastError::Lagging(mut a)), Err(BroadcastError::Lagging(b))) => {
            a.extend(b);
            Err(BroadcastError::Lagging(a))
        }
        (Err(error), _) => Err(error),
    }
}

/// One socket's answer to a broadcast with acks.
pub type AckAnswer = (Sid, Result<Payload, AckError>);
type AckFuture = Pin<Box<dyn Future<Output = AckAnswer> + Send>>;
type AckAnswers = Pin<Box<dyn Stream<Item = AckAnswer> + Send>>;

/// The answers to a broadcast with acks: one item per selected socket, in
/// the order they arrive. Collect it with `StreamExt::collect` to wait for
/// all of them. Adapters build it from local answers ([`AckStream::push`])
/// and from streams of remote ones ([`AckStream::merge`]).
pub struct AckStream {
    local: FuturesUnordered<AckFuture>,
    remote: SelectAll<AckAnswers>,
}

impl AckStream {
    /// A stream with no answer to wait for.
    pub fn empty() -> AckStream {
        AckStream {
            local: FuturesUnordered::new(),
            remote: SelectAll::new(),
        }
    }

    /// Adds one socket's future answer.
    pub fn push<F>(&mut self, answer: F)
    where
        F: Future<Output = AckAnswer> + Send + 'static,
    {
        self.local.push(Box::pin(answer));
    }

    /// How many of this server's sockets it awaits answers from (answers
    /// already taken off the stream not counted); streams of other
    /// servers' answers are not counted.
    pub fn local_len(&self) -> usize {
        self.local.len()
    }

    /// Adds a stream of answers (from other servers, for one).
    pub fn merge<S>(&mut self, answers: S)
    where
        S: Stream<Item = AckAnswer> + Send + 'static,
    {
        self.remote.push(answers.boxed());
    }
}

impl Stream for AckStream {
    type Item = AckAnswer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let local = Pin::new(&mut self.local).poll_next(cx);
        if let Poll::Ready(Some(answer)) = local {
            return Poll::Ready(Some(answer));
        }
        let remote = Pin::new(&mut self.remote).poll_next(cx);
        match (local, remote) {
            (_, Poll::Ready(Some(answer))) => Poll::Ready(Some(answer)),
            // Both exhausted (an empty FuturesUnordered/SelectAll is done).
            (Poll::Ready(None), Poll::Ready(None)) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}
