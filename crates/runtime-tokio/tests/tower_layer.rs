//! `SocketIoLayer` in front of another service, served by plain hyper: the
//! Socket.IO path reaches the Socket.IO server, everything else the inner
//! service.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use runtime_tokio::{SocketIoLayer, TokioRuntime};
use socketio::{SocketIo, SocketIoConfig};
use tokio::net::{TcpListener, TcpStream};
use tower_layer::Layer;
use tower_service::Service;

/// The application's own routes: always "inner".
#[derive(Clone)]
struct Inner;

impl<B> Service<hyper::Request<B>> for Inner {
    type Response = hyper::Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Request<B>) -> Self::Future {
        ready(Ok(hyper::Response::new(Full::new(Bytes::from_static(
            b"inner",
        )))))
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .uri(path)
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

#[tokio::test]
async fn the_layer_routes_socketio_and_passes_the_rest_through() {
    let test = async {
        let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
        let app = SocketIoLayer::new(io).layer(Inner);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = TowerToHyperService::new(app.clone());
                tokio::spawn(
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        let (status, body) = get(addr, "/somewhere/else").await;
        assert_eq!((status, &body[..]), (200, &b"inner"[..]));
        let (status, body) = get(addr, "/socket.io/?EIO=4&transport=polling").await;
        assert_eq!((status, body[0]), (200, b'0'));
    };
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("test timed out");
}
