//! The official Admin UI in a real browser: headless Chromium (Debian's
//! `chromium`, or `CHROMIUM=/path`) driven by playwright-core
//! (`interop/admin-ui-browser.mjs`) opens the UI's own built files, served
//! by the observability example's server, logs in, finds the live sockets and
//! rooms, and disconnects a socket from the UI. Screenshots of each page
//! are kept in `target/tmp/admin-ui-screenshots/`. Fails, never skips,
//! when Chromium or Node is missing.

#[path = "support/browser.rs"]
mod browser;
#[path = "../observability/server.rs"]
mod server;

use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_admin_ui_sees_and_disconnects_sockets() {
    let handler = server::server("admin-ui-test-server")
        .expect("the Admin UI's files (npm ci --prefix interop installs them)");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, handler));
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    browser::run_script(
        "admin-ui-browser.mjs",
        &[
            format!("http://{addr}/"),
            browser::chromium().display().to_string(),
            shots.display().to_string(),
        ],
    )
    .await;
}
