//! The application side of one client connection: admits its sockets and
//! runs their handlers.
//!
//! # Theory of operation
//!
//! The session task hands this task what the connection machine tells the
//! application (a namespace CONNECT, an event, a disconnect), in order. The
//! task never awaits a handler: every handler, middleware chain and
//! connection handler is a future in one [`FuturesUnordered`] set that the
//! task polls between events. So, as in Node:
//!
//! - handlers *start* in the order their events arrived (a new future is
//!   polled once before the next event is taken), and their bodies
//!   interleave where they await;
//! - a handler that awaits (an ack of its own client, a database, a timer)
//!   never delays acks, other events, other namespaces or heartbeats.
//!
//! Two things wait on purpose. The events of a socket wait while its
//! connection handler runs, so listeners it registers after an await still
//! get the first events. And on a *sequential* namespace
//! ([`super::NamespaceRef::set_sequential`]) each socket's events wait for
//! the previous one's handlers to finish.
//!
//! Memory stays bounded without a cycle of waits: the task never stops
//! taking events (stopping would hold back the very acks a handler may be
//! awaiting). Instead, a connection with more than `max_pending_events`
//! events started or waiting and not finished is closed, with reason
//! `forced server close` for its sockets.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use engineio_proto::{Sid, Str};
use futures_channel::mpsc;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use socketio_proto::recovery::{is_recoverable, MissedPacket};
use socketio_proto::rooms::Room;
use socketio_proto::server::Output;
use socketio_proto::{AckId, Packet, PacketKind};
use tracing::Instrument;

use super::machine::ConnectionHandle;
use super::middleware::ConnectRequest;
use super::namespace::NamespaceState;
use super::recovery;
use super::registry::Registry;
use super::socket::SocketInner;
use super::SocketRef;
use crate::engine::random_sid;
use crate::extensions::Extensions;
use crate::handshake::Handshake;
use crate::listeners::guarded;
use crate::payload::Payload;

/// What a finished future of the set tells the task.
enum Finished {
    /// An event's handlers finished.
    Event,
    /// A socket's turn ended (its connection handler, or the handlers of
    /// one event on a sequential namespace, then `event`): its next event
    /// may start.
    Turn { nsp: Str, id: Sid, event: bool },
    /// A namespace CONNECT went through lookup and middlewares.
    Admission(Result<Box<Admitted>, Refused>),
    /// A socket's disconnect handlers finished.
    Left,
    /// A socket's upgrade listeners finished.
    Upgraded,
}

type Running = Pin<Box<dyn Future<Output = Finished> + Send>>;

/// A namespace CONNECT that may join: what its socket starts with.
struct Admitted {
    nsp: Str,
    namespace: Arc<NamespaceState>,
    auth: Str,
    id: Sid,
    pid: Option<Str>,
    recovered: bool,
    rooms: Vec<Room>,
    missed: Vec<MissedPacket>,
    data: serde_json::Value,
    /// What the request and the middlewares put there.
    extensions: ::http::Extensions,
}

/// A namespace CONNECT refused, with the CONNECT_ERROR's data.
struct Refused {
    nsp: Str,
    data: Str,
    /// By a middleware (not for want of the namespace).
    by_middleware: bool,
}

/// An event waiting for its socket's turn.
struct Queued {
    name: String,
    payload: Payload,
    ack: Option<AckId>,
}

/// A connected socket, as this task tracks it.
struct Slot {
    socket: SocketRef,
    /// Its namespace, whose counters each event adds to.
    namespace: Arc<NamespaceState>,
    /// Each event's handlers finish before the next event's start.
    sequential: bool,
    /// A turn is running (the connection handler, or a sequential event):
    /// new events queue.
    busy: bool,
    queued: VecDeque<Queued>,
}

/// Runs the application side of one client connection.
pub(super) struct ConnectionTask {
    pub(super) registry: Arc<Registry>,
    pub(super) connection: ConnectionHandle,
    pub(super) handshake: Arc<Handshake>,
    /// Events started or queued and not finished, beyond which the
    /// connection is closed.
    pub(super) max_pending: usize,
}

impl ConnectionTask {
    pub(super) async fn run(self, mut events: mpsc::Receiver<Output>) {
        let mut state = State {
            task: self,
            sockets: HashMap::new(),
            running: FuturesUnordered::new(),
            pending: 0,
            flooded: false,
        };
        enum Next {
            Finished(Finished),
            Event(Output),
            End,
        }
        loop {
            let running = &mut state.running;
            // Finished futures first: a freshly pushed one gets its first
            // poll here, before the next event is taken.
            let next = futures_util::future::poll_fn(|cx| {
                if let Poll::Ready(Some(finished)) = running.poll_next_unpin(cx) {
                    return Poll::Ready(Next::Finished(finished));
                }
                match events.poll_next_unpin(cx) {
                    Poll::Ready(Some(event)) => Poll::Ready(Next::Event(event)),
                    Poll::Ready(None) => Poll::Ready(Next::End),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match next {
                Next::Finished(finished) => state.finished(finished),
                Next::Event(Output::Closed) | Next::End => break,
                Next::Event(event) => state.event(event),
            }
        }
        // The connection is gone: no socket of it may stay registered, and
        // the handlers still running finish (their emits now fail).
        let slots: Vec<Slot> = state.sockets.drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            state.leave(slot.socket, "transport close", true);
        }
        while let Some(finished) = state.running.next().await {
            // A CONNECT admitted after the end finds no connection.
            if let Finished::Admission(Ok(admitted)) = finished {
                state.task.registry.remove_if_empty(&admitted.namespace);
            }
        }
    }
}

struct State {
    task: ConnectionTask,
    sockets: HashMap<Str, Slot>,
    running: FuturesUnordered<Running>,
    /// Events started or queued and not yet finished.
    pending: usize,
    /// Past `max_pending`: the connection is closing; events are dropped.
    flooded: bool,
}

impl State {
    fn event(&mut self, event: Output) {
        match event {
            Output::Connect { nsp, auth } => {
                let auth = auth.unwrap_or_else(|| Str::from_static("{}"));
                let admit = admit(
                    self.task.registry.clone(),
                    self.task.handshake.clone(),
                    nsp,
                    auth,
                );
                self.running.push(Box::pin(async move {
                    Finished::Admission(admit.await.map(Box::new))
                }));
            }
            Output::Event {
                nsp,
                data,
                attachments,
                ack,
            } => {
                if self.flooded {
                    return;
                }
                let Some(slot) = self.sockets.get_mut(&nsp) else {
                    return;
                };
                let Some((name, payload)) = Payload::split_event(&data, attachments) else {
                    return;
                };
                slot.namespace.counters.event_received();
                self.pending += 1;
                let queued = Queued { name, payload, ack };
                if slot.busy {
                    slot.queued.push_back(queued);
                } else {
                    let watch = self.task.registry.watch(&slot.namespace);
                    let run = start(slot, queued, watch);
                    self.running.push(run);
                }
                if self.pending > self.task.max_pending {
                    self.flood();
                }
            }
            Output::Disconnect { nsp, reason } => {
                tracing::debug!(%nsp, reason = reason.as_node_str(), "socket disconnected");
                if let Some(slot) = self.sockets.remove(&nsp) {
                    // Its waiting events will not run.
                    self.pending -= slot.queued.len();
                    self.leave(slot.socket, reason.as_node_str(), is_recoverable(&reason));
                }
            }
            // The connection moved to WebSocket: every socket hears it.
            Output::Upgraded => {
                for slot in self.sockets.values() {
                    let socket = slot.socket.clone();
                    self.running.push(Box::pin(async move {
                        socket.upgraded().await;
                        Finished::Upgraded
                    }));
                }
            }
            // Acks of server emits and their timeouts are resolved by the
            // session task.
            _ => {}
        }
    }

    fn finished(&mut self, finished: Finished) {
        match finished {
            Finished::Event => self.pending -= 1,
            Finished::Turn { nsp, id, event } => {
                if event {
                    self.pending -= 1;
                }
                let Some(slot) = self.sockets.get_mut(&nsp) else {
                    return;
                };
                if slot.socket.id() != id {
                    return;
                }
                slot.busy = false;
                // A sequential socket starts its next event; another starts
                // every event that waited for its connection handler.
                while !slot.busy {
                    let Some(queued) = slot.queued.pop_front() else {
                        break;
                    };
                    let watch = self.task.registry.watch(&slot.namespace);
                    let run = start(slot, queued, watch);
                    self.running.push(run);
                }
            }
            Finished::Admission(Ok(admitted)) => self.admitted(*admitted),
            Finished::Admission(Err(Refused {
                nsp,
                data,
                by_middleware,
            })) => {
                // Fails only if the connection is gone.
                let _ = self.task.connection.apply(|machine, now| {
                    let connection = machine.connection();
                    // Node sends a socket.io 2.x client a middleware's
                    // `err.data || err.message`, not the object.
                    let data = match by_middleware && connection.is_legacy() {
                        true => legacy_error(&data),
                        false => data,
                    };
                    connection.reject(now, &nsp, data)
                });
            }
            Finished::Left | Finished::Upgraded => {}
        }
    }

    /// Too many events at once: close the connection (see the module docs).
    fn flood(&mut self) {
        tracing::warn!(
            pending = self.pending,
            limit = self.task.max_pending,
            "closing a connection with too many events pending"
        );
        self.flooded = true;
        for slot in self.sockets.values_mut() {
            self.pending -= slot.queued.len();
            slot.queued.clear();
        }
        self.task
            .connection
            .apply(|machine, now| machine.connection().close(now));
    }

    /// A socket left: its disconnect handlers run (beside the others), then
    /// an emptied dynamic namespace goes away.
    fn leave(&mut self, socket: SocketRef, reason: &'static str, recoverable: bool) {
        let registry = self.task.registry.clone();
        let watch = socket
            .inner
            .namespace
            .upgrade()
            .and_then(|namespace| registry.watch(&namespace));
        self.running.push(Box::pin(async move {
            let (nsp, id) = (socket.inner.nsp.clone(), socket.id());
            maybe_watched(
                watch,
                "disconnect",
                &nsp,
                id,
                socket.left(reason, recoverable),
            )
            .await;
            if let Some(namespace) = socket.inner.namespace.upgrade() {
                registry.remove_if_empty(&namespace);
            }
            Finished::Left
        }));
    }

    fn admitted(&mut self, admitted: Admitted) {
        let Admitted {
            nsp,
            namespace,
            auth,
            id,
            pid,
            recovered,
            rooms,
            missed,
            data,
            extensions,
        } = admitted;
        let accepted = self.task.connection.apply(|machine, now| {
            let connection = machine.connection();
            // A socket.io 2.x client: its main socket's id is the engine's,
            // as in Node (the client computes it so), and there is no
            // recovery (it never sends a pid).
            let (id, pid) = match connection.is_legacy() {
                true if nsp.as_str() == "/" => (connection.engine().sid(), None),
                true => (id, None),
                false => (id, pid),
            };
            connection
                .accept(now, &nsp, id, pid.as_deref())
                .map(|()| (id, pid))
        });
        let Ok((id, pid)) = accepted else {
            // The connection closed meanwhile (or a CONNECT for this
            // namespace was already answered).
            self.task.registry.remove_if_empty(&namespace);
            return;
        };
        let resuming = pid.clone().filter(|_| recovered);
        let socket = SocketRef {
            inner: Arc::new(SocketInner::new(
                nsp.clone(),
                id,
                pid,
                recovered,
                auth,
                data,
                extensions,
                self.task.handshake.clone(),
                self.task.connection.clone(),
                Arc::downgrade(&namespace),
            )),
            compress: true,
        };
        tracing::debug!(%nsp, socket = %id, recovered, "socket connected");
        self.task.registry.keep(&namespace);
        let mut rooms = Some(rooms);
        let mut start = |missed: Vec<MissedPacket>| {
            namespace.add(&socket);
            socket.join(rooms.take().unwrap_or_default());
            // What the client missed while away, in order, before anything
            // new.
            for packet in missed {
                let event = Packet {
                    attachments: packet.attachments,
                    ..Packet::new(PacketKind::Event, nsp.clone(), Some(packet.data))
                };
                if let Err(error) = socket.emit_encoded(&socket.encode(&event), false) {
                    tracing::debug!(%nsp, %error, "a missed event could not be sent");
                }
            }
        };
        match resuming {
            // The adapter merges what it delivered while the session was
            // being restored, and holds its deliveries while it starts.
            Some(pid) => namespace.adapter().resume(id, &pid, missed, &mut start),
            None => start(missed),
        }
        namespace.connected(&socket);
        let handler = namespace.connection_handler();
        namespace.counters.connected();
        let slot = Slot {
            socket: socket.clone(),
            namespace: namespace.clone(),
            sequential: namespace.is_sequential(),
            // The socket's events wait until its listeners are in place.
            busy: handler.is_some(),
            queued: VecDeque::new(),
        };
        self.sockets.insert(nsp.clone(), slot);
        if let Some(handler) = handler {
            let watch = self.task.registry.watch(&namespace);
            let span = tracing::debug_span!("socketio_socket", nsp = %nsp, socket = %id);
            self.running.push(Box::pin(async move {
                let run = guarded("connection", || handler(socket));
                maybe_watched(watch, "connection", &nsp, id, run)
                    .instrument(span)
                    .await;
                Finished::Turn {
                    nsp,
                    id,
                    event: false,
                }
            }));
        }
    }
}

/// Starts the handlers of one event of `slot`'s socket: a turn on a
/// sequential namespace, otherwise a free-running event.
fn start(slot: &mut Slot, queued: Queued, watch: Option<Watch>) -> Running {
    let socket = slot.socket.clone();
    let Queued { name, payload, ack } = queued;
    // On a sequential namespace the event is the socket's turn.
    let turn = slot
        .sequential
        .then(|| (socket.inner.nsp.clone(), socket.id()));
    slot.busy |= turn.is_some();
    let span = tracing::debug_span!(
        "socketio_event",
        nsp = %socket.inner.nsp,
        socket = %socket.id(),
        event = %name
    );
    // The event's name, for a watch's warnings only (no copy otherwise).
    let event = watch.as_ref().map(|_| Str::from(name.as_str()));
    Box::pin(async move {
        let what = event.as_deref().unwrap_or("event");
        let run = socket.dispatch(name, payload, ack);
        maybe_watched(watch, what, &socket.inner.nsp, socket.id(), run)
            .instrument(span)
            .await;
        match turn {
            Some((nsp, id)) => Finished::Turn {
                nsp,
                id,
                event: true,
            },
            None => Finished::Event,
        }
    })
}

/// A handler watch: the threshold, and the runtime whose timer measures it.
#[derive(Clone)]
pub(crate) struct Watch {
    pub(crate) limit: std::time::Duration,
    pub(crate) runtime: Arc<dyn crate::runtime::DynRuntime>,
}

/// `handler` as it is, or, when the server watches slow handlers, in a
/// watch that warns when it runs past the threshold and again when it ends
/// ([`crate::SocketIoConfig::slow_handler`]). The handler is boxed only
/// when watched: an unwatched handler's future keeps its size (they are
/// held by the thousand under load).
pub(crate) fn maybe_watched<'a, T: Send + 'a>(
    watch: Option<Watch>,
    what: &'a str,
    nsp: &'a str,
    socket: Sid,
    handler: impl Future<Output = T> + Send + 'a,
) -> impl Future<Output = T> + Send + 'a {
    match watch {
        None => futures_util::future::Either::Left(handler),
        Some(watch) => futures_util::future::Either::Right(watched(
            watch,
            what,
            nsp,
            socket,
            Box::pin(handler),
        )),
    }
}

async fn watched<T>(
    watch: Watch,
    what: &str,
    nsp: &str,
    socket: Sid,
    handler: Pin<Box<dyn Future<Output = T> + Send + '_>>,
) -> T {
    let clock = watch.runtime.clock();
    let started = clock.now_std();
    let timer = watch.runtime.sleep_until(started + watch.limit);
    match futures_util::future::select(handler, timer).await {
        futures_util::future::Either::Left((output, _)) => output,
        futures_util::future::Either::Right(((), handler)) => {
            tracing::warn!(
                handler = what,
                %nsp,
                %socket,
                limit = ?watch.limit,
                "a handler is still running past the slow-handler threshold"
            );
            let output = handler.await;
            tracing::warn!(
                handler = what,
                %nsp,
                %socket,
                took = ?clock.now_std().saturating_duration_since(started),
                "a slow handler finished"
            );
            output
        }
    }
}

/// What a socket.io 2.x client gets of a middleware's refusal
/// `{"message":…,"data":…}`: the data if there is any (as JavaScript's
/// `err.data || err.message` reads it), else the message.
fn legacy_error(refusal: &str) -> Str {
    let Ok(serde_json::Value::Object(error)) = serde_json::from_str(refusal) else {
        return Str::from(refusal);
    };
    let truthy = |value: &&serde_json::Value| match value {
        serde_json::Value::Null | serde_json::Value::Bool(false) => false,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    };
    let chosen = error
        .get("data")
        .filter(truthy)
        .or_else(|| error.get("message"))
        .unwrap_or(&serde_json::Value::Null);
    Str::from(chosen.to_string())
}

/// The session a CONNECT's auth asks back, from the namespace's own store
/// or, when its adapter [keeps sessions](crate::adapter::Adapter::keeps_sessions),
/// from the adapter (whose failure is logged and treated as "unknown": the
/// client gets a new session, as in Node).
async fn restore(
    namespace: &NamespaceState,
    auth: &str,
) -> Option<socketio_proto::recovery::Restored<serde_json::Value>> {
    let recovery = namespace.recovery.as_ref()?;
    let adapter = namespace.adapter();
    if !adapter.keeps_sessions() {
        return recovery.restore(auth);
    }
    let (pid, offset) = recovery::recovering(auth)?;
    match adapter.restore_session(pid, offset).await {
        Ok(restored) => restored,
        Err(error) => {
            tracing::warn!(%error, nsp = %namespace.name, "the adapter could not restore a session");
            None
        }
    }
}

/// Looks up the namespace of a CONNECT and runs its middlewares (or takes
/// back a recovered session, which skips them, as Node's default).
async fn admit(
    registry: Arc<Registry>,
    handshake: Arc<Handshake>,
    nsp: Str,
    auth: Str,
) -> Result<Admitted, Refused> {
    let extensions = Extensions::default();
    extensions.extend(handshake.extensions.clone());
    let request = ConnectRequest {
        nsp: nsp.clone(),
        auth: auth.clone(),
        handshake,
        data: Arc::default(),
        extensions: Arc::new(extensions),
    };
    let Some(namespace) = registry.lookup(&request) else {
        tracing::debug!(%nsp, "connect to an unknown namespace refused");
        let data = Str::from_static(r#"{"message":"Invalid namespace"}"#);
        return Err(Refused {
            nsp,
            data,
            by_middleware: false,
        });
    };
    if let Some(session) = restore(&namespace, &auth).await {
        return Ok(Admitted {
            nsp,
            namespace,
            auth,
            id: session.sid,
            pid: Some(session.pid),
            recovered: true,
            rooms: session.rooms,
            missed: session.missed,
            data: session.data,
            extensions: request.extensions.take(),
        });
    }
    for middleware in namespace.middlewares() {
        let refusal = match guarded("connect middleware", || middleware(request.clone())).await {
            Some(Ok(())) => continue,
            Some(Err(error)) => {
                tracing::debug!(%nsp, ?error, "connect refused by a middleware");
                error.to_json()
            }
            // A middleware that panicked lets nobody in.
            None => Str::from_static(r#"{"message":"server error"}"#),
        };
        // A refused client must not leave a dynamic namespace behind.
        registry.remove_if_empty(&namespace);
        return Err(Refused {
            nsp,
            data: refusal,
            by_middleware: true,
        });
    }
    let pid = namespace.recovery.as_ref().map(|_| recovery::new_pid());
    Ok(Admitted {
        nsp,
        namespace,
        auth,
        id: random_sid(),
        pid,
        recovered: false,
        rooms: Vec::new(),
        missed: Vec::new(),
        data: request.data(),
        extensions: request.extensions.take(),
    })
}
