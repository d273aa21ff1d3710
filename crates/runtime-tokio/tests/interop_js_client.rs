//! Our Socket.IO server against the official JavaScript client
//! (`socket.io-client` from npm, pinned in `interop/package-lock.json`,
//! installed by `scripts/test`). Each scenario runs in Node over
//! WebSocket only, long-polling only, and polling upgraded to WebSocket.
//! Without Node, or without the npm packages, these tests fail: they never
//! skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use runtime_tokio::TokioRuntime;
use socketio::{Payload, SocketIo, SocketIoConfig};
use tokio::net::TcpListener;
use tokio::process::Command;

fn interop_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../interop");
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "the interop tests need the npm packages: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    dir
}

fn welcome(socket: &socketio::SocketRef) -> Payload {
    let nsp = serde_json::to_string(socket.namespace()).unwrap();
    Payload::from_raw(
        format!(r#"[{{"nsp":{nsp},"auth":{}}}]"#, socket.auth()).into(),
        Vec::new(),
    )
}

async fn start_server() -> SocketAddr {
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("echo", |socket, payload, _| async move {
            socket.emit_payload("echo", payload).await.unwrap();
        });
        socket.on("sum", |_, payload, ack| async move {
            let (a, b): (i64, i64) = payload.parse().unwrap();
            ack.unwrap()
                .send(Payload::single(&(a + b)).unwrap())
                .await
                .unwrap();
        });
        socket.on("echo-ack", |_, payload, ack| async move {
            ack.unwrap().send(payload).await.unwrap();
        });
        socket
            .emit_payload("welcome", welcome(&socket))
            .await
            .unwrap();
    });
    io.on_connection("/chat", |socket| async move {
        socket
            .emit_payload("welcome", welcome(&socket))
            .await
            .unwrap();
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, io));
    addr
}

async fn run_scenario(addr: SocketAddr, scenario: &str, transport: &str) -> Result<(), String> {
    let child = Command::new("node")
        .arg("client.mjs")
        .arg(format!("http://{addr}"))
        .arg(scenario)
        .arg(transport)
        .current_dir(interop_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start node (the interop tests need Node.js on PATH): {e}"))?;
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .map_err(|_| format!("{scenario} over {transport}: node did not finish"))?
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && stdout.trim() == "ok" {
        Ok(())
    } else {
        Err(format!(
            "{scenario} over {transport}: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_js_client_scenarios() {
    let addr = start_server().await;
    let mut failures = Vec::new();
    for scenario in ["echo", "ack", "namespaces", "invalidNamespace"] {
        for transport in ["websocket", "polling", "upgrade"] {
            if let Err(failure) = run_scenario(addr, scenario, transport).await {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
