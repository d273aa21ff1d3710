//! One run of `sio`: connect, emit, print what arrives, and decide how it
//! ends.
//!
//! The socket's listeners and the task awaiting acks print as things
//! happen and report to the run loop through one channel; the loop alone
//! decides the exit status, so every way of ending (goal reached, deadline,
//! Ctrl-C, server disconnect) is decided in one place.

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use runtime_tokio::socketio::client::{
    AckError, ClientError, ClientOptions, ClientSocket, ConnectError, DisconnectReason, Transports,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use crate::cli::{Config, Transport};
use crate::exit::Exit;
use crate::json;
use crate::output::Output;

/// What the listeners and the ack task tell the run loop.
#[derive(Debug)]
enum Signal {
    /// The socket connected (again).
    Connected,
    /// `--count` events were printed.
    CountReached,
    /// A connection attempt failed.
    ConnectError(ConnectError),
    /// The socket disconnected.
    Disconnected(DisconnectReason),
    /// Every ack came and was printed.
    AcksDone,
    /// The ack of `event` will not come.
    AckFailed { event: String, error: AckError },
    /// Stdout is closed: nobody reads what `sio` prints any more.
    OutputClosed,
}

/// What the event listener shares with the run loop.
#[derive(Debug, Default)]
struct Tally {
    /// Events printed so far.
    received: AtomicU64,
    /// Set when the run is over: later events are not printed.
    done: AtomicBool,
}

/// Runs `sio` as configured and returns how it ended.
pub async fn run(config: Config, out: Output) -> Exit {
    let socket = match make_socket(&config) {
        Ok(socket) => socket,
        Err(error) => {
            out.note(format_args!("{error}"));
            return Exit::Usage;
        }
    };
    let (signals, inbox) = unbounded_channel();
    let tally = Arc::new(Tally::default());
    add_listeners(&socket, &config, out, &tally, &signals);
    let mut run = Run {
        deadline: config.timeout.map(|timeout| Instant::now() + timeout),
        config,
        out,
        socket,
        tally,
        signals,
        inbox,
        interrupt: Box::pin(interrupted()),
        connected: false,
        count_done: false,
        acks_pending: false,
        ack_lost: None,
    };
    let exit = run.drive().await;
    run.finish().await;
    exit
}

/// The socket of the URL's namespace, with the options of the command
/// line. Reconnection is off unless asked for, so that a dead server fails
/// fast instead of being retried forever.
fn make_socket(config: &Config) -> Result<ClientSocket, ClientError> {
    let transports = match config.transport {
        Transport::Polling => Transports::POLLING,
        Transport::Websocket => Transports::WEBSOCKET,
        Transport::Upgrade => Transports::ALL,
    };
    let mut options = ClientOptions::default()
        .transports(transports)
        .path(&config.path)
        .reconnection(config.reconnect);
    if let Some(auth) = &config.auth {
        options = options.auth(auth)?;
    }
    for (name, value) in &config.headers {
        options = options.extra_header(name, value);
    }
    for (name, value) in &config.query {
        options = options.query(name, value);
    }
    runtime_tokio::io(&config.url, options)
}

/// Prints every event (up to `--count`) and reports connections and
/// disconnections to the run loop.
fn add_listeners(
    socket: &ClientSocket,
    config: &Config,
    out: Output,
    tally: &Arc<Tally>,
    signals: &UnboundedSender<Signal>,
) {
    let count = config.count;
    let (tally, sender) = (tally.clone(), signals.clone());
    // Listeners of one socket run one at a time, in order: the count needs
    // no more than atomic loads and stores.
    socket.on_any(move |_, event, payload| {
        let (tally, sender) = (tally.clone(), sender.clone());
        async move {
            let received = tally.received.load(Ordering::Acquire);
            if tally.done.load(Ordering::Acquire) || count.is_some_and(|count| received >= count) {
                return;
            }
            if out.event(&event, &payload).is_err() {
                tally.done.store(true, Ordering::Release);
                let _ = sender.send(Signal::OutputClosed);
                return;
            }
            tally.received.store(received + 1, Ordering::Release);
            if count == Some(received + 1) {
                let _ = sender.send(Signal::CountReached);
            }
        }
    });
    let sender = signals.clone();
    socket.on_connect(move |socket| {
        let sender = sender.clone();
        async move {
            let id = socket.id().unwrap_or_default();
            out.note(format_args!("connected to {} as {id}", socket.namespace()));
            let _ = sender.send(Signal::Connected);
        }
    });
    let (sender, reconnect) = (signals.clone(), config.reconnect);
    socket.on_connect_error(move |_, error| {
        let sender = sender.clone();
        async move {
            // Final failures are reported by the run loop; only the ones
            // the client retries are worth a word here.
            if reconnect && matches!(error, ConnectError::Transport) {
                out.note(format_args!("{error}; retrying"));
            }
            let _ = sender.send(Signal::ConnectError(error));
        }
    });
    let sender = signals.clone();
    socket.on_disconnect(move |_, reason| {
        let sender = sender.clone();
        async move {
            let _ = sender.send(Signal::Disconnected(reason));
        }
    });
}

/// Completes on Ctrl-C; never if the handler cannot be installed.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        pending::<()>().await;
    }
}

/// Completes at `deadline`; never without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}

/// The state of one run.
struct Run {
    config: Config,
    out: Output,
    socket: ClientSocket,
    tally: Arc<Tally>,
    /// Kept so the channel never reports closed while the loop waits.
    signals: UnboundedSender<Signal>,
    inbox: UnboundedReceiver<Signal>,
    deadline: Option<Instant>,
    interrupt: Pin<Box<dyn Future<Output = ()> + Send>>,
    connected: bool,
    count_done: bool,
    acks_pending: bool,
    /// An emit whose ack was lost to a disconnection.
    ack_lost: Option<String>,
}

impl Run {
    /// Connects, emits, waits: returns how the run ended.
    async fn drive(&mut self) -> Exit {
        let connecting = self.socket.connect();
        tokio::select! {
            result = connecting => {
                if let Err(error) = result {
                    return self.connect_failed(&error);
                }
            }
            () = until(self.deadline) => {
                self.out.note(format_args!("timed out connecting to {}", self.config.url));
                return Exit::Timeout;
            }
            () = &mut self.interrupt => return Exit::Success,
        }
        self.connected = true;
        if let Err(exit) = self.emit() {
            return exit;
        }
        self.wait().await
    }

    /// Sends the emits, in order; the acks are awaited by a task of their
    /// own that prints them in the same order.
    fn emit(&mut self) -> Result<(), Exit> {
        let mut acks = Vec::new();
        for emit in &self.config.emits {
            let payload = json::payload(&emit.args).map_err(|error| {
                self.out
                    .note(format_args!("cannot encode {}: {error}", emit.event));
                Exit::Usage
            })?;
            if self.config.ack {
                let answer =
                    self.socket
                        .emit_with_ack(&emit.event, payload, Some(self.config.ack_timeout));
                acks.push((emit.event.clone(), answer));
            } else if let Err(error) = self.socket.emit_payload(&emit.event, payload) {
                self.out
                    .note(format_args!("cannot emit {}: {error}", emit.event));
                return Err(Exit::ConnectionFailed);
            }
        }
        if acks.is_empty() {
            return Ok(());
        }
        self.acks_pending = true;
        let (out, sender) = (self.out, self.signals.clone());
        tokio::spawn(async move {
            for (event, answer) in acks {
                match answer.await {
                    Ok(payload) => {
                        if out.ack(&event, &payload).is_err() {
                            let _ = sender.send(Signal::OutputClosed);
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = sender.send(Signal::AckFailed { event, error });
                        return;
                    }
                }
            }
            let _ = sender.send(Signal::AcksDone);
        });
        Ok(())
    }

    /// Handles what the listeners report until the goal is reached or
    /// something ends the run.
    async fn wait(&mut self) -> Exit {
        loop {
            if self.goal_reached() {
                return Exit::Success;
            }
            let signal = tokio::select! {
                signal = self.inbox.recv() => signal,
                () = until(self.deadline) => return self.timed_out(),
                () = &mut self.interrupt => return Exit::Success,
            };
            // `self.signals` keeps the channel open: `None` cannot happen.
            let Some(signal) = signal else {
                return Exit::ConnectionFailed;
            };
            if let Some(exit) = self.handle(signal) {
                return exit;
            }
        }
    }

    fn goal_reached(&self) -> bool {
        self.config.has_goal()
            && (self.config.count.is_none() || self.count_done)
            && !self.acks_pending
    }

    /// Acts on one report; `Some` ends the run.
    fn handle(&mut self, signal: Signal) -> Option<Exit> {
        match signal {
            Signal::Connected => self.connected = true,
            Signal::CountReached => self.count_done = true,
            Signal::AcksDone => self.acks_pending = false,
            Signal::OutputClosed => return Some(Exit::Success),
            Signal::AckFailed { event, error } => return self.ack_failed(event, error),
            Signal::Disconnected(reason) => return self.disconnected(&reason),
            Signal::ConnectError(error) => match error {
                // Retried by the client (with --reconnect; without it the
                // socket never connected and the run already ended).
                ConnectError::Transport => {}
                error => return Some(self.connect_failed(&error)),
            },
        }
        None
    }

    fn ack_failed(&mut self, event: String, error: AckError) -> Option<Exit> {
        match error {
            AckError::Timeout => {
                let secs = self.config.ack_timeout.as_secs_f64();
                self.out
                    .note(format_args!("no ack for {event} within {secs} s"));
                Some(Exit::Timeout)
            }
            // The socket's disconnection decides the status (a server
            // disconnect is not a lost connection); it has either been
            // handled already or is on its way.
            AckError::Disconnected if self.connected => {
                self.ack_lost = Some(event);
                None
            }
            error => {
                self.out
                    .note(format_args!("the ack of {event} will not come: {error}"));
                Some(Exit::ConnectionFailed)
            }
        }
    }

    fn disconnected(&mut self, reason: &DisconnectReason) -> Option<Exit> {
        self.connected = false;
        let why = reason.as_node_str();
        match reason {
            DisconnectReason::ServerDisconnect => {
                self.out
                    .note(format_args!("the server disconnected the socket ({why})"));
                Some(Exit::ServerDisconnect)
            }
            // Only `finish` disconnects on our side.
            DisconnectReason::ClientDisconnect => Some(Exit::Success),
            reason if reason.will_reconnect() && self.config.reconnect => {
                self.out
                    .note(format_args!("disconnected ({why}); reconnecting"));
                let lost = self.ack_lost.take()?;
                self.out.note(format_args!(
                    "the ack of {lost} was lost with the connection"
                ));
                Some(Exit::ConnectionFailed)
            }
            _ => {
                self.out.note(format_args!("disconnected ({why})"));
                Some(Exit::ConnectionFailed)
            }
        }
    }

    fn connect_failed(&self, error: &ConnectError) -> Exit {
        let url = &self.config.url;
        match error {
            ConnectError::Refused { message, data } => {
                let data = data
                    .as_ref()
                    .map(|data| format!(" (data: {data})"))
                    .unwrap_or_default();
                self.out.note(format_args!(
                    "the server refused the connection to {}: {message}{data}",
                    self.socket.namespace()
                ));
            }
            ConnectError::Transport => {
                self.out.note(format_args!("could not connect to {url}"));
            }
            ConnectError::Options(error) => {
                self.out.note(format_args!("{error}"));
                return Exit::Usage;
            }
            error => self.out.note(format_args!("{url}: {error}")),
        }
        Exit::ConnectionFailed
    }

    fn timed_out(&self) -> Exit {
        if !self.config.has_goal() {
            // Listening only: --timeout says how long.
            return Exit::Success;
        }
        let received = self.tally.received.load(Ordering::Acquire);
        match self.config.count {
            Some(count) if !self.count_done => self
                .out
                .note(format_args!("timed out after {received} of {count} events")),
            _ => self.out.note(format_args!("timed out waiting for acks")),
        }
        Exit::Timeout
    }

    /// Stops printing, leaves the namespace politely (the server sees
    /// `client namespace disconnect` rather than a dropped connection) and
    /// closes the client, waiting until the emits just made and the
    /// goodbye are written (the client bounds that wait itself).
    async fn finish(self) {
        self.tally.done.store(true, Ordering::Release);
        if self.socket.connected() {
            self.socket.disconnect();
        }
        let manager = self.socket.manager();
        manager.close();
        let closed = manager.closed();
        // Drop every handle: nothing may keep the client alive.
        drop(manager);
        drop(self);
        closed.await;
    }
}
