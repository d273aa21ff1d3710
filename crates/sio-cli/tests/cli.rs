//! Runs the `sio` binary against this workspace's own Socket.IO server,
//! started in-process on a free port for each test.
//!
//! Every run is bounded (20 s at most) and the tests wait on the process's
//! exit or output, never on a sleep.

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use runtime_tokio::socketio::{
    Args, Binary, ConnectError, Data, Payload, SocketIo, SocketIoConfig, SocketRef,
};
use runtime_tokio::TokioRuntime;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

/// The longest any run of `sio` may take.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Starts a server whose namespaces each serve one test:
///
/// - `/`: `sum` acks the sum of its arguments, `size` acks the length of its
///   binary argument, `info` acks the handshake's transport, `x-team`
///   header and `room` query parameter, `tell` emits `told` back with the
///   same arguments, `bye` disconnects the socket, `silent` never acks;
/// - `/feed`: emits `tick` 0 to 4 on connection;
/// - `/binary`: emits `file` with a name and bytes on connection;
/// - `/secure`: refuses sockets without `{"token":"s3cret"}`; `whoami`
///   acks the auth it got;
/// - `/quiet`: does nothing.
async fn server_with(config: SocketIoConfig) -> SocketAddr {
    let io = SocketIo::new(TokioRuntime, config);
    io.on_connection("/", |socket| async move { main_namespace(&socket) });
    io.on_connection("/feed", |socket| async move {
        for i in 0..5 {
            socket.emit("tick", &i).await.unwrap();
        }
    });
    io.on_connection("/binary", |socket| async move {
        let payload = Payload::args(&("report.bin", Binary::from(vec![0u8, 1, 2, 255]))).unwrap();
        socket.emit_payload("file", payload).await.unwrap();
    });
    let secure = io.of("/secure");
    secure.use_middleware(|request| async move {
        let auth: Value = request.auth().unwrap_or_default();
        if auth["token"] == "s3cret" {
            Ok(())
        } else {
            Err(ConnectError::new("invalid token").with_data(json!({ "code": 401 })))
        }
    });
    secure.on_connection(|socket| async move {
        socket.on(
            "whoami",
            |socket: runtime_tokio::socketio::SocketRef,
             ack: Option<runtime_tokio::socketio::AckSender>| async move {
                let auth: Value = serde_json::from_str(socket.auth()).unwrap();
                ack.unwrap().send(&auth).await.unwrap();
            },
        );
    });
    io.on_connection("/quiet", |_| async move {});
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, io));
    addr
}

fn main_namespace(socket: &SocketRef) {
    socket.on("sum", |Args(numbers): Args<Vec<i64>>, ack: Option<runtime_tokio::socketio::AckSender>| async move {
        let sum: i64 = numbers.iter().sum();
        ack.unwrap().send(&sum).await.unwrap();
    });
    socket.on(
        "size",
        |Data(file): Data<Binary>, ack: Option<runtime_tokio::socketio::AckSender>| async move {
            ack.unwrap().send(&file.len()).await.unwrap();
        },
    );
    socket.on(
        "info",
        |socket: runtime_tokio::socketio::SocketRef,
         ack: Option<runtime_tokio::socketio::AckSender>| async move {
            let handshake = socket.handshake();
            let info = (
                handshake.query_param("transport"),
                handshake.header("x-team").map(str::to_owned),
                handshake.query_param("room"),
            );
            ack.unwrap()
                .send_payload(Payload::args(&info).unwrap())
                .await
                .unwrap();
        },
    );
    socket.on(
        "tell",
        |socket: runtime_tokio::socketio::SocketRef, payload: Payload| async move {
            socket.emit_payload("told", payload).await.unwrap();
        },
    );
    socket.on(
        "bye",
        |socket: runtime_tokio::socketio::SocketRef| async move {
            socket.disconnect().await.unwrap();
        },
    );
    socket.on("silent", || async move {});
}

async fn server() -> SocketAddr {
    server_with(SocketIoConfig::default()).await
}

/// What a run of `sio` left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    /// Each stdout line, parsed: every line must be JSON.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    }

    #[track_caller]
    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sio"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `sio` to its exit (killed if it takes longer than [`RUN_LIMIT`]).
async fn sio(args: &[&str]) -> Run {
    let child = command(args).spawn().unwrap();
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sio {args:?} did not exit within {RUN_LIMIT:?}"))
        .unwrap();
    Run::from(output)
}

#[tokio::test]
async fn an_emit_with_args_and_ack_prints_the_ack() {
    let url = format!("http://{}/", server().await);
    let run = sio(&[
        &url, "-e", "sum", "-a", "1", "-a", "2", "--arg", "-4", "--ack",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(run.stdout, "{\"ack\":\"sum\",\"args\":[-1]}\n");
    assert!(run.stderr.contains("connected to / as "), "{}", run.stderr);
}

#[tokio::test]
async fn several_emits_are_acked_in_order() {
    let url = format!("http://{}/", server().await);
    let run = sio(&[
        &url, "-e", "sum", "-a", "20", "-a", "22", "-e", "sum", "-e", "sum", "-a", "7", "--ack",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(
        run.lines(),
        [
            json!({ "ack": "sum", "args": [42] }),
            json!({ "ack": "sum", "args": [0] }),
            json!({ "ack": "sum", "args": [7] }),
        ]
    );
}

#[tokio::test]
async fn count_prints_exactly_that_many_events_then_exits_0() {
    let url = format!("http://{}/feed", server().await);
    let run = sio(&[&url, "--count", "3"]).await;
    run.assert_code(0);
    assert_eq!(
        run.lines(),
        [
            json!({ "event": "tick", "args": [0] }),
            json!({ "event": "tick", "args": [1] }),
            json!({ "event": "tick", "args": [2] }),
        ]
    );
}

#[tokio::test]
async fn an_emit_without_ack_reaches_the_server() {
    let url = format!("http://{}/", server().await);
    let run = sio(&[
        &url,
        "-e",
        "tell",
        "-a",
        r#"{"text":"hi"}"#,
        "-a",
        "[1,null]",
        "-n",
        "1",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "{\"event\":\"told\",\"args\":[{\"text\":\"hi\"},[1,null]]}\n"
    );
}

#[tokio::test]
async fn binary_attachments_are_printed_as_base64() {
    let url = format!("http://{}/binary", server().await);
    let run = sio(&[&url, "-n", "1"]).await;
    run.assert_code(0);
    assert_eq!(
        run.stdout,
        "{\"event\":\"file\",\"args\":[\"report.bin\",{\"_binary\":\"AAEC/w==\"}]}\n"
    );
}

#[tokio::test]
async fn binary_arguments_are_sent_as_attachments() {
    let url = format!("http://{}/", server().await);
    // The server reads the argument as `Binary`: a plain JSON object would
    // not fit, and no ack would come.
    let run = sio(&[&url, "-e", "size", "-a", r#"{"_binary":"AQID"}"#, "--ack"]).await;
    run.assert_code(0);
    assert_eq!(run.lines(), [json!({ "ack": "size", "args": [3] })]);
}

#[tokio::test]
async fn every_transport_works_and_headers_and_query_reach_the_server() {
    let url = format!("http://{}/", server().await);
    // The transport the session was opened with: upgrade starts on polling.
    for (transport, opened_with) in [
        ("polling", "polling"),
        ("websocket", "websocket"),
        ("upgrade", "polling"),
    ] {
        let run = sio(&[
            &url,
            "--transport",
            transport,
            "-H",
            "X-Team: blue",
            "--query",
            "room=lobby",
            "-e",
            "info",
            "--ack",
        ])
        .await;
        run.assert_code(0);
        assert_eq!(
            run.lines(),
            [json!({ "ack": "info", "args": [opened_with, "blue", "lobby"] })],
            "--transport {transport}"
        );
    }
}

#[tokio::test]
async fn events_arrive_on_every_transport() {
    let url = format!("http://{}/feed", server().await);
    for transport in ["polling", "websocket", "upgrade"] {
        let run = sio(&[&url, "--transport", transport, "-n", "5"]).await;
        run.assert_code(0);
        assert_eq!(run.lines().len(), 5, "--transport {transport}");
    }
}

#[tokio::test]
async fn the_path_option_finds_a_server_elsewhere() {
    let mut config = SocketIoConfig::default();
    config.engine.path = "/custom/".into();
    let url = format!("http://{}/", server_with(config).await);
    let run = sio(&[&url, "--path", "/custom", "-e", "sum", "-a", "5", "--ack"]).await;
    run.assert_code(0);
    assert_eq!(run.lines(), [json!({ "ack": "sum", "args": [5] })]);
}

#[tokio::test]
async fn auth_reaches_the_server() {
    let url = format!("http://{}/secure", server().await);
    let run = sio(&[
        &url,
        "--auth",
        r#"{"token":"s3cret"}"#,
        "-e",
        "whoami",
        "--ack",
    ])
    .await;
    run.assert_code(0);
    assert_eq!(
        run.lines(),
        [json!({ "ack": "whoami", "args": [{ "token": "s3cret" }] })]
    );
}

#[tokio::test]
async fn a_refusal_exits_1_with_the_message_and_data_on_stderr() {
    let url = format!("http://{}/secure", server().await);
    for auth in [None, Some(r#"{"token":"wrong"}"#)] {
        let mut args = vec![url.as_str(), "-n", "1"];
        if let Some(auth) = auth {
            args.extend(["--auth", auth]);
        }
        let run = sio(&args).await;
        run.assert_code(1);
        assert!(run.stdout.is_empty());
        assert!(run.stderr.contains("invalid token"), "{}", run.stderr);
        assert!(run.stderr.contains(r#"{"code":401}"#), "{}", run.stderr);
    }
}

#[tokio::test]
async fn a_timeout_before_the_count_exits_3() {
    let url = format!("http://{}/quiet", server().await);
    let run = sio(&[&url, "-n", "1", "--timeout", "0.5"]).await;
    run.assert_code(3);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("timed out after 0 of 1 events"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_ack_that_does_not_come_exits_3() {
    let url = format!("http://{}/", server().await);
    let run = sio(&[&url, "-e", "silent", "--ack", "--ack-timeout", "0.3"]).await;
    run.assert_code(3);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("no ack for silent"), "{}", run.stderr);
}

#[tokio::test]
async fn listening_without_a_goal_ends_with_the_timeout_and_0() {
    let url = format!("http://{}/quiet", server().await);
    let run = sio(&[&url, "--timeout", "0.3"]).await;
    run.assert_code(0);
    assert!(run.stdout.is_empty());
}

#[tokio::test]
async fn a_server_disconnect_before_the_goal_exits_4() {
    let url = format!("http://{}/", server().await);
    for transport in ["polling", "websocket"] {
        let run = sio(&[&url, "--transport", transport, "-e", "bye", "-n", "1"]).await;
        run.assert_code(4);
        assert!(
            run.stderr.contains("io server disconnect"),
            "{}",
            run.stderr
        );
    }
    // Waiting for an ack the server will not send: still 4, not a timeout.
    let run = sio(&[&url, "-e", "bye", "--ack"]).await;
    run.assert_code(4);
}

#[tokio::test]
async fn bad_arguments_exit_2() {
    // Nothing is listening there: usage errors come first.
    for args in [
        &["http://127.0.0.1:9/", "-e", "x", "-a", "{not json"][..],
        &["http://127.0.0.1:9/", "-a", "1"],
        &["http://127.0.0.1:9/", "--auth", "[]"],
        &["http://127.0.0.1:9/", "-H", "no-colon"],
        &["http://127.0.0.1:9/", "-H", "bad name: x"],
        &["ftp://127.0.0.1:9/"],
        &["not a url"],
    ] {
        let run = sio(args).await;
        run.assert_code(2);
        assert!(run.stdout.is_empty());
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn nothing_listening_exits_1_fast() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/");
    let started = Instant::now();
    let run = sio(&[&url, "-n", "1", "--timeout", "15"]).await;
    run.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(run.stderr.contains("could not connect"), "{}", run.stderr);
    // --quiet keeps stderr empty, the status is the same.
    let run = sio(&[&url, "--quiet"]).await;
    run.assert_code(1);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_ends_a_listening_run_with_0() {
    let url = format!("http://{}/quiet", server().await);
    let mut child = command(&[&url]).spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    let stderr = child.stderr.take().unwrap();
    let run = async {
        // Interrupt once connected, as a user would.
        let mut lines = BufReader::new(stderr).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("connected to /quiet") {
                break;
            }
        }
        let killed = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(RUN_LIMIT, run).await.unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn with_reconnect_a_dead_server_is_retried_until_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/");
    let run = sio(&[&url, "--reconnect", "-n", "1", "--timeout", "1"]).await;
    run.assert_code(3);
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert!(
        run.stderr.contains("timed out connecting"),
        "{}",
        run.stderr
    );
}
