//! Our client under load: `clients` Rust clients (this project's
//! `socketio::client`, over WebSocket) each keep `in_flight` `echo` round
//! trips going against a server that echoes (`bench-server`, socketioxide's
//! or Node's bench server), for `seconds`; prints the rate and this
//! process's CPU time per echo. The client's counterpart of `bench load`,
//! for changes to the client's driver.
//!
//! `bench-client --runtime tokio|smol --url http://127.0.0.1:PORT`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::probe::Probe;
use clap::{Parser, ValueEnum};
use socketio::client::{ClientOptions, Transports};
use socketio::{ClientRuntime, Data};

#[derive(Clone, Copy, ValueEnum)]
enum RuntimeChoice {
    Tokio,
    Smol,
}

#[derive(Parser)]
#[command(about = "Loads a Socket.IO echo server with this project's Rust client")]
struct Options {
    /// The runtime the clients run on.
    #[arg(long, value_enum, default_value = "tokio")]
    runtime: RuntimeChoice,
    /// The server's URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// How many clients.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Echoes each client keeps in flight.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// How long to measure, after a one-second warm-up.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    match options.runtime {
        RuntimeChoice::Tokio => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run(runtime_tokio::TokioRuntime, &options))
        }
        RuntimeChoice::Smol => smol::block_on(run(runtime_smol::SmolRuntime, &options)),
    }
}

async fn run<R: ClientRuntime>(
    runtime: R,
    options: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let echoes = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    for _ in 0..options.clients {
        let socket = socketio::client::io(
            runtime.clone(),
            &options.url,
            ClientOptions::default().transports(Transports::WEBSOCKET),
        )?;
        let counted = echoes.clone();
        // Each echo that comes back is sent again: `in_flight` stay going.
        socket.on("echo", move |socket, Data(n): Data<u64>, _| {
            counted.fetch_add(1, Ordering::Relaxed);
            let _ = socket.emit("echo", &n);
            async {}
        });
        socket.connect().await?;
        sockets.push(socket);
    }
    for socket in &sockets {
        for n in 0..options.in_flight as u64 {
            socket.emit("echo", &n)?;
        }
    }
    let probe = Probe::of(std::process::id());
    let sleep = |d: Duration| runtime.sleep_until(Instant::now() + d);
    sleep(Duration::from_secs(1)).await;
    let (start, cpu, count) = (
        Instant::now(),
        probe.sample()?,
        echoes.load(Ordering::Relaxed),
    );
    sleep(Duration::from_secs(options.seconds)).await;
    let elapsed = start.elapsed();
    let cpu = probe.sample()?.cpu - cpu.cpu;
    let count = echoes.load(Ordering::Relaxed) - count;
    for socket in &sockets {
        socket.disconnect();
    }
    println!(
        "rate: {:.0}/s, client CPU per echo: {:.2} µs",
        count as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / count.max(1) as f64
    );
    Ok(())
}
