//! The Rust client against the official Node `socket.io` server (npm,
//! pinned in `interop/package-lock.json`, installed by `scripts/test`;
//! `interop/server.mjs`). Each scenario runs over long-polling, WebSocket,
//! and polling upgraded to WebSocket. Without Node or the npm packages these
//! tests fail; they never skip.

mod client_scenarios;

use client_scenarios::{ask, manager_events, options, within, Inbox, Setup, TRANSPORTS};
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
