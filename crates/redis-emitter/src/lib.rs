//! Emits to the clients of a Socket.IO cluster through Redis from a Rust
//! program that runs no server (a worker, a cron job): the Rust
//! counterpart of Node's [`@socket.io/redis-emitter`](https://github.com/socketio/socket.io-redis-emitter)
//! 5.x, byte for byte. Every server of the cluster, Rust
//! ([`adapter_redis`]'s classic format) or Node (`@socket.io/redis-adapter`'s
//! `createAdapter`), delivers what it publishes.
//!
//! ```no_run
//! use redis_emitter::{Emitter, EmitterConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let emitter = Emitter::new("redis://127.0.0.1:6379", EmitterConfig::default())?;
//! emitter.emit("time", &"it is noon").await?;
//! emitter.to("room42").except("muted").emit("news", &"for room 42").await?;
//! emitter.of("/admin").in_("managers").sockets_join(["audit"]).await?;
//! emitter.server_side_emit("reload", &serde_json::json!({ "config": 3 })).await?;
//! # Ok(()) }
//! ```
//!
//! It only publishes: nothing comes back, so there are no acks and no
//! `fetch_sockets` (as with Node's emitter). It speaks the classic format
//! only; Node has no emitter for the sharded one. Binary data anywhere in
//! the arguments ([`socketio::Binary`], in an [`Emitter::emit_payload`]
//! payload) travels as msgpack `bin` in broadcasts; in server-side events,
//! which Node writes as JSON, it becomes Node's JSON form of a `Buffer`.
//!
//! A publish that fails (Redis unreachable) returns the error; the next
//! one connects again. Nothing is queued.

use std::sync::Arc;
use std::time::Duration;

use adapter_redis::codec::{self, CodecError};
use adapter_redis::{IntoRedisTarget, Publisher, RedisAdapterError};
use rmpv::Value as Msgpack;
use serde::Serialize;
use serde_json::{json, Value as Json};
use socketio::{Payload, PayloadError};

/// The uid Node's emitter writes in what it publishes.
const UID: &str = "emitter";

/// Event names a client reserves (Node's emitter refuses them too).
pub use socketio::parser::RESERVED_EVENTS;

/// Node's request types (`RequestType` of Node's adapter and emitter).
mod request {
    pub const REMOTE_JOIN: u8 = 2;
    pub const REMOTE_LEAVE: u8 = 3;
    pub const REMOTE_DISCONNECT: u8 = 4;
    pub const SERVER_SIDE_EMIT: u8 = 6;
}

/// How the emitter reaches the cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmitterConfig {
    /// The channel prefix: the servers' `key` (`socket.io`, Node's default).
    pub key: String,
    /// How long connecting to Redis, and each publish's reply, may take.
    pub timeout: Duration,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        EmitterConfig {
            key: "socket.io".to_owned(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why an emit did not go out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The event name is one a client reserves ([`RESERVED_EVENTS`]).
    #[error("\"{0}\" is a reserved event name")]
    Reserved(String),
    /// The arguments could not be serialized.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The arguments could not be encoded for Redis.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Redis did not take it.
    #[error("redis: {0}")]
    Redis(#[from] adapter_redis::RedisError),
}

struct Shared {
    publisher: Publisher,
    key: String,
}

/// Publishes to the servers of a cluster: broadcasts to the sockets of a
/// namespace ([`Emitter::emit`]) narrowed by rooms ([`Emitter::to`],
/// [`Emitter::except`]), room changes and disconnections of the selected
/// sockets, and server-side events. Each narrowing returns a new emitter;
/// clones share one Redis connection.
#[derive(Clone)]
pub struct Emitter {
    shared: Arc<Shared>,
    nsp: String,
    rooms: Vec<String>,
    except: Vec<String>,
    /// In the order they were first set, as Node's `Object.assign` keeps them.
    flags: Vec<(&'static str, bool)>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.shared.key)
            .field("nsp", &self.nsp)
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .finish()
    }
}

impl Emitter {
    /// An emitter for the main namespace (`/`) of the cluster on `target`:
    /// an [`adapter_redis::RedisTarget`] (TLS, Sentinel, Cluster) or a
    /// Redis URL. Connects at the first publish.
    pub fn new(
        target: impl IntoRedisTarget,
        config: EmitterConfig,
    ) -> Result<Emitter, RedisAdapterError> {
        Ok(Emitter {
            shared: Arc::new(Shared {
                publisher: Publisher::new(target, config.timeout)?,
                key: config.key,
            }),
            nsp: "/".to_owned(),
            rooms: Vec::new(),
            except: Vec::new(),
            flags: Vec::new(),
        })
    }

    /// The same emitter for namespace `nsp` (`/` is added in front if
    /// missing), with no rooms or flags.
    pub fn of(&self, nsp: &str) -> Emitter {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Emitter {
            shared: self.shared.clone(),
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
            flags: Vec::new(),
        }
    }

    /// Selects the sockets in `room` too (each call adds a room).
    pub fn to(&self, room: impl Into<String>) -> Emitter {
        let mut next = self.clone();
        add(&mut next.rooms, room.into());
        next
    }

    /// The same as [`Emitter::to`].
    pub fn in_(&self, room: impl Into<String>) -> Emitter {
        self.to(room)
    }

    /// Leaves out the sockets in `room`.
    pub fn except(&self, room: impl Into<String>) -> Emitter {
        let mut next = self.clone();
        add(&mut next.except, room.into());
        next
    }

    /// Emits may be dropped for sockets that cannot take them now.
    pub fn volatile(&self) -> Emitter {
        self.flag("volatile", true)
    }

    /// Whether the servers may compress these emits (default: yes).
    pub fn compress(&self, compress: bool) -> Emitter {
        self.flag("compress", compress)
    }

    fn flag(&self, name: &'static str, value: bool) -> Emitter {
        let mut next = self.clone();
        match next.flags.iter_mut().find(|(flag, _)| *flag == name) {
            Some(flag) => flag.1 = value,
            None => next.flags.push((name, value)),
        }
        next
    }

    /// Emits `event` with one argument to the selected sockets.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), EmitterError> {
        self.emit_payload(event, Payload::single(value)?).await
    }

    /// Emits `event` with `payload` (any number of arguments, binary
    /// anywhere) to the selected sockets.
    pub async fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::Reserved(event.to_owned()));
        }
        let (channel, message) = self.broadcast(event, &payload)?;
        self.publish(&channel, &message).await
    }

    /// The channel and bytes of a broadcast: `[uid, packet, opts]` in
    /// msgpack, on the namespace's channel or, for exactly one room, the
    /// room's.
    fn broadcast(&self, event: &str, payload: &Payload) -> Result<(String, Vec<u8>), EmitterError> {
        let data = codec::args_to_msgpack(&event_data(event, payload)?, payload.attachments())?;
        let packet = Msgpack::Map(vec![
            ("type".into(), Msgpack::from(2)),
            ("data".into(), data),
            ("nsp".into(), Msgpack::from(self.nsp.as_str())),
        ]);
        let names = |rooms: &[String]| {
            Msgpack::Array(rooms.iter().map(|r| Msgpack::from(r.as_str())).collect())
        };
        let flags = self
            .flags
            .iter()
            .map(|(name, value)| (Msgpack::from(*name), Msgpack::Boolean(*value)))
            .collect();
        let opts = Msgpack::Map(vec![
            ("rooms".into(), names(&self.rooms)),
            ("flags".into(), Msgpack::Map(flags)),
            ("except".into(), names(&self.except)),
        ]);
        let message = codec::encode(&Msgpack::Array(vec![Msgpack::from(UID), packet, opts]));
        let mut channel = format!("{}#{}#", self.shared.key, self.nsp);
        if let [room] = self.rooms.as_slice() {
            channel.push_str(room);
            channel.push('#');
        }
        Ok((channel, message))
    }

    /// Makes the selected sockets join `rooms`, on every server.
    pub async fn sockets_join<I, S>(&self, rooms: I) -> Result<(), EmitterError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let request = self.rooms_request(request::REMOTE_JOIN, rooms);
        self.request(&request).await
    }

    /// Makes the selected sockets leave `rooms`, on every server.
    pub async fn sockets_leave<I, S>(&self, rooms: I) -> Result<(), EmitterError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let request = self.rooms_request(request::REMOTE_LEAVE, rooms);
        self.request(&request).await
    }

    fn rooms_request<I, S>(&self, kind: u8, rooms: I) -> Json
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
        json!({ "type": kind, "opts": self.opts(), "rooms": rooms })
    }

    /// Disconnects the selected sockets (their clients see `io server
    /// disconnect`); with `close`, their whole connections.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        let request = json!({
            "type": request::REMOTE_DISCONNECT,
            "opts": self.opts(),
            "close": close,
        });
        self.request(&request).await
    }

    /// Emits `event` with one argument to the servers of the namespace
    /// (their `on_server_event` handlers); rooms and flags do not apply.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), EmitterError> {
        self.server_side_emit_payload(event, Payload::single(value)?)
            .await
    }

    /// [`Emitter::server_side_emit`] with any number of arguments. No ack:
    /// nothing comes back to an emitter.
    pub async fn server_side_emit_payload(
        &self,
        event: &str,
        payload: Payload,
    ) -> Result<(), EmitterError> {
        let request = self.server_side_request(event, &payload)?;
        self.request(&request).await
    }

    fn server_side_request(&self, event: &str, payload: &Payload) -> Result<Json, EmitterError> {
        let data: Json = serde_json::from_str(&event_data(event, payload)?)
            .map_err(|error| EmitterError::Codec(error.into()))?;
        Ok(json!({
            "uid": UID,
            "type": request::SERVER_SIDE_EMIT,
            "data": codec::buffers_as_json(&data, payload.attachments()),
        }))
    }

    fn opts(&self) -> Json {
        json!({ "rooms": self.rooms, "except": self.except })
    }

    async fn request(&self, request: &Json) -> Result<(), EmitterError> {
        let channel = format!("{}-request#{}#", self.shared.key, self.nsp);
        self.publish(&channel, request.to_string().as_bytes()).await
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<(), EmitterError> {
        self.shared.publisher.publish(channel, message).await?;
        Ok(())
    }
}

/// Adds `room` unless it is there (Node keeps rooms in a `Set`).
fn add(rooms: &mut Vec<String>, room: String) {
    if !rooms.contains(&room) {
        rooms.push(room);
    }
}

/// `[event, ...args]` as JSON text.
fn event_data(event: &str, payload: &Payload) -> Result<String, EmitterError> {
    let event = serde_json::to_string(event).map_err(PayloadError::from)?;
    let args = payload.args_json();
    let rest = args.strip_prefix('[').unwrap_or(args).trim_start();
    Ok(if rest.starts_with(']') {
        format!("[{event}]")
    } else {
        format!("[{event},{rest}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketio::Binary;

    fn emitter() -> Emitter {
        Emitter::new("redis://127.0.0.1:1", EmitterConfig::default()).unwrap()
    }

    /// Lowercase hex of `bytes`.
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    // The expected bytes are what Node 20 printed for the same calls on
    // @socket.io/redis-emitter 5.1.0 with a client whose `publish` prints
    // its arguments (the suite's redis_emitter test compares them live).

    #[test]
    fn a_broadcast_is_what_nodes_emitter_writes() {
        // emitter.to("r1").compress(false).emit("ev", 1, "two")
        let payload = Payload::args(&(1, "two")).unwrap();
        let (channel, bytes) = emitter()
            .to("r1")
            .compress(false)
            .broadcast("ev", &payload)
            .unwrap();
        assert_eq!(channel, "socket.io#/#r1#");
        assert_eq!(
            hex(&bytes),
            "93a7656d697474657283a47479706502a46461746193a2657601a374776fa36e7370a12f83a5726f6f6d7391a27231a5666c61677381a8636f6d7072657373c2a665786365707490"
        );
    }

    #[test]
    fn binary_is_a_msgpack_bin_and_two_rooms_use_the_namespace_channel() {
        // emitter.of("chat").to("a").to("b").to("a").emit("ev", Buffer.from([1, 2]))
        let payload = Payload::single(&Binary::from(vec![1, 2])).unwrap();
        let (channel, bytes) = emitter()
            .of("chat")
            .to("a")
            .to("b")
            .to("a")
            .broadcast("ev", &payload)
            .unwrap();
        assert_eq!(channel, "socket.io#/chat#");
        assert_eq!(
            hex(&bytes),
            "93a7656d697474657283a47479706502a46461746192a26576c4020102a36e7370a52f6368617483a5726f6f6d7392a161a162a5666c61677380a665786365707490"
        );
    }

    #[test]
    fn requests_are_what_nodes_emitter_writes() {
        let emitter = emitter();
        // emitter.in("x").except("y").socketsJoin(["j1", "j2"])
        let join = emitter
            .in_("x")
            .except("y")
            .rooms_request(request::REMOTE_JOIN, ["j1", "j2"]);
        assert_eq!(
            join.to_string(),
            r#"{"type":2,"opts":{"rooms":["x"],"except":["y"]},"rooms":["j1","j2"]}"#
        );
        // emitter.serverSideEmit("ping", Buffer.from([3]), 1.5)
        let payload = Payload::args(&(Binary::from(vec![3]), 1.5)).unwrap();
        let request = emitter.server_side_request("ping", &payload).unwrap();
        assert_eq!(
            request.to_string(),
            r#"{"uid":"emitter","type":6,"data":["ping",{"type":"Buffer","data":[3]},1.5]}"#
        );
    }

    #[test]
    fn event_data_puts_the_event_first() {
        let none = Payload::args::<[u8]>(&[]).unwrap();
        assert_eq!(event_data("e", &none).unwrap(), r#"["e"]"#);
        let two = Payload::args(&(1, "x")).unwrap();
        assert_eq!(event_data("e\"", &two).unwrap(), r#"["e\"",1,"x"]"#);
    }

    #[tokio::test]
    async fn reserved_events_are_refused() {
        let error = emitter().emit("disconnect", &1).await.unwrap_err();
        assert!(matches!(error, EmitterError::Reserved(_)), "{error}");
    }
}
