//! Our Socket.IO server against the official JavaScript client
//! (`socket.io-client` from npm, pinned in `interop/package-lock.json`,
//! installed by `scripts/test`). Each scenario runs in Node over
//! WebSocket only, long-polling only, and polling upgraded to WebSocket.
//! Without Node, or without the npm packages, these tests fail: they never
//! skip.

use suite::node;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::{FutureExt, StreamExt};
use socketio::{
    AckError, Args, Binary, ConnectError, ConnectRequest, Data, EventError, Payload, SocketIo,
    SocketIoConfig,
};
use suite::fixtures::Upload;
use suite::{sleep, TestRuntime};

fn welcome(socket: &socketio::SocketRef) -> Payload {
    let nsp = serde_json::to_string(socket.namespace()).unwrap();
    Payload::from_raw(
        format!(r#"[{{"nsp":{nsp},"auth":{}}}]"#, socket.auth()).into(),
        Vec::new(),
    )
}

/// The server's disconnect reasons, as its handlers saw them.
type Reasons = Arc<Mutex<Vec<&'static str>>>;

#[derive(serde::Serialize)]
struct Receipt {
    name: String,
    size: usize,
    parts: usize,
    first: Binary,
}

/// Typed arguments with binary, per-event middleware and error listener,
/// outgoing listener and volatile emits, on the main namespace.
fn register_typed_and_middleware(socket: &socketio::SocketRef, main: &socketio::NamespaceRef) {
    socket.on(
        "upload",
        |Data(upload): Data<Upload>, ack: Option<socketio::AckSender>| async move {
            let receipt = Receipt {
                name: upload.name,
                size: upload.file.len(),
                parts: upload.meta.parts.len(),
                first: upload.file,
            };
            ack.unwrap().send(&receipt).await.unwrap();
        },
    );
    socket.use_middleware(|_, event, _| async move {
        if event == "forbidden" {
            Err(EventError::rejected("forbidden event"))
        } else {
            Ok(())
        }
    });
    socket.on("forbidden", |socket: socketio::SocketRef| async move {
        socket.emit("ran", &1).await.unwrap();
    });
    socket.on_error(|socket, error| async move {
        socket.emit("rejected", &error.to_string()).await.unwrap();
    });
    let outgoing = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = outgoing.clone();
    socket.on_any_outgoing(move |_, event, _| seen.lock().unwrap().push(event.to_owned()));
    let main = main.clone();
    socket.on("volatile-please", move |socket: socketio::SocketRef| {
        let main = main.clone();
        async move {
            socket
                .emit_volatile("volatile", Payload::single("v").unwrap())
                .unwrap();
            main.to("loud").emit("to-loud", &1).await.unwrap();
        }
    });
    socket.on("outgoing", move |ack: Option<socketio::AckSender>| {
        let events = outgoing.lock().unwrap().clone();
        async move { ack.unwrap().send(&events).await.unwrap() }
    });
}

/// Dynamic namespaces `/workspace-<n>` with a parent middleware and a
/// broadcast on the parent.
fn register_workspaces<R: TestRuntime>(io: &SocketIo<R>) {
    let workspaces = io.dynamic_namespace("/workspace-*", |request| {
        request.namespace().starts_with("/workspace-")
    });
    workspaces.use_middleware(|request: ConnectRequest| async move {
        match request.auth::<serde_json::Value>() {
            Ok(auth) if auth["token"] == "ok" => Ok(()),
            _ => Err(ConnectError::new("parent middleware says no")),
        }
    });
    let parent = workspaces.clone();
    workspaces.on_connection(move |socket| {
        let parent = parent.clone();
        async move {
            socket.emit("hello", socket.namespace()).await.unwrap();
            socket.on("to-all-workspaces", move || {
                let parent = parent.clone();
                async move {
                    let children = parent.children().len();
                    parent.emit("everywhere", &children).await.unwrap();
                }
            });
        }
    });
}

async fn start_server<R: TestRuntime>(
    rt: R,
    reasons: Reasons,
    config: SocketIoConfig,
) -> SocketAddr {
    let io = SocketIo::new(rt, config);
    register_workspaces(&io);
    let main = io.of("/");
    io.on_connection("/", move |socket| {
        let main = main.clone();
        let reasons = reasons.clone();
        async move {
            register_typed_and_middleware(&socket, &main);
            let before = reasons.clone();
            socket.on_disconnecting(move |socket: socketio::SocketRef| {
                let before = before.clone();
                // Still in its rooms (at least its own) while disconnecting.
                let rooms = socket.rooms().len();
                async move {
                    if rooms > 0 {
                        before.lock().unwrap().push("disconnecting in rooms");
                    }
                }
            });
            socket.on_disconnect(move |socketio::extract::Reason(reason): socketio::extract::Reason| {
                let reasons = reasons.clone();
                async move { reasons.lock().unwrap().push(reason) }
            });
            socket.on("echo", |socket: socketio::SocketRef, payload: Payload| async move {
                socket.emit_payload("echo", payload).await.unwrap();
            });
            socket.on("sum", |Args((a, b)): Args<(i64, i64)>, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send(&(a + b)).await.unwrap();
            });
            socket.on("echo-ack", |payload: Payload, ack: Option<socketio::AckSender>| async move {
                ack.unwrap().send_payload(payload).await.unwrap();
            });
            socket.on("join", |socket: socketio::SocketRef, Data(room): Data<String>, ack: Option<socketio::AckSender>| async move {
                socket.join(&room);
                // The socket's own room first, as Node lists it.
                let mut rooms = socket.rooms();
                rooms.sort_by_key(|room| room != socket.id().as_str());
                ack.unwrap().send(&rooms).await.unwrap();
            });
            socket.on(
                "shout",
                |socket: socketio::SocketRef, Args((room, text)): Args<(String, String)>| async move {
                    socket.to(&room).emit("shout", &text).await.unwrap();
                },
            );
            socket.on("announce", move |payload: Payload| {
                let main = main.clone();
                async move {
                    let (except, text): (String, String) = payload.parse().unwrap();
                    main.except(&except).emit("announce", &text).await.unwrap();
                }
            });
            socket.on("ask-me", |socket: socketio::SocketRef, payload: Payload| async move {
                let timeout = Some(Duration::from_secs(2));
                let answer = socket
                    .emit_with_ack("question", payload, timeout)
                    .await
                    .unwrap();
                let answer: serde_json::Value = answer.parse().unwrap();
                socket.emit("answer", &answer).await.unwrap();
            });
            socket.on("ask-me-silently", |socket: socketio::SocketRef| async move {
                let timeout = Some(Duration::from_millis(300));
                let outcome = socket
                    .emit_with_ack("silent-question", Payload::default(), timeout)
                    .await;
                assert_eq!(outcome, Err(AckError::Timeout));
                socket.emit("answer", "timeout").await.unwrap();
            });
            let seen = Arc::new(Mutex::new(Vec::<String>::new()));
            let any = seen.clone();
            socket.on_any(move |_, event, _| {
                let any = any.clone();
                async move { any.lock().unwrap().push(event) }
            });
            for name in ["first", "second"] {
                socket.on(
                    "multi",
                    move |Data(text): Data<String>, ack: Option<socketio::AckSender>| async move {
                        ack.unwrap().send(&format!("{name}:{text}")).await.unwrap();
                    },
                );
            }
            socket.on("seen", move |ack: Option<socketio::AckSender>| {
                let seen = seen.clone();
                async move {
                    let events = seen.lock().unwrap().clone();
                    ack.unwrap().send(&events).await.unwrap();
                }
            });
            socket.on("kick-me", |socket: socketio::SocketRef| async move {
                socket.disconnect().await.unwrap();
            });
            socket
                .emit_payload("welcome", welcome(&socket))
                .await
                .unwrap();
        }
    });
    let private = io.of("/private");
    private.use_middleware(|request: ConnectRequest| async move {
        #[derive(serde::Deserialize)]
        struct Auth {
            token: String,
        }
        match request.auth::<Auth>() {
            Ok(auth) if auth.token == "secret" => Ok(()),
            _ => Err(ConnectError::new("unauthorized")
                .with_data(serde_json::json!({"reason": "bad token"}))),
        }
    });
    private.on_connection(|_| async {});
    // Its own namespace, so sockets other scenarios leave behind (until
    // their heartbeat ends them) are not counted.
    let bulk = io.of("/bulk");
    let namespace = bulk.clone();
    bulk.on_connection(move |socket| {
        let bulk = namespace.clone();
        async move {
            socket.on("bulk", move |ack: Option<socketio::AckSender>| {
                let everyone = bulk.broadcast();
                async move {
                    let count = everyone.fetch_sockets().await.unwrap().len();
                    everyone.sockets_join("all").await.unwrap();
                    ack.unwrap().send(&count).await.unwrap();
                    let all = everyone.clone().to("all");
                    all.emit("to-all", &count).await.unwrap();
                    everyone.disconnect_sockets(false).await.unwrap();
                }
            });
        }
    });
    let vote = io.of("/vote");
    let everyone = vote.clone();
    vote.on_connection(move |socket| {
        let everyone = everyone.clone();
        async move {
            socket.on("start-vote", move || {
                let everyone = everyone.clone();
                async move {
                    let answers = everyone
                        .timeout(Duration::from_secs(2))
                        .emit_with_ack("vote", Payload::default())
                        .await
                        .unwrap();
                    let mut votes: Vec<String> = answers
                        .filter_map(
                            |(_, answer)| async move { answer.ok()?.first::<String>().ok() },
                        )
                        .collect()
                        .await;
                    votes.sort();
                    everyone.broadcast().emit("results", &votes).await.unwrap();
                }
            });
        }
    });
    io.on_connection("/handshake", |socket| async move {
        let handshake = socket.handshake();
        let seen = serde_json::json!({
            "color": handshake.query_param("color"),
            "header": handshake.header("x-test"),
            "loopback": handshake.address.is_some_and(|a| a.ip().is_loopback()),
        });
        socket.emit("handshake", &seen).await.unwrap();
    });
    io.on_connection("/chat", |socket| async move {
        socket
            .emit_payload("welcome", welcome(&socket))
            .await
            .unwrap();
    });
    rt.serve(io).await
}

async fn run_scenario(addr: SocketAddr, scenario: &str, transport: &str) -> Result<(), String> {
    run_scenario_with(addr, scenario, transport, Parser::Json).await
}

/// The wire format both ends speak in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parser {
    Json,
    /// `socket.io-msgpack-parser` on the official client, `MsgpackParser`
    /// on ours.
    Msgpack,
}

impl Parser {
    fn config(self) -> SocketIoConfig {
        match self {
            Parser::Json => SocketIoConfig::default(),
            Parser::Msgpack => SocketIoConfig::default().with_parser(socketio::MsgpackParser),
        }
    }

    fn env(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Parser::Json => Vec::new(),
            Parser::Msgpack => vec![("SIO_PARSER", "msgpack")],
        }
    }
}

async fn run_scenario_with(
    addr: SocketAddr,
    scenario: &str,
    transport: &str,
    parser: Parser,
) -> Result<(), String> {
    let args = [format!("http://{addr}"), scenario.into(), transport.into()];
    let what = format!("{scenario} over {transport} ({parser:?})");
    node::run_script_env("client.mjs", &args, &parser.env(), &what).await
}

async fn official_js_client_scenarios<R: TestRuntime>(rt: R) {
    every_scenario(rt, Parser::Json).await;
}

/// Every scenario, over every transport, with the official client and our
/// server both speaking `socket.io-msgpack-parser`'s format: nested binary
/// both ways, acks both ways, broadcasts, namespaces, middlewares.
async fn official_js_client_scenarios_over_msgpack<R: TestRuntime>(rt: R) {
    every_scenario(rt, Parser::Msgpack).await;
}

/// Every scenario, over every transport, with compression on and no
/// threshold: every WebSocket message both ways (the official client
/// compresses from 1 KiB) and every polling response goes through deflate.
async fn official_js_client_scenarios_compressed<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.engine.per_message_deflate = Some(socketio::PerMessageDeflate::default().threshold(0));
    config.engine.http_compression = Some(socketio::HttpCompression::default().threshold(0));
    every_scenario_with(rt, Parser::Json, config).await;
}

async fn every_scenario<R: TestRuntime>(rt: R, parser: Parser) {
    every_scenario_with(rt, parser, parser.config()).await;
}

async fn every_scenario_with<R: TestRuntime>(rt: R, parser: Parser, config: SocketIoConfig) {
    let reasons = Reasons::default();
    let addr = start_server(rt, reasons.clone(), config).await;
    let mut failures = Vec::new();
    let scenarios = [
        "echo",
        "ack",
        "namespaces",
        "invalidNamespace",
        "rooms",
        "serverDisconnect",
        "clientDisconnect",
        "middleware",
        "serverAck",
        "listeners",
        "handshake",
        "bulk",
        "vote",
        "typed",
        "eventMiddleware",
        "outgoing",
        "dynamic",
    ];
    for scenario in scenarios {
        for transport in ["websocket", "polling", "upgrade"] {
            if let Err(failure) = run_scenario_with(addr, scenario, transport, parser).await {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Every socket's disconnect handler ran, with Node's reasons.
    let reasons = reasons.lock().unwrap().clone();
    for expected in [
        "server namespace disconnect",
        "client namespace disconnect",
        "transport close",
        "disconnecting in rooms",
    ] {
        assert!(
            reasons.contains(&expected),
            "no {expected:?} in {reasons:?}"
        );
    }
}

/// A server with connection state recovery: on `start`, tick 1 goes to the
/// room `ticks` at once, ticks 2 and 3 a little later, while the client is
/// away.
async fn start_recovery_server<R: TestRuntime>(rt: R, parser: Parser) -> SocketAddr {
    let mut config = parser.config();
    config.recovery = Some(socketio::RecoveryConfig::default());
    let io = SocketIo::new(rt, config);
    let main = io.of("/");
    io.on_connection("/", move |socket| {
        let main = main.clone();
        async move {
            if socket.recovered() {
                // socket.data came back with the session.
                socket.emit("restored-data", &socket.data()).await.unwrap();
            } else {
                socket.set_data(serde_json::json!({ "visits": 1 }));
            }
            socket.join("ticks");
            socket.on("start", move || {
                let main = main.clone();
                async move {
                    main.to("ticks").emit("tick", &1).await.unwrap();
                    rt.spawn(Box::pin(async move {
                        sleep(Duration::from_millis(300)).await;
                        for n in [2, 3] {
                            main.to("ticks").emit("tick", &n).await.unwrap();
                        }
                    }));
                }
            });
        }
    });
    rt.serve(io).await
}

async fn official_js_client_recovers_missed_packets<R: TestRuntime>(rt: R) {
    for parser in [Parser::Json, Parser::Msgpack] {
        let addr = start_recovery_server(rt, parser).await;
        let mut failures = Vec::new();
        for transport in ["websocket", "polling", "upgrade"] {
            if let Err(failure) = run_scenario_with(addr, "recovery", transport, parser).await {
                failures.push(failure);
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// One generation of a restartable server: it greets every socket with its
/// generation number and asks the test to restart it on `restart-please`.
fn restartable_server<R: TestRuntime>(
    rt: R,
    generation: u32,
    restart: mpsc::UnboundedSender<()>,
) -> SocketIo<R> {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", move |socket| {
        let restart = restart.clone();
        async move {
            socket.on("restart-please", move || {
                let restart = restart.clone();
                async move {
                    let _ = restart.unbounded_send(());
                }
            });
            socket.emit("generation", &generation).await.unwrap();
        }
    });
    io
}

async fn official_js_client_reconnects_after_a_server_restart<R: TestRuntime>(rt: R) {
    let (restart_tx, mut restart_rx) = mpsc::unbounded();
    let mut generation = 1;
    let mut io = restartable_server(rt, generation, restart_tx.clone());
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let (addr, mut serving) = rt.serve_at(any, io.clone()).await;
    let (stop, stopped) = futures_util::future::AbortHandle::new_pair();
    rt.spawn(Box::pin(
        futures_util::future::Abortable::new(
            async move {
                while restart_rx.next().await.is_some() {
                    // Stop: close every session, stop accepting, wait a moment.
                    io.close().await;
                    serving.abort();
                    sleep(Duration::from_millis(300)).await;
                    // Start a new generation on the same port.
                    generation += 1;
                    io = restartable_server(rt, generation, restart_tx.clone());
                    serving = rt.serve_at(addr, io.clone()).await.1;
                }
            },
            stopped,
        )
        .map(|_| ()),
    ));
    let mut failures = Vec::new();
    for transport in ["websocket", "polling", "upgrade"] {
        if let Err(failure) = run_scenario(addr, "restart", transport).await {
            failures.push(failure);
        }
    }
    stop.abort();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Runs `scenario` of `client.mjs` over each transport against Node's
/// server (`server.mjs`) and against ours (the same server in Rust,
/// `suite::mirror`): the same script must pass against both.
async fn against_node_and_ours<R: TestRuntime>(rt: R, scenario: &str) {
    let node = node::NodeServer::start(0).await;
    let ours = suite::mirror::start(rt).await;
    let servers = [
        ("node", SocketAddr::from(([127, 0, 0, 1], node.port))),
        ("ours", suite::mirror::address(&ours)),
    ];
    let mut failures = Vec::new();
    for (server, addr) in servers {
        for transport in ["websocket", "polling", "upgrade"] {
            if let Err(failure) = run_scenario(addr, scenario, transport).await {
                failures.push(format!("{server}: {failure}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// permessage-deflate side by side: the official client against Node's
/// server with `perMessageDeflate` and against ours with
/// [`socketio::PerMessageDeflate`] (both at the default 1 KiB threshold):
/// negotiated, a big message compressed both ways on the wire, and
/// `compress(false)` on an emit and on a broadcast sent as is by ours.
/// Node 4.8 ignores `compress(false)` over WebSocket (engine.io 6.6 stopped
/// passing it to ws): the script checks that Node still does, so the day
/// it changes this test says so.
async fn official_js_client_compression_as_with_node<R: TestRuntime>(rt: R) {
    let node =
        node::NodeServer::script_env("server.mjs", &["0".into()], &[("SIO_DEFLATE", "1")]).await;
    let ours = suite::mirror::start_with(rt, |config| {
        config.engine.per_message_deflate = Some(socketio::PerMessageDeflate::default());
    })
    .await;
    let servers = [
        (
            "node",
            SocketAddr::from(([127, 0, 0, 1], node.port)),
            "ignored",
        ),
        ("ours", suite::mirror::address(&ours), "honored"),
    ];
    let mut failures = Vec::new();
    for (server, addr, compress_false) in servers {
        for transport in ["websocket", "polling", "upgrade"] {
            let args = [
                format!("http://{addr}"),
                "compression".into(),
                transport.into(),
            ];
            let env = [("SIO_COMPRESS_FALSE", compress_false)];
            let what = format!("compression over {transport}");
            if let Err(failure) = node::run_script_env("client.mjs", &args, &env, &what).await {
                failures.push(format!("{server}: {failure}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The last socket.io-client 2.x (Engine.IO v3, Socket.IO protocol v4;
/// `interop/client-v2.mjs`) against Node's server with `allowEIO3` and
/// against ours with `allow_eio3`, the same script on both, over
/// long-polling (binary payloads), long-polling with base64, WebSocket and
/// an upgrade: the main namespace joined without a CONNECT and its socket
/// id the engine's, nested binary and acks both ways, namespaces with their
/// auth in the query, a middleware's refusal, a room broadcast, a
/// server-side disconnect.
async fn socket_io_2_clients_as_with_node<R: TestRuntime>(rt: R) {
    let node =
        node::NodeServer::script_env("server.mjs", &["0".into()], &[("SIO_ALLOW_EIO3", "1")]).await;
    let ours =
        suite::mirror::start_with(rt, |config| config.engine.protocol.allow_eio3 = true).await;
    let servers = [
        ("node", SocketAddr::from(([127, 0, 0, 1], node.port))),
        ("ours", suite::mirror::address(&ours)),
    ];
    let mut failures = Vec::new();
    for (server, addr) in servers {
        for scenario in ["basics", "namespaces", "rooms"] {
            for transport in ["polling", "base64", "websocket", "upgrade"] {
                let args = [format!("http://{addr}"), scenario.into(), transport.into()];
                let what = format!("{server}: {scenario} over {transport}");
                if let Err(failure) = node::run_script("client-v2.mjs", &args, &what).await {
                    failures.push(failure);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The official client sent away (`socket.disconnect(true)`), by Node's
/// server and by ours.
async fn official_js_client_is_sent_away_as_by_node<R: TestRuntime>(rt: R) {
    against_node_and_ours(rt, "kick").await;
}

/// The official client's offline buffer (2,000 emits with acks) in one
/// POST, to Node's server and to ours.
async fn official_js_client_offline_burst_as_with_node<R: TestRuntime>(rt: R) {
    against_node_and_ours(rt, "burst").await;
}

/// Node's handler semantics, side by side with Node's server: a handler
/// that awaits (its client's ack, a timer) never holds up the client's
/// other events, its acks, another namespace or the heartbeat.
async fn awaiting_handlers_hold_nothing_up_as_in_node<R: TestRuntime>(rt: R) {
    for scenario in [
        "awaiting-ack",
        "slow-other-namespace",
        "slow-same-namespace",
        "slow-heartbeat",
    ] {
        against_node_and_ours(rt, scenario).await;
    }
}

/// The reference for our client's listener semantics: the official client
/// runs `client_scenarios::awaiting_listeners` (a listener awaiting its own
/// ack through a flood, a slow listener before a quick one) with the same
/// bounds, against Node's server and ours.
async fn official_client_listeners_set_the_bounds_ours_meet<R: TestRuntime>(rt: R) {
    against_node_and_ours(rt, "awaiting-listeners").await;
}

suite::on_each_runtime!(
    socket_io_2_clients_as_with_node,
    awaiting_handlers_hold_nothing_up_as_in_node,
    official_client_listeners_set_the_bounds_ours_meet,
    official_js_client_is_sent_away_as_by_node,
    official_js_client_offline_burst_as_with_node,
    official_js_client_scenarios,
    official_js_client_scenarios_over_msgpack,
    official_js_client_scenarios_compressed,
    official_js_client_compression_as_with_node,
    official_js_client_recovers_missed_packets,
    official_js_client_reconnects_after_a_server_restart,
);
