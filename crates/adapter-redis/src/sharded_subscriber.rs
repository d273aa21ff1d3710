//! The sharded format's subscriber: one RESP3 connection per server whose
//! shard-channel subscriptions (`SSUBSCRIBE`) follow the namespaces and,
//! in the dynamic modes, the rooms that exist on this server.
//!
//! redis-rs offers `SSUBSCRIBE` only on cluster connections, so this sends
//! it as a plain command on a multiplexed RESP3 connection: each command
//! names one channel and is confirmed by one push, which the connection
//! takes as the command's reply; messages (`smessage` pushes) go to the
//! connection's push sender, which routes them to their adapter at once.
//!
//! Adapters record each change ([`ShardSubscriptions::change`]) and wake
//! the subscriber, which applies the changes in order, in one pipeline per
//! wake-up. On (re)connection it subscribes every adapter's current
//! channels instead, and forgets the queued changes: the adapters' state
//! is the truth, the queue only the way there.

use std::sync::{Arc, Mutex, Weak};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use socketio::runtime::DynRuntime;

use crate::broker::{route, Backoff, Broker};
use crate::lock;

/// A waiter for the changes asked for up to some point.
type Waiter = (u64, oneshot::Sender<Result<(), String>>);

/// The subscription changes between the adapters and the subscriber.
#[derive(Default)]
pub(crate) struct ShardSubscriptions {
    /// A live connection has every adapter's channels (changes are
    /// queued only then).
    connected: bool,
    /// `(channel, subscribe)`, in the order they were asked for.
    pending: Vec<(String, bool)>,
    /// How many changes were asked for, and how many are in effect.
    requested: u64,
    completed: u64,
    waiters: Vec<Waiter>,
    /// Wakes the subscriber (capacity 1: wake-ups coalesce).
    wake: Option<mpsc::Sender<()>>,
}

impl ShardSubscriptions {
    /// A new subscriber's wake-up channel.
    pub(crate) fn start(&mut self) -> mpsc::Receiver<()> {
        let (wake, woken) = mpsc::channel(1);
        self.wake = Some(wake);
        woken
    }

    /// Queues a change for the live connection.
    pub(crate) fn change(&mut self, channel: String, subscribe: bool) {
        if !self.connected {
            return;
        }
        self.pending.push((channel, subscribe));
        self.requested += 1;
        if let Some(wake) = &mut self.wake {
            // Full: a wake-up is already pending, and takes this too.
            let _ = wake.try_send(());
        }
    }

    /// A future that resolves once the changes asked for so far are in
    /// effect; `None` when there is no live connection.
    pub(crate) fn settled(&mut self) -> Option<oneshot::Receiver<Result<(), String>>> {
        if !self.connected {
            return None;
        }
        let (done, settled) = oneshot::channel();
        if self.completed >= self.requested {
            let _ = done.send(Ok(()));
        } else {
            self.waiters.push((self.requested, done));
        }
        Some(settled)
    }

    /// The changes up to `generation` are in effect.
    fn completed(&mut self, generation: u64) {
        self.completed = self.completed.max(generation);
        let completed = self.completed;
        for (_, done) in self
            .waiters
            .extract_if(.., |(wanted, _)| *wanted <= completed)
        {
            let _ = done.send(Ok(()));
        }
    }

    /// The connection is gone (or the subscriber stopped): nothing queued
    /// will happen.
    pub(crate) fn disconnected(&mut self, error: &str) {
        self.connected = false;
        self.pending.clear();
        self.completed = self.requested;
        for (_, done) in self.waiters.drain(..) {
            let _ = done.send(Err(error.to_owned()));
        }
    }
}

/// Runs until the broker is gone or `stopped`: connects, subscribes every
/// adapter's channels, applies changes as they come, and after a failure
/// does it all again after a backoff.
pub(crate) async fn run(
    broker: Weak<Broker>,
    runtime: Arc<dyn DynRuntime>,
    mut stopped: oneshot::Receiver<()>,
    mut wake: mpsc::Receiver<()>,
) {
    let mut backoff = Backoff::default();
    loop {
        if !backoff.wait(&runtime, &mut stopped).await {
            return;
        }
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let (lost_tx, mut lost) = oneshot::channel();
        let connect = Box::pin(connect(&strong, broker.clone(), lost_tx));
        let mut connection = match select(&mut stopped, connect).await {
            Either::Left(_) => return,
            Either::Right((Ok(connection), _)) => connection,
            Either::Right((Err(error), _)) => {
                fail(&strong, &format!("redis subscriber: {error}"));
                backoff.failed(&strong.config);
                continue;
            }
        };
        // Every adapter's channels as they are now; changes from here on
        // are queued, and applied after these (repeats are harmless).
        let generation = {
            let mut shard = lock(&strong.shard);
            shard.connected = true;
            shard.pending.clear();
            // The full subscription counts as a change: nobody is told
            // "settled" before it is done.
            shard.requested += 1;
            shard.requested
        };
        let everything: Vec<(String, bool)> = strong
            .adapters()
            .iter()
            .flat_map(|adapter| adapter.sharded_channels())
            .map(|channel| (channel, true))
            .collect();
        if let Err(error) = apply(&mut connection, &everything).await {
            fail(&strong, &format!("redis subscriber: {error}"));
            backoff.failed(&strong.config);
            continue;
        }
        lock(&strong.shard).completed(generation);
        strong.set_connected(true, None);
        if backoff.connected() {
            tracing::info!("redis adapter: subscriber reconnected");
        }
        drop(strong);
        loop {
            let woken = match select(&mut stopped, select(&mut lost, wake.next())).await {
                Either::Left(_) => return,
                Either::Right((Either::Left(_), _)) => None,
                Either::Right((Either::Right((woken, _)), _)) => woken,
            };
            let Some(broker) = broker.upgrade() else {
                return;
            };
            if woken.is_none() {
                fail(&broker, "redis subscriber: connection lost");
                backoff.failed(&broker.config);
                break;
            }
            let (changes, generation) = {
                let mut shard = lock(&broker.shard);
                (std::mem::take(&mut shard.pending), shard.requested)
            };
            if let Err(error) = apply(&mut connection, &changes).await {
                fail(&broker, &format!("redis subscriber: {error}"));
                backoff.failed(&broker.config);
                break;
            }
            lock(&broker.shard).completed(generation);
        }
    }
}

/// A RESP3 connection whose pushes are routed: `smessage`s to their
/// adapter, the end of the connection to `lost`.
async fn connect(
    broker: &Broker,
    routes_to: Weak<Broker>,
    lost: oneshot::Sender<()>,
) -> redis::RedisResult<MultiplexedConnection> {
    let info = broker.client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let lost = Mutex::new(Some(lost));
    let push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
        match push.kind {
            PushKind::SMessage => {
                if let (Some(broker), [Value::BulkString(channel), Value::BulkString(payload)]) =
                    (routes_to.upgrade(), push.data.as_slice())
                {
                    if let Ok(channel) = std::str::from_utf8(channel) {
                        route(&broker, channel, payload);
                    }
                }
            }
            PushKind::Disconnection => {
                if let Some(lost) = lock(&lost).take() {
                    let _ = lost.send(());
                }
            }
            _ => {}
        }
        Ok(())
    };
    let config = broker.connection_config().set_push_sender(push);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// `SSUBSCRIBE` / `SUNSUBSCRIBE`, one channel per command (one
/// confirmation each), in one pipeline.
async fn apply(
    connection: &mut MultiplexedConnection,
    changes: &[(String, bool)],
) -> redis::RedisResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut pipeline = redis::pipe();
    for (channel, subscribe) in changes {
        let command = if *subscribe {
            "SSUBSCRIBE"
        } else {
            "SUNSUBSCRIBE"
        };
        pipeline.cmd(command).arg(channel);
    }
    pipeline.query_async::<()>(connection).await
}

/// Records a failure: status, log, and the waiters told.
fn fail(broker: &Broker, error: &str) {
    tracing::warn!(error, "redis adapter: sharded subscriber");
    lock(&broker.shard).disconnected(error);
    broker.set_connected(false, Some(error.to_owned()));
}
