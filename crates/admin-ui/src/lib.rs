//! The official [Socket.IO Admin UI](https://admin.socket.io)
//! (`@socket.io/admin-ui`) on a Rust server: [`AdminUi::instrument`] does
//! what Node's `instrument(io, options)` does.
//!
//! It adds the admin namespace (`/admin`), which the UI connects to, and
//! tells it, in Node's events and shapes:
//! - `server_stats` every two seconds: this server's id, sessions (and how
//!   many poll), namespaces with their sockets, and what its engine did
//!   second by second (connections, disconnections by reason, messages and
//!   bytes both ways);
//! - in [`Mode::Development`] (the default, as in Node): every socket
//!   (`all_sockets` on login, `socket_connected`, `socket_updated`,
//!   `socket_disconnected`), every room change (`room_joined`,
//!   `room_left`) and every event both ways (`event_received`,
//!   `event_sent`).
//!
//! The UI can emit events, make sockets join or leave rooms and disconnect
//! them (not in [`AdminUi::readonly`] mode). With a cluster adapter
//! (`adapter-redis`) every action reaches every server, each server sends
//! its own `server_stats`, and the socket list covers the cluster: one UI
//! sees it all, Node servers included.
//!
//! ```no_run
//! use admin_ui::{AdminUi, Auth};
//! use runtime_tokio::TokioRuntime;
//! use socketio::{SocketIo, SocketIoConfig};
//!
//! # async fn run() -> std::io::Result<()> {
//! let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
//! // "changeit", hashed with bcrypt (cost 10).
//! let auth = Auth::basic("admin", "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS");
//! AdminUi::new(auth).instrument(&io).expect("a valid bcrypt hash");
//! io.on_connection("/", |socket| async move {
//!     socket.join("lobby");
//! });
//! runtime_tokio::listen("127.0.0.1:3000", io).await
//! # }
//! ```
//!
//! Then open <https://admin.socket.io> (the UI is static: it runs in the
//! browser and connects to your server), or serve the UI's files yourself
//! with [`UiFiles`], and give it `http://localhost:3000`, `admin` and the
//! password. A page served from another origin needs CORS with
//! credentials: see `docs/admin-ui.md`.

#![forbid(unsafe_code)]

mod actions;
mod auth;
mod notices;
mod stats;
mod ui;

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::json;
use socketio::extract::Reason;
use socketio::{
    ConnectError, ConnectRequest, NamespaceRef, Payload, RoomEvent, Runtime, SocketIo, SocketRef,
};

pub use auth::Auth;
pub use ui::{UiFiles, WithUi};

use auth::{Gate, Outcome};
use notices::{js_date, Notice, Outbox};

/// Why [`AdminUi::instrument`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// [`Auth::Basic`]'s hash is not a bcrypt hash (Node: "the `password`
    /// field must be a valid bcrypt hash").
    #[error("the password must be a valid bcrypt hash ($2a$, $2b$ or $2y$)")]
    InvalidHash,
}

/// How much the admin namespace is told (Node's `mode` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Everything: sockets, rooms, events, and the stats.
    #[default]
    Development,
    /// The stats only, for a smaller cost on a busy server (Node's
    /// `NODE_ENV=production`).
    Production,
}

/// The Admin UI's instrumentation, to set up then
/// [`instrument`](AdminUi::instrument) a server with.
#[derive(Debug, Clone)]
pub struct AdminUi {
    namespace: String,
    auth: Auth,
    readonly: bool,
    server_id: Option<String>,
    mode: Mode,
}

impl AdminUi {
    /// The instrumentation, protected by `auth`: there is no default, as
    /// in Node (use [`Auth::None`] to say there is no password).
    pub fn new(auth: Auth) -> AdminUi {
        AdminUi {
            namespace: "/admin".into(),
            auth,
            readonly: false,
            server_id: None,
            mode: Mode::Development,
        }
    }

    /// The namespace the UI connects to (default `/admin`; the UI's login
    /// form has a field for another).
    pub fn namespace(mut self, name: impl Into<String>) -> AdminUi {
        self.namespace = name.into();
        self
    }

    /// Whether the UI may only look (no emit, join, leave or disconnect).
    pub fn readonly(mut self, readonly: bool) -> AdminUi {
        self.readonly = readonly;
        self
    }

    /// This server's name in the UI (default: the host name, as Node's).
    /// Give each server of a machine its own.
    pub fn server_id(mut self, id: impl Into<String>) -> AdminUi {
        self.server_id = Some(id.into());
        self
    }

    /// How much the UI is told (default [`Mode::Development`]).
    pub fn mode(mut self, mode: Mode) -> AdminUi {
        self.mode = mode;
        self
    }

    /// What the UI may do, in Node's order.
    fn features(&self) -> Vec<&'static str> {
        let mut features = if self.readonly {
            Vec::new()
        } else {
            vec![
                actions::EMIT,
                actions::JOIN,
                actions::LEAVE,
                actions::DISCONNECT,
                actions::MJOIN,
                actions::MLEAVE,
                actions::MDISCONNECT,
            ]
        };
        features.push(actions::AGGREGATED_EVENTS);
        if self.mode == Mode::Development {
            features.push(actions::ALL_EVENTS);
        }
        features
    }

    /// Instruments `io`: adds the admin namespace and starts telling it.
    /// Call it once, before the server listens (sockets that connected
    /// earlier are listed but not followed). The instrumentation lives as
    /// long as the process.
    pub fn instrument<R: Runtime>(self, io: &SocketIo<R>) -> Result<(), AdminError> {
        let gate = Arc::new(Gate::new(self.auth.clone())?);
        if matches!(self.auth, Auth::None) {
            tracing::warn!("the admin UI's namespace has no authentication");
        }
        let admin = io.of(&self.namespace);
        let (outbox, deliver) = Outbox::new(admin.clone());
        io.runtime().spawn(Box::pin(deliver));

        admin.use_middleware(move |request: ConnectRequest| {
            let gate = gate.clone();
            async move {
                match gate.check(request.auth_json()).await {
                    Outcome::Admitted(session) => {
                        if let Some(id) = session {
                            request.extensions().insert(SessionId(id));
                        }
                        Ok(())
                    }
                    Outcome::Refused => Err(ConnectError::new("invalid credentials")),
                }
            }
        });

        let features = Arc::new(self.features());
        let development = self.mode == Mode::Development;
        let readonly = self.readonly;
        let server = io.clone();
        admin.on_connection(move |socket: SocketRef| {
            let features = features.clone();
            let io = server.clone();
            async move {
                if !readonly {
                    actions::register(&io, &socket);
                }
                // Node emits it from the middleware; its client holds
                // events until connected, so the UI sees the same.
                if let Some(SessionId(id)) = socket.extensions().get::<SessionId>() {
                    let _ = socket.emit("session", &id).await;
                }
                let config = json!({ "supportedFeatures": *features });
                let _ = socket.emit("config", &config).await;
                if development {
                    let sockets = all_sockets(&io).await;
                    let _ = socket.emit("all_sockets", &sockets).await;
                }
            }
        });

        if development {
            let admin_name: Arc<str> = Arc::from(self.namespace.as_str());
            let outbox = outbox.clone();
            io.on_namespace(move |namespace| follow(&namespace, &admin_name, &outbox));
        }

        let identity = stats::Identity {
            server_id: self.server_id.clone().unwrap_or_else(hostname),
            hostname: hostname(),
            pid: std::process::id(),
        };
        io.runtime()
            .spawn(Box::pin(stats::run(io.clone(), identity, outbox)));
        Ok(())
    }
}

/// A session id made at login, from the middleware to the handler.
#[derive(Clone)]
struct SessionId(String);

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Every socket of every namespace, on every server (Node's
/// `fetchAllSockets`).
async fn all_sockets<R: Runtime>(io: &SocketIo<R>) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for namespace in io.namespaces() {
        match namespace.broadcast().fetch_sockets().await {
            Ok(sockets) => all.extend(sockets.iter().map(notices::serialize_remote)),
            Err(error) => {
                tracing::debug!(nsp = namespace.name(), %error, "admin: fetching sockets failed")
            }
        }
    }
    all
}

fn now() -> String {
    js_date(SystemTime::now())
}

/// Tells the admin namespace of everything in `namespace` (Node's
/// `registerVerboseListeners`).
fn follow(namespace: &NamespaceRef, admin_name: &Arc<str>, outbox: &Outbox) {
    let nsp: Arc<str> = Arc::from(namespace.name());
    let is_admin = *nsp == **admin_name;
    {
        let outbox = outbox.clone();
        let nsp = nsp.clone();
        namespace.on_room_event(move |event| {
            let (kind, room, socket) = match event {
                RoomEvent::Joined { room, socket } => ("room_joined", room, socket),
                RoomEvent::Left { room, socket } => ("room_left", room, socket),
                _ => return,
            };
            outbox.send(Notice::new(kind, &(&*nsp, room, socket.as_str(), now())));
        });
    }
    {
        // Later changes of the data (not of the instrumentation's own
        // record) are updates too, as Node's proxy reports them.
        let outbox = outbox.clone();
        namespace.on_data_change(move |socket, old| {
            let data = notices::visible_data(&socket.data());
            if data == notices::visible_data(old) {
                return;
            }
            let update = json!({
                "id": socket.id().as_str(),
                "nsp": socket.namespace(),
                "data": data,
            });
            outbox.send(Notice::new("socket_updated", &(update,)));
        });
    }
    let outbox = outbox.clone();
    namespace.prepend_connection(move |socket| {
        // Node's instrumentation copies what middlewares put in the data
        // into its proxy key by key, and each copy is an update.
        if let serde_json::Value::Object(data) = socket.data() {
            let mut so_far = serde_json::Map::new();
            for (key, value) in data {
                if key == notices::ADMIN_KEY {
                    continue;
                }
                so_far.insert(key, value);
                let update = json!({
                    "id": socket.id().as_str(),
                    "nsp": socket.namespace(),
                    "data": so_far,
                });
                outbox.send(Notice::new("socket_updated", &(update,)));
            }
        }
        notices::tag_data(socket);
        outbox.send(Notice::new(
            "socket_connected",
            &(notices::serialize_local(socket), now()),
        ));
        let updates = outbox.clone();
        socket.on_upgrade(move |socket: SocketRef| {
            let updates = updates.clone();
            async move {
                notices::tag_data(&socket);
                let update = json!({
                    "id": socket.id().as_str(),
                    "nsp": socket.namespace(),
                    "transport": socket.transport(),
                });
                updates.send(Notice::new("socket_updated", &(update,)));
            }
        });
        if !is_admin {
            let received = outbox.clone();
            socket.on_any(move |socket: SocketRef, event: String, payload: Payload| {
                received.send(Notice::event(
                    "event_received",
                    socket.namespace(),
                    socket.id().as_str(),
                    &event,
                    &payload,
                ));
                std::future::ready(())
            });
            let sent = outbox.clone();
            socket.on_any_outgoing(move |socket, event, payload| {
                sent.send(Notice::event(
                    "event_sent",
                    socket.namespace(),
                    socket.id().as_str(),
                    event,
                    payload,
                ));
            });
        }
        let gone = outbox.clone();
        socket.on_disconnect(move |socket: SocketRef, Reason(reason): Reason| {
            gone.send(Notice::new(
                "socket_disconnected",
                &(socket.namespace(), socket.id().as_str(), reason, now()),
            ));
            std::future::ready(())
        });
    });
}

/// The code of `docs/admin-ui.md` compiles as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/admin-ui.md")]
pub struct AdminGuide;
