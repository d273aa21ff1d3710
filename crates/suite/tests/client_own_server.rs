//! The Rust client against our own server, both from this workspace: the
//! scenarios of `client_scenarios` (also run against Node's server) over
//! each transport, plus what needs a server we control to the byte: one
//! that accepts connections and never answers.

mod client_scenarios;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use client_scenarios::{within, TRANSPORTS};
use futures_util::StreamExt;
use serde_json::json;
use socketio::client::{ClientOptions, ConnectError, ManagerEvent};
use socketio::{Data, Payload, SocketIo, SocketIoConfig};
use suite::TestRuntime;

async fn events_acks_and_binary_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::events_and_acks(rt, &url, name, transports).await;
    }
}

async fn namespaces_multiplexed_and_refused_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::namespaces(rt, &url, name, transports).await;
    }
}

async fn dynamic_auth_and_disconnect_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::dynamic_auth_and_server_disconnect(rt, &url, name, transports).await;
    }
}

async fn ack_timeouts_and_retries_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::ack_timeouts(rt, &url, name, transports).await;
    }
}

async fn sent_away_by_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::sent_away(rt, &url, name, transports).await;
    }
}

async fn recovery_with_own_server<R: TestRuntime>(rt: R) {
    let url = suite::mirror::start(rt).await;
    for (name, transports) in TRANSPORTS {
        client_scenarios::recovery(rt, &url, name, transports).await;
    }
}

/// A server that accepts TCP connections and never answers: the open
/// times out, the client retries as often as allowed, then gives up;
/// nothing hangs.
async fn a_server_that_never_answers_times_out<R: TestRuntime>(rt: R) {
    // A std listener on a thread of its own: it accepts and holds every
    // connection, reading nothing, for as long as the process lives.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    for (name, transports) in TRANSPORTS {
        let options = ClientOptions::default()
            .transports(transports)
            .timeout(Duration::from_millis(200))
            .reconnection(false);
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let outcome = within("a failed open", socket.connect()).await;
        assert_eq!(outcome, Err(ConnectError::Transport), "{name}");

        let options = ClientOptions::default()
            .transports(transports)
            .timeout(Duration::from_millis(100))
            .reconnection_attempts(2)
            .reconnection_delay(Duration::from_millis(20))
            .reconnection_delay_max(Duration::from_millis(40));
        let socket = socketio::client::io(rt, &url, options).unwrap();
        let events = client_scenarios::manager_events(&socket);
        let outcome = within("giving up", socket.connect()).await;
        assert_eq!(outcome, Err(ConnectError::Failed), "{name}");
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events,
            [
                ManagerEvent::ReconnectAttempt(1),
                ManagerEvent::ReconnectAttempt(2),
                ManagerEvent::ReconnectFailed
            ],
            "{name}"
        );
        // Emits while it gives up still fail cleanly rather than hang.
        let ack = socket.emit_with_ack("x", Payload::empty(), Some(Duration::from_millis(50)));
        assert!(within("an ack after giving up", ack).await.is_err());
    }
}

/// Node's `path` option: a server mounted elsewhere than `/socket.io/`,
/// and a multiplexed namespace as the URL's path.
async fn a_custom_path_and_a_namespace_in_the_url<R: TestRuntime>(rt: R) {
    let mut config = SocketIoConfig::default();
    config.engine.path = String::from("/realtime/");
    let io = SocketIo::new(rt, config);
    io.on_connection("/games", |socket| async move {
        socket.on("echo-ack", |_, payload: Payload, ack| async move {
            ack.unwrap().send_payload(payload).await.unwrap();
        });
    });
    let addr = rt.serve(io).await;
    for (name, transports) in TRANSPORTS {
        let options = ClientOptions::default()
            .transports(transports)
            .path("/realtime");
        let socket = within(
            "connect",
            socketio::client::connect(rt, &format!("http://{addr}/games"), options),
        )
        .await
        .unwrap();
        assert_eq!(socket.namespace(), "/games");
        let answer = client_scenarios::ask(&socket, "echo-ack", json!([name])).await;
        assert_eq!(answer, json!([name]));
        socket.disconnect();
    }
}

/// A listener that awaits an ack while the server floods the socket with
/// more events than its queue holds: the ack still arrives (the client
/// keeps reading while events wait), and every event is handled once, in
/// order.
async fn a_listener_awaiting_an_ack_during_a_flood<R: TestRuntime>(rt: R) {
    const FLOOD: u32 = 500;
    let io = SocketIo::new(rt, SocketIoConfig::default());
    io.on_connection("/", |socket| async move {
        socket.on("flood", |socket, _: Payload, _| async move {
            for n in 1..=FLOOD {
                socket.emit("tick", &n).await.unwrap();
            }
        });
        socket.on("echo-ack", |_, payload: Payload, ack| async move {
            ack.unwrap().send_payload(payload).await.unwrap();
        });
    });
    let url = format!("http://{}/", rt.serve(io).await);
    for (name, transports) in TRANSPORTS {
        let socket =
            socketio::client::io(rt, &url, ClientOptions::default().transports(transports))
                .unwrap();
        let (done, mut finished) = futures_channel::mpsc::unbounded();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        socket.on("tick", move |socket, Data(n): Data<u32>, _| {
            let record = record.clone();
            let done = done.clone();
            async move {
                if n == 1 {
                    // The other 499 ticks arrive while this waits.
                    let answer = socket
                        .emit_with_ack("echo-ack", Payload::single(&n).unwrap(), None)
                        .await
                        .unwrap();
                    assert_eq!(answer.first::<u32>().unwrap(), 1);
                }
                record.lock().unwrap().push(n);
                if n == FLOOD {
                    let _ = done.unbounded_send(());
                }
            }
        });
        within("connect", socket.connect()).await.unwrap();
        socket.emit("flood", &()).unwrap();
        within("the whole flood", finished.next()).await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, (1..=FLOOD).collect::<Vec<_>>(), "{name}");
        socket.disconnect();
    }
}

/// `disconnect` right after an emit: the event and the goodbye both reach
/// the server (over polling the goodbye waits for the POST in flight), so
/// the server sees Node's `client namespace disconnect`, not a dropped
/// transport.
async fn disconnect_after_an_emit_says_goodbye<R: TestRuntime>(rt: R) {
    let io = SocketIo::new(rt, SocketIoConfig::default());
    let (report, mut reports) = futures_channel::mpsc::unbounded();
    io.on_connection("/", move |socket| {
        let report = report.clone();
        async move {
            let seen = report.clone();
            socket.on("last", move |_, Data(n): Data<u32>, _| {
                let _ = seen.unbounded_send(format!("last {n}"));
                async {}
            });
            socket.on_disconnect(move |_, reason| {
                let _ = report.unbounded_send(reason.to_owned());
                async {}
            });
        }
    });
    let url = format!("http://{}/", rt.serve(io).await);
    for (name, transports) in TRANSPORTS {
        let socket = within(
            "connect",
            socketio::client::connect(rt, &url, ClientOptions::default().transports(transports)),
        )
        .await
        .unwrap();
        socket.emit("last", &1).unwrap();
        socket.disconnect();
        drop(socket);
        let first = within("the event", reports.next()).await.unwrap();
        let second = within("the goodbye", reports.next()).await.unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("last 1", "client namespace disconnect"),
            "{name}"
        );
    }
}

suite::on_each_runtime!(
    events_acks_and_binary_with_own_server,
    namespaces_multiplexed_and_refused_by_own_server,
    dynamic_auth_and_disconnect_by_own_server,
    ack_timeouts_and_retries_with_own_server,
    recovery_with_own_server,
    sent_away_by_own_server,
    a_server_that_never_answers_times_out,
    a_custom_path_and_a_namespace_in_the_url,
    a_listener_awaiting_an_ack_during_a_flood,
    disconnect_after_an_emit_says_goodbye,
);
