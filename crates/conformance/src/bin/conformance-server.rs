//! The server the official protocol test suites run against
//! (`../shared/conformance/README.md`): 127.0.0.1:3000, a raw Engine.IO echo
//! at `/engine.io/` and Socket.IO at `/socket.io/` (namespace `/` emits
//! `auth`, echoes `message` as `message-back`, acks `message-with-ack`;
//! `/custom` emits `auth`; other namespaces are refused), pingInterval 300 ms,
//! pingTimeout 200 ms, maxPayload 1,000,000, connectTimeout 1 s, CORS `*`.
//!
//! Run: `cargo run --release --bin conformance-server -- --runtime tokio`
//! (or `--runtime smol`). With `--allow-eio3` it also serves Engine.IO v3
//! clients (Node's `allowEIO3`), for the v3 suite (`scripts/conformance-eio3`).

use std::process::ExitCode;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use runtime_smol::SmolRuntime;
use runtime_tokio::TokioRuntime;
use socketio::engine::{Cors, EngineConfig, EngineServer, HttpReply};
use socketio::extract::Ack;
use socketio::server::SocketIoConfig;
use socketio::{HttpHandler, Payload, Runtime, SocketIo, SocketRef};

fn engine_config(allow_eio3: bool) -> EngineConfig {
    let mut config = EngineConfig::default();
    config.protocol.allow_eio3 = allow_eio3;
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    config.protocol.max_payload = 1_000_000;
    config.path = "/engine.io/".into();
    config.cors = Some(Cors::any());
    config
}

fn socketio_config(allow_eio3: bool) -> SocketIoConfig {
    let mut config = SocketIoConfig::default();
    config.engine.protocol = engine_config(allow_eio3).protocol;
    config.engine.cors = Some(Cors::any());
    config.connection.connect_timeout = Duration::from_millis(1_000);
    config
}

/// The raw Engine.IO echo at `/engine.io/`.
fn engine_echo<R: Runtime>(runtime: R, allow_eio3: bool) -> EngineServer<R> {
    let spawner = runtime.clone();
    EngineServer::new(runtime, engine_config(allow_eio3), move |mut socket| {
        // Echo every message back unchanged: text stays text, binary binary.
        spawner.spawn(Box::pin(async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }));
    })
}

async fn emit_auth(socket: &SocketRef) {
    let auth = Payload::from_raw(format!("[{}]", socket.auth()).into(), Vec::new());
    let _ = socket.emit_payload("auth", auth).await;
}

/// Socket.IO at `/socket.io/`.
fn socketio<R: Runtime>(runtime: R, allow_eio3: bool) -> SocketIo<R> {
    let io = SocketIo::new(runtime, socketio_config(allow_eio3));
    io.on_connection("/", |socket| async move {
        emit_auth(&socket).await;
        socket.on(
            "message",
            |socket: SocketRef, payload: Payload| async move {
                let _ = socket.emit_payload("message-back", payload).await;
            },
        );
        socket.on(
            "message-with-ack",
            |payload: Payload, ack: Ack| async move {
                let _ = ack.send_payload(payload).await;
            },
        );
    });
    io.on_connection("/custom", |socket| async move {
        emit_auth(&socket).await;
    });
    io
}

/// Both servers on one port, by path.
#[derive(Clone)]
struct Both<R: Runtime> {
    engine: EngineServer<R>,
    socketio: SocketIo<R>,
}

impl<R: Runtime> HttpHandler for Both<R> {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        if self.engine.matches(&request) {
            self.engine.call(request)
        } else {
            self.socketio.call(request)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match args.iter().position(|a| a == "--runtime") {
        Some(i) => args.get(i + 1).map(String::as_str).unwrap_or(""),
        None => "tokio",
    };
    let allow_eio3 = args.iter().any(|a| a == "--allow-eio3");
    match runtime {
        "tokio" => run_tokio(allow_eio3),
        "smol" => run_smol(allow_eio3),
        other => {
            eprintln!("conformance-server: unknown runtime {other:?} (supported: tokio, smol)");
            ExitCode::from(2)
        }
    }
}

fn run_tokio(allow_eio3: bool) -> ExitCode {
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("conformance-server: cannot start tokio: {error}");
            return ExitCode::FAILURE;
        }
    };
    tokio.block_on(async {
        let both = Both {
            engine: engine_echo(TokioRuntime, allow_eio3),
            socketio: socketio(TokioRuntime, allow_eio3),
        };
        eprintln!("conformance-server: listening on 127.0.0.1:3000 (tokio)");
        match runtime_tokio::listen("127.0.0.1:3000", both).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("conformance-server: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

fn run_smol(allow_eio3: bool) -> ExitCode {
    smol::block_on(async {
        let both = Both {
            engine: engine_echo(SmolRuntime, allow_eio3),
            socketio: socketio(SmolRuntime, allow_eio3),
        };
        eprintln!("conformance-server: listening on 127.0.0.1:3000 (smol)");
        match runtime_smol::listen("127.0.0.1:3000", both).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("conformance-server: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
