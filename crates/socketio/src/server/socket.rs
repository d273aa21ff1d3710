//! The application's view of one socket: its identity, event handlers,
//! emits and ack answers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use engineio_proto::{Sid, Str};
use futures_channel::mpsc;
use futures_util::SinkExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use socketio_proto::{AckId, Packet, PacketKind};

use super::broadcast::BroadcastOperator;
use super::machine::{AckError, SioCommand};
use super::NamespaceState;
use crate::engine::session::{Command, Input};
use socketio_proto::rooms::Room;

/// The arguments of an event or ack: a JSON array as text (arguments after
/// the event name, unparsed and byte-identical to what was sent) and the
/// binary attachments its placeholders refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    args: Str,
    attachments: Vec<Bytes>,
}

/// Why a payload could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The JSON does not match the requested type.
    #[error("invalid payload: {0}")]
    Json(#[from] serde_json::Error),
}

impl Payload {
    /// A payload from a JSON array of arguments and its attachments.
    pub fn from_raw(args: Str, attachments: Vec<Bytes>) -> Payload {
        Payload { args, attachments }
    }

    /// A payload of one argument.
    pub fn single<T: Serialize + ?Sized>(value: &T) -> Result<Payload, PayloadError> {
        let json = serde_json::to_string(value)?;
        Ok(Payload {
            args: Str::from(format!("[{json}]")),
            attachments: Vec::new(),
        })
    }

    /// The arguments as a JSON array.
    pub fn args_json(&self) -> &str {
        &self.args
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Deserializes the whole argument array (use a tuple for several
    /// arguments, a `Vec` for any number).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        Ok(serde_json::from_str(&self.args)?)
    }

    /// Deserializes the first argument.
    pub fn first<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        let (first,): (T,) = match serde_json::from_str::<Vec<&RawValue>>(&self.args)?.first() {
            Some(raw) => (serde_json::from_str(raw.get())?,),
            None => (serde_json::from_str("null")?,),
        };
        Ok(first)
    }

    /// Splits an event's data `["name", ...args]` into its name and payload.
    pub(crate) fn split_event(data: &str, attachments: Vec<Bytes>) -> Option<(String, Payload)> {
        let elements: Vec<&RawValue> = serde_json::from_str(data).ok()?;
        let (name, args) = elements.split_first()?;
        let name: String = match serde_json::from_str::<serde_json::Value>(name.get()).ok()? {
            serde_json::Value::String(name) => name,
            serde_json::Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((
            name,
            Payload::from_raw(Str::from(join_array(args)), attachments),
        ))
    }

    /// The data of an event `["name", ...args]` carrying this payload.
    pub(crate) fn event_data(&self, event: &str) -> Result<Str, PayloadError> {
        let name = serde_json::to_string(event)?;
        let inner = self.args.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or("")
            .trim();
        Ok(Str::from(if inner.is_empty() {
            format!("[{name}]")
        } else {
            format!("[{name},{inner}]")
        }))
    }
}

fn join_array(elements: &[&RawValue]) -> String {
    let mut out = String::from("[");
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(element.get());
    }
    out.push(']');
    out
}

type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub(crate) type EventHandler =
    Arc<dyn Fn(SocketRef, Payload, Option<AckSender>) -> HandlerFuture + Send + Sync>;

/// The socket is gone (disconnected, or its connection closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("socket disconnected")]
pub struct Disconnected;

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The arguments could not be encoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The socket is gone.
    #[error(transparent)]
    Disconnected(#[from] Disconnected),
}

pub(crate) type AnyHandler = Arc<dyn Fn(SocketRef, String, Payload) -> HandlerFuture + Send + Sync>;
pub(crate) type DisconnectHandler =
    Arc<dyn Fn(SocketRef, &'static str) -> HandlerFuture + Send + Sync>;

pub(crate) struct SocketInner {
    pub(crate) nsp: Str,
    pub(crate) id: Sid,
    /// The private id, with connection state recovery on.
    pub(crate) pid: Option<Str>,
    /// Whether this socket took back a previous session.
    pub(crate) recovered: bool,
    pub(crate) auth: Str,
    /// The application's data for this socket (Node's `socket.data`).
    pub(crate) data: Mutex<serde_json::Value>,
    pub(crate) handshake: Arc<crate::handshake::Handshake>,
    pub(crate) commands: mpsc::Sender<Input>,
    pub(crate) handlers: Mutex<HashMap<String, Vec<EventHandler>>>,
    pub(crate) any_handlers: Mutex<Vec<AnyHandler>>,
    pub(crate) disconnecting_handlers: Mutex<Vec<DisconnectHandler>>,
    pub(crate) disconnect_handlers: Mutex<Vec<DisconnectHandler>>,
    /// Weak: the namespace holds its sockets, not the other way round.
    pub(crate) namespace: Weak<NamespaceState>,
}

/// A handle on one socket (a client's connection to one namespace). Cheap
/// to clone.
#[derive(Clone)]
pub struct SocketRef {
    pub(crate) inner: Arc<SocketInner>,
}

impl SocketRef {
    /// The socket id.
    pub fn id(&self) -> Sid {
        self.inner.id
    }

    /// Whether connection state recovery restored this socket's previous
    /// session (id, rooms, missed events).
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// The application's data for this socket (Node's `socket.data`):
    /// `null` until set; kept across connection state recovery.
    pub fn data(&self) -> serde_json::Value {
        super::lock(&self.inner.data).clone()
    }

    /// Replaces the socket's data.
    pub fn set_data(&self, data: serde_json::Value) {
        *super::lock(&self.inner.data) = data;
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.nsp
    }

    /// The request that opened the connection: headers, query, address.
    pub fn handshake(&self) -> &crate::handshake::Handshake {
        &self.inner.handshake
    }

    /// The auth object the client sent with CONNECT (`{}` when none).
    pub fn auth(&self) -> &str {
        &self.inner.auth
    }

    /// Adds a listener of `event` (several may listen; they run in the
    /// order they were added). Events of one socket are handled one at a
    /// time, in order. When the client awaits an ack, every listener gets
    /// the [`AckSender`]; the first answer is sent, later ones are ignored.
    pub fn on<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(SocketRef, Payload, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: EventHandler =
            Arc::new(move |socket, payload, ack| Box::pin(handler(socket, payload, ack)));
        super::lock(&self.inner.handlers)
            .entry(event.to_owned())
            .or_default()
            .push(handler);
    }

    /// Adds a listener of every event (Node's `onAny`), run before the
    /// event's own listeners with the event name.
    pub fn on_any<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, String, Payload) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: AnyHandler =
            Arc::new(move |socket, event, payload| Box::pin(handler(socket, event, payload)));
        super::lock(&self.inner.any_handlers).push(handler);
    }

    /// Runs `handler` when the socket disconnects, with Node's reason string
    /// (`"client namespace disconnect"`, `"transport close"`, …).
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, &'static str) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: DisconnectHandler =
            Arc::new(move |socket, reason| Box::pin(handler(socket, reason)));
        super::lock(&self.inner.disconnect_handlers).push(handler);
    }

    /// Runs `handler` when the socket is about to disconnect, while it is
    /// still in its rooms (Node's `disconnecting`), with the reason.
    pub fn on_disconnecting<F, Fut>(&self, handler: F)
    where
        F: Fn(SocketRef, &'static str) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: DisconnectHandler =
            Arc::new(move |socket, reason| Box::pin(handler(socket, reason)));
        super::lock(&self.inner.disconnecting_handlers).push(handler);
    }

    /// Joins `room` (no-op if already in it, or once disconnected).
    pub fn join(&self, room: &str) {
        if let Some(namespace) = self.inner.namespace.upgrade() {
            let mut members = namespace.members();
            if members.sockets.contains_key(&self.inner.id) {
                members.rooms.join(self.inner.id, Room::from(room));
            }
        }
    }

    /// Leaves `room`.
    pub fn leave(&self, room: &str) {
        if let Some(namespace) = self.inner.namespace.upgrade() {
            namespace
                .members()
                .rooms
                .leave(&self.inner.id, &Room::from(room));
        }
    }

    /// The rooms this socket is in (its own id's room included, as in Node).
    pub fn rooms(&self) -> Vec<String> {
        match self.inner.namespace.upgrade() {
            Some(namespace) => namespace
                .members()
                .rooms
                .rooms_of(&self.inner.id)
                .map(|room| room.to_string())
                .collect(),
            None => Vec::new(),
        }
    }

    /// A broadcast to the sockets in `room`, this one excluded (Node's
    /// `socket.to(room)`).
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// A broadcast to every socket of the namespace but this one (Node's
    /// `socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOperator {
        let namespace = self
            .inner
            .namespace
            .upgrade()
            .unwrap_or_else(|| Arc::new(NamespaceState::detached()));
        // Node excludes the sender through the room named by its id.
        BroadcastOperator::new(namespace).except(self.inner.id.as_str())
    }

    /// Emits `event` with one argument.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        value: &T,
    ) -> Result<(), EmitError> {
        self.emit_payload(event, Payload::single(value)?).await
    }

    /// Emits `event` with a payload (several arguments, binary attachments).
    pub async fn emit_payload(&self, event: &str, payload: Payload) -> Result<(), EmitError> {
        let mut data = payload.event_data(event)?;
        if let Some(namespace) = self.inner.namespace.upgrade() {
            if let Some(recovery) = &namespace.recovery {
                let own_room = [Room::from(self.inner.id.as_str())];
                data = recovery.record(data, &payload.attachments, &own_room, &[]);
            }
        }
        let packet = Packet {
            attachments: payload.attachments,
            ..Packet::new(PacketKind::Event, self.inner.nsp.clone(), Some(data))
        };
        self.command(SioCommand::Emit {
            nsp: self.inner.nsp.clone(),
            packet: packet.encode(),
        })
        .await?;
        Ok(())
    }

    /// Emits `event` and waits for the client's acknowledgement, at most
    /// `timeout` (`None`: as long as the socket lives).
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: Payload,
        timeout: Option<std::time::Duration>,
    ) -> Result<Payload, AckError> {
        let data = payload
            .event_data(event)
            .map_err(|_| AckError::Disconnected)?;
        let packet = Packet {
            attachments: payload.attachments,
            ..Packet::new(PacketKind::Event, self.inner.nsp.clone(), Some(data))
        };
        let (reply, answer) = futures_channel::oneshot::channel();
        self.command(SioCommand::EmitWithAck {
            packet,
            timeout,
            reply,
        })
        .await
        .map_err(|_| AckError::Disconnected)?;
        answer.await.unwrap_or(Err(AckError::Disconnected))
    }

    /// Disconnects this socket from its namespace.
    pub async fn disconnect(&self) -> Result<(), Disconnected> {
        self.command(SioCommand::Disconnect {
            nsp: self.inner.nsp.clone(),
        })
        .await
    }

    async fn command(&self, command: SioCommand) -> Result<(), Disconnected> {
        self.inner
            .commands
            .clone()
            .send(Input::Command(Command::Sio(command)))
            .await
            .map_err(|_| Disconnected)
    }

    /// Runs the listeners of one incoming event, in order.
    pub(crate) async fn dispatch(&self, event: String, payload: Payload, ack: Option<AckId>) {
        let any: Vec<AnyHandler> = super::lock(&self.inner.any_handlers).clone();
        for handler in any {
            handler(self.clone(), event.clone(), payload.clone()).await;
        }
        let listeners: Vec<EventHandler> = super::lock(&self.inner.handlers)
            .get(&event)
            .cloned()
            .unwrap_or_default();
        let ack = ack.map(|id| AckSender {
            socket: self.clone(),
            id,
            sent: Arc::new(AtomicBool::new(false)),
        });
        for handler in listeners {
            handler(self.clone(), payload.clone(), ack.clone()).await;
        }
    }

    /// The socket left its namespace: unregister it, then run its
    /// disconnect handlers.
    pub(crate) async fn left(&self, reason: &'static str, recoverable: bool) {
        let disconnecting: Vec<DisconnectHandler> =
            std::mem::take(&mut *super::lock(&self.inner.disconnecting_handlers));
        for handler in disconnecting {
            handler(self.clone(), reason).await;
        }
        if let Some(namespace) = self.inner.namespace.upgrade() {
            if let (Some(recovery), Some(pid), true) =
                (&namespace.recovery, &self.inner.pid, recoverable)
            {
                let rooms = self.rooms().into_iter().map(Room::from).collect();
                recovery.persist(pid.clone(), self.inner.id, rooms, self.data());
            }
            namespace.remove(self.inner.id);
        }
        let handlers: Vec<DisconnectHandler> =
            std::mem::take(&mut *super::lock(&self.inner.disconnect_handlers));
        for handler in handlers {
            handler(self.clone(), reason).await;
        }
        // Drop the event handlers too: they may hold clones of this socket.
        super::lock(&self.inner.handlers).clear();
        super::lock(&self.inner.any_handlers).clear();
    }
}

/// Answers an event whose sender awaits an acknowledgement. Answer once.
#[derive(Clone)]
pub struct AckSender {
    socket: SocketRef,
    id: AckId,
    /// Shared by the clones handed to several listeners: one answer only.
    sent: Arc<AtomicBool>,
}

impl AckSender {
    /// Sends the acknowledgement with `payload` as its arguments.
    pub async fn send(self, payload: Payload) -> Result<(), Disconnected> {
        if self.sent.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.socket
            .command(SioCommand::Ack {
                nsp: self.socket.inner.nsp.clone(),
                id: self.id,
                data: payload.args,
                attachments: payload.attachments,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_into_name_and_raw_arguments() {
        let (name, payload) = Payload::split_event(
            r#"["message",1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#,
            vec![],
        )
        .unwrap();
        assert_eq!(name, "message");
        assert_eq!(
            payload.args_json(),
            r#"[1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#
        );
        assert_eq!(
            payload.event_data("message-back").unwrap().as_str(),
            r#"["message-back",1,"2",{"3":[true],"a":{"z":1,"b":2}}]"#
        );
        let (name, payload) = Payload::split_event(r#"["only"]"#, vec![]).unwrap();
        assert_eq!((name.as_str(), payload.args_json()), ("only", "[]"));
        assert_eq!(payload.event_data("x").unwrap().as_str(), r#"["x"]"#);
        assert!(Payload::split_event("[]", vec![]).is_none());
        assert!(Payload::split_event("[null]", vec![]).is_none());
    }

    #[test]
    fn payloads_parse_into_types() {
        let payload = Payload::from_raw(Str::from(r#"[1,"two"]"#), vec![]);
        let (a, b): (u32, String) = payload.parse().unwrap();
        assert_eq!((a, b.as_str()), (1, "two"));
        assert_eq!(payload.first::<u32>().unwrap(), 1);
        assert!(payload.first::<String>().is_err());
        assert_eq!(Payload::single(&"x").unwrap().args_json(), r#"["x"]"#);
    }
}
