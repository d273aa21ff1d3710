//! The chat example in a real browser: headless Chromium (Debian's
//! `chromium` package, or `CHROMIUM=/path`) driven by playwright-core
//! (`interop/chat-browser.mjs`) opens two pages on the Rust server, which
//! serves the page and the official socket.io browser client. Fails, never
//! skips, when Chromium or Node is missing.

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
    let bundle = std::fs::read(server::client_bundle_path())
        .expect("the socket.io browser client (npm ci --prefix interop installs it)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(
        listener,
        server::chat(bundle.into(), compress),
    ));

    let mut args = vec![
        format!("http://{addr}/"),
        browser::chromium().display().to_string(),
    ];
    args.extend(compress.then(|| "--compression".to_owned()));
    browser::run_script("chat-browser.mjs", &args).await;
}
