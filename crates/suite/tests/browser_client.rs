//! The Rust client in a real browser: `crates/suite-wasm` (the client's
//! scenarios, compiled to `wasm32-unknown-unknown` and bound with
//! `wasm-bindgen`, by `scripts/build-wasm`) runs in headless Chromium
//! (`interop/wasm-client.mjs`, playwright-core) over the browser's own
//! `fetch` and `WebSocket`, against the official Node server
//! (`interop/server.mjs`) and against ours with the same behaviour
//! (`mirror-server`, on tokio and on smol): events and acks both ways,
//! nested binary, namespaces on one connection, ack timeouts and retries,
//! connection state recovery after a network cut, reconnection after the
//! server restarts, and giving up on a server that never answers, each
//! over long-polling, WebSocket and the upgrade, with the JSON parser and
//! with msgpack; some of them again in a module worker.
//!
//! Fails, never skips, without Chromium, Node, the npm packages or
//! wasm-bindgen-cli (`scripts/test` installs them all).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the scenarios for the browser once per test run; returns the
/// folder of the bound module.
fn suite_module() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = workspace().join("target/wasm/pkg/suite-wasm");
        let status = Command::new(workspace().join("scripts/build-wasm"))
            .args(["suite-wasm"])
            .arg(&out)
            .status()
            .expect("scripts/build-wasm runs");
        assert!(status.success(), "scripts/build-wasm suite-wasm failed");
        out
    })
}

/// Debian's `chromium`, or `CHROMIUM=/path`; a test without it fails.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .expect("the browser test needs Chromium: install Debian's `chromium` (scripts/test does) or set CHROMIUM")
}

/// Runs every scenario against the server `command` starts (`{port}`
/// stands for its port), with the JSON parser or msgpack; at most 7.5
/// minutes (a run takes about 50 s alone, more beside other tests).
fn run_in_chromium(server: &[&str], parser: &str) {
    let module = suite_module();
    let mut child = Command::new("node")
        .env("SIO_PARSER", parser)
        .arg("wasm-client.mjs")
        .arg(module)
        .arg(chromium())
        .arg("--")
        .args(server)
        .current_dir(suite::node::interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the browser test needs Node.js on PATH");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(450) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "wasm-client.mjs against {server:?}: {stdout}{stderr}"
    );
}

const NODE: &[&str] = &["node", "server.mjs", "{port}"];
const OURS_TOKIO: &[&str] = &[env!("CARGO_BIN_EXE_mirror-server"), "{port}", "tokio"];
const OURS_SMOL: &[&str] = &[env!("CARGO_BIN_EXE_mirror-server"), "{port}", "smol"];

#[test]
fn wasm_client_with_node_server() {
    run_in_chromium(NODE, "json");
}

#[test]
fn wasm_client_with_own_server_on_tokio() {
    run_in_chromium(OURS_TOKIO, "json");
}

#[test]
fn wasm_client_with_own_server_on_smol() {
    run_in_chromium(OURS_SMOL, "json");
}

/// Every scenario again with socket.io-msgpack-parser on both sides.
#[test]
fn wasm_client_over_msgpack_with_node_server() {
    run_in_chromium(NODE, "msgpack");
}

#[test]
fn wasm_client_over_msgpack_with_own_server() {
    run_in_chromium(OURS_TOKIO, "msgpack");
}
