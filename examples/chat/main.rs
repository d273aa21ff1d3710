//! The classic Socket.IO chat: pick a nickname, talk to everyone, see who is
//! typing and who comes and goes. The page is served by this Rust server and
//! uses the official socket.io browser client.
//!
//! Run it with `scripts/demo` (it installs the browser client from npm, then
//! runs `cargo run -p examples --example chat`) and open
//! <http://127.0.0.1:3000/>. Set `CHAT_ADDR` to listen elsewhere.
//! Messages of 1 KiB and more cross the wire compressed.

mod server;

use bytes::Bytes;

#[tokio::main]
async fn main() {
    let bundle = match std::fs::read(server::client_bundle_path()) {
        Ok(bundle) => Bytes::from(bundle),
        Err(error) => {
            eprintln!(
                "chat: cannot read the socket.io browser client at {} ({error}); run scripts/demo, which installs it",
                server::client_bundle_path().display()
            );
            std::process::exit(1);
        }
    };
    let addr = std::env::var("CHAT_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    println!("chat: open http://{addr}/ in a browser (Ctrl-C to stop)");
    if let Err(error) = runtime_tokio::listen(addr.as_str(), server::chat(bundle, true)).await {
        eprintln!("chat: {error}");
        std::process::exit(1);
    }
}
