//! The RESP3 subscriber: one connection per server (to one Redis, or a
//! cluster connection) whose subscriptions follow the namespaces and, in
//! the sharded format's dynamic modes, the rooms that exist on this
//! server. It serves the sharded format (`SSUBSCRIBE`) everywhere and the
//! classic format (`PSUBSCRIBE` / `SUBSCRIBE`) on a Redis Cluster, where
//! only a RESP3 cluster connection can subscribe; the classic format on
//! one server keeps its RESP2 pub/sub connection (`broker.rs`), which
//! Redis before 6 also has.
//!
//! On one server, redis-rs offers `SSUBSCRIBE` only on cluster
//! connections, so this sends it as a plain command on a multiplexed
//! RESP3 connection: each command names one channel and is confirmed by
//! one push, which the connection takes as the command's reply. On a
//! cluster, redis-rs routes each subscription to the node that owns it
//! and subscribes again by itself after a node fails over. Either way
//! messages (`message`, `pmessage`, `smessage` pushes) go to the
//! connection's push sender, which routes them to their adapter at once.
//!
//! Adapters record each change ([`Subscriptions::change`]) and wake the
//! subscriber, which applies the changes in order, in one batch per
//! wake-up. On (re)connection it subscribes every adapter's current
//! channels instead, and forgets the queued changes: the adapters' state
//! is the truth, the queue only the way there.

use std::sync::{Arc, Mutex, Weak};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use socketio::runtime::DynRuntime;

use crate::broker::{route, Backoff, Broker, Stopped};
use crate::lock;

/// One subscription of the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Channel {
    /// `SUBSCRIBE` (classic: requests and responses).
    Exact(String),
    /// `PSUBSCRIBE` (classic: every broadcast channel of a namespace).
    Pattern(String),
    /// `SSUBSCRIBE` (sharded).
    Shard(String),
}

/// A waiter for the changes asked for up to some point.
type Waiter = (u64, oneshot::Sender<Result<(), String>>);

/// The subscription changes between the adapters and the subscriber.
#[derive(Default)]
pub(crate) struct Subscriptions {
    /// A live connection has every adapter's channels (changes are
    /// queued only then).
    connected: bool,
    /// `(channel, subscribe)`, in the order they were asked for.
    pending: Vec<(Channel, bool)>,
    /// How many changes were asked for, and how many are in effect.
    requested: u64,
    completed: u64,
    waiters: Vec<Waiter>,
    /// Wakes the subscriber (capacity 1: wake-ups coalesce).
    wake: Option<mpsc::Sender<()>>,
}

impl Subscriptions {
    /// A new subscriber's wake-up channel.
    pub(crate) fn start(&mut self) -> mpsc::Receiver<()> {
        let (wake, woken) = mpsc::channel(1);
        self.wake = Some(wake);
        woken
    }

    /// Queues a change for the live connection.
    pub(crate) fn change(&mut self, channel: Channel, subscribe: bool) {
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
    mut stopped: Stopped,
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
        strong.readers_started(&runtime).await;
        // Every adapter's channels as they are now; changes from here on
        // are queued, and applied after these (repeats are harmless).
        let generation = {
            let mut subscriptions = lock(&strong.subscriptions);
            subscriptions.connected = true;
            subscriptions.pending.clear();
            // The full subscription counts as a change: nobody is told
            // "settled" before it is done.
            subscriptions.requested += 1;
            subscriptions.requested
        };
        let everything: Vec<(Channel, bool)> = strong
            .adapters()
            .iter()
            .flat_map(|adapter| adapter.push_channels())
            .map(|channel| (channel, true))
            .collect();
        if let Err(error) = apply(&mut connection, &everything).await {
            fail(&strong, &format!("redis subscriber: {error}"));
            backoff.failed(&strong.config);
            continue;
        }
        lock(&strong.subscriptions).completed(generation);
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
                let mut subscriptions = lock(&broker.subscriptions);
                (
                    std::mem::take(&mut subscriptions.pending),
                    subscriptions.requested,
                )
            };
            if let Err(error) = apply(&mut connection, &changes).await {
                fail(&broker, &format!("redis subscriber: {error}"));
                backoff.failed(&broker.config);
                break;
            }
            lock(&broker.subscriptions).completed(generation);
        }
    }
}

/// The subscriber's connection.
enum Connection {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A RESP3 connection whose pushes are routed: messages to their adapter,
/// the end of the connection (one server) to `lost`. A cluster connection
/// reconnects and subscribes again by itself, so it is never lost.
async fn connect(
    broker: &Broker,
    routes_to: Weak<Broker>,
    lost: oneshot::Sender<()>,
) -> redis::RedisResult<Connection> {
    let cluster = broker.endpoint.is_cluster();
    let lost = Mutex::new(Some(lost));
    let push = move |push: PushInfo| -> Result<(), std::convert::Infallible> {
        let (channel, payload) = match (push.kind, push.data.as_slice()) {
            (
                PushKind::Message | PushKind::SMessage,
                [Value::BulkString(channel), Value::BulkString(payload)],
            )
            | (PushKind::PMessage, [_, Value::BulkString(channel), Value::BulkString(payload)]) => {
                (channel, payload)
            }
            (PushKind::Disconnection, _) if !cluster => {
                if let Some(lost) = lock(&lost).take() {
                    let _ = lost.send(());
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        if let (Some(broker), Ok(channel)) = (routes_to.upgrade(), std::str::from_utf8(channel)) {
            route(&broker, channel, payload);
        }
        Ok(())
    };
    if cluster {
        let client = broker
            .endpoint
            .cluster_builder(Some(Box::new(push)), broker.config.connect_timeout)?;
        return Ok(Connection::Cluster(client.get_async_connection().await?));
    }
    let info = broker
        .endpoint
        .client()
        .await?
        .get_connection_info()
        .clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let config = broker.connection_config().set_push_sender(push);
    let connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(Connection::Node(connection))
}

/// Makes `changes`, in order.
async fn apply(connection: &mut Connection, changes: &[(Channel, bool)]) -> redis::RedisResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    match connection {
        Connection::Node(connection) => {
            // One channel per command (one confirmation each), in one
            // pipeline.
            let mut pipeline = redis::pipe();
            for (channel, subscribe) in changes {
                let (command, name) = match (channel, subscribe) {
                    (Channel::Exact(name), true) => ("SUBSCRIBE", name),
                    (Channel::Exact(name), false) => ("UNSUBSCRIBE", name),
                    (Channel::Pattern(name), true) => ("PSUBSCRIBE", name),
                    (Channel::Pattern(name), false) => ("PUNSUBSCRIBE", name),
                    (Channel::Shard(name), true) => ("SSUBSCRIBE", name),
                    (Channel::Shard(name), false) => ("SUNSUBSCRIBE", name),
                };
                pipeline.cmd(command).arg(name);
            }
            pipeline.query_async::<()>(connection).await
        }
        Connection::Cluster(connection) => {
            for (channel, subscribe) in changes {
                match (channel, subscribe) {
                    (Channel::Exact(name), true) => connection.subscribe(name).await?,
                    (Channel::Exact(name), false) => connection.unsubscribe(name).await?,
                    (Channel::Pattern(name), true) => connection.psubscribe(name).await?,
                    (Channel::Pattern(name), false) => connection.punsubscribe(name).await?,
                    (Channel::Shard(name), true) => connection.ssubscribe(name).await?,
                    (Channel::Shard(name), false) => connection.sunsubscribe(name).await?,
                }
            }
            Ok(())
        }
    }
}

/// Records a failure: status, log, and the waiters told.
fn fail(broker: &Broker, error: &str) {
    tracing::warn!(error, "redis adapter: subscriber");
    lock(&broker.subscriptions).disconnected(error);
    broker.set_connected(false, Some(error.to_owned()));
}
