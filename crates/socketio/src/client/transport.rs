//! The client's IO: TCP (from the runtime), TLS, HTTP requests for
//! long-polling and WebSockets, carried out for the Engine.IO client machine.
//!
//! The machine decides what to send and when; this file only performs its
//! intents and reports their results. Every result is bounded: responses and
//! WebSocket messages by [`MAX_MESSAGE`], requests by the caller's timeout.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use web_time::Instant as StdInstant;

use base64::Engine as _;
use bytes::Bytes;
use engineio_proto::client::{HttpMethod, Query};
use http::HeaderValue;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use smol_hyper::rt::FuturesIo;

use engineio_proto::WsId;

use super::driver::{self, Shared};
use super::options::Endpoint;
use crate::http_compression;
use crate::locks::lock;
use crate::runtime::{BoxFuture, ClientRuntime, Clock, ConnectFuture, Runtime, Sleep, Stream};
use crate::ws::frame::Role;
use crate::ws::{deflate, Settings, UpgradedIo, WebSocket};
use crate::ws_link::WsLink;
use crate::HyperIo;

/// The largest HTTP response body or WebSocket message the client accepts.
/// Node's server sends at most `maxHttpBufferSize` (1 MB) per message by
/// default; polling responses may batch several.
pub(crate) const MAX_MESSAGE: usize = 16 << 20;

/// Idle HTTP connections kept for reuse: long-polling has one GET and one
/// POST in flight at most.
const MAX_IDLE: usize = 2;

/// A connected stream of any runtime, plain or TLS.
pub(crate) type BoxStream = Box<dyn Stream>;

/// The client's WebSocket: its connection, once upgraded.
pub(crate) type ClientWs = WebSocket<UpgradedIo>;

/// The runtime as the client uses it, without its type: so that client
/// handles are not generic over the runtime.
pub(crate) trait ClientIo: Send + Sync + 'static {
    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<BoxStream>;
    fn spawn(&self, task: BoxFuture);
    fn sleep_until(&self, deadline: StdInstant) -> Sleep;
    fn clock(&self) -> Clock;
}

pub(crate) struct RuntimeIo<R>(pub(crate) R);

impl<R: ClientRuntime> ClientIo for RuntimeIo<R> {
    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<BoxStream> {
        let connecting = self.0.connect_tcp(host, port);
        Box::pin(async move { Ok(Box::new(connecting.await?) as BoxStream) })
    }

    fn spawn(&self, task: BoxFuture) {
        Runtime::spawn(&self.0, task)
    }

    fn sleep_until(&self, deadline: StdInstant) -> Sleep {
        Runtime::sleep_until(&self.0, deadline)
    }

    fn clock(&self) -> Clock {
        Runtime::clock(&self.0)
    }
}

/// Opens a TCP connection to the endpoint, with TLS for `https`/`wss`.
async fn open_stream(io: &dyn ClientIo, endpoint: &Endpoint) -> io::Result<BoxStream> {
    let tcp = io.connect_tcp(endpoint.host.clone(), endpoint.port).await?;
    if !endpoint.secure {
        return Ok(tcp);
    }
    tls_connect(tcp, endpoint).await
}

#[cfg(feature = "tls")]
async fn tls_connect(tcp: BoxStream, endpoint: &Endpoint) -> io::Result<BoxStream> {
    let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let connector = futures_rustls::TlsConnector::from(endpoint.tls.clone());
    Ok(Box::new(connector.connect(name, tcp).await?))
}

#[cfg(not(feature = "tls"))]
async fn tls_connect(_tcp: BoxStream, _endpoint: &Endpoint) -> io::Result<BoxStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "https/wss need the `tls` feature of the socketio crate",
    ))
}

/// Reusable HTTP/1.1 connections to the endpoint, kept while the session
/// polls: once it has moved to WebSocket they are closed (Node's server
/// would close them after 5 s idle, ours after its header timeout; ten
/// thousand upgraded clients held ten thousand idle connections on both
/// sides meanwhile).
#[derive(Default)]
pub(crate) struct HttpPool {
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    /// Set on upgrade: connections are not kept until polling resumes.
    retired: AtomicBool,
}

impl HttpPool {
    /// A ready connection: an idle one, or a new one.
    async fn take(
        &self,
        io: &dyn ClientIo,
        endpoint: &Endpoint,
    ) -> io::Result<SendRequest<Full<Bytes>>> {
        loop {
            let Some(mut sender) = lock(&self.idle).pop() else {
                break;
            };
            // A connection the server closed while idle is skipped.
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let stream = open_stream(io, endpoint).await?;
        let (sender, connection) = http1::handshake(FuturesIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        io.spawn(Box::pin(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "http connection ended with an error");
            }
        }));
        Ok(sender)
    }

    fn put_back(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = lock(&self.idle);
        if idle.len() < MAX_IDLE && !sender.is_closed() && !self.retired.load(Ordering::Relaxed) {
            idle.push(sender);
        }
    }

    /// Drops the idle connections (the client is closing).
    pub(crate) fn clear(&self) {
        lock(&self.idle).clear();
    }

    /// The session moved to WebSocket: drops the idle connections, and
    /// those of requests still running when they end.
    pub(crate) fn retire(&self) {
        let mut idle = lock(&self.idle);
        self.retired.store(true, Ordering::Relaxed);
        idle.clear();
    }

    /// Polling again (a new session): connections are kept again.
    pub(crate) fn reuse(&self) {
        self.retired.store(false, Ordering::Relaxed);
    }
}

/// Makes one Engine.IO HTTP request; returns the status and the body.
pub(crate) async fn http_request(
    io: &dyn ClientIo,
    pool: &HttpPool,
    endpoint: &Endpoint,
    method: HttpMethod,
    query: Query,
    body: Bytes,
) -> io::Result<(u16, Bytes)> {
    let mut sender = pool.take(io, endpoint).await?;
    let mut request = hyper::Request::builder()
        .method(match method {
            HttpMethod::Get => http::Method::GET,
            HttpMethod::Post => http::Method::POST,
        })
        .uri(endpoint.request_target(&query))
        .header(http::header::HOST, endpoint.host_header())
        .body(Full::new(body))
        .map_err(io::Error::other)?;
    let headers = request.headers_mut();
    for (name, value) in &endpoint.headers {
        headers.append(name.clone(), value.clone());
    }
    if method == HttpMethod::Post {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain;charset=UTF-8"),
        );
    }
    // As a browser does; the application's own header, if any, stands.
    if !headers.contains_key(http::header::ACCEPT_ENCODING) {
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static(http_compression::ACCEPTED),
        );
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_MESSAGE)
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    pool.put_back(sender);
    let body = http_compression::decode(&parts.headers, body, MAX_MESSAGE)?;
    Ok((status, body))
}

/// The client's WebSocket as its driver holds it.
pub(crate) type ClientLink = WsLink<UpgradedIo>;

/// A link whose opening connects (TLS included) and does the WebSocket
/// handshake by `deadline`.
pub(crate) fn open_link(
    shared: Arc<Shared>,
    ws: WsId,
    query: Query,
    deadline: StdInstant,
) -> ClientLink {
    let opening = Box::pin(async move {
        let io = shared.io.as_ref();
        let connecting = websocket(io, &shared.endpoint, query);
        match driver::within(io, deadline, connecting).await {
            Some(Ok(socket)) => Some(socket),
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket failed to open");
                None
            }
            None => None,
        }
    });
    WsLink::new(ws, opening, driver::WS_QUEUE)
}

/// Opens the Engine.IO WebSocket: an HTTP/1.1 upgrade (RFC 6455 section
/// 4.1), offering permessage-deflate when the options ask for it.
async fn websocket(io: &dyn ClientIo, endpoint: &Endpoint, query: Query) -> io::Result<ClientWs> {
    use http::header::{
        CONNECTION, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS, SEC_WEBSOCKET_KEY,
        SEC_WEBSOCKET_VERSION, UPGRADE,
    };
    let stream = open_stream(io, endpoint).await?;
    let (mut sender, connection) = http1::handshake(FuturesIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    io.spawn(Box::pin(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "websocket handshake connection failed");
        }
    }));
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let mut request = hyper::Request::builder()
        .uri(endpoint.request_target(&query))
        .header(HOST, endpoint.host_header())
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_KEY, &key)
        .header(SEC_WEBSOCKET_VERSION, "13");
    if let Some(config) = &endpoint.per_message_deflate {
        request = request.header(SEC_WEBSOCKET_EXTENSIONS, deflate::offer(config));
    }
    let mut request = request
        .body(Full::new(Bytes::new()))
        .map_err(io::Error::other)?;
    let headers = request.headers_mut();
    for (name, value) in &endpoint.headers {
        headers.append(name.clone(), value.clone());
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(io::Error::other)?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(io::Error::other(format!(
            "the WebSocket handshake was answered {}",
            response.status()
        )));
    }
    let accept = crate::ws::accept_key(key.as_bytes());
    if response
        .headers()
        .get(SEC_WEBSOCKET_ACCEPT)
        .map(|v| v.as_bytes())
        != Some(accept.as_bytes())
    {
        return Err(io::Error::other(
            "the WebSocket handshake's Sec-WebSocket-Accept is wrong",
        ));
    }
    let answers = response
        .headers()
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|value| value.to_str().map_err(io::Error::other))
        .collect::<io::Result<Vec<&str>>>()?;
    let deflate = match &endpoint.per_message_deflate {
        Some(config) => {
            deflate::accept_answer(config, answers.into_iter()).map_err(io::Error::other)?
        }
        None if answers.is_empty() => None,
        None => {
            return Err(io::Error::other(
                "the server answered an extension that was not offered",
            ))
        }
    };
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(io::Error::other)?;
    Ok(WebSocket::new(
        HyperIo(upgraded),
        Settings {
            role: Role::Client,
            max_message: MAX_MESSAGE,
            read_chunk: 4096,
            deflate,
        },
    ))
}

/// The default TLS settings: the Mozilla roots of `webpki-roots`.
#[cfg(feature = "tls")]
pub(crate) fn default_tls() -> Arc<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    // The ring provider supports the default versions; this cannot fail.
    Arc::new(config.expect("ring supports TLS 1.2 and 1.3"))
}
