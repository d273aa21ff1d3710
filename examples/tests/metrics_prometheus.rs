//! The observability example's metrics scraped as Prometheus would: after a client of ours
//! connects and emits three `echo` events with acks, `/metrics` shows them
//! (within the publishing period) with the socket, its session and the
//! bytes, in Prometheus' text format.

#[path = "../observability/server.rs"]
mod server;

use std::time::Duration;

use socketio::client::ClientOptions;
use socketio::Payload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_sockets_events_and_sessions() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        server::server("metrics-test").expect("the Admin UI's files (npm ci --prefix interop)");
    tokio::spawn(runtime_tokio::serve(listener, server));

    let client = runtime_tokio::connect(&format!("http://{addr}/"), ClientOptions::default())
        .await
        .expect("the client connects");
    for i in 0..3 {
        let answer = client
            .emit_with_ack(
                "echo",
                Payload::single(&i).unwrap(),
                Some(Duration::from_secs(5)),
            )
            .await
            .expect("an ack");
        assert_eq!(answer.first::<i32>().unwrap(), i);
    }
    let expected = [
        r#"socketio_events_received_total{namespace="/"} 3"#,
        // Three echoes and three acks: the acks are not events.
        r#"socketio_events_sent_total{namespace="/"} 3"#,
        r#"socketio_sockets{namespace="/"} 1"#,
        r#"socketio_connects_total{namespace="/"} 1"#,
        "socketio_engine_sessions_opened_total 1",
        "# TYPE socketio_engine_bytes_received_total counter",
    ];
    let scraped = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = scrape(addr).await;
            if expected.iter().all(|line| text.contains(line)) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let Ok(text) = scraped else {
        panic!(
            "the metrics never showed {expected:#?}:\n{}",
            scrape(addr).await
        );
    };
    assert!(
        text.contains("socketio_engine_sessions{transport=\"websocket\"} 1"),
        "{text}"
    );
    client.disconnect();
}
