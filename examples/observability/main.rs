//! A Socket.IO server you can see into: the official Admin UI, metrics for
//! Prometheus, and logs that name slow handlers.
//!
//! ```text
//! npm ci --prefix interop        # the UI's files come with @socket.io/admin-ui
//! cargo run -p examples --example observability
//! ```
//!
//! - <http://127.0.0.1:3000/admin/>: the Admin UI; give it the server URL
//!   `http://127.0.0.1:3000`, user `admin`, password `changeit`;
//! - <http://127.0.0.1:3000/metrics>: the metrics (`curl -s … | grep socketio_`);
//! - clients connect to `http://127.0.0.1:3000` (with `auth: { name }` to
//!   see a name in their data); `echo` answers, `slow` takes a second and
//!   is logged as a slow handler.

mod server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let server = server::server("example")?;
    println!("Socket.IO on http://127.0.0.1:3000");
    println!("the Admin UI at http://127.0.0.1:3000/admin/ (admin / changeit)");
    println!("metrics at http://127.0.0.1:3000/metrics");
    runtime_tokio::listen("127.0.0.1:3000", server).await
}
