//! Why a session ended.

use crate::packet::DecodeError;

/// Why a session closed; reported once by each side's state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer did not answer a ping in time (server), or sent no ping in
    /// `pingInterval + pingTimeout` (client).
    #[error("ping timeout")]
    PingTimeout,
    /// The peer sent a CLOSE packet.
    #[error("closed by the peer")]
    PeerClose,
    /// The connection carrying the session went away: the WebSocket closed or
    /// a long-poll request was aborted.
    #[error("transport closed")]
    TransportClose,
    /// The peer broke the protocol, or a request failed.
    #[error("transport error: {0}")]
    TransportError(TransportError),
    /// The peer sent bytes that are not Engine.IO.
    #[error("parse error: {0}")]
    ParseError(DecodeError),
    /// The peer sent a body or message larger than `maxPayload`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// This side called `close`.
    #[error("forced close")]
    ForcedClose,
}

impl CloseReason {
    /// The reason string Node's Engine.IO uses for the same event
    /// (Socket.IO passes it on as the disconnect reason).
    pub const fn as_node_str(&self) -> &'static str {
        match self {
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::PeerClose | CloseReason::TransportClose => "transport close",
            CloseReason::TransportError(_) | CloseReason::PayloadTooLarge => "transport error",
            CloseReason::ParseError(_) => "parse error",
            CloseReason::ForcedClose => "forced close",
        }
    }
}

/// A protocol violation or a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A second long-poll GET arrived while one was pending.
    #[error("overlapping poll requests")]
    OverlappingPoll,
    /// A ping from the client (in v4 only the server pings).
    #[error("invalid heartbeat direction")]
    InvalidHeartbeatDirection,
    /// The server answered an HTTP request with this non-200 status.
    #[error("http status {0}")]
    HttpStatus(u16),
    /// An HTTP request or WebSocket failed at the IO level.
    #[error("request failed")]
    RequestFailed,
    /// The first packet was not a valid OPEN packet.
    #[error("invalid handshake")]
    InvalidHandshake,
    /// A second POST arrived while the packets of one were still being
    /// delivered (Node: "data request overlap from client").
    #[error("overlapping post requests")]
    OverlappingPost,
    /// A POST body did not arrive whole in time (Node's
    /// `httpRequestBodyTimeout`).
    #[error("http request timeout")]
    BodyTimeout,
    /// A POST body came in more chunks than allowed (Node's
    /// `maxBufferedChunks`).
    #[error("too many chunks")]
    TooManyChunks,
    /// The connection of a POST closed before its body was read.
    #[error("post request aborted")]
    BodyAborted,
    /// A POST declared binary content (`application/octet-stream`), which
    /// Engine.IO v4 does not use.
    #[error("invalid content")]
    InvalidContent,
    /// A WebSocket broke RFC 6455: bad framing, or text that is not UTF-8.
    #[error("invalid websocket frame")]
    InvalidWebSocket,
    /// This side's application fell behind what the peer sends: more
    /// events waited for their handlers than it allows. The connection is
    /// dropped rather than the reading stopped, because a handler may be
    /// waiting for a reply that only further reading brings.
    #[error("too many events pending")]
    Overloaded,
}
