//! The behaviour of `interop/server.mjs` (the official server the Rust
//! client's interop tests talk to) on our server: the same namespaces,
//! events and answers, so one scenario runs against both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socketio::{
    Args, Binary, ConnectRequest, Data, NamespaceRef, Payload, SocketIo, SocketIoConfig,
};

use crate::fixtures::{Back, Receipt, Upload};
use crate::{sleep, TestRuntime, WAIT};

/// The heartbeat of both servers: short, so that a dropped network is
/// noticed in a few seconds (Node's defaults would take 45).
pub const PING_INTERVAL: Duration = Duration::from_millis(2_000);
/// See [`PING_INTERVAL`].
pub const PING_TIMEOUT: Duration = Duration::from_millis(3_000);

/// Starts the server on a free loopback port; returns its URL.
pub async fn start<R: TestRuntime>(rt: R) -> String {
    start_with(rt, |_| {}).await
}

/// [`start`] with settings of the test's own (a parser, `allow_eio3`).
pub async fn start_with<R: TestRuntime>(
    rt: R,
    configure: impl FnOnce(&mut SocketIoConfig),
) -> String {
    let addr = rt.serve(app(rt, configure)).await;
    format!("http://{addr}/")
}

/// The server `interop/server.mjs` describes, not yet listening (the
/// `mirror-server` binary serves it on a port of its choice).
pub fn app<R: TestRuntime>(rt: R, configure: impl FnOnce(&mut SocketIoConfig)) -> SocketIo<R> {
    let mut config = SocketIoConfig::default();
    config.recovery = Some(socketio::RecoveryConfig::default());
    // As `server.mjs`: a client whose network went away is noticed within
    // 5 s even when no request of it was pending.
    config.engine.protocol.ping_interval = PING_INTERVAL;
    config.engine.protocol.ping_timeout = PING_TIMEOUT;
    configure(&mut config);
    let io = SocketIo::new(rt, config);
    let nevers: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    // What each client (by name) sent as "seq" events: the restart test
    // checks that buffered emits arrive once.
    let received: Arc<Mutex<HashMap<String, Vec<i64>>>> = Arc::default();
    let main = io.of("/");
    io.on_connection("/", move |socket| {
        let nevers = nevers.clone();
        let received = received.clone();
        let main = main.clone();
        async move {
            let auth: Value = serde_json::from_str(socket.auth()).unwrap_or(Value::Null);
            let name = auth["name"].as_str().unwrap_or("anonymous").to_owned();
            socket.join("clients");
            // Before the welcome says which transport it is on.
            socket.on_upgrade(|socket: socketio::SocketRef| async move {
                // Fails if the client went away meanwhile.
                let _ = socket.emit("upgraded", "websocket").await;
            });
            let handshake = socket.handshake();
            let header = handshake
                .headers
                .get("x-test")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let cookie = handshake
                .headers
                .get("cookie")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let welcome = json!({
                "id": socket.id().as_str(),
                "engine": socket.engine_id().as_str(),
                "auth": auth,
                "header": header,
                "query": handshake.query_param("q"),
                "transport": socket.transport(),
                "recovered": socket.recovered(),
                "cookie": cookie,
            });
            socket.emit("welcome", &welcome).await.unwrap();

            socket.on(
                "echo",
                |socket: socketio::SocketRef, payload: Payload| async move {
                    socket.emit_payload("echo", payload).await.unwrap();
                },
            );
            socket.on(
                "echo-ack",
                |payload: Payload, ack: Option<socketio::AckSender>| async move {
                    ack.unwrap().send_payload(payload).await.unwrap();
                },
            );
            socket.on(
                "ask",
                |socket: socketio::SocketRef, Data(question): Data<Value>| async move {
                    let answer = socket
                        .emit_with_ack(
                            "question",
                            Payload::single(&question).unwrap(),
                            Some(Duration::from_secs(3)),
                        )
                        .await;
                    let answer: Value = match answer {
                        Ok(answer) => answer.first().unwrap(),
                        Err(error) => json!(format!("error: {error}")),
                    };
                    socket.emit("answer", &answer).await.unwrap();
                },
            );
            socket.on(
                "upload",
                |Data(upload): Data<Upload>, ack: Option<socketio::AckSender>| async move {
                    let receipt = Receipt {
                        ok: true,
                        size: upload.file.len(),
                        parts: upload.meta.parts.iter().map(|p| p.len()).collect(),
                        back: Back {
                            inner: (Binary::from(vec![1u8, 2, 3]), upload.meta.parts[0].clone()),
                        },
                        name: upload.name,
                    };
                    ack.unwrap().send(&receipt).await.unwrap();
                },
            );
            let counted = nevers.clone();
            let who = name.clone();
            socket.on("never", move || {
                *counted.lock().unwrap().entry(who.clone()).or_default() += 1;
                async {}
            });
            let who = name.clone();
            socket.on("nevers", move |ack: Option<socketio::AckSender>| {
                let count = nevers.lock().unwrap().get(&who).copied().unwrap_or(0);
                async move { ack.unwrap().send(&count).await.unwrap() }
            });
            let (list, who) = (received.clone(), name.clone());
            socket.on("seq", move |Data(n): Data<i64>| {
                list.lock().unwrap().entry(who.clone()).or_default().push(n);
                async {}
            });
            let who = name.clone();
            socket.on("report", move |ack: Option<socketio::AckSender>| {
                let list = received
                    .lock()
                    .unwrap()
                    .get(&who)
                    .cloned()
                    .unwrap_or_default();
                async move { ack.unwrap().send(&list).await.unwrap() }
            });
            // Sends `data` back as "plain", uncompressed, to the socket
            // and through a broadcast to its own room.
            let to_room = main.clone();
            socket.on(
                "plain-please",
                move |socket: socketio::SocketRef, Data(data): Data<Value>| {
                    let to_room = to_room.clone();
                    async move {
                        socket.compress(false).emit("plain", &data).await.unwrap();
                        to_room
                            .compress(false)
                            .to(socket.id().as_str())
                            .emit("plain", &data)
                            .await
                            .unwrap();
                    }
                },
            );
            socket.on("disconnect-me", |socket: socketio::SocketRef| async move {
                let _ = socket.disconnect().await;
            });
            // Sends the client away: every namespace of its connection
            // is disconnected (Node's `socket.disconnect(true)`).
            socket.on("kick-all", |socket: socketio::SocketRef| async move {
                let _ = socket.close_connection().await;
            });
            // Once socket `id` is gone (its network dropped), emits
            // `count` events to the room every client is in, which that
            // client must recover; answers whether it was gone.
            socket.on(
                "emit-missed",
                move |Args((id, count)): Args<(String, u32)>, ack: Option<socketio::AckSender>| {
                    let main = main.clone();
                    async move {
                        let gone = wait_until_gone(&main, &id).await;
                        for i in 1..=count {
                            main.to("clients").emit("missed", &i).await.unwrap();
                        }
                        ack.unwrap().send(&gone).await.unwrap();
                    }
                },
            );
            // One handshake per connection: its address names the connection.
            socket.on(
                "engine-id",
                |socket: socketio::SocketRef, ack: Option<socketio::AckSender>| async move {
                    let connection = std::ptr::from_ref(socket.handshake()) as usize;
                    ack.unwrap().send(&connection).await.unwrap();
                },
            );
            // Answers after `ms`: a handler that awaits while others run.
            socket.on(
                "sleep",
                |Data(ms): Data<u64>, ack: Option<socketio::AckSender>| async move {
                    sleep(Duration::from_millis(ms)).await;
                    ack.unwrap().send(&ms).await.unwrap();
                },
            );
            // Emits, for each (event, count) of the plan in order, `count`
            // events numbered from 1, then answers.
            socket.on(
                "burst",
                |socket: socketio::SocketRef,
                 Data(plan): Data<Vec<(String, u32)>>,
                 ack: Option<socketio::AckSender>| async move {
                    for (event, count) in plan {
                        for i in 1..=count {
                            socket.emit(&event, &i).await.unwrap();
                        }
                    }
                    ack.unwrap().send(&true).await.unwrap();
                },
            );
            // Awaits the client's answer to a question, then answers with it.
            socket.on(
                "ask-then",
                |socket: socketio::SocketRef, ack: Option<socketio::AckSender>| async move {
                    let answer = socket
                        .emit_with_ack(
                            "question",
                            Payload::single("ping").unwrap(),
                            Some(Duration::from_secs(10)),
                        )
                        .await;
                    let answer: Value = match answer {
                        Ok(answer) => answer.first().unwrap(),
                        Err(error) => json!(format!("error: {error}")),
                    };
                    ack.unwrap().send(&answer).await.unwrap();
                },
            );
        }
    });
    // A second namespace on the same connection.
    io.on_connection("/b", |socket| async move {
        socket.on(
            "echo-ack",
            |payload: Payload, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            },
        );
    });
    let admin = io.of("/admin");
    admin.use_middleware(|request: ConnectRequest| async move {
        let auth: Value = request.auth().unwrap_or(Value::Null);
        if auth["token"] == json!("secret") {
            Ok(())
        } else {
            Err(socketio::ConnectError::new("unauthorized").with_data(json!({ "code": 401 })))
        }
    });
    io.on_connection("/admin", |socket| async move {
        let auth: Value = serde_json::from_str(socket.auth()).unwrap_or(Value::Null);
        socket
            .emit(
                "admin-welcome",
                &json!({ "engine": socket.engine_id().as_str(), "auth": auth }),
            )
            .await
            .unwrap();
        socket.on(
            "engine-id",
            |socket: socketio::SocketRef, ack: Option<socketio::AckSender>| async move {
                let connection = std::ptr::from_ref(socket.handshake()) as usize;
                ack.unwrap().send(&connection).await.unwrap();
            },
        );
        socket.on("kick-all", |socket: socketio::SocketRef| async move {
            let _ = socket.close_connection().await;
        });
    });
    io
}

/// The address of a URL [`start`] returned.
pub fn address(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("a http://ip:port/ URL")
}

/// Waits (at most [`WAIT`]) until no socket of `main` has id `id`; false
/// if it is still there.
async fn wait_until_gone(main: &NamespaceRef, id: &str) -> bool {
    let deadline = Instant::now() + WAIT;
    loop {
        let sockets = main.broadcast().fetch_sockets().await.unwrap_or_default();
        if !sockets.iter().any(|socket| socket.id.as_str() == id) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(20)).await;
    }
}
