//! The official JavaScript packages of `interop/` (npm, pinned), for the
//! interop suites: scripts that print a verdict, and the official server.
//! Runtime-neutral: processes are std's, waited for on `smol::unblock`'s
//! threads, which any executor can await.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `interop/` folder, with its npm packages installed.
pub fn interop_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir()
            && dir.join("node_modules/socket.io").is_dir(),
        "the interop tests need the npm packages: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    dir
}

/// Runs `node <script> <args…>` in `interop/` for at most 20 s; the script
/// prints `ok` and exits 0 when its checks hold, otherwise `FAIL <why>`.
/// `what` names the run in the error.
pub async fn run_script(script: &str, args: &[String], what: &str) -> Result<(), String> {
    run_script_env(script, args, &[], what).await
}

/// [`run_script`] with environment variables for the script (such as
/// `SIO_PARSER=msgpack`, which makes the official packages speak
/// socket.io-msgpack-parser; see `interop/parser.mjs`).
pub async fn run_script_env(
    script: &str,
    args: &[String],
    env: &[(&str, &str)],
    what: &str,
) -> Result<(), String> {
    let stdout = script_output_env(script, args, env)
        .await
        .map_err(|why| format!("{what}: {why}"))?;
    match stdout.trim() {
        "ok" => Ok(()),
        other => Err(format!("{what}: {other}")),
    }
}

/// Runs `node <script> <args…>` in `interop/` for at most 20 s and
/// returns what it printed, when it exits 0 (a script that reports rather
/// than checks: its output is compared by the test).
pub async fn script_output(script: &str, args: &[String]) -> Result<String, String> {
    script_output_env(script, args, &[]).await
}

/// [`script_output`] with environment variables for the script (see
/// [`run_script_env`]).
pub async fn script_output_env(
    script: &str,
    args: &[String],
    env: &[(&str, &str)],
) -> Result<String, String> {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start node (the interop tests need Node.js on PATH): {e}"))?;
    let script = script.to_owned();
    smol::unblock(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{script}: node did not finish"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{}{}",
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    })
    .await
}

/// The official socket.io server of `interop/server.mjs`, killed when
/// dropped.
pub struct NodeServer {
    child: Child,
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
        let mut all = vec![port.to_string()];
        all.extend_from_slice(args);
        NodeServer::script("server.mjs", &all).await
    }

    /// Starts `node <script> <args…>` in `interop/`: a server that prints
    /// `listening PORT` once it listens and exits when its stdin closes.
    pub async fn script(script: &str, args: &[String]) -> NodeServer {
        NodeServer::script_env(script, args, &[]).await
    }

    /// [`NodeServer::script`] with environment variables for the script
    /// (see [`run_script_env`]).
    pub async fn script_env(script: &str, args: &[String], env: &[(&str, &str)]) -> NodeServer {
        let mut command = Command::new("node");
        command
            .arg(script)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(interop_dir());
        NodeServer::process(command).await
    }

    /// Starts `command`: a server (Node's, or any other process that keeps
    /// the same convention) that prints `listening PORT` once it listens
    /// and exits when its stdin closes.
    pub async fn process(mut command: Command) -> NodeServer {
        let mut child = command
            // The server exits when its stdin closes: with this process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the server (the interop tests need Node.js on PATH)");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = crate::within(
            "the node server to listen",
            smol::unblock(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .expect("reading the node server's output");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected output from the node server: {line:?}"));
        NodeServer { child, port }
    }

    /// The server's URL for the main namespace.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (`SIGKILL`) and waits until it is gone (its port
    /// is free).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
