//! A Socket.IO server that the official Admin UI watches and drives.
//!
//! ```text
//! npm ci --prefix interop        # the UI's files come with @socket.io/admin-ui
//! cargo run -p examples --example admin-ui
//! ```
//!
//! Then open <http://127.0.0.1:3000/admin/>, give the server URL
//! `http://127.0.0.1:3000`, user `admin` and password `changeit`, and
//! connect clients to `http://127.0.0.1:3000` (with `auth: { name }` to
//! see a name in their data).

mod server;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let handler = server::server("example")?;
    println!("the Admin UI: http://127.0.0.1:3000/admin/ (admin / changeit)");
    runtime_tokio::listen("127.0.0.1:3000", handler).await
}
