//! The scenarios: what the load generator does to a server, and what it
//! measures of it. Each runs on a current-thread tokio runtime inside a
//! `LocalSet` (the load generator is pinned to one core), checks every
//! reply, and fails the run on anything unexpected.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Ws};
use crate::compression;
use crate::probe::{Probe, Sample};
use crate::BenchError;

/// What the load generator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// `echo` round trips over WebSocket: each client keeps a few in flight.
    Echo,
    /// `echo_ack` round trips over WebSocket: the server acks.
    Ack,
    /// One client broadcasts to all, itself included; a few in flight.
    Broadcast,
    /// Opens many connections as fast as the server takes them, then
    /// reads the server's memory with all of them idle.
    Ramp,
    /// `echo` round trips over HTTP long-polling.
    Polling,
    /// `echo` round trips of a 32-byte JSON chat message over WebSocket,
    /// with this project's Rust client: bytes on the wire, server CPU.
    #[value(name = "chat-32")]
    Chat32,
    /// The same with permessage-deflate (threshold 0: every message
    /// compressed both ways).
    #[value(name = "chat-32-deflate")]
    Chat32Deflate,
    /// `echo` round trips of a 1 KiB JSON chat message over WebSocket.
    #[value(name = "chat-1k")]
    Chat1k,
    /// The same with permessage-deflate.
    #[value(name = "chat-1k-deflate")]
    Chat1kDeflate,
    /// Connections that each echo one 1 KiB chat message, then idle: the
    /// server's memory per connection.
    Idle,
    /// The same with permessage-deflate negotiated and used.
    #[value(name = "idle-deflate")]
    IdleDeflate,
    /// The same without context takeover either way: no compression
    /// state kept between messages.
    #[value(name = "idle-deflate-lean")]
    IdleDeflateLean,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 12] = [
        Scenario::Echo,
        Scenario::Ack,
        Scenario::Broadcast,
        Scenario::Ramp,
        Scenario::Polling,
        Scenario::Chat32,
        Scenario::Chat32Deflate,
        Scenario::Chat1k,
        Scenario::Chat1kDeflate,
        Scenario::Idle,
        Scenario::IdleDeflate,
        Scenario::IdleDeflateLean,
    ];

    /// The scenario's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::Ack => "ack",
            Scenario::Broadcast => "broadcast",
            Scenario::Ramp => "ramp",
            Scenario::Polling => "polling",
            Scenario::Chat32 => "chat-32",
            Scenario::Chat32Deflate => "chat-32-deflate",
            Scenario::Chat1k => "chat-1k",
            Scenario::Chat1kDeflate => "chat-1k-deflate",
            Scenario::Idle => "idle",
            Scenario::IdleDeflate => "idle-deflate",
            Scenario::IdleDeflateLean => "idle-deflate-lean",
        }
    }

    /// Whether the server runs with permessage-deflate on for it.
    pub fn deflate(self) -> bool {
        self.server_flag().is_some()
    }

    /// The flag the server is started with for it: permessage-deflate
    /// (threshold 0), or that without context takeover.
    pub fn server_flag(self) -> Option<&'static str> {
        match self {
            Scenario::Chat32Deflate | Scenario::Chat1kDeflate | Scenario::IdleDeflate => {
                Some("--deflate")
            }
            Scenario::IdleDeflateLean => Some("--deflate-lean"),
            _ => None,
        }
    }

    /// Whether its load is this project's Rust client (the compression
    /// scenarios), not the raw WebSocket client.
    pub fn uses_our_client(self) -> bool {
        matches!(
            self,
            Scenario::Chat32
                | Scenario::Chat32Deflate
                | Scenario::Chat1k
                | Scenario::Chat1kDeflate
                | Scenario::Idle
                | Scenario::IdleDeflate
                | Scenario::IdleDeflateLean
        )
    }
}

/// The sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Load before the measured window (connections warm, caches full).
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Clients of the echo and ack scenarios.
    pub echo_clients: usize,
    /// Requests each echo/ack client keeps in flight.
    pub in_flight: usize,
    /// Clients receiving each broadcast (the sender is one of them).
    pub broadcast_clients: usize,
    /// Broadcasts in flight (sent, not yet received by every client).
    pub broadcast_window: usize,
    /// Connections the ramp opens.
    pub ramp_connections: usize,
    /// Handshakes the ramp keeps in flight at once.
    pub ramp_concurrency: usize,
    /// Clients of the long-polling scenario (one request in flight each).
    pub polling_clients: usize,
    /// Clients of the chat (compression) scenarios.
    pub chat_clients: usize,
    /// Connections the idle scenarios open.
    pub idle_connections: usize,
}

impl Settings {
    /// The sizes: 100 clients × 4 in flight, broadcasts to 1,000
    /// with 8 in flight, a ramp to 10,000 connections.
    pub fn full() -> Settings {
        Settings {
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(5),
            echo_clients: 100,
            in_flight: 4,
            broadcast_clients: 1000,
            broadcast_window: 8,
            ramp_connections: 10_000,
            ramp_concurrency: 100,
            polling_clients: 50,
            chat_clients: 50,
            idle_connections: 1000,
        }
    }

    /// The same sizes, shorter windows: a first look.
    pub fn quick() -> Settings {
        Settings {
            warmup: Duration::from_millis(500),
            measure: Duration::from_secs(2),
            ..Settings::full()
        }
    }

    /// Tiny sizes: proves the harness works against every server (a test
    /// in the test command), measures nothing worth reading.
    pub fn smoke() -> Settings {
        Settings {
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
            echo_clients: 4,
            in_flight: 2,
            broadcast_clients: 10,
            broadcast_window: 2,
            ramp_connections: 50,
            ramp_concurrency: 10,
            polling_clients: 3,
            chat_clients: 3,
            idle_connections: 10,
        }
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Latency {
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
}

/// What one scenario measured of one server.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// Round trips, deliveries or connections in the measured window.
    pub count: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// The server's CPU time in the window.
    pub cpu: Duration,
    /// The part of `cpu` spent in the kernel.
    pub kernel: Duration,
    /// Latency of each round trip or delivery, when it has one.
    pub latency: Option<Latency>,
    /// Resident memory per connection (ramp), in bytes.
    pub memory_per_connection: Option<f64>,
    /// Bytes on the wire per round trip, both ways (chat scenarios).
    pub wire_bytes_per_item: Option<f64>,
}

impl Outcome {
    /// Round trips (deliveries, connections) per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }

    /// The server's CPU time per round trip (delivery, connection), in
    /// microseconds.
    pub fn cpu_per_item_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.count.max(1) as f64
    }

    /// The share of the server's CPU time spent in the kernel (sockets,
    /// polling), from 0 to 1.
    pub fn kernel_share(&self) -> f64 {
        self.kernel.as_secs_f64() / self.cpu.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Runs `scenario` against the server at `addr`, reading `probe` (the
/// server's process) at the edges of the measured window.
pub async fn run(
    scenario: Scenario,
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
) -> Result<Outcome, BenchError> {
    match scenario {
        Scenario::Echo => round_trips(addr, probe, settings, RoundTrip::Echo).await,
        Scenario::Ack => round_trips(addr, probe, settings, RoundTrip::Ack).await,
        Scenario::Broadcast => broadcast(addr, probe, settings).await,
        Scenario::Ramp => ramp(addr, probe, settings).await,
        Scenario::Polling => crate::polling::run(addr, probe, settings).await,
        Scenario::Chat32 => compression::chat(addr, probe, settings, 32, false).await,
        Scenario::Chat32Deflate => compression::chat(addr, probe, settings, 32, true).await,
        Scenario::Chat1k => compression::chat(addr, probe, settings, 1024, false).await,
        Scenario::Chat1kDeflate => compression::chat(addr, probe, settings, 1024, true).await,
        Scenario::Idle => compression::idle(addr, probe, settings, false).await,
        Scenario::IdleDeflate | Scenario::IdleDeflateLean => {
            compression::idle(addr, probe, settings, true).await
        }
    }
}

/// Where a run is: clients send during warm-up and measure, and only the
/// measured window is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measure,
    Stop,
}

/// What the clients of a run share (one thread: `Cell`s, no locks).
pub(crate) struct Stats {
    phase: Cell<Phase>,
    count: Cell<u64>,
    histogram: RefCell<Histogram<u64>>,
}

impl Stats {
    pub(crate) fn new() -> Rc<Stats> {
        Rc::new(Stats {
            phase: Cell::new(Phase::Warmup),
            count: Cell::new(0),
            histogram: RefCell::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
        })
    }

    /// Counts one round trip or delivery that took `latency`, if in the
    /// measured window.
    pub(crate) fn record(&self, latency: Duration) {
        if self.phase.get() == Phase::Measure {
            self.count.set(self.count.get() + 1);
            let micros = (latency.as_micros() as u64).clamp(1, 60_000_000);
            self.histogram.borrow_mut().saturating_record(micros);
        }
    }

    /// Whether clients should go on sending.
    pub(crate) fn sending(&self) -> bool {
        self.phase.get() != Phase::Stop
    }

    /// Warm-up, then the measured window; returns what it measured. The
    /// clients stop sending when it returns.
    pub(crate) async fn window(
        &self,
        probe: Probe,
        settings: &Settings,
    ) -> Result<Outcome, BenchError> {
        tokio::time::sleep(settings.warmup).await;
        let before = probe.sample()?;
        let started = Instant::now();
        self.phase.set(Phase::Measure);
        tokio::time::sleep(settings.measure).await;
        self.phase.set(Phase::Stop);
        let elapsed = started.elapsed();
        let after = probe.sample()?;
        let histogram = self.histogram.borrow();
        Ok(Outcome {
            count: self.count.get(),
            elapsed,
            cpu: after.cpu.saturating_sub(before.cpu),
            kernel: after.kernel.saturating_sub(before.kernel),
            latency: (!histogram.is_empty()).then(|| Latency {
                p50_us: histogram.value_at_quantile(0.5),
                p99_us: histogram.value_at_quantile(0.99),
            }),
            memory_per_connection: None,
            wire_bytes_per_item: None,
        })
    }
}

/// Waits for every client task; the first error fails the run.
pub(crate) async fn join_all(
    tasks: Vec<JoinHandle<Result<(), BenchError>>>,
) -> Result<(), BenchError> {
    for task in tasks {
        task.await
            .map_err(|error| BenchError::Protocol(format!("a client task failed: {error}")))??;
    }
    Ok(())
}

/// Connects `count` clients, `concurrency` handshakes at a time.
async fn connect_many(
    addr: SocketAddr,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Ws>, BenchError> {
    let gate = Rc::new(Semaphore::new(concurrency));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let gate = gate.clone();
            tokio::task::spawn_local(async move {
                let _permit = gate.acquire().await;
                client::connect(addr).await
            })
        })
        .collect();
    let mut connections = Vec::with_capacity(count);
    for task in tasks {
        let ws = task
            .await
            .map_err(|error| BenchError::Protocol(format!("a connect task failed: {error}")))??;
        connections.push(ws);
    }
    Ok(connections)
}

#[derive(Debug, Clone, Copy)]
enum RoundTrip {
    Echo,
    Ack,
}

async fn round_trips(
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
    kind: RoundTrip,
) -> Result<Outcome, BenchError> {
    let connections = connect_many(addr, settings.echo_clients, settings.echo_clients).await?;
    let stats = Stats::new();
    let tasks = connections
        .into_iter()
        .enumerate()
        .map(|(index, ws)| {
            let stats = stats.clone();
            let in_flight = settings.in_flight;
            tokio::task::spawn_local(round_trip_client(ws, index, kind, in_flight, stats))
        })
        .collect();
    let outcome = stats.window(probe, settings).await;
    join_all(tasks).await?;
    outcome
}

/// One echo or ack client: keeps `in_flight` requests out, checks each
/// reply is its own request's argument, byte for byte.
async fn round_trip_client(
    mut ws: Ws,
    index: usize,
    kind: RoundTrip,
    in_flight: usize,
    stats: Rc<Stats>,
) -> Result<(), BenchError> {
    let mut pending: Vec<(u64, Instant)> = Vec::with_capacity(in_flight);
    let mut next_seq = 0u64;
    let request = |seq: u64| {
        let argument = client::argument(index, seq);
        match kind {
            RoundTrip::Echo => client::event("echo", &argument),
            RoundTrip::Ack => client::event_with_ack(seq, "echo_ack", &argument),
        }
    };
    for _ in 0..in_flight {
        pending.push((next_seq, Instant::now()));
        client::send(&mut ws, request(next_seq)).await?;
        next_seq += 1;
    }
    while !pending.is_empty() {
        let text = client::next_text(&mut ws).await?;
        if client::answer_ping(&mut ws, &text).await? {
            continue;
        }
        let reply = match kind {
            RoundTrip::Echo => client::parse_event(&text, "echo").map(|arg| (None, arg)),
            RoundTrip::Ack => client::parse_ack(&text).map(|(id, arg)| (Some(id), arg)),
        };
        let seq = reply
            .and_then(|(id, argument)| {
                let (client_index, seq) = client::parse_argument(argument)?;
                let exact = argument == client::argument(client_index, seq);
                (client_index == index && exact && id.is_none_or(|id| id == seq)).then_some(seq)
            })
            .ok_or_else(|| BenchError::Protocol(format!("unexpected reply {text:?}")))?;
        let position = pending
            .iter()
            .position(|&(p, _)| p == seq)
            .ok_or_else(|| BenchError::Protocol(format!("reply to nothing in flight: {text:?}")))?;
        let (_, sent_at) = pending.swap_remove(position);
        stats.record(sent_at.elapsed());
        if stats.sending() {
            pending.push((next_seq, Instant::now()));
            client::send(&mut ws, request(next_seq)).await?;
            next_seq += 1;
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// What the broadcast clients share: when each broadcast was sent, how
/// many clients got each one still incomplete, and the total once the
/// sender stopped.
struct Fanout {
    clients: usize,
    sent_at: RefCell<Vec<Instant>>,
    /// Receipts per broadcast, from the oldest incomplete one.
    receipts: RefCell<VecDeque<usize>>,
    /// Broadcasts every client has received (all of those before the
    /// front of `receipts`).
    completed: Cell<u64>,
    progress: Notify,
    /// How many broadcasts were sent in all, once the sender stopped.
    total: Cell<Option<u64>>,
}

impl Fanout {
    fn receipt(&self, seq: u64) -> Result<(), BenchError> {
        let index = seq
            .checked_sub(self.completed.get())
            .ok_or_else(|| BenchError::Protocol(format!("broadcast {seq} received twice")))?
            as usize;
        let mut receipts = self.receipts.borrow_mut();
        if receipts.len() <= index {
            receipts.resize(index + 1, 0);
        }
        receipts[index] += 1;
        let mut advanced = false;
        while receipts.front() == Some(&self.clients) {
            receipts.pop_front();
            self.completed.set(self.completed.get() + 1);
            advanced = true;
        }
        if advanced {
            self.progress.notify_waiters();
        }
        Ok(())
    }
}

async fn broadcast(
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
) -> Result<Outcome, BenchError> {
    let concurrency = settings.ramp_concurrency;
    let mut connections = connect_many(addr, settings.broadcast_clients, concurrency)
        .await?
        .into_iter();
    let stats = Stats::new();
    let fanout = Rc::new(Fanout {
        clients: settings.broadcast_clients,
        sent_at: RefCell::new(Vec::new()),
        receipts: RefCell::new(VecDeque::new()),
        completed: Cell::new(0),
        progress: Notify::new(),
        total: Cell::new(None),
    });
    let sender_ws = connections
        .next()
        .ok_or_else(|| BenchError::Protocol("a broadcast needs a client".into()))?;
    let (sink, stream) = sender_ws.split();
    let sink = Rc::new(tokio::sync::Mutex::new(sink));
    let mut tasks = vec![tokio::task::spawn_local(broadcaster(
        sink.clone(),
        fanout.clone(),
        stats.clone(),
        settings.broadcast_window as u64,
    ))];
    tasks.push(tokio::task::spawn_local(broadcast_receiver(
        Receiver::Sender(sink, stream),
        fanout.clone(),
        stats.clone(),
    )));
    for ws in connections {
        tasks.push(tokio::task::spawn_local(broadcast_receiver(
            Receiver::Plain(Box::new(ws)),
            fanout.clone(),
            stats.clone(),
        )));
    }
    let outcome = stats.window(probe, settings).await;
    join_all(tasks).await?;
    outcome
}

type Sink = futures_util::stream::SplitSink<Ws, Message>;
type Stream = futures_util::stream::SplitStream<Ws>;

/// The sending client: keeps `window` broadcasts not yet received by
/// everyone, then, told to stop, sends the last one.
async fn broadcaster(
    sink: Rc<tokio::sync::Mutex<Sink>>,
    fanout: Rc<Fanout>,
    stats: Rc<Stats>,
    window: u64,
) -> Result<(), BenchError> {
    let mut seq = 0u64;
    loop {
        let progress = fanout.progress.notified();
        if seq >= fanout.completed.get() + window {
            tokio::time::timeout(client::STEP_TIMEOUT, progress)
                .await
                .map_err(|_| BenchError::Protocol("broadcasts stopped arriving".into()))?;
            continue;
        }
        let last = !stats.sending();
        if last {
            fanout.total.set(Some(seq + 1));
        }
        fanout.sent_at.borrow_mut().push(Instant::now());
        let text = client::event("broadcast", &client::argument(0, seq));
        sink.lock().await.send(Message::text(text)).await?;
        if last {
            return Ok(());
        }
        seq += 1;
    }
}

enum Receiver {
    /// The sending client's reading half.
    Sender(Rc<tokio::sync::Mutex<Sink>>, Stream),
    /// Any other client.
    Plain(Box<Ws>),
}

impl Receiver {
    async fn next_text(&mut self) -> Result<String, BenchError> {
        match self {
            Receiver::Plain(ws) => client::next_text(ws).await,
            Receiver::Sender(_, stream) => client::next_text(stream).await,
        }
    }

    async fn answer_ping(&mut self, text: &str) -> Result<bool, BenchError> {
        match self {
            Receiver::Plain(ws) => client::answer_ping(ws, text).await,
            Receiver::Sender(sink, _) if text == "2" => {
                sink.lock().await.send(Message::text("3")).await?;
                Ok(true)
            }
            Receiver::Sender(..) => Ok(false),
        }
    }
}

/// A client receiving broadcasts until it has them all.
async fn broadcast_receiver(
    mut ws: Receiver,
    fanout: Rc<Fanout>,
    stats: Rc<Stats>,
) -> Result<(), BenchError> {
    let mut received = 0u64;
    while fanout.total.get() != Some(received) {
        let text = ws.next_text().await?;
        if ws.answer_ping(&text).await? {
            continue;
        }
        let seq = client::parse_event(&text, "broadcast")
            .and_then(|argument| {
                let (client_index, seq) = client::parse_argument(argument)?;
                (argument == client::argument(client_index, seq)).then_some(seq)
            })
            .ok_or_else(|| BenchError::Protocol(format!("unexpected broadcast {text:?}")))?;
        let sent_at = fanout
            .sent_at
            .borrow()
            .get(seq as usize)
            .copied()
            .ok_or_else(|| {
                BenchError::Protocol(format!("broadcast {seq} arrived before it was sent"))
            })?;
        stats.record(sent_at.elapsed());
        fanout.receipt(seq)?;
        received += 1;
    }
    Ok(())
}

async fn ramp(addr: SocketAddr, probe: Probe, settings: &Settings) -> Result<Outcome, BenchError> {
    // One connection first, so what the first connection sets up once
    // (the namespace, buffers, lazy statics) is not counted per connection.
    let first = client::connect(addr).await?;
    let holders = vec![tokio::task::spawn_local(hold(first))];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = probe.sample()?;
    let started = Instant::now();
    let connections =
        connect_many(addr, settings.ramp_connections, settings.ramp_concurrency).await?;
    let elapsed = started.elapsed();
    let connected = probe.sample()?;
    let holders: Vec<_> = holders
        .into_iter()
        .chain(
            connections
                .into_iter()
                .map(|ws| tokio::task::spawn_local(hold(ws))),
        )
        .collect();
    // Idle: what stays resident once the handshakes are done.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle: Sample = probe.sample()?;
    for holder in &holders {
        if holder.is_finished() {
            return Err(BenchError::Protocol("an idle connection was closed".into()));
        }
        holder.abort();
    }
    let count = settings.ramp_connections as u64;
    Ok(Outcome {
        count,
        elapsed,
        cpu: connected.cpu.saturating_sub(before.cpu),
        kernel: connected.kernel.saturating_sub(before.kernel),
        latency: None,
        memory_per_connection: probe
            .is_real()
            .then(|| idle.rss.saturating_sub(before.rss) as f64 / count as f64),
        wire_bytes_per_item: None,
    })
}

/// Keeps an idle connection open: answers pings, nothing else.
async fn hold(mut ws: Ws) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            if text.as_str() == "2" && ws.send(Message::text("3")).await.is_err() {
                return;
            }
        }
    }
}
