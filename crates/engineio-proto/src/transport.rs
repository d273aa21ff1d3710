//! Transport names and the ids drivers use to tag IO handles.

use core::fmt;

/// The two Engine.IO transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling: GET to receive, POST to send.
    Polling,
    /// One WebSocket carrying a frame per packet.
    WebSocket,
}

impl TransportKind {
    /// The name used in the `transport` query parameter and in `upgrades`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }

    /// Parses a `transport` query value.
    pub fn parse(s: &str) -> Option<TransportKind> {
        match s {
            "polling" => Some(TransportKind::Polling),
            "websocket" => Some(TransportKind::WebSocket),
            _ => None,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which transports a server accepts or a client tries, in preference order
/// for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transports {
    /// HTTP long-polling allowed.
    pub polling: bool,
    /// WebSocket allowed.
    pub websocket: bool,
}

impl Transports {
    /// Both transports (Node's default).
    pub const ALL: Transports = Transports {
        polling: true,
        websocket: true,
    };
    /// Long-polling only.
    pub const POLLING: Transports = Transports {
        polling: true,
        websocket: false,
    };
    /// WebSocket only.
    pub const WEBSOCKET: Transports = Transports {
        polling: false,
        websocket: true,
    };

    /// Whether `kind` is allowed.
    pub const fn allows(self, kind: TransportKind) -> bool {
        match kind {
            TransportKind::Polling => self.polling,
            TransportKind::WebSocket => self.websocket,
        }
    }
}

impl Default for Transports {
    fn default() -> Self {
        Transports::ALL
    }
}

/// Identifies one HTTP request a session is answering or a client is making.
///
/// The server side takes ids from the driver (any unique number per
/// in-flight request); the client machine assigns its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one WebSocket connection of a session, so events of a stale
/// connection (a failed probe, say) cannot be taken for the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WsId(pub u64);

/// The Engine.IO protocol revision a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Revision 3: socket.io 2.x clients (see [`crate::v3`]).
    V3,
    /// Revision 4, the current one.
    #[default]
    V4,
}

/// How a session's client encodes, as its handshake request said: the
/// protocol revision (`EIO`), and for long-polling whether it reads binary
/// payloads (v3 without `b64=1`) and whether it is JSONP polling (`j`,
/// the callback's index). The default is v4 over plain long-polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Dialect {
    /// The protocol revision.
    pub protocol: Protocol,
    /// v3 only: payloads with binary packets may be binary payloads.
    pub binary_payloads: bool,
    /// JSONP polling: responses are `___eio[<index>]("<payload>");`, POST
    /// bodies are forms with the payload in `d`.
    pub jsonp: Option<u32>,
}

/// Why a driver gave up reading a POST body (see
/// [`Session::handle_post_failed`](crate::server::Session::handle_post_failed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PostFailure {
    /// The body did not arrive whole within the driver's time limit.
    Timeout,
    /// The body came in more chunks than the driver accepts.
    TooManyChunks,
    /// The connection closed before the body was read.
    Aborted,
    /// The request declared binary content (`application/octet-stream`).
    BinaryContent,
}

/// Why a driver ended a WebSocket that broke the WebSocket protocol (see
/// [`Session::handle_ws_failed`](crate::server::Session::handle_ws_failed)).
/// The driver closes it with the RFC 6455 code itself: 1009 for
/// [`WsFailure::TooLarge`], 1007 or 1002 for [`WsFailure::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WsFailure {
    /// A message or frame larger than `maxPayload`.
    TooLarge,
    /// Bad framing, or a text message that is not UTF-8.
    Invalid,
}
