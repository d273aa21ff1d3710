//! A Redis adapter for the `socketio` crate that speaks the wire formats of
//! Node's [`@socket.io/redis-adapter`](https://github.com/socketio/socket.io-redis-adapter)
//! (8.x: `createAdapter` with [`RedisAdapterFactory::new`], and
//! `createShardedAdapter`, Redis 7 sharded Pub/Sub, with
//! [`RedisAdapterFactory::new_sharded`]) and of Node's
//! `@socket.io/redis-streams-adapter` (0.3, with
//! [`RedisAdapterFactory::new_streams`]: connection state recovery across
//! servers): Rust and Node servers can share one Redis and act as one
//! cluster — broadcasts, rooms, acks, `fetch_sockets`, remote
//! join/leave/disconnect, server-side events — so a Node fleet can move to
//! Rust one server at a time. Redis is reached as a [`RedisTarget`]: one
//! server (TLS, ACL users), Sentinel, or a Redis Cluster.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory};
//! use socketio::{SocketIo, SocketIoConfig};
//!
//! let redis = RedisAdapterFactory::new("redis://127.0.0.1:6379", RedisAdapterConfig::default())?;
//! let mut config = SocketIoConfig::default();
//! config.adapter = std::sync::Arc::new(redis.clone());
//! let io = SocketIo::new(runtime_tokio::TokioRuntime, config);
//! io.of("/").emit("hello", "every server's clients").await?;
//! // Whether Redis is reachable now, and the last failure:
//! println!("{:?}", redis.status());
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! (The Streams format: see [`streams_wire`] and `docs/cluster.md`.)
//!
//! Each namespace's adapter wraps a [`socketio::adapter::LocalAdapter`] for
//! this server's sockets and publishes the rest as Node's adapter does:
//! classic ([`wire`]: channels `socket.io#/nsp#`, `socket.io-request#/nsp#`,
//! `socket.io-response#/nsp#`; msgpack broadcasts, JSON requests) or
//! sharded ([`sharded_wire`]: `SPUBLISH` of `{type, data, uid, nsp}`
//! envelopes on `socket.io#/nsp#`, room channels as the
//! [`SubscriptionMode`] says). The server's namespaces share one command
//! connection and one subscriber connection. The client is [`redis`] (redis-rs): inside a tokio runtime it
//! runs on tokio, anywhere else (smol) on smol's executor; the adapter's own
//! tasks and timers run on the server's runtime.
//!
//! # When Redis goes away
//!
//! Local traffic never stops. Cluster operations fail at once with
//! [`AdapterError::Unavailable`](socketio::AdapterError) (a broadcast still
//! reached this server's sockets), the failure is logged with `tracing`
//! and kept in [`RedisAdapterFactory::status`], and both connections come
//! back by themselves (the subscriber with exponential backoff between
//! [`RedisAdapterConfig::reconnect_min`] and `reconnect_max`). Nothing is
//! queued for later: what happened while Redis was away is lost for the
//! other servers, as with Node's adapter.
//!
//! # Differences from Node's adapter
//!
//! - Join, leave and disconnect requests are applied on this server before
//!   they are published (Node's adapter applies its own when Redis echoes
//!   them back), so they have taken effect here when the call returns.
//! - Ack answers name the socket that answered (an extra `sid` key Node
//!   ignores); answers relayed by Node servers do not, and get the ids
//!   `remote-ack-1`, `remote-ack-2`, … per broadcast.
//! - Binary data travels as msgpack `bin` in broadcasts and acks, exactly
//!   as with Node; in server-side events and fetched `data`, which Node's
//!   adapter always writes as JSON, it becomes Node's JSON form of a
//!   `Buffer` (`{"type":"Buffer","data":[…]}`), as it does from Node.

mod adapter;
mod broker;
pub mod codec;
mod dialect;
mod push_subscriber;
mod resume;
pub mod sharded_wire;
mod stream_reader;
pub mod streams_wire;
mod target;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use socketio::adapter::{Adapter, AdapterFactory, LocalNamespace};

pub use adapter::RedisAdapter;
pub use broker::Status;
pub use redis::RedisError;
pub use sharded_wire::SubscriptionMode;
pub use target::{Publisher, RedisTarget};

// Only for its `ring` feature: redis-rs's rustls needs a crypto provider.
use rustls as _;

/// The wire format a factory's adapters speak.
#[derive(Debug, Clone)]
pub(crate) enum Format {
    /// Node's `createAdapter`.
    Classic,
    /// Node's `createShardedAdapter`, in a subscription mode.
    Sharded(SubscriptionMode),
    /// Node's `@socket.io/redis-streams-adapter`.
    Streams(Arc<StreamsConfig>),
}

/// Locks a mutex; a panic elsewhere while it was held leaves plain data
/// behind (maps and options), still fine to use.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How the adapter talks to Redis.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisAdapterConfig {
    /// The channel prefix (Node's `key`), `socket.io` by default. Every
    /// server of a cluster must use the same.
    pub key: String,
    /// How long a request waits for the other servers' answers (Node's
    /// `requestsTimeout`, 5 s), and a Redis command for its reply.
    pub requests_timeout: Duration,
    /// Answers go to the requester's own channel instead of the shared one
    /// (Node's `publishOnSpecificResponseChannel`). Either way this adapter
    /// hears both.
    pub publish_on_specific_response_channel: bool,
    /// How long connecting to Redis may take.
    pub connect_timeout: Duration,
    /// The first wait before the subscriber reconnects.
    pub reconnect_min: Duration,
    /// The longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// How many answers of other servers to a broadcast with acks may wait
    /// to be read; more are dropped (and logged).
    pub ack_queue: usize,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        RedisAdapterConfig {
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
            connect_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            ack_queue: 1024,
        }
    }
}

/// The settings of the Redis Streams format
/// ([`RedisAdapterFactory::new_streams`]), Node's
/// `@socket.io/redis-streams-adapter` options of the same names and
/// defaults. The channel prefix is [`RedisAdapterConfig::key`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamsConfig {
    /// The stream (Node's `streamName`, `socket.io`).
    pub stream_name: String,
    /// How many streams the namespaces are spread over (Node's
    /// `streamCount`, 1): `stream_name-i`, `i` from the namespace's hash.
    pub stream_count: usize,
    /// Publish and subscribe with `SPUBLISH` / `SSUBSCRIBE` (Node's
    /// `useShardedPubSub`, false).
    pub sharded_pubsub: bool,
    /// About how many entries a stream keeps (`XADD … MAXLEN ~`, Node's
    /// `maxLen`, 10,000): a client away longer than the last this many
    /// messages cannot be recovered.
    pub max_len: usize,
    /// The most entries one `XREAD` returns (Node's `readCount`, 100).
    pub read_count: usize,
    /// How long one `XREAD` blocks (Node's `blockTimeInMs`, 5 s).
    pub block_time: Duration,
    /// The prefix of the keys that keep sessions (Node's
    /// `sessionKeyPrefix`, `sio:session:`).
    pub session_key_prefix: String,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            stream_name: "socket.io".to_owned(),
            stream_count: 1,
            sharded_pubsub: false,
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".to_owned(),
        }
    }
}

/// Why the adapter could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisAdapterError {
    /// A Redis URL, certificate or setting is not valid.
    #[error("invalid redis url or settings: {0}")]
    Url(#[from] redis::RedisError),
    /// The target is incomplete (such as a cluster with no node).
    #[error("invalid redis target: {0}")]
    Target(String),
}

/// What [`RedisAdapterFactory::new`] accepts: a [`RedisTarget`], or the URL
/// of one Redis server (`redis://…`, `rediss://…` for TLS).
pub trait IntoRedisTarget {
    /// The target, or why this is not one.
    fn into_target(self) -> Result<RedisTarget, RedisAdapterError>;
}

impl IntoRedisTarget for RedisTarget {
    fn into_target(self) -> Result<RedisTarget, RedisAdapterError> {
        Ok(self)
    }
}

impl IntoRedisTarget for &str {
    fn into_target(self) -> Result<RedisTarget, RedisAdapterError> {
        RedisTarget::url(self)
    }
}

impl IntoRedisTarget for &String {
    fn into_target(self) -> Result<RedisTarget, RedisAdapterError> {
        RedisTarget::url(self)
    }
}

impl IntoRedisTarget for String {
    fn into_target(self) -> Result<RedisTarget, RedisAdapterError> {
        RedisTarget::url(&self)
    }
}

/// Makes each namespace's [`RedisAdapter`]; set it as the server's
/// `SocketIoConfig::adapter`. Clones share the same connections.
#[derive(Clone)]
pub struct RedisAdapterFactory {
    broker: Arc<broker::Broker>,
}

impl RedisAdapterFactory {
    /// An adapter factory for `target`: a [`RedisTarget`] (one server,
    /// Sentinel, cluster; TLS and credentials) or the URL of one server
    /// (`redis://[user:password@]host:port/db`, `rediss://` for TLS).
    /// Connects lazily: the first namespace starts the subscriber.
    pub fn new(
        target: impl IntoRedisTarget,
        config: RedisAdapterConfig,
    ) -> Result<RedisAdapterFactory, RedisAdapterError> {
        let endpoint = target.into_target()?.endpoint()?;
        Ok(RedisAdapterFactory {
            broker: Arc::new(broker::Broker::new(endpoint, config, Format::Classic)),
        })
    }

    /// An adapter factory speaking the format of Node's sharded adapter
    /// (`createShardedAdapter`: `SPUBLISH` / `SSUBSCRIBE`, Redis 7 or
    /// later), with Node's subscription `mode` (Node's default:
    /// [`SubscriptionMode::Dynamic`]). Every server of a cluster must use
    /// the same format and mode.
    pub fn new_sharded(
        target: impl IntoRedisTarget,
        config: RedisAdapterConfig,
        mode: SubscriptionMode,
    ) -> Result<RedisAdapterFactory, RedisAdapterError> {
        let endpoint = target.into_target()?.endpoint()?;
        Ok(RedisAdapterFactory {
            broker: Arc::new(broker::Broker::new(endpoint, config, Format::Sharded(mode))),
        })
    }

    /// An adapter factory speaking the format of Node's
    /// `@socket.io/redis-streams-adapter` 0.3: broadcasts and room changes
    /// go through a Redis stream that every server reads and that keeps
    /// them, so with connection state recovery on
    /// (`SocketIoConfig::recovery`) a client whose server went away
    /// reconnects to any other and gets what it missed, with its id and
    /// rooms (sessions are kept in Redis too). Needs Redis 5 or later.
    /// Every server of a cluster must use the same format and settings.
    pub fn new_streams(
        target: impl IntoRedisTarget,
        config: RedisAdapterConfig,
        streams: StreamsConfig,
    ) -> Result<RedisAdapterFactory, RedisAdapterError> {
        let endpoint = target.into_target()?.endpoint()?;
        let format = Format::Streams(Arc::new(streams));
        Ok(RedisAdapterFactory {
            broker: Arc::new(broker::Broker::new(endpoint, config, format)),
        })
    }

    /// Resolves once the subscriptions this server asked for so far are in
    /// effect: with the sharded format, a room's channel is subscribed
    /// when the room appears here, a moment after the join; broadcasts
    /// other servers send to the room before then do not reach it. At
    /// once with the classic format on one server (whose subscriptions
    /// never change) and while Redis is unreachable (the next connection
    /// subscribes everything); [`AdapterError::Timeout`](socketio::AdapterError)
    /// after [`RedisAdapterConfig::requests_timeout`].
    pub async fn subscriptions_settled(&self) -> Result<(), socketio::AdapterError> {
        // The classic pub/sub subscriber never marks the RESP3 one's
        // subscriptions connected.
        self.broker.subscriptions_settled().await
    }

    /// Whether the subscriber is connected now, and the last failure.
    pub fn status(&self) -> Status {
        self.broker.status()
    }
}

impl std::fmt::Debug for RedisAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapterFactory")
            .field("status", &self.status())
            .finish()
    }
}

impl AdapterFactory for RedisAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let adapter = Arc::new(RedisAdapter::new(namespace, self.broker.clone()));
        self.broker.register(&adapter);
        adapter
    }
}

/// The code of `docs/cluster.md` compiles as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/cluster.md")]
pub struct ClusterGuide;
