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
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}
