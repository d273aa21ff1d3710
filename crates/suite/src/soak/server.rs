//! The soak's server, written as a user would: a short heartbeat, a room
//! per group of clients, and a ticker task.
//!
//! - A client's auth is `{"room": r}`: it joins `room-r`, then gets
//!   `joined`.
//! - `say` (any arguments, with an ack) is relayed as `said` with the same
//!   arguments to the sender's room, the sender excluded, then acked.
//! - `start` (acked) starts the ticker: `tick` `[n, unix µs]` to everyone,
//!   n from 1, every [`ServerSettings::tick_every`].
//! - `stop` stops it and acks with the last n sent.
//! - `put` `name, n` (with an ack) records n as received from the client
//!   called name, in order of arrival, then acks; `ledger` `name` acks
//!   with every n recorded for that name (the network soak checks them
//!   against what each client was told).
//!
//! In a cluster every server has the handlers and one [`Ticker`] (of a
//! server no client talks to, in the kill soak) broadcasts to all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde_json::Value;
use socketio::{
    AckSender, Args, Data, NamespaceRef, Payload, Runtime, SocketIo, SocketIoConfig, SocketRef,
};

use super::{unix_micros, ServerSettings};

/// What each client (by name) put, in order of arrival.
type Ledgers = Arc<Mutex<HashMap<String, Vec<u64>>>>;

/// The ticker of one server: started and stopped once.
pub struct Ticker {
    start: Mutex<Option<oneshot::Sender<()>>>,
    /// `stop` hands the ticker a channel for its answer (unbounded; one
    /// control client sends one).
    stop: mpsc::UnboundedSender<oneshot::Sender<u64>>,
    /// When each tick was broadcast (unix µs), tick n at n - 1.
    sent_at: Arc<Mutex<Vec<u64>>>,
}

impl Ticker {
    /// Starts ticking (again: nothing).
    pub fn start(&self) {
        if let Some(start) = self.start.lock().unwrap().take() {
            let _ = start.send(());
        }
    }

    /// Stops ticking; the last tick sent (0: none, or not started).
    pub async fn stop(&self) -> u64 {
        let (reply, last) = oneshot::channel();
        let _ = self.stop.unbounded_send(reply);
        last.await.unwrap_or(0)
    }

    /// When tick `n` was broadcast (unix µs), if it was.
    pub fn sent_at(&self, n: u64) -> Option<u64> {
        let index = usize::try_from(n.checked_sub(1)?).ok()?;
        self.sent_at.lock().unwrap().get(index).copied()
    }
}

/// The soak server with `config` (its heartbeat set from `settings`), not
/// yet listening, and its ticker.
pub fn app<R: Runtime>(
    rt: R,
    settings: ServerSettings,
    mut config: SocketIoConfig,
) -> (SocketIo<R>, Arc<Ticker>) {
    config.engine.protocol.ping_interval = settings.ping_interval;
    config.engine.protocol.ping_timeout = settings.ping_timeout;
    let io = SocketIo::new(rt.clone(), config);

    let (start, started) = oneshot::channel::<()>();
    let (stop, stops) = mpsc::unbounded();
    let ticker = Arc::new(Ticker {
        start: Mutex::new(Some(start)),
        stop,
        sent_at: Arc::default(),
    });
    rt.spawn(Box::pin(ticking(
        rt.clone(),
        io.of("/"),
        settings,
        started,
        stops,
        ticker.sent_at.clone(),
    )));

    let control = ticker.clone();
    let ledgers: Ledgers = Arc::default();
    io.on_connection("/", move |socket: SocketRef| {
        let control = control.clone();
        let ledgers = ledgers.clone();
        async move {
            let recording = ledgers.clone();
            socket.on(
                "put",
                move |Args((name, n)): Args<(String, u64)>, ack: Option<AckSender>| {
                    // Recorded before the handler yields: in arrival order.
                    recording.lock().unwrap().entry(name).or_default().push(n);
                    async move {
                        if let Some(ack) = ack {
                            let _ = ack.send_payload(Payload::empty()).await;
                        }
                    }
                },
            );
            socket.on(
                "ledger",
                move |Data(name): Data<String>, ack: Option<AckSender>| {
                    let ledger = ledgers
                        .lock()
                        .unwrap()
                        .get(&name)
                        .cloned()
                        .unwrap_or_default();
                    async move {
                        if let Some(ack) = ack {
                            let _ = ack.send(&ledger).await;
                        }
                    }
                },
            );
            let auth: Value = serde_json::from_str(socket.auth()).unwrap_or(Value::Null);
            if let Some(room) = auth["room"].as_u64() {
                let name = format!("room-{room}");
                socket.join(name.as_str());
                socket.on(
                    "say",
                    move |socket: SocketRef, payload: Payload, ack: Option<AckSender>| {
                        let name = name.clone();
                        async move {
                            let _ = socket.to(name.as_str()).emit_payload("said", payload).await;
                            if let Some(ack) = ack {
                                let _ = ack.send_payload(Payload::empty()).await;
                            }
                        }
                    },
                );
                let _ = socket.emit("joined", &room).await;
            }
            let starting = control.clone();
            socket.on("start", move |ack: Option<AckSender>| {
                starting.start();
                async move {
                    if let Some(ack) = ack {
                        let _ = ack.send_payload(Payload::empty()).await;
                    }
                }
            });
            socket.on("stop", move |ack: Option<AckSender>| {
                let control = control.clone();
                async move {
                    let last = control.stop().await;
                    if let Some(ack) = ack {
                        let _ = ack.send(&last).await;
                    }
                }
            });
        }
    });
    (io, ticker)
}

/// Broadcasts `tick` from `started` until a stop, on a fixed schedule (a
/// late tick does not push the later ones back).
async fn ticking<R: Runtime>(
    rt: R,
    everyone: NamespaceRef,
    settings: ServerSettings,
    started: oneshot::Receiver<()>,
    mut stops: mpsc::UnboundedReceiver<oneshot::Sender<u64>>,
    sent_at: Arc<Mutex<Vec<u64>>>,
) {
    let mut sent = 0u64;
    match select(started, stops.next()).await {
        Either::Left((Ok(()), _)) => {}
        Either::Right((Some(reply), _)) => {
            let _ = reply.send(sent);
            return;
        }
        _ => return,
    }
    let mut next = std::time::Instant::now() + settings.tick_every;
    loop {
        match select(rt.sleep_until(next), stops.next()).await {
            Either::Left(_) => {
                sent += 1;
                let now = unix_micros();
                sent_at.lock().unwrap().push(now);
                let _ = everyone.broadcast().emit("tick", &(sent, now)).await;
                next += settings.tick_every;
            }
            Either::Right((Some(reply), _)) => {
                let _ = reply.send(sent);
                return;
            }
            Either::Right((None, _)) => return,
        }
    }
}
