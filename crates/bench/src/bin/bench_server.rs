//! Our server for the benchmarks: `echo`, `echo_ack` and `broadcast` on `/`
//! (see `crates/bench/README.md`), on tokio or smol.
//!
//! `bench-server --runtime tokio|smol --port PORT [--deflate | --deflate-lean]`; prints `listening PORT`
//! once it accepts connections, and exits when its standard input closes.

use clap::{Parser, ValueEnum};
use socketio::extract::Ack;
use socketio::{
    NamespaceRef, Payload, PerMessageDeflate, Runtime, SocketIo, SocketIoConfig, SocketRef,
};

#[derive(Clone, Copy, ValueEnum)]
enum RuntimeChoice {
    Tokio,
    Smol,
}

#[derive(Parser)]
#[command(about = "The benchmark server, on this project's socketio crate")]
struct Options {
    /// The runtime to serve on.
    #[arg(long, value_enum, default_value = "tokio")]
    runtime: RuntimeChoice,
    /// The port to listen on, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// permessage-deflate on, threshold 0 (every message compressed).
    #[arg(long)]
    deflate: bool,
    /// The same without context takeover either way.
    #[arg(long)]
    deflate_lean: bool,
    /// Metrics on: a Prometheus recorder installed and the server's stats
    /// published to it every second (`socketio-metrics`).
    #[arg(long)]
    metrics: bool,
}

/// The three benchmark events, written as a user would.
fn app<R: Runtime>(runtime: R, options: &Options) -> SocketIo<R> {
    let mut config = SocketIoConfig::default();
    let deflate = PerMessageDeflate::default().threshold(0);
    if options.deflate_lean {
        config.engine.per_message_deflate = Some(deflate.context_takeover(false));
    } else if options.deflate {
        config.engine.per_message_deflate = Some(deflate);
    }
    let io = SocketIo::new(runtime, config);
    if options.metrics {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        metrics::set_global_recorder(recorder).expect("one recorder");
        socketio_metrics::Metrics::new().install(&io);
    }
    let everyone: NamespaceRef = io.of("/");
    io.on_connection("/", move |socket| {
        let everyone = everyone.clone();
        async move {
            socket.on("echo", |socket: SocketRef, payload: Payload| async move {
                let _ = socket.emit_payload("echo", payload).await;
            });
            socket.on("echo_ack", |payload: Payload, ack: Ack| async move {
                let _ = ack.send_payload(payload).await;
            });
            socket.on("broadcast", move |payload: Payload| {
                let everyone = everyone.clone();
                async move {
                    let _ = everyone
                        .broadcast()
                        .emit_payload("broadcast", payload)
                        .await;
                }
            });
        }
    });
    io
}

fn main() -> std::io::Result<()> {
    let options = Options::parse();
    bench::exit_when_stdin_closes();
    match options.runtime {
        RuntimeChoice::Tokio => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(async {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
                bench::announce(listener.local_addr()?.port());
                runtime_tokio::serve(listener, app(runtime_tokio::TokioRuntime, &options)).await
            }),
        RuntimeChoice::Smol => smol::block_on(async {
            let listener = smol::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
            bench::announce(listener.local_addr()?.port());
            runtime_smol::serve(listener, app(runtime_smol::SmolRuntime, &options)).await
        }),
    }
}
