//! The benchmark harness: a load generator that speaks Engine.IO and
//! Socket.IO over WebSocket and long-polling and checks every reply, the
//! measures taken of a server process (CPU time, resident memory), and the
//! runner that alternates servers over rounds and reports ratios.
//!
//! `scripts/bench` runs it all; `docs/benchmarks.md` explains the scenarios
//! and gives the figures.

use std::io::Read;

/// Prints the line the runner waits for before it starts the load.
pub fn announce(port: u16) {
    println!("listening {port}");
}

/// Ends the process when its standard input closes, so a server started by
/// the runner never outlives it.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

pub mod client;
pub mod compression;
mod polling;
pub mod probe;
pub mod report;
pub mod runner;
pub mod scenario;

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A socket or process error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A WebSocket error.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// An HTTP error (long-polling).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The server answered something the scenario did not expect.
    #[error("{0}")]
    Protocol(String),
}
