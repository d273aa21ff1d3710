//! The load generator's WebSocket client: just enough Engine.IO and
//! Socket.IO to open a session on `/`, answer pings, and send and check
//! text packets. Cheap on purpose, so the server is what is measured.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::BenchError;

/// One Socket.IO connection over WebSocket, connected to `/`.
pub type Ws = WebSocketStream<TcpStream>;

/// How long any single step of a client may take before the run fails:
/// a server that stops answering ends the run instead of hanging it.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The WebSocket settings of every load-generator connection: a small read
/// buffer, because ten thousand idle connections live in this process.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens an Engine.IO session over WebSocket and connects to `/`: returns
/// once the server's CONNECT answer (`40{"sid":…}`) arrived.
pub async fn connect(addr: SocketAddr) -> Result<Ws, BenchError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config())).await?;
    let open = next_text(&mut ws).await?;
    if !open.starts_with("0{") {
        return Err(BenchError::Protocol(format!(
            "expected an open packet, got {open:?}"
        )));
    }
    ws.send(Message::text("40")).await?;
    loop {
        let text = next_text(&mut ws).await?;
        if text.starts_with("40{") {
            return Ok(ws);
        }
        if !answer_ping(&mut ws, &text).await? {
            return Err(BenchError::Protocol(format!(
                "expected a CONNECT answer, got {text:?}"
            )));
        }
    }
}

/// The next text message of a WebSocket (or of its reading half), within
/// [`STEP_TIMEOUT`]; pings and pongs of the WebSocket itself are skipped, a
/// close or binary message is an error.
pub async fn next_text<S>(ws: &mut S) -> Result<String, BenchError>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, ws.next())
            .await
            .map_err(|_| BenchError::Protocol("the server stopped answering".into()))?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => {
                return Err(BenchError::Protocol(format!(
                    "unexpected message {other:?}"
                )))
            }
            Some(Err(error)) => return Err(error.into()),
            None => {
                return Err(BenchError::Protocol(
                    "the server closed the connection".into(),
                ))
            }
        }
    }
}

/// Answers an Engine.IO ping (`2`) with a pong (`3`); false when `text` is
/// not a ping.
pub async fn answer_ping(ws: &mut Ws, text: &str) -> Result<bool, BenchError> {
    if text != "2" {
        return Ok(false);
    }
    ws.send(Message::text("3")).await?;
    Ok(true)
}

/// Sends one text packet.
pub async fn send(ws: &mut Ws, text: String) -> Result<(), BenchError> {
    ws.send(Message::text(text)).await?;
    Ok(())
}

/// The string argument every request carries: unique per client and
/// sequence number, padded to a realistic chat-message size.
pub fn argument(client: usize, seq: u64) -> String {
    format!("{client}:{seq} the quick brown fox jumps over the lazy dog")
}

/// `42["event","argument"]`: an event with one string argument.
pub fn event(event: &str, argument: &str) -> String {
    format!("42[\"{event}\",\"{argument}\"]")
}

/// `42<id>["event","argument"]`: an event that asks for an ack.
pub fn event_with_ack(id: u64, event: &str, argument: &str) -> String {
    format!("42{id}[\"{event}\",\"{argument}\"]")
}

/// The argument of `42["event","<argument>"]`, if `text` is that event.
pub fn parse_event<'a>(text: &'a str, event: &str) -> Option<&'a str> {
    text.strip_prefix("42[\"")?
        .strip_prefix(event)?
        .strip_prefix("\",\"")?
        .strip_suffix("\"]")
}

/// The id and argument of `43<id>["<argument>"]`, if `text` is an ack.
pub fn parse_ack(text: &str) -> Option<(u64, &str)> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.find('[')?;
    let id = rest[..digits].parse().ok()?;
    let argument = rest[digits..].strip_prefix("[\"")?.strip_suffix("\"]")?;
    Some((id, argument))
}

/// The client and sequence number an [`argument`] carries.
pub fn parse_argument(argument: &str) -> Option<(usize, u64)> {
    let (ids, _) = argument.split_once(' ')?;
    let (client, seq) = ids.split_once(':')?;
    Some((client.parse().ok()?, seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_through_their_parsers() {
        let arg = argument(7, 42);
        assert_eq!(parse_argument(&arg), Some((7, 42)));
        assert_eq!(
            parse_event(&event("echo", &arg), "echo"),
            Some(arg.as_str())
        );
        assert_eq!(parse_event(&event("echo", &arg), "broadcast"), None);
        let ack = format!("4312[\"{arg}\"]");
        assert_eq!(parse_ack(&ack), Some((12, arg.as_str())));
        assert_eq!(parse_ack("43x[\"a\"]"), None);
        assert_eq!(
            event_with_ack(3, "echo_ack", "a"),
            "423[\"echo_ack\",\"a\"]"
        );
    }
}
