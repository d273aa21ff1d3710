//! The Rust client against the official Node `socket.io` server (npm,
//! pinned in `interop/package-lock.json`, installed by `scripts/test`;
//! `interop/server.mjs`). Each scenario runs over long-polling, WebSocket,
//! and polling upgraded to WebSocket. Without Node or the npm packages these
//! tests fail; they never skip.

mod client_scenarios;
mod node;

use client_scenarios::{ask, manager_events, options, within, Inbox, TRANSPORTS};
use node::NodeServer;
use serde_json::json;
use socketio::client::ManagerEvent;
use socketio::Payload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acks_and_binary_with_node_server() {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::events_and_acks(&server.url(), name, transports).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_multiplexed_and_refused_by_node_server() {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::namespaces(&server.url(), name, transports).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_auth_and_disconnect_by_node_server() {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::dynamic_auth_and_server_disconnect(&server.url(), name, transports).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_timeouts_and_retries_with_node_server() {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::ack_timeouts(&server.url(), name, transports).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_node_server() {
    let server = NodeServer::start(0).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::recovery(&server.url(), name, transports).await;
    }
}

/// The server dies mid-session and comes back on the same port: the client
/// reconnects by itself (reporting its attempts), emits made meanwhile are
/// delivered once, volatile ones are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_with_node_server() {
    let mut server = NodeServer::start(0).await;
    let port = server.port;
    for (name, transports) in TRANSPORTS {
        let client_name = format!("restart-{name}");
        let socket = runtime_tokio::io(&server.url(), options(transports, &client_name)).unwrap();
        let mut inbox = Inbox::attach(&socket);
        let events = manager_events(&socket);
        within("connect", socket.connect()).await.unwrap();
        socket.emit("seq", &1).unwrap();
        assert_eq!(
            ask(&socket, "report", json!([])).await,
            json!([[1]]),
            "{name}"
        );

        server.kill().await;
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
