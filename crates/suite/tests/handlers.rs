//! How handlers run and what bounds them, over real loopback sockets: an
//! application echoing while its peer floods never stalls, an emit to a
//! client that does not read fails with `BufferFull` instead of growing,
//! a client that keeps too many handlers waiting loses only its own
//! connection, a sequential namespace runs one event at a time, and a
//! handler that panics loses only itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use socketio::engine::{EngineConfig, EngineServer};
use socketio::{Binary, Data, EmitError, Payload, SocketIo, SocketIoConfig};
use suite::raw::{socketio, websocket};
use suite::{sleep, within_for, TestRuntime};

const LIMIT: Duration = Duration::from_secs(30);

/// A new client joins `/` and gets its `echo-ack` answered.
async fn still_served<R: TestRuntime>(rt: R, addr: std::net::SocketAddr) {
    let mut good = socketio(rt, addr, "/", None).await;
    good.send(Message::text(r#"421["echo-ack","hi"]"#))
        .await
        .unwrap();
    let answer = good.next().await.unwrap().unwrap();
    assert_eq!(answer.to_text().unwrap(), r#"431["hi"]"#);
}

/// A raw Engine.IO application echoes every message while its peer sends
/// 20,000 of them as fast as it can (reading meanwhile, as a real peer
/// does): every echo comes back, in order.
async fn a_raw_engine_app_echoes_while_its_peer_floods<R: TestRuntime>(rt: R) {
    let engine = EngineServer::new(rt, EngineConfig::default(), move |mut socket| {
        rt.spawn(Box::pin(async move {
            while let Some(message) = socket.recv().await {
                if socket.send(message).await.is_err() {
                    break;
                }
            }
        }));
    });
    let addr = rt.serve(engine).await;
    let test = async {
        let ws = websocket(rt, addr, "/engine.io/?EIO=4&transport=websocket").await;
        let (mut sink, mut stream) = ws.split();
        let open = stream.next().await.unwrap().unwrap();
        assert!(open.to_text().unwrap().starts_with("0{"));
        const COUNT: usize = 20_000;
        let writer = async move {
            for i in 0..COUNT {
                sink.send(Message::text(format!("4m{i}"))).await.unwrap();
            }
            sink
        };
        let reader = async move {
            let mut next = 0;
            while next < COUNT {
                let frame = stream.next().await.unwrap().unwrap();
                let text = frame.to_text().unwrap();
                if text == "2" {
                    continue;
                }
                assert_eq!(text, format!("4m{next}"));
                next += 1;
            }
        };
        futures_util::future::join(writer, reader).await;
    };
    within_for(LIMIT, "20,000 echoes", test).await;
}

/// A handler emits 64 KiB events to a client that never reads: the emits
/// fail with `BufferFull` once the connection's buffer is full, the
/// connection stays, and another client is served.
async fn an_emit_to_a_client_that_does_not_read_fails_with_buffer_full<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.engine.protocol.max_buffered_packets = 100;
    config.engine.ws_queue = 16;
    let io = SocketIo::new(rt, config);
    let outcome: Arc<Mutex<Option<(usize, String)>>> = Arc::default();
    let seen = outcome.clone();
    io.on_connection("/", move |socket| {
        let outcome = seen.clone();
        async move {
            socket.on("flood-me", move |socket: socketio::SocketRef| {
                let outcome = outcome.clone();
                async move {
                    let chunk = Binary::from(vec![7u8; 64 * 1024]);
                    let mut sent = 0;
                    let error = loop {
                        match socket.emit("chunk", &chunk).await {
                            Ok(()) => sent += 1,
                            Err(error) => break error,
                        }
                        if sent % 16 == 0 {
                            // Let the connection's task write meanwhile.
                            sleep(Duration::from_millis(1)).await;
                        }
                        assert!(sent < 100_000, "emits never failed");
                    };
                    assert!(matches!(error, EmitError::BufferFull), "{error:?}");
                    *outcome.lock().unwrap() = Some((sent, error.to_string()));
                    // The connection is still there for what fits later.
                    assert!(socket.emit_volatile("after", Payload::empty()).is_ok());
                }
            });
            socket.on(
                "echo-ack",
                |payload: Payload, ack: Option<socketio::AckSender>| async move {
                    ack.unwrap().send_payload(payload).await.unwrap();
                },
            );
        }
    });
    let addr = rt.serve(io).await;
    let test = async {
        let mut stalled = socketio(rt, addr, "/", None).await;
        stalled
            .send(Message::text(r#"42["flood-me"]"#))
            .await
            .unwrap();
        // The client never reads again; the handler gives up with an error.
        let (sent, error) = loop {
            if let Some(outcome) = outcome.lock().unwrap().clone() {
                break outcome;
            }
            sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(error, "send buffer full");
        // 100 in the machine, 16 in the WebSocket's queue, and what the
        // kernel's socket buffers took: far below what was tried.
        assert!(
            sent < 1_000,
            "{sent} events queued for a client that never reads"
        );
        // Everyone else is served meanwhile.
        still_served(rt, addr).await;
        drop(stalled);
    };
    within_for(LIMIT, "the emits to fail", test).await;
}

/// A client whose events keep more handlers waiting than
/// `max_pending_events` is disconnected (`forced server close`); its
/// handlers end (their awaited acks fail), and another client is served.
async fn a_client_keeping_too_many_handlers_waiting_is_closed<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.max_pending_events = 50;
    let io = SocketIo::new(rt, config);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = log.clone();
    io.on_connection("/", move |socket| {
        let log = seen.clone();
        async move {
            let on_leave = log.clone();
            socket.on_disconnect(
                move |socketio::extract::Reason(reason): socketio::extract::Reason| {
                    on_leave.lock().unwrap().push(format!("left: {reason}"));
                    async {}
                },
            );
            // Waits for an answer that this client never gives.
            socket.on("wait", move |socket: socketio::SocketRef| {
                let log = log.clone();
                async move {
                    let answer = socket.emit_with_ack("q", Payload::empty(), None).await;
                    log.lock().unwrap().push(format!("{answer:?}"));
                }
            });
            socket.on(
                "echo-ack",
                |payload: Payload, ack: Option<socketio::AckSender>| async move {
                    ack.unwrap().send_payload(payload).await.unwrap();
                },
            );
        }
    });
    let addr = rt.serve(io.clone()).await;
    let test = async {
        let mut flooder = socketio(rt, addr, "/", None).await;
        for _ in 0..60 {
            flooder.send(Message::text(r#"42["wait"]"#)).await.unwrap();
        }
        // Its connection ends: questions arrive, then the WebSocket closes.
        while let Some(Ok(frame)) = flooder.next().await {
            if frame.is_close() {
                break;
            }
        }
        still_served(rt, addr).await;
        // Every waiting handler ended with the disconnect.
        loop {
            let entries = log.lock().unwrap().clone();
            let failed = entries.iter().filter(|e| *e == "Err(Disconnected)").count();
            if failed == 51 {
                assert!(entries.contains(&"left: forced server close".to_owned()));
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
    };
    within_for(LIMIT, "the flooder to be closed", test).await;
}

/// On a sequential namespace a socket's events run one after the other;
/// on the default one they start in order and interleave.
async fn a_sequential_namespace_runs_one_event_at_a_time<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.of("/seq").set_sequential(true);
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    for nsp in ["/seq", "/"] {
        let log = log.clone();
        io.on_connection(nsp, move |socket| {
            let log = log.clone();
            async move {
                socket.on(
                    "step",
                    move |Data(n): Data<u32>, ack: Option<socketio::AckSender>| {
                        let log = log.clone();
                        async move {
                            log.lock().unwrap().push(format!("start {n}"));
                            sleep(Duration::from_millis(30)).await;
                            log.lock().unwrap().push(format!("end {n}"));
                            if let Some(ack) = ack {
                                ack.send(&n).await.unwrap();
                            }
                        }
                    },
                );
            }
        });
    }
    let addr = rt.serve(io).await;
    let test = async {
        for (nsp, prefix, expected) in [
            ("/seq", "/seq,", "start 1,end 1,start 2,end 2,start 3,end 3"),
            ("/", "", "start 1,start 2,start 3,end 1,end 2,end 3"),
        ] {
            log.lock().unwrap().clear();
            let mut ws = socketio(rt, addr, nsp, None).await;
            for n in 1..=2 {
                ws.send(Message::text(format!(r#"42{prefix}["step",{n}]"#)))
                    .await
                    .unwrap();
            }
            ws.send(Message::text(format!(r#"42{prefix}9["step",3]"#)))
                .await
                .unwrap();
            let answer = ws.next().await.unwrap().unwrap();
            assert_eq!(answer.to_text().unwrap(), format!("43{prefix}9[3]"));
            assert_eq!(log.lock().unwrap().join(","), expected, "on {nsp}");
        }
    };
    within_for(LIMIT, "the steps", test).await;
}

/// On a sequential namespace a handler may await its client's answer to
/// `emit_with_ack`: the answer is an ack, not an event, so it does not
/// wait for the handler's turn to end.
async fn a_sequential_handler_gets_its_clients_answer<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.of("/seq").set_sequential(true);
    io.on_connection("/seq", |socket| async move {
        socket.on(
            "ask",
            |socket: socketio::SocketRef, ack: Option<socketio::AckSender>| async move {
                let answer = socket
                    .emit_with_ack("q", Payload::empty(), Some(Duration::from_secs(5)))
                    .await
                    .expect("the client's answer");
                ack.unwrap().send_payload(answer).await.unwrap();
            },
        );
    });
    let addr = rt.serve(io).await;
    let test = async {
        let mut ws = socketio(rt, addr, "/seq", None).await;
        ws.send(Message::text(r#"42/seq,7["ask"]"#)).await.unwrap();
        let question = ws.next().await.unwrap().unwrap();
        let question = question.to_text().unwrap();
        // `42/seq,<id>["q"]`: answer with the same id.
        let id = question
            .strip_prefix("42/seq,")
            .and_then(|rest| rest.strip_suffix(r#"["q"]"#))
            .unwrap_or_else(|| panic!("not the question: {question}"));
        ws.send(Message::text(format!(r#"43/seq,{id}["yes"]"#)))
            .await
            .unwrap();
        let answer = ws.next().await.unwrap().unwrap();
        assert_eq!(answer.to_text().unwrap(), r#"43/seq,7["yes"]"#);
    };
    within_for(LIMIT, "the answer", test).await;
}

/// A handler that panics loses only itself: the connection goes on (its
/// next event is answered), once the client leaves its socket leaves the
/// namespace although its disconnecting handler panics, and a connect
/// middleware that panics refuses the CONNECT with `server error`.
async fn a_panicking_handler_loses_only_itself<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("boom", || async {
            panic!("a handler's bug (this panic is the test's)");
        });
        socket.on_disconnecting(|| async {
            panic!("a disconnecting handler's bug (this panic is the test's)");
        });
        socket.on(
            "echo-ack",
            |payload: Payload, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            },
        );
    });
    io.of("/fragile").use_middleware(|_| async {
        if true {
            panic!("a middleware's bug (this panic is the test's)");
        }
        Ok(())
    });
    let main = io.sockets();
    let addr = rt.serve(io).await;
    let test = async {
        // A middleware that panics refuses the CONNECT.
        let mut refused = websocket(rt, addr, "/socket.io/?EIO=4&transport=websocket").await;
        refused.next().await.unwrap().unwrap();
        refused.send(Message::text("40/fragile,")).await.unwrap();
        let answer = refused.next().await.unwrap().unwrap();
        assert_eq!(
            answer.to_text().unwrap(),
            r#"44/fragile,{"message":"server error"}"#
        );

        let mut ws = socketio(rt, addr, "/", None).await;
        ws.send(Message::text(r#"42["boom"]"#)).await.unwrap();
        ws.send(Message::text(r#"421["echo-ack","still here"]"#))
            .await
            .unwrap();
        let answer = ws.next().await.unwrap().unwrap();
        assert_eq!(answer.to_text().unwrap(), r#"431["still here"]"#);
        assert_eq!(main.broadcast().fetch_sockets().await.unwrap().len(), 1);
        drop(ws);
        while !main.broadcast().fetch_sockets().await.unwrap().is_empty() {
            sleep(Duration::from_millis(20)).await;
        }
        still_served(rt, addr).await;
    };
    within_for(LIMIT, "the panic's aftermath", test).await;
}

suite::on_each_runtime!(
    a_panicking_handler_loses_only_itself,
    a_sequential_handler_gets_its_clients_answer,
    a_raw_engine_app_echoes_while_its_peer_floods,
    an_emit_to_a_client_that_does_not_read_fails_with_buffer_full,
    a_client_keeping_too_many_handlers_waiting_is_closed,
    a_sequential_namespace_runs_one_event_at_a_time,
);
