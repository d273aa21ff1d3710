//! The Rust client's scenarios, run against the official Node server
//! (`client_node_server.rs`, `interop/server.mjs`) and against ours
//! (`client_own_server.rs`): both servers implement the same events.
//!
//! Every wait is bounded ([`WAIT`]); nothing sleeps to let time pass.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::{json, Value};
use socketio::client::{
    AckError, ClientOptions, ClientSocket, ConnectError, DisconnectReason, ManagerEvent, Transports,
};
use socketio::{Binary, Payload, SharedParser};
use suite::fixtures::{Receipt, Upload, UploadMeta};
use suite::proxy::Proxy;
use suite::TestRuntime;
pub use suite::{within, WAIT};

/// The transports every scenario runs over, with their names.
pub const TRANSPORTS: [(&str, Transports); 3] = [
    ("polling", Transports::POLLING),
    ("websocket", Transports::WEBSOCKET),
    ("upgrade", Transports::ALL),
];

/// How a test client connects: its transports and its parser (made by a
/// function, so that a `Setup` is `Copy`).
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub transports: Transports,
    pub parser: fn() -> SharedParser,
}

impl From<Transports> for Setup {
    fn from(transports: Transports) -> Setup {
        Setup {
            transports,
            parser: SharedParser::default,
        }
    }
}

/// The msgpack parser, as a [`Setup::parser`].
pub fn msgpack() -> SharedParser {
    SharedParser::new(socketio::MsgpackParser)
}

/// Options for a test client: fast reconnection, a name in the auth.
pub fn options(setup: impl Into<Setup>, name: &str) -> ClientOptions {
    let setup = setup.into();
    ClientOptions::default()
        .shared_parser((setup.parser)())
        .transports(setup.transports)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200))
        .timeout(Duration::from_secs(5))
        .auth(&json!({ "name": name }))
        .unwrap()
}

/// What a socket received and what happened to it, in order.
pub enum Seen {
    Event(String, Payload),
    Connect { recovered: bool, id: String },
    ConnectError(ConnectError),
    Disconnect(DisconnectReason),
}

/// Records everything a socket sees, for the scenario to wait on.
pub struct Inbox {
    receiver: mpsc::UnboundedReceiver<Seen>,
    /// Seen but not yet asked for.
    stash: Vec<Seen>,
}

impl Inbox {
    /// Listens to every event and lifecycle change of `socket`.
    pub fn attach(socket: &ClientSocket) -> Inbox {
        let (sender, receiver) = mpsc::unbounded();
        let events = sender.clone();
        socket.on_any(move |_, event, payload| {
            let _ = events.unbounded_send(Seen::Event(event, payload));
            async {}
        });
        let connects = sender.clone();
        socket.on_connect(move |socket| {
            let _ = connects.unbounded_send(Seen::Connect {
                recovered: socket.recovered(),
                id: socket.id().unwrap_or_default(),
            });
            async {}
        });
        let errors = sender.clone();
        socket.on_connect_error(move |_, error| {
            let _ = errors.unbounded_send(Seen::ConnectError(error));
            async {}
        });
        socket.on_disconnect(move |_, reason| {
            let _ = sender.unbounded_send(Seen::Disconnect(reason));
            async {}
        });
        Inbox {
            receiver,
            stash: Vec::new(),
        }
    }

    async fn next_matching<T>(&mut self, what: &str, pick: impl Fn(&Seen) -> Option<T>) -> T {
        if let Some(i) = self.stash.iter().position(|seen| pick(seen).is_some()) {
            let seen = self.stash.remove(i);
            return pick(&seen).unwrap();
        }
        let receiver = &mut self.receiver;
        let stash = &mut self.stash;
        let waiting = async {
            loop {
                let seen = receiver.next().await.expect("socket gone");
                if let Some(found) = pick(&seen) {
                    return found;
                }
                stash.push(seen);
            }
        };
        let deadline = async_io::Timer::after(WAIT);
        futures_util::pin_mut!(waiting);
        match futures_util::future::select(waiting, deadline).await {
            futures_util::future::Either::Left((found, _)) => found,
            futures_util::future::Either::Right(_) => panic!(
                "timed out waiting for {what}; seen meanwhile: {:?}",
                self.stashed_events()
            ),
        }
    }

    /// The next event named `name`, as its JSON arguments.
    pub async fn event(&mut self, name: &str) -> Value {
        self.event_payload(name)
            .await
            .parse()
            .expect("arguments are JSON")
    }

    /// The next event named `name`.
    pub async fn event_payload(&mut self, name: &str) -> Payload {
        self.next_matching(&format!("event {name}"), |seen| match seen {
            Seen::Event(event, payload) if event == name => Some(payload.clone()),
            _ => None,
        })
        .await
    }

    /// The next connect: whether it recovered the session, and the id.
    pub async fn connected(&mut self) -> (bool, String) {
        self.next_matching("connect", |seen| match seen {
            Seen::Connect { recovered, id } => Some((*recovered, id.clone())),
            _ => None,
        })
        .await
    }

    /// The next disconnect reason.
    pub async fn disconnected(&mut self) -> DisconnectReason {
        self.next_matching("disconnect", |seen| match seen {
            Seen::Disconnect(reason) => Some(reason.clone()),
            _ => None,
        })
        .await
    }

    /// The next connect error.
    pub async fn connect_error(&mut self) -> ConnectError {
        self.next_matching("connect_error", |seen| match seen {
            Seen::ConnectError(error) => Some(error.clone()),
            _ => None,
        })
        .await
    }

    /// Names of the events seen so far and not asked for.
    pub fn stashed_events(&self) -> Vec<String> {
        self.stash
            .iter()
            .filter_map(|seen| match seen {
                Seen::Event(name, _) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Emits and awaits the ack, as JSON.
pub async fn ask(socket: &ClientSocket, event: &str, args: Value) -> Value {
    let payload = Payload::args(&args).unwrap();
    within(
        &format!("ack of {event}"),
        socket.emit_with_ack(event, payload, Some(WAIT)),
    )
    .await
    .unwrap_or_else(|e| panic!("ack of {event}: {e}"))
    .parse()
    .unwrap()
}

/// Events both ways, acks both ways, binary nested in objects, headers,
/// query and auth reaching the server, volatile emits while connected,
/// `on_any`, and (for `upgrade`) the move to WebSocket.
pub async fn events_and_acks<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let options = options(transports, "events")
        .extra_header("x-test", "yes")
        .query("q", "7");
    let socket = socketio::client::io(rt, url, options).unwrap();
    let mut inbox = Inbox::attach(&socket);
    socket.on(
        "question",
        |_, question: socketio::Data<i64>, ack| async move {
            ack.expect("the server awaits an answer")
                .send(&(question.0 * 2))
                .unwrap();
        },
    );
    within("connect", socket.connect()).await.unwrap();
    assert!(socket.connected());

    let welcome = inbox.event("welcome").await;
    let welcome = &welcome[0];
    assert_eq!(welcome["auth"], json!({ "name": "events" }), "{transport}");
    assert_eq!(welcome["header"], json!("yes"), "{transport}");
    assert_eq!(welcome["query"], json!("7"), "{transport}");
    assert_eq!(welcome["id"], json!(socket.id().unwrap()), "{transport}");
    if transport == "upgrade" && welcome["transport"] == json!("polling") {
        assert_eq!(inbox.event("upgraded").await[0], json!("websocket"));
    }

    let args = json!(["hi", 1, { "a": [true, null] }, "ünïcode ✓"]);
    socket
        .emit_payload("echo", Payload::args(&args).unwrap())
        .unwrap();
    // A server with connection state recovery appends the event's offset
    // as a last argument, as Node's client sees it too.
    let echoed = inbox.event("echo").await;
    assert_eq!(
        echoed.as_array().unwrap()[..4],
        args.as_array().unwrap()[..],
        "{transport}"
    );
    assert_eq!(
        ask(&socket, "echo-ack", args.clone()).await,
        args,
        "{transport}"
    );
    // No arguments at all, both ways.
    assert_eq!(ask(&socket, "echo-ack", json!([])).await, json!([]));

    socket.emit("ask", &21).unwrap();
    assert_eq!(inbox.event("answer").await[0], json!(42), "{transport}");

    let upload = Upload {
        name: String::from("photo"),
        file: Binary::from(vec![0u8, 255, 7, 9]),
        meta: UploadMeta {
            parts: vec![Binary::from(vec![1u8; 3]), Binary::from(vec![2u8; 5])],
        },
    };
    let receipt = within(
        "upload ack",
        socket.emit_with_ack("upload", Payload::single(&upload).unwrap(), Some(WAIT)),
    )
    .await
    .unwrap();
    let receipt: Receipt = receipt.first().unwrap();
    assert!(receipt.ok, "{transport}: the server saw buffers");
    assert_eq!(
        (receipt.name.as_str(), receipt.size, receipt.parts),
        ("photo", 4, vec![3, 5])
    );
    assert_eq!(&*receipt.back.inner.0, &[1, 2, 3]);
    assert_eq!(&*receipt.back.inner.1, &[1, 1, 1]);

    socket
        .emit_volatile("echo", Payload::single("volatile").unwrap())
        .unwrap();
    assert_eq!(inbox.event("echo").await[0], json!("volatile"));
    socket.disconnect();
    assert_eq!(
        inbox.disconnected().await,
        DisconnectReason::ClientDisconnect
    );
    assert!(!socket.connected());
}

/// Two namespaces over one connection (the Manager), a middleware's
/// refusal with its message and data.
pub async fn namespaces<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let main = socketio::client::io(rt, url, options(transports, "main")).unwrap();
    let admin = main
        .manager()
        .socket_with_auth("/admin", &json!({ "token": "secret" }))
        .unwrap();
    let mut admin_inbox = Inbox::attach(&admin);
    within("connect /", main.connect()).await.unwrap();
    within("connect /admin", admin.connect()).await.unwrap();
    let welcome = admin_inbox.event("admin-welcome").await;
    assert_eq!(welcome[0]["auth"], json!({ "token": "secret" }));
    let main_engine = ask(&main, "engine-id", json!([])).await;
    let admin_engine = ask(&admin, "engine-id", json!([])).await;
    assert_eq!(main_engine, admin_engine, "{transport}: one connection");
    assert_ne!(main.id(), admin.id());

    // A refusal is final and carries the middleware's message and data.
    let intruder = socketio::client::io(
        rt,
        &format!("{}admin", url),
        options(transports, "intruder").reconnection(false),
    )
    .unwrap();
    let mut intruder_inbox = Inbox::attach(&intruder);
    let refused = within("refusal", intruder.connect()).await.unwrap_err();
    let expected = ConnectError::Refused {
        message: String::from("unauthorized"),
        data: Some(json!({ "code": 401 })),
    };
    assert_eq!(refused, expected, "{transport}");
    assert_eq!(intruder_inbox.connect_error().await, expected);
    main.manager().close();
}

/// The auth callback runs before every CONNECT; a server-side disconnect
/// is final until `connect` is called again.
pub async fn dynamic_auth_and_server_disconnect<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let counter = Arc::new(Mutex::new(0));
    let count = counter.clone();
    let options = options(transports, "dynamic").auth_with(move || {
        let n = {
            let mut count = count.lock().unwrap();
            *count += 1;
            *count
        };
        async move { json!({ "name": "dynamic", "n": n }) }
    });
    let socket = socketio::client::io(rt, url, options).unwrap();
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect()).await.unwrap();
    assert_eq!(inbox.event("welcome").await[0]["auth"]["n"], json!(1));

    socket.emit("disconnect-me", &()).unwrap();
    let reason = inbox.disconnected().await;
    assert_eq!(reason, DisconnectReason::ServerDisconnect, "{transport}");
    assert_eq!(reason.as_node_str(), "io server disconnect");
    assert!(!reason.will_reconnect());
    assert!(matches!(
        socket.emit("echo", &1),
        Err(socketio::client::EmitError::NotConnected)
    ));

    within("reconnect", socket.connect()).await.unwrap();
    assert_eq!(inbox.event("welcome").await[0]["auth"]["n"], json!(2));
    socket.disconnect();
}

/// A server that never answers: the ack times out, and with `retries`
/// the event is sent `retries + 1` times before failing.
pub async fn ack_timeouts<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let socket =
        socketio::client::io(rt, url, options(transports, &format!("never-{transport}"))).unwrap();
    within("connect", socket.connect()).await.unwrap();
    let answer = within(
        "timeout",
        socket.emit_with_ack("never", Payload::empty(), Some(Duration::from_millis(200))),
    )
    .await;
    assert!(matches!(answer, Err(AckError::Timeout)), "{transport}");
    socket.disconnect();

    let name = format!("retries-{transport}");
    let retrying = options(transports, &name)
        .ack_timeout(Duration::from_millis(150))
        .retries(2);
    let socket = socketio::client::io(rt, url, retrying).unwrap();
    within("connect", socket.connect()).await.unwrap();
    let answer = within(
        "retries",
        socket.emit_with_ack("never", Payload::empty(), None),
    )
    .await;
    assert!(matches!(answer, Err(AckError::Timeout)), "{transport}");
    assert_eq!(
        ask(&socket, "nevers", json!([])).await,
        json!([3]),
        "{transport}"
    );
    socket.disconnect();
}

/// Connection state recovery: the network between client and server
/// drops (a proxy cuts it), the server emits while the client is away,
/// and the client reconnects with the same id and receives the missed
/// events once, in order.
pub async fn recovery<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let proxy = Proxy::start(suite::mirror::address(url));
    let socket = socketio::client::io(rt, &proxy.url(), options(transports, "recovery")).unwrap();
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect()).await.unwrap();
    let (recovered, first_id) = inbox.connected().await;
    assert!(!recovered);
    inbox.event("welcome").await;
    // The offset of the last event is what the client asks to resume from.
    assert_eq!(ask(&socket, "echo-ack", json!([1])).await, json!([1]));

    proxy.cut();
    let reason = inbox.disconnected().await;
    assert!(reason.will_reconnect(), "{transport}: {reason:?}");
    // Another client, straight to the server, has it emit once the
    // dropped socket is gone for the server too.
    let control = socketio::client::io(rt, url, options(transports, "control")).unwrap();
    within("control connect", control.connect()).await.unwrap();
    assert_eq!(
        ask(&control, "emit-missed", json!([first_id, 3])).await,
        json!([true]),
        "{transport}: the server saw the drop"
    );
    control.disconnect();
    proxy.restore();

    let (recovered, id) = inbox.connected().await;
    assert!(recovered, "{transport}: the session is restored");
    assert!(socket.recovered());
    assert_eq!(id, first_id, "{transport}: same id");
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(inbox.event("missed").await[0].clone());
    }
    assert_eq!(missed, vec![json!(1), json!(2), json!(3)], "{transport}");
    // Once: nothing else arrives before a fresh round trip.
    assert_eq!(
        ask(&socket, "echo-ack", json!(["after"])).await,
        json!(["after"])
    );
    assert!(
        !inbox.stashed_events().contains(&String::from("missed")),
        "{transport}: a missed event came twice"
    );
    socket.disconnect();
}

/// The server sends the client away (Node's `socket.disconnect(true)`):
/// every namespace of the connection gets `io server disconnect`, the
/// client does not reconnect by itself, and connecting again makes a new
/// session: a new id, nothing recovered.
pub async fn sent_away<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    let socket = socketio::client::io(rt, url, options(transports, "sent-away")).unwrap();
    let admin = socket
        .manager()
        .socket_with_auth("/admin", &json!({ "token": "secret" }))
        .unwrap();
    let events = manager_events(&socket);
    let mut inbox = Inbox::attach(&socket);
    let mut admin_inbox = Inbox::attach(&admin);
    within("connect", socket.connect()).await.unwrap();
    within("admin connect", admin.connect()).await.unwrap();
    let (_, first_id) = inbox.connected().await;
    inbox.event("welcome").await;
    admin_inbox.event("admin-welcome").await;

    socket.emit("kick-all", &()).unwrap();
    for inbox in [&mut inbox, &mut admin_inbox] {
        let reason = inbox.disconnected().await;
        assert_eq!(reason, DisconnectReason::ServerDisconnect, "{transport}");
        assert!(!reason.will_reconnect(), "{transport}");
    }
    // Stays away: several reconnection delays pass without an attempt.
    suite::sleep(Duration::from_millis(600)).await;
    let seen = events.lock().unwrap().clone();
    assert!(
        !seen
            .iter()
            .any(|event| matches!(event, ManagerEvent::ReconnectAttempt(_))),
        "{transport}: reconnected after being sent away: {seen:?}"
    );
    assert!(!socket.connected() && !admin.connected());

    // Coming back is a new session.
    within("connect again", socket.connect()).await.unwrap();
    let (recovered, id) = inbox.connected().await;
    assert!(!recovered, "{transport}: recovered after being sent away");
    assert_ne!(id, first_id, "{transport}: same id after being sent away");
    socket.disconnect();
}

/// Follows a Manager's events.
pub fn manager_events(socket: &ClientSocket) -> Arc<Mutex<Vec<ManagerEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let record = events.clone();
    socket
        .manager()
        .on_event(move |event| record.lock().unwrap().push(event.clone()));
    events
}

/// Listeners as in Node's client: they start in the order events arrive
/// and run side by side. A listener awaiting an ack of the server while
/// 3,000 more events arrive gets its answer within 3 s (before, listeners
/// ran one at a time and the driver stopped reading behind the waiting
/// one: no answer at all); an event arriving while another listener sleeps
/// for a second runs at once.
pub async fn awaiting_listeners<R: TestRuntime>(
    rt: R,
    url: &str,
    transport: &str,
    transports: impl Into<Setup> + Copy,
) {
    const NOISE: u32 = 3_000;
    let socket =
        socketio::client::io(rt, url, options(transports, &format!("await-{transport}"))).unwrap();
    let (report, mut reports) = mpsc::unbounded::<(&str, std::time::Instant)>();
    let answered = report.clone();
    socket.on("first", move |socket, _: Payload, _| {
        let answered = answered.clone();
        async move {
            let payload = Payload::single(&"ping").unwrap();
            let answer = socket
                .emit_with_ack("echo-ack", payload, Some(Duration::from_secs(10)))
                .await;
            assert_eq!(answer.unwrap().first::<String>().unwrap(), "ping");
            let _ = answered.unbounded_send(("answered", std::time::Instant::now()));
        }
    });
    let noise = report.clone();
    socket.on("noise", move |_, _: Payload, _| {
        let _ = noise.unbounded_send(("noise", std::time::Instant::now()));
        async {}
    });
    socket.on("slow", |_, _: Payload, _| {
        suite::sleep(Duration::from_secs(1))
    });
    socket.on("quick", move |_, _: Payload, _| {
        let _ = report.unbounded_send(("quick", std::time::Instant::now()));
        async {}
    });
    within("connect", socket.connect()).await.unwrap();

    let start = std::time::Instant::now();
    ask(&socket, "burst", json!([[["first", 1], ["noise", NOISE]]])).await;
    let (mut noises, mut answer) = (0, None);
    while noises < NOISE || answer.is_none() {
        let (what, at) = within("the flood and the answer", reports.next())
            .await
            .unwrap();
        match what {
            "noise" => noises += 1,
            _ => answer = Some(at - start),
        }
    }
    let answer = answer.unwrap();
    assert!(answer < Duration::from_secs(3), "{transport}: {answer:?}");

    let start = std::time::Instant::now();
    ask(&socket, "burst", json!([[["slow", 1], ["quick", 1]]])).await;
    let (_, at) = within("quick", reports.next()).await.unwrap();
    let quick = at - start;
    assert!(quick < Duration::from_millis(500), "{transport}: {quick:?}");
    // The figures to compare with the official client's (`--nocapture`).
    eprintln!("awaiting listeners over {transport}: answered in {answer:?}, quick in {quick:?}");
    socket.disconnect();
}

/// What the server under test does with `compress(false)` over WebSocket:
/// ours honours it; Node 4.8 compresses such messages all the same
/// (engine.io 6.6 no longer hands the flag to ws).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressFalse {
    Honored,
    Ignored,
}

/// Compression as our client sees it, through a counting proxy to a server
/// with permessage-deflate on (and HTTP compression, on by default): a
/// compressible 108 KB message goes out and comes back in a fraction of
/// its size over WebSocket (both ways) and over long-polling (the
/// response: as in Node, a POST is never compressed); the server's two
/// `compress(false)` messages come as they are, except over a WebSocket
/// from a server that ignores the flag; and our client's own
/// `compress(false)` message goes as it is.
pub async fn compression<R: TestRuntime>(
    rt: R,
    server: std::net::SocketAddr,
    transport: &str,
    transports: Transports,
    compress_false: CompressFalse,
) {
    let proxy = Proxy::start(server);
    let options = options(transports, "compression")
        .per_message_deflate(socketio::PerMessageDeflate::default());
    let socket = socketio::client::io(rt, &proxy.url(), options).unwrap();
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect()).await.unwrap();
    let welcome = inbox.event("welcome").await;
    if transport == "upgrade" && welcome[0]["transport"] == json!("polling") {
        assert_eq!(inbox.event("upgraded").await[0], json!("websocket"));
    }
    let big = "hello compression ".repeat(6000);
    let (up, down) = (proxy.bytes_to_server(), proxy.bytes_to_client());
    socket.emit("echo", &big).unwrap();
    // (A server with recovery appends an offset: only the first argument.)
    let echoed = inbox.event("echo").await;
    assert!(echoed[0] == json!(big), "{transport}: not the message");
    let (sent, received) = (proxy.bytes_to_server() - up, proxy.bytes_to_client() - down);
    let size = big.len() as u64;
    if transport == "polling" {
        assert!(sent > size, "{transport}: the POST took {sent} bytes");
    } else {
        assert!(sent < 10_000, "{transport}: our message took {sent} bytes");
    }
    assert!(
        received < 10_000,
        "{transport}: the echo took {received} bytes"
    );

    let down = proxy.bytes_to_client();
    socket.emit("plain-please", &big).unwrap();
    for _ in 0..2 {
        let plain = inbox.event("plain").await;
        assert!(plain[0] == json!(big), "{transport}: not the message");
    }
    let received = proxy.bytes_to_client() - down;
    if transport != "polling" && compress_false == CompressFalse::Ignored {
        assert!(received < 10_000, "{transport}: {received} bytes");
    } else {
        assert!(received > 2 * size, "{transport}: {received} bytes");
    }

    // Our client's own compress(false): the message goes as is.
    let up = proxy.bytes_to_server();
    socket.compress(false).emit("echo", &big).unwrap();
    let echoed = inbox.event("echo").await;
    assert!(echoed[0] == json!(big), "{transport}: not the message");
    let sent = proxy.bytes_to_server() - up;
    assert!(
        sent > size,
        "{transport}: compress(false) took {sent} bytes"
    );
    socket.disconnect();
}
