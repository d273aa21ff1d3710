//! The parts of Node's server API users reach for beyond `on` and `emit`:
//! `once`, `off`, `removeAllListeners`, `prependAny`/`offAny`,
//! `socket.connected`, `nsp.sockets.get(id)`, rooms several at once, and the
//! `io.emit` / `io.to` / `io.use` shorthands for the main namespace. Each
//! over real loopback sockets, with a raw client that reads the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use socketio::extract::{Ack, Data, Event, Reason, Transport};
use socketio::{ConnectError, Payload, RoomEvent, SocketIo, SocketIoConfig, SocketRef};
use suite::raw::{ask, next_text, socketio};
use suite::{sleep, within_for, TestRuntime};

const LIMIT: Duration = Duration::from_secs(20);

/// `once` runs for one occurrence; `off` and `remove_all_listeners` remove
/// listeners; `prepend_any` runs before the other `on_any` listeners.
async fn once_off_and_remove_all_listeners<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let any_order: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let order = any_order.clone();
    io.on_connection("/", move |socket| {
        let order = order.clone();
        async move {
            socket.once("first", |ack: Ack| async move {
                let _ = ack.send(&"once").await;
            });
            socket.on("gone", |ack: Ack| async move {
                let _ = ack.send(&"still here").await;
            });
            socket.on("drop-gone", |socket: SocketRef, ack: Ack| async move {
                socket.off("gone");
                let _ = ack.send(&socket.listener_count("gone")).await;
            });
            socket.on("drop-any", |socket: SocketRef, ack: Ack| async move {
                socket.off_any();
                let _ = ack.send(&()).await;
            });
            socket.on("reset", |socket: SocketRef, ack: Ack| async move {
                socket.remove_all_listeners();
                let _ = ack.send(&socket.listener_count("reset")).await;
            });
            let (second, first) = (order.clone(), order.clone());
            socket.on_any(move |_, _, _| {
                second.lock().unwrap().push("added first");
                async {}
            });
            socket.prepend_any(move |_, _, _| {
                first.lock().unwrap().push("prepended");
                async {}
            });
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the listeners", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(ask::<R>(&mut ws, r#"421["first"]"#).await, r#"431["once"]"#);
        // The second "first" finds no listener: the next answer is 3's.
        ws.send(Message::text(r#"422["first"]"#)).await.unwrap();
        assert_eq!(
            ask::<R>(&mut ws, r#"423["gone"]"#).await,
            r#"433["still here"]"#
        );
        assert_eq!(ask::<R>(&mut ws, r#"424["drop-gone"]"#).await, "434[0]");
        ws.send(Message::text(r#"425["gone"]"#)).await.unwrap();
        // `off_any` in a handler: that event still reached the `on_any`
        // listeners (they start first), the next ones do not.
        assert_eq!(ask::<R>(&mut ws, r#"426["drop-any"]"#).await, "436[null]");
        assert_eq!(ask::<R>(&mut ws, r#"427["reset"]"#).await, "437[0]");
        // Nothing listens any more.
        ws.send(Message::text(r#"428["reset"]"#)).await.unwrap();
        sleep(Duration::from_millis(100)).await;
        let order = any_order.lock().unwrap().clone();
        // Six events reached the `on_any` listeners before `off_any`, the
        // prepended one first each time.
        assert_eq!(order.len(), 12, "{order:?}");
        assert!(order
            .chunks(2)
            .all(|pair| pair == ["prepended", "added first"]));
    })
    .await;
}

/// Rooms several at once, `connected()`, `get_socket`, and the shorthands
/// for the main namespace (`io.use`, `io.to`, `io.emit`).
async fn rooms_at_once_and_io_shorthands<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.use_middleware(|request| async move {
        if request.auth_json().contains("intruder") {
            Err(ConnectError::new("go away"))
        } else {
            Ok(())
        }
    });
    let left_connected: Arc<Mutex<Option<bool>>> = Arc::default();
    let (server, seen) = (io.clone(), left_connected.clone());
    io.on_connection("/", move |socket| {
        let (io, seen) = (server.clone(), seen.clone());
        async move {
            socket.on("join", |socket: SocketRef, ack: Ack| async move {
                socket.join(["a", "b"]);
                let mut rooms = socket.rooms();
                rooms.retain(|room| room.len() == 1);
                rooms.sort();
                let _ = ack.send(&rooms).await;
            });
            socket.on("leave", |socket: SocketRef, ack: Ack| async move {
                socket.leave(vec!["a".to_string(), "b".to_string()]);
                let _ = ack.send(&socket.rooms().len()).await;
            });
            let io_for_news = io.clone();
            socket.on(
                "news",
                move |Data(room): Data<String>, Event(name): Event| {
                    let io = io_for_news.clone();
                    async move {
                        let _ = io.to([room.as_str()]).emit(&name, &room).await;
                        let _ = io.emit("everyone", &1).await;
                        let _ = io.except("nobody-here").emit("all-but", &2).await;
                        let _ = io.sockets().to("a").except("b").emit("a-not-b", &3).await;
                    }
                },
            );
            socket.on("whoami", move |socket: SocketRef, ack: Ack| {
                let io = io.clone();
                async move {
                    let found = io.get_socket(socket.id()).map(|found| found.id());
                    let in_nsp = io.sockets().get_socket(socket.id()).is_some();
                    // Typed per-socket values: insert, get, remove.
                    let extensions = socket.extensions();
                    extensions.insert(7u8);
                    let kept = extensions.get::<u8>() == Some(7) && extensions.contains::<u8>();
                    let removed =
                        extensions.remove::<u8>() == Some(7) && !extensions.contains::<u8>();
                    let _ = ack
                        .send(&(
                            socket.connected(),
                            found == Some(socket.id()) && in_nsp,
                            kept && removed,
                        ))
                        .await;
                }
            });
            socket.on_disconnect(move |socket: SocketRef, Reason(_): Reason| {
                *seen.lock().unwrap() = Some(socket.connected());
                async {}
            });
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the rooms", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["join"]"#).await,
            r#"431[["a","b"]]"#
        );
        assert_eq!(
            ask::<R>(&mut ws, r#"422["whoami"]"#).await,
            "432[[true,true,true]]"
        );
        ws.send(Message::text(r#"42["news","b"]"#)).await.unwrap();
        assert_eq!(next_text::<R>(&mut ws).await, r#"42["news","b"]"#);
        assert_eq!(next_text::<R>(&mut ws).await, r#"42["everyone",1]"#);
        assert_eq!(next_text::<R>(&mut ws).await, r#"42["all-but",2]"#);
        // In "a" and in "b": "a-not-b" leaves it out, so the next frame is
        // the next answer.
        // Only its own room is left.
        assert_eq!(ask::<R>(&mut ws, r#"423["leave"]"#).await, "433[1]");
        ws.send(Message::text("41")).await.unwrap();
        while left_connected.lock().unwrap().is_none() {
            sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*left_connected.lock().unwrap(), Some(false));

        // `io.use` refuses on the main namespace.
        let mut intruder =
            suite::raw::websocket(rt, addr, "/socket.io/?EIO=4&transport=websocket").await;
        let _open = intruder.next().await.unwrap().unwrap();
        intruder
            .send(Message::text(r#"40{"who":"intruder"}"#))
            .await
            .unwrap();
        let refused = intruder.next().await.unwrap().unwrap();
        assert_eq!(refused.to_text().unwrap(), r#"44{"message":"go away"}"#);
    })
    .await;
}

/// A listener for a payload it does not read (Node's handlers that ignore
/// their arguments): no extractor at all.
async fn a_listener_may_take_nothing<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let count: Arc<Mutex<usize>> = Arc::default();
    let counted = count.clone();
    io.on_connection("/", move |socket| {
        let counted = counted.clone();
        async move {
            socket.on("tick", move || {
                *counted.lock().unwrap() += 1;
                async {}
            });
            socket.on("count", move |payload: Payload, ack: Ack| async move {
                let _ = ack.send_payload(payload).await;
            });
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the ticks", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        for _ in 0..3 {
            ws.send(Message::text(r#"42["tick",{"ignored":true}]"#))
                .await
                .unwrap();
        }
        assert_eq!(ask::<R>(&mut ws, r#"421["count",7]"#).await, "431[7]");
        assert_eq!(*count.lock().unwrap(), 3);
    })
    .await;
}

/// `socket.transport()` and the upgrade event, as the official client (our
/// Rust one here) moves from long-polling to WebSocket.
async fn the_transport_and_its_upgrade<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let upgrades: Arc<Mutex<Vec<(&'static str, &'static str)>>> = Arc::default();
    let seen = upgrades.clone();
    io.on_connection("/", move |socket| {
        let seen = seen.clone();
        async move {
            let first = socket.transport();
            socket.on_upgrade(move |Transport(now): Transport| {
                seen.lock().unwrap().push((first, now));
                async {}
            });
            socket.on(
                "transport",
                |Transport(now): Transport, ack: Ack| async move {
                    let _ = ack.send(&now).await;
                },
            );
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the upgrade", async {
        let url = format!("http://{addr}/");
        let client =
            socketio::client::connect(rt, &url, socketio::client::ClientOptions::default())
                .await
                .unwrap();
        while upgrades.lock().unwrap().is_empty() {
            sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*upgrades.lock().unwrap(), [("polling", "websocket")]);
        let answer = client
            .emit_with_ack("transport", Payload::empty(), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert_eq!(answer.first::<String>().unwrap(), "websocket");
        client.disconnect();
    })
    .await;
}

/// `SocketIoConfig::ack_timeout` bounds an `emit_with_ack` given no
/// timeout of its own.
async fn a_default_ack_timeout<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.ack_timeout = Some(Duration::from_millis(200));
    let io = SocketIo::new(rt, config);
    io.on_connection("/", |socket| async move {
        socket.on("ask-me", |socket: SocketRef, ack: Ack| async move {
            let answer = socket
                .emit_with_ack("question", Payload::empty(), None)
                .await;
            let _ = ack.send(&format!("{answer:?}")).await;
        });
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the timeout", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        ws.send(Message::text(r#"421["ask-me"]"#)).await.unwrap();
        // The question comes, and is never answered.
        assert_eq!(next_text::<R>(&mut ws).await, r#"421["question"]"#);
        assert_eq!(next_text::<R>(&mut ws).await, r#"431["Err(Timeout)"]"#);
    })
    .await;
}

/// A `RemoteSocket` from `fetch_sockets` acts on its socket through the
/// adapter (Node's `remoteSocket.emit/join/leave/disconnect`).
async fn remote_socket_methods<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let server = io.clone();
    io.on_connection("/", move |socket| {
        let io = server.clone();
        async move {
            socket.on("fetch-me", move |socket: SocketRef, ack: Ack| {
                let io = io.clone();
                async move {
                    let found = io.fetch_sockets().await.unwrap();
                    let me = found.into_iter().find(|s| s.id == socket.id()).unwrap();
                    me.join(["vip", "club"]).await.unwrap();
                    let mut rooms = socket.rooms();
                    rooms.retain(|room| *room != socket.id().as_str());
                    rooms.sort();
                    me.leave("club").await.unwrap();
                    me.emit("hello", "remote").await.unwrap();
                    let _ = ack
                        .send(&(rooms, socket.rooms().contains(&"vip".to_owned())))
                        .await;
                    me.disconnect(false).await.unwrap();
                }
            });
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the remote socket", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        ws.send(Message::text(r#"421["fetch-me"]"#)).await.unwrap();
        assert_eq!(next_text::<R>(&mut ws).await, r#"42["hello","remote"]"#);
        let mut rest = vec![next_text::<R>(&mut ws).await, next_text::<R>(&mut ws).await];
        rest.sort();
        assert_eq!(rest, ["41", r#"431[[["club","vip"],true]]"#]);
    })
    .await;
}

/// The adapter's room events, as Node's `create-room`, `join-room`,
/// `leave-room`, `delete-room`: a socket's own room counts.
async fn room_events<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = events.clone();
    io.sockets().on_room_event(move |event| {
        let line = match event {
            RoomEvent::Created(room) => format!("create {}", short(room)),
            RoomEvent::Deleted(room) => format!("delete {}", short(room)),
            RoomEvent::Joined { room, .. } => format!("join {}", short(room)),
            RoomEvent::Left { room, .. } => format!("leave {}", short(room)),
            _ => "other".to_owned(),
        };
        seen.lock().unwrap().push(line);
    });
    io.on_connection("/", |socket| async move {
        socket.on("visit", |socket: SocketRef, ack: Ack| async move {
            socket.join("lobby");
            socket.leave("lobby");
            let _ = ack.send(&()).await;
        });
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the room events", async {
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(ask::<R>(&mut ws, r#"421["visit"]"#).await, "431[null]");
        ws.send(Message::text("41")).await.unwrap();
        while events.lock().unwrap().len() < 8 {
            sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *events.lock().unwrap(),
            [
                "create own",
                "join own",
                "create lobby",
                "join lobby",
                "leave lobby",
                "delete lobby",
                "leave own",
                "delete own",
            ]
        );
    })
    .await;
}

/// A room's name, or `own` for a socket's own room (its random id).
fn short(room: &str) -> &str {
    if room == "lobby" {
        room
    } else {
        "own"
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Chat {
    text: String,
}
socketio::typed_event!(Chat = "chat");

/// Several arguments: `emit("move", x, y)`.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
struct Move(i32, i32);
socketio::typed_event!(Move = "move", spread);

/// Typed events, declared once, between our client and our server; what
/// goes on the wire is Node's (`42["move",1,2]`).
async fn typed_events<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on_typed(|socket: SocketRef, chat: Chat, _| async move {
            let reply = Chat {
                text: format!("echo: {}", chat.text),
            };
            let _ = socket.emit_typed(&reply).await;
        });
        socket.on_typed(|socket: SocketRef, Move(x, y): Move, ack| async move {
            let _ = socket.emit_typed(&Move(y, x)).await;
            if let Some(ack) = ack {
                let _ = ack.send(&(x + y)).await;
            }
        });
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the typed events", async {
        // The wire, as a raw client sees it.
        let mut ws = socketio(rt, addr, "/", None).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["move",1,2]"#).await,
            r#"42["move",2,1]"#
        );
        assert_eq!(next_text::<R>(&mut ws).await, "431[3]");

        // Our client, typed on both ends.
        let url = format!("http://{addr}/");
        let client =
            socketio::client::io(rt, &url, socketio::client::ClientOptions::default()).unwrap();
        let (got, mut chats) = futures_channel::mpsc::unbounded();
        client.on_typed(move |_, chat: Chat, _| {
            let _ = got.unbounded_send(chat);
            async {}
        });
        client.connect().await.unwrap();
        client.emit_typed(&Chat { text: "hi".into() }).unwrap();
        assert_eq!(
            chats.next().await.unwrap(),
            Chat {
                text: "echo: hi".into()
            }
        );
        client.disconnect();
    })
    .await;
}

/// `io.close()` tells each socket `server shutting down`; a volatile
/// broadcast reaches a WebSocket client that can take it; a connection
/// that joins no namespace within `connect_timeout` is closed.
async fn close_volatile_and_connect_timeout<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.connection.connect_timeout = Duration::from_millis(300);
    let io = SocketIo::new(rt, config);
    let reasons: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let seen = reasons.clone();
    io.on_connection("/", move |socket| {
        let seen = seen.clone();
        async move {
            socket.on_disconnect(move |Reason(reason): Reason| {
                seen.lock().unwrap().push(reason);
                async {}
            });
        }
    });
    let addr = rt.serve(io.clone()).await;
    within_for(LIMIT, "the close", async {
        // Never joins a namespace: closed after the connect timeout.
        let mut idle =
            suite::raw::websocket(rt, addr, "/socket.io/?EIO=4&transport=websocket").await;
        let _open = idle.next().await.unwrap().unwrap();
        let start = std::time::Instant::now();
        loop {
            match idle.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {}
                _ => break,
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );

        let mut ws = socketio(rt, addr, "/", None).await;
        io.volatile().emit("news", &1).await.unwrap();
        assert_eq!(next_text::<R>(&mut ws).await, r#"42["news",1]"#);
        io.close().await;
        while reasons.lock().unwrap().is_empty() {
            sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*reasons.lock().unwrap(), ["server shutting down"]);
    })
    .await;
}

/// After connection state recovery, the old handle is not the socket any
/// more: `connected()` is false on it (Node's old socket object stays
/// disconnected), true on the recovered one with the same id.
async fn an_old_handle_is_not_the_recovered_socket<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.recovery = Some(socketio::RecoveryConfig::default());
    let io = SocketIo::new(rt, config);
    let first: Arc<Mutex<Option<SocketRef>>> = Arc::default();
    let kept = first.clone();
    io.on_connection("/", move |socket| {
        let kept = kept.clone();
        async move {
            if !socket.recovered() {
                *kept.lock().unwrap() = Some(socket.clone());
                let _ = socket.emit("hello", &1).await;
            }
            let kept = kept.clone();
            socket.on("check", move |socket: SocketRef, ack: Ack| {
                let old = kept.lock().unwrap().clone().unwrap();
                async move {
                    let same_id = old.id() == socket.id();
                    let _ = ack
                        .send(&(same_id, old.connected(), socket.connected()))
                        .await;
                }
            });
        }
    });
    let addr = rt.serve(io).await;
    within_for(LIMIT, "the recovery", async {
        let path = "/socket.io/?EIO=4&transport=websocket";
        let mut ws = suite::raw::websocket(rt, addr, path).await;
        let _open = ws.next().await.unwrap().unwrap();
        ws.send(Message::text("40")).await.unwrap();
        let connected: serde_json::Value =
            serde_json::from_str(&next_text::<R>(&mut ws).await[2..]).unwrap();
        let pid = connected["pid"].as_str().unwrap().to_owned();
        let hello: serde_json::Value =
            serde_json::from_str(&next_text::<R>(&mut ws).await[2..]).unwrap();
        let offset = hello[2].as_str().unwrap().to_owned();
        drop(ws);
        sleep(Duration::from_millis(100)).await;

        let mut ws = suite::raw::websocket(rt, addr, path).await;
        let _open = ws.next().await.unwrap().unwrap();
        let auth = serde_json::json!({ "pid": pid, "offset": offset });
        ws.send(Message::text(format!("40{auth}"))).await.unwrap();
        let _connected = next_text::<R>(&mut ws).await;
        assert_eq!(
            ask::<R>(&mut ws, r#"421["check"]"#).await,
            "431[[true,false,true]]"
        );
    })
    .await;
}

suite::on_each_runtime!(
    an_old_handle_is_not_the_recovered_socket,
    close_volatile_and_connect_timeout,
    typed_events,
    room_events,
    remote_socket_methods,
    the_transport_and_its_upgrade,
    a_default_ack_timeout,
    once_off_and_remove_all_listeners,
    rooms_at_once_and_io_shorthands,
    a_listener_may_take_nothing,
);
