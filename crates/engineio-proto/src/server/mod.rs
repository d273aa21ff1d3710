//! The Engine.IO server: a request router and a state machine per session.
//!
//! # Theory of operation
//!
//! A driver owns the HTTP server and a table of live sessions keyed by
//! [`Sid`]. For every HTTP request (or WebSocket upgrade request) on the
//! Engine.IO path it calls [`Server::route`], which reads only the method and
//! query and answers with a [`Route`] or a [`RequestError`] carrying Node's
//! status code and JSON body.
//!
//! * [`Route::Handshake`]: the driver calls [`Server::open_session`], stores the
//!   returned [`Session`] under its sid and drains its outputs (the first one
//!   answers the handshake request or sends the first WebSocket frame).
//! * [`Route::Poll`], [`Route::Post`], [`Route::Upgrade`]: the driver looks the
//!   sid up (absent: [`RequestError::UnknownSid`]) and hands the request to that
//!   session as an [`Input`] through [`Session::handle_input`].
//!
//! The router has no per-session state, so sessions can live on different
//! tasks or threads while the router is shared read-only.

mod session;

pub use session::{Input, Output, SendError, Session, Traffic};

use core::time::Duration;

use alloc::borrow::Cow;

use bytes::Bytes;

use crate::sid::{Sid, SidGenerator};
use crate::time::Instant;
use crate::transport::{Dialect, Protocol, RequestId, TransportKind, Transports, WsId};

/// Server settings, with Node's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Time between a pong (or the handshake) and the next ping. Node: 25 s.
    pub ping_interval: Duration,
    /// Time a client has to answer a ping. Node: 20 s.
    pub ping_timeout: Duration,
    /// Time a client has to finish an upgrade after opening the WebSocket. Node: 10 s.
    pub upgrade_timeout: Duration,
    /// Largest POST body or WebSocket message accepted, in bytes (Node's
    /// `maxHttpBufferSize`, announced as `maxPayload`). Node: 1,000,000.
    pub max_payload: usize,
    /// Transports accepted.
    pub transports: Transports,
    /// Whether polling sessions may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// How long a closing polling session waits for a GET to deliver its
    /// CLOSE packet before it is dropped anyway. Node: 30 s.
    pub close_timeout: Duration,
    /// Packets a session holds for a peer that does not read (buffered,
    /// or encoded as outputs the driver has not taken yet) before
    /// [`Session::send`] fails with [`SendError::BufferFull`].
    pub max_buffered_packets: usize,
    /// Whether clients of protocol revision 3 (socket.io 2.x) are served
    /// (Node's `allowEIO3`). Off by default, as in Node: their handshakes
    /// are refused with code 5.
    pub allow_eio3: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            transports: Transports::ALL,
            allow_upgrades: true,
            close_timeout: Duration::from_millis(30_000),
            max_buffered_packets: 4096,
            allow_eio3: false,
        }
    }
}

/// The HTTP method of a request, as far as Engine.IO cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET: a handshake, a long-poll, or a WebSocket upgrade.
    Get,
    /// POST: packets from the client.
    Post,
    /// Anything else (always refused).
    Other,
}

impl Method {
    /// Maps a method name.
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "POST" => Method::Post,
            _ => Method::Other,
        }
    }
}

/// What the router needs to know of an HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The raw query string, without the `?`.
    pub query: &'a str,
    /// Whether this is a WebSocket upgrade request.
    pub websocket: bool,
}

/// Where an accepted request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A new session speaking this dialect: call
    /// [`Server::open_session_as`].
    Handshake(TransportKind, Dialect),
    /// A long-poll GET for an existing session: [`Input::Poll`].
    Poll(Sid),
    /// A POST for an existing session: [`Input::Post`].
    Post(Sid),
    /// A WebSocket for an existing session (an upgrade): accept the WebSocket
    /// and feed [`Input::Upgrade`].
    Upgrade(Sid),
}

/// A refused request: the Engine.IO error codes 0–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Code 0: no or unsupported `transport`.
    #[error("transport unknown")]
    UnknownTransport,
    /// Code 1: no live session has this sid.
    #[error("session id unknown")]
    UnknownSid,
    /// Code 2: a handshake with a method other than GET.
    #[error("bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: a request that does not fit the session's state.
    #[error("bad request")]
    BadRequest,
    /// Code 4: refused by the application (`allowRequest`).
    #[error("forbidden")]
    Forbidden,
    /// Code 5: `EIO` is not 4 (nor 3 with `allow_eio3`).
    #[error("unsupported protocol version")]
    UnsupportedProtocolVersion,
}

impl RequestError {
    /// The Engine.IO error code.
    pub const fn code(self) -> u8 {
        match self {
            RequestError::UnknownTransport => 0,
            RequestError::UnknownSid => 1,
            RequestError::BadHandshakeMethod => 2,
            RequestError::BadRequest => 3,
            RequestError::Forbidden => 4,
            RequestError::UnsupportedProtocolVersion => 5,
        }
    }

    /// The message Node sends with the code.
    pub const fn message(self) -> &'static str {
        match self {
            RequestError::UnknownTransport => "Transport unknown",
            RequestError::UnknownSid => "Session ID unknown",
            RequestError::BadHandshakeMethod => "Bad handshake method",
            RequestError::BadRequest => "Bad request",
            RequestError::Forbidden => "Forbidden",
            RequestError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for [`RequestError::Forbidden`], 400 otherwise.
    pub const fn status(self) -> u16 {
        match self {
            RequestError::Forbidden => 403,
            _ => 400,
        }
    }

    /// The full HTTP response Node writes: status, JSON content type and
    /// `{"code":N,"message":"…"}`.
    pub fn response(self) -> HttpResponse {
        let body = alloc::format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self.code(),
            self.message()
        );
        HttpResponse {
            status: self.status(),
            content_type: ContentType::Json,
            body: Bytes::from(body),
            compress: false,
        }
    }
}

/// The content type of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// A polling payload: `text/plain; charset=UTF-8`.
    Payload,
    /// A v3 binary polling payload: `application/octet-stream`.
    Binary,
    /// The `ok` answer to a POST: `text/html`, as Node sends it.
    Html,
    /// An error body: `application/json`.
    Json,
    /// No body.
    None,
}

impl ContentType {
    /// The header value, if there is a body.
    pub const fn header_value(self) -> Option<&'static str> {
        match self {
            ContentType::Payload => Some("text/plain; charset=UTF-8"),
            ContentType::Binary => Some("application/octet-stream"),
            ContentType::Html => Some("text/html"),
            ContentType::Json => Some("application/json"),
            ContentType::None => None,
        }
    }
}

/// An HTTP response for the driver to write. The driver adds its own headers
/// (CORS, `Cache-Control: no-store`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// What the body is.
    pub content_type: ContentType,
    /// The body.
    pub body: Bytes,
    /// Whether the driver may compress the body for a client that accepts
    /// it (Node's `httpCompression`): set on a polling payload unless every
    /// message in it was sent with compression off.
    pub compress: bool,
}

impl HttpResponse {
    /// 200 with a polling payload, which may be compressed.
    pub fn payload(body: Bytes) -> HttpResponse {
        HttpResponse {
            status: 200,
            content_type: ContentType::Payload,
            body,
            compress: true,
        }
    }

    /// 200 `ok`, the answer to an accepted POST.
    pub fn ok() -> HttpResponse {
        HttpResponse {
            status: 200,
            content_type: ContentType::Html,
            body: Bytes::from_static(b"ok"),
            compress: false,
        }
    }

    /// 413, the answer to a body over `maxPayload`.
    pub fn payload_too_large() -> HttpResponse {
        HttpResponse::empty(413)
    }

    /// A status with no body (408, 413, …).
    pub fn empty(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            content_type: ContentType::None,
            body: Bytes::new(),
            compress: false,
        }
    }
}

/// How a new session's first transport reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A handshake GET: its response carries the OPEN packet.
    Polling(RequestId),
    /// An accepted WebSocket: its first frame is the OPEN packet.
    WebSocket(WsId),
}

/// The request router and session factory. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Server<G> {
    config: ServerConfig,
    sids: G,
}

impl<G: SidGenerator> Server<G> {
    /// A server with these settings drawing session ids from `sids`.
    pub fn new(config: ServerConfig, sids: G) -> Self {
        Server { config, sids }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Classifies a request from its method and query, in Node's order of
    /// checks: transport, then sid (an unknown sid is for the caller to
    /// detect), then handshake method and protocol version.
    pub fn route(&self, request: &Request<'_>) -> Result<Route, RequestError> {
        let query = Query::parse(request.query);
        let transport = query
            .transport
            .and_then(|t| TransportKind::parse(&t))
            .filter(|&t| self.config.transports.allows(t))
            .ok_or(RequestError::UnknownTransport)?;

        if let Some(sid) = query.sid {
            let sid = Sid::parse(&sid).map_err(|_| RequestError::UnknownSid)?;
            return match (request.websocket, transport, request.method) {
                (true, TransportKind::WebSocket, _) => Ok(Route::Upgrade(sid)),
                (false, TransportKind::Polling, Method::Get) => Ok(Route::Poll(sid)),
                (false, TransportKind::Polling, Method::Post) => Ok(Route::Post(sid)),
                _ => Err(RequestError::BadRequest),
            };
        }

        if request.method != Method::Get {
            return Err(RequestError::BadHandshakeMethod);
        }
        if request.websocket != (transport == TransportKind::WebSocket) {
            return Err(RequestError::BadRequest);
        }
        // As Node: `EIO=4` is v4, anything else (even none) v3.
        let protocol = if query.eio.as_deref() == Some("4") {
            Protocol::V4
        } else if self.config.allow_eio3 {
            Protocol::V3
        } else {
            return Err(RequestError::UnsupportedProtocolVersion);
        };
        let jsonp = match (&query.jsonp, transport) {
            (Some(index), TransportKind::Polling) => Some(jsonp_index(index)?),
            _ => None,
        };
        let dialect = Dialect {
            protocol,
            // Node: binary unless `b64` has a value.
            binary_payloads: protocol == Protocol::V3
                && jsonp.is_none()
                && query.b64.as_deref().is_none_or(str::is_empty),
            jsonp,
        };
        Ok(Route::Handshake(transport, dialect))
    }

    /// Starts a session for an accepted handshake. Drain the session's
    /// outputs next: the first answers the handshake.
    pub fn open_session(&mut self, now: Instant, opening: Opening) -> Session {
        let sid = self.sids.generate();
        self.open_session_with_sid(now, sid, opening)
    }

    /// Like [`Server::open_session`], under a session id the caller drew
    /// itself: a driver whose ids need no state (random ones) shares one
    /// `Server` between threads without a lock, since routing and this
    /// take `&self`. The id must be unique among live sessions.
    pub fn open_session_with_sid(&self, now: Instant, sid: Sid, opening: Opening) -> Session {
        self.open_session_as(now, sid, opening, Dialect::default())
    }

    /// Like [`Server::open_session_with_sid`], for a client speaking
    /// `dialect` (from [`Route::Handshake`]): what a driver serving v3 or
    /// JSONP clients calls.
    pub fn open_session_as(
        &self,
        now: Instant,
        sid: Sid,
        opening: Opening,
        dialect: Dialect,
    ) -> Session {
        Session::new(now, sid, &self.config, opening, dialect)
    }
}

/// A JSONP callback index: the digits of `j` (Node drops anything else).
/// One that is not a number below 2^32 is refused.
fn jsonp_index(value: &str) -> Result<u32, RequestError> {
    let mut digits = value.chars().filter(char::is_ascii_digit).peekable();
    digits.peek().ok_or(RequestError::BadRequest)?;
    digits.try_fold(0u32, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(d.to_digit(10).unwrap_or(0)))
            .ok_or(RequestError::BadRequest)
    })
}

/// The query parameters Engine.IO reads, percent-decoded (borrowed when
/// there was nothing to decode: no allocation per request).
#[derive(Debug, Default)]
struct Query<'a> {
    eio: Option<Cow<'a, str>>,
    transport: Option<Cow<'a, str>>,
    sid: Option<Cow<'a, str>>,
    /// v3: the client reads no binary payloads.
    b64: Option<Cow<'a, str>>,
    /// JSONP polling, and the callback's index.
    jsonp: Option<Cow<'a, str>>,
}

impl<'a> Query<'a> {
    /// Parses `a=b&c=d`. Later duplicates win; other keys are ignored.
    fn parse(query: &'a str) -> Query<'a> {
        let mut out = Query::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "EIO" => &mut out.eio,
                "transport" => &mut out.transport,
                "sid" => &mut out.sid,
                "b64" => &mut out.b64,
                "j" => &mut out.jsonp,
                _ => continue,
            };
            *slot = Some(if value.contains(['%', '+']) {
                Cow::Owned(percent_decode(value))
            } else {
                Cow::Borrowed(value)
            });
        }
        out
    }
}

/// Decodes a query-string value: `%XX` escapes and `+`. Invalid escapes are
/// kept as they are, and bytes that do not form UTF-8 are replaced, which
/// makes a value fail validation later rather than here. Public so that
/// drivers reading other query parameters decode them the same way.
pub fn percent_decode(value: &str) -> alloc::string::String {
    if !value.contains(['%', '+']) {
        return value.into();
    }
    let bytes = value.as_bytes();
    let mut out = alloc::vec::Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    alloc::string::String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
