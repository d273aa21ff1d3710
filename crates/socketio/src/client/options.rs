//! The client's options (Node's `io(url, options)`) and the endpoint they
//! and the URL describe.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use engineio_proto::client::Query;
use engineio_proto::Transports;
use http::{HeaderName, HeaderValue};
use serde::Serialize;

#[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
use super::transport;

/// The future an auth callback returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = serde_json::Value> + Send>>;

/// Where a namespace's CONNECT auth comes from.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    /// No auth (the server sees `{}`).
    #[default]
    None,
    /// The same object every time.
    Fixed(serde_json::Value),
    /// Computed before every CONNECT, reconnections included (Node's `auth`
    /// callback).
    Dynamic(Arc<dyn Fn() -> AuthFuture + Send + Sync>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Fixed(value) => write!(f, "Fixed({value})"),
            Auth::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

/// Why the client could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL could not be parsed, or its scheme is not http(s)/ws(s).
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// An extra header's name or value is not valid HTTP.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// An auth value did not serialize to a JSON object.
    #[error("auth must be a JSON object")]
    InvalidAuth,
}

/// Client options, named and defaulted as Node's client (`io(url, options)`).
///
/// ```
/// use std::time::Duration;
/// use socketio::client::{ClientOptions, Transports};
///
/// let options = ClientOptions::default()
///     .transports(Transports::WEBSOCKET)
///     .auth(&serde_json::json!({ "token": "abc" }))
///     .unwrap()
///     .extra_header("x-team", "blue")
///     .query("room", "lobby")
///     .reconnection_delay(Duration::from_millis(200))
///     .ack_timeout(Duration::from_secs(2))
///     .retries(3);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub(crate) path: String,
    pub(crate) auth: Auth,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) query: Vec<(String, String)>,
    /// Reconnection, timeouts, retries, buffers and transports: the
    /// protocol machine's own settings, whose defaults are Node's.
    pub(crate) protocol: socketio_proto::client::ClientConfig,
    #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// A header that failed to parse, reported by `connect`.
    pub(crate) bad_header: Option<String>,
    pub(crate) max_pending_events: usize,
    /// In the browser: whether cross-origin requests carry cookies.
    #[cfg(target_arch = "wasm32")]
    pub(crate) with_credentials: bool,
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) per_message_deflate: Option<crate::PerMessageDeflate>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            path: String::from("/socket.io"),
            auth: Auth::None,
            headers: Vec::new(),
            query: Vec::new(),
            protocol: socketio_proto::client::ClientConfig::default(),
            #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
            tls: None,
            bad_header: None,
            max_pending_events: 1024,
            #[cfg(target_arch = "wasm32")]
            with_credentials: false,
            #[cfg(not(target_arch = "wasm32"))]
            per_message_deflate: None,
        }
    }
}

impl ClientOptions {
    /// The server's Engine.IO path (Node's `path`, default `/socket.io`).
    pub fn path(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// The transports to use (Node's `transports`): [`Transports::ALL`]
    /// starts on long-polling and upgrades to WebSocket,
    /// [`Transports::POLLING`] or [`Transports::WEBSOCKET`] use one only.
    pub fn transports(mut self, transports: Transports) -> Self {
        self.protocol.engine.transports = transports;
        self
    }

    /// Whether to upgrade from long-polling to WebSocket (Node's `upgrade`,
    /// default true).
    pub fn upgrade(mut self, upgrade: bool) -> Self {
        self.protocol.engine.upgrade = upgrade;
        self
    }

    /// The auth object sent with CONNECT to the namespace of the URL
    /// (Node's `auth`); it must serialize to a JSON object.
    pub fn auth<T: Serialize + ?Sized>(mut self, auth: &T) -> Result<Self, ClientError> {
        self.auth = fixed_auth(auth)?;
        Ok(self)
    }

    /// An auth computed before every CONNECT, reconnections included
    /// (Node's `auth: (cb) => …`): for tokens that expire. It should return
    /// a JSON object.
    pub fn auth_with<F, Fut>(mut self, auth: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = serde_json::Value> + Send + 'static,
    {
        self.auth = Auth::Dynamic(Arc::new(move || Box::pin(auth())));
        self
    }

    /// A header sent with every HTTP request and the WebSocket handshake
    /// (Node's `extraHeaders`). An invalid one makes `connect` fail.
    ///
    /// In the browser, as with Node's client there, headers go with the
    /// long-polling requests only (a browser's WebSocket takes none), and
    /// the browser drops those it forbids scripts to set (`Cookie`,
    /// `Host`, `Origin`…); a header that is not CORS-safelisted makes a
    /// cross-origin request preflighted.
    pub fn extra_header(mut self, name: &str, value: &str) -> Self {
        match header(name, value) {
            Some(header) => self.headers.push(header),
            None => self.bad_header = Some(format!("{name}: {value}")),
        }
        self
    }

    /// Offers permessage-deflate on the WebSocket (Node's
    /// `perMessageDeflate` client option, which its WebSocket library
    /// offers by default). The server may decline it; messages under the
    /// threshold go uncompressed either way. Off unless set.
    ///
    /// ```
    /// use socketio::client::ClientOptions;
    /// use socketio::PerMessageDeflate;
    ///
    /// let options = ClientOptions::default().per_message_deflate(PerMessageDeflate::default());
    /// # let _ = options;
    /// ```
    ///
    /// Native only: in the browser, the browser's WebSocket negotiates
    /// compression itself.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn per_message_deflate(mut self, deflate: crate::PerMessageDeflate) -> Self {
        self.per_message_deflate = Some(deflate);
        self
    }

    /// A query parameter added to every request (Node's `query`), after
    /// those of the URL.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Whether to reconnect after losing the connection (default true).
    pub fn reconnection(mut self, reconnection: bool) -> Self {
        self.protocol.reconnection = reconnection;
        self
    }

    /// Attempts before giving up (default: no limit).
    pub fn reconnection_attempts(mut self, attempts: u32) -> Self {
        self.protocol.reconnection_attempts = Some(attempts);
        self
    }

    /// The first delay before reconnecting (default 1 s); it doubles per
    /// attempt up to [`ClientOptions::reconnection_delay_max`].
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.protocol.reconnection_delay = delay;
        self
    }

    /// The longest delay between attempts (default 5 s).
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.protocol.reconnection_delay_max = delay;
        self
    }

    /// Jitter of the delays, 0 to 1 (default 0.5).
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.protocol.randomization_factor = factor.clamp(0.0, 1.0);
        self
    }

    /// How long opening the connection may take before the attempt fails
    /// (default 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.protocol.timeout = timeout;
        self
    }

    /// The deadline of each try of an emit when [`ClientOptions::retries`]
    /// is set (Node's `ackTimeout`).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.protocol.ack_timeout = Some(timeout);
        self
    }

    /// Extra tries of an emit the server did not acknowledge within
    /// [`ClientOptions::ack_timeout`] (Node's `retries`, default 0). With
    /// retries, emits are sent one at a time, each acknowledged before the
    /// next: at-least-once delivery.
    pub fn retries(mut self, retries: u32) -> Self {
        self.protocol.retries = retries;
        self
    }

    /// Speaks `parser` to the server (Node's `parser` option), which must
    /// use the same one: [`MsgpackParser`](crate::MsgpackParser) for a
    /// server with `socket.io-msgpack-parser`. The default is JSON.
    pub fn parser(self, parser: impl socketio_proto::Parser) -> Self {
        self.shared_parser(socketio_proto::SharedParser::new(parser))
    }

    /// [`ClientOptions::parser`] with a parser already shared (one
    /// [`SharedParser`](crate::SharedParser) for many clients).
    pub fn shared_parser(mut self, parser: socketio_proto::SharedParser) -> Self {
        self.protocol.parser = parser;
        self
    }

    /// Talks to a socket.io 2.x server (Engine.IO v3, Socket.IO protocol
    /// v4): the server joins the main namespace by itself, a namespace's
    /// auth travels as its query (string values as they are), socket ids
    /// are the engine's (`/admin#<engine id>` beyond the main namespace),
    /// and there is no connection state recovery. Off by default.
    pub fn socket_io_2_server(mut self, on: bool) -> Self {
        self.protocol.engine.protocol = if on {
            engineio_proto::Protocol::V3
        } else {
            engineio_proto::Protocol::V4
        };
        self
    }

    /// Packets a namespace keeps while disconnected (default 1024); emits
    /// beyond it fail with [`super::EmitError::BufferFull`].
    pub fn max_buffered_packets(mut self, packets: usize) -> Self {
        self.protocol.max_buffered_packets = packets;
        self
    }

    /// In the browser: whether long-polling requests to another origin
    /// carry the browser's cookies for it (Node's `withCredentials`,
    /// default `false`), as a load balancer's sticky-session cookie must.
    /// Requests to the page's own origin always carry them. The server
    /// must allow it (Node's `cors: { origin, credentials: true }`, our
    /// `Cors::with_credentials`, with an origin other than `*`).
    #[cfg(target_arch = "wasm32")]
    pub fn with_credentials(mut self, with_credentials: bool) -> Self {
        self.with_credentials = with_credentials;
        self
    }

    /// Events whose listeners have started and not finished, over all
    /// namespaces of the connection, beyond which the connection is
    /// dropped (default 1024). Listeners run side by side, so only those
    /// that await pile up; the client reconnects as configured, with
    /// `transport error` as the disconnect reason. The reading never
    /// stops instead: a listener may be awaiting an ack that only further
    /// reading brings.
    pub fn max_pending_events(mut self, events: usize) -> Self {
        self.max_pending_events = events;
        self
    }

    /// TLS settings for `https`/`wss` (default: the Mozilla roots of
    /// `webpki-roots`); use it to trust a private certificate authority.
    /// Native only: the browser verifies certificates itself.
    #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }
}

/// Parses a `Name: value` pair into a header.
fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((
        HeaderName::try_from(name).ok()?,
        HeaderValue::try_from(value).ok()?,
    ))
}

pub(crate) fn fixed_auth<T: Serialize + ?Sized>(auth: &T) -> Result<Auth, ClientError> {
    match serde_json::to_value(auth) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Auth::Fixed(value)),
        _ => Err(ClientError::InvalidAuth),
    }
}

/// Where the client connects: from the URL and the options.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) secure: bool,
    /// The host to connect to (an IPv6 address without brackets).
    pub(crate) host: String,
    /// The host as written in URLs and `Host` (IPv6 in brackets).
    url_host: String,
    pub(crate) port: u16,
    /// The Engine.IO path, ending with `/`.
    path: String,
    /// The application's query parameters, encoded, without `?`.
    query: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    #[cfg(target_arch = "wasm32")]
    pub(crate) with_credentials: bool,
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) per_message_deflate: Option<crate::PerMessageDeflate>,
    #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

impl Endpoint {
    /// Parses `url` (`http`, `https`, `ws` or `wss`); returns the endpoint
    /// and the namespace named by the URL's path (Node: `/` when empty).
    pub(crate) fn parse(
        url: &str,
        options: &ClientOptions,
    ) -> Result<(Endpoint, String), ClientError> {
        if let Some(bad) = &options.bad_header {
            return Err(ClientError::InvalidHeader(bad.clone()));
        }
        let url = UrlParts::parse(url)?;
        let secure = match url.scheme.as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => {
                return Err(ClientError::InvalidUrl(format!(
                    "unsupported scheme {other}"
                )))
            }
        };
        let port = match url.port {
            Some(port) => port,
            None if secure => 443,
            None => 80,
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &url.query {
            query.append_pair(name, value);
        }
        for (name, value) in &options.query {
            query.append_pair(name, value);
        }
        let nsp = match url.path.as_str() {
            "" => String::from("/"),
            path => path.to_owned(),
        };
        let (host, url_host) = (url.host, url.url_host);
        let endpoint = Endpoint {
            secure,
            host,
            url_host,
            port,
            // engine.io-client: the path always ends with one `/`.
            path: format!("{}/", options.path.trim_end_matches('/')),
            query: query.finish(),
            headers: options.headers.clone(),
            #[cfg(target_arch = "wasm32")]
            with_credentials: options.with_credentials,
            #[cfg(not(target_arch = "wasm32"))]
            per_message_deflate: options.per_message_deflate,
            #[cfg(all(feature = "tls", not(target_arch = "wasm32")))]
            tls: options.tls.clone().unwrap_or_else(transport::default_tls),
        };
        Ok((endpoint, nsp))
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        format!("{}:{}", self.url_host, self.port)
    }

    fn query_string(&self, query: &Query) -> String {
        if self.query.is_empty() {
            query.to_string()
        } else {
            format!("{}&{query}", self.query)
        }
    }

    /// The origin-form target of an HTTP request (`/socket.io/?…`).
    pub(crate) fn request_target(&self, query: &Query) -> String {
        format!("{}?{}", self.path, self.query_string(query))
    }

    /// The absolute URL of a request: `http(s)://` for long-polling,
    /// `ws(s)://` for a WebSocket (what the browser's APIs take).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn url(&self, websocket: bool, query: &Query) -> String {
        let scheme = match (websocket, self.secure) {
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        format!(
            "{scheme}://{}{}",
            self.host_header(),
            self.request_target(query)
        )
    }
}

/// What the client takes from its URL.
struct UrlParts {
    /// Lowercase, without `:`.
    scheme: String,
    /// The host to connect to (an IPv6 address without brackets).
    host: String,
    /// The host as written in URLs (IPv6 in brackets).
    url_host: String,
    /// `None`: the scheme's default.
    port: Option<u16>,
    path: String,
    /// Decoded.
    query: Vec<(String, String)>,
}

impl UrlParts {
    /// Natively, the `url` crate parses it.
    #[cfg(not(target_arch = "wasm32"))]
    fn parse(url: &str) -> Result<UrlParts, ClientError> {
        let url = url::Url::parse(url).map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
        let (host, url_host) = match url.host() {
            Some(url::Host::Ipv6(address)) => (address.to_string(), format!("[{address}]")),
            Some(host) => (host.to_string(), host.to_string()),
            None => return Err(ClientError::InvalidUrl(String::from("no host"))),
        };
        Ok(UrlParts {
            scheme: url.scheme().to_owned(),
            host,
            url_host,
            port: url.port(),
            path: url.path().to_owned(),
            query: url.query_pairs().into_owned().collect(),
        })
    }

    /// In the browser, the browser's own `URL` parses it (the `url` crate's
    /// tables would weigh more than the rest of the client), after Node's
    /// client completes it against the page's address (its `url()`): `//`
    /// takes the page's protocol, `/path` the page's host too, and an
    /// address without `http(s)://` or `ws(s)://` the page's protocol.
    #[cfg(target_arch = "wasm32")]
    fn parse(url: &str) -> Result<UrlParts, ClientError> {
        let invalid = || ClientError::InvalidUrl(url.to_owned());
        let page = super::browser::page_address();
        let mut full = url.to_owned();
        if full.starts_with("//") {
            let protocol = page.as_ref().map_or("https:", |(protocol, _)| protocol);
            full = format!("{protocol}{full}");
        } else if full.starts_with('/') {
            let (_, host) = page.as_ref().ok_or_else(|| {
                ClientError::InvalidUrl(String::from("a relative url outside a page"))
            })?;
            full = format!("{host}{full}");
        }
        let schemes = ["http://", "https://", "ws://", "wss://"];
        if !schemes.iter().any(|scheme| full.starts_with(scheme)) {
            let protocol = page.as_ref().map_or("https:", |(protocol, _)| protocol);
            full = format!("{protocol}//{full}");
        }
        let parsed = web_sys::Url::new(&full).map_err(|_| invalid())?;
        let url_host = parsed.hostname();
        if url_host.is_empty() {
            return Err(ClientError::InvalidUrl(String::from("no host")));
        }
        let host = url_host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(&url_host)
            .to_owned();
        let port = match parsed.port().as_str() {
            "" => None,
            port => Some(port.parse().map_err(|_| invalid())?),
        };
        let search = parsed.search();
        Ok(UrlParts {
            scheme: parsed.protocol().trim_end_matches(':').to_owned(),
            host,
            url_host,
            port,
            path: parsed.pathname(),
            query: form_urlencoded::parse(search.trim_start_matches('?').as_bytes())
                .into_owned()
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engineio_proto::TransportKind;

    fn query() -> Query {
        Query {
            transport: TransportKind::Polling,
            sid: None,
            protocol: engineio_proto::Protocol::V4,
        }
    }

    #[test]
    fn the_url_names_the_namespace_and_the_options_add_to_its_query() {
        let options = ClientOptions::default().query("b", "2 3").path("/io/");
        let (endpoint, nsp) = Endpoint::parse("https://example.com/admin?a=1", &options).unwrap();
        assert_eq!(nsp, "/admin");
        assert!(endpoint.secure);
        assert_eq!(endpoint.port, 443);
        assert_eq!(
            endpoint.request_target(&query()),
            "/io/?a=1&b=2+3&EIO=4&transport=polling"
        );
        assert!(endpoint.secure);
        assert_eq!(endpoint.host_header(), "example.com:443");
    }

    #[test]
    fn an_empty_path_is_the_main_namespace_and_ipv6_hosts_keep_brackets_in_urls_only() {
        let (endpoint, nsp) =
            Endpoint::parse("ws://[::1]:3000", &ClientOptions::default()).unwrap();
        assert_eq!(nsp, "/");
        assert_eq!(endpoint.host, "::1");
        assert_eq!(endpoint.host_header(), "[::1]:3000");
        assert_eq!(
            endpoint.request_target(&query()),
            "/socket.io/?EIO=4&transport=polling"
        );
    }

    #[test]
    fn bad_urls_headers_and_auth_are_refused() {
        let options = ClientOptions::default();
        assert!(matches!(
            Endpoint::parse("ftp://x", &options),
            Err(ClientError::InvalidUrl(_))
        ));
        assert!(matches!(
            Endpoint::parse("not a url", &options),
            Err(ClientError::InvalidUrl(_))
        ));
        let options = ClientOptions::default().extra_header("bad header", "x");
        assert!(matches!(
            Endpoint::parse("http://x", &options),
            Err(ClientError::InvalidHeader(_))
        ));
        assert!(ClientOptions::default().auth(&[1, 2]).is_err());
    }
}
