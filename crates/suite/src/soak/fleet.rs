//! The soak's clients: our Rust client, one per connection, all in this
//! process, each checking what it receives as it arrives.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::json;
use socketio::client::{ClientOptions, ClientSocket, ManagerEvent, Transports};
use socketio::{Data, Payload};
use std::pin::pin;

use super::{unix_micros, Plan};

/// How long any one step of a client (a connection, an ack) may take
/// before it counts as failed.
pub const STEP: Duration = Duration::from_secs(30);

/// The transports of client `index`: WebSocket, long-polling, and polling
/// upgraded to WebSocket, in turn.
pub fn transports_of(index: usize) -> (&'static str, Transports) {
    match index % 3 {
        0 => ("websocket", Transports::WEBSOCKET),
        1 => ("polling", Transports::POLLING),
        _ => ("upgrade", Transports::ALL),
    }
}

/// Everything the clients count, shared by all of them.
#[derive(Default)]
pub struct Counters {
    /// Set before the run disconnects its clients: later disconnects are
    /// expected.
    pub closing: AtomicBool,
    /// Disconnects of a connected client before `closing`.
    pub disconnects: AtomicU64,
    /// Connections closed (Manager `close`) before `closing`.
    pub closes: AtomicU64,
    /// Reconnection attempts.
    pub reconnect_attempts: AtomicU64,
    /// Failed connection attempts.
    pub connect_errors: AtomicU64,
    /// Connections (first ones and reconnections).
    pub connects: AtomicU64,
    /// Connections that restored their session (recovery).
    pub recovered: AtomicU64,
    /// Ticks received.
    pub ticks: AtomicU64,
    /// A tick whose number was not the last one plus one.
    pub tick_faults: AtomicU64,
    /// The ticks skipped, a record per gap (the first 100,000).
    pub gaps: Mutex<Vec<Gap>>,
    /// Relayed says received.
    pub said: AtomicU64,
    /// A relayed say out of sequence for its sender, or from a stranger.
    pub said_faults: AtomicU64,
    /// Says emitted.
    pub says: AtomicU64,
    /// Says whose ack failed (timeout or disconnect).
    pub ack_failures: AtomicU64,
    /// The first few faults seen (out of sequence, failed acks).
    pub reasons: Mutex<Vec<String>>,
    /// The first few unexpected disconnects, closes and connect errors.
    pub departures: Mutex<Vec<String>>,
}

/// Ticks a client never got: those after `after` and before `got`.
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    /// The client.
    pub client: usize,
    /// The last tick it had.
    pub after: u64,
    /// The tick it got next.
    pub got: u64,
    /// When it got it (unix µs).
    pub at: u64,
}

impl Counters {
    fn note(&self, reason: String) {
        push_bounded(&self.reasons, reason);
    }

    fn note_departure(&self, reason: String) {
        push_bounded(&self.departures, reason);
    }
}

fn push_bounded(list: &Mutex<Vec<String>>, item: String) {
    let mut list = list.lock().unwrap();
    if list.len() < 20 {
        list.push(item);
    }
}

/// Latencies of one report window, in microseconds.
pub struct Window {
    /// From the server's clock when it sent a tick to a client receiving it.
    pub tick: Histogram<u64>,
    /// From emitting a `say` to its ack.
    pub ack: Histogram<u64>,
    /// Relayed says received.
    pub said: u64,
}

impl Window {
    fn new() -> Window {
        let histogram = || Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds");
        Window {
            tick: histogram(),
            ack: histogram(),
            said: 0,
        }
    }
}

/// Latencies per window of the load, from [`Recorder::start`].
pub struct Recorder {
    window: Duration,
    started: OnceLock<Instant>,
    windows: Mutex<Vec<Window>>,
}

impl Recorder {
    fn new(window: Duration) -> Recorder {
        Recorder {
            window,
            started: OnceLock::new(),
            windows: Mutex::new(Vec::new()),
        }
    }

    /// Starts the first window now; nothing is recorded before.
    pub fn start(&self) {
        let _ = self.started.set(Instant::now());
    }

    fn record(&self, pick: fn(&mut Window) -> &mut Histogram<u64>, micros: u64) {
        self.in_window(|window| {
            let _ = pick(window).record(micros.max(1));
        });
    }

    fn in_window(&self, change: impl FnOnce(&mut Window)) {
        let Some(started) = self.started.get() else {
            return;
        };
        let index = (started.elapsed().as_micros() / self.window.as_micros().max(1)) as usize;
        let mut windows = self.windows.lock().unwrap();
        while windows.len() <= index {
            windows.push(Window::new());
        }
        change(&mut windows[index]);
    }

    /// The windows so far.
    pub fn take(&self) -> Vec<Window> {
        std::mem::take(&mut self.windows.lock().unwrap())
    }
}

/// What one client has seen.
struct Seen {
    /// The last tick number.
    tick: AtomicU64,
    /// The last say number from each member of the room (by position).
    peers: Mutex<Vec<u64>>,
    /// Says this client emitted.
    said: AtomicU64,
    joined: Mutex<Option<oneshot::Sender<()>>>,
}

/// One client of the fleet.
struct Member {
    index: usize,
    socket: ClientSocket,
    seen: Arc<Seen>,
}

/// The soak's clients, connected.
pub struct Fleet {
    plan: Plan,
    members: Vec<Member>,
    /// What they count.
    pub counters: Arc<Counters>,
    /// Their latencies.
    pub recorder: Arc<Recorder>,
    /// Turns true to stop the says.
    stop: tokio::sync::watch::Sender<bool>,
    talkers: Vec<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    /// Connects `plan.connections` clients to `url` (a few at a time) and
    /// waits until each has joined its room. Fails with the first client
    /// that does not within [`STEP`].
    pub async fn connect(url: &str, plan: &Plan) -> Result<Fleet, String> {
        Fleet::connect_spread(&[url.to_owned()], plan).await
    }

    /// [`Fleet::connect`] to several servers: room r's clients to
    /// `urls[r % urls.len()]`, so a room's traffic stays on one server.
    pub async fn connect_spread(urls: &[String], plan: &Plan) -> Result<Fleet, String> {
        let counters = Arc::new(Counters::default());
        let recorder = Arc::new(Recorder::new(plan.window));
        let members = futures_util::stream::iter(0..plan.connections)
            .map(|index| {
                let url = &urls[plan.room_of(index) % urls.len()];
                join(url, plan, index, counters.clone(), recorder.clone())
            })
            .buffered(plan.connecting_at_once)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fleet {
            plan: plan.clone(),
            members,
            counters,
            recorder,
            stop: tokio::sync::watch::Sender::new(false),
            talkers: Vec::new(),
        })
    }

    /// Starts every client's says: one every [`Plan::say_every`], the first
    /// at a random point of the first period, each awaiting its ack.
    pub fn start_talking(&mut self) {
        self.recorder.start();
        for member in &self.members {
            let socket = member.socket.clone();
            let seen = member.seen.clone();
            let mut stop = self.stop.subscribe();
            let counters = self.counters.clone();
            let recorder = self.recorder.clone();
            let every = self.plan.say_every;
            let index = member.index;
            let offset = every.mul_f64(spread(index));
            self.talkers.push(tokio::spawn(async move {
                let mut next = tokio::time::Instant::now() + offset;
                loop {
                    let stopped = stop.wait_for(|stop| *stop);
                    if let Either::Right(_) =
                        select(pin!(tokio::time::sleep_until(next)), pin!(stopped)).await
                    {
                        return;
                    }
                    let seq = seen.said.load(Relaxed) + 1;
                    let payload = Payload::single(&(index, seq)).expect("numbers encode");
                    let sent = Instant::now();
                    let answer = socket.emit_with_ack("say", payload, Some(STEP));
                    seen.said.store(seq, Relaxed);
                    counters.says.fetch_add(1, Relaxed);
                    match answer.await {
                        Ok(_) => recorder.record(|w| &mut w.ack, sent.elapsed().as_micros() as u64),
                        Err(error) => {
                            counters.ack_failures.fetch_add(1, Relaxed);
                            counters.note(format!("client {index}: ack of say {seq}: {error}"));
                        }
                    }
                    next += every;
                }
            }));
        }
    }

    /// Stops the says and waits for the last acks.
    pub async fn stop_talking(&mut self) {
        self.stop.send_replace(true);
        for talker in self.talkers.drain(..) {
            let _ = talker.await;
        }
    }

    /// What is still missing, given the server's last tick: ticks not yet
    /// received and relayed says not yet received, over every client.
    pub fn missing(&self, last_tick: u64) -> (u64, u64) {
        let said: Vec<u64> = self
            .members
            .iter()
            .map(|member| member.seen.said.load(Relaxed))
            .collect();
        let mut ticks = 0;
        let mut says = 0;
        for member in &self.members {
            ticks += last_tick.saturating_sub(member.seen.tick.load(Relaxed));
            let room = self.plan.members(self.plan.room_of(member.index));
            let peers = member.seen.peers.lock().unwrap();
            for (position, peer) in room.enumerate() {
                if peer != member.index {
                    says += said[peer].saturating_sub(peers[position]);
                }
            }
        }
        (ticks, says)
    }

    /// How many ticks and relayed says the clients should have received in
    /// all, given the server's last tick: each tick by everyone, each say
    /// by the sender's room mates.
    pub fn expected(&self, last_tick: u64) -> (u64, u64) {
        let ticks = last_tick * self.members.len() as u64;
        let says = self
            .members
            .iter()
            .map(|member| {
                let mates = self.plan.members(self.plan.room_of(member.index)).len() - 1;
                member.seen.said.load(Relaxed) * mates as u64
            })
            .sum();
        (ticks, says)
    }

    /// Disconnects every client (expected disconnects from here on).
    pub fn close(&self) {
        self.counters.closing.store(true, Relaxed);
        for member in &self.members {
            member.socket.disconnect();
        }
    }
}

/// Where in its period client `index` starts talking: spread evenly.
fn spread(index: usize) -> f64 {
    // The golden ratio's fraction scatters consecutive indices.
    (index as f64 * 0.618_033_988_749_895).fract()
}

/// Connects client `index` and waits until the server put it in its room.
async fn join(
    url: &str,
    plan: &Plan,
    index: usize,
    counters: Arc<Counters>,
    recorder: Arc<Recorder>,
) -> Result<Member, String> {
    let room = plan.room_of(index);
    let members = plan.members(room);
    let (transport, transports) = transports_of(index);
    let options = ClientOptions::default()
        .transports(transports)
        .timeout(STEP)
        .auth(&json!({ "room": room }))
        .map_err(|e| e.to_string())?;
    let socket = socketio::client::io(runtime_tokio::TokioRuntime, url, options)
        .map_err(|e| e.to_string())?;
    let (joined, has_joined) = oneshot::channel();
    let seen = Arc::new(Seen {
        tick: AtomicU64::new(0),
        peers: Mutex::new(vec![0; members.len()]),
        said: AtomicU64::new(0),
        joined: Mutex::new(Some(joined)),
    });
    listen(&socket, index, members, &seen, &counters, &recorder);
    let connecting = async {
        socket.connect().await.map_err(|e| e.to_string())?;
        has_joined.await.map_err(|_| "no joined event".to_owned())
    };
    match tokio::time::timeout(STEP, connecting).await {
        Ok(Ok(())) => Ok(Member {
            index,
            socket,
            seen,
        }),
        Ok(Err(error)) => Err(format!("client {index} ({transport}): {error}")),
        Err(_) => Err(format!(
            "client {index} ({transport}): not in its room within {STEP:?}"
        )),
    }
}

/// The listeners of one client: each checks what arrives against what
/// came before.
fn listen(
    socket: &ClientSocket,
    index: usize,
    members: std::ops::Range<usize>,
    seen: &Arc<Seen>,
    counters: &Arc<Counters>,
    recorder: &Arc<Recorder>,
) {
    let on_joined = seen.clone();
    socket.on("joined", move |_, _: Payload, _| {
        if let Some(joined) = on_joined.joined.lock().unwrap().take() {
            let _ = joined.send(());
        }
        async {}
    });
    let (on_tick, tick_counters, tick_recorder) =
        (seen.clone(), counters.clone(), recorder.clone());
    socket.on("tick", move |_, Data((n, sent)): Data<(u64, u64)>, _| {
        tick_counters.ticks.fetch_add(1, Relaxed);
        tick_recorder.record(|w| &mut w.tick, unix_micros().saturating_sub(sent));
        let last = on_tick.tick.swap(n, Relaxed);
        if n != last + 1 {
            tick_counters.tick_faults.fetch_add(1, Relaxed);
            tick_counters.note(format!("client {index}: tick {n} after {last}"));
        }
        if n <= last {
            // A repeat: the client is still at `last`.
            on_tick.tick.store(last, Relaxed);
        } else if n > last + 1 {
            let mut gaps = tick_counters.gaps.lock().unwrap();
            if gaps.len() < 100_000 {
                gaps.push(Gap {
                    client: index,
                    after: last,
                    got: n,
                    at: unix_micros(),
                });
            }
        }
        async {}
    });
    let (on_said, said_counters, said_recorder) =
        (seen.clone(), counters.clone(), recorder.clone());
    socket.on(
        "said",
        move |_, Data((from, seq)): Data<(usize, u64)>, _| {
            said_counters.said.fetch_add(1, Relaxed);
            said_recorder.in_window(|window| window.said += 1);
            let mut peers = on_said.peers.lock().unwrap();
            let fault = match from.checked_sub(members.start) {
                Some(position) if members.contains(&from) && from != index => {
                    let last = std::mem::replace(&mut peers[position], seq);
                    (seq != last + 1).then(|| format!("say {seq} of {from} after {last}"))
                }
                _ => Some(format!("say {seq} of {from}, not a room mate")),
            };
            if let Some(fault) = fault {
                said_counters.said_faults.fetch_add(1, Relaxed);
                said_counters.note(format!("client {index}: {fault}"));
            }
            async {}
        },
    );
    let connects = counters.clone();
    socket.on_connect(move |socket| {
        connects.connects.fetch_add(1, Relaxed);
        if socket.recovered() {
            connects.recovered.fetch_add(1, Relaxed);
        }
        async {}
    });
    let errors = counters.clone();
    socket.on_connect_error(move |_, error| {
        errors.connect_errors.fetch_add(1, Relaxed);
        errors.note_departure(format!("client {index}: connect error: {error}"));
        async {}
    });
    let disconnects = counters.clone();
    socket.on_disconnect(move |_, reason| {
        if !disconnects.closing.load(Relaxed) {
            disconnects.disconnects.fetch_add(1, Relaxed);
            disconnects.note_departure(format!(
                "client {index}: disconnect: {}",
                reason.as_node_str()
            ));
        }
        async {}
    });
    let events = counters.clone();
    socket.manager().on_event(move |event| match event {
        ManagerEvent::Close(reason) if !events.closing.load(Relaxed) => {
            events.closes.fetch_add(1, Relaxed);
            events.note_departure(format!("client {index}: connection closed: {reason}"));
        }
        ManagerEvent::ReconnectAttempt(_) => {
            events.reconnect_attempts.fetch_add(1, Relaxed);
        }
        _ => {}
    });
}
