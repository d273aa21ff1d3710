//! Our server with the behaviour of `interop/server.mjs` ([`suite::mirror`])
//! as a process of its own, started like that script: for tests outside
//! Rust (the browser client's, `interop/wasm-client.mjs`) that kill the
//! server and start it again on the same port.
//!
//! Usage: `mirror-server <port> [tokio|smol]` (port 0: any free port).
//! Prints `listening <port>` once it accepts connections; exits when its
//! standard input closes. `SIO_PARSER=msgpack`: it speaks
//! socket.io-msgpack-parser's msgpack, as `server.mjs` does then.
//! `SIO_CORS=1`: pages of other origins may connect, with cookies, and the
//! handshake sets the `io` cookie (as `server.mjs` then).
//! `SIO_PING_TIMEOUT=<ms>`: another `pingTimeout` (as `server.mjs`).

use std::net::SocketAddr;

use runtime_smol::SmolRuntime;
use runtime_tokio::TokioRuntime;
use socketio::{Cookie, Cors, CorsOrigin};
use suite::TestRuntime;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (port, runtime) = match args.as_slice() {
        [port] => (port.parse::<u16>().ok(), "tokio"),
        [port, runtime] => (port.parse::<u16>().ok(), runtime.as_str()),
        _ => (None, ""),
    };
    let Some(port) = port else {
        eprintln!("usage: mirror-server <port> [tokio|smol]");
        std::process::exit(2);
    };
    match runtime {
        "tokio" => TokioRuntime::block_on(serve(TokioRuntime, port)),
        "smol" => SmolRuntime::block_on(serve(SmolRuntime, port)),
        other => {
            eprintln!("mirror-server: unknown runtime {other:?} (tokio or smol)");
            std::process::exit(2);
        }
    }
}

async fn serve<R: TestRuntime>(rt: R, port: u16) {
    let msgpack = std::env::var("SIO_PARSER").is_ok_and(|parser| parser == "msgpack");
    let cors = std::env::var("SIO_CORS").is_ok_and(|cors| cors == "1");
    let ping_timeout = std::env::var("SIO_PING_TIMEOUT")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(std::time::Duration::from_millis);
    let io = suite::mirror::app(rt, |config| {
        if msgpack {
            config.connection.parser = socketio::SharedParser::new(socketio::MsgpackParser);
        }
        if let Some(ping_timeout) = ping_timeout {
            config.engine.protocol.ping_timeout = ping_timeout;
        }
        if cors {
            config.engine.cors = Some(Cors::new(CorsOrigin::Reflect).with_credentials());
            config.engine.cookie = Some(Cookie::default());
        }
    });
    let (addr, _accepting) = rt
        .serve_at(SocketAddr::from(([127, 0, 0, 1], port)), io)
        .await;
    println!("listening {}", addr.port());
    // Exits with its parent: when standard input closes.
    suite::stdin_closed().await;
}
