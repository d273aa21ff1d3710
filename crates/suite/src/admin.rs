//! A server of ours instrumented for the Admin UI (`crates/admin-ui`),
//! whose app does exactly what `interop/admin-server.mjs` (Node's
//! instrumented server) does, so that the two can be compared notice by
//! notice: the main namespace names a client from its auth in the socket's
//! data, joins it to `lobby`, answers `hello` and renames it on `rename`;
//! `/chat` exists.

use std::net::SocketAddr;
use std::sync::Arc;

use admin_ui::{AdminUi, Auth, Mode, UiFiles};
use serde_json::{json, Value};
use socketio::adapter::AdapterFactory;
use socketio::extract::{Ack, Data};
use socketio::{SocketIo, SocketIoConfig, SocketRef};

use crate::TestRuntime;

/// "changeit", hashed with bcrypt (cost 10), as in the Admin UI's README.
pub const PASSWORD_HASH: &str = "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS";

/// How the instrumented server is set up.
#[derive(Default, Clone)]
pub struct AdminSetup {
    /// The UI may only look.
    pub readonly: bool,
    /// No socket, room or event notices.
    pub production: bool,
    /// A cluster adapter (default: in memory).
    pub adapter: Option<Arc<dyn AdapterFactory>>,
    /// The server's name in the UI.
    pub server_id: Option<String>,
    /// The UI's files, served at `/admin/`.
    pub ui: Option<UiFiles>,
    /// socket.io-msgpack-parser's wire format instead of JSON (the UI's
    /// "MessagePack parser" option).
    pub msgpack: bool,
}

/// Starts the instrumented server on 127.0.0.1 (a free port).
pub async fn start_admin_server<R: TestRuntime>(
    runtime: R,
    setup: AdminSetup,
) -> (SocketAddr, SocketIo<R>) {
    let mut config = SocketIoConfig::default();
    if setup.msgpack {
        config = config.with_parser(socketio::MsgpackParser);
    }
    if let Some(adapter) = setup.adapter.clone() {
        config.adapter = adapter;
    }
    let io = SocketIo::new(runtime, config);
    let mut admin = AdminUi::new(Auth::basic("admin", PASSWORD_HASH))
        .readonly(setup.readonly)
        .mode(if setup.production {
            Mode::Production
        } else {
            Mode::Development
        });
    if let Some(id) = &setup.server_id {
        admin = admin.server_id(id.clone());
    }
    admin.instrument(&io).expect("a valid bcrypt hash");
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
            "hello",
            |socket: SocketRef, Data(value): Data<Value>, ack: Option<Ack>| async move {
                let _ = socket.emit("hi", &value).await;
                if let Some(ack) = ack {
                    let _ = ack.send(&"done").await;
                }
            },
        );
        socket.on(
            "rename",
            |socket: SocketRef, Data(name): Data<Value>, ack: Option<Ack>| async move {
                let mut data = socket.data();
                data["name"] = name;
                socket.set_data(data);
                if let Some(ack) = ack {
                    let _ = ack.send_payload(socketio::Payload::empty()).await;
                }
            },
        );
    });
    io.on_connection("/chat", |_socket: SocketRef| async move {});
    let addr = match setup.ui {
        Some(files) => runtime.serve(files.serve_with(io.clone())).await,
        None => runtime.serve(io.clone()).await,
    };
    (addr, io)
}
