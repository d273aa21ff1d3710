//! A raw Engine.IO server (what npm's `engine.io` offers), driving
//! [`engineio_proto`]'s state machines with real HTTP and WebSockets.
//!
//! # Theory of operation
//!
//! [`EngineServer::handle`] takes every HTTP request on the Engine.IO path.
//! The stateless router classifies it; handshakes create a session, whose
//! state machine then lives in its own task ([`session`]) and is reached only
//! through a bounded channel: no lock is held around protocol state. The
//! table of live sessions maps sids to those channels.
//!
//! A long-poll GET or a POST becomes a handoff carrying a one-shot reply
//! channel; the HTTP handler awaits the reply. A WebSocket (handshake or
//! upgrade) is answered `101` at once and handed to the session task, which
//! reads and writes it itself once hyper hands the connection over
//! (`crate::ws_link`, as the client's driver does): no task or channel per direction, so no wake-up per
//! message in between. The frames of a burst are written together (one
//! flush), and at most `ws_queue` frames wait for a client that does not
//! read.
//!
//! Applications get an [`EngineSocket`] per session through the connection
//! callback: send messages, receive them, close.

mod cors;
mod hooks;
pub(crate) mod session;
pub(crate) mod stats;
pub(crate) mod websocket;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use engineio_proto::server::{
    ContentType, HttpResponse, Method, Opening, Request, RequestError, Route, Server, ServerConfig,
    Session,
};
use engineio_proto::{Dialect, PostFailure, RequestId, Sid, SidGenerator, TransportKind, WsId};
use futures_channel::{mpsc, oneshot};
use futures_util::SinkExt;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};

use crate::handshake::Handshake;
use crate::http_compression::{self, Encoding};
use crate::locks::{read, write};
use crate::runtime::{Clock, Runtime};
pub use cors::{Cors, CorsOrigin};
pub use hooks::{
    AllowRequest, ConnectionError, ConnectionErrorHook, Cookie, GenerateId, HeadersHook,
};
use session::Handoff;
pub use session::{EngineSocket, SessionClosed};
pub use stats::EngineStats;

/// What a request body must be for the server to read it: hyper's
/// `Incoming`, axum's `Body`, any `http_body::Body` of `Bytes`.
pub trait RequestBody: hyper::body::Body<Data = Bytes> + Send + 'static {}

impl<B: hyper::body::Body<Data = Bytes> + Send + 'static> RequestBody for B {}

/// A response the HTTP layer writes.
pub type HttpReply = hyper::Response<Full<Bytes>>;

/// Settings of an [`EngineServer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The protocol settings (ping interval and timeout, max payload, …).
    pub protocol: ServerConfig,
    /// The path the server answers on, e.g. `/engine.io/`.
    pub path: String,
    /// Cross-origin settings (Node's `cors`); none by default, as in Node.
    pub cors: Option<Cors>,
    /// Messages a session queues for the application before it stops
    /// reading its client.
    pub app_queue: usize,
    /// Frames a session queues for its WebSocket before the client counts
    /// as not reading and the session is closed.
    pub ws_queue: usize,
    /// Bytes a WebSocket reads at a time (1 KiB). Each connection keeps
    /// this buffer for its life, and it is zero-filled before every read:
    /// small suits many idle connections and small messages; raise it when
    /// most messages are tens of KiB.
    pub ws_read_buffer: usize,
    /// permessage-deflate on WebSockets (Node's `perMessageDeflate`): off
    /// by default, as in Node. Each compressed message costs CPU both
    /// ways, and with context takeover each connection that used it keeps
    /// a compressor and a decompressor (see [`crate::PerMessageDeflate`]).
    pub per_message_deflate: Option<crate::PerMessageDeflate>,
    /// gzip / deflate of long-polling responses per the request's
    /// `Accept-Encoding` (Node's `httpCompression`): on by default, for
    /// responses of 1 KiB and more, as in Node. `None` turns it off.
    pub http_compression: Option<crate::HttpCompression>,
    /// Decides whether a handshake may open a session (Node's
    /// `allowRequest`), synchronously or not; a refusal is answered `403`
    /// with code 4 and its message.
    pub allow_request: Option<AllowRequest>,
    /// Chooses session ids (Node's `generateId`); random 128-bit ids
    /// otherwise.
    pub generate_id: Option<GenerateId>,
    /// Sets a cookie with the session id on the handshake's response
    /// (Node's `cookie`), for sticky sessions behind a load balancer.
    pub cookie: Option<Cookie>,
    /// Adds headers to the handshake's response (Node's
    /// `initial_headers` event).
    pub initial_headers: Option<HeadersHook>,
    /// Adds headers to every response, the handshake's included (Node's
    /// `headers` event).
    pub headers: Option<HeadersHook>,
    /// Hears about every refused request (Node's `connection_error`
    /// event).
    pub on_connection_error: Option<ConnectionErrorHook>,
    /// How long a POST body may take to arrive whole, from when its
    /// headers were read (Node's `httpRequestBodyTimeout`: 30 s). Past it
    /// the POST is answered `408` and the session closes.
    pub body_timeout: Duration,
    /// Most chunks a POST body may come in (Node's `maxBufferedChunks`:
    /// 10,000), so a body dribbled a byte at a time costs bounded work.
    /// Past it the POST is answered `413` and the session closes.
    pub max_body_chunks: usize,
    /// How long a client may take to send a request's headers before the
    /// listener closes its connection (Node's `headersTimeout`: 60 s).
    /// Applies where this crate's listener serves the server (the runtime
    /// crates' `listen` and `serve`); a server mounted in another HTTP
    /// stack gets that stack's timeouts.
    pub header_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            protocol: ServerConfig::default(),
            path: "/engine.io/".into(),
            cors: None,
            app_queue: 1024,
            ws_queue: 1024,
            ws_read_buffer: 1024,
            per_message_deflate: None,
            http_compression: Some(crate::HttpCompression::default()),
            allow_request: None,
            generate_id: None,
            cookie: None,
            initial_headers: None,
            headers: None,
            on_connection_error: None,
            body_timeout: Duration::from_secs(30),
            max_body_chunks: 10_000,
            header_timeout: crate::http::DEFAULT_HEADER_TIMEOUT,
        }
    }
}

type ConnectionHandler = dyn Fn(EngineSocket) + Send + Sync;

/// What runs on top of each session: raw Engine.IO or Socket.IO.
pub(crate) trait Mode<R: Runtime>: Send + Sync + 'static {
    /// Starts the task of a freshly opened session.
    fn start(
        &self,
        shared: &Arc<Shared<R>>,
        session: engineio_proto::server::Session,
        pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
        ws: Option<(WsId, websocket::PendingWs)>,
        handshake: Arc<Handshake>,
    ) -> mpsc::Sender<Handoff>;
}

/// Raw Engine.IO: each session goes to the application as an [`EngineSocket`].
struct RawMode(Box<ConnectionHandler>);

impl<R: Runtime> Mode<R> for RawMode {
    fn start(
        &self,
        shared: &Arc<Shared<R>>,
        session: engineio_proto::server::Session,
        pending: Option<(RequestId, oneshot::Sender<HttpResponse>)>,
        ws: Option<(WsId, websocket::PendingWs)>,
        handshake: Arc<Handshake>,
    ) -> mpsc::Sender<Handoff> {
        session::start_raw(shared, session, pending, ws, handshake, &*self.0)
    }
}

/// A raw Engine.IO server. Cheap to clone; all clones share the sessions.
pub struct EngineServer<R: Runtime> {
    shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for EngineServer<R> {
    fn clone(&self) -> Self {
        EngineServer {
            shared: self.shared.clone(),
        }
    }
}

pub(crate) struct Shared<R> {
    pub(crate) runtime: R,
    pub(crate) clock: Clock,
    pub(crate) config: EngineConfig,
    /// Routes requests and opens sessions through `&self`: no lock.
    router: Server<RandomSids>,
    /// Read by every long-polling request, written once per session.
    sessions: RwLock<HashMap<Sid, mpsc::Sender<Handoff>>>,
    pub(crate) mode: Box<dyn Mode<R>>,
    next_io_id: AtomicU64,
    /// What the sessions did; each session's task adds to it.
    pub(crate) counters: stats::Counters,
}

impl<R> Shared<R> {
    pub(crate) fn next_io_id(&self) -> u64 {
        self.next_io_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A new session, under the id `generate_id` chooses or a random one.
    pub(crate) fn open_session(
        &self,
        opening: Opening,
        dialect: Dialect,
        handshake: &Handshake,
    ) -> Session {
        let sid = self
            .config
            .generate_id
            .as_ref()
            .and_then(|generate| {
                let id = (generate.0)(handshake);
                let sid = Sid::parse(&id)
                    .ok()
                    .filter(|sid| !read(&self.sessions).contains_key(sid));
                if sid.is_none() {
                    tracing::warn!(%id, "generate_id gave an invalid or taken id; using a random one");
                }
                sid
            })
            .unwrap_or_else(random_sid);
        self.router
            .open_session_as(self.clock.now(), sid, opening, dialect)
    }

    /// The cookie and the `initial_headers` hook's headers, on a handshake's
    /// response.
    pub(crate) fn handshake_headers(&self, reply: &mut HttpReply, sid: Sid, request: &HeaderMap) {
        if let Some(value) = self
            .config
            .cookie
            .as_ref()
            .and_then(|c| c.header(sid.as_str()))
        {
            reply.headers_mut().append(hyper::header::SET_COOKIE, value);
        }
        if let Some(hook) = &self.config.initial_headers {
            (hook.0)(reply.headers_mut(), request);
        }
    }

    /// The encoding a polling GET's response may use: the one its
    /// `Accept-Encoding` prefers, when [`EngineConfig::http_compression`]
    /// is on.
    fn encoding<B>(&self, request: &hyper::Request<B>) -> Option<Encoding> {
        self.config.http_compression?;
        http_compression::negotiate(request.headers())
    }

    /// A polling response, compressed in the `encoding` its request
    /// accepts when [`EngineConfig::http_compression`] says so.
    fn reply(&self, mut response: HttpResponse, encoding: Option<Encoding>) -> HttpReply {
        let content_encoding = match (&self.config.http_compression, encoding) {
            (Some(config), Some(encoding)) => {
                http_compression::compress_response(config, encoding, &mut response)
            }
            _ => None,
        };
        let mut reply = reply_from(response);
        if let Some(value) = content_encoding {
            reply
                .headers_mut()
                .insert(hyper::header::CONTENT_ENCODING, value);
        }
        reply
    }

    /// Forgets session `sid` if the table's entry is still this one's (the
    /// task reading `inputs`): a custom `generate_id` that repeats ids
    /// must not let one session's end unregister another.
    pub(crate) fn remove_session(&self, sid: Sid, inputs: &mpsc::Receiver<Handoff>) {
        let mut sessions = write(&self.sessions);
        if sessions
            .get(&sid)
            .is_some_and(|sender| sender.is_connected_to(inputs))
        {
            sessions.remove(&sid);
        }
    }
}

/// Session ids from the operating system's CSPRNG (128 bits). Stateless:
/// the driver draws them with [`random_sid`] and opens sessions through
/// `&Server`.
struct RandomSids;

impl SidGenerator for RandomSids {
    fn generate(&mut self) -> Sid {
        random_sid()
    }
}

/// 128 random bits from the operating system, as an id (session ids, socket
/// ids, private recovery ids).
pub(crate) fn random_sid() -> Sid {
    let mut bytes = [0u8; 16];
    // Without randomness the server cannot hand out safe ids at all.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    Sid::from_random_bytes(bytes)
}

impl<R: Runtime> EngineServer<R> {
    /// A server calling `on_connection` with every new session.
    pub fn new(
        runtime: R,
        config: EngineConfig,
        on_connection: impl Fn(EngineSocket) + Send + Sync + 'static,
    ) -> Self {
        Self::with_mode(runtime, config, Box::new(RawMode(Box::new(on_connection))))
    }

    pub(crate) fn with_mode(runtime: R, config: EngineConfig, mode: Box<dyn Mode<R>>) -> Self {
        let router = Server::new(config.protocol.clone(), RandomSids);
        EngineServer {
            shared: Arc::new(Shared {
                clock: runtime.clock(),
                runtime,
                config,
                router,
                sessions: RwLock::new(HashMap::new()),
                mode,
                next_io_id: AtomicU64::new(1),
                counters: stats::Counters::default(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The runtime the server runs on.
    pub fn runtime(&self) -> &R {
        &self.shared.runtime
    }

    /// Closes every session (after delivering what each has buffered). New
    /// sessions can still open; stop the listener to refuse them.
    pub async fn close_all(&self) {
        let senders: Vec<mpsc::Sender<Handoff>> =
            read(&self.shared.sessions).values().cloned().collect();
        for mut sender in senders {
            let _ = sender.send(Handoff::Close).await;
        }
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        read(&self.shared.sessions).len()
    }

    /// What the sessions did since the server started (sessions by
    /// transport, closes by reason, messages and bytes both ways): what
    /// the Admin UI's charts and metrics read.
    pub fn stats(&self) -> EngineStats {
        self.shared.counters.snapshot()
    }

    /// Whether a request belongs to this server (its path starts with the
    /// configured path).
    pub fn matches<B>(&self, request: &hyper::Request<B>) -> bool {
        let path = request.uri().path();
        let configured = self.shared.config.path.trim_end_matches('/');
        path == configured || path.starts_with(&self.shared.config.path)
    }

    /// Answers one HTTP request on the Engine.IO path.
    pub fn handle<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Pin<Box<dyn Future<Output = HttpReply> + Send>>
    where
        B: RequestBody,
    {
        let shared = self.shared.clone();
        Box::pin(async move { handle(shared, request).await })
    }
}

async fn handle<R: Runtime, B: RequestBody>(
    shared: Arc<Shared<R>>,
    request: hyper::Request<B>,
) -> HttpReply {
    let preflight = request.method() == hyper::Method::OPTIONS;
    let cors = shared
        .config
        .cors
        .as_ref()
        .map(|cors| cors.headers(request.headers(), preflight));
    if preflight {
        return with_headers(cors, empty_reply(204));
    }
    // Copied only for a `headers` hook, which runs once the request is gone.
    let request_headers = shared
        .config
        .headers
        .as_ref()
        .map(|_| request.headers().clone());
    let websocket = websocket::is_upgrade_request(&request);
    let method = Method::parse(request.method().as_str());
    let route = shared.router.route(&Request {
        method,
        query: request.uri().query().unwrap_or(""),
        websocket,
    });
    let target = match route {
        Err(error) => Err(Refusal::of(error)),
        Ok(Route::Handshake(kind, dialect)) => match &shared.config.allow_request {
            // The handshake (its headers copied) is built only for a check.
            Some(allow) => {
                let handshake = Handshake::of(&request);
                match allow.check(&handshake).await {
                    Ok(()) => Ok(Target::Handshake(kind, dialect, Some(handshake))),
                    Err(message) => Err(Refusal {
                        error: RequestError::Forbidden,
                        // Node falls back to its own message for an empty one.
                        message: Some(message).filter(|message| !message.is_empty()),
                    }),
                }
            }
            None => Ok(Target::Handshake(kind, dialect, None)),
        },
        Ok(route @ (Route::Poll(sid) | Route::Post(sid) | Route::Upgrade(sid))) => {
            match session_sender(&shared, sid) {
                Some(sender) => Ok(Target::Session(route, sender)),
                None => Err(Refusal::of(RequestError::UnknownSid)),
            }
        }
    };
    let refused = target.is_err();
    let reply = match target {
        Err(refusal) => refusal.reply(&shared, &request),
        Ok(Target::Handshake(TransportKind::Polling, dialect, handshake)) => {
            let handshake = handshake.unwrap_or_else(|| Handshake::of(&request));
            let encoding = shared.encoding(&request);
            open_polling(&shared, dialect, Arc::new(handshake), encoding).await
        }
        Ok(Target::Handshake(TransportKind::WebSocket, dialect, handshake)) => {
            websocket::open(&shared, request, dialect, handshake)
        }
        Ok(Target::Session(Route::Poll(_), sender)) => {
            let request_id = RequestId(shared.next_io_id());
            let encoding = shared.encoding(&request);
            let response = forward(sender, |reply| Handoff::Poll {
                request: request_id,
                reply,
            })
            .await;
            shared.reply(response, encoding)
        }
        Ok(Target::Session(Route::Post(_), sender)) => {
            let request_id = RequestId(shared.next_io_id());
            // The session decides: a v3 binary payload, or a v4 refusal.
            let binary = is_binary_content(&request);
            let body = read_body(&shared, request.into_body()).await;
            let response = forward(sender, |reply| match body {
                Ok(body) => Handoff::Post {
                    request: request_id,
                    body,
                    binary,
                    reply,
                },
                Err(failure) => Handoff::PostFailed {
                    request: request_id,
                    failure,
                    reply,
                },
            })
            .await;
            // `ok` or an error: never worth compressing.
            reply_from(response)
        }
        Ok(Target::Session(_, sender)) => websocket::upgrade(&shared, request, sender),
    };
    let mut reply = with_headers(cors, reply);
    // Node emits `headers` for what a transport writes, not for refusals.
    if let (Some(hook), Some(request_headers), false) =
        (&shared.config.headers, &request_headers, refused)
    {
        (hook.0)(reply.headers_mut(), request_headers);
    }
    reply
}

/// Where a request goes once routed.
enum Target {
    /// A handshake in a client's dialect, with the handshake already built
    /// for `allow_request`.
    Handshake(TransportKind, Dialect, Option<Handshake>),
    /// A request of a live session (its route: poll, post or upgrade), with
    /// the session's queue.
    Session(Route, mpsc::Sender<Handoff>),
}

/// A refused request: Node's error, and a message of the application's
/// (an `allow_request` refusal) instead of Node's.
struct Refusal {
    error: RequestError,
    message: Option<String>,
}

impl Refusal {
    fn of(error: RequestError) -> Refusal {
        Refusal {
            error,
            message: None,
        }
    }

    /// Tells the `connection_error` hook, then answers as Node does.
    fn reply<R, B>(self, shared: &Shared<R>, request: &hyper::Request<B>) -> HttpReply {
        if let Some(hook) = &shared.config.on_connection_error {
            (hook.0)(&ConnectionError {
                code: self.error.code(),
                message: self.error.message().to_owned(),
                context: self.message.clone(),
                request: Handshake::of(request),
            });
        }
        let mut response = self.error.response();
        if let Some(message) = self.message {
            let body = serde_json::json!({ "code": self.error.code(), "message": message });
            response.body = Bytes::from(body.to_string());
        }
        reply_from(response)
    }
}

/// Creates a polling session; its first output answers this request.
async fn open_polling<R: Runtime>(
    shared: &Arc<Shared<R>>,
    dialect: Dialect,
    handshake: Arc<Handshake>,
    encoding: Option<Encoding>,
) -> HttpReply {
    let request = RequestId(shared.next_io_id());
    let (reply, response) = oneshot::channel();
    let session = shared.open_session(Opening::Polling(request), dialect, &handshake);
    let sid = session.sid();
    session::start(
        shared,
        session,
        Some((request, reply)),
        None,
        handshake.clone(),
    );
    match response.await {
        Ok(response) => {
            let mut reply = shared.reply(response, encoding);
            shared.handshake_headers(&mut reply, sid, &handshake.headers);
            reply
        }
        Err(_) => empty_reply(500),
    }
}

fn session_sender<R>(shared: &Shared<R>, sid: Sid) -> Option<mpsc::Sender<Handoff>> {
    read(&shared.sessions).get(&sid).cloned()
}

pub(crate) fn register<R>(shared: &Shared<R>, sid: Sid, sender: mpsc::Sender<Handoff>) {
    write(&shared.sessions).insert(sid, sender);
}

/// Hands a request to its session and awaits the session's answer.
async fn forward(
    mut sender: mpsc::Sender<Handoff>,
    input: impl FnOnce(oneshot::Sender<HttpResponse>) -> Handoff,
) -> HttpResponse {
    let (reply, response) = oneshot::channel();
    if sender.send(input(reply)).await.is_err() {
        return RequestError::UnknownSid.response();
    }
    // The session ended without answering: it is gone.
    response
        .await
        .unwrap_or_else(|_| RequestError::UnknownSid.response())
}

/// Whether a POST declares binary content, which Engine.IO v4 never sends
/// (Node refuses it: "invalid content").
fn is_binary_content<B>(request: &hyper::Request<B>) -> bool {
    request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/octet-stream")
}

/// Reads a POST body, stopping one chunk past `max_payload` bytes so an
/// oversized body costs bounded memory (the session answers it with 413).
/// A body that takes longer than `body_timeout`, comes in more than
/// `max_body_chunks` chunks, or fails mid-way is a [`PostFailure`].
async fn read_body<R: Runtime, B: RequestBody>(
    shared: &Shared<R>,
    body: B,
) -> Result<Bytes, PostFailure> {
    let config = &shared.config;
    let read = async {
        let mut body = std::pin::pin!(body);
        // A body in one chunk (the usual case) is kept as it came, not
        // copied; a second chunk starts a buffer.
        let mut first = Bytes::new();
        let mut collected = BytesMut::new();
        let mut chunks = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| PostFailure::Aborted)?;
            if let Ok(data) = frame.into_data() {
                chunks += 1;
                if chunks > config.max_body_chunks {
                    return Err(PostFailure::TooManyChunks);
                }
                if chunks == 1 {
                    first = data;
                } else {
                    if chunks == 2 {
                        collected.extend_from_slice(&first);
                    }
                    collected.extend_from_slice(&data);
                }
                if first.len().max(collected.len()) > config.protocol.max_payload {
                    break;
                }
            }
        }
        Ok(if chunks > 1 {
            collected.freeze()
        } else {
            first
        })
    };
    let mut read = std::pin::pin!(read);
    // A small body has usually arrived with the headers: no timer for it.
    if let std::task::Poll::Ready(body) = futures_util::poll!(read.as_mut()) {
        return body;
    }
    let deadline = shared.clock.now_std() + config.body_timeout;
    let timeout = shared.runtime.sleep_until(deadline);
    match futures_util::future::select(read, timeout).await {
        futures_util::future::Either::Left((read, _)) => read,
        futures_util::future::Either::Right(((), _)) => Err(PostFailure::Timeout),
    }
}

pub(crate) fn reply_from(response: HttpResponse) -> HttpReply {
    let mut builder = hyper::Response::builder().status(response.status);
    if let Some(value) = response.content_type.header_value() {
        builder = builder.header(hyper::header::CONTENT_TYPE, value);
    }
    if matches!(
        response.content_type,
        ContentType::Payload | ContentType::Binary
    ) {
        builder = builder.header(hyper::header::CACHE_CONTROL, "no-store");
    }
    builder
        .body(Full::new(response.body))
        .unwrap_or_else(|_| empty_reply(500))
}

/// The answer to a request on no known path.
pub fn not_found() -> HttpReply {
    empty_reply(404)
}

pub(crate) fn empty_reply(status: u16) -> HttpReply {
    let mut reply = hyper::Response::new(Full::new(Bytes::new()));
    *reply.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    reply
}

fn with_headers(cors: Option<hyper::HeaderMap>, mut reply: HttpReply) -> HttpReply {
    if let Some(cors) = cors {
        reply.headers_mut().extend(cors);
    }
    reply
}

pub(crate) fn ws_id<R>(shared: &Shared<R>) -> WsId {
    WsId(shared.next_io_id())
}
