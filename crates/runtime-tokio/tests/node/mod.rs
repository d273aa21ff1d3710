#![allow(dead_code)] // each test binary uses part of it

//! Runs the Node scripts of `interop/` (the official JavaScript packages)
//! for the interop tests: a script prints `ok` and exits 0 when its checks
//! hold, otherwise `FAIL <why>`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The `interop/` folder, with its npm packages installed.
pub fn interop_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "the interop tests need the npm packages: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    dir
}

/// Runs `node <script> <args…>` in `interop/` for at most 20 s; `what`
/// names the run in the error.
pub async fn run_script(script: &str, args: &[String], what: &str) -> Result<(), String> {
    let child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start node (the interop tests need Node.js on PATH): {e}"))?;
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .map_err(|_| format!("{what}: node did not finish"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.trim() == "ok" {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The official socket.io server of `interop/server.mjs`, running until
/// dropped (killed with the test).
pub struct NodeServer {
    child: tokio::process::Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

impl NodeServer {
    /// Starts the server on `port` (0: any free port) and waits until it
    /// listens.
    pub async fn start(port: u16) -> NodeServer {
        NodeServer::start_with(port, &[]).await
    }

    /// [`NodeServer::start`] with more arguments for `server.mjs`.
    pub async fn start_with(port: u16, args: &[String]) -> NodeServer {
        use tokio::io::AsyncBufReadExt;
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(port.to_string())
            .args(args)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start node (the interop tests need Node.js on PATH)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the node server did not start within 20 s")
            .expect("reading the node server's output")
            .expect("the node server exited before listening");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected output from the node server: {line}"));
        NodeServer { child, port }
    }

    /// The server's URL for the main namespace.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}
