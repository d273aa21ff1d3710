//! A Socket.IO server with metrics for Prometheus.
//!
//! ```text
//! cargo run -p examples --example metrics
//! curl -s http://127.0.0.1:3000/metrics | grep socketio_
//! ```
//!
//! Connect clients to `http://127.0.0.1:3000` and emit `echo`: the
//! counters of `/metrics` follow within a second. A Prometheus scrape
//! job points at the same URL.

mod server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let server = server::server();
    println!("Socket.IO on http://127.0.0.1:3000, metrics at http://127.0.0.1:3000/metrics");
    runtime_tokio::listen("127.0.0.1:3000", server).await
}
