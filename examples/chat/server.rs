//! The chat server: the page, the official browser client, and the chat's
//! Socket.IO handlers, on one port. `main.rs` runs it; the browser test
//! (`examples/tests/chat_browser.rs`) starts it on a free port.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use runtime_tokio::TokioRuntime;
use serde_json::json;
use socketio::engine::HttpReply;
use socketio::{Data, HttpHandler, SocketIo, SocketIoConfig, SocketRef};

const PAGE: &str = include_str!("index.html");

/// Where `npm ci --prefix interop` put the official browser bundle.
pub fn client_bundle_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../interop/node_modules/socket.io-client/dist/socket.io.min.js")
}

/// The page, the browser client, and Socket.IO, on one port.
#[derive(Clone)]
pub struct Chat {
    io: SocketIo<TokioRuntime>,
    bundle: Bytes,
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
            _ => return self.io.call(request),
        };
        let reply = hyper::Response::builder()
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .expect("static headers are valid");
        Box::pin(async move { reply })
    }
}

/// One chatter: the nickname, once chosen.
#[derive(Default)]
struct User {
    name: Mutex<Option<String>>,
}

impl User {
    fn name(&self) -> Option<String> {
        self.name.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn on_connection(socket: SocketRef, users: Arc<AtomicUsize>) -> impl Future<Output = ()> {
    let user = Arc::new(User::default());
    let joined = {
        let (user, users) = (user.clone(), users.clone());
        move |socket: SocketRef, Data(name): Data<String>| {
            let (user, users) = (user.clone(), users.clone());
            async move {
                {
                    let mut current = user.name.lock().unwrap_or_else(|p| p.into_inner());
                    if current.is_some() {
                        return;
                    }
                    *current = Some(name.clone());
                }
                let count = users.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = socket.emit("login", &json!({ "numUsers": count })).await;
                let notice = json!({ "username": name, "numUsers": count });
                let _ = socket.broadcast().emit("user joined", &notice).await;
            }
        }
    };
    async move {
        socket.on("add user", joined);
        let speaker = user.clone();
        socket.on(
            "new message",
            move |socket: SocketRef, Data(message): Data<String>| {
                let speaker = speaker.clone();
                async move {
                    let Some(name) = speaker.name() else {
                        return;
                    };
                    let _ = socket
                        .broadcast()
                        .emit(
                            "new message",
                            &json!({ "username": name, "message": message }),
                        )
                        .await;
                }
            },
        );
        for event in ["typing", "stop typing"] {
            let typist = user.clone();
            socket.on(event, move |socket: SocketRef| {
                let typist = typist.clone();
                async move {
                    if let Some(name) = typist.name() {
                        let _ = socket
                            .broadcast()
                            .emit(event, &json!({ "username": name }))
                            .await;
                    }
                }
            });
        }
        socket.on_disconnect(move |socket, _reason| {
            let (user, users) = (user.clone(), users.clone());
            async move {
                if let Some(name) = user.name() {
                    let count = users.fetch_sub(1, Ordering::SeqCst) - 1;
                    let notice = json!({ "username": name, "numUsers": count });
                    let _ = socket.broadcast().emit("user left", &notice).await;
                }
            }
        });
    }
}

/// The chat server, serving `bundle` as the browser client.
pub fn chat(bundle: Bytes) -> Chat {
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    let users = Arc::new(AtomicUsize::new(0));
    io.on_connection("/", move |socket| on_connection(socket, users.clone()));
    Chat { io, bundle }
}
