//! Hand-driven clients for tests that must misbehave or look at the wire:
//! a plain HTTP GET and a raw WebSocket, over the runtime's own TCP.

use std::net::SocketAddr;

use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use smol_hyper::rt::FuturesIo;
use socketio::ClientRuntime;

/// A raw WebSocket to `path_and_query` on `addr`.
pub async fn websocket<R: ClientRuntime>(
    rt: R,
    addr: SocketAddr,
    path_and_query: &str,
) -> WebSocketStream<R::Tcp> {
    let stream = rt
        .connect_tcp(addr.ip().to_string(), addr.port())
        .await
        .unwrap();
    let url = format!("ws://{addr}{path_and_query}");
    async_tungstenite::client_async(url, stream)
        .await
        .unwrap()
        .0
}

/// A raw WebSocket that has joined `nsp` (with `auth`, a JSON object, if
/// given): the Engine.IO handshake and the CONNECT answer are read and
/// checked.
pub async fn socketio<R: ClientRuntime>(
    rt: R,
    addr: SocketAddr,
    nsp: &str,
    auth: Option<&str>,
) -> WebSocketStream<R::Tcp> {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;
    let mut ws = websocket(rt, addr, "/socket.io/?EIO=4&transport=websocket").await;
    let open = ws.next().await.unwrap().unwrap();
    assert!(open.to_text().unwrap().starts_with("0{"));
    let prefix = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    ws.send(Message::text(format!("{prefix}{}", auth.unwrap_or(""))))
        .await
        .unwrap();
    let connected = ws.next().await.unwrap().unwrap();
    assert!(
        connected
            .to_text()
            .unwrap()
            .starts_with(&format!("{prefix}{{\"sid\"")),
        "{connected:?}"
    );
    ws
}

/// The next text frame of `ws` that is not a heartbeat (PINGs are
/// answered on the way).
pub async fn next_text<R: ClientRuntime>(ws: &mut WebSocketStream<R::Tcp>) -> String {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        let text = frame.to_text().unwrap().to_owned();
        if text != "2" {
            return text;
        }
        ws.send(Message::text("3")).await.unwrap();
    }
}

/// Sends `packet` on `ws` and returns the next text frame (see
/// [`next_text`]).
pub async fn ask<R: ClientRuntime>(ws: &mut WebSocketStream<R::Tcp>, packet: &str) -> String {
    use async_tungstenite::tungstenite::Message;
    ws.send(Message::text(packet)).await.unwrap();
    next_text::<R>(ws).await
}

/// `GET path_and_query` on `addr`: the status and the body.
pub async fn get<R: ClientRuntime>(rt: R, addr: SocketAddr, path_and_query: &str) -> (u16, Bytes) {
    request(rt, addr, "GET", path_and_query, &[], Bytes::new()).await
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
pub async fn request<R: ClientRuntime>(
    rt: R,
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (u16, Bytes) {
    let (status, _, body) =
        request_with_headers(rt, addr, method, path_and_query, headers, body).await;
    (status, body)
}

/// Like [`request`], with the response's headers.
pub async fn request_with_headers<R: ClientRuntime>(
    rt: R,
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> (u16, hyper::HeaderMap, Bytes) {
    let stream = rt
        .connect_tcp(addr.ip().to_string(), addr.port())
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(FuturesIo::new(stream))
        .await
        .unwrap();
    rt.spawn(Box::pin(async move {
        let _ = connection.await;
    }));
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// A long-polling client driven by hand: every request on a fresh
/// connection, nothing sent but what the test says.
pub struct Polling<R> {
    rt: R,
    addr: SocketAddr,
    /// `/engine.io/` or `/socket.io/`.
    path: &'static str,
    /// The session id, once the handshake is done.
    pub sid: String,
}

impl<R: ClientRuntime + Copy> Polling<R> {
    /// Handshakes on `path` (`/engine.io/`, `/socket.io/`).
    pub async fn open(rt: R, addr: SocketAddr, path: &'static str) -> Polling<R> {
        let (status, body) = get(rt, addr, &format!("{path}?EIO=4&transport=polling")).await;
        assert_eq!(status, 200, "handshake: {body:?}");
        let text = std::str::from_utf8(&body).expect("a UTF-8 handshake");
        let handshake = engineio_proto::Handshake::from_json(&text[1..]).expect("an OPEN packet");
        Polling {
            rt,
            addr,
            path,
            sid: handshake.sid.to_string(),
        }
    }

    fn target(&self) -> String {
        format!("{}?EIO=4&transport=polling&sid={}", self.path, self.sid)
    }

    /// A GET: the status and the payload.
    pub async fn get(&self) -> (u16, Bytes) {
        get(self.rt, self.addr, &self.target()).await
    }

    /// A POST of `body`: the status and the answer.
    pub async fn post(&self, body: impl Into<Bytes>) -> (u16, Bytes) {
        request(self.rt, self.addr, "POST", &self.target(), &[], body).await
    }

    /// A POST with extra headers.
    pub async fn post_with(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, Bytes) {
        request(self.rt, self.addr, "POST", &self.target(), headers, body).await
    }

    /// GETs until the packets received (split at the record separator)
    /// satisfy `done`, answering PINGs; returns every packet but the PINGs.
    pub async fn collect(&self, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let mut packets = Vec::new();
        while !done(&packets) {
            let (status, body) = self.get().await;
            assert_eq!(status, 200, "GET: {body:?}");
            let text = String::from_utf8(body.to_vec()).expect("a UTF-8 payload");
            for packet in text.split('\u{1e}') {
                match packet {
                    "2" => {
                        let (status, _) = self.post("3").await;
                        assert_eq!(status, 200, "PONG");
                    }
                    "6" => {}
                    other => packets.push(other.to_owned()),
                }
            }
        }
        packets
    }
}

/// Runs blocking IO on a plain `TcpStream` to `addr` (on `smol::unblock`'s
/// threads, which any executor can await): for bytes no well-behaved
/// client library would send.
pub async fn tcp<T: Send + 'static>(
    addr: SocketAddr,
    exchange: impl FnOnce(std::net::TcpStream) -> T + Send + 'static,
) -> T {
    smol::unblock(move || {
        let stream = std::net::TcpStream::connect(addr).expect("a loopback connection");
        stream
            .set_read_timeout(Some(crate::WAIT))
            .expect("a read timeout");
        exchange(stream)
    })
    .await
}
