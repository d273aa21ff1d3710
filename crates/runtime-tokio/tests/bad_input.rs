//! Misbehaving clients over real loopback sockets: each one costs bounded
//! memory, ends only its own session, and everyone else keeps being served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tokio::connect_async;
use async_tungstenite::tungstenite::Message;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use runtime_tokio::TokioRuntime;
use socketio::engine::{EngineConfig, EngineServer};
use tokio::net::{TcpListener, TcpStream};

/// A server whose application floods every session with 64 KiB messages
/// until sending fails, and counts how many it managed to queue.
async fn start_flooding_server(
    sent: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
) -> (std::net::SocketAddr, EngineServer<TokioRuntime>) {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    config.ws_queue = 64;
    let engine = EngineServer::new(TokioRuntime, config, move |mut socket| {
        let (sent, finished) = (sent.clone(), finished.clone());
        tokio::spawn(async move {
            let chunk = Bytes::from(vec![7u8; 64 * 1024]);
            while socket.send(chunk.clone().into()).await.is_ok() {
                sent.fetch_add(1, Ordering::SeqCst);
                if sent.load(Ordering::SeqCst) > 100_000 {
                    break;
                }
            }
            finished.fetch_add(1, Ordering::SeqCst);
        });
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, engine.clone()));
    (addr, engine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_never_reads_is_dropped_with_bounded_memory() {
    let test = async {
        let sent = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (addr, engine) = start_flooding_server(sent.clone(), finished.clone()).await;
        let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
        // Connects, then never reads a byte.
        let (_stalled, _) = connect_async(url.as_str()).await.unwrap();
        // The session ends on its own: its writer queue fills, then (with no
        // pong) the heartbeat closes it.
        while finished.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
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
        let (mut reader, _) = connect_async(url.as_str()).await.unwrap();
        let Some(Ok(Message::Text(open))) = reader.next().await else {
            panic!("no handshake")
        };
        assert!(open.starts_with('0'));
        let Some(Ok(Message::Binary(data))) = reader.next().await else {
            panic!("no data")
        };
        assert_eq!(data.len(), 64 * 1024);
        drop(reader);
        // Every session is eventually gone.
        while engine.session_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test timed out");
}

async fn get(addr: std::net::SocketAddr, query: &str) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(format!("/engine.io/?{query}"))
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_handshakes_expires_and_the_server_keeps_serving() {
    let test = async {
        let mut config = EngineConfig::default();
        config.protocol.ping_interval = Duration::from_millis(300);
        config.protocol.ping_timeout = Duration::from_millis(200);
        let engine = EngineServer::new(TokioRuntime, config, |_| {});
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(runtime_tokio::serve(listener, engine.clone()));
        // 500 handshakes that never come back.
        let floods: Vec<_> = (0..500)
            .map(|_| tokio::spawn(async move { get(addr, "EIO=4&transport=polling").await }))
            .collect();
        for flood in floods {
            assert_eq!(flood.await.unwrap().0, 200);
        }
        // Never more sessions than handshakes (the earliest may already have
        // expired while the flood went on).
        assert!(engine.session_count() <= 500);
        // Still serving.
        let (status, body) = get(addr, "EIO=4&transport=polling").await;
        assert_eq!((status, body[0]), (200, b'0'));
        // Abandoned sessions expire with the heartbeat (300 + 200 ms).
        while engine.session_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test timed out");
}

/// Opens a Socket.IO connection over WebSocket and joins `/`.
async fn sio_client(
    addr: std::net::SocketAddr,
) -> async_tungstenite::WebSocketStream<async_tungstenite::tokio::ConnectStream> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = connect_async(url).await.unwrap();
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"));
    ws.send(Message::text("40")).await.unwrap();
    let connected = ws.next().await.unwrap().unwrap();
    assert!(connected.to_text().unwrap().starts_with("40{\"sid\""));
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_socketio_packets_close_only_their_connection() {
    use socketio::{Payload, SocketIo, SocketIoConfig};
    let test = async {
        let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
        io.on_connection("/", |socket| async move {
            socket.on("echo", |socket, payload: Payload, _| async move {
                let _ = socket.emit_payload("echo", payload).await;
            });
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(runtime_tokio::serve(listener, io));
        let mut good = sio_client(addr).await;
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
            let mut ws = sio_client(addr).await;
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
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("test timed out");
}
