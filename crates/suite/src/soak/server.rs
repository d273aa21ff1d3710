//! The soak's server, written as a user would: connection state recovery
//! on, a short heartbeat, a room per group of clients, and a ticker task.
//!
//! - A client's auth is `{"room": r}`: it joins `room-r`, then gets
//!   `joined`.
//! - `say` (any arguments, with an ack) is relayed as `said` with the same
//!   arguments to the sender's room, the sender excluded, then acked.
//! - `start` (acked) starts the ticker: `tick` `[n, unix µs]` to everyone,
//!   n from 1, every [`ServerSettings::tick_every`].
//! - `stop` stops it and acks with the last n sent.

use std::sync::{Arc, Mutex};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use serde_json::Value;
use socketio::{AckSender, NamespaceRef, Payload, Runtime, SocketIo, SocketIoConfig, SocketRef};

use super::{unix_micros, ServerSettings};

/// The soak server, not yet listening.
pub fn app<R: Runtime>(rt: R, settings: ServerSettings) -> SocketIo<R> {
    let mut config = SocketIoConfig::default();
    config.recovery = Some(socketio::RecoveryConfig::default());
    config.engine.protocol.ping_interval = settings.ping_interval;
    config.engine.protocol.ping_timeout = settings.ping_timeout;
    let io = SocketIo::new(rt.clone(), config);

    let (start, started) = oneshot::channel::<()>();
    let start = Arc::new(Mutex::new(Some(start)));
    // `stop` hands the ticker a channel for its answer; unbounded, but the
    // one control client sends one.
    let (stop, stops) = mpsc::unbounded::<oneshot::Sender<u64>>();
    let everyone = io.of("/");
    rt.spawn(Box::pin(ticker(
        rt.clone(),
        everyone,
        settings,
        started,
        stops,
    )));

    io.on_connection("/", move |socket: SocketRef| {
        let start = start.clone();
        let stop = stop.clone();
        async move {
            let auth: Value = serde_json::from_str(socket.auth()).unwrap_or(Value::Null);
            if let Some(room) = auth["room"].as_u64() {
                let room = format!("room-{room}");
                socket.join(room.as_str());
                socket.on(
                    "say",
                    move |socket: SocketRef, payload: Payload, ack: Option<AckSender>| {
                        let room = room.clone();
                        async move {
                            let _ = socket.to(room.as_str()).emit_payload("said", payload).await;
                            if let Some(ack) = ack {
                                let _ = ack.send_payload(Payload::empty()).await;
                            }
                        }
                    },
                );
                let _ = socket.emit("joined", &room_number(&auth)).await;
            }
            socket.on("start", move |ack: Option<AckSender>| {
                let start = start.clone();
                async move {
                    let first = start.lock().unwrap().take();
                    if let Some(start) = first {
                        let _ = start.send(());
                    }
                    if let Some(ack) = ack {
                        let _ = ack.send_payload(Payload::empty()).await;
                    }
                }
            });
            socket.on("stop", move |ack: Option<AckSender>| {
                let stop = stop.clone();
                async move {
                    let (reply, last) = oneshot::channel();
                    let _ = stop.unbounded_send(reply);
                    if let (Some(ack), Ok(last)) = (ack, last.await) {
                        let _ = ack.send(&last).await;
                    }
                }
            });
        }
    });
    io
}

fn room_number(auth: &Value) -> u64 {
    auth["room"].as_u64().unwrap_or(0)
}

/// Broadcasts `tick` from `start` until `stop`, on a fixed schedule (a
/// late tick does not push the later ones back).
async fn ticker<R: Runtime>(
    rt: R,
    everyone: NamespaceRef,
    settings: ServerSettings,
    started: oneshot::Receiver<()>,
    mut stops: mpsc::UnboundedReceiver<oneshot::Sender<u64>>,
) {
    if started.await.is_err() {
        return;
    }
    let mut sent = 0u64;
    let mut next = std::time::Instant::now() + settings.tick_every;
    loop {
        match select(rt.sleep_until(next), stops.next()).await {
            Either::Left(_) => {
                sent += 1;
                let _ = everyone
                    .broadcast()
                    .emit("tick", &(sent, unix_micros()))
                    .await;
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
