//! The chat example in a real browser: headless Chromium (Debian's
//! `chromium` package, or `CHROMIUM=/path`) driven by playwright-core
//! (`interop/chat-browser.mjs`) opens two pages on the Rust server, which
//! serves the page and the official socket.io browser client, and the same
//! page with our Rust client compiled to WebAssembly (`examples/chat-wasm`).
//! Fails, never skips, when Chromium, Node or wasm-bindgen-cli is missing.

#[path = "support/browser.rs"]
mod browser;
#[path = "../chat/server.rs"]
mod server;

use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_headless_chromium() {
    chat_in_chromium(false).await;
}

/// With permessage-deflate on: the script puts a byte-counting proxy
/// between Chromium and the server and checks that a big message crosses
/// it compressed over WebSocket (both ways) and long-polling (gzip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_chat_in_headless_chromium() {
    chat_in_chromium(true).await;
}

async fn chat_in_chromium(compress: bool) {
    run_chat(compress, None).await;
}

/// The demo's Rust client (`examples/chat-wasm`, our client compiled to
/// WebAssembly): Bob chats from `/wasm/` with Ann on the official
/// JavaScript client's page (`chat-browser.mjs --wasm`), with compression
/// on as in the demo. `scripts/build-wasm` builds the client first (it
/// needs wasm-bindgen-cli, which `scripts/test` installs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_chats_with_the_javascript_one_in_headless_chromium() {
    let out = server::wasm_client_path();
    let build = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/build-wasm");
    let built = std::process::Command::new(build)
        .arg("chat-wasm")
        .arg(&out)
        .status()
        .expect("scripts/build-wasm runs");
    assert!(built.success(), "scripts/build-wasm chat-wasm failed");
    let client = server::WasmClient::load(&out).expect("the bound Rust client");
    run_chat(true, Some(client)).await;
}

/// Serves the chat (with the Rust client's page when given) and runs
/// `chat-browser.mjs` against it.
async fn run_chat(compress: bool, wasm: Option<server::WasmClient>) {
    let bundle = std::fs::read(server::client_bundle_path())
        .expect("the socket.io browser client (npm ci --prefix interop installs it)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut chat = server::chat(bundle.into(), compress);
    let mut args = vec![
        format!("http://{addr}/"),
        browser::chromium().display().to_string(),
    ];
    args.extend(compress.then(|| "--compression".to_owned()));
    if let Some(client) = wasm {
        chat = chat.with_wasm(client);
        args.push("--wasm".to_owned());
    }
    tokio::spawn(runtime_tokio::serve(listener, chat));
    browser::run_script("chat-browser.mjs", &args).await;
}
