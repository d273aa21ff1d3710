//! Socket.IO inside an axum application, next to ordinary routes: the
//! `SocketIoLayer` answers `/socket.io/`, axum answers the rest.
//!
//! Run it with `cargo run -p examples --example axum`, then
//! `curl http://127.0.0.1:3000/hello` and point any Socket.IO client at
//! `http://127.0.0.1:3000` (it answers `ping` with `pong`).

use axum::routing::get;
use axum::Router;
use runtime_tokio::{SocketIoLayer, TokioRuntime};
use socketio::{Payload, SocketIo, SocketIoConfig, SocketRef};

#[tokio::main]
async fn main() {
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("ping", |socket: SocketRef, payload: Payload| async move {
            let _ = socket.emit_payload("pong", payload).await;
        });
    });

    let app = Router::new()
        .route("/hello", get(|| async { "hello from axum\n" }))
        .layer(SocketIoLayer::new(io));

    let listener = match tokio::net::TcpListener::bind("127.0.0.1:3000").await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("axum example: cannot listen on 127.0.0.1:3000: {error}");
            std::process::exit(1);
        }
    };
    println!("axum example: http://127.0.0.1:3000/hello and Socket.IO on the same port");
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("axum example: {error}");
    }
}
