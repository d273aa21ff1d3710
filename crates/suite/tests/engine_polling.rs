//! The raw Engine.IO server on each runtime, over real loopback HTTP: a polling
//! client handshakes, sends text and binary, reads the echo, and the server
//! refuses what Node refuses.

use std::time::Duration;

use bytes::Bytes;
use engineio_proto::Handshake;
use socketio::engine::{EngineConfig, EngineServer};
use suite::{raw, sleep, within, TestRuntime};

async fn start_echo_server<R: TestRuntime>(rt: R) -> std::net::SocketAddr {
    let mut config = EngineConfig::default();
    config.protocol.ping_interval = Duration::from_millis(300);
    config.protocol.ping_timeout = Duration::from_millis(200);
    let engine = EngineServer::new(rt, config, move |mut socket| {
        rt.spawn(Box::pin(async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }));
    });
    rt.serve(engine).await
}

/// One request to the Engine.IO endpoint on a fresh connection.
async fn request<R: TestRuntime>(
    rt: R,
    addr: std::net::SocketAddr,
    method: &str,
    query: &str,
    body: impl Into<Bytes>,
) -> (u16, Bytes) {
    let target = format!("/engine.io/?{query}");
    raw::request(rt, addr, method, &target, &[], body).await
}

async fn polling_handshake_echo_and_refusals<R: TestRuntime>(rt: R) {
    let test = async {
        let addr = start_echo_server(rt).await;
        let (status, body) = request(rt, addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!(status, 200);
        assert_eq!(body[0], b'0');
        let handshake = Handshake::from_json(std::str::from_utf8(&body[1..]).unwrap()).unwrap();
        assert_eq!(handshake.upgrades, ["websocket"]);
        assert_eq!(handshake.ping_interval, 300);
        let sid = handshake.sid;
        let query = format!("EIO=4&transport=polling&sid={sid}");

        let (status, body) = request(rt, addr, "POST", &query, &b"4hello\x1ebAQIDBA=="[..]).await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let (status, body) = request(rt, addr, "GET", &query, &b""[..]).await;
        assert_eq!((status, &body[..]), (200, &b"4hello\x1ebAQIDBA=="[..]));

        // Node's refusals.
        let (status, body) = request(
            rt,
            addr,
            "GET",
            "EIO=4&transport=polling&sid=nope",
            &b""[..],
        )
        .await;
        assert_eq!(
            (status, &body[..]),
            (400, &br#"{"code":1,"message":"Session ID unknown"}"#[..])
        );
        let (status, _) = request(rt, addr, "PUT", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!(status, 400);
        let (status, body) = request(rt, addr, "GET", "EIO=3&transport=polling", &b""[..]).await;
        assert_eq!(
            (status, &body[..]),
            (
                400,
                &br#"{"code":5,"message":"Unsupported protocol version"}"#[..]
            )
        );

        // An oversized POST: 413, and that session is gone; others are not.
        let (_, other) = request(rt, addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        let other_sid = Handshake::from_json(std::str::from_utf8(&other[1..]).unwrap())
            .unwrap()
            .sid;
        let (status, _) = request(rt, addr, "POST", &query, vec![b'4'; 1_000_001]).await;
        assert_eq!(status, 413);
        let (status, _) = request(rt, addr, "GET", &query, &b""[..]).await;
        assert_eq!(status, 400);
        let other_query = format!("EIO=4&transport=polling&sid={other_sid}");
        let (status, body) = request(rt, addr, "POST", &other_query, &b"4still here"[..]).await;
        assert_eq!((status, &body[..]), (200, &b"ok"[..]));
        let (_, body) = request(rt, addr, "GET", &other_query, &b""[..]).await;
        assert_eq!(&body[..], b"4still here");

        // Heartbeat: with no pong, the session ends 300 + 200 ms after the handshake.
        sleep(Duration::from_millis(600)).await;
        let (status, _) = request(rt, addr, "GET", &other_query, &b""[..]).await;
        assert_eq!(status, 400);
    };
    within("the test", test).await;
}

async fn allow_request_refuses_handshakes_with_403<R: TestRuntime>(rt: R) {
    let test = async {
        let mut config = EngineConfig::default();
        config.allow_request = Some(socketio::AllowRequest::new(|handshake| {
            handshake.header("x-deny").is_none()
        }));
        let engine = EngineServer::new(rt, config, |_| {});
        let addr = rt.serve(engine).await;
        let (status, body) = raw::request(
            rt,
            addr,
            "GET",
            "/engine.io/?EIO=4&transport=polling",
            &[("x-deny", "1")],
            Bytes::new(),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(&body[..], br#"{"code":4,"message":"Forbidden"}"#);

        let (status, body) = request(rt, addr, "GET", "EIO=4&transport=polling", &b""[..]).await;
        assert_eq!((status, body[0]), (200, b'0'));
    };
    within("the test", test).await;
}

suite::on_each_runtime!(
    polling_handshake_echo_and_refusals,
    allow_request_refuses_handshakes_with_403,
);
