//! The Admin UI example's server: a small app (clients named by their
//! auth, all in the room `lobby`, and an `echo` event), instrumented for
//! the official Admin UI, with the UI's own files served at `/admin/`.
//! `main.rs` runs it; the browser test (`examples/tests/admin_ui_browser.rs`)
//! starts it on a free port.

use std::path::PathBuf;

use admin_ui::{AdminUi, Auth, UiFiles, WithUi};
use runtime_tokio::TokioRuntime;
use serde_json::{json, Value};
use socketio::extract::{Ack, Data};
use socketio::{SocketIo, SocketIoConfig, SocketRef};

/// "changeit", hashed with bcrypt (cost 10). Make your own with
/// `htpasswd -nbBC 10 "" 'your password'`.
pub const PASSWORD_HASH: &str = "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS";

/// Where `npm ci --prefix interop` put the UI's files (`npm i
/// @socket.io/admin-ui` puts them in `node_modules/@socket.io/admin-ui/ui/dist`).
pub fn ui_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/node_modules/@socket.io/admin-ui/ui/dist")
}

/// The instrumented server, named `server_id` in the UI, and the UI's files
/// in front of it.
pub fn server(server_id: &str) -> std::io::Result<WithUi<SocketIo<TokioRuntime>>> {
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    AdminUi::new(Auth::basic("admin", PASSWORD_HASH))
        .server_id(server_id)
        .instrument(&io)
        .expect("a valid bcrypt hash");
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
    });
    let files = UiFiles::load(ui_dir())?;
    Ok(files.serve_with(io))
}
