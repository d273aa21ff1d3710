//! The soak's server ([`suite::soak::server`]) as a process of its own, so
//! that the soak measures its memory and CPU apart from the clients', and
//! can kill it.
//!
//! Usage: `soak-server <tokio|smol> <ping-interval-ms> <ping-timeout-ms>
//! <tick-ms> [<redis-url> <classic|streams|streams-no-recovery>]`. Alone
//! it has connection state recovery on; with a Redis URL it is one server
//! of a cluster ([`suite::soak::Cluster`]). Prints
//! `listening <port>` once it accepts connections on 127.0.0.1; exits when
//! its standard input closes.

use socketio::{RecoveryConfig, SocketIoConfig};
use std::net::SocketAddr;
use suite::soak::{server, Cluster, ServerSettings};
use suite::TestRuntime;

fn usage() -> ! {
    eprintln!(
        "usage: soak-server <tokio|smol> <ping-interval-ms> <ping-timeout-ms> <tick-ms> \
         [<redis-url> <classic|streams|streams-no-recovery>]"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 && args.len() != 6 {
        usage();
    }
    let settings = ServerSettings::from_args(&args[1..4]).unwrap_or_else(|| usage());
    let config = match &args[4..] {
        [url, cluster] => {
            let cluster = Cluster::from_arg(cluster).unwrap_or_else(|| usage());
            cluster.config(url).unwrap_or_else(|error| {
                eprintln!("soak-server: {error}");
                std::process::exit(2);
            })
        }
        _ => {
            let mut config = SocketIoConfig::default();
            config.recovery = Some(RecoveryConfig::default());
            config
        }
    };
    match args[0].as_str() {
        "tokio" => runtime_tokio::TokioRuntime::block_on(serve(
            runtime_tokio::TokioRuntime,
            settings,
            config,
        )),
        "smol" => {
            runtime_smol::SmolRuntime::block_on(serve(runtime_smol::SmolRuntime, settings, config))
        }
        _ => usage(),
    }
}

async fn serve<R: TestRuntime>(rt: R, settings: ServerSettings, config: SocketIoConfig) {
    let (io, _ticker) = server::app(rt, settings, config);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, _listening) = rt.serve_at(any, io.clone()).await;
    println!("listening {}", addr.port());
    suite::stdin_closed().await;
    io.close().await;
}
