//! The task that owns one Engine.IO session's state machine.
//!
//! Theory of operation: the task is the session's only owner. It loops: carry
//! out every output of the machine, then wait for whichever comes first of an
//! input (HTTP request, WebSocket frame, application command), the machine's
//! next deadline, or the client abandoning a parked long-poll, and feed it
//! to the machine. When the machine reports `Closed` the task removes the
//! session from the table and ends; the application's receiver then yields
//! `None`.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use engineio_proto::server::{self as eio, HttpResponse, Session};
use engineio_proto::{Frame, Instant, Message, RequestId, Sid, WsId};
use futures_channel::{mpsc, oneshot};
use futures_util::{SinkExt, StreamExt};

use super::{register, Shared};
use crate::handshake::Handshake;
use crate::runtime::{Runtime, Sleep};

/// Inputs to a session task.
pub(crate) enum Input {
    /// A long-poll GET; answer through `reply`.
    Poll {
        request: RequestId,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// A POST with its body (cut one chunk past the limit).
    Post {
        request: RequestId,
        body: Bytes,
        reply: oneshot::Sender<HttpResponse>,
    },
    /// A WebSocket with this session's sid was accepted.
    Upgrade {
        ws: WsId,
        writer: mpsc::Sender<WsCommand>,
    },
    /// A frame from a WebSocket.
    WsFrame { ws: WsId, frame: Frame },
    /// A WebSocket ended.
    WsClosed { ws: WsId },
    /// A command of the application for the machine.
    Command(Command),
}

/// What the application asks of a session's machine.
pub(crate) enum Command {
    /// Send an Engine.IO message (raw Engine.IO sessions).
    Send(Message),
    /// A Socket.IO command (Socket.IO connections).
    Sio(crate::server::SioCommand),
    /// Close the session.
    Close,
}

/// A state machine a session task can drive: the raw Engine.IO [`Session`],
/// or a Socket.IO connection that owns one.
pub(crate) trait Driven: Send + 'static {
    /// What the machine tells the application.
    type Event: Send + 'static;

    fn sid(&self) -> Sid;
    fn handle_poll(&mut self, now: Instant, request: RequestId);
    fn handle_poll_aborted(&mut self, now: Instant, request: RequestId);
    fn handle_post(&mut self, now: Instant, request: RequestId, body: Bytes);
    fn handle_upgrade(&mut self, now: Instant, ws: WsId);
    fn handle_ws_frame(&mut self, now: Instant, ws: WsId, frame: Frame);
    fn handle_ws_closed(&mut self, now: Instant, ws: WsId);
    fn handle_timeout(&mut self, now: Instant);
    /// Applies an application command.
    fn command(&mut self, now: Instant, command: Command);
    /// The next output: a transport action, or an event for the application.
    fn poll_output(&mut self) -> Option<Step<Self::Event>>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
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
    fn handle_poll(&mut self, now: Instant, request: RequestId) {
        Session::handle_poll(self, now, request)
    }
    fn handle_poll_aborted(&mut self, now: Instant, request: RequestId) {
        Session::handle_poll_aborted(self, now, request)
    }
    fn handle_post(&mut self, now: Instant, request: RequestId, body: Bytes) {
        Session::handle_post(self, now, request, body)
    }
    fn handle_upgrade(&mut self, now: Instant, ws: WsId) {
        Session::handle_upgrade(self, now, ws)
    }
    fn handle_ws_frame(&mut self, now: Instant, ws: WsId, frame: Frame) {
        Session::handle_ws_frame(self, now, ws, frame)
    }
    fn handle_ws_closed(&mut self, now: Instant, ws: WsId) {
        Session::handle_ws_closed(self, now, ws)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Session::handle_timeout(self, now)
    }
    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send(message) => {
                if let Err(error) = self.send(now, message) {
                    // A client that does not read fills its buffer: end
                    // that one session rather than grow without bound.
                    tracing::debug!(sid = %self.sid(), %error, "closing a session that does not read");
                    self.close(now);
                }
            }
            Command::Close => self.close(now),
            Command::Sio(_) => {}
        }
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
}

/// What a WebSocket writer task is told.
pub(crate) enum WsCommand {
    Frame(Frame),
    Close,
}

/// How many inputs may wait for a session task.
pub(crate) const INPUT_QUEUE: usize = 64;

/// The application's handle on one Engine.IO session.
pub struct EngineSocket {
    sid: Sid,
    handshake: Arc<Handshake>,
    commands: mpsc::Sender<Input>,
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

    /// Sends a message to the client. Waits while the session's input queue
    /// is full; fails once the session is gone.
    pub async fn send(&mut self, message: Message) -> Result<(), SessionClosed> {
        self.commands
            .send(Input::Command(Command::Send(message)))
            .await
            .map_err(|_| SessionClosed)
    }

    /// The next message from the client; `None` once the session is closed.
    pub async fn recv(&mut self) -> Option<Message> {
        self.incoming.next().await
    }

    /// Closes the session (after delivering what is buffered).
    pub async fn close(&mut self) {
        let _ = self.commands.send(Input::Command(Command::Close)).await;
    }
}

/// Registers a new session and spawns its task. `pending` is the handshake
/// GET to answer; `ws` the WebSocket of a WebSocket handshake.
pub(crate) fn start<R: Runtime>(
    shared: &Arc<Shared<R>>,
    session: Session,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, mpsc::Sender<WsCommand>)>,
    handshake: Arc<Handshake>,
) -> mpsc::Sender<Input> {
    shared.mode.start(shared, session, pending, ws, handshake)
}

/// Starts the task of a raw Engine.IO session.
pub(crate) fn start_raw<R: Runtime>(
    shared: &Arc<Shared<R>>,
    session: Session,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, mpsc::Sender<WsCommand>)>,
    handshake: Arc<Handshake>,
    on_connection: &(dyn Fn(EngineSocket) + Send + Sync),
) -> mpsc::Sender<Input> {
    let sid = session.sid();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (app_tx, app_rx) = mpsc::channel(shared.config.app_queue);
    on_connection(EngineSocket {
        sid,
        handshake,
        commands: input_tx.clone(),
        incoming: app_rx,
    });
    spawn_task(shared, session, input_tx, input_rx, app_tx, pending, ws)
}

/// Registers a machine's session and spawns the task that drives it.
pub(crate) fn spawn_task<R: Runtime, M: Driven>(
    shared: &Arc<Shared<R>>,
    machine: M,
    input_tx: mpsc::Sender<Input>,
    input_rx: mpsc::Receiver<Input>,
    app: mpsc::Sender<M::Event>,
    pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
    ws: Option<(WsId, mpsc::Sender<WsCommand>)>,
) -> mpsc::Sender<Input> {
    let sid = machine.sid();
    register(shared, sid, input_tx.clone());
    let mut task = SessionTask {
        shared: shared.clone(),
        session: machine,
        inputs: input_rx,
        app,
        replies: HashMap::new(),
        writers: HashMap::new(),
        sleep: None,
    };
    if let Some((request, reply)) = pending {
        task.replies.insert(request, reply);
    }
    if let Some((ws, writer)) = ws {
        task.writers.insert(ws, writer);
    }
    // Every event of this session's task carries its sid.
    let span = tracing::debug_span!("engineio_session", sid = %task.session.sid());
    shared
        .runtime
        .spawn(Box::pin(tracing::Instrument::instrument(task.run(), span)));
    input_tx
}

struct SessionTask<R: Runtime, M: Driven> {
    shared: Arc<Shared<R>>,
    session: M,
    inputs: mpsc::Receiver<Input>,
    app: mpsc::Sender<M::Event>,
    /// Requests waiting for an answer (the parked GET, the handshake GET).
    replies: HashMap<RequestId, oneshot::Sender<HttpResponse>>,
    writers: HashMap<WsId, mpsc::Sender<WsCommand>>,
    /// The armed timer and its deadline. Kept across loop turns: most inputs
    /// leave the deadline where it was, and a new timer per message would be
    /// an allocation per message.
    sleep: Option<(Instant, Sleep)>,
}

/// Why the task woke up.
enum Wake {
    Input(Option<Input>),
    Deadline,
    Aborted(RequestId),
}

impl<R: Runtime, M: Driven> SessionTask<R, M> {
    async fn run(mut self) {
        let sid = self.session.sid();
        tracing::debug!(%sid, "session opened");
        loop {
            self.carry_out_outputs().await;
            if self.session.is_closed() {
                break;
            }
            let wake = self.next_wake().await;
            let now = self.shared.clock.now();
            match wake {
                Wake::Input(Some(input)) => self.handle_input(input),
                // Every handle on the session is gone: nobody can use it.
                Wake::Input(None) => self.session.command(now, Command::Close),
                Wake::Deadline => self.session.handle_timeout(now),
                Wake::Aborted(request) => {
                    self.replies.remove(&request);
                    self.session.handle_poll_aborted(now, request);
                }
            }
        }
        self.shared.remove_session(sid);
        for (_, mut writer) in self.writers.drain() {
            let _ = writer.try_send(WsCommand::Close);
        }
    }

    async fn next_wake(&mut self) -> Wake {
        let deadline = self.session.poll_timeout();
        if self.sleep.as_ref().map(|(at, _)| *at) != deadline {
            self.sleep = deadline.map(|at| {
                let timer = self
                    .shared
                    .runtime
                    .sleep_until(self.shared.clock.to_std(at));
                (at, timer)
            });
        }
        let inputs = &mut self.inputs;
        let replies = &mut self.replies;
        let sleep = &mut self.sleep;
        futures_util::future::poll_fn(|cx| {
            if let Poll::Ready(input) = inputs.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Input(input));
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
            Poll::Pending
        })
        .await
    }

    fn handle_input(&mut self, input: Input) {
        let now = self.shared.clock.now();
        match input {
            Input::Poll { request, reply } => {
                self.replies.insert(request, reply);
                self.session.handle_poll(now, request);
            }
            Input::Post {
                request,
                body,
                reply,
            } => {
                self.replies.insert(request, reply);
                self.session.handle_post(now, request, body);
            }
            Input::Upgrade { ws, writer } => {
                self.writers.insert(ws, writer);
                self.session.handle_upgrade(now, ws);
            }
            Input::WsFrame { ws, frame } => self.session.handle_ws_frame(now, ws, frame),
            Input::WsClosed { ws } => {
                self.writers.remove(&ws);
                self.session.handle_ws_closed(now, ws);
            }
            Input::Command(command) => self.session.command(now, command),
        }
    }

    async fn carry_out_outputs(&mut self) {
        while let Some(step) = self.session.poll_output() {
            let output = match step {
                Step::Transport(output) => output,
                Step::Event(event) => {
                    // Backpressure: a slow application slows this session.
                    let _ = self.app.send(event).await;
                    continue;
                }
            };
            match output {
                eio::Output::Respond { request, response } => {
                    if let Some(reply) = self.replies.remove(&request) {
                        let _ = reply.send(response);
                    }
                }
                eio::Output::WsSend { ws, frame } => {
                    let stuck = match self.writers.get_mut(&ws) {
                        Some(writer) => writer.try_send(WsCommand::Frame(frame)).is_err(),
                        None => false,
                    };
                    if stuck {
                        // The client does not read its WebSocket: drop it.
                        self.writers.remove(&ws);
                        let now = self.shared.clock.now();
                        self.session.handle_ws_closed(now, ws);
                    }
                }
                eio::Output::WsClose { ws } => {
                    if let Some(mut writer) = self.writers.remove(&ws) {
                        let _ = writer.try_send(WsCommand::Close);
                    }
                }
                // `Driven` turns the rest into events or hides them.
                _ => {}
            }
        }
    }
}
