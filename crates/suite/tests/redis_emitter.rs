//! The Redis emitter (`crates/redis-emitter`) against the official
//! `@socket.io/redis-emitter` (npm, pinned; `interop/redis-emitter.mjs`) and
//! real servers on a real `redis-server`:
//! - for the same calls, ours publishes exactly the channels and bytes
//!   Node's does;
//! - ours and Node's emitter reach the clients of a Rust server and of a
//!   Node server (`@socket.io/redis-adapter`) in one cluster: to everyone,
//!   to a room joined through the emitter, except a room, to another
//!   namespace, and disconnect a socket; server-side events reach our
//!   server's handlers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory};
use futures_channel::mpsc::UnboundedReceiver;
use futures_util::StreamExt;
use redis_emitter::{Emitter, EmitterConfig};
use serde::Serialize;
use socketio::client::{ClientOptions, ClientSocket};
use socketio::{Binary, Payload};
use suite::cluster::start_server;
use suite::node::{run_script, NodeServer};
use suite::redis::RedisServer;
use suite::{within, TestRuntime};

/// Every message published on `redis` while `action` runs, up to `count`
/// of them: `(channel, payload)` in the order Redis delivered them.
async fn record<F: std::future::Future<Output = ()>>(
    redis: &RedisServer,
    count: usize,
    action: F,
) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut pubsub = within("the recorder to connect", client.get_async_pubsub())
        .await
        .unwrap();
    pubsub.psubscribe("*").await.unwrap();
    action.await;
    let mut messages = pubsub.on_message();
    let mut recorded = Vec::new();
    while recorded.len() < count {
        let message = within("a published message", messages.next())
            .await
            .expect("the recorder's connection is alive");
        recorded.push((
            message.get_channel_name().to_owned(),
            message.get_payload_bytes().to_vec(),
        ));
    }
    recorded
}

#[derive(Serialize)]
struct File {
    file: Binary,
}

/// The calls of `redis-emitter.mjs bytes`, on our emitter.
async fn bytes_sequence(emitter: &Emitter) -> Result<(), redis_emitter::EmitterError> {
    let nested = serde_json::json!({ "nested": [1, "x"] });
    let plain = Payload::args(&("text", 42, 1.5, true, None::<u8>, nested))?;
    emitter.emit_payload("plain", plain).await?;
    let two = Payload::args(&(1, "two"))?;
    emitter
        .to("r1")
        .compress(false)
        .emit_payload("ev", two)
        .await?;
    let bytes = Binary::from(vec![1, 2]);
    emitter
        .of("chat")
        .to("a")
        .to("b")
        .to("a")
        .emit("ev", &bytes)
        .await?;
    let file = File {
        file: Binary::from(vec![9, 8, 7]),
    };
    let chat = emitter.of("/chat").except("muted").volatile();
    chat.emit("bin", &file).await?;
    emitter
        .in_("x")
        .except("y")
        .sockets_join(["j1", "j2"])
        .await?;
    emitter.in_("x").sockets_leave(["j1"]).await?;
    emitter.disconnect_sockets(true).await?;
    emitter.to("r").disconnect_sockets(false).await?;
    let ping = Payload::args(&(Binary::from(vec![3]), 1.5))?;
    emitter.server_side_emit_payload("ping", ping).await
}

async fn our_emitter_publishes_what_nodes_emitter_publishes<R: TestRuntime>(_rt: R) {
    const CALLS: usize = 9;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let node = record(&redis, CALLS, async {
        let args = [url.clone(), "bytes".to_owned()];
        run_script("redis-emitter.mjs", &args, "Node's emitter")
            .await
            .unwrap();
    })
    .await;
    let emitter = Emitter::new(&url, EmitterConfig::default()).unwrap();
    let ours = record(&redis, CALLS, async {
        bytes_sequence(&emitter).await.unwrap();
    })
    .await;
    for (n, (ours, node)) in ours.iter().zip(&node).enumerate() {
        assert_eq!(
            ours,
            node,
            "call {n}: ours {:?}, Node's {:?}",
            String::from_utf8_lossy(&ours.1),
            String::from_utf8_lossy(&node.1)
        );
    }
}

/// A client of `addr`'s namespace `nsp`, recording the "news" it gets.
async fn news_client<R: TestRuntime>(
    rt: R,
    addr: SocketAddr,
    nsp: &str,
) -> (ClientSocket, UnboundedReceiver<String>) {
    let url = format!("http://{addr}{nsp}");
    suite::recording_client(rt, &url, ClientOptions::default(), "news").await
}

async fn next(got: &mut UnboundedReceiver<String>) -> String {
    within("news", got.next()).await.expect("a live client")
}

/// The calls of `redis-emitter.mjs rooms`, on our emitter.
async fn rooms_sequence(emitter: &Emitter, on_a: &str, on_b: &str) {
    emitter.in_(on_a).sockets_join(["blue"]).await.unwrap();
    emitter.emit("news", "everyone").await.unwrap();
    emitter.to("blue").emit("news", "blue").await.unwrap();
    emitter
        .except("blue")
        .emit("news", "not blue")
        .await
        .unwrap();
    emitter.of("/other").emit("news", "other").await.unwrap();
    emitter.in_(on_b).disconnect_sockets(false).await.unwrap();
    emitter.emit("news", "end").await.unwrap();
}

async fn emitters_reach_rust_and_node_servers<R: TestRuntime>(rt: R) {
    let redis = RedisServer::start().await;
    let url = redis.url();
    for node_emitter in [false, true] {
        let mut config = RedisAdapterConfig::default();
        config.requests_timeout = Duration::from_secs(3);
        let factory = RedisAdapterFactory::new(&url, config).unwrap();
        let rust = start_server(rt, "A", Arc::new(factory)).await;
        let (reloads, mut reloaded) = futures_channel::mpsc::unbounded();
        rust.io
            .of("/")
            .on_server_event("reload", move |payload, _| {
                let _ = reloads.unbounded_send(payload);
                async {}
            });
        let args = [url.clone(), "B".to_owned()];
        let node = NodeServer::script("redis-cluster-server.mjs", &args).await;
        let node_addr = SocketAddr::from(([127, 0, 0, 1], node.port));
        within("both servers on Redis", async {
            while rust.io.of("/").server_count().await.ok() != Some(2) {
                suite::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let (a, mut news_a) = news_client(rt, rust.addr, "/").await;
        let (b, mut news_b) = news_client(rt, node_addr, "/").await;
        let (other, mut news_other) = news_client(rt, rust.addr, "/other").await;
        let (id_a, id_b) = (a.id().unwrap().to_string(), b.id().unwrap().to_string());
        let who = if node_emitter {
            "Node's emitter"
        } else {
            "ours"
        };
        if node_emitter {
            let args = [url.clone(), "rooms".to_owned(), id_a, id_b];
            run_script("redis-emitter.mjs", &args, "Node's emitter")
                .await
                .unwrap();
        } else {
            let emitter = Emitter::new(&url, EmitterConfig::default()).unwrap();
            rooms_sequence(&emitter, &id_a, &id_b).await;
            let file = File {
                file: Binary::from(vec![5, 6]),
            };
            emitter.server_side_emit("reload", &file).await.unwrap();
            let payload = within("the server-side event", reloaded.next())
                .await
                .unwrap();
            assert_eq!(
                payload.args_json(),
                r#"[{"file":{"type":"Buffer","data":[5,6]}}]"#,
                "server-side events carry Node's JSON form of a Buffer"
            );
        }
        for expected in ["everyone", "blue", "end"] {
            assert_eq!(next(&mut news_a).await, expected, "{who}: the client of A");
        }
        for expected in ["everyone", "not blue"] {
            assert_eq!(next(&mut news_b).await, expected, "{who}: the client of B");
        }
        assert_eq!(next(&mut news_other).await, "other", "{who}: /other");
        within("B's client to be disconnected", async {
            while b.connected() {
                suite::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        for client in [a, b, other] {
            client.disconnect();
        }
        node.kill();
        rust.io.close().await;
    }
}

suite::on_each_runtime!(
    our_emitter_publishes_what_nodes_emitter_publishes,
    emitters_reach_rust_and_node_servers,
);
