//! What the admin namespace is told, in Node's shapes: the notices
//! (`socket_connected`, `room_joined`, `event_received`, …) and the JSON
//! of a socket. Notices are made where things happen (often synchronously,
//! under a connection's task) and go out in order through one
//! [`Outbox`] task, so nothing that happens waits for the admin clients.

use std::time::SystemTime;

use futures_channel::mpsc;
use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use socketio::adapter::node_handshake;
use socketio::{NamespaceRef, Payload, RemoteSocket, SocketRef};

/// How many notices may wait for the admin namespace; beyond, new ones are
/// dropped (and counted in the log) rather than queued without bound.
const OUTBOX_CAPACITY: usize = 4096;

/// A date as JavaScript's `JSON.stringify(new Date())` writes it.
pub(crate) fn js_date(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// One notice for the admin namespace: an event and its arguments.
pub(crate) struct Notice {
    event: &'static str,
    payload: Payload,
}

impl Notice {
    /// A notice whose arguments serialize to a JSON array.
    pub(crate) fn new(event: &'static str, args: &impl serde::Serialize) -> Option<Notice> {
        match Payload::args(args) {
            Ok(payload) => Some(Notice { event, payload }),
            Err(error) => {
                tracing::debug!(event, %error, "an admin notice could not be encoded");
                None
            }
        }
    }

    /// `event_received` / `event_sent`: `(nsp, id, [event, ...args],
    /// date)`, the event's binary attachments kept (their placeholders
    /// keep their numbers: the attachments are the same, in order).
    pub(crate) fn event(
        kind: &'static str,
        nsp: &str,
        id: &str,
        event: &str,
        args: &Payload,
    ) -> Option<Notice> {
        // `[` + the event name + the arguments' array without its `[`.
        let rest = args.args_json().strip_prefix('[')?;
        let name = serde_json::to_string(event).ok()?;
        let sep = if rest.starts_with(']') { "" } else { "," };
        let nested = format!("[{name}{sep}{rest}");
        let nested: &RawValue = serde_json::from_str(&nested).ok()?;
        let date = js_date(SystemTime::now());
        let json = serde_json::to_string(&(nsp, id, nested, date)).ok()?;
        Some(Notice {
            event: kind,
            payload: Payload::from_raw(json.into(), args.attachments().to_vec()),
        })
    }
}

/// The sending half: cheap to clone, never waits.
#[derive(Clone)]
pub(crate) struct Outbox {
    sender: mpsc::Sender<Notice>,
}

impl Outbox {
    /// An outbox and the task that empties it into `admin`, in order.
    pub(crate) fn new(admin: NamespaceRef) -> (Outbox, impl std::future::Future<Output = ()>) {
        let (sender, mut receiver) = mpsc::channel::<Notice>(OUTBOX_CAPACITY);
        let task = async move {
            while let Some(notice) = receiver.next().await {
                if let Err(error) = admin
                    .broadcast()
                    .emit_payload(notice.event, notice.payload)
                    .await
                {
                    tracing::debug!(event = notice.event, %error, "an admin notice was not delivered");
                }
            }
        };
        (Outbox { sender }, task)
    }

    /// Whether the task that delivers notices has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Queues a notice; a full outbox drops it.
    pub(crate) fn send(&self, notice: Option<Notice>) {
        let Some(notice) = notice else { return };
        if let Err(error) = self.sender.clone().try_send(notice) {
            if error.is_full() {
                tracing::warn!(
                    event = error.into_inner().event,
                    "the admin outbox is full; a notice was dropped"
                );
            }
        }
    }
}

/// The key under which Node's instrumentation keeps what it knows of a
/// socket in `socket.data` (so that other servers of a cluster see it).
pub(crate) const ADMIN_KEY: &str = "_admin";

/// `socket.data` without the instrumentation's key.
pub(crate) fn visible_data(data: &Value) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| key.as_str() != ADMIN_KEY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        // Node's `serializeData` spreads the value into an object.
        _ => Value::Object(Map::new()),
    }
}

/// The first 12 characters of the connection's id: the UI groups a
/// client's sockets by it (Node's `clientId`).
pub(crate) fn client_id(socket: &SocketRef) -> String {
    socket.engine_id().as_str().chars().take(12).collect()
}

/// Puts Node's `_admin` record (`clientId`, `transport`) in the socket's
/// data, as Node's instrumentation does, so that admin clients of other
/// servers see them; data that is not an object (or null) is left alone.
pub(crate) fn tag_data(socket: &SocketRef) {
    let mut data = socket.data();
    let record = json!({ "clientId": client_id(socket), "transport": socket.transport() });
    match &mut data {
        Value::Object(map) => {
            map.insert(ADMIN_KEY.to_owned(), record);
        }
        Value::Null => data = json!({ ADMIN_KEY: record }),
        _ => return,
    }
    socket.set_data(data);
}

/// A local socket as Node's `serialize` writes it.
pub(crate) fn serialize_local(socket: &SocketRef) -> Value {
    let handshake = node_handshake(socket);
    let rooms: Vec<String> = socket.rooms();
    socket_json(
        socket.id().as_str(),
        Value::String(client_id(socket)),
        Value::String(socket.transport().to_owned()),
        socket.namespace(),
        &socket.data(),
        &handshake,
        rooms,
    )
}

/// A socket fetched from the cluster: a local one from itself, a remote
/// one from what its server reported (its `_admin` record, if it has one).
pub(crate) fn serialize_remote(socket: &RemoteSocket) -> Value {
    if let Some(local) = &socket.local {
        return serialize_local(local);
    }
    let admin = socket.data.get(ADMIN_KEY);
    let field = |name: &str| {
        admin
            .and_then(|a| a.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    socket_json(
        socket.id.as_str(),
        field("clientId"),
        field("transport"),
        &socket.nsp,
        &socket.data,
        &socket.handshake,
        socket.rooms.iter().map(|r| r.to_string()).collect(),
    )
}

fn socket_json(
    id: &str,
    client_id: Value,
    transport: Value,
    nsp: &str,
    data: &Value,
    handshake: &Value,
    rooms: Vec<String>,
) -> Value {
    let header = |name: &str| handshake.get("headers").and_then(|h| h.get(name)).cloned();
    // Node: `cf-connecting-ip`, then `x-forwarded-for`, then the peer.
    let address = header("cf-connecting-ip")
        .or_else(|| header("x-forwarded-for"))
        .or_else(|| handshake.get("address").cloned())
        .unwrap_or(Value::Null);
    let take = |name: &str| handshake.get(name).cloned().unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert("id".into(), id.into());
    // Node leaves `undefined` fields out of the JSON.
    if !client_id.is_null() {
        out.insert("clientId".into(), client_id);
    }
    if !transport.is_null() {
        out.insert("transport".into(), transport);
    }
    out.insert("nsp".into(), nsp.into());
    out.insert("data".into(), visible_data(data));
    let mut shake = Map::new();
    shake.insert("address".into(), address);
    for name in [
        "headers", "query", "issued", "secure", "time", "url", "xdomain",
    ] {
        let value = take(name);
        if !value.is_null() {
            shake.insert(name.into(), value);
        }
    }
    out.insert("handshake".into(), Value::Object(shake));
    out.insert("rooms".into(), rooms.into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_javascripts_json() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_601_000_123);
        assert_eq!(js_date(at), "2026-12-06T23:50:00.123Z");
    }

    #[test]
    fn event_notices_nest_the_arguments_and_keep_attachments() {
        let args = Payload::from_raw(
            r#"[1,{"_placeholder":true,"num":0}]"#.into(),
            vec![bytes::Bytes::from_static(b"\x01")],
        );
        let notice = Notice::event("event_received", "/", "abc", "hello", &args).unwrap();
        let (nsp, id, nested, _date): (String, String, Value, String) =
            serde_json::from_str(notice.payload.args_json()).unwrap();
        assert_eq!((nsp.as_str(), id.as_str()), ("/", "abc"));
        assert_eq!(
            nested,
            json!(["hello", 1, {"_placeholder": true, "num": 0}])
        );
        assert_eq!(notice.payload.attachments().len(), 1);
        let empty = Notice::event("event_sent", "/", "abc", "ping", &Payload::empty()).unwrap();
        assert!(empty
            .payload
            .args_json()
            .starts_with(r#"["/","abc",["ping"],"#));
    }

    #[test]
    fn the_admin_record_is_not_shown() {
        let data = json!({ "_admin": { "clientId": "x" }, "user": 1 });
        assert_eq!(visible_data(&data), json!({ "user": 1 }));
        assert_eq!(visible_data(&Value::Null), json!({}));
    }
}
