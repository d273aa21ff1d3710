//! A server of ours on the Redis Streams adapter, with connection state
//! recovery on, as a process of its own: for tests that kill it
//! (`SIGKILL`) in the middle of traffic. It serves the cluster test
//! server's handlers ([`suite::cluster`]).
//!
//! Usage: `streams-server <redisUrl> <name>`. Prints `listening <port>`
//! once it accepts connections; exits when its standard input closes.

use std::sync::Arc;

use adapter_redis::{RedisAdapterConfig, RedisAdapterFactory, StreamsConfig};
use runtime_tokio::TokioRuntime;
use socketio::{RecoveryConfig, SocketIoConfig};
use suite::TestRuntime;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, name] = args.as_slice() else {
        eprintln!("usage: streams-server <redisUrl> <name>");
        std::process::exit(2);
    };
    // The cluster handlers name their server for the whole run.
    let name: &'static str = Box::leak(name.clone().into_boxed_str());
    TokioRuntime::block_on(async move {
        let factory = RedisAdapterFactory::new_streams(
            url,
            RedisAdapterConfig::default(),
            StreamsConfig::default(),
        )
        .expect("a valid redis url");
        let mut config = SocketIoConfig::default();
        config.recovery = Some(RecoveryConfig::default());
        let server = suite::cluster::start_server_configured(
            TokioRuntime,
            name,
            Arc::new(factory),
            None,
            config,
        )
        .await;
        println!("listening {}", server.addr.port());
        suite::stdin_closed().await;
        server.io.close().await;
    });
}
