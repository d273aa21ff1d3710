//! The raw Engine.IO server on tokio, over real loopback HTTP: a polling
//! client handshakes, sends text and binary, reads the echo, and the server
//! refuses what Node refuses.

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::Handshake;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use runtime_tokio::TokioRuntime;
use socketio::engine::{EngineConfig, EngineServer};
use tokio::net::{TcpListener, TcpStream};

async fn start_echo_server() -> std::net::SocketAddr {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    let engine = EngineServer::new(TokioRuntime, config, |mut socket| {
        tokio::spawn(async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        });
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, engine));
    addr
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    query: &str,
    body: impl Into<Bytes>,
) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("/engine.io/?{query}"))
        .header("host", "127.0.0.1")
        .body(Full::new(body.into()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

#[tokio::test]
async fn polling_handshake_echo_and_refusals() {
    let test = async {
        let addr = start_echo_server().await;
        let (status, body) = request(addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!(status, 200);
        assert_eq!(body[0], b'0');
        let handshake = Handshake::from_json(std::str::from_utf8(&body[1..]).unwrap()).unwrap();
        assert_eq!(handshake.upgrades, ["websocket"]);
        assert_eq!(handshake.ping_interval, 300);
        let sid = handshake.sid;
        let query = format!("EIO=4&transport=polling&sid={sid}");

        let (status, body) = request(addr, "POST", &query, &b"4hello\x1ebAQIDBA=="[..]).await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let (status, body) = request(addr, "GET", &query, &b""[..]).await;
        assert_eq!((status, &body[..]), (200, &b"4hello\x1ebAQIDBA=="[..]));

        // Node's refusals.
        let (status, body) =
            request(addr, "GET", "EIO=4&transport=polling&sid=nope", &b""[..]).await;
        assert_eq!(
            (status, &body[..]),
            (400, &br#"{"code":1,"message":"Session ID unknown"}"#[..])
        );
        let (status, _) = request(addr, "PUT", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!(status, 400);
        let (status, body) = request(addr, "GET", "EIO=3&transport=polling", &b""[..]).await;
        assert_eq!(
            (status, &body[..]),
            (
                400,
                &br#"{"code":5,"message":"Unsupported protocol version"}"#[..]
            )
        );

        // An oversized POST: 413, and that session is gone; others are not.
        let (_, other) = request(addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        let other_sid = Handshake::from_json(std::str::from_utf8(&other[1..]).unwrap())
            .unwrap()
            .sid;
        let (status, _) = request(addr, "POST", &query, vec![b'4'; 1_000_001]).await;
        assert_eq!(status, 413);
        let (status, _) = request(addr, "GET", &query, &b""[..]).await;
        assert_eq!(status, 400);
        let other_query = format!("EIO=4&transport=polling&sid={other_sid}");
        let (status, body) = request(addr, "POST", &other_query, &b"4still here"[..]).await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let (_, body) = request(addr, "GET", &other_query, &b""[..]).await;
        assert_eq!(&body[..], b"4still here");

        // Heartbeat: with no pong, the session ends 300 + 200 ms after the handshake.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, _) = request(addr, "GET", &other_query, &b""[..]).await;
        assert_eq!(status, 400);
    };
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn allow_request_refuses_handshakes_with_403() {
    let test = async {
        let mut config = EngineConfig::default();
        config.allow_request = Some(socketio::AllowRequest::new(|handshake| {
            handshake.header("x-deny").is_none()
        }));
        let engine = EngineServer::new(TokioRuntime, config, |_| {});
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(runtime_tokio::serve(listener, engine));

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let denied = hyper::Request::builder()
            .uri("/engine.io/?EIO=4&transport=polling")
            .header("host", "127.0.0.1")
            .header("x-deny", "1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(denied).await.unwrap();
        assert_eq!(response.status().as_u16(), 403);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"code":4,"message":"Forbidden"}"#);

        let (status, body) = request(addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!((status, body[0]), (200, b'0'));
    };
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("test timed out");
}
