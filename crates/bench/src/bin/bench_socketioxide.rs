//! socketioxide (latest from crates.io) serving the benchmark events the way
//! its documentation writes event handlers: `Data<Value>` in, `emit` out.
//!
//! `bench-socketioxide --port PORT`; prints `listening PORT`, exits when its
//! standard input closes.

use clap::Parser;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;

#[derive(Parser)]
#[command(about = "The benchmark server, on socketioxide")]
struct Options {
    /// The port to listen on, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = Options::parse();
    bench::exit_when_stdin_closes();
    let (service, io) = SocketIo::new_svc();
    let everyone = io.clone();
    // The handlers are registered before the connect handler returns its
    // future, not inside it: socketioxide 0.18 sends the CONNECT packet and
    // then spawns that future, so an event the client emits as soon as it
    // is connected can arrive before an `async` body has run its `on` calls,
    // and is dropped (seen in CI: the idle scenario's single echo lost).
    io.ns("/", move |socket: SocketRef| {
        socket.on("echo", async |socket: SocketRef, Data::<Value>(value)| {
            let _ = socket.emit("echo", &value);
        });
        socket.on("echo_ack", async |Data::<Value>(value), ack: AckSender| {
            let _ = ack.send(&value);
        });
        socket.on("broadcast", async move |Data::<Value>(value)| {
            let _ = everyone.emit("broadcast", &value).await;
        });
        async {}
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    bench::announce(listener.local_addr()?.port());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = connection.await;
        });
    }
}
