//! The chat demo's Rust client (`examples/chat-wasm`, our client compiled
//! to WebAssembly) in headless Chromium: Bob chats from `/wasm/` with Ann
//! on the official JavaScript client's page (`interop/chat-browser.mjs
//! --wasm`), with compression on as in the demo. `scripts/build-wasm`
//! builds the client first (it needs wasm-bindgen-cli, which
//! `scripts/test` installs). Fails, never skips.

#[path = "support/browser.rs"]
mod browser;
#[path = "../chat/server.rs"]
mod server;

use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_chats_with_the_javascript_one_in_headless_chromium() {
    let out = server::wasm_client_path();
    let built = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/build-wasm"
    ))
    .arg("chat-wasm")
    .arg(&out)
    .status()
    .expect("scripts/build-wasm runs");
    assert!(built.success(), "scripts/build-wasm chat-wasm failed");
    let client = server::WasmClient::load(&out).expect("the bound Rust client");
    let bundle = std::fs::read(server::client_bundle_path())
        .expect("the socket.io browser client (npm ci --prefix interop installs it)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(
        listener,
        server::chat(bundle.into(), true).with_wasm(client),
    ));
    let args = vec![
        format!("http://{addr}/"),
        browser::chromium().display().to_string(),
        "--compression".to_owned(),
        "--wasm".to_owned(),
    ];
    browser::run_script("chat-browser.mjs", &args).await;
}
