//! The messages of Node's sharded Redis adapter (`createShardedAdapter` of
//! `@socket.io/redis-adapter` 8.x, on socket.io-adapter's `ClusterAdapter`),
//! byte for byte.
//!
//! Every message is an envelope `{type, data, uid, nsp}`, published with
//! `SPUBLISH`: on the namespace's channel `key#nsp#`, on a room's channel
//! `key#nsp#room#` (a broadcast without acks to exactly one room, in the
//! dynamic subscription modes), or, for responses, on the requester's
//! channel `key#nsp#uid#`. It is JSON, unless it is one of the types that
//! may carry binary data (3, 8, 9, 10, 12) and does: then the same tree is
//! msgpack, binary data as `bin`. A receiver tells them apart by the first
//! byte: `{` is JSON.
//!
//! Decoded messages reuse the classic format's [`Request`] and [`Response`]
//! (the operations are the same), so one adapter serves both.

use bytes::Bytes;
use serde_json::{json, Map, Value as Json};
use socketio::adapter::{BroadcastOptions, Packet, PacketKind, Payload, Room, Str};

use crate::codec::{self, CodecError};
use crate::wire::{self, Broadcast, Request, Response, SocketDetails};

/// The message types (socket.io-adapter's `MessageType`).
pub mod kind {
    /// A heartbeat adapter announcing itself (not sent by the sharded adapter).
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// A heartbeat (not sent by the sharded adapter).
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast; with a `requestId`, one whose recipients answer with acks.
    pub const BROADCAST: u64 = 3;
    /// Selected sockets join rooms.
    pub const SOCKETS_JOIN: u64 = 4;
    /// Selected sockets leave rooms.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// Selected sockets disconnect.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// Snapshots of the selected sockets.
    pub const FETCH_SOCKETS: u64 = 7;
    /// The answer to [`FETCH_SOCKETS`].
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// A server-side event.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// The answer to a [`SERVER_SIDE_EMIT`] with a `requestId`.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many sockets a server sent a broadcast with acks to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One socket's ack to a broadcast.
    pub const BROADCAST_ACK: u64 = 12;
    /// A heartbeat adapter leaving (not sent by the sharded adapter).
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// The channels of one namespace's sharded adapter.
#[derive(Debug, Clone)]
pub struct Channels {
    /// `key#nsp#`: every message but one-room broadcasts and responses.
    pub main: String,
    /// `key#nsp#uid#`: responses to this adapter's requests.
    pub own_response: String,
}

impl Channels {
    /// The channels of namespace `nsp` under prefix `key`, for adapter `uid`.
    pub fn new(key: &str, nsp: &str, uid: &str) -> Channels {
        let main = format!("{key}#{nsp}#");
        let own_response = format!("{main}{uid}#");
        Channels { main, own_response }
    }

    /// `key#nsp#room#`: broadcasts to `room` alone.
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// `key#nsp#uid#`: where responses to adapter `requester` go.
    pub fn response_for(&self, requester: &str) -> String {
        self.room(requester)
    }
}

/// Which rooms get a channel of their own (Node's `subscriptionMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubscriptionMode {
    /// Two channels per namespace and server, whatever the rooms: every
    /// server hears every broadcast.
    Static,
    /// Also one channel per public room (a room that is not a socket's
    /// own): a server hears a broadcast to one public room only while one
    /// of its sockets is in it. Node's default.
    #[default]
    Dynamic,
    /// One channel per room, sockets' own rooms included.
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Whether a room that exists on this server gets a channel; `private`:
    /// it is the id of one of this server's sockets (Node's
    /// `shouldUseASeparateNamespace`).
    pub fn subscribes_room(self, private: bool) -> bool {
        match self {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !private,
            SubscriptionMode::DynamicPrivate => true,
        }
    }

    /// Where a broadcast without acks to `opts` is published: the room's
    /// channel when it targets exactly one room that (by Node's
    /// `looksLikeASocketId`, 20 characters) has one.
    pub fn broadcast_channel(self, channels: &Channels, opts: &BroadcastOptions) -> String {
        match (self, opts.rooms.as_slice()) {
            (SubscriptionMode::Dynamic, [room]) if room.as_str().len() != 20 => {
                channels.room(room.as_str())
            }
            (SubscriptionMode::DynamicPrivate, [room]) => channels.room(room.as_str()),
            _ => channels.main.clone(),
        }
    }
}

/// What a sharded message carries.
#[derive(Debug)]
pub enum Message {
    /// A broadcast without acks.
    Broadcast(Broadcast),
    /// A request (a broadcast with acks included).
    Request(Request),
    /// A response to a request.
    Response(Response),
    /// A heartbeat adapter's bookkeeping (types 1, 2, 13), or a type this
    /// version does not know: nothing to do.
    Other(u64),
}

/// A decoded envelope.
#[derive(Debug)]
pub struct Envelope {
    /// The sending adapter (`emitter` for the Redis emitter).
    pub uid: String,
    /// The namespace it is about.
    pub nsp: String,
    /// Its content.
    pub message: Message,
}

/// `{type, data, uid, nsp}` as JSON: the types that never carry binary.
fn json_envelope(kind: u64, data: Json, uid: &str, nsp: &str) -> Vec<u8> {
    json!({ "type": kind, "data": data, "uid": uid, "nsp": nsp })
        .to_string()
        .into_bytes()
}

/// `{type, data, uid, nsp}`: JSON, or msgpack when `data` carries
/// attachments (its placeholders become `bin`); an error when a
/// placeholder names no attachment.
fn envelope(
    kind: u64,
    data: Json,
    attachments: &[Bytes],
    uid: &str,
    nsp: &str,
) -> Result<Vec<u8>, CodecError> {
    if attachments.is_empty() {
        return Ok(json_envelope(kind, data, uid, nsp));
    }
    let message = json!({ "type": kind, "data": data, "uid": uid, "nsp": nsp });
    Ok(codec::encode(&codec::to_msgpack(&message, attachments)?))
}

/// `{rooms, except, flags}`, as `encodeOptions` writes them.
fn opts_json(opts: &BroadcastOptions) -> Json {
    let mut flags = Map::new();
    if opts.flags.volatile {
        flags.insert("volatile".into(), Json::Bool(true));
    }
    // Node writes the flag only when it was set; unset means compressed.
    if !opts.flags.compress {
        flags.insert("compress".into(), Json::Bool(false));
    }
    if let Some(timeout) = opts.flags.timeout {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        flags.insert("timeout".into(), Json::from(millis));
    }
    json!({ "rooms": names(&opts.rooms), "except": names(&opts.except), "flags": flags })
}

fn names(rooms: &[Room]) -> Vec<&str> {
    rooms.iter().map(|r| r.as_str()).collect()
}

/// `{type: 2, data}`: the packet object a broadcast carries (Node's
/// `BroadcastOperator` leaves the namespace out).
fn packet_json(packet: &Packet) -> Result<Json, CodecError> {
    let data = match &packet.data {
        Some(args) => serde_json::from_str(args)?,
        None => Json::Array(Vec::new()),
    };
    Ok(json!({ "type": 2, "data": data }))
}

/// Type 3 without `requestId`.
pub fn broadcast(
    uid: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, CodecError> {
    broadcast_message(uid, None, packet, opts)
}

/// Type 3 with `requestId`: the recipients answer with type 11, then 12s.
pub fn broadcast_with_ack_request(
    uid: &str,
    request_id: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, CodecError> {
    broadcast_message(uid, Some(request_id), packet, opts)
}

/// Type 3: `{packet, requestId?, opts}` in the packet's namespace.
fn broadcast_message(
    uid: &str,
    request_id: Option<&str>,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Vec<u8>, CodecError> {
    let data = broadcast_data(request_id, packet, opts)?;
    let (attachments, nsp) = (&packet.attachments, packet.nsp.as_str());
    envelope(kind::BROADCAST, data, attachments, uid, nsp)
}

/// The data of a type 3 message, `{packet, requestId?, opts}`, binary
/// arguments as placeholders into `packet.attachments`.
pub fn broadcast_data(
    request_id: Option<&str>,
    packet: &Packet,
    opts: &BroadcastOptions,
) -> Result<Json, CodecError> {
    let mut data = Map::new();
    data.insert("packet".into(), packet_json(packet)?);
    if let Some(request_id) = request_id {
        data.insert("requestId".into(), Json::from(request_id));
    }
    data.insert("opts".into(), opts_json(opts));
    Ok(Json::Object(data))
}

/// Types 4 and 5.
pub fn rooms_request(
    uid: &str,
    nsp: &str,
    join: bool,
    opts: &BroadcastOptions,
    rooms: &[Room],
) -> Vec<u8> {
    let kind = if join {
        kind::SOCKETS_JOIN
    } else {
        kind::SOCKETS_LEAVE
    };
    let rooms: Vec<&str> = rooms.iter().map(|r| r.as_str()).collect();
    let data = json!({ "opts": opts_json(opts), "rooms": rooms });
    json_envelope(kind, data, uid, nsp)
}

/// Type 6.
pub fn disconnect_request(uid: &str, nsp: &str, opts: &BroadcastOptions, close: bool) -> Vec<u8> {
    let data = json!({ "opts": opts_json(opts), "close": close });
    json_envelope(kind::DISCONNECT_SOCKETS, data, uid, nsp)
}

/// Type 7.
pub fn fetch_request(uid: &str, nsp: &str, request_id: &str, opts: &BroadcastOptions) -> Vec<u8> {
    let data = json!({ "opts": opts_json(opts), "requestId": request_id });
    json_envelope(kind::FETCH_SOCKETS, data, uid, nsp)
}

/// Type 9: `packet` is `[event, ...args]`, binary arguments as `bin`.
pub fn server_side_emit_request(
    uid: &str,
    nsp: &str,
    request_id: Option<&str>,
    event: &str,
    args: &Payload,
) -> Result<Vec<u8>, CodecError> {
    let Json::Array(args_list) = serde_json::from_str::<Json>(args.args_json())? else {
        return Err(CodecError::Shape("arguments are not an array"));
    };
    let mut packet = vec![Json::from(event)];
    packet.extend(args_list);
    let data = match request_id {
        Some(id) => json!({ "requestId": id, "packet": packet }),
        None => json!({ "packet": packet }),
    };
    envelope(kind::SERVER_SIDE_EMIT, data, args.attachments(), uid, nsp)
}

/// Type 8 (binary in handshakes or `data` as Node's JSON form of a
/// `Buffer`, which is what it is on our side).
pub fn sockets_response(
    uid: &str,
    nsp: &str,
    request_id: &str,
    sockets: &[SocketDetails],
) -> Vec<u8> {
    let data = json!({ "requestId": request_id, "sockets": wire::sockets_json(sockets) });
    json_envelope(kind::FETCH_SOCKETS_RESPONSE, data, uid, nsp)
}

/// The first argument of `answer` and the attachments it may refer to.
fn first_arg(answer: &Payload) -> (Json, &[Bytes]) {
    let first = serde_json::from_str::<Json>(answer.args_json())
        .ok()
        .and_then(|args| args.get(0).cloned())
        .unwrap_or(Json::Null);
    (first, answer.attachments())
}

/// Type 10: the first argument of the handler's answer.
pub fn server_side_emit_response(
    uid: &str,
    nsp: &str,
    request_id: &str,
    answer: &Payload,
) -> Result<Vec<u8>, CodecError> {
    let (first, attachments) = first_arg(answer);
    let data = json!({ "requestId": request_id, "packet": first });
    envelope(kind::SERVER_SIDE_EMIT_RESPONSE, data, attachments, uid, nsp)
}

/// Type 11.
pub fn client_count_response(uid: &str, nsp: &str, request_id: &str, count: usize) -> Vec<u8> {
    let data = json!({ "requestId": request_id, "clientCount": count });
    json_envelope(kind::BROADCAST_CLIENT_COUNT, data, uid, nsp)
}

/// Type 12: the ack's first argument, plus the answering socket's id (an
/// extra key Node's adapter ignores).
pub fn ack_response(
    uid: &str,
    nsp: &str,
    request_id: &str,
    sid: &str,
    answer: &Payload,
) -> Result<Vec<u8>, CodecError> {
    let (first, attachments) = first_arg(answer);
    let data = json!({ "requestId": request_id, "packet": first, "sid": sid });
    envelope(kind::BROADCAST_ACK, data, attachments, uid, nsp)
}

/// Decodes an envelope, JSON or msgpack.
pub fn decode(bytes: &[u8]) -> Result<Envelope, CodecError> {
    let mut attachments = Vec::new();
    let value = if bytes.first() == Some(&b'{') {
        serde_json::from_slice::<Json>(bytes)?
    } else {
        codec::to_json(codec::decode(bytes)?, &mut attachments)?
    };
    decode_value(value, attachments)
}

/// Decodes an envelope already read as JSON, its binary data (msgpack
/// `bin`) as placeholders into `attachments`.
pub fn decode_value(value: Json, attachments: Vec<Bytes>) -> Result<Envelope, CodecError> {
    let Json::Object(mut object) = value else {
        return Err(CodecError::Shape("message is not an object"));
    };
    let uid = take_string(&mut object, "uid")?;
    let nsp = take_string(&mut object, "nsp")?;
    let kind = object
        .get("type")
        .and_then(Json::as_u64)
        .ok_or(CodecError::Shape("type"))?;
    let data = match object.remove("data") {
        Some(Json::Object(data)) => data,
        None if matches!(
            kind,
            kind::INITIAL_HEARTBEAT | kind::HEARTBEAT | kind::ADAPTER_CLOSE
        ) =>
        {
            Map::new()
        }
        _ => return Err(CodecError::Shape("data is not an object")),
    };
    let message = message(kind, &uid, &nsp, data, attachments)?;
    Ok(Envelope { uid, nsp, message })
}

fn message(
    kind: u64,
    uid: &str,
    nsp: &str,
    mut data: Map<String, Json>,
    attachments: Vec<Bytes>,
) -> Result<Message, CodecError> {
    let uid = uid.to_owned();
    let opts =
        |data: &Map<String, Json>| wire::opts_from_json(data.get("opts").unwrap_or(&Json::Null));
    Ok(match kind {
        kind::BROADCAST => {
            let opts = opts(&data)?;
            let packet = packet_from_json(data.remove("packet"), nsp, attachments)?;
            match data.get("requestId") {
                None => Message::Broadcast(Broadcast { uid, packet, opts }),
                Some(_) => Message::Request(Request::BroadcastWithAck {
                    uid,
                    request_id: take_string(&mut data, "requestId")?,
                    packet,
                    opts,
                }),
            }
        }
        kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => Message::Request(Request::Rooms {
            uid,
            join: kind == kind::SOCKETS_JOIN,
            opts: opts(&data)?,
            rooms: wire::rooms_from_json(data.get("rooms")),
        }),
        kind::DISCONNECT_SOCKETS => Message::Request(Request::Disconnect {
            uid,
            opts: opts(&data)?,
            close: data.get("close") == Some(&Json::Bool(true)),
        }),
        kind::FETCH_SOCKETS => Message::Request(Request::Fetch {
            uid,
            request_id: take_string(&mut data, "requestId")?,
            opts: opts(&data)?,
        }),
        kind::SERVER_SIDE_EMIT => {
            let request_id = data
                .get("requestId")
                .and_then(Json::as_str)
                .map(str::to_owned);
            let Some(Json::Array(mut packet)) = data.remove("packet") else {
                return Err(CodecError::Shape("server-side emit without a packet"));
            };
            if !matches!(packet.first(), Some(Json::String(_))) {
                return Err(CodecError::Shape("server-side emit without an event name"));
            }
            let Json::String(event) = packet.remove(0) else {
                unreachable!("checked above");
            };
            let args = Json::Array(packet).to_string();
            Message::Request(Request::ServerSideEmit {
                uid,
                request_id,
                event,
                args: Payload::from_raw(Str::from(args), attachments),
            })
        }
        kind::FETCH_SOCKETS_RESPONSE => {
            let request_id = take_string(&mut data, "requestId")?;
            let Some(Json::Array(sockets)) = data.remove("sockets") else {
                return Err(CodecError::Shape("sockets"));
            };
            let sockets = wire::sockets_from_json(sockets, &attachments);
            Message::Response(Response::Sockets {
                request_id,
                sockets,
            })
        }
        kind::SERVER_SIDE_EMIT_RESPONSE | kind::BROADCAST_ACK => {
            let request_id = take_string(&mut data, "requestId")?;
            let first = data.remove("packet").unwrap_or(Json::Null);
            let answer =
                Payload::from_raw(Str::from(Json::Array(vec![first]).to_string()), attachments);
            Message::Response(if kind == kind::BROADCAST_ACK {
                let sid = data.get("sid").and_then(Json::as_str).map(str::to_owned);
                Response::Ack {
                    request_id,
                    answer,
                    sid,
                }
            } else {
                Response::ServerSideEmit { request_id, answer }
            })
        }
        kind::BROADCAST_CLIENT_COUNT => Message::Response(Response::ClientCount {
            request_id: take_string(&mut data, "requestId")?,
            count: data.get("clientCount").and_then(Json::as_u64).unwrap_or(0),
        }),
        other => Message::Other(other),
    })
}

/// The packet object of a broadcast as an EVENT of namespace `nsp`.
fn packet_from_json(
    packet: Option<Json>,
    nsp: &str,
    attachments: Vec<Bytes>,
) -> Result<Packet, CodecError> {
    let Some(Json::Object(mut packet)) = packet else {
        return Err(CodecError::Shape("packet is not an object"));
    };
    match packet.get("type").and_then(Json::as_u64) {
        Some(2 | 5) => {}
        _ => return Err(CodecError::Shape("packet is not an EVENT")),
    }
    let data = match packet.remove("data") {
        Some(data @ Json::Array(_)) => data,
        _ => return Err(CodecError::Shape("packet data is not an array")),
    };
    Ok(Packet {
        attachments,
        ..Packet::new(
            PacketKind::Event,
            Str::from(nsp),
            Some(Str::from(data.to_string())),
        )
    })
}

fn take_string(object: &mut Map<String, Json>, key: &'static str) -> Result<String, CodecError> {
    match object.remove(key) {
        Some(Json::String(s)) => Ok(s),
        _ => Err(CodecError::Shape(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::hex;

    /// Messages captured from two Node servers (socket.io 4.8.4,
    /// @socket.io/redis-adapter 8.3.0, `createShardedAdapter`, dynamic
    /// mode; A's uid `33cd28d6fe04f296`, B's `de263ae3d01b738b`), as
    /// `(channel, payload in hex)`.
    const A: &str = "33cd28d6fe04f296";
    const B: &str = "de263ae3d01b738b";
    /// `io.to("room1").emit("hello", "world", 42)`.
    const TO_ROOM: (&str, &str) = ("socket.io#/#room1#", "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b2268656c6c6f222c22776f726c64222c34325d7d2c226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    /// `io.emit("bin", Buffer.from([1, 2, 3]))`: msgpack.
    const BINARY: (&str, &str) = ("socket.io#/#", "84a47479706503a46461746182a67061636b657482a47479706502a46461746192a362696ec403010203a46f70747383a5726f6f6d7390a665786365707490a5666c61677380a3756964b033336364323864366665303466323936a36e7370a12f");
    /// `io.except("room1").volatile.emit("v", {a: 1})`.
    const VOLATILE: (&str, &str) = ("socket.io#/#", "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b2276222c7b2261223a317d5d7d2c226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b22726f6f6d31225d2c22666c616773223a7b22766f6c6174696c65223a747275657d7d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    /// `io.timeout(1000).emitWithAck("ask", 1)`, B's count and B's ack.
    const WITH_ACK: (&str, &str) = ("socket.io#/#", "7b2274797065223a332c2264617461223a7b227061636b6574223a7b2274797065223a322c2264617461223a5b2261736b222c315d7d2c22726571756573744964223a2263366537613038613931356637313037222c226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b5d2c22666c616773223a7b2274696d656f7574223a313030307d7d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    const COUNT: (&str, &str) = ("socket.io#/#33cd28d6fe04f296#", "7b2274797065223a31312c2264617461223a7b22726571756573744964223a2263366537613038613931356637313037222c22636c69656e74436f756e74223a317d2c22756964223a2264653236336165336430316237333862222c226e7370223a222f227d");
    const ACK: (&str, &str) = ("socket.io#/#33cd28d6fe04f296#", "7b2274797065223a31322c2264617461223a7b22726571756573744964223a2263366537613038613931356637313037222c227061636b6574223a22796573227d2c22756964223a2264653236336165336430316237333862222c226e7370223a222f227d");
    /// `io.fetchSockets()`.
    const FETCH: (&str, &str) = ("socket.io#/#", "7b2274797065223a372c2264617461223a7b226f707473223a7b22726f6f6d73223a5b5d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22726571756573744964223a2264373465396165646433323035323165227d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    /// `io.in("room1").socketsJoin("room2")`, `io.in("room2").socketsLeave("room2")`,
    /// `io.in("nobody").disconnectSockets(true)`.
    const JOIN: (&str, &str) = ("socket.io#/#", "7b2274797065223a342c2264617461223a7b226f707473223a7b22726f6f6d73223a5b22726f6f6d31225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22726f6f6d73223a5b22726f6f6d32225d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    const LEAVE: (&str, &str) = ("socket.io#/#", "7b2274797065223a352c2264617461223a7b226f707473223a7b22726f6f6d73223a5b22726f6f6d32225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22726f6f6d73223a5b22726f6f6d32225d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    const DISCONNECT: (&str, &str) = ("socket.io#/#", "7b2274797065223a362c2264617461223a7b226f707473223a7b22726f6f6d73223a5b226e6f626f6479225d2c22657863657074223a5b5d2c22666c616773223a7b7d7d2c22636c6f7365223a747275657d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    /// `io.serverSideEmit("ping", "p1")`, `io.serverSideEmitWithAck("ping2", "p2")`
    /// and B's answer "pong", `io.serverSideEmit("bping", Buffer.from([9, 8]))`.
    const SERVER_EVENT: (&str, &str) = ("socket.io#/#", "7b2274797065223a392c2264617461223a7b227061636b6574223a5b2270696e67222c227031225d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    const SERVER_EVENT_ASKED: (&str, &str) = ("socket.io#/#", "7b2274797065223a392c2264617461223a7b22726571756573744964223a2236626463313437623737633632366635222c227061636b6574223a5b2270696e6732222c227032225d7d2c22756964223a2233336364323864366665303466323936222c226e7370223a222f227d");
    const SERVER_EVENT_ANSWER: (&str, &str) = ("socket.io#/#33cd28d6fe04f296#", "7b2274797065223a31302c2264617461223a7b22726571756573744964223a2236626463313437623737633632366635222c227061636b6574223a22706f6e67227d2c22756964223a2264653236336165336430316237333862222c226e7370223a222f227d");
    const SERVER_EVENT_BINARY: (&str, &str) = ("socket.io#/#", "84a47479706509a46461746181a67061636b657492a56270696e67c4020908a3756964b033336364323864366665303466323936a36e7370a12f");

    fn decoded(fixture: (&str, &str)) -> Envelope {
        decode(&hex(fixture.1)).unwrap()
    }

    #[test]
    fn broadcasts_round_trip_byte_for_byte() {
        let channels = Channels::new("socket.io", "/", A);
        for fixture in [TO_ROOM, BINARY, VOLATILE] {
            let envelope = decoded(fixture);
            assert_eq!((envelope.uid.as_str(), envelope.nsp.as_str()), (A, "/"));
            let Message::Broadcast(heard) = envelope.message else {
                panic!("{fixture:?} is not a broadcast");
            };
            let ours = broadcast(A, &heard.packet, &heard.opts).unwrap();
            assert_eq!(ours, hex(fixture.1), "{fixture:?}");
            let channel = SubscriptionMode::Dynamic.broadcast_channel(&channels, &heard.opts);
            assert_eq!(channel, fixture.0);
        }
        let Message::Broadcast(binary) = decoded(BINARY).message else {
            unreachable!()
        };
        assert_eq!(
            binary.packet.data.as_deref(),
            Some(r#"["bin",{"_placeholder":true,"num":0}]"#)
        );
        assert_eq!(
            binary.packet.attachments,
            vec![Bytes::from_static(&[1, 2, 3])]
        );
    }

    #[test]
    fn requests_round_trip_byte_for_byte() {
        for fixture in [
            WITH_ACK,
            FETCH,
            JOIN,
            LEAVE,
            DISCONNECT,
            SERVER_EVENT,
            SERVER_EVENT_ASKED,
            SERVER_EVENT_BINARY,
        ] {
            let Message::Request(request) = decoded(fixture).message else {
                panic!("{fixture:?} is not a request");
            };
            let ours = match &request {
                Request::BroadcastWithAck {
                    uid,
                    request_id,
                    packet,
                    opts,
                } => broadcast_with_ack_request(uid, request_id, packet, opts).unwrap(),
                Request::Fetch {
                    uid,
                    request_id,
                    opts,
                } => fetch_request(uid, "/", request_id, opts),
                Request::Rooms {
                    uid,
                    join,
                    opts,
                    rooms,
                } => rooms_request(uid, "/", *join, opts, rooms),
                Request::Disconnect { uid, opts, close } => {
                    disconnect_request(uid, "/", opts, *close)
                }
                Request::ServerSideEmit {
                    uid,
                    request_id,
                    event,
                    args,
                } => {
                    server_side_emit_request(uid, "/", request_id.as_deref(), event, args).unwrap()
                }
                Request::AllRooms { .. } => unreachable!("not in this format"),
            };
            assert_eq!(ours, hex(fixture.1), "{fixture:?}: {request:?}");
        }
    }

    #[test]
    fn responses_round_trip_byte_for_byte() {
        let Message::Response(Response::ClientCount { request_id, count }) = decoded(COUNT).message
        else {
            panic!("not a count");
        };
        let count = usize::try_from(count).unwrap();
        assert_eq!(
            client_count_response(B, "/", &request_id, count),
            hex(COUNT.1)
        );
        let Message::Response(Response::ServerSideEmit { request_id, answer }) =
            decoded(SERVER_EVENT_ANSWER).message
        else {
            panic!("not a server-side answer");
        };
        assert_eq!(answer.args_json(), r#"["pong"]"#);
        assert_eq!(
            server_side_emit_response(B, "/", &request_id, &answer).unwrap(),
            hex(SERVER_EVENT_ANSWER.1)
        );
        // Node's ack names no socket; ours adds `sid` after Node's keys.
        let Message::Response(Response::Ack {
            request_id,
            answer,
            sid,
        }) = decoded(ACK).message
        else {
            panic!("not an ack");
        };
        assert_eq!((answer.args_json(), sid), (r#"["yes"]"#, None));
        let ours = ack_response(B, "/", &request_id, "sid1", &answer).unwrap();
        let node = String::from_utf8(hex(ACK.1)).unwrap();
        let with_sid = node.replace(r#""packet":"yes"}"#, r#""packet":"yes","sid":"sid1"}"#);
        assert_eq!(String::from_utf8(ours).unwrap(), with_sid);
        assert!(COUNT.0 == ACK.0 && Channels::new("socket.io", "/", B).response_for(A) == COUNT.0);
    }

    #[test]
    fn fetch_answers_keep_handshakes_and_turn_binary_into_buffers() {
        let sockets = vec![SocketDetails {
            id: "M4EmByqChD7avyp0AAAB".into(),
            handshake: json!({ "auth": { "name": "bob" } }),
            rooms: vec![Room::from("M4EmByqChD7avyp0AAAB"), Room::from("room1")],
            data: json!({ "name": "bob" }),
        }];
        let bytes = sockets_response(B, "/", "d74e9aedd320521e", &sockets);
        let Message::Response(Response::Sockets { sockets: back, .. }) =
            decode(&bytes).unwrap().message
        else {
            panic!("not a fetch answer");
        };
        assert_eq!(back[0].rooms, sockets[0].rooms);
        assert_eq!(back[0].handshake, sockets[0].handshake);
        // Binary data (msgpack from Node) arrives as Node's Buffer JSON.
        let message = json!({
            "type": kind::FETCH_SOCKETS_RESPONSE,
            "data": { "requestId": "r", "sockets": [{ "id": "x", "rooms": [], "handshake": {},
                "data": { "_placeholder": true, "num": 0 } }] },
            "uid": B, "nsp": "/",
        });
        let packed = codec::to_msgpack(&message, &[Bytes::from_static(&[7])]).unwrap();
        let Message::Response(Response::Sockets { sockets, .. }) =
            decode(&codec::encode(&packed)).unwrap().message
        else {
            panic!("not a fetch answer");
        };
        assert_eq!(sockets[0].data, json!({ "type": "Buffer", "data": [7] }));
    }

    #[test]
    fn channels_follow_the_subscription_mode() {
        let channels = Channels::new("k", "/chat", A);
        assert_eq!(channels.main, "k#/chat#");
        assert_eq!(channels.own_response, format!("k#/chat#{A}#"));
        let to = |rooms: &[&str]| {
            BroadcastOptions::new(rooms.iter().map(|r| Room::from(*r)).collect(), Vec::new())
        };
        let socket_id = "M4EmByqChD7avyp0AAAB";
        use SubscriptionMode::*;
        assert_eq!(Static.broadcast_channel(&channels, &to(&["r"])), "k#/chat#");
        assert_eq!(
            Dynamic.broadcast_channel(&channels, &to(&["r"])),
            "k#/chat#r#"
        );
        assert_eq!(
            Dynamic.broadcast_channel(&channels, &to(&[socket_id])),
            "k#/chat#"
        );
        assert_eq!(
            Dynamic.broadcast_channel(&channels, &to(&["r", "s"])),
            "k#/chat#"
        );
        assert_eq!(
            DynamicPrivate.broadcast_channel(&channels, &to(&[socket_id])),
            format!("k#/chat#{socket_id}#")
        );
        assert!(!Static.subscribes_room(false));
        assert!(Dynamic.subscribes_room(false) && !Dynamic.subscribes_room(true));
        assert!(DynamicPrivate.subscribes_room(true));
    }

    #[test]
    fn bad_messages_are_errors_and_bookkeeping_is_ignored() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            br#"{"type":3,"uid":"x","nsp":"/"}"#,
            br#"{"type":3,"data":{"packet":{"type":0,"data":[]}},"uid":"x","nsp":"/"}"#,
            br#"{"type":9,"data":{"packet":[1]},"uid":"x","nsp":"/"}"#,
            br#"{"type":8,"data":{"requestId":"r"},"uid":"x","nsp":"/"}"#,
            b"\xc1",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let heartbeat = decode(br#"{"type":2,"uid":"x","nsp":"/"}"#).unwrap();
        assert!(matches!(heartbeat.message, Message::Other(kind::HEARTBEAT)));
    }
}
