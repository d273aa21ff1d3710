//! The soak's server ([`suite::soak::server`]) as a process of its own, so
//! that the soak measures its memory and CPU apart from the clients'.
//!
//! Usage: `soak-server <tokio|smol> <ping-interval-ms> <ping-timeout-ms>
//! <tick-ms>`. Prints `listening <port>` once it accepts connections on
//! 127.0.0.1; exits when its standard input closes.

use std::io::BufRead;
use std::net::SocketAddr;

use suite::soak::{server, ServerSettings};
use suite::TestRuntime;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = args.get(1..).and_then(ServerSettings::from_args);
    match (args.first().map(String::as_str), settings) {
        (Some("tokio"), Some(settings)) => {
            runtime_tokio::TokioRuntime::block_on(serve(runtime_tokio::TokioRuntime, settings))
        }
        (Some("smol"), Some(settings)) => {
            runtime_smol::SmolRuntime::block_on(serve(runtime_smol::SmolRuntime, settings))
        }
        _ => {
            eprintln!(
                "usage: soak-server <tokio|smol> <ping-interval-ms> <ping-timeout-ms> <tick-ms>"
            );
            std::process::exit(2);
        }
    }
}

async fn serve<R: TestRuntime>(rt: R, settings: ServerSettings) {
    let io = server::app(rt, settings);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, _listening) = rt.serve_at(any, io.clone()).await;
    println!("listening {}", addr.port());
    smol::unblock(|| {
        let mut line = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut line).is_ok_and(|read| read > 0) {
            line.clear();
        }
    })
    .await;
    io.close().await;
}
