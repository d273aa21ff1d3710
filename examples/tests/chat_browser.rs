//! The chat example in a real browser: headless Chromium (Debian's
//! `chromium` package, or `CHROMIUM=/path`) driven by playwright-core
//! (`interop/chat-browser.mjs`) opens two pages on the Rust server, which
//! serves the page and the official socket.io browser client. Fails, never
//! skips, when Chromium or Node is missing.

#[path = "../chat/server.rs"]
mod server;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::process::Command;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!("the browser test needs Chromium: install Debian's `chromium` (scripts/test does) or set CHROMIUM")
        })
}

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

    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop");
    let child = Command::new("node")
        .arg("chat-browser.mjs")
        .arg(format!("http://{addr}/"))
        .arg(chromium())
        .args(compress.then_some("--compression"))
        .current_dir(interop)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the browser test needs Node.js on PATH");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the browser test did not finish in 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
