//! The server the official protocol test suites run against
//! (`../shared/conformance/README.md`): 127.0.0.1:3000, a raw Engine.IO echo
//! at `/engine.io/`, pingInterval 300 ms, pingTimeout 200 ms, maxPayload
//! 1,000,000, CORS `*`.
//!
//! Run: `cargo run --release --bin conformance-server -- --runtime tokio`.

use std::process::ExitCode;
use std::time::Duration;

use runtime_tokio::TokioRuntime;
use socketio::engine::{EngineConfig, EngineServer};

fn engine_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    config.protocol.max_payload = 1_000_000;
    config.path = "/engine.io/".into();
    config.cors_origin = Some("*".into());
    config
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match args.iter().position(|a| a == "--runtime") {
        Some(i) => args.get(i + 1).map(String::as_str).unwrap_or(""),
        None => "tokio",
    };
    match runtime {
        "tokio" => run_tokio(),
        other => {
            eprintln!(
                "conformance-server: unknown or unsupported runtime {other:?} (supported: tokio)"
            );
            ExitCode::from(2)
        }
    }
}

fn run_tokio() -> ExitCode {
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
        let engine = EngineServer::new(TokioRuntime, engine_config(), |mut socket| {
            // Echo every message back unchanged: text stays text, binary binary.
            tokio::spawn(async move {
                while let Some(message) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            });
        });
        eprintln!("conformance-server: listening on 127.0.0.1:3000 (tokio)");
        match runtime_tokio::listen("127.0.0.1:3000", engine).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("conformance-server: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
