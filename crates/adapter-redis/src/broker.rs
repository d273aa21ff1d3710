//! The Redis connections one server shares between its namespaces' adapters:
//! a multiplexed connection for commands (`PUBLISH` / `SPUBLISH`,
//! `PUBSUB`) and a subscriber connection whose messages are routed to the
//! adapter of their namespace. The classic format's subscriber on one
//! server is a pub/sub connection (this file); the sharded format's, and
//! any subscriber on a Redis Cluster, is a RESP3 connection whose
//! subscriptions follow the namespaces and rooms (`push_subscriber.rs`).
//! With Sentinel, each connection asks the Sentinels for the master.
//!
//! Both come back by themselves after Redis goes away: the command
//! connection is re-made on the next command after a failure (that command
//! fails, with [`AdapterError::Unavailable`]), the subscriber reconnects
//! with exponential backoff and subscribes every namespace again. Meanwhile
//! every local operation goes on; what could not reach Redis is reported
//! to its caller and logged, never queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use redis::aio::PubSubSink;
use redis::AsyncConnectionConfig;
use socketio::adapter::AdapterError;
use socketio::runtime::DynRuntime;

use crate::adapter::RedisAdapter;
use crate::push_subscriber::{self, Channel, Subscriptions};
use crate::target::{Commands, Endpoint};
use crate::{lock, stream_reader, streams_wire, Format, RedisAdapterConfig, StreamsConfig};

/// Resolves when the broker's background tasks must end (its sender,
/// kept by the broker while an adapter lives, is dropped); every task
/// holds a clone.
pub(crate) type Stopped = futures_util::future::Shared<futures_channel::oneshot::Receiver<()>>;

/// Whether the subscriber is connected, and the last failure.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Subscribed to every namespace's channels right now.
    pub connected: bool,
    /// The last connection failure, if any since the adapter started.
    pub last_error: Option<String>,
}

pub(crate) struct Broker {
    pub(crate) endpoint: Endpoint,
    pub(crate) config: RedisAdapterConfig,
    /// The wire format.
    pub(crate) format: Format,
    /// The command connection, made on first use and after a failure.
    commands: Mutex<Option<Commands>>,
    /// The live namespaces' adapters.
    adapters: Mutex<Vec<Weak<RedisAdapter>>>,
    /// Classic on one server: subscribes on the live pub/sub connection;
    /// `None` while down.
    sink: Mutex<Option<PubSubSink>>,
    /// The RESP3 subscriber's changes to make (see [`Broker::pushes`]).
    pub(crate) subscriptions: Mutex<Subscriptions>,
    status: Mutex<Status>,
    /// Set while a subscriber runs; dropping it (or the broker) ends it.
    stop: Mutex<Option<futures_channel::oneshot::Sender<()>>>,
    /// Streams: resolve once each stream reader knows where it starts.
    readers_started: Mutex<Vec<futures_channel::oneshot::Receiver<()>>>,
    /// Streams: how far each stream has been read here, and who waits.
    progress: Mutex<HashMap<String, Progress>>,
}

/// How far a stream has been read, as an entry id `(millis, sequence)`,
/// and the waiters for a later one.
#[derive(Default)]
struct Progress {
    read: Option<(u64, u64)>,
    waiters: Vec<((u64, u64), futures_channel::oneshot::Sender<()>)>,
}

/// An entry id as numbers, for ordering.
fn entry_id(id: &str) -> Option<(u64, u64)> {
    let (millis, sequence) = id.split_once('-')?;
    Some((millis.parse().ok()?, sequence.parse().ok()?))
}

impl Broker {
    pub(crate) fn new(endpoint: Endpoint, config: RedisAdapterConfig, format: Format) -> Broker {
        Broker {
            endpoint,
            config,
            format,
            commands: Mutex::new(None),
            adapters: Mutex::new(Vec::new()),
            sink: Mutex::new(None),
            subscriptions: Mutex::default(),
            status: Mutex::new(Status::default()),
            stop: Mutex::new(None),
            readers_started: Mutex::new(Vec::new()),
            progress: Mutex::default(),
        }
    }

    /// Streams: the reader of `stream` has read (or skipped) up to `id`.
    pub(crate) fn stream_read(&self, stream: &str, id: &str) {
        let Some(id) = entry_id(id) else {
            return;
        };
        let mut progress = lock(&self.progress);
        let progress = progress.entry(stream.to_owned()).or_default();
        progress.read = Some(progress.read.map_or(id, |read| read.max(id)));
        for (_, done) in progress.waiters.extract_if(.., |(wanted, _)| *wanted <= id) {
            let _ = done.send(());
        }
    }

    /// Streams: waits until this server has read every entry `stream` had
    /// when this was called, so that an answer sent after it reflects them
    /// (a remote join added before a fetch, say). Gives up after the
    /// requests timeout, or at once when Redis cannot say.
    pub(crate) async fn caught_up(&self, stream: &str, runtime: &Arc<dyn DynRuntime>) {
        let mut last = redis::cmd("XREVRANGE");
        last.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
        let Ok(reply) = self
            .query::<redis::streams::StreamRangeReply>("XREVRANGE", &last)
            .await
        else {
            return;
        };
        let Some(wanted) = reply.ids.first().and_then(|entry| entry_id(&entry.id)) else {
            return;
        };
        let done = {
            let mut progress = lock(&self.progress);
            let progress = progress.entry(stream.to_owned()).or_default();
            if progress.read.is_some_and(|read| read >= wanted) {
                return;
            }
            let (done, is_done) = futures_channel::oneshot::channel();
            progress.waiters.push((wanted, done));
            is_done
        };
        let limit = runtime.sleep_until(runtime.clock().now_std() + self.config.requests_timeout);
        let _ = select(done, limit).await;
    }

    /// The Streams format's settings; `None` for the pub/sub formats.
    pub(crate) fn streams(&self) -> Option<&Arc<StreamsConfig>> {
        match &self.format {
            Format::Streams(streams) => Some(streams),
            _ => None,
        }
    }

    /// Streams: waits (at most twice the connect timeout) until every
    /// stream reader knows the entry it reads after, so that a server
    /// counted on the channels (which are subscribed after this) reads
    /// every entry the others add from then on. At once afterwards.
    pub(crate) async fn readers_started(&self, runtime: &Arc<dyn DynRuntime>) {
        let started = std::mem::take(&mut *lock(&self.readers_started));
        if started.is_empty() {
            return;
        }
        let all = futures_util::future::join_all(started);
        let limit =
            runtime.sleep_until(runtime.clock().now_std() + self.config.connect_timeout * 2);
        if let Either::Right(_) = select(all, limit).await {
            tracing::warn!("redis adapter: stream readers not started in time; subscribing anyway");
        }
    }

    pub(crate) fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Whether the subscriber is the RESP3 one (`push_subscriber.rs`): for
    /// the sharded format, and for either format on a cluster.
    pub(crate) fn pushes(&self) -> bool {
        match &self.format {
            Format::Classic => self.endpoint.is_cluster(),
            Format::Sharded(_) => true,
            Format::Streams(streams) => streams.sharded_pubsub || self.endpoint.is_cluster(),
        }
    }

    pub(crate) fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect_timeout))
            .set_response_timeout(Some(self.config.requests_timeout))
    }

    /// Registers a namespace's adapter; the first one starts the
    /// subscriber on its runtime.
    pub(crate) fn register(self: &Arc<Self>, adapter: &Arc<RedisAdapter>) {
        lock(&self.adapters).push(Arc::downgrade(adapter));
        let mut running = lock(&self.stop);
        if running.is_none() {
            let (stop, stopped) = futures_channel::oneshot::channel();
            let stopped: Stopped = futures_util::FutureExt::shared(stopped);
            *running = Some(stop);
            let broker = Arc::downgrade(self);
            let runtime = adapter.runtime().clone();
            if let Some(streams) = self.streams() {
                let names =
                    streams_wire::streams_to_read(&streams.stream_name, streams.stream_count);
                let mut started = Vec::new();
                for name in names {
                    let (ready, is_ready) = futures_channel::oneshot::channel();
                    started.push(is_ready);
                    let reader = stream_reader::run(
                        broker.clone(),
                        runtime.clone(),
                        name,
                        stopped.clone(),
                        ready,
                    );
                    runtime.spawn(Box::pin(reader));
                }
                *lock(&self.readers_started) = started;
            }
            if self.pushes() {
                let wake = lock(&self.subscriptions).start();
                let task = push_subscriber::run(broker, runtime.clone(), stopped, wake);
                runtime.spawn(Box::pin(task));
            } else {
                runtime.spawn(Box::pin(subscriber(broker, runtime.clone(), stopped)));
            }
        }
    }

    /// Forgets a namespace's adapter (its subscriptions end with it).
    pub(crate) async fn unregister(&self, adapter: &RedisAdapter) {
        lock(&self.adapters).retain(|a| a.strong_count() > 0 && !std::ptr::eq(a.as_ptr(), adapter));
        if self.pushes() {
            for channel in adapter.push_channels() {
                self.subscription(channel, false);
            }
        } else if let Some(mut sink) = self.live_sink() {
            let (exact, pattern) = adapter.dialect().fixed_channels();
            let _ = sink.unsubscribe(&exact).await;
            if let Some(pattern) = pattern {
                let _ = sink.punsubscribe(&pattern).await;
            }
        }
        if lock(&self.adapters).is_empty() {
            // Nobody left to serve: end the subscriber (a namespace
            // declared later starts it again).
            lock(&self.stop).take();
            lock(&self.sink).take();
            lock(&self.subscriptions).disconnected("redis subscriber: stopped");
            lock(&self.status).connected = false;
        }
    }

    fn live_sink(&self) -> Option<PubSubSink> {
        lock(&self.sink).clone()
    }

    /// Subscribes a namespace on the live connection, if there is one
    /// (otherwise the subscriber does it when it connects).
    pub(crate) async fn subscribe(&self, adapter: &RedisAdapter) -> Result<(), AdapterError> {
        if self.pushes() {
            for channel in adapter.push_channels() {
                self.subscription(channel, true);
            }
            return self.subscriptions_settled().await;
        }
        let sink = lock(&self.sink).clone();
        let Some(mut sink) = sink else {
            return Ok(());
        };
        subscribe(&mut sink, adapter).await.map_err(unavailable)
    }

    /// RESP3 subscriber: (un)subscribes `channel` on the live connection.
    /// Ignored while disconnected: the subscriber subscribes every
    /// adapter's channels when it connects.
    pub(crate) fn subscription(&self, channel: Channel, subscribe: bool) {
        lock(&self.subscriptions).change(channel, subscribe);
    }

    /// Resolves once every subscription change asked for so far is in
    /// effect; at once when there is no live connection (then the next
    /// one subscribes everything).
    pub(crate) async fn subscriptions_settled(&self) -> Result<(), AdapterError> {
        let Some(done) = lock(&self.subscriptions).settled() else {
            return Ok(());
        };
        let timeout = self.config.requests_timeout;
        let runtime = lock(&self.adapters)
            .iter()
            .find_map(Weak::upgrade)
            .map(|adapter| adapter.runtime().clone());
        let Some(runtime) = runtime else {
            return Ok(());
        };
        let deadline = runtime.sleep_until(runtime.clock().now_std() + timeout);
        match select(done, deadline).await {
            Either::Left((Ok(result), _)) => result.map_err(AdapterError::Unavailable),
            Either::Left((Err(_), _)) => Err(AdapterError::Unavailable(
                "redis subscriber: stopped".to_owned(),
            )),
            Either::Right(_) => Err(AdapterError::Timeout),
        }
    }

    /// The adapter whose channel this is.
    pub(crate) fn adapter_of(&self, channel: &str) -> Option<Arc<RedisAdapter>> {
        lock(&self.adapters)
            .iter()
            .filter_map(Weak::upgrade)
            .find(|adapter| adapter.dialect().owns_channel(channel))
    }

    /// The adapter of namespace `nsp` (Streams entries name theirs).
    pub(crate) fn adapter_of_namespace(&self, nsp: &str) -> Option<Arc<RedisAdapter>> {
        lock(&self.adapters)
            .iter()
            .filter_map(Weak::upgrade)
            .find(|adapter| adapter.nsp() == nsp)
    }

    pub(crate) fn adapters(&self) -> Vec<Arc<RedisAdapter>> {
        let mut adapters = lock(&self.adapters);
        adapters.retain(|a| a.strong_count() > 0);
        adapters.iter().filter_map(Weak::upgrade).collect()
    }

    async fn commands(&self) -> Result<Commands, AdapterError> {
        if let Some(connection) = lock(&self.commands).clone() {
            return Ok(connection);
        }
        let connection = self
            .endpoint
            .commands(&self.connection_config(), self.config.requests_timeout)
            .await
            .map_err(|error| self.failed("command connection", error))?;
        *lock(&self.commands) = Some(connection.clone());
        Ok(connection)
    }

    /// Records and logs a failure; the next command reconnects.
    fn failed(&self, what: &str, error: redis::RedisError) -> AdapterError {
        let message = format!("redis {what}: {error}");
        tracing::warn!(error = %error, "redis adapter: {what} failed");
        lock(&self.commands).take();
        lock(&self.status).last_error = Some(message.clone());
        AdapterError::Unavailable(message)
    }

    /// `PUBLISH channel message` (or `SPUBLISH`: `command`).
    pub(crate) async fn publish(
        &self,
        command: &'static str,
        channel: &str,
        message: Vec<u8>,
    ) -> Result<(), AdapterError> {
        let mut publish = redis::cmd(command);
        publish.arg(channel).arg(message);
        self.query::<i64>(command, &publish).await.map(|_| ())
    }

    /// Runs `command` on the command connection; its reply as `T`.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        command: &redis::Cmd,
    ) -> Result<T, AdapterError> {
        let mut connection = self.commands().await?;
        command
            .query_async::<T>(&mut connection)
            .await
            .map_err(|error| self.failed(what, error))
    }

    /// Runs `pipeline` on the command connection; its replies as `T`.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &self,
        what: &str,
        pipeline: &redis::Pipeline,
    ) -> Result<T, AdapterError> {
        let mut connection = self.commands().await?;
        pipeline
            .query_async::<T>(&mut connection)
            .await
            .map_err(|error| self.failed(what, error))
    }

    /// `XADD stream MAXLEN ~ max_len * field value …`: the new entry's id.
    pub(crate) async fn xadd(
        &self,
        stream: &str,
        fields: &[(&'static str, String)],
    ) -> Result<String, AdapterError> {
        let max_len = self.streams().map_or(10_000, |streams| streams.max_len);
        let mut command = redis::cmd("XADD");
        command
            .arg(stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(max_len)
            .arg("*");
        for (field, value) in fields {
            command.arg(*field).arg(value);
        }
        self.query("XADD", &command).await
    }

    /// How many connections subscribe to `channel` (`PUBSUB NUMSUB` or,
    /// as `subcommand`, `SHARDNUMSUB`): the servers of a namespace, counted
    /// on a channel each of them subscribes to, as Node's adapters do.
    pub(crate) async fn subscribers(
        &self,
        subcommand: &'static str,
        channel: &str,
    ) -> Result<usize, AdapterError> {
        let mut pubsub = redis::cmd("PUBSUB");
        pubsub.arg(subcommand).arg(channel);
        let counts: Vec<(String, usize)> = self.query("PUBSUB", &pubsub).await?;
        Ok(counts.first().map_or(0, |(_, count)| *count))
    }

    /// Also the gauge `socketio_redis_connected` (1 or 0) of the `metrics`
    /// facade.
    pub(crate) fn set_connected(&self, connected: bool, error: Option<String>) {
        metrics::gauge!("socketio_redis_connected").set(if connected { 1.0 } else { 0.0 });
        let mut status = lock(&self.status);
        status.connected = connected;
        if error.is_some() {
            status.last_error = error;
        }
    }
}

/// Subscribes one namespace's channels: the broadcast pattern first, so
/// that a server counted on the request channel (`PUBSUB NUMSUB`) already
/// hears broadcasts.
async fn subscribe(sink: &mut PubSubSink, adapter: &RedisAdapter) -> redis::RedisResult<()> {
    let (exact, pattern) = adapter.dialect().fixed_channels();
    if let Some(pattern) = pattern {
        sink.psubscribe(&pattern).await?;
    }
    sink.subscribe(&exact).await
}

/// The subscribers' wait between connection attempts: none before the
/// first, then doubling from `reconnect_min` up to `reconnect_max`; a
/// connection that works starts it over.
#[derive(Default)]
pub(crate) struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    /// Waits before the next attempt; `false` when stopped meanwhile.
    pub(crate) async fn wait(&self, runtime: &Arc<dyn DynRuntime>, stopped: &mut Stopped) -> bool {
        let Some(delay) = self.next else {
            return true;
        };
        let sleep = runtime.sleep_until(runtime.clock().now_std() + delay);
        matches!(select(stopped, sleep).await, Either::Right(_))
    }

    /// An attempt failed, or a connection ended: wait (longer) next time.
    pub(crate) fn failed(&mut self, config: &RedisAdapterConfig) {
        let (min, max) = (config.reconnect_min, config.reconnect_max);
        self.next = Some(self.next.map_or(min, |d| (d * 2).min(max)));
    }

    /// Connected; whether after a failure (worth a log line).
    pub(crate) fn connected(&mut self) -> bool {
        self.next.take().is_some()
    }
}

/// The subscriber: connects, subscribes every namespace, routes messages
/// until the connection ends, then tries again after a backoff. Ends when
/// the broker is gone or stopped.
async fn subscriber(broker: Weak<Broker>, runtime: Arc<dyn DynRuntime>, mut stopped: Stopped) {
    let mut backoff = Backoff::default();
    loop {
        if !backoff.wait(&runtime, &mut stopped).await {
            return;
        }
        let Some(strong) = broker.upgrade() else {
            return;
        };
        let connect = Box::pin(async {
            let client = strong.endpoint.client().await?;
            client.get_async_pubsub().await
        });
        let connected = match select(&mut stopped, connect).await {
            Either::Left(_) => return,
            Either::Right((connected, _)) => connected,
        };
        let (mut sink, mut messages) = match connected {
            Ok(pubsub) => pubsub.split(),
            Err(error) => {
                tracing::warn!(%error, "redis adapter: subscriber cannot connect");
                strong.set_connected(false, Some(format!("redis subscriber: {error}")));
                backoff.failed(&strong.config);
                continue;
            }
        };
        // The connection is offered first, then every adapter registered so
        // far is subscribed: an adapter registered later subscribes itself
        // on it when it starts (its `init`). The other order lost a
        // namespace declared while the subscriber was connecting: it
        // missed the list, then found no connection to subscribe on.
        strong.readers_started(&runtime).await;
        *lock(&strong.sink) = Some(sink.clone());
        let mut subscribed = Ok(());
        for adapter in strong.adapters() {
            subscribed = subscribed.and(subscribe(&mut sink, &adapter).await);
        }
        if let Err(error) = subscribed {
            tracing::warn!(%error, "redis adapter: subscribing failed");
            lock(&strong.sink).take();
            strong.set_connected(false, Some(format!("redis subscriber: {error}")));
            backoff.failed(&strong.config);
            continue;
        }
        strong.set_connected(true, None);
        if backoff.connected() {
            tracing::info!("redis adapter: subscriber reconnected");
        }
        // Routing holds the broker only per message.
        drop(strong);
        loop {
            let message = match select(&mut stopped, messages.next()).await {
                Either::Left(_) => return,
                Either::Right((message, _)) => message,
            };
            let Some(broker) = broker.upgrade() else {
                return;
            };
            match message {
                Some(message) => route(
                    &broker,
                    message.get_channel_name(),
                    message.get_payload_bytes(),
                ),
                None => {
                    tracing::warn!("redis adapter: subscriber connection lost; reconnecting");
                    lock(&broker.sink).take();
                    let error = "redis subscriber: connection lost".to_owned();
                    broker.set_connected(false, Some(error));
                    backoff.failed(&broker.config);
                    break;
                }
            }
        }
    }
}

/// Hands a message to the adapter whose channel it came on.
pub(crate) fn route(broker: &Broker, channel: &str, payload: &[u8]) {
    if let Some(adapter) = broker.adapter_of(channel) {
        adapter.on_message(channel, payload);
    }
}

pub(crate) fn unavailable(error: redis::RedisError) -> AdapterError {
    AdapterError::Unavailable(format!("redis: {error}"))
}
