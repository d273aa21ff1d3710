//! The Redis adapter against a real `redis-server` (started by this test on
//! a free 127.0.0.1 port): two Rust servers, and mixed clusters of a Rust
//! server and an official Node socket.io server with
//! `@socket.io/redis-adapter` (`interop/redis-cluster-server.mjs`), in both
//! roles, must pass every scenario of `interop/cluster.mjs` that the
//! in-memory cluster passes; and a Redis that goes away and comes back
//! must not stop local traffic.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory};
use futures_util::StreamExt;
use socketio::adapter::AdapterError;
use socketio::client::ClientOptions;
use socketio::{BroadcastError, Data, NamespaceRef};
use suite::cluster::{run_on_pair, run_scenario, start_server, SCENARIOS};
use suite::node::NodeServer;
use suite::redis::RedisServer;
use suite::{within, TestRuntime};

fn factory(redis: &RedisServer, key: &str) -> RedisAdapterFactory {
    let mut config = RedisAdapterConfig::default();
    config.key = key.to_owned();
    config.requests_timeout = Duration::from_secs(3);
    RedisAdapterFactory::new(&redis.url(), config).expect("a valid redis url")
}

/// Waits until `servers` servers subscribe to the main namespace's channels
/// (each subscribes its broadcast pattern before its request channel, so
/// counting the latter is enough).
async fn wait_for_servers(main: &NamespaceRef, servers: usize) {
    within("the servers to subscribe", async {
        while main.server_count().await.ok() != Some(servers) {
            suite::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn two_rust_servers_act_as_one_cluster<R: TestRuntime>(rt: R) {
    let redis = RedisServer::start().await;
    let mut failures = Vec::new();
    for (n, (scenario, transport)) in SCENARIOS.into_iter().enumerate() {
        // Channels of their own: nothing of an earlier scenario is heard.
        let key = format!("scenario{n}");
        let a = start_server(rt, "A", Arc::new(factory(&redis, &key))).await;
        let b = start_server(rt, "B", Arc::new(factory(&redis, &key))).await;
        wait_for_servers(&a.io.of("/"), 2).await;
        wait_for_servers(&b.io.of("/"), 2).await;
        failures.extend(run_on_pair(&a, &b, scenario, transport).await);
        a.io.close().await;
        b.io.close().await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A Node server of the cluster (`@socket.io/redis-adapter`, classic).
async fn node_server(redis: &RedisServer, name: &str) -> NodeServer {
    NodeServer::script("redis-cluster-server.mjs", &[redis.url(), name.to_owned()]).await
}

async fn rust_and_node_servers_act_as_one_cluster<R: TestRuntime>(rt: R) {
    let redis = RedisServer::start().await;
    let mut failures = Vec::new();
    for rust_is_a in [true, false] {
        for (scenario, transport) in SCENARIOS {
            let (rust_name, node_name) = if rust_is_a { ("A", "B") } else { ("B", "A") };
            // Node's adapter uses the default prefix; each scenario gets
            // fresh servers, the previous ones are gone.
            let rust = start_server(rt, rust_name, Arc::new(factory(&redis, "socket.io"))).await;
            let node = node_server(&redis, node_name).await;
            let node_addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.port));
            wait_for_servers(&rust.io.of("/"), 2).await;
            let (a, b) = if rust_is_a {
                (rust.addr, node_addr)
            } else {
                (node_addr, rust.addr)
            };
            let order = if rust_is_a {
                "rust A, node B"
            } else {
                "node A, rust B"
            };
            if let Err(failure) = run_scenario(a, b, scenario, transport).await {
                failures.push(format!("{order}: {failure}"));
            }
            if scenario == "servers" {
                // Server A asks: B's handler answers, A's never runs.
                let expected = usize::from(!rust_is_a);
                let runs = rust.own_runs.load(Ordering::SeqCst);
                if runs != expected {
                    failures.push(format!(
                        "{order}: rust whoami runs {runs}, expected {expected}"
                    ));
                }
            }
            node.kill();
            rust.io.close().await;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Redis goes away: local broadcasts still reach local clients, cluster
/// operations fail at once with `Unavailable`, the status says so; Redis
/// comes back: the adapters reconnect by themselves and the cluster works
/// again.
async fn local_traffic_goes_on_while_redis_is_away<R: TestRuntime>(rt: R) {
    let mut redis = RedisServer::start().await;
    let (factory_a, factory_b) = (factory(&redis, "outage"), factory(&redis, "outage"));
    let a = start_server(rt, "A", Arc::new(factory_a.clone())).await;
    let b = start_server(rt, "B", Arc::new(factory_b.clone())).await;
    let main_a = a.io.of("/");
    wait_for_servers(&main_a, 2).await;
    wait_for_servers(&b.io.of("/"), 2).await;

    // A client on each server, recording the "news" it gets.
    let mut news = Vec::new();
    let mut clients = Vec::new();
    for addr in [a.addr, b.addr] {
        let client =
            socketio::client::io(rt, &format!("http://{addr}/"), ClientOptions::default()).unwrap();
        let (seen, got) = futures_channel::mpsc::unbounded();
        client.on("news", move |_, Data(text): Data<String>, _| {
            let seen = seen.clone();
            async move {
                let _ = seen.unbounded_send(text);
            }
        });
        within("a client to connect", client.connect())
            .await
            .unwrap();
        clients.push(client);
        news.push(got);
    }
    main_a.emit("news", "before").await.unwrap();
    assert_eq!(next(&mut news[0]).await, "before");
    assert_eq!(next(&mut news[1]).await, "before");

    redis.stop();
    // The broadcast reaches A's client; the error says B's may not have it.
    let outcome = main_a.emit("news", "while away").await;
    assert!(
        matches!(
            outcome,
            Err(BroadcastError::Adapter(AdapterError::Unavailable(_)))
        ),
        "{outcome:?}"
    );
    assert_eq!(next(&mut news[0]).await, "while away");
    let count = within("server_count while away", main_a.server_count()).await;
    assert!(
        matches!(count, Err(AdapterError::Unavailable(_))),
        "{count:?}"
    );
    within("the subscriber to notice", async {
        while factory_b.status().connected {
            suite::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(factory_b.status().last_error.is_some());

    redis.restart().await;
    within("the subscribers to come back", async {
        while !(factory_a.status().connected && factory_b.status().connected) {
            suite::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    wait_for_servers(&main_a, 2).await;
    main_a.emit("news", "back").await.unwrap();
    assert_eq!(next(&mut news[0]).await, "back");
    // Nothing was queued for B while Redis was away: its next news is this.
    assert_eq!(next(&mut news[1]).await, "back");

    for client in clients {
        client.disconnect();
    }
    a.io.close().await;
    b.io.close().await;
}

/// The next news a client got.
async fn next(got: &mut futures_channel::mpsc::UnboundedReceiver<String>) -> String {
    within("news", got.next())
        .await
        .expect("the client is alive")
}

suite::on_each_runtime!(
    two_rust_servers_act_as_one_cluster,
    rust_and_node_servers_act_as_one_cluster,
    local_traffic_goes_on_while_redis_is_away,
);
