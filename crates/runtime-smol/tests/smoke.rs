//! The server and the client on smol, talking to each other over each
//! transport.

use std::time::Duration;

use runtime_smol::SmolRuntime;
use socketio::client::{ClientOptions, Transports};
use socketio::{Payload, SocketIo, SocketIoConfig};

/// `future`'s output, or a panic after 10 s.
async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    let timeout = async {
        async_io::Timer::after(Duration::from_secs(10)).await;
        panic!("timed out: {what}");
    };
    smol::future::or(future, timeout).await
}

#[test]
fn server_and_client_on_smol() {
    smol::block_on(async {
        let io = SocketIo::new(SmolRuntime, SocketIoConfig::default());
        io.on_connection("/", |socket| async move {
            socket.on("echo-ack", |_, payload: Payload, ack| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            });
        });
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        smol::spawn(runtime_smol::serve(listener, io)).detach();
        for transports in [Transports::POLLING, Transports::WEBSOCKET, Transports::ALL] {
            let options = ClientOptions::default().transports(transports);
            let socket = within("connect", runtime_smol::connect(&url, options))
                .await
                .unwrap();
            let answer = within(
                "ack",
                socket.emit_with_ack("echo-ack", Payload::args(&(1, "two")).unwrap(), None),
            )
            .await
            .unwrap();
            assert_eq!(answer.args_json(), r#"[1,"two"]"#);
            socket.disconnect();
        }
    });
}
