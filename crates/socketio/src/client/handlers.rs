//! The task that runs a client's listeners.
//!
//! # Theory of operation
//!
//! The driver hands this task what the machine tells the application (a
//! namespace connected, an event, a disconnect), in order, for every
//! namespace of the connection. As the server's connection task
//! (`server/connection.rs`), it never awaits a listener: each delivery's
//! listeners are one future in a [`FuturesUnordered`] set that the task
//! polls between deliveries. So, as in Node:
//!
//! - listeners *start* in the order their events arrived (a new future is
//!   polled once before the next delivery is taken), and their bodies
//!   interleave where they await;
//! - a listener that awaits (an ack of the server, a database, a timer)
//!   never delays acks, other events or other namespaces.
//!
//! Memory stays bounded without a cycle of waits: the task never stops
//! taking deliveries, because stopping the reading would hold back the
//! very acks a listener may be awaiting. Instead, when more than
//! `max_pending_events` deliveries have started and not finished, the
//! connection is dropped (`transport error`, [`TransportError::Overloaded`])
//! and the client reconnects as configured; what was already received
//! still runs.

use std::sync::{Arc, Weak};
use std::task::Poll;

use engineio_proto::{CloseReason, TransportError};
use futures_channel::mpsc;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use socketio_proto::client::DisconnectReason;
use socketio_proto::AckId;

use super::socket::{AckSender, ClientSocket, ConnectError, SocketShared};
use super::ClientHandle;
use crate::listeners::ListenerFuture;
use crate::locks::lock;
use crate::payload::Payload;

/// What happened to a namespace socket, for its listeners.
pub(crate) enum SocketEvent {
    Connect,
    ConnectError(ConnectError),
    Event {
        event: String,
        payload: Payload,
        ack: Option<AckId>,
    },
    Disconnect(DisconnectReason),
}

/// A [`SocketEvent`] and the socket it happened to.
pub(crate) struct Delivery {
    pub(crate) socket: Arc<SocketShared>,
    pub(crate) event: SocketEvent,
}

/// Runs the listeners of every delivery until the driver stops, then lets
/// the running ones finish. Holds the client weakly: sockets alive only in
/// their own listeners must not keep the client running.
pub(crate) async fn run(
    handle: Weak<ClientHandle>,
    mut deliveries: mpsc::Receiver<Delivery>,
    max_pending: usize,
) {
    let mut running: FuturesUnordered<ListenerFuture> = FuturesUnordered::new();
    loop {
        // Finished futures first: a freshly pushed one gets its first poll
        // here, before the next delivery is taken.
        let next = futures_util::future::poll_fn(|cx| {
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
            deliveries.poll_next_unpin(cx)
        })
        .await;
        let Some(Delivery { socket, event }) = next else {
            break;
        };
        let Some(handle) = handle.upgrade() else {
            break;
        };
        if running.len() >= max_pending {
            tracing::warn!(
                pending = running.len() + 1,
                limit = max_pending,
                "dropping a connection whose events the application does not keep up with"
            );
            let reason = CloseReason::TransportError(TransportError::Overloaded);
            handle
                .shared
                .machine
                .apply(|state, now| state.conn.drop_connection(now, reason));
        }
        let socket = ClientSocket {
            handle,
            inner: socket,
            compress: true,
        };
        running.push(start(socket, event));
    }
    while running.next().await.is_some() {}
}

/// The listeners of one delivery, side by side, started in the order they
/// were added.
fn start(socket: ClientSocket, event: SocketEvent) -> ListenerFuture {
    let inner = socket.inner.clone();
    match event {
        SocketEvent::Connect => {
            let listeners = lock(&inner.listeners).connect.clone();
            all(listeners.iter().map(|l| l(socket.clone())).collect())
        }
        SocketEvent::ConnectError(error) => {
            let listeners = lock(&inner.listeners).connect_error.clone();
            all(listeners
                .iter()
                .map(|l| l(socket.clone(), error.clone()))
                .collect())
        }
        SocketEvent::Disconnect(reason) => {
            let listeners = lock(&inner.listeners).disconnect.clone();
            all(listeners
                .iter()
                .map(|l| l(socket.clone(), reason.clone()))
                .collect())
        }
        SocketEvent::Event {
            event,
            payload,
            ack,
        } => {
            let started = lock(&inner.listeners).events.of(&event);
            let ack = ack.map(|id| AckSender::new(&socket, id));
            Box::pin(started.run(socket, event, payload, ack))
        }
    }
}

/// Runs `calls` side by side; `join_all` polls them in order, so they
/// start in order.
fn all(calls: Vec<ListenerFuture>) -> ListenerFuture {
    Box::pin(async move {
        futures_util::future::join_all(calls).await;
    })
}
