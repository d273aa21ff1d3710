//! The scenarios, each against the server behind the page's origin (Node's
//! `interop/server.mjs` or our `mirror-server`, which answer alike).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use web_time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use socketio::client::{
    self, AckError, Browser, ClientOptions, ClientSocket, ConnectError, DisconnectReason,
    ManagerEvent, Transports,
};
use socketio::{Binary, MsgpackParser, Payload, Runtime, SharedParser};

use crate::inbox::{harness, same, text, within, Inbox, WAIT};

/// Whether the clients speak socket.io-msgpack-parser's msgpack (the
/// server does too) rather than JSON.
static MSGPACK: AtomicBool = AtomicBool::new(false);

/// Sets the parser of the clients made from now on.
pub fn use_msgpack(msgpack: bool) {
    MSGPACK.store(msgpack, Ordering::Relaxed);
}

/// The options every client starts from: the parser the server speaks.
fn base_options() -> ClientOptions {
    let options = ClientOptions::default();
    if MSGPACK.load(Ordering::Relaxed) {
        options.shared_parser(SharedParser::new(MsgpackParser))
    } else {
        options
    }
}

/// Options for a scenario's client: fast reconnection, a name in the auth.
fn options(transports: Transports, name: &str) -> Result<ClientOptions, String> {
    base_options()
        .transports(transports)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200))
        .timeout(Duration::from_secs(5))
        .auth(&json!({ "name": name }))
        .map_err(text("auth"))
}

/// Emits and awaits the ack, as JSON.
async fn ask(socket: &ClientSocket, event: &str, args: Value) -> Result<Value, String> {
    let payload = Payload::args(&args).map_err(text("arguments"))?;
    let answer = within(
        &format!("the ack of {event}"),
        socket.emit_with_ack(event, payload, Some(WAIT)),
    )
    .await?
    .map_err(|e| format!("the ack of {event}: {e}"))?;
    answer.parse().map_err(text("the ack as JSON"))
}

/// What the client uploads: binary at two depths.
#[derive(Serialize)]
struct Upload {
    name: String,
    file: Binary,
    meta: UploadMeta,
}

#[derive(Serialize)]
struct UploadMeta {
    parts: Vec<Binary>,
}

/// The server's answer to an upload, with binary sent back.
#[derive(Deserialize)]
struct Receipt {
    ok: bool,
    name: String,
    size: usize,
    parts: Vec<usize>,
    back: Back,
}

#[derive(Deserialize)]
struct Back {
    inner: (Binary, Binary),
}

/// Uploads a file and its parts (binary at two depths) and returns the
/// server's receipt (binary sent back).
async fn upload(
    socket: &ClientSocket,
    name: &str,
    file: Vec<u8>,
    parts: Vec<Vec<u8>>,
) -> Result<Receipt, String> {
    let upload = Upload {
        name: String::from(name),
        file: Binary::from(file),
        meta: UploadMeta {
            parts: parts.into_iter().map(Binary::from).collect(),
        },
    };
    let payload = Payload::single(&upload).map_err(text("upload"))?;
    let receipt = within(
        "the upload's ack",
        socket.emit_with_ack("upload", payload, Some(WAIT)),
    )
    .await?
    .map_err(text("upload ack"))?;
    receipt.first().map_err(text("receipt"))
}

/// Follows a Manager's events.
fn manager_events(socket: &ClientSocket) -> Arc<Mutex<Vec<ManagerEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    socket.manager().on_event(move |event| {
        if let Ok(mut seen) = seen.lock() {
            seen.push(event.clone());
        }
    });
    events
}

/// Events and acks both ways, nested binary both ways, auth, query and
/// headers reaching the server, volatile emits, and (for `upgrade`) the
/// move to WebSocket.
pub async fn events(transports: Transports, transport: &str) -> Result<String, String> {
    let options = options(transports, "events")?
        .extra_header("x-test", "yes")
        .query("q", "7");
    // Relative: resolved against the page's address.
    let socket = client::io(Browser, "/", options).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    socket.on(
        "question",
        |_, question: socketio::Data<i64>, ack| async move {
            if let Some(ack) = ack {
                let _ = ack.send(&(question.0 * 2));
            }
        },
    );
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    same(socket.connected(), true, "connected")?;

    let welcome = inbox.event("welcome").await?;
    let welcome = &welcome[0];
    same(&welcome["auth"], &json!({ "name": "events" }), "auth")?;
    same(&welcome["query"], &json!("7"), "query")?;
    same(&welcome["id"], &json!(socket.id()), "id")?;
    // A browser's WebSocket carries no headers of the page's: the header
    // reaches the server when the session starts over long-polling (as
    // with Node's client in a browser).
    let first = welcome["transport"].clone();
    let header = if first == json!("polling") {
        json!("yes")
    } else {
        Value::Null
    };
    same(&welcome["header"], &header, "x-test header")?;
    let mut upgraded = false;
    if transport == "upgrade" && first == json!("polling") {
        same(
            inbox.event("upgraded").await?[0].clone(),
            json!("websocket"),
            "upgrade",
        )?;
        upgraded = true;
    }

    let args = json!(["hi", 1, { "a": [true, null] }, "ünïcode ✓"]);
    socket
        .emit_payload("echo", Payload::args(&args).map_err(text("args"))?)
        .map_err(text("emit"))?;
    // A server with recovery appends the offset as a last argument.
    let echoed = inbox.event("echo").await?;
    let echoed = echoed.as_array().ok_or("echo is an array")?;
    same(&echoed[..4], &args.as_array().ok_or("args")?[..], "echo")?;
    same(
        ask(&socket, "echo-ack", args.clone()).await?,
        args,
        "echo-ack",
    )?;
    same(
        ask(&socket, "echo-ack", json!([])).await?,
        json!([]),
        "empty ack",
    )?;

    // The server asks, the client's listener answers through its ack.
    socket.emit("ask", &21).map_err(text("emit ask"))?;
    same(inbox.event("answer").await?[0].clone(), json!(42), "answer")?;

    let receipt = upload(
        &socket,
        "photo",
        vec![0u8, 255, 7, 9],
        vec![vec![1u8; 3], vec![2u8; 5]],
    )
    .await?;
    same(receipt.ok, true, "the server saw buffers")?;
    same(
        (receipt.name.as_str(), receipt.size, receipt.parts),
        ("photo", 4, vec![3, 5]),
        "receipt",
    )?;
    same(&*receipt.back.inner.0, &[1u8, 2, 3][..], "binary back")?;
    same(&*receipt.back.inner.1, &[1u8, 1, 1][..], "binary back")?;

    socket
        .emit_volatile(
            "echo",
            Payload::single("volatile").map_err(text("volatile"))?,
        )
        .map_err(text("emit volatile"))?;
    same(
        inbox.event("echo").await?[0].clone(),
        json!("volatile"),
        "volatile",
    )?;
    socket.disconnect();
    same(
        inbox.disconnected().await?,
        DisconnectReason::ClientDisconnect,
        "disconnect",
    )?;
    same(socket.connected(), false, "disconnected")?;
    Ok(format!("first transport {first}, upgraded {upgraded}"))
}

/// Two namespaces over one connection; a middleware's refusal with its
/// message and data.
pub async fn namespaces(transports: Transports, _transport: &str) -> Result<String, String> {
    let main = client::io(Browser, "/", options(transports, "main")?).map_err(text("io"))?;
    let admin = main
        .manager()
        .socket_with_auth("/admin", &json!({ "token": "secret" }))
        .map_err(text("admin socket"))?;
    let mut admin_inbox = Inbox::attach(&admin);
    within("connect /", main.connect())
        .await?
        .map_err(text("connect /"))?;
    within("connect /admin", admin.connect())
        .await?
        .map_err(text("connect /admin"))?;
    let welcome = admin_inbox.event("admin-welcome").await?;
    same(&welcome[0]["auth"], &json!({ "token": "secret" }), "auth")?;
    let main_engine = ask(&main, "engine-id", json!([])).await?;
    let admin_engine = ask(&admin, "engine-id", json!([])).await?;
    same(&main_engine, &admin_engine, "one connection")?;
    if main.id() == admin.id() {
        return Err(String::from("two namespaces, one socket id"));
    }

    let intruder = client::io(
        Browser,
        "/admin",
        options(transports, "intruder")?.reconnection(false),
    )
    .map_err(text("io"))?;
    let mut intruder_inbox = Inbox::attach(&intruder);
    let refused = within("refusal", intruder.connect()).await?;
    let expected = ConnectError::Refused {
        message: String::from("unauthorized"),
        data: Some(json!({ "code": 401 })),
    };
    same(refused, Err(expected.clone()), "refusal")?;
    same(
        intruder_inbox.connect_error().await?,
        expected,
        "connect_error",
    )?;
    main.manager().close();
    within("close", main.manager().closed()).await?;
    Ok(String::from("one engine for / and /admin; refusal carried"))
}

/// A server that never answers: the ack times out; with `retries` the
/// event is sent `retries + 1` times before failing.
pub async fn acks(transports: Transports, transport: &str) -> Result<String, String> {
    let name = format!("never-{transport}");
    let socket = client::io(Browser, "/", options(transports, &name)?).map_err(text("io"))?;
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    let answer = within(
        "timeout",
        socket.emit_with_ack("never", Payload::empty(), Some(Duration::from_millis(200))),
    )
    .await?;
    if !matches!(answer, Err(AckError::Timeout)) {
        return Err(format!("ack timeout: {answer:?}"));
    }
    socket.disconnect();

    let name = format!("retries-{transport}");
    let retrying = options(transports, &name)?
        .ack_timeout(Duration::from_millis(150))
        .retries(2);
    let socket = client::io(Browser, "/", retrying).map_err(text("io"))?;
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    let answer = within(
        "retries",
        socket.emit_with_ack("never", Payload::empty(), None),
    )
    .await?;
    if !matches!(answer, Err(AckError::Timeout)) {
        return Err(format!("retries time out: {answer:?}"));
    }
    same(
        ask(&socket, "nevers", json!([])).await?,
        json!([3]),
        "sent 3 times",
    )?;
    socket.disconnect();
    Ok(String::from("timeout and 2 retries"))
}

/// Connection state recovery: the harness cuts the network, the server
/// emits while the client is away, and the client reconnects with the
/// same id and receives the missed events once, in order.
pub async fn recovery(transports: Transports, transport: &str) -> Result<String, String> {
    let socket = client::io(Browser, "/", options(transports, "recovery")?).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    let (recovered, first_id) = inbox.connected().await?;
    same(recovered, false, "a fresh session")?;
    inbox.event("welcome").await?;
    same(
        ask(&socket, "echo-ack", json!([1])).await?,
        json!([1]),
        "echo-ack",
    )?;

    harness("cut").await?;
    let reason = inbox.disconnected().await?;
    if !reason.will_reconnect() {
        return Err(format!("{transport}: {reason:?} does not reconnect"));
    }
    // A client of the harness, straight to the server, has it emit once
    // the dropped socket is gone for the server too.
    same(
        harness(&format!("miss {first_id} 3")).await?,
        String::from("true"),
        "the server saw the drop",
    )?;
    harness("restore").await?;

    let (recovered, id) = inbox.connected().await?;
    same(recovered, true, "the session is restored")?;
    same(socket.recovered(), true, "recovered()")?;
    same(&id, &first_id, "same id")?;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(inbox.event("missed").await?[0].clone());
    }
    same(missed, vec![json!(1), json!(2), json!(3)], "missed events")?;
    same(
        ask(&socket, "echo-ack", json!(["after"])).await?,
        json!(["after"]),
        "after",
    )?;
    if inbox.stashed_events().contains(&String::from("missed")) {
        return Err(String::from("a missed event came twice"));
    }
    socket.disconnect();
    Ok(format!("recovered {id} with 3 missed events"))
}

/// The server dies mid-session and comes back on the same port: the
/// client reconnects by itself (reporting its attempts), emits made
/// meanwhile are delivered once, volatile ones are dropped.
pub async fn restart(transports: Transports, transport: &str) -> Result<String, String> {
    let name = format!("restart-{transport}");
    let socket = client::io(Browser, "/", options(transports, &name)?).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    let events = manager_events(&socket);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    socket.emit("seq", &1).map_err(text("emit"))?;
    same(
        ask(&socket, "report", json!([])).await?,
        json!([[1]]),
        "report",
    )?;

    harness("stop").await?;
    let reason = inbox.disconnected().await?;
    if !reason.will_reconnect() {
        return Err(format!("{reason:?} does not reconnect"));
    }
    socket.emit("seq", &2).map_err(text("buffered emit"))?;
    socket.emit("seq", &3).map_err(text("buffered emit"))?;
    socket
        .emit_volatile("seq", Payload::single(&99).map_err(text("volatile"))?)
        .map_err(text("volatile emit"))?;
    harness("start").await?;
    inbox.connected().await?;
    same(
        ask(&socket, "report", json!([])).await?,
        json!([[2, 3]]),
        "buffered emits once, volatile dropped",
    )?;
    let events = events.lock().map_err(text("events"))?.clone();
    let attempted = events.contains(&ManagerEvent::ReconnectAttempt(1));
    let reconnected = events
        .iter()
        .any(|e| matches!(e, ManagerEvent::Reconnect(n) if *n >= 1));
    let closed = events.contains(&ManagerEvent::Close("transport close"))
        || events.contains(&ManagerEvent::Close("transport error"));
    if !(attempted && reconnected && closed) {
        return Err(format!("manager events: {events:?}"));
    }
    socket.disconnect();
    Ok(format!("manager events {events:?}"))
}

/// A server that accepts connections and never answers (the harness
/// holds them): the open times out, the client retries as often as
/// allowed, then gives up; nothing hangs.
pub async fn silent(transports: Transports, transport: &str) -> Result<String, String> {
    harness("hold").await?;
    let outcome = give_up(transports, transport).await;
    harness("release").await?;
    outcome
}

async fn give_up(transports: Transports, transport: &str) -> Result<String, String> {
    let options = base_options()
        .transports(transports)
        .timeout(Duration::from_millis(200))
        .reconnection(false);
    let socket = client::io(Browser, "/", options).map_err(text("io"))?;
    let outcome = within("a failed open", socket.connect()).await?;
    same(outcome, Err(ConnectError::Transport), "a failed open")?;

    let options = base_options()
        .transports(transports)
        .timeout(Duration::from_millis(100))
        .reconnection_attempts(2)
        .reconnection_delay(Duration::from_millis(20))
        .reconnection_delay_max(Duration::from_millis(40));
    let socket = client::io(Browser, "/", options).map_err(text("io"))?;
    let events = manager_events(&socket);
    let outcome = within("giving up", socket.connect()).await?;
    same(outcome, Err(ConnectError::Failed), "giving up")?;
    let events = events.lock().map_err(text("events"))?.clone();
    same(
        events,
        vec![
            ManagerEvent::ReconnectAttempt(1),
            ManagerEvent::ReconnectAttempt(2),
            ManagerEvent::ReconnectFailed,
        ],
        "manager events",
    )?;
    // Emits after giving up fail cleanly rather than hang.
    let ack = socket.emit_with_ack("x", Payload::empty(), Some(Duration::from_millis(50)));
    if within("an ack after giving up", ack).await?.is_ok() {
        return Err(String::from("an ack after giving up"));
    }
    Ok(format!("{transport}: timed out, 2 attempts, gave up"))
}

/// The page on one origin and the server on another (its own address):
/// CORS, with a preflight for the extra header; binary both ways; and the
/// server's cookie (Node's `io`) carried back only `with_credentials`.
pub async fn cross_origin(transports: Transports, transport: &str) -> Result<String, String> {
    let url = harness("server-url").await?;
    let (first, _) = visit(&url, transports, "cross-1", true).await?;
    let (with, without) = if first["transport"] == json!("polling") {
        // The handshake went over long-polling: the cookie it set comes
        // back with credentials only.
        let (with, _) = visit(&url, transports, "cross-2", true).await?;
        // Without a scheme, completed with the page's protocol (Node's
        // client's rule).
        let bare = url.trim_start_matches("http://");
        let (without, _) = visit(bare, transports, "cross-3", false).await?;
        let cookie = with["cookie"].as_str().unwrap_or_default();
        if !cookie.contains("io=") {
            return Err(format!("with credentials, no io cookie: {with}"));
        }
        same(&without["cookie"], &Value::Null, "without credentials")?;
        (with["cookie"].clone(), without["cookie"].clone())
    } else {
        // A WebSocket handshake is not CORS's business: data flowing is
        // the check.
        (Value::Null, Value::Null)
    };
    Ok(format!(
        "{transport}: cross-origin ok; cookie with credentials {with}, without {without}"
    ))
}

/// Connects to `url` from the page's other origin, checks an ack and
/// binary both ways, disconnects; returns the welcome and the socket id.
async fn visit(
    url: &str,
    transports: Transports,
    name: &str,
    with_credentials: bool,
) -> Result<(Value, String), String> {
    let options = options(transports, name)?
        .extra_header("x-test", "yes")
        .with_credentials(with_credentials);
    let socket = client::io(Browser, url, options).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    let welcome = inbox.event("welcome").await?[0].clone();
    if welcome["transport"] == json!("polling") {
        same(&welcome["header"], &json!("yes"), "the preflighted header")?;
    }
    same(
        ask(&socket, "echo-ack", json!(["over", "there"])).await?,
        json!(["over", "there"]),
        "echo-ack",
    )?;
    let receipt = upload(&socket, name, vec![9u8; 4], vec![vec![1u8; 2]]).await?;
    same((receipt.ok, receipt.size), (true, 4), "receipt")?;
    same(&*receipt.back.inner.1, &[1u8, 1][..], "binary back")?;
    let id = socket.id().unwrap_or_default();
    socket.disconnect();
    Ok((welcome, id))
}

/// Listeners as in Node's client: they start in the order events arrive
/// and run side by side. A listener awaiting an ack of the server while
/// 3,000 more events arrive gets its answer within 5 s (a deadlocked
/// driver would never give it; natively the bound is 3 s, here the page
/// shares 2 cores with other browsers under test), and an event
/// arriving while another listener sleeps for 3 s runs at once: the
/// browser's WebSocket and `fetch` feed the same driver as native IO.
pub async fn awaiting(transports: Transports, transport: &str) -> Result<String, String> {
    const NOISE: u32 = 3_000;
    // How long the slow listener sleeps. The quick one must come well
    // before it; the margin is a round trip to the server, which a page
    // sharing 2 cores with other browsers and builds can take 0.7 s for.
    const SLOW: Duration = Duration::from_secs(3);
    let name = format!("await-{transport}");
    let socket = client::io(Browser, "/", options(transports, &name)?).map_err(text("io"))?;
    let (report, mut reports) = futures_channel::mpsc::unbounded::<(&str, Instant)>();
    let answered = report.clone();
    socket.on("first", move |socket, _: Payload, _| {
        let answered = answered.clone();
        async move {
            let payload = Payload::single(&"ping").unwrap_or_else(|_| Payload::empty());
            let answer = socket
                .emit_with_ack("echo-ack", payload, Some(Duration::from_secs(10)))
                .await;
            let pong = answer.ok().and_then(|a| a.first::<String>().ok());
            let what = if pong.as_deref() == Some("ping") {
                "answered"
            } else {
                "wrong answer"
            };
            let _ = answered.unbounded_send((what, Instant::now()));
        }
    });
    let noise = report.clone();
    socket.on("noise", move |_, _: Payload, _| {
        let _ = noise.unbounded_send(("noise", Instant::now()));
        async {}
    });
    socket.on("slow", |_, _: Payload, _| {
        Browser.sleep_until(Instant::now() + SLOW)
    });
    socket.on("quick", move |_, _: Payload, _| {
        let _ = report.unbounded_send(("quick", Instant::now()));
        async {}
    });
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;

    let start = Instant::now();
    ask(&socket, "burst", json!([[["first", 1], ["noise", NOISE]]])).await?;
    let (mut noises, mut answer) = (0, None);
    while noises < NOISE || answer.is_none() {
        let (what, at) = within("the flood and the answer", reports.next())
            .await?
            .ok_or("the socket went away")?;
        match what {
            "noise" => noises += 1,
            "answered" => answer = Some(at - start),
            other => return Err(format!("the awaiting listener got a {other}")),
        }
    }
    let answer = answer.unwrap_or_default();
    if answer >= Duration::from_secs(5) {
        return Err(format!("answered after {answer:?}"));
    }

    let start = Instant::now();
    ask(&socket, "burst", json!([[["slow", 1], ["quick", 1]]])).await?;
    let (_, at) = within("quick", reports.next())
        .await?
        .ok_or("the socket went away")?;
    let quick = at - start;
    if quick >= SLOW - Duration::from_secs(1) {
        return Err(format!(
            "the quick listener waited {quick:?}, as if behind the slow one ({SLOW:?})"
        ));
    }
    socket.disconnect();
    Ok(format!(
        "answered in {answer:?} among {NOISE} events, quick in {quick:?}"
    ))
}

/// The auth callback runs before every CONNECT; a server-side disconnect
/// is final until `connect` is called again.
pub async fn dynamic_auth(transports: Transports, _transport: &str) -> Result<String, String> {
    let counter = Arc::new(Mutex::new(0));
    let count = counter.clone();
    let options = options(transports, "dynamic")?.auth_with(move || {
        let n = match count.lock() {
            Ok(mut count) => {
                *count += 1;
                *count
            }
            Err(_) => 0,
        };
        async move { json!({ "name": "dynamic", "n": n }) }
    });
    let socket = client::io(Browser, "/", options).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    same(
        inbox.event("welcome").await?[0]["auth"]["n"].clone(),
        json!(1),
        "first auth",
    )?;
    socket.emit("disconnect-me", &()).map_err(text("emit"))?;
    let reason = inbox.disconnected().await?;
    same(reason.clone(), DisconnectReason::ServerDisconnect, "reason")?;
    same(
        reason.as_node_str(),
        "io server disconnect",
        "Node's reason",
    )?;
    same(reason.will_reconnect(), false, "no reconnection")?;
    if socket.emit("echo", &1).is_ok() {
        return Err(String::from("an emit while disconnected by the server"));
    }
    within("reconnect", socket.connect())
        .await?
        .map_err(text("reconnect"))?;
    same(
        inbox.event("welcome").await?[0]["auth"]["n"].clone(),
        json!(2),
        "second auth",
    )?;
    socket.disconnect();
    Ok(String::from(
        "auth computed per CONNECT; server disconnect final",
    ))
}

/// The server sends the client away (Node's `socket.disconnect(true)`):
/// every namespace of the connection gets `io server disconnect`, the
/// client does not reconnect by itself, and connecting again makes a new
/// session: a new id, nothing recovered.
pub async fn sent_away(transports: Transports, _transport: &str) -> Result<String, String> {
    let socket = client::io(Browser, "/", options(transports, "sent-away")?).map_err(text("io"))?;
    let admin = socket
        .manager()
        .socket_with_auth("/admin", &json!({ "token": "secret" }))
        .map_err(text("admin socket"))?;
    let events = manager_events(&socket);
    let mut inbox = Inbox::attach(&socket);
    let mut admin_inbox = Inbox::attach(&admin);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    within("admin connect", admin.connect())
        .await?
        .map_err(text("admin connect"))?;
    let (_, first_id) = inbox.connected().await?;
    inbox.event("welcome").await?;
    admin_inbox.event("admin-welcome").await?;

    socket.emit("kick-all", &()).map_err(text("emit"))?;
    for inbox in [&mut inbox, &mut admin_inbox] {
        let reason = inbox.disconnected().await?;
        same(reason.clone(), DisconnectReason::ServerDisconnect, "reason")?;
        same(reason.will_reconnect(), false, "no reconnection")?;
    }
    // Stays away: several reconnection delays pass without an attempt.
    Browser
        .sleep_until(Instant::now() + Duration::from_millis(600))
        .await;
    let seen = events.lock().map_err(text("events"))?.clone();
    if seen
        .iter()
        .any(|event| matches!(event, ManagerEvent::ReconnectAttempt(_)))
    {
        return Err(format!("reconnected after being sent away: {seen:?}"));
    }
    same(
        (socket.connected(), admin.connected()),
        (false, false),
        "connected",
    )?;
    within("connect again", socket.connect())
        .await?
        .map_err(text("connect again"))?;
    let (recovered, id) = inbox.connected().await?;
    same(recovered, false, "recovered after being sent away")?;
    if id == first_id {
        return Err(String::from("the same id after being sent away"));
    }
    socket.disconnect();
    Ok(String::from(
        "sent away, stayed away, came back as a new session",
    ))
}

/// A server that stops reading (the harness freezes the connection): the
/// client's emits pile up in bounded buffers (the browser's send buffer up
/// to the link's limit, then the client's own) and fail with `BufferFull`
/// instead of growing without end; once the connection thaws, everything
/// queued goes out and the socket still answers.
///
/// After the thaw the client's PONG comes behind megabytes (a debug build
/// beside other browser tests on two cores took up to 8 s to read them):
/// the servers get a `pingTimeout` of 6 s from `wasm-client.mjs`, and ours
/// does not count the time it held the client against it.
pub async fn backpressure(transports: Transports, transport: &str) -> Result<String, String> {
    const MOST: usize = 50_000;
    const CHUNK: usize = 4096;
    let name = format!("backpressure-{transport}");
    let socket = client::io(Browser, "/", options(transports, &name)?).map_err(text("io"))?;
    let mut inbox = Inbox::attach(&socket);
    within("connect", socket.connect())
        .await?
        .map_err(text("connect"))?;
    let welcome = inbox.event("welcome").await?;
    if transport == "upgrade" && welcome[0]["transport"] == json!("polling") {
        inbox.event("upgraded").await?;
    }
    harness("freeze").await?;
    let frozen = Instant::now();
    let chunk = "x".repeat(CHUNK);
    let mut sent = 0;
    let outcome = loop {
        match socket.emit("noise", &chunk) {
            Ok(()) => sent += 1,
            Err(error) => break Err(error),
        }
        if sent == MOST {
            break Ok(());
        }
        if sent % 100 == 0 {
            // Lets the driver hand frames to the browser.
            Browser.sleep_until(Instant::now()).await;
        }
    };
    harness("thaw").await?;
    let frozen = frozen.elapsed();
    match outcome {
        Err(socketio::client::EmitError::BufferFull) => {}
        Err(error) => return Err(format!("after {sent} emits: {error}")),
        Ok(()) => {
            return Err(format!(
                "{MOST} emits of 4 KiB to a frozen server, none refused"
            ))
        }
    }
    // Everything queued drains (the buffers take emits again), then the
    // socket answers.
    let drained = Instant::now();
    let answer = loop {
        let asked = socket.emit_with_ack(
            "echo-ack",
            Payload::single(&"after").map_err(text("payload"))?,
            Some(Duration::from_secs(30)),
        );
        match within("an ack after the thaw", asked).await? {
            Err(AckError::Emit(socketio::client::EmitError::BufferFull))
                if drained.elapsed() < Duration::from_secs(30) =>
            {
                Browser
                    .sleep_until(Instant::now() + Duration::from_millis(50))
                    .await;
            }
            answer => break answer.map_err(text("ack after the thaw"))?,
        }
    };
    same(
        answer.first::<String>().map_err(text("answer"))?,
        String::from("after"),
        "the answer",
    )?;
    socket.disconnect();
    Ok(format!(
        "{sent} emits of 4 KiB taken in a freeze of {frozen:?}, then BufferFull; drained in {:?}",
        drained.elapsed()
    ))
}
