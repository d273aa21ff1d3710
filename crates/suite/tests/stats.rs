//! `SocketIo::stats`, over real loopback sockets: what a namespace's
//! sockets did (connects, disconnects by reason, events both ways,
//! broadcasts, volatile drops, ack timeouts) and what the engine carried
//! (sessions by transport, closes by reason, messages and bytes).

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use socketio::{NamespaceStats, SocketIo, SocketIoConfig, SocketRef};
use suite::raw::socketio;
use suite::{sleep, within, TestRuntime};

/// The stats of `nsp`, once `done` says they are complete.
async fn settled<R: TestRuntime>(
    io: &SocketIo<R>,
    nsp: &str,
    done: impl Fn(&NamespaceStats) -> bool,
) -> NamespaceStats {
    within("the stats to settle", async {
        loop {
            let stats = io.stats();
            if let Some(namespace) = stats.namespaces.iter().find(|n| n.name == nsp) {
                if done(namespace) {
                    return namespace.clone();
                }
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn stats_count_what_sockets_did<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket: SocketRef| async move {
        socket.join("room");
        socket.on("shout", |socket: SocketRef| async move {
            let _ = socket.to("room").emit("heard", &1).await;
        });
        socket.on("ask", |socket: SocketRef| async move {
            // The raw client never answers.
            let _ = socket
                .emit_with_ack(
                    "question",
                    socketio::Payload::empty(),
                    Some(Duration::from_millis(50)),
                )
                .await;
        });
    });
    let addr = rt.serve(io.clone()).await;
    let mut first = socketio(rt, addr, "/", None).await;
    let mut second = socketio(rt, addr, "/", None).await;
    let before = io.engine().stats();
    assert_eq!((before.sessions_opened, before.websocket), (2, 2));

    first.send(Message::text(r#"42["shout"]"#)).await.unwrap();
    first.send(Message::text(r#"42["ask"]"#)).await.unwrap();
    // The other socket hears the broadcast; the question goes to the
    // first.
    let question = within("the question", first.next()).await.unwrap().unwrap();
    assert_eq!(question.to_text().unwrap(), r#"421["question"]"#);
    let heard = within("the broadcast", second.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(heard.to_text().unwrap(), r#"42["heard",1]"#);
    let stats = settled(&io, "/", |n| n.ack_timeouts == 1).await;
    assert_eq!(stats.sockets, 2);
    assert_eq!(stats.connects, 2);
    assert_eq!(stats.events_received, 2);
    // One delivery of one broadcast, and the question.
    assert_eq!((stats.broadcasts, stats.events_sent), (1, 2));

    // A volatile broadcast to a socket whose transport can take it is
    // sent; one that left counts as nothing.
    io.volatile().emit("tick", &()).await.unwrap();
    drop(second);
    let stats = settled(&io, "/", |n| n.sockets == 1).await;
    assert_eq!(stats.disconnects, [("transport close", 1)]);
    assert_eq!(stats.events_sent, 4);

    first.send(Message::text("41")).await.unwrap();
    let stats = settled(&io, "/", |n| n.sockets == 0).await;
    assert_eq!(
        stats.disconnects,
        [("client namespace disconnect", 1), ("transport close", 1)]
    );
    first.close(None).await.unwrap();
    let engine = within("the sessions to close", async {
        loop {
            let engine = io.engine().stats();
            if engine.closed_total() == 2 {
                return engine;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!((engine.polling, engine.websocket), (0, 0));
    assert_eq!(engine.closed().nth(1), Some(("transport close", 2)));
    // In: 2 CONNECTs, 2 events, 1 DISCONNECT; out: 2 CONNECTs, 4 events.
    assert_eq!(
        (engine.messages_in, engine.messages_out),
        (2 + 2 + 1, 2 + 4)
    );
    assert!(engine.bytes_in > 0 && engine.bytes_out > engine.messages_out);
}

suite::on_each_runtime!(stats_count_what_sockets_did);
