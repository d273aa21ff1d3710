//! The physical-limit baseline: a plain tokio-tungstenite server with no
//! Socket.IO library, answering the benchmark's packets by string
//! matching. It speaks just enough of the wire (the Engine.IO OPEN, the
//! CONNECT answer, `echo` and `echo_ack`, `broadcast` to every
//! connection) for the load generator, so the gap between it and a
//! Socket.IO server is what the library costs, not the kernel. WebSocket
//! only: it has no long-polling.
//!
//! `bench-plain-ws --port PORT`; prints `listening PORT`, exits when its
//! standard input closes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

#[derive(Parser)]
#[command(about = "The benchmark's baseline: a plain WebSocket server, no Socket.IO")]
struct Options {
    /// The port to listen on, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

/// Every connection's queue of frames to write, for `broadcast`.
type Everyone = Arc<Mutex<Vec<(u64, mpsc::UnboundedSender<Message>)>>>;

const OPEN: &str = r#"0{"sid":"plain","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = Options::parse();
    bench::exit_when_stdin_closes();
    let everyone: Everyone = Arc::default();
    let ids = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    bench::announce(listener.local_addr()?.port());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(stream, id, everyone.clone()));
    }
}

/// One task per connection, owning its WebSocket: it answers what it
/// reads in place and writes what broadcasts queue for it.
async fn serve(stream: tokio::net::TcpStream, id: u64, everyone: Everyone) {
    // tungstenite's 128 KiB read buffer is zero-filled before every read:
    // with it, the baseline would measure `memset`, not the WebSocket. The
    // write buffer stays, so a burst of frames goes out in one write.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (queue, mut queued) = mpsc::unbounded_channel::<Message>();
    everyone.lock().unwrap().push((id, queue));
    let mut alive = ws.send(Message::text(OPEN)).await.is_ok();
    while alive {
        tokio::select! {
            read = ws.next() => {
                let Some(Ok(Message::Text(text))) = read else {
                    if matches!(read, Some(Ok(_))) {
                        continue;
                    }
                    break;
                };
                if let Some(reply) = answer(id, text, &everyone) {
                    alive = ws.send(reply).await.is_ok();
                }
            }
            Some(frame) = queued.recv() => {
                // Every frame queued meanwhile, then one flush.
                alive = ws.feed(frame).await.is_ok();
                while let (true, Ok(frame)) = (alive, queued.try_recv()) {
                    alive = ws.feed(frame).await.is_ok();
                }
                alive = alive && ws.flush().await.is_ok();
            }
        }
    }
    everyone.lock().unwrap().retain(|(other, _)| *other != id);
}

/// The answer to one packet of the load generator; a broadcast is queued
/// for every connection, this one included.
fn answer(id: u64, text: Utf8Bytes, everyone: &Everyone) -> Option<Message> {
    if text.as_str() == "40" {
        Some(Message::text(format!(r#"40{{"sid":"{id}"}}"#)))
    } else if text.starts_with(r#"42["echo","#) {
        // The echo event's packet is the request's, byte for byte.
        Some(Message::Text(text))
    } else if text.starts_with(r#"42["broadcast","#) {
        let frame = Message::Text(text);
        let targets: Vec<mpsc::UnboundedSender<Message>> = everyone
            .lock()
            .unwrap()
            .iter()
            .map(|(_, queue)| queue.clone())
            .collect();
        for target in targets {
            let _ = target.send(frame.clone());
        }
        None
    } else {
        echo_ack(&text).map(Message::text)
    }
}

/// `42<id>["echo_ack",<arg>]` → `43<id>[<arg>]`.
fn echo_ack(text: &Utf8Bytes) -> Option<String> {
    let rest = text.strip_prefix("42")?;
    let digits = rest.find('[')?;
    let (ack, args) = rest.split_at(digits);
    let argument = args.strip_prefix(r#"["echo_ack","#)?;
    Some(format!("43{ack}[{argument}"))
}
