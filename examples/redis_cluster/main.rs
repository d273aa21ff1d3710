//! Two Socket.IO servers in one cluster through Redis (`adapter-redis`,
//! which speaks Node's `@socket.io/redis-adapter` format, so either server
//! could as well be a Node one).
//!
//! Run with a Redis on 127.0.0.1:6379 (`redis-server` in another terminal,
//! or Debian's `redis-server` package):
//! `cargo run -p examples --example redis-cluster [redis://127.0.0.1:6379]`.
//! A client of server B joins a room, server A broadcasts to it, fetches
//! B's sockets and asks B a server-side question.

mod cluster;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    for line in cluster::demo(&url).await? {
        println!("{line}");
    }
    Ok(())
}
