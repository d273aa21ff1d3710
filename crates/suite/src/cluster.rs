//! One server of a test cluster: the handlers `interop/cluster.mjs` drives
//! (each answers by ack once its operation is done), on any adapter. The
//! cluster suites (an in-memory bus, Redis, Redis with Node servers) share
//! them, so every adapter is held to the same scenarios.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use socketio::adapter::{AdapterFactory, Sid};
use socketio::{Args, Data, NamespaceRef, Payload, ServerAck, SocketIo, SocketIoConfig, SocketRef};

use crate::TestRuntime;

/// The scenarios of `interop/cluster.mjs` and their transports.
pub const SCENARIOS: [(&str, &str); 8] = [
    ("shout", "websocket"),
    ("shout", "polling"),
    ("vote", "websocket"),
    ("fetch", "websocket"),
    ("join", "websocket"),
    ("kick", "websocket"),
    ("sendAway", "polling"),
    ("servers", "websocket"),
];

/// One server of the cluster. `own_runs` counts how often its own
/// server-side `whoami` handler ran.
pub struct Server<R: TestRuntime> {
    /// The server.
    pub io: SocketIo<R>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// How often its own `whoami` server-side handler ran.
    pub own_runs: Arc<AtomicUsize>,
}

/// Runs before the ack of an operation that changes who is in which room
/// (`join`, `promote`, `demote`, `kick`), for adapters whose changes take
/// effect across the cluster a moment later (Redis sharded: a room's
/// channel is subscribed once the room exists).
pub type Settle =
    Arc<dyn Fn(NamespaceRef) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Starts server `name` of a cluster whose namespaces get their adapters
/// from `adapter`, with the handlers `interop/cluster.mjs` drives.
pub async fn start_server<R: TestRuntime>(
    rt: R,
    name: &'static str,
    adapter: Arc<dyn AdapterFactory>,
) -> Server<R> {
    start_server_settling(rt, name, adapter, None).await
}

/// [`start_server`], with `settle` run before room changes are acked.
pub async fn start_server_settling<R: TestRuntime>(
    rt: R,
    name: &'static str,
    adapter: Arc<dyn AdapterFactory>,
    settle: Option<Settle>,
) -> Server<R> {
    start_server_configured(rt, name, adapter, settle, SocketIoConfig::default()).await
}

/// [`start_server_settling`] with `config` for everything but the adapter
/// (such as its parser).
pub async fn start_server_configured<R: TestRuntime>(
    rt: R,
    name: &'static str,
    adapter: Arc<dyn AdapterFactory>,
    settle: Option<Settle>,
    mut config: SocketIoConfig,
) -> Server<R> {
    config.adapter = adapter;
    let io = SocketIo::new(rt, config);
    // A second namespace, for clients sent away from every namespace.
    io.of("/other").on_connection(|_| async {});
    let main = io.of("/");
    let own_runs = Arc::new(AtomicUsize::new(0));
    let runs = own_runs.clone();
    main.on_server_event("whoami", move |payload, ack: Option<ServerAck>| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            let text: String = payload.first().unwrap_or_default();
            let answer = Payload::single(&format!("{name} got {text}")).unwrap();
            ack.expect("whoami is always asked with an ack")
                .send(answer);
        }
    });
    let namespace = main.clone();
    main.on_connection(move |socket| {
        let main = namespace.clone();
        let settle = settle.clone();
        async move {
            #[derive(serde::Deserialize)]
            struct Auth {
                name: String,
            }
            let client = serde_json::from_str::<Auth>(socket.auth())
                .map_or_else(|_| "?".to_owned(), |a| a.name);
            socket.set_data(serde_json::json!({ "name": client, "server": name }));
            handlers(&socket, main, name, settle);
        }
    });
    let addr = rt.serve(io.clone()).await;
    Server { io, addr, own_runs }
}

/// What clients can ask a server to do; each answers by ack once done, so
/// the client knows the operation reached every server.
fn handlers(socket: &SocketRef, main: NamespaceRef, name: &'static str, settle: Option<Settle>) {
    // Waits for `settle`, when there is one.
    let settled = move |main: NamespaceRef| {
        let settle = settle.clone();
        async move {
            if let Some(settle) = settle {
                settle(main).await;
            }
        }
    };
    let (s, m) = (settled.clone(), main.clone());
    socket.on(
        "join",
        move |socket: socketio::SocketRef,
              Data(room): Data<String>,
              ack: Option<socketio::AckSender>| {
            let (settled, main) = (s.clone(), m.clone());
            async move {
                socket.join(&room);
                settled(main).await;
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    // Barrier: every connection gets this after what was broadcast before.
    let m = main.clone();
    socket.on("flush", move |ack: Option<socketio::AckSender>| {
        let main = m.clone();
        async move {
            main.emit("flush", name).await.unwrap();
            ack.unwrap().send(&true).await.unwrap();
        }
    });
    socket.on(
        "shout",
        |socket: socketio::SocketRef,
         Args((room, except, text)): Args<(String, String, String)>,
         ack: Option<socketio::AckSender>| async move {
            let to_room = socket.to(&room).except(&except);
            to_room.emit("shout", &text).await.unwrap();
            to_room.local().emit("local-shout", &text).await.unwrap();
            ack.unwrap().send(&true).await.unwrap();
        },
    );
    let m = main.clone();
    socket.on("vote", move |ack: Option<socketio::AckSender>| {
        let main = m.clone();
        async move {
            let answers = main.timeout(Duration::from_secs(3));
            let answers = answers
                .emit_with_ack("vote", Payload::empty())
                .await
                .unwrap();
            let answers: Vec<_> = answers.collect().await;
            let sids: BTreeSet<Sid> = answers.iter().map(|(sid, _)| *sid).collect();
            let mut votes: Vec<String> = answers
                .into_iter()
                .map(|(_, answer)| answer.map_or_else(|e| e.to_string(), |p| p.first().unwrap()))
                .collect();
            votes.sort();
            let reply = serde_json::json!({ "votes": votes, "sockets": sids.len() });
            ack.unwrap().send(&reply).await.unwrap();
        }
    });
    let m = main.clone();
    socket.on("fetch", move |ack: Option<socketio::AckSender>| {
        let main = m.clone();
        async move {
            let mut sockets: Vec<_> = main.broadcast().fetch_sockets().await.unwrap();
            sockets.sort_by_key(|s| s.data["name"].as_str().map(str::to_owned));
            let sockets: Vec<_> = sockets
                .iter()
                .map(|s| {
                    let mut rooms: Vec<String> = s.rooms.iter().map(|r| r.to_string()).collect();
                    rooms.sort();
                    let (id, local) = (s.id.as_str(), s.local.is_some());
                    serde_json::json!({ "id": id, "rooms": rooms, "data": s.data, "local": local })
                })
                .collect();
            let mut rooms = main.all_rooms().await.unwrap();
            rooms.sort();
            let reply = serde_json::json!({ "sockets": sockets, "rooms": rooms });
            ack.unwrap().send(&reply).await.unwrap();
        }
    });
    let (s, m) = (settled.clone(), main.clone());
    socket.on(
        "promote",
        move |Args((from, to)): Args<(String, String)>, ack: Option<socketio::AckSender>| {
            let (settled, main) = (s.clone(), m.clone());
            async move {
                main.to(&from).sockets_join(&to).await.unwrap();
                settled(main).await;
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    let (s, m) = (settled.clone(), main.clone());
    socket.on(
        "demote",
        move |Data(room): Data<String>, ack: Option<socketio::AckSender>| {
            let (settled, main) = (s.clone(), m.clone());
            async move {
                main.to(&room).sockets_leave(&room).await.unwrap();
                settled(main).await;
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    let m = main.clone();
    socket.on(
        "news",
        move |Args((room, text)): Args<(String, String)>, ack: Option<socketio::AckSender>| {
            let main = m.clone();
            async move {
                main.to(&room).emit("news", &text).await.unwrap();
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    let (s, m) = (settled.clone(), main.clone());
    socket.on(
        "kick",
        move |Data(room): Data<String>, ack: Option<socketio::AckSender>| {
            let (settled, main) = (s.clone(), m.clone());
            async move {
                main.to(&room).disconnect_sockets(false).await.unwrap();
                settled(main).await;
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    let (s, m) = (settled.clone(), main.clone());
    socket.on(
        "send-away",
        move |Data(room): Data<String>, ack: Option<socketio::AckSender>| {
            let (settled, main) = (s.clone(), m.clone());
            async move {
                main.to(&room).disconnect_sockets(true).await.unwrap();
                settled(main).await;
                ack.unwrap().send(&true).await.unwrap();
            }
        },
    );
    socket.on(
        "ask-servers",
        move |Data(text): Data<String>, ack: Option<socketio::AckSender>| {
            let main = main.clone();
            async move {
                let timeout = Duration::from_secs(2);
                let answers = main.server_side_emit_with_ack(
                    "whoami",
                    Payload::single(&text).unwrap(),
                    timeout,
                );
                let answers: Vec<String> = answers
                    .await
                    .unwrap()
                    .iter()
                    .map(|answer| answer.first().unwrap())
                    .collect();
                let count = main.server_count().await.unwrap();
                let reply = serde_json::json!({ "answers": answers, "count": count });
                ack.unwrap().send(&reply).await.unwrap();
            }
        },
    );
}

/// Runs one scenario on two servers of ours, A and B; for `servers`, also
/// checks that the server-side event ran on B only, never on its sender
/// A. Returns what failed.
pub async fn run_on_pair<R: TestRuntime>(
    a: &Server<R>,
    b: &Server<R>,
    scenario: &str,
    transport: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(failure) = run_scenario(a.addr, b.addr, scenario, transport).await {
        failures.push(failure);
    }
    if scenario == "servers" {
        let runs = [a, b].map(|server| server.own_runs.load(Ordering::SeqCst));
        if runs != [0, 1] {
            failures.push(format!("whoami handler runs on [A, B]: {runs:?}"));
        }
    }
    failures
}

/// Runs one `interop/cluster.mjs` scenario against servers at `a` and `b`
/// (server A's clients act, B's are the remote side).
pub async fn run_scenario(
    a: SocketAddr,
    b: SocketAddr,
    scenario: &str,
    transport: &str,
) -> Result<(), String> {
    run_scenario_env(a, b, scenario, transport, &[]).await
}

/// [`run_scenario`] with environment variables for the clients' script
/// (`SIO_PARSER=msgpack`: they speak socket.io-msgpack-parser).
pub async fn run_scenario_env(
    a: SocketAddr,
    b: SocketAddr,
    scenario: &str,
    transport: &str,
    env: &[(&str, &str)],
) -> Result<(), String> {
    let args = [
        format!("http://{a}"),
        format!("http://{b}"),
        scenario.into(),
        transport.into(),
    ];
    crate::node::run_script_env(
        "cluster.mjs",
        &args,
        env,
        &format!("{scenario} over {transport}"),
    )
    .await
}
