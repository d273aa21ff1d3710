//! The classic Socket.IO chat: pick a nickname, talk to everyone, see who is
//! typing and who comes and goes. The page is served by this Rust server,
//! twice: at `/` with the official socket.io browser client, and at
//! `/wasm/` with our Rust client compiled to WebAssembly
//! (`examples/chat-wasm`). People on either page chat together.
//!
//! Run it with `scripts/demo` (it installs the browser client from npm,
//! builds the Rust one, then runs `cargo run -p examples --example chat`)
//! and open <http://127.0.0.1:3000/> and <http://127.0.0.1:3000/wasm/>.
//! Set `CHAT_ADDR` to listen elsewhere.
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
    let mut chat = server::chat(bundle, true);
    match server::WasmClient::load(&server::wasm_client_path()) {
        Ok(client) => chat = chat.with_wasm(client),
        Err(error) => eprintln!(
            "chat: the Rust client is not built at {} ({error}); /wasm/ says how to build it",
            server::wasm_client_path().display()
        ),
    }
    println!("chat: open http://{addr}/ (JavaScript client) or http://{addr}/wasm/ (Rust client) in a browser (Ctrl-C to stop)");
    if let Err(error) = runtime_tokio::listen(addr.as_str(), chat).await {
        eprintln!("chat: {error}");
        std::process::exit(1);
    }
}
