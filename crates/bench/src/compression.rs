//! The compression scenarios: a JSON chat message (32 bytes or 1 KiB)
//! echoed over WebSocket with permessage-deflate off or on, measuring the
//! bytes on the wire and the server's CPU per round trip; and the memory an
//! idle connection keeps once deflate was negotiated and used.
//!
//! The load is this project's Rust client (`socketio::client`): the raw
//! tungstenite client of the other scenarios cannot negotiate
//! permessage-deflate. Its runtime is tokio's with TCP streams that count
//! what they carry, so the bytes are the WebSocket frames as sent (headers
//! included), not a model of them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use runtime_tokio::TokioRuntime;
use serde::{Deserialize, Serialize};
use smol::io::{AsyncRead, AsyncWrite};
use socketio::client::{ClientOptions, ClientSocket, Transports};
use socketio::runtime::{BoxFuture, ClientRuntime, ConnectFuture, Runtime, Sleep};
use socketio::{Data, PerMessageDeflate};

use crate::probe::Probe;
use crate::scenario::{Outcome, Settings};
use crate::BenchError;

/// Bytes carried by every counted connection.
#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.received.load(Ordering::Relaxed)
    }
}

/// tokio, with TCP streams that count their bytes into `counts`.
#[derive(Clone)]
struct CountingRuntime {
    counts: Arc<Counts>,
}

impl Runtime for CountingRuntime {
    fn spawn(&self, task: BoxFuture) {
        TokioRuntime.spawn(task)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        TokioRuntime.sleep_until(deadline)
    }
}

impl ClientRuntime for CountingRuntime {
    type Tcp = Counted<<TokioRuntime as ClientRuntime>::Tcp>;

    fn connect_tcp(&self, host: String, port: u16) -> ConnectFuture<Self::Tcp> {
        let counts = self.counts.clone();
        let connect = TokioRuntime.connect_tcp(host, port);
        Box::pin(async move {
            Ok(Counted {
                inner: connect.await?,
                counts,
            })
        })
    }
}

/// A stream that counts what goes through it.
struct Counted<S> {
    inner: S,
    counts: Arc<Counts>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = read {
            self.counts.received.fetch_add(n as u64, Ordering::Relaxed);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.counts.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// A chat message as an application would send it (short keys, so that
/// 32 bytes leave room for a few words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    #[serde(rename = "u")]
    user: usize,
    #[serde(rename = "s")]
    seq: u64,
    #[serde(rename = "t")]
    text: String,
}

/// Words the messages are made of: text compresses like text, not like a
/// repeated string.
const WORDS: [&str; 32] = [
    "the",
    "meeting",
    "moved",
    "to",
    "thursday",
    "afternoon",
    "because",
    "half",
    "of",
    "team",
    "is",
    "travelling",
    "please",
    "check",
    "your",
    "calendar",
    "and",
    "let",
    "me",
    "know",
    "if",
    "that",
    "works",
    "otherwise",
    "we",
    "can",
    "try",
    "friday",
    "morning",
    "thanks",
    "again",
    "everyone",
];

/// Client `client`'s message `seq`, whose JSON is `size` bytes (or just
/// over, for a size below the bare envelope): its words depend on both, so
/// no two messages are the same.
pub fn chat_message(client: usize, seq: u64, size: usize) -> ChatMessage {
    let mut message = ChatMessage {
        user: client,
        seq,
        text: String::new(),
    };
    let envelope = serde_json::to_string(&message).map_or(0, |json| json.len());
    let mut state = (client as u64 + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(seq.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    while envelope + message.text.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if !message.text.is_empty() {
            message.text.push(' ');
        }
        message
            .text
            .push_str(WORDS[(state % WORDS.len() as u64) as usize]);
    }
    message.text.truncate(size.saturating_sub(envelope));
    message
}

/// What a chat scenario's clients share (they run on tokio tasks).
struct Shared {
    size: usize,
    sending: AtomicBool,
    echoes: AtomicU64,
    /// An echo that was not the message sent, if any.
    wrong: AtomicBool,
}

/// The client options of the compression scenarios.
fn options(deflate: bool) -> ClientOptions {
    let options = ClientOptions::default()
        .transports(Transports::WEBSOCKET)
        .reconnection(false);
    if deflate {
        options.per_message_deflate(PerMessageDeflate::default().threshold(0))
    } else {
        options
    }
}

/// Connects client `index`: each echo of its message `n` that comes back
/// intact is counted and message `n + in_flight` goes out.
async fn chat_client(
    url: &str,
    runtime: &CountingRuntime,
    index: usize,
    in_flight: u64,
    deflate: bool,
    shared: &Arc<Shared>,
) -> Result<ClientSocket, BenchError> {
    let socket = socketio::client::io(runtime.clone(), url, options(deflate))
        .map_err(|error| BenchError::Protocol(format!("client: {error}")))?;
    let shared = shared.clone();
    socket.on(
        "echo",
        move |socket: ClientSocket, Data(message): Data<ChatMessage>, _| {
            if message != chat_message(index, message.seq, shared.size) {
                shared.wrong.store(true, Ordering::Relaxed);
            }
            shared.echoes.fetch_add(1, Ordering::Relaxed);
            if shared.sending.load(Ordering::Relaxed) {
                let next = chat_message(index, message.seq + in_flight, shared.size);
                let _ = socket.emit("echo", &next);
            }
            async {}
        },
    );
    socket
        .connect()
        .await
        .map_err(|error| BenchError::Protocol(format!("connect: {error}")))?;
    Ok(socket)
}

/// Echo round trips of a `size`-byte chat message, with permessage-deflate
/// negotiated (threshold 0: every message compressed) or not. Counts round
/// trips; the outcome carries the bytes on the wire per round trip, both
/// ways.
pub async fn chat(
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
    size: usize,
    deflate: bool,
) -> Result<Outcome, BenchError> {
    let runtime = CountingRuntime {
        counts: Arc::default(),
    };
    let shared = Arc::new(Shared {
        size,
        sending: AtomicBool::new(true),
        echoes: AtomicU64::new(0),
        wrong: AtomicBool::new(false),
    });
    let url = format!("http://{addr}/");
    let in_flight = settings.in_flight as u64;
    let mut sockets = Vec::with_capacity(settings.chat_clients);
    for index in 0..settings.chat_clients {
        let socket = chat_client(&url, &runtime, index, in_flight, deflate, &shared).await?;
        for seq in 0..in_flight {
            socket
                .emit("echo", &chat_message(index, seq, size))
                .map_err(|error| BenchError::Protocol(format!("emit: {error}")))?;
        }
        sockets.push(socket);
    }
    tokio::time::sleep(settings.warmup).await;
    let before = probe.sample()?;
    let (bytes, echoes) = (
        runtime.counts.total(),
        shared.echoes.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    tokio::time::sleep(settings.measure).await;
    let elapsed = started.elapsed();
    let after = probe.sample()?;
    let count = shared.echoes.load(Ordering::Relaxed) - echoes;
    let bytes = runtime.counts.total() - bytes;
    shared.sending.store(false, Ordering::Relaxed);
    finish(&sockets, &shared)?;
    Ok(Outcome {
        count,
        elapsed,
        cpu: after.cpu.saturating_sub(before.cpu),
        kernel: after.kernel.saturating_sub(before.kernel),
        latency: None,
        memory_per_connection: None,
        wire_bytes_per_item: Some(bytes as f64 / count.max(1) as f64),
    })
}

/// Opens `settings.idle_connections` connections, each of which echoes
/// one 1 KiB chat message (with deflate: through the compressor and the
/// decompressor both ends keep), then stays idle; the outcome's memory is
/// the server's resident growth per connection.
pub async fn idle(
    addr: SocketAddr,
    probe: Probe,
    settings: &Settings,
    deflate: bool,
) -> Result<Outcome, BenchError> {
    const SIZE: usize = 1024;
    let runtime = CountingRuntime {
        counts: Arc::default(),
    };
    let shared = Arc::new(Shared {
        size: SIZE,
        sending: AtomicBool::new(false),
        echoes: AtomicU64::new(0),
        wrong: AtomicBool::new(false),
    });
    let url = format!("http://{addr}/");
    // One connection first, so what the first one sets up once (the
    // namespace, lazy statics) is not counted per connection.
    let first = chat_client(&url, &runtime, 0, 1, deflate, &shared).await?;
    let echo = |socket: &ClientSocket, index| {
        socket
            .emit("echo", &chat_message(index, 0, SIZE))
            .map_err(|error| BenchError::Protocol(format!("emit: {error}")))
    };
    echo(&first, 0)?;
    let mut sockets = vec![first];
    wait_for_echoes(&shared, 1).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = probe.sample()?;
    let started = Instant::now();
    let count = settings.idle_connections;
    for index in 1..=count {
        let socket = chat_client(&url, &runtime, index, 1, deflate, &shared).await?;
        echo(&socket, index)?;
        sockets.push(socket);
    }
    wait_for_echoes(&shared, count as u64 + 1).await?;
    let elapsed = started.elapsed();
    let busy = probe.sample()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = probe.sample()?;
    if sockets.iter().any(|socket| !socket.connected()) {
        return Err(BenchError::Protocol("an idle connection was closed".into()));
    }
    finish(&sockets, &shared)?;
    Ok(Outcome {
        count: count as u64,
        elapsed,
        cpu: busy.cpu.saturating_sub(before.cpu),
        kernel: busy.kernel.saturating_sub(before.kernel),
        latency: None,
        memory_per_connection: probe
            .is_real()
            .then(|| idle.rss.saturating_sub(before.rss) as f64 / count as f64),
        wire_bytes_per_item: None,
    })
}

/// Disconnects the clients; fails the run if an echo was wrong.
fn finish(sockets: &[ClientSocket], shared: &Shared) -> Result<(), BenchError> {
    for socket in sockets {
        socket.disconnect();
    }
    if shared.wrong.load(Ordering::Relaxed) {
        return Err(BenchError::Protocol(
            "an echo was not the message sent".into(),
        ));
    }
    Ok(())
}

async fn wait_for_echoes(shared: &Shared, count: u64) -> Result<(), BenchError> {
    let deadline = Instant::now() + crate::client::STEP_TIMEOUT;
    while shared.echoes.load(Ordering::Relaxed) < count {
        if Instant::now() > deadline {
            return Err(BenchError::Protocol("the echoes did not come back".into()));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_their_size_and_differ() {
        for size in [32, 1024] {
            for seq in 0..20 {
                let message = chat_message(3, seq, size);
                let json = serde_json::to_string(&message).unwrap();
                assert_eq!(json.len(), size, "{json}");
            }
        }
        assert_ne!(chat_message(1, 1, 1024), chat_message(1, 2, 1024));
        assert_ne!(chat_message(1, 1, 1024), chat_message(2, 1, 1024));
    }
}
