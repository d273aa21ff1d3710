//! Misbehaving clients over real loopback sockets: each one costs bounded
//! memory, ends only its own session, and everyone else keeps being served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_util::StreamExt;
use socketio::engine::{EngineConfig, EngineServer};
use suite::raw::{get, websocket};
use suite::{sleep, within_for, TestRuntime};

/// The bound of each of these tests.
const LIMIT: Duration = Duration::from_secs(20);

/// A server whose application floods every session with 64 KiB messages
/// until sending fails, and counts how many it managed to queue.
async fn start_flooding_server<R: TestRuntime>(
    rt: R,
    sent: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> (std::net::SocketAddr, EngineServer<R>) {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    config.ws_queue = 64;
    let engine = EngineServer::new(rt, config, move |mut socket| {
        let (sent, finished) = (sent.clone(), finished.clone());
        rt.spawn(Box::pin(async move {
            let chunk = Bytes::from(vec![7u8; 64 * 1024]);
            while socket.send(chunk.clone().into()).await.is_ok() {
                sent.fetch_add(1, Ordering::SeqCst);
                if sent.load(Ordering::SeqCst) > 100_000 {
                    break;
                }
            }
            finished.fetch_add(1, Ordering::SeqCst);
        }));
    });
    let addr = rt.serve(engine.clone()).await;
    (addr, engine)
}

async fn a_websocket_client_that_never_reads_is_dropped_with_bounded_memory<R: TestRuntime>(rt: R) {
    let test = async {
        let sent = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (addr, engine) = start_flooding_server(rt, sent.clone(), finished.clone()).await;
        let path = "/engine.io/?EIO=4&transport=websocket";
        // Connects, then never reads a byte.
        let _stalled = websocket(rt, addr, path).await;
        // The session ends on its own: its writer queue fills, then (with no
        // pong) the heartbeat closes it.
        while finished.load(Ordering::SeqCst) == 0 {
            sleep(Duration::from_millis(20)).await;
        }
        // What was queued is bounded by the queues, not by what the
        // application tried to send: 64 frames + the session buffer + the
        // socket buffers, far below the 100,000 the application would send.
        let queued = sent.load(Ordering::SeqCst);
        assert!(
            queued < 10_000,
            "{queued} messages queued for a client that never reads"
        );
        // A well-behaved client is served meanwhile and afterwards.
        let mut reader = websocket(rt, addr, path).await;
        let first = reader.next().await;
        let Some(Ok(Message::Text(open))) = first else {
            panic!("no handshake: {first:?}")
        };
        assert!(open.starts_with('0'));
        let Some(Ok(Message::Binary(data))) = reader.next().await else {
            panic!("no data")
        };
        assert_eq!(data.len(), 64 * 1024);
        drop(reader);
        // Every session is eventually gone.
        while engine.session_count() > 0 {
            sleep(Duration::from_millis(20)).await;
        }
    };
    within_for(LIMIT, "the test", test).await;
}

async fn a_flood_of_handshakes_expires_and_the_server_keeps_serving<R: TestRuntime>(rt: R) {
    let test = async {
        let mut config = EngineConfig::default();
        config.protocol.ping_interval = Duration::from_millis(300);
        config.protocol.ping_timeout = Duration::from_millis(200);
        let engine = EngineServer::new(rt, config, |_| {});
        let addr = rt.serve(engine.clone()).await;
        // 500 handshakes that never come back, all at once.
        let handshake = "/engine.io/?EIO=4&transport=polling";
        let floods = (0..500).map(|_| get(rt, addr, handshake));
        for (status, _) in futures_util::future::join_all(floods).await {
            assert_eq!(status, 200);
        }
        // Never more sessions than handshakes (the earliest may already have
        // expired while the flood went on).
        assert!(engine.session_count() <= 500);
        // Still serving.
        let (status, body) = get(rt, addr, handshake).await;
        assert_eq!((status, body[0]), (200, b'0'));
        // Abandoned sessions expire with the heartbeat (300 + 200 ms).
        while engine.session_count() > 0 {
            sleep(Duration::from_millis(20)).await;
        }
    };
    within_for(LIMIT, "the test", test).await;
}

/// Opens a Socket.IO connection over WebSocket and joins `/`.
async fn sio_client<R: TestRuntime>(rt: R, addr: std::net::SocketAddr) -> WebSocketStream<R::Tcp> {
    let mut ws = websocket(rt, addr, "/socket.io/?EIO=4&transport=websocket").await;
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"));
    ws.send(Message::text("40")).await.unwrap();
    let connected = ws.next().await.unwrap().unwrap();
    assert!(connected.to_text().unwrap().starts_with("40{\"sid\""));
    ws
}

async fn malformed_socketio_packets_close_only_their_connection<R: TestRuntime>(rt: R) {
    use socketio::{Payload, SocketIo, SocketIoConfig};
    let test = async {
        let io = SocketIo::new(rt, SocketIoConfig::default());
        io.on_connection("/", |socket| async move {
            socket.on(
                "echo",
                |socket: socketio::SocketRef, payload: Payload| async move {
                    let _ = socket.emit_payload("echo", payload).await;
                },
            );
        });
        let addr = rt.serve(io).await;
        let mut good = sio_client(rt, addr).await;
        let bad_inputs = [
            Message::text(r#"42["unterminated"#),
            Message::text(r#"42/never-joined,["x"]"#),
            Message::text(r#"4211-["too many attachments"]"#),
            Message::text("9"),
            Message::binary(vec![1u8, 2, 3]),
            Message::text("40"),
        ];
        for bad in bad_inputs {
            let shown = format!("{bad:?}");
            let mut ws = sio_client(rt, addr).await;
            ws.send(bad).await.unwrap();
            // The server ends that connection: a close frame, then the end.
            loop {
                match ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(text))) if text.starts_with('2') => {}
                    Some(Ok(other)) => panic!("{shown}: unexpected {other:?}"),
                }
            }
            // The good client is still served.
            good.send(Message::text(r#"42["echo",1]"#)).await.unwrap();
            let echoed = loop {
                let frame = good.next().await.unwrap().unwrap();
                let text = frame.to_text().unwrap().to_owned();
                if text != "2" {
                    break text;
                }
                good.send(Message::text("3")).await.unwrap();
            };
            assert_eq!(echoed, r#"42["echo",1]"#, "after {shown}");
        }
    };
    within_for(LIMIT, "the test", test).await;
}

suite::on_each_runtime!(
    a_websocket_client_that_never_reads_is_dropped_with_bounded_memory,
    a_flood_of_handshakes_expires_and_the_server_keeps_serving,
    malformed_socketio_packets_close_only_their_connection,
);
