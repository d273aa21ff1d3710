//! The observability example's server, on one port: Socket.IO (a small
//! app: clients named by their auth, everyone in the room `lobby`, an
//! `echo` event and a deliberately `slow` one), the official Admin UI's
//! files at `/admin/` with the server instrumented for it, and the
//! server's metrics for Prometheus at `/metrics`. `main.rs` runs it; the
//! browser test (`examples/tests/admin_ui_browser.rs`) and the scrape test
//! (`examples/tests/metrics_prometheus.rs`) start it on a free port.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use admin_ui::{AdminUi, Auth, UiFiles};
use bytes::Bytes;
use http_body_util::Full;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use runtime_tokio::TokioRuntime;
use serde_json::{json, Value};
use socketio::engine::HttpReply;
use socketio::extract::{Ack, Data};
use socketio::{HttpHandler, SocketIo, SocketIoConfig, SocketRef};
use socketio_metrics::Metrics;

/// "changeit", hashed with bcrypt (cost 10). Make your own with
/// `htpasswd -nbBC 10 "" 'your password'`.
pub const PASSWORD_HASH: &str = "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS";

/// Where `npm ci --prefix interop` put the UI's files (`npm i
/// @socket.io/admin-ui` puts them in `node_modules/@socket.io/admin-ui/ui/dist`).
pub fn ui_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/node_modules/@socket.io/admin-ui/ui/dist")
}

/// Socket.IO, the Admin UI's files and `/metrics`.
#[derive(Clone)]
pub struct Server {
    io: SocketIo<TokioRuntime>,
    ui: UiFiles,
    prometheus: PrometheusHandle,
}

impl HttpHandler for Server {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        if request.uri().path() == "/metrics" {
            let reply = hyper::Response::builder()
                .header(
                    hyper::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .body(Full::new(Bytes::from(self.prometheus.render())))
                .expect("static headers are valid");
            return Box::pin(async move { reply });
        }
        match self.ui.answer(&request) {
            Some(reply) => Box::pin(async move { reply }),
            None => self.io.call(request),
        }
    }
}

/// The server, named `server_id` in the Admin UI, with Prometheus as the
/// process's metrics recorder (once per process, before the server
/// starts). A handler still running after half a second is logged.
pub fn server(server_id: &str) -> std::io::Result<Server> {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder is installed");
    let mut config = SocketIoConfig::default();
    config.slow_handler = Some(Duration::from_millis(500));
    let io = SocketIo::new(TokioRuntime, config);
    AdminUi::new(Auth::basic("admin", PASSWORD_HASH))
        .server_id(server_id)
        .instrument(&io)
        .expect("a valid bcrypt hash");
    Metrics::new().install(&io);
    // The app: a name from the client's auth, in the socket's data (the UI
    // shows it), and everyone in the lobby.
    io.use_middleware(|request| async move {
        let auth: Value = request.auth().unwrap_or(Value::Null);
        if let Some(name) = auth.get("name").and_then(Value::as_str) {
            request.set_data(json!({ "name": name }));
        }
        Ok(())
    });
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
        // Past the slow-handler threshold: a warning while it runs, and
        // one when it ends.
        socket.on("slow", |ack: Option<Ack>| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Some(ack) = ack {
                let _ = ack.send(&"done").await;
            }
        });
    });
    Ok(Server {
        io,
        ui: UiFiles::load(ui_dir())?,
        prometheus,
    })
}
