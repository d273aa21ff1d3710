//! The Rust client against the official Node `socket.io` server (npm,
//! pinned in `interop/package-lock.json`, installed by `scripts/test`;
//! `interop/server.mjs`). Each scenario runs over long-polling, WebSocket,
//! and polling upgraded to WebSocket. Without Node or the npm packages these
//! tests fail; they never skip.

mod client_scenarios;

use client_scenarios::{
    ask, manager_events, options, within, CompressFalse, Inbox, Setup, TRANSPORTS,
};
use serde_json::json;
use socketio::client::ManagerEvent;
use socketio::Payload;
use suite::node::NodeServer;
use suite::TestRuntime;

async fn events_acks_and_binary_with_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::events_and_acks(rt, &server.url(), name, transports).await;
    }
}

async fn namespaces_multiplexed_and_refused_by_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::namespaces(rt, &server.url(), name, transports).await;
    }
}

async fn dynamic_auth_and_disconnect_by_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::dynamic_auth_and_server_disconnect(rt, &server.url(), name, transports)
            .await;
    }
}

/// Listeners start in arrival order and an awaiting one holds nothing up
/// (see [`client_scenarios::awaiting_listeners`]).
async fn awaiting_listeners_with_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::awaiting_listeners(rt, &server.url(), name, transports).await;
    }
}

async fn ack_timeouts_and_retries_with_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::ack_timeouts(rt, &server.url(), name, transports).await;
    }
}

async fn sent_away_by_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::sent_away(rt, &server.url(), name, transports).await;
    }
}

async fn recovery_with_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::recovery(rt, &server.url(), name, transports).await;
    }
}

/// Our client and Node's server both speaking `socket.io-msgpack-parser`'s
/// format, over every transport: events and acks both ways with nested
/// binary, namespaces, auth and a server-side disconnect, room broadcasts
/// missed while away and recovered, ack timeouts and retries.
async fn msgpack_parser_with_node_server<R: TestRuntime>(rt: R) {
    let server =
        NodeServer::script_env("server.mjs", &["0".into()], &[("SIO_PARSER", "msgpack")]).await;
    let url = server.url();
    for (name, transports) in TRANSPORTS {
        let setup = Setup {
            transports,
            parser: client_scenarios::msgpack,
        };
        client_scenarios::events_and_acks(rt, &url, name, setup).await;
        client_scenarios::namespaces(rt, &url, name, setup).await;
        client_scenarios::dynamic_auth_and_server_disconnect(rt, &url, name, setup).await;
        client_scenarios::recovery(rt, &url, name, setup).await;
        client_scenarios::ack_timeouts(rt, &url, name, setup).await;
    }
}

/// Our client with permessage-deflate against Node's server with
/// `perMessageDeflate` (see [`client_scenarios::compression`]).
async fn compression_with_node_server<R: TestRuntime>(rt: R) {
    let server = NodeServer::script_env("server.mjs", &["0".into()], &[("SIO_DEFLATE", "1")]).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    for (name, transports) in TRANSPORTS {
        client_scenarios::compression(rt, addr, name, transports, CompressFalse::Ignored).await;
    }
}

/// Our client with `socket_io_2_server(true)` against the last socket.io
/// 2.x server (npm alias `socket.io-v2`, pinned; `interop/server-v2.mjs`),
/// over every transport: the main namespace joined by the server, the
/// socket ids the engine's, events and acks both ways with nested binary,
/// a namespace's auth as its query, a middleware's refusal, a broadcast,
/// a server-side disconnect.
async fn socket_io_2_server<R: TestRuntime>(rt: R) {
    use socketio::payload::Binary;
    let server = NodeServer::script("server-v2.mjs", &["0".into()]).await;
    let url = server.url();
    for (name, transports) in TRANSPORTS {
        let options = || {
            socketio::client::ClientOptions::default()
                .socket_io_2_server(true)
                .transports(transports)
                .reconnection(false)
                .timeout(std::time::Duration::from_secs(5))
        };
        let main = socketio::client::io(rt, &url, options().query("q", "v")).unwrap();
        let mut inbox = Inbox::attach(&main);
        main.on(
            "question",
            |_, question: socketio::Data<String>, ack| async move {
                ack.expect("an answer is awaited")
                    .send(&format!("{}!", question.0))
                    .unwrap();
            },
        );
        within("connect", main.connect()).await.unwrap();
        let (_, id) = inbox.connected().await;
        let welcome = inbox.event("welcome").await;
        assert_eq!(
            welcome[0]["id"],
            json!(id),
            "{name}: the server's id is ours"
        );
        assert_eq!(welcome[0]["engine"], json!(id), "{name}: the engine's id");
        assert_eq!(welcome[0]["query"], json!("v"), "{name}");

        // Nested binary both ways, and acks.
        let args = (json!({ "a": [1, null] }), Binary::from(vec![1u8, 2, 3]));
        main.emit_payload("echo", Payload::args(&args).unwrap())
            .unwrap();
        let echoed: (serde_json::Value, Binary) =
            inbox.event_payload("echo").await.parse().unwrap();
        assert_eq!(echoed, args, "{name}");
        let answer = within(
            "echo-ack",
            main.emit_with_ack(
                "echo-ack",
                Payload::args(&args).unwrap(),
                Some(std::time::Duration::from_secs(5)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            answer.parse::<(serde_json::Value, Binary)>().unwrap(),
            args,
            "{name}"
        );
        main.emit("ask", "why").unwrap();
        assert_eq!(inbox.event("answer").await[0], json!("why!"), "{name}");
        main.emit("shout", "all").unwrap();
        assert_eq!(inbox.event("shout").await[0], json!("all"), "{name}");

        // A namespace, its auth as its query; a refusal with the data.
        let admin = main
            .manager()
            .socket_with_auth("/admin", &json!({ "token": "secret" }))
            .unwrap();
        let mut admin_inbox = Inbox::attach(&admin);
        within("connect /admin", admin.connect()).await.unwrap();
        let welcome = admin_inbox.event("admin-welcome").await;
        assert_eq!(welcome[0]["token"], json!("secret"), "{name}");
        assert_eq!(welcome[0]["id"], json!(format!("/admin#{id}")), "{name}");
        assert_eq!(admin.id(), Some(format!("/admin#{id}")), "{name}");
        assert_eq!(
            ask(&admin, "echo-ack", json!([7])).await,
            json!([7]),
            "{name}"
        );
        let intruder = socketio::client::io(
            rt,
            &format!("{url}admin"),
            options().auth(&json!({ "token": "wrong" })).unwrap(),
        )
        .unwrap();
        let refused = within("refusal", intruder.connect()).await.unwrap_err();
        assert!(
            matches!(&refused, socketio::client::ConnectError::Refused { data: Some(data), .. } if *data == json!({ "code": 401 })),
            "{name}: {refused:?}"
        );

        // Leaving `/` while `/admin` keeps the connection, then joining it
        // again: the server's own join is spent, so the client asks.
        main.disconnect();
        inbox.disconnected().await;
        within("connect / again", main.connect()).await.unwrap();
        inbox.connected().await;
        // The server's handler ran: a 2.x server registers the new socket
        // asynchronously and drops what comes before.
        inbox.event("welcome").await;
        assert_eq!(
            ask(&main, "echo-ack", json!([3])).await,
            json!([3]),
            "{name}"
        );

        main.emit("disconnect-me", &()).unwrap();
        assert_eq!(
            inbox.disconnected().await,
            socketio::client::DisconnectReason::ServerDisconnect,
            "{name}"
        );
        main.manager().close();
    }
}

/// A socket.io 2.x server dies and comes back on the same port: our
/// client in its legacy mode reconnects by itself, the main namespace
/// joined again by the server, under the new engine's id.
async fn socket_io_2_server_restart<R: TestRuntime>(rt: R) {
    let mut server = NodeServer::script("server-v2.mjs", &["0".into()]).await;
    let port = server.port;
    for (name, transports) in TRANSPORTS {
        let options = socketio::client::ClientOptions::default()
            .socket_io_2_server(true)
            .transports(transports)
            .reconnection_delay(std::time::Duration::from_millis(50))
            .reconnection_delay_max(std::time::Duration::from_millis(200));
        let socket = socketio::client::io(rt, &server.url(), options).unwrap();
        let mut inbox = Inbox::attach(&socket);
        within("connect", socket.connect()).await.unwrap();
        let (_, first) = inbox.connected().await;
        assert_eq!(
            inbox.event("welcome").await[0]["engine"],
            json!(first),
            "{name}"
        );
        assert_eq!(
            ask(&socket, "echo-ack", json!([1])).await,
            json!([1]),
            "{name}"
        );

        server.kill();
        let reason = inbox.disconnected().await;
        assert!(reason.will_reconnect(), "{name}: {reason:?}");
        server = NodeServer::script("server-v2.mjs", &[port.to_string()]).await;
        let (_, second) = inbox.connected().await;
        assert_ne!(first, second, "{name}: a new engine, a new id");
        let welcome = inbox.event("welcome").await;
        assert_eq!(welcome[0]["engine"], json!(second), "{name}");
        assert_eq!(
            ask(&socket, "echo-ack", json!([2])).await,
            json!([2]),
            "{name}"
        );
        socket.disconnect();
    }
}

/// The server dies mid-session and comes back on the same port: the client
/// reconnects by itself (reporting its attempts), emits made meanwhile are
/// delivered once, volatile ones are dropped.
async fn server_restart_with_node_server<R: TestRuntime>(rt: R) {
    let mut server = NodeServer::start(0).await;
    let port = server.port;
    for (name, transports) in TRANSPORTS {
        let client_name = format!("restart-{name}");
        let socket =
            socketio::client::io(rt, &server.url(), options(transports, &client_name)).unwrap();
        let mut inbox = Inbox::attach(&socket);
        let events = manager_events(&socket);
        within("connect", socket.connect()).await.unwrap();
        socket.emit("seq", &1).unwrap();
        assert_eq!(
            ask(&socket, "report", json!([])).await,
            json!([[1]]),
            "{name}"
        );

        server.kill();
        let reason = inbox.disconnected().await;
        assert!(reason.will_reconnect(), "{name}: {reason:?}");
        socket.emit("seq", &2).unwrap();
        socket.emit("seq", &3).unwrap();
        socket
            .emit_volatile("seq", Payload::single(&99).unwrap())
            .unwrap();

        server = NodeServer::start(port).await;
        inbox.connected().await;
        assert_eq!(
            ask(&socket, "report", json!([])).await,
            json!([[2, 3]]),
            "{name}: buffered emits once, volatile dropped"
        );
        let events = events.lock().unwrap().clone();
        assert!(
            events.contains(&ManagerEvent::ReconnectAttempt(1)),
            "{name}: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ManagerEvent::Reconnect(n) if *n >= 1)),
            "{name}: {events:?}"
        );
        assert!(
            events.contains(&ManagerEvent::Close("transport close"))
                || events.contains(&ManagerEvent::Close("transport error")),
            "{name}: {events:?}"
        );
        socket.disconnect();
    }
}

/// https and wss: Node's server behind TLS with a certificate of a private
/// authority the client is told to trust (rustls), over each transport.
async fn tls_with_node_server<R: TestRuntime>(rt: R) {
    use socketio::client::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![String::from("127.0.0.1")]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    // One folder per test run: the suite runs on each runtime in parallel.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sio-tls-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let server = NodeServer::start_with(
        0,
        &[
            String::from("--tls"),
            cert_path.display().to_string(),
            key_path.display().to_string(),
        ],
    )
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = std::sync::Arc::new(tls);
    for (name, transports) in TRANSPORTS {
        let url = format!("https://127.0.0.1:{}/", server.port);
        let options = options(transports, "tls").tls_config(tls.clone());
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let mut inbox = Inbox::attach(&socket);
        within("connect over tls", socket.connect()).await.unwrap();
        let welcome = inbox.event("welcome").await;
        if name == "upgrade" && welcome[0]["transport"] == json!("polling") {
            assert_eq!(inbox.event("upgraded").await[0], json!("websocket"));
        }
        assert_eq!(
            ask(&socket, "echo-ack", json!(["secure"])).await,
            json!(["secure"]),
            "{name}"
        );
        socket.disconnect();

        // The default roots do not trust this certificate: the open fails.
        let untrusted = options_untrusted(transports);
        let socket = socketio::client::io(rt, &url, untrusted).unwrap();
        let outcome = within("an untrusted certificate", socket.connect()).await;
        assert_eq!(
            outcome,
            Err(socketio::client::ConnectError::Transport),
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn options_untrusted(transports: socketio::client::Transports) -> socketio::client::ClientOptions {
    options(transports, "untrusted").reconnection(false)
}

suite::on_each_runtime!(
    compression_with_node_server,
    socket_io_2_server,
    socket_io_2_server_restart,
    events_acks_and_binary_with_node_server,
    msgpack_parser_with_node_server,
    namespaces_multiplexed_and_refused_by_node_server,
    dynamic_auth_and_disconnect_by_node_server,
    ack_timeouts_and_retries_with_node_server,
    awaiting_listeners_with_node_server,
    recovery_with_node_server,
    sent_away_by_node_server,
    server_restart_with_node_server,
    tls_with_node_server,
);
