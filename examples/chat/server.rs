//! The chat server: the page with the official browser client at `/`, the
//! same page with our Rust client compiled to WebAssembly at `/wasm/`
//! (`examples/chat-wasm`), and the chat's Socket.IO handlers, on one port.
//! `main.rs` runs it; the browser tests (`examples/tests/chat_browser.rs`)
//! start it on a free port.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use runtime_tokio::TokioRuntime;
use serde_json::json;
use socketio::engine::HttpReply;
use socketio::extract::{Data, Event, Extension, State};
use socketio::{HttpHandler, SocketIo, SocketIoConfig, SocketRef};

const PAGE: &str = include_str!("index.html");
const WASM_PAGE: &str = include_str!("wasm.html");
const CSS: &str = include_str!("chat.css");
/// What `/wasm/` says when the Rust client was not built.
const WASM_MISSING: &str = "The Rust client is not built: run scripts/demo, or \
scripts/build-wasm chat-wasm target/wasm/pkg/chat-wasm, then restart the server.";

/// Where `npm ci --prefix interop` put the official browser bundle.
pub fn client_bundle_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/node_modules/socket.io-client/dist/socket.io.min.js")
}

/// Where `scripts/build-wasm chat-wasm …` puts the Rust client, bound.
pub fn wasm_client_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm/pkg/chat-wasm")
}

/// The Rust client, compiled to WebAssembly and bound by wasm-bindgen.
#[derive(Clone)]
pub struct WasmClient {
    js: Bytes,
    wasm: Bytes,
}

impl WasmClient {
    /// Reads the bound client from `dir` (see [`wasm_client_path`]).
    pub fn load(dir: &std::path::Path) -> std::io::Result<WasmClient> {
        Ok(WasmClient {
            js: std::fs::read(dir.join("chat_wasm.js"))?.into(),
            wasm: std::fs::read(dir.join("chat_wasm_bg.wasm"))?.into(),
        })
    }
}

/// The pages, the browser clients, and Socket.IO, on one port.
#[derive(Clone)]
pub struct Chat {
    io: SocketIo<TokioRuntime>,
    bundle: Bytes,
    wasm: Option<WasmClient>,
}

impl Chat {
    /// Serves the Rust client's page at `/wasm/` too.
    pub fn with_wasm(mut self, client: WasmClient) -> Chat {
        self.wasm = Some(client);
        self
    }
}

impl HttpHandler for Chat {
    fn call(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>> {
        let (content_type, body) = match request.uri().path() {
            "/" | "/index.html" => (
                "text/html; charset=utf-8",
                Bytes::from_static(PAGE.as_bytes()),
            ),
            "/socket.io/socket.io.js" => ("application/javascript", self.bundle.clone()),
            "/chat.css" => ("text/css", Bytes::from_static(CSS.as_bytes())),
            "/wasm" | "/wasm/" | "/wasm/index.html" => match self.wasm {
                Some(_) => (
                    "text/html; charset=utf-8",
                    Bytes::from_static(WASM_PAGE.as_bytes()),
                ),
                None => (
                    "text/plain; charset=utf-8",
                    Bytes::from_static(WASM_MISSING.as_bytes()),
                ),
            },
            "/wasm/chat_wasm.js" if self.wasm.is_some() => (
                "text/javascript",
                self.wasm.as_ref().map(|c| c.js.clone()).unwrap_or_default(),
            ),
            "/wasm/chat_wasm_bg.wasm" if self.wasm.is_some() => (
                "application/wasm",
                self.wasm
                    .as_ref()
                    .map(|c| c.wasm.clone())
                    .unwrap_or_default(),
            ),
            _ => return self.io.call(request),
        };
        let reply = hyper::Response::builder()
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .expect("static headers are valid");
        Box::pin(async move { reply })
    }
}

/// A chatter's nickname, on the socket once chosen (a typed extension).
#[derive(Clone)]
struct Username(String);

/// How many chatters have chosen a name: the server's global state.
#[derive(Clone, Default)]
struct NumUsers(Arc<AtomicUsize>);

// The handlers read like Node's chat example (`socket.io/examples/chat`):
// the nickname lives on the socket, the count in the server's state.

async fn add_user(socket: SocketRef, Data(name): Data<String>, State(users): State<NumUsers>) {
    // Node: `if (addedUser) return;`
    if socket.extensions().contains::<Username>() {
        return;
    }
    socket.extensions().insert(Username(name.clone()));
    let count = users.0.fetch_add(1, Ordering::SeqCst) + 1;
    let _ = socket.emit("login", &json!({ "numUsers": count })).await;
    let notice = json!({ "username": name, "numUsers": count });
    let _ = socket.broadcast().emit("user joined", &notice).await;
}

/// Only a chatter with a name gets here: without one, the `Extension`
/// cannot be extracted and the event is dropped.
async fn new_message(
    socket: SocketRef,
    Data(message): Data<String>,
    Extension(Username(name)): Extension<Username>,
) {
    let notice = json!({ "username": name, "message": message });
    let _ = socket.broadcast().emit("new message", &notice).await;
}

/// `typing` and `stop typing`, passed on under the same name.
async fn typing(
    socket: SocketRef,
    Event(event): Event,
    Extension(Username(name)): Extension<Username>,
) {
    let _ = socket
        .broadcast()
        .emit(&event, &json!({ "username": name }))
        .await;
}

async fn left(socket: SocketRef, name: Option<Extension<Username>>, State(users): State<NumUsers>) {
    let Some(Extension(Username(name))) = name else {
        return;
    };
    let count = users.0.fetch_sub(1, Ordering::SeqCst) - 1;
    let notice = json!({ "username": name, "numUsers": count });
    let _ = socket.broadcast().emit("user left", &notice).await;
}

/// The chat server, serving `bundle` as the browser client; with
/// `compress`, WebSocket messages of 1 KiB and more are compressed
/// (permessage-deflate, which browsers offer). Long-polling responses of
/// 1 KiB and more are gzip-encoded either way, as in Node.
pub fn chat(bundle: Bytes, compress: bool) -> Chat {
    let mut config = SocketIoConfig::default().with_state(NumUsers::default());
    if compress {
        config.engine.per_message_deflate = Some(socketio::PerMessageDeflate::default());
    }
    let io = SocketIo::new(TokioRuntime, config);
    io.on_connection("/", |socket| async move {
        socket.on("add user", add_user);
        socket.on("new message", new_message);
        socket.on("typing", typing);
        socket.on("stop typing", typing);
        socket.on_disconnect(left);
    });
    Chat {
        io,
        bundle,
        wasm: None,
    }
}
