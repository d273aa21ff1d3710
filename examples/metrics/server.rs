//! The metrics example's server: Socket.IO (an `echo` event, everyone in
//! the room `lobby`) and its metrics for Prometheus at `/metrics`, on one
//! port. `main.rs` runs it; `examples/tests/metrics_prometheus.rs` starts
//! it on a free port and scrapes it.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::Full;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use runtime_tokio::TokioRuntime;
use serde_json::Value;
use socketio::engine::HttpReply;
use socketio::extract::{Ack, Data};
use socketio::{HttpHandler, SocketIo, SocketIoConfig, SocketRef};
use socketio_metrics::Metrics;

/// Socket.IO, and its metrics at `/metrics`.
#[derive(Clone)]
pub struct Server {
    io: SocketIo<TokioRuntime>,
    prometheus: PrometheusHandle,
}

impl HttpHandler for Server {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        if request.uri().path() != "/metrics" {
            return self.io.call(request);
        }
        let text = self.prometheus.render();
        let reply = hyper::Response::builder()
            .header(
                hyper::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Full::new(Bytes::from(text)))
            .expect("static headers are valid");
        Box::pin(async move { reply })
    }
}

/// The server, with Prometheus as the process's metrics recorder (install
/// it once per process, before the server starts).
pub fn server() -> Server {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    Metrics::new().install(&io);
    io.on_connection("/", |socket: SocketRef| async move {
        socket.join("lobby");
        socket.on(
            "echo",
            |socket: SocketRef, Data(value): Data<Value>, ack: Option<Ack>| async move {
                let _ = socket.emit("echo", &value).await;
                if let Some(ack) = ack {
                    let _ = ack.send(&value).await;
                }
            },
        );
    });
    Server { io, prometheus }
}
