use std::time::Duration;

use runtime_tokio::TokioRuntime;
use socketio::client::{ClientOptions, Transports};
use socketio::{Payload, SocketIo, SocketIoConfig};
use tokio::net::TcpListener;

#[tokio::test]
async fn smoke() {
    let io = SocketIo::new(TokioRuntime, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("echo", |socket, payload: Payload, _| async move {
            socket.emit_payload("echo", payload).await.unwrap();
        });
        socket.on("ack", |_, payload: Payload, ack| async move {
            ack.unwrap().send_payload(payload).await.unwrap();
        });
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(runtime_tokio::serve(listener, io));
    for transports in [Transports::ALL, Transports::POLLING, Transports::WEBSOCKET] {
        let socket = runtime_tokio::io(
            &format!("http://{addr}/"),
            ClientOptions::default().transports(transports),
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        socket.on("echo", move |_, p: Payload, _| {
            let tx = tx.clone();
            async move {
                tx.send(p).await.unwrap();
            }
        });
        tokio::time::timeout(Duration::from_secs(5), socket.connect())
            .await
            .unwrap()
            .unwrap();
        socket.emit("echo", &"hi").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.args_json(), r#"["hi"]"#);
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            socket.emit_with_ack("ack", Payload::args(&(1, 2)).unwrap(), None),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(answer.args_json(), "[1,2]");
        socket.disconnect();
    }
}
