//! The task that owns one Engine.IO session's state machine.
//!
//! Theory of operation (quinn's model): the machine sits behind a short
//! lock in a [`MachineHandle`] that the task shares with the application.
//! An application call (an emit, an ack, a disconnect) locks the machine,
//! changes it, and wakes the task; it never waits, and a full buffer is an
//! error at once. The task owns the IO. It loops: carry out every output
//! of the machine, then wait for whichever comes first of an input (HTTP
//! request, WebSocket frame), a wake from a handle, the machine's next
//! deadline, or the client abandoning a parked long-poll, and feed it to
//! the machine. When the machine reports `Closed` the task removes the
//! session from the table and ends; the application's receiver then yields
//! `None`.
//!
//! A WebSocket's queue of frames not yet written is bounded: while it is
//! full the task stops taking outputs from the machine (and stops reading
//! the client) and writes; so what waits for a slow client is bounded by
//! the machine's buffer, whose overflow the application sees as an error.
//!
//! The task never waits for anyone but its own IO: events go to the
//! application with `try_send`. When the application's queue is full, the
//! events that do not fit wait in a small backlog, and the task holds the
//! client's messages (the machine keeps the rest of a POST undecoded, and
//! the WebSockets are not read) until the application has room again.
//! Meanwhile it goes on taking inputs and commands, firing timers and
//! writing. So a handler that awaits something of this session (an emit,
//! an ack) can never wait for the task while the task waits for the
//! handler: there is no cycle of waits. A client held longer than
//! `pingTimeout` cannot answer pings, and its session ends with `ping
//! timeout`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use engineio_proto::server::{self as eio, HttpResponse, Session, Traffic};
use engineio_proto::{
    CloseReason, Instant, Message, PostFailure, RequestId, Sid, TransportKind, WsId,
};
use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use super::websocket::PendingWs;
use super::{register, Shared};
use crate::handle::MachineHandle;
use crate::handshake::Handshake;
use crate::runtime::{Runtime, Sleep};
use crate::ws::UpgradedIo;
use crate::ws_link::{self, Link, LinkEvent, WsLink};

/// What the HTTP side hands a session's task: a request to answer, an
/// accepted WebSocket, or the server closing. The task turns each into the
/// machine's [`eio::Input`].
pub(crate) enum Handoff {
    /// A long-poll GET; answer through `reply`.
    Poll {
        request: RequestId,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// A POST with its body (cut one chunk past the limit); `binary` when
    /// declared `application/octet-stream` (a v3 binary payload).
    Post {
        request: RequestId,
        body: Bytes,
        binary: bool,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// A POST whose body could not be read whole.
    PostFailed {
        request: RequestId,
        failure: PostFailure,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// A WebSocket with this session's sid was accepted.
    Upgrade { ws: WsId, socket: PendingWs },
    /// The server is closing every session.
    Close,
}

/// A state machine a session task can drive: the raw Engine.IO [`Session`],
/// or a Socket.IO connection that owns one.
pub(crate) trait Driven: Send + 'static {
    /// What the machine tells the application.
    type Event: Send + 'static;

    fn sid(&self) -> Sid;
    /// A transport input or [`eio::Input::Timeout`].
    fn handle_input(&mut self, now: Instant, input: eio::Input);
    /// Holds back the client's messages while the application is full.
    fn hold_messages(&mut self, now: Instant, hold: bool);
    /// The server is closing, or nothing can reach the session any more.
    fn close(&mut self, now: Instant);
    /// The next output: a transport action, or an event for the application.
    fn poll_output(&mut self) -> Option<Step<Self::Event>>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
    /// The transport carrying the session now.
    fn transport(&self) -> TransportKind;
    /// Why the Engine.IO session ended, once it has.
    fn close_reason(&self) -> Option<&CloseReason>;
    /// The messages counted since the last call.
    fn take_traffic(&mut self) -> Traffic;
}

/// One output of a [`Driven`] machine.
pub(crate) enum Step<E> {
    /// `Respond`, `WsSend` or `WsClose`.
    Transport(eio::Output),
    /// For the application.
    Event(E),
}

impl Driven for Session {
    type Event = Message;

    fn sid(&self) -> Sid {
        Session::sid(self)
    }
    fn handle_input(&mut self, now: Instant, input: eio::Input) {
        Session::handle_input(self, now, input)
    }
    fn hold_messages(&mut self, now: Instant, hold: bool) {
        Session::hold_messages(self, now, hold)
    }
    fn close(&mut self, now: Instant) {
        Session::close(self, now)
    }
    fn poll_output(&mut self) -> Option<Step<Message>> {
        Some(match Session::poll_output(self)? {
            eio::Output::Message(message) => Step::Event(message),
            eio::Output::Upgraded => {
                tracing::debug!(sid = %self.sid(), "session upgraded to websocket");
                return Driven::poll_output(self);
            }
            eio::Output::Closed(reason) => {
                tracing::debug!(sid = %self.sid(), %reason, "session closed");
                return Driven::poll_output(self);
            }
            transport => Step::Transport(transport),
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Session::poll_timeout(self)
    }
    fn is_closed(&self) -> bool {
        Session::is_closed(self)
    }
    fn transport(&self) -> TransportKind {
        Session::transport(self)
    }
    fn close_reason(&self) -> Option<&CloseReason> {
        Session::close_reason(self)
    }
    fn take_traffic(&mut self) -> Traffic {
        Session::take_traffic(self)
    }
}

/// How many inputs may wait for a session task.
pub(crate) const INPUT_QUEUE: usize = 64;

/// The application's handle on one Engine.IO session.
pub struct EngineSocket {
    sid: Sid,
    handshake: Arc<Handshake>,
    session: Arc<MachineHandle<Session>>,
    incoming: mpsc::Receiver<Message>,
}

/// The session is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session closed")]
pub struct SessionClosed;

impl EngineSocket {
    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// Sends a message to the client. Waits while `max_buffered_packets`
    /// messages wait for the client (the session's task drains them as the
    /// client reads; a client that stops reading misses its heartbeat and
    /// the session closes); fails once the session is gone.
    pub async fn send(&mut self, message: Message) -> Result<(), SessionClosed> {
        let handle = &*self.session;
        futures_util::future::poll_fn(|cx| {
            handle.register_room(cx);
            let full =
                handle.inspect(|session| !session.is_closed() && session.send_capacity() == 0);
            if full {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        self.session
            .apply(|session, now| session.send(now, message))
            .map_err(|_| SessionClosed)
    }

    /// The next message from the client; `None` once the session is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.incoming.next().await
    }

    /// Closes the session (after delivering what is buffered).
    pub async fn close(&mut self) {
        self.session.apply(|session, now| session.close(now));
    }
}

/// Registers a new session and spawns its task. `pending` is the handshake
/// GET to answer; `ws` the WebSocket of a WebSocket handshake.
pub(crate) fn start<R: Runtime>(
    shared: &Arc<Shared<R>>,
    session: Session,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, PendingWs)>,
    handshake: Arc<Handshake>,
) -> mpsc::Sender<Handoff> {
    shared.mode.start(shared, session, pending, ws, handshake)
}

/// Starts the task of a raw Engine.IO session.
pub(crate) fn start_raw<R: Runtime>(
    shared: &Arc<Shared<R>>,
    session: Session,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, PendingWs)>,
    handshake: Arc<Handshake>,
    on_connection: &(dyn Fn(EngineSocket) + Send + Sync),
) -> mpsc::Sender<Handoff> {
    let sid = session.sid();
    let session = Arc::new(MachineHandle::new(session, shared.clock));
    let (app_tx, app_rx) = mpsc::channel(shared.config.app_queue);
    on_connection(EngineSocket {
        sid,
        handshake,
        session: session.clone(),
        incoming: app_rx,
    });
    spawn_task(shared, session, app_tx, pending, ws)
}

/// Registers a machine's session and spawns the task that drives it;
/// returns the sender of the session's inputs.
pub(crate) fn spawn_task<R: Runtime, M: Driven>(
    shared: &Arc<Shared<R>>,
    machine: Arc<MachineHandle<M>>,
    app: mpsc::Sender<M::Event>,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, PendingWs)>,
) -> mpsc::Sender<Handoff> {
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (sid, transport) = machine.inspect(|machine| (machine.sid(), machine.transport()));
    register(shared, sid, input_tx.clone());
    shared.counters.opened(transport);
    let mut task = SessionTask {
        shared: shared.clone(),
        machine,
        inputs: input_rx,
        app,
        replies: HashMap::new(),
        // Most sessions only ever have one WebSocket (an upgrade from
        // polling reserves its own): a `Vec` would grow to four.
        links: Vec::with_capacity(usize::from(ws.is_some())),
        backlog: VecDeque::new(),
        since_write: 0,
        reads_first: false,
        sleep: None,
        transport,
    };
    if let Some((request, reply)) = pending {
        task.replies.insert(request, reply);
    }
    if let Some((ws, socket)) = ws {
        task.links
            .push(WsLink::new(ws, socket, shared.config.ws_queue));
    }
    // Every event of this session's task carries its sid.
    let span = tracing::debug_span!("engineio_session", %sid);
    shared
        .runtime
        .spawn(Box::pin(tracing::Instrument::instrument(
            Box::new(task).run(),
            span,
        )));
    input_tx
}

struct SessionTask<R: Runtime, M: Driven> {
    shared: Arc<Shared<R>>,
    machine: Arc<MachineHandle<M>>,
    inputs: mpsc::Receiver<Handoff>,
    app: mpsc::Sender<M::Event>,
    /// Requests waiting for an answer (the parked GET, the handshake GET).
    replies: HashMap<RequestId, oneshot::Sender<HttpResponse>>,
    /// The session's WebSockets (two during an upgrade), read and written
    /// by this task.
    links: Vec<WsLink<UpgradedIo>>,
    /// Events the application's full queue could not take yet. While any
    /// wait, the client's messages are held (see the module docs); it only
    /// ever holds what the machine had decoded before holding began.
    backlog: VecDeque<M::Event>,
    /// Wakes handled since the WebSockets were last written: past
    /// [`WRITE_EVERY`], they are written before anything else is read.
    since_write: u8,
    /// Alternates WebSocket reads and inputs first, so neither starves.
    reads_first: bool,
    /// The armed timer and its deadline. Kept across loop turns: most inputs
    /// leave the deadline where it was, and a new timer per message would be
    /// an allocation per message.
    sleep: Option<(Instant, Sleep)>,
    /// The transport as last counted in the engine's stats.
    transport: TransportKind,
}

/// Why the task woke up.
enum Wake {
    Handoff(Option<Handoff>),
    /// A handle changed the machine, or a full WebSocket queue has room
    /// again: there are outputs to carry out.
    Outputs,
    Deadline,
    Aborted(RequestId),
    /// One of the session's WebSockets opened, read a frame, broke the
    /// protocol (it closes with the matching code) or ended.
    Link(LinkEvent),
    /// The application's queue has room again (or is gone).
    AppReady,
}

/// Inputs and frames are handled before anything is written, so that the
/// replies to a burst go out in one write; but never more than this many
/// in a row.
const WRITE_EVERY: u8 = 32;

/// How long a closed session's WebSockets get to write their last frames.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl<R: Runtime, M: Driven> SessionTask<R, M> {
    /// Boxed, so the future holds a pointer to the task instead of the
    /// task itself (twice, as an `async fn` taking `self` would): that is
    /// per-connection memory.
    async fn run(mut self: Box<Self>) {
        let handle = self.machine.clone();
        let sid = handle.inspect(|machine| machine.sid());
        tracing::debug!(%sid, "session opened");
        loop {
            let deadline = {
                let mut machine = handle.lock();
                self.carry_out_outputs(&mut machine);
                self.count(&mut machine);
                if machine.is_closed() {
                    self.shared
                        .counters
                        .closed(self.transport, machine.close_reason());
                    break;
                }
                machine.poll_timeout()
            };
            // A sender waiting for room may find some now.
            handle.wake_room();
            let wake = self.next_wake(deadline).await;
            let mut machine = handle.lock();
            let now = handle.clock().now();
            match wake {
                Wake::Handoff(Some(handoff)) => self.take_handoff(&mut machine, now, handoff),
                // Every sender is gone: nothing can reach the session.
                Wake::Handoff(None) => machine.close(now),
                Wake::Outputs => {}
                Wake::Deadline => machine.handle_input(now, eio::Input::Timeout),
                Wake::Aborted(request) => {
                    self.replies.remove(&request);
                    machine.handle_input(now, eio::Input::PollAborted(request));
                }
                // The machine learnt of the WebSocket when it was accepted.
                Wake::Link(LinkEvent::Opened(_)) => {}
                Wake::Link(LinkEvent::Frame(ws, frame)) => {
                    machine.handle_input(now, eio::Input::WsFrame { ws, frame })
                }
                Wake::Link(LinkEvent::Failed(ws, failure)) => {
                    machine.handle_input(now, eio::Input::WsFailed { ws, failure })
                }
                Wake::Link(LinkEvent::Ended(ws)) => {
                    self.links.retain(|link| link.id() != ws);
                    machine.handle_input(now, eio::Input::WsClosed(ws));
                }
                Wake::AppReady => self.flush_backlog(&mut machine),
            }
        }
        self.shared.remove_session(sid, &self.inputs);
        // A sender waiting for room learns that the session is gone.
        handle.wake_room();
        // The session is over for everyone before its WebSockets finish
        // closing: inputs fail at once instead of queueing for nobody.
        // Those already queued (a request's reply, an accepted WebSocket)
        // and requests still unanswered are let go now: their requests get
        // `Session ID unknown` and the WebSocket closes, instead of waiting
        // for the end of this task, which waits for the application below.
        self.inputs.close();
        while self.inputs.try_recv().is_ok() {}
        self.replies.clear();
        let backlog = std::mem::take(&mut self.backlog);
        let SessionTask {
            shared, links, app, ..
        } = &mut *self;
        // The application gets the last events (a Socket.IO connection's
        // disconnects) while the WebSockets say goodbye; then its receiver
        // ends.
        let grace = shared
            .runtime
            .sleep_until(shared.clock.now_std() + CLOSE_GRACE);
        futures_util::future::join(ws_link::close_links(links, grace), async {
            for event in backlog {
                if futures_util::SinkExt::send(app, event).await.is_err() {
                    break;
                }
            }
            app.close_channel();
        })
        .await;
    }

    async fn next_wake(&mut self, deadline: Option<Instant>) -> Wake {
        if self.sleep.as_ref().map(|(at, _)| *at) != deadline {
            self.sleep = deadline.map(|at| {
                let timer = self
                    .shared
                    .runtime
                    .sleep_until(self.shared.clock.to_std(at));
                (at, timer)
            });
        }
        let handle = &*self.machine;
        let inputs = &mut self.inputs;
        let replies = &mut self.replies;
        let sleep = &mut self.sleep;
        let links = &mut self.links;
        let since_write = &mut self.since_write;
        let app = &mut self.app;
        // While events wait for the application, or outputs wait for a
        // full WebSocket queue, the client is not read.
        let backlogged = !self.backlog.is_empty();
        let blocked = ws_link::any_full(links);
        let holding = backlogged || blocked;
        self.reads_first = !self.reads_first;
        let reads_first = self.reads_first;
        futures_util::future::poll_fn(|cx| {
            if handle.poll_changed(cx) && !blocked {
                return Poll::Ready(Wake::Outputs);
            }
            if blocked || *since_write >= WRITE_EVERY {
                *since_write = 0;
                if let Some(event) = ws_link::write_links(links, cx) {
                    return Poll::Ready(Wake::Link(event));
                }
                if blocked && !ws_link::any_full(links) {
                    return Poll::Ready(Wake::Outputs);
                }
            }
            if backlogged && app.poll_ready(cx).is_ready() {
                return Poll::Ready(Wake::AppReady);
            }
            let read = |links: &mut Vec<WsLink<UpgradedIo>>, cx: &mut Context<'_>| {
                let event = if holding {
                    ws_link::open_links(links, cx)
                } else {
                    ws_link::read_links(links, cx)
                };
                event.map(Wake::Link)
            };
            let wake = if reads_first {
                read(links, cx).or_else(|| poll_input(inputs, cx))
            } else {
                poll_input(inputs, cx).or_else(|| read(links, cx))
            };
            if let Some(wake) = wake {
                *since_write += 1;
                return Poll::Ready(wake);
            }
            for (request, reply) in replies.iter_mut() {
                if reply.poll_canceled(cx).is_ready() {
                    return Poll::Ready(Wake::Aborted(*request));
                }
            }
            if let Some((_, timer)) = sleep.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    // A completed future must not be polled again.
                    *sleep = None;
                    return Poll::Ready(Wake::Deadline);
                }
            }
            // Nothing else to do: write.
            *since_write = 0;
            match ws_link::write_links(links, cx) {
                Some(event) => Poll::Ready(Wake::Link(event)),
                None if blocked && !ws_link::any_full(links) => Poll::Ready(Wake::Outputs),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn take_handoff(&mut self, machine: &mut M, now: Instant, handoff: Handoff) {
        match handoff {
            Handoff::Poll { request, reply } => {
                self.replies.insert(request, reply);
                machine.handle_input(now, eio::Input::Poll(request));
            }
            Handoff::Post {
                request,
                body,
                binary,
                reply,
            } => {
                self.replies.insert(request, reply);
                let input = if binary {
                    eio::Input::BinaryPost { request, body }
                } else {
                    eio::Input::Post { request, body }
                };
                machine.handle_input(now, input);
            }
            Handoff::PostFailed {
                request,
                failure,
                reply,
            } => {
                self.replies.insert(request, reply);
                machine.handle_input(now, eio::Input::PostFailed { request, failure });
            }
            Handoff::Upgrade { ws, socket } => {
                self.links.reserve_exact(1);
                self.links
                    .push(WsLink::new(ws, socket, self.shared.config.ws_queue));
                machine.handle_input(now, eio::Input::Upgrade(ws));
            }
            Handoff::Close => machine.close(now),
        }
    }

    /// Gives an event to the application without waiting: when its queue
    /// is full, the event joins the backlog and the client is held.
    fn deliver(&mut self, machine: &mut M, event: M::Event) {
        if !self.backlog.is_empty() {
            return self.backlog.push_back(event);
        }
        match self.app.try_send(event) {
            Ok(()) => {}
            Err(error) if error.is_full() => {
                self.backlog.push_back(error.into_inner());
                machine.hold_messages(self.machine.clock().now(), true);
            }
            // The application dropped its receiver: nobody listens.
            Err(_) => {}
        }
    }

    /// The application has room: hand it the backlog, and once it is all
    /// taken, let the client's messages flow again.
    fn flush_backlog(&mut self, machine: &mut M) {
        while let Some(event) = self.backlog.pop_front() {
            match self.app.try_send(event) {
                Ok(()) => {}
                Err(error) if error.is_full() => {
                    return self.backlog.push_front(error.into_inner());
                }
                Err(_) => self.backlog.clear(),
            }
        }
        machine.hold_messages(self.machine.clock().now(), false);
    }

    /// Carries out the machine's outputs, until none is left or a
    /// WebSocket's queue is full (the rest wait in the machine).
    /// Adds what the machine counted to the engine's stats, once per turn
    /// of the loop (not once per message).
    fn count(&mut self, machine: &mut M) {
        let traffic = machine.take_traffic();
        if !traffic.is_empty() {
            self.shared.counters.add(traffic);
        }
        let transport = machine.transport();
        if transport != self.transport {
            self.transport = transport;
            self.shared.counters.upgraded();
        }
    }

    fn carry_out_outputs(&mut self, machine: &mut M) {
        while !ws_link::any_full(&self.links) {
            let Some(step) = machine.poll_output() else {
                break;
            };
            let output = match step {
                Step::Transport(output) => output,
                Step::Event(event) => {
                    self.deliver(machine, event);
                    continue;
                }
            };
            match output {
                eio::Output::Respond { request, response } => {
                    if let Some(reply) = self.replies.remove(&request) {
                        let _ = reply.send(response);
                    }
                }
                eio::Output::WsSend {
                    ws,
                    frame,
                    compress,
                } => {
                    if let Some(link) = ws_link::find(&mut self.links, ws) {
                        link.push(frame, compress);
                    }
                }
                eio::Output::WsClose { ws } => {
                    if let Some(link) = ws_link::find(&mut self.links, ws) {
                        link.close();
                    }
                }
                // `Driven` turns the rest into events or hides them.
                _ => {}
            }
        }
    }
}

fn poll_input(inputs: &mut mpsc::Receiver<Handoff>, cx: &mut Context<'_>) -> Option<Wake> {
    match inputs.poll_next_unpin(cx) {
        Poll::Ready(input) => Some(Wake::Handoff(input)),
        Poll::Pending => None,
    }
}
