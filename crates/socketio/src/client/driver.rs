//! The task that drives a client's protocol machine.
//!
//! # Theory of operation
//!
//! One [`ClientConnection`] (the Manager and every namespace socket) sits in
//! [`Shared::machine`], the same [`MachineHandle`] a server connection
//! lives in. Handles (`ClientSocket`, `Manager`) change it directly for
//! commands (emit, ack, join, leave), so their errors are immediate, and
//! the change wakes the driver.
//!
//! The driver reads and writes its WebSockets itself, through the same
//! [`WsLink`] a server session task uses: no task or channel per socket.
//! HTTP requests run as tasks that report their results through a bounded
//! channel.
//!
//! The driver loop: carry out the machine's outputs one at a time until
//! none is left or a WebSocket's queue is full (the rest wait in the
//! machine until it is written), then sleep until a WebSocket event, an
//! HTTP result, a wake-up from a handle, or the machine's next deadline.
//! Outputs become IO (requests, WebSocket frames) or deliveries to the
//! client's handler task ([`super::handlers`]), which starts their
//! listeners in order and never waits for them, so it always drains its
//! queue: when the queue is full, deliveries wait in a backlog, and past
//! [`MAX_BACKLOG`] the driver stops reading the network until the handler
//! task catches up.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use engineio_proto::client::{self as eio, heartbeat_window};
use engineio_proto::{Instant, RequestId, Str, WsId};
use futures_channel::{mpsc, oneshot};
use futures_util::future::{AbortHandle, Abortable};
use futures_util::{SinkExt, StreamExt};
use socketio_proto::backoff::RandomSource;
use socketio_proto::client::{AckError, ClientConnection, Input, Output};
use socketio_proto::AckId;

use super::handlers::{Delivery, SocketEvent};
use super::options::{Auth, Endpoint};
use super::socket::{ConnectError, SocketShared};
use super::transport::{self, ClientIo, HttpPool};
use super::ManagerEvent;
use crate::handle::MachineHandle;
use crate::links::{self, Link, LinkEvent};
use crate::locks::lock;
use crate::payload::Payload;
use crate::runtime::Sleep;

/// IO results waiting for the driver. Small: readers wait for the driver.
const INPUT_QUEUE: usize = 32;

/// How long a closing client waits for its last requests to finish.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Frames waiting for a WebSocket writer.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) const WS_QUEUE: usize = 64;

/// Deliveries waiting for the handler task (then in the backlog).
pub(crate) const EVENT_QUEUE: usize = 64;

/// Backoff jitter from the operating system's generator.
#[derive(Debug, Default)]
pub(crate) struct Jitter;

impl RandomSource for Jitter {
    fn next_u32(&mut self) -> u32 {
        getrandom::u32().unwrap_or(0x9e37_79b9)
    }
}

/// An answer to an emit awaiting its ack.
pub(crate) type AckReply = oneshot::Sender<Result<Payload, AckError>>;

/// A listener of the Manager's events.
pub(crate) type ManagerListener = Arc<dyn Fn(&ManagerEvent) + Send + Sync>;

/// The protocol state, shared by the handles and the driver.
pub(crate) struct State {
    pub(crate) conn: ClientConnection<Jitter>,
    /// Emits awaiting their ack, by namespace and id.
    pub(crate) acks: HashMap<(Str, AckId), AckReply>,
    pub(crate) sockets: HashMap<Str, Arc<SocketShared>>,
    /// Set by `close` or when the last handle goes: the driver stops once
    /// the machine's last outputs (the goodbyes) are carried out.
    pub(crate) closed: bool,
}

pub(crate) struct Shared {
    pub(crate) io: Arc<dyn ClientIo>,
    pub(crate) endpoint: Endpoint,
    /// The protocol state: handles change it with [`MachineHandle::apply`],
    /// which wakes the driver.
    pub(crate) machine: MachineHandle<State>,
    pub(crate) manager_listeners: Mutex<Vec<ManagerListener>>,
    pool: HttpPool,
    /// Requests and the first `timeout` of a connection are bounded by this.
    open_timeout: Duration,
    inputs: mpsc::Sender<Input>,
    /// Set when the driver has stopped.
    finished: AtomicBool,
    /// Waiting for the driver to stop ([`super::Manager::closed`]).
    closed_waiters: Mutex<Vec<oneshot::Sender<()>>>,
}

impl Shared {
    /// The shared state and the receiver of IO results for [`run`].
    pub(crate) fn new(
        io: Arc<dyn ClientIo>,
        endpoint: Endpoint,
        conn: ClientConnection<Jitter>,
        open_timeout: Duration,
    ) -> (Arc<Shared>, DriverInputs) {
        let (inputs, receiver) = mpsc::channel(INPUT_QUEUE);
        let clock = io.clock();
        let shared = Arc::new(Shared {
            io,
            endpoint,
            machine: MachineHandle::new(
                State {
                    conn,
                    acks: HashMap::new(),
                    sockets: HashMap::new(),
                    closed: false,
                },
                clock,
            ),
            manager_listeners: Mutex::new(Vec::new()),
            pool: HttpPool::default(),
            open_timeout,
            inputs,
            finished: AtomicBool::new(false),
            closed_waiters: Mutex::new(Vec::new()),
        });
        (shared, DriverInputs(receiver))
    }

    /// Completes once the driver has stopped (at once if it has).
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (waiter, stopped) = oneshot::channel();
        {
            let mut waiters = lock(&self.closed_waiters);
            if !self.finished.load(Ordering::Acquire) {
                waiters.push(waiter);
            }
        }
        async move {
            let _ = stopped.await;
        }
    }
}

/// The receiving end of the IO results.
pub(crate) struct DriverInputs(mpsc::Receiver<Input>);

/// The driver task: runs until the client is closed. `handlers` is the
/// queue of the client's handler task.
pub(crate) async fn run(
    shared: Arc<Shared>,
    inputs: DriverInputs,
    handlers: mpsc::Sender<Delivery>,
) {
    let mut driver = Driver {
        shared,
        inputs: inputs.0,
        links: Vec::new(),
        handlers,
        backlog: VecDeque::new(),
        sockets: HashMap::new(),
        tasks: HashMap::new(),
        sleep: None,
    };
    driver.run().await;
}

/// Deliveries waiting in the backlog beyond which the driver stops reading
/// the network. No cycle: the handler task never waits for the driver.
const MAX_BACKLOG: usize = 1024;

struct Driver {
    shared: Arc<Shared>,
    inputs: mpsc::Receiver<Input>,
    /// The WebSockets, read and written by the driver itself, as a
    /// server's session task does (see [`crate::links`]).
    links: Vec<transport::ClientLink>,
    /// The handler task's queue.
    handlers: mpsc::Sender<Delivery>,
    /// Deliveries that found the queue full, in order.
    backlog: VecDeque<Delivery>,
    /// The namespace sockets met so far: a socket, once made, stays in
    /// `State::sockets`, so this copy spares a lock per event.
    sockets: HashMap<Str, Arc<SocketShared>>,
    /// The HTTP requests in flight.
    tasks: HashMap<RequestId, AbortHandle>,
    /// The armed timer and its deadline, kept while the deadline holds.
    sleep: Option<(Instant, Sleep)>,
}

enum Wake {
    /// An HTTP request's result.
    Input(Input),
    /// A handle changed the machine, or a full WebSocket queue has room
    /// again: there are outputs to carry out.
    Command,
    Deadline,
    Link(LinkEvent),
}

impl Driver {
    async fn run(&mut self) {
        loop {
            // A full WebSocket queue leaves the rest in the machine until
            // it is written.
            while !links::any_full(&self.links) {
                let Some(output) = self.next_output() else {
                    break;
                };
                self.carry_out(output);
            }
            {
                // Closed, and the goodbye (DISCONNECT, CLOSE) handed over.
                let state = self.shared.machine.lock();
                if state.closed && state.conn.is_shut_down() {
                    break;
                }
            }
            let wake = self.next_wake().await;
            let now = self.shared.machine.clock().now();
            let shared = self.shared.clone();
            let mut state = shared.machine.lock();
            match wake {
                Wake::Input(result) => self.handle_input(&mut state.conn, now, result),
                Wake::Command => {}
                Wake::Deadline => state.conn.handle_input(now, Input::Timeout),
                Wake::Link(event) => self.link_event(&mut state.conn, now, event),
            }
        }
        self.let_io_finish().await;
        self.shared.pool.clear();
        self.abort_io();
        tracing::debug!("client closed");
        let waiters = {
            // Under the lock, so `closed` either sees `finished` or leaves
            // a waiter taken here.
            let mut waiters = lock(&self.shared.closed_waiters);
            self.shared.finished.store(true, Ordering::Release);
            std::mem::take(&mut *waiters)
        };
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }

    /// Gives the last requests and WebSockets (the goodbye, the parked
    /// long-poll the server ends on CLOSE) a short while to finish, so that
    /// a process exiting right after [`super::Manager::closed`] loses
    /// nothing it sent.
    async fn let_io_finish(&mut self) {
        let now = self.shared.machine.clock().now_std();
        let deadline = now + CLOSE_GRACE.min(self.shared.open_timeout);
        let io = self.shared.io.clone();
        let inputs = &mut self.inputs;
        let tasks = &mut self.tasks;
        let requests = async {
            while !tasks.is_empty() {
                match inputs.next().await {
                    Some(Input::HttpResponse { request, .. } | Input::HttpError(request)) => {
                        tasks.remove(&request);
                    }
                    Some(_) => {}
                    None => return,
                }
            }
        };
        let websockets = links::close_links(&mut self.links, io.sleep_until(deadline));
        let _ = within(
            io.as_ref(),
            deadline,
            futures_util::future::join(requests, websockets),
        )
        .await;
    }

    /// The machine's next output; acks are answered on the spot.
    fn next_output(&mut self) -> Option<Output> {
        let mut state = self.shared.machine.lock();
        loop {
            match state.conn.poll_output()? {
                Output::Ack {
                    nsp,
                    id,
                    data,
                    attachments,
                } => {
                    if let Some(reply) = state.acks.remove(&(nsp, id)) {
                        let args = data.unwrap_or_else(|| Str::from_static("[]"));
                        let _ = reply.send(Ok(Payload::from_raw(args, attachments)));
                    }
                }
                Output::AckFailed { nsp, id, error } => {
                    if let Some(reply) = state.acks.remove(&(nsp, id)) {
                        let _ = reply.send(Err(error));
                    }
                }
                output => return Some(output),
            }
        }
    }

    async fn next_wake(&mut self) -> Wake {
        let deadline = self.shared.machine.lock().conn.poll_timeout();
        if self.sleep.as_ref().map(|(at, _)| *at) != deadline {
            self.sleep = deadline.map(|at| {
                let timer = self
                    .shared
                    .io
                    .sleep_until(self.shared.machine.clock().to_std(at));
                (at, timer)
            });
        }
        let shared = &self.shared;
        let inputs = &mut self.inputs;
        let sleep = &mut self.sleep;
        let handlers = &mut self.handlers;
        let backlog = &mut self.backlog;
        let links = &mut self.links;
        let blocked = links::any_full(links);
        futures_util::future::poll_fn(|cx| {
            if shared.machine.poll_changed(cx) && !blocked {
                return Poll::Ready(Wake::Command);
            }
            if blocked {
                if let Some(event) = links::write_links(links, cx) {
                    return Poll::Ready(Wake::Link(event));
                }
                if !links::any_full(links) {
                    return Poll::Ready(Wake::Command);
                }
            }
            move_backlog(handlers, backlog, cx);
            // Past the backlog's bound, nothing is read until the handler
            // task catches up; WebSockets still open and write.
            let reading = backlog.len() < MAX_BACKLOG;
            let event = if reading {
                links::read_links(links, cx)
            } else {
                links::open_links(links, cx)
            };
            if let Some(event) = event {
                return Poll::Ready(Wake::Link(event));
            }
            if reading {
                if let Poll::Ready(Some(result)) = inputs.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Input(result));
                }
            }
            if let Some((_, timer)) = sleep.as_mut() {
                if timer.as_mut().poll(cx).is_ready() {
                    *sleep = None;
                    return Poll::Ready(Wake::Deadline);
                }
            }
            // Nothing else to do: write.
            match links::write_links(links, cx) {
                Some(event) => Poll::Ready(Wake::Link(event)),
                None if blocked && !links::any_full(links) => Poll::Ready(Wake::Command),
                None => Poll::Pending,
            }
        })
        .await
    }

    fn handle_input(&mut self, conn: &mut ClientConnection<Jitter>, now: Instant, input: Input) {
        // A request that ended is forgotten first.
        if let Input::HttpResponse { request, .. } | Input::HttpError(request) = input {
            self.tasks.remove(&request);
        }
        conn.handle_input(now, input);
    }

    /// Gives the machine what happened to one of the WebSockets. A link
    /// the machine no longer knows (its engine is gone) reports to it all
    /// the same: the machine ignores ids it does not use.
    fn link_event(&mut self, conn: &mut ClientConnection<Jitter>, now: Instant, event: LinkEvent) {
        let input = match event {
            LinkEvent::Opened(ws) => Input::WsOpen(ws),
            LinkEvent::Frame(ws, frame) => Input::WsFrame { ws, frame },
            // The server broke the protocol: for the machine the WebSocket
            // is gone; the link still sends its close frame, then ends.
            LinkEvent::Failed(ws, _) => Input::WsClosed(ws),
            LinkEvent::Ended(ws) => {
                self.links.retain(|link| link.id() != ws);
                Input::WsClosed(ws)
            }
        };
        conn.handle_input(now, input);
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Transport(intent) => self.transport(intent),
            Output::EngineOpen => self.manager_event(ManagerEvent::Open),
            Output::EngineClosed(reason) => {
                // The engine is gone: its requests and sockets are useless.
                self.abort_io();
                self.manager_event(ManagerEvent::Close(reason.as_node_str()));
            }
            Output::ReconnectAttempt(attempt) => {
                self.abort_io();
                self.manager_event(ManagerEvent::ReconnectAttempt(attempt));
            }
            Output::Reconnected(attempts) => {
                self.manager_event(ManagerEvent::Reconnect(attempts));
            }
            Output::ReconnectFailed => {
                self.abort_io();
                self.manager_event(ManagerEvent::ReconnectFailed);
                for socket in self.sockets() {
                    socket.resolve_waiters(Err(ConnectError::Failed));
                }
            }
            Output::AuthRequest { nsp } => self.provide_auth(nsp),
            Output::Connected {
                nsp,
                sid,
                recovered,
            } => {
                if let Some(socket) = self.socket(&nsp) {
                    socket.set_connected(Some(String::from(&*sid)), recovered);
                    socket.resolve_waiters(Ok(()));
                    self.dispatch(&nsp, SocketEvent::Connect);
                }
            }
            Output::ConnectError { nsp, data } => self.connect_error(nsp, data),
            Output::Event {
                nsp,
                data,
                attachments,
                ack,
            } => match Payload::split_event(&data, attachments) {
                Some((event, payload)) => {
                    self.dispatch(
                        &nsp,
                        SocketEvent::Event {
                            event,
                            payload,
                            ack,
                        },
                    );
                }
                None => tracing::debug!(%nsp, "event without a name dropped"),
            },
            Output::Disconnected { nsp, reason } => {
                if let Some(socket) = self.socket(&nsp) {
                    socket.set_connected(None, false);
                    if !reason.will_reconnect() {
                        socket.resolve_waiters(Err(ConnectError::Closed));
                    }
                    self.dispatch(&nsp, SocketEvent::Disconnect(reason));
                }
            }
            // Answered in `next_output`.
            Output::Ack { .. } | Output::AckFailed { .. } => {}
        }
    }

    fn connect_error(&mut self, nsp: Str, data: Option<Str>) {
        let Some(socket) = self.socket(&nsp) else {
            return;
        };
        let error = match data {
            Some(data) => ConnectError::refused(&data),
            None => ConnectError::Transport,
        };
        // A refusal is final; a transport failure is retried unless the
        // client does not reconnect.
        let reconnects = self.shared.reconnects();
        if matches!(error, ConnectError::Refused { .. }) || !reconnects {
            socket.resolve_waiters(Err(error.clone()));
        }
        self.dispatch(&nsp, SocketEvent::ConnectError(error));
    }

    fn socket(&mut self, nsp: &Str) -> Option<Arc<SocketShared>> {
        if let Some(socket) = self.sockets.get(nsp) {
            return Some(socket.clone());
        }
        let socket = self.shared.machine.lock().sockets.get(nsp).cloned()?;
        self.sockets.insert(nsp.clone(), socket.clone());
        Some(socket)
    }

    fn sockets(&self) -> Vec<Arc<SocketShared>> {
        self.shared
            .machine
            .lock()
            .sockets
            .values()
            .cloned()
            .collect()
    }

    /// Hands an event of namespace `nsp` to the handler task. When its
    /// queue is full the event waits in the backlog, and past
    /// [`MAX_BACKLOG`] waiting events the driver stops reading the network
    /// (see [`Driver::next_wake`]). It never waits here.
    fn dispatch(&mut self, nsp: &Str, event: SocketEvent) {
        let Some(socket) = self.socket(nsp) else {
            return;
        };
        let delivery = Delivery { socket, event };
        if !self.backlog.is_empty() {
            return self.backlog.push_back(delivery);
        }
        match self.handlers.try_send(delivery) {
            Ok(()) => {}
            Err(error) if error.is_full() => self.backlog.push_back(error.into_inner()),
            // The handler task is gone with the client.
            Err(_) => {}
        }
    }

    fn manager_event(&self, event: ManagerEvent) {
        let listeners = lock(&self.shared.manager_listeners).clone();
        for listener in listeners {
            listener(&event);
        }
    }

    /// Computes a namespace's auth (Node's `auth` callback) off the driver.
    fn provide_auth(&mut self, nsp: Str) {
        let auth = self
            .socket(&nsp)
            .map(|s| s.auth.clone())
            .unwrap_or_default();
        let shared = Arc::downgrade(&self.shared);
        let provide = move |shared: Weak<Shared>, value: Option<serde_json::Value>| {
            if let Some(shared) = shared.upgrade() {
                let auth = value.map(|v| Str::from(v.to_string()));
                let _ = shared
                    .machine
                    .apply(|state, now| state.conn.provide_auth(now, &nsp, auth));
            }
        };
        match auth {
            Auth::Dynamic(compute) => {
                let computing = compute();
                self.shared.io.spawn(Box::pin(async move {
                    let value = computing.await;
                    provide(shared, Some(value));
                }));
            }
            Auth::Fixed(value) => provide(shared, Some(value)),
            Auth::None => provide(shared, None),
        }
    }

    fn transport(&mut self, intent: eio::Output) {
        match intent {
            eio::Output::HttpRequest {
                request,
                method,
                query,
                body,
            } => {
                self.shared.pool.reuse();
                self.spawn_http(request, method, query, body)
            }
            eio::Output::Upgraded => self.shared.pool.retire(),
            eio::Output::WsConnect { ws, query } => self.open_websocket(ws, query),
            eio::Output::WsSend {
                ws,
                frame,
                compress,
            } => {
                if let Some(link) = links::find(&mut self.links, ws) {
                    link.push(frame, compress);
                }
            }
            eio::Output::WsClose { ws } => {
                if let Some(link) = links::find(&mut self.links, ws) {
                    link.close();
                }
            }
            // The Socket.IO machine consumes the rest.
            _ => {}
        }
    }

    /// How long one request may take: a long-poll lasts up to the ping
    /// interval, so the heartbeat window, and never less than `timeout`.
    fn request_timeout(&self) -> Duration {
        let window = self
            .shared
            .machine
            .lock()
            .conn
            .engine()
            .and_then(eio::Client::handshake)
            .map(heartbeat_window)
            .unwrap_or_default();
        self.shared.open_timeout.max(window) + Duration::from_secs(5)
    }

    fn spawn_http(
        &mut self,
        request: RequestId,
        method: eio::HttpMethod,
        query: eio::Query,
        body: Bytes,
    ) {
        let shared = self.shared.clone();
        let deadline = self.shared.machine.clock().now_std() + self.request_timeout();
        let mut results = self.shared.inputs.clone();
        let work = async move {
            let io = shared.io.as_ref();
            let requesting =
                transport::http_request(io, &shared.pool, &shared.endpoint, method, query, body);
            let outcome = match within(io, deadline, requesting).await {
                Some(Ok(outcome)) => Some(outcome),
                Some(Err(error)) => {
                    tracing::debug!(%error, "http request failed");
                    None
                }
                None => None,
            };
            let input = match outcome {
                Some((status, body)) => Input::HttpResponse {
                    request,
                    status,
                    body,
                },
                None => Input::HttpError(request),
            };
            let _ = results.send(input).await;
        };
        self.spawn_task(request, work);
    }

    /// A link whose opening connects (natively TLS included) and does the
    /// WebSocket handshake, within `timeout`; the driver polls it.
    fn open_websocket(&mut self, ws: WsId, query: eio::Query) {
        let deadline = self.shared.machine.clock().now_std() + self.shared.open_timeout;
        let link = transport::open_link(self.shared.clone(), ws, query, deadline);
        self.links.reserve_exact(1);
        self.links.push(link);
    }

    fn spawn_task(
        &mut self,
        request: RequestId,
        work: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (handle, registration) = AbortHandle::new_pair();
        self.tasks.insert(request, handle);
        self.shared.io.spawn(Box::pin(async move {
            let _ = Abortable::new(work, registration).await;
        }));
    }

    fn abort_io(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
        // Each says goodbye after what is queued, then ends.
        for link in &mut self.links {
            link.close();
        }
    }
}

impl Shared {
    fn reconnects(&self) -> bool {
        self.machine.lock().conn.config().reconnection
    }
}

/// Moves backlogged deliveries into the handler task's queue while it has
/// room (drops them if the task is gone with the client).
fn move_backlog(
    queue: &mut mpsc::Sender<Delivery>,
    backlog: &mut VecDeque<Delivery>,
    cx: &mut Context<'_>,
) {
    while !backlog.is_empty() {
        match queue.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                if let Some(delivery) = backlog.pop_front() {
                    let _ = queue.start_send(delivery);
                }
            }
            Poll::Ready(Err(_)) => backlog.clear(),
            Poll::Pending => break,
        }
    }
}

/// `work`'s output, or `None` once `deadline` passes.
pub(crate) async fn within<F: std::future::Future>(
    io: &dyn ClientIo,
    deadline: web_time::Instant,
    work: F,
) -> Option<F::Output> {
    let work = std::pin::pin!(work);
    match futures_util::future::select(work, io.sleep_until(deadline)).await {
        futures_util::future::Either::Left((output, _)) => Some(output),
        futures_util::future::Either::Right(_) => None,
    }
}
